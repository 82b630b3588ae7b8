/*
 * The dakd command-line front end: one file per subcommand, each a thin shell that parses
 * its options, makes library calls and maps the status to an exit code (table in
 * README.md). Nothing here reaches past lib/include/dakd/.
 */
#ifndef DAKD_CLI_H
#define DAKD_CLI_H

#include "dakd/core.h"
#include "dakd/volume.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} dk_cli_command;

int dk_cmd_info(int argc, char **argv);
int dk_cmd_convert(int argc, char **argv);
int dk_cmd_phantom(int argc, char **argv);
int dk_cmd_cases(int argc, char **argv);
int dk_cmd_train(int argc, char **argv);
int dk_cmd_distill(int argc, char **argv);
int dk_cmd_run(int argc, char **argv);
int dk_cmd_predict(int argc, char **argv);
int dk_cmd_adapt(int argc, char **argv);
int dk_cmd_eval(int argc, char **argv);
int dk_cmd_export(int argc, char **argv);

/* The body of dakd train (distill = 0) and dakd distill (1): options, config, trainer. */
int dk_cli_train_run(int argc, char **argv, int distill);

/* Exit codes: 0 success, then one per dk_status (1 usage/argument ... 7 internal). */
int dk_cli_exit_code(dk_status st);

/* Print "dakd <cmd>: <dk_last_error()>" to stderr and return the exit code for `st`. */
int dk_cli_report(const char *cmd, dk_status st);

/* A failure on one rank of several that the others cannot go on without (they wait for it
 * in a collective or a message): "dakd <cmd>: rank R of N: <error>", then every rank stops
 * (MPI_Abort with the exit code for `st`). */
int dk_cli_rank_failed(const char *cmd, dk_status st);

/* Print a usage error for `cmd` and return the usage exit code (1). */
int dk_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The options of a command that also takes image paths, argv[1..] walked once: a word not
 * starting with '-' (or "-" alone) is an input, appended to inputs (caller-allocated, argc
 * slots); an option goes first to flag(ctx, name), which returns 1 when it is a flag (no
 * value); any other option takes the next argument as its value, given to value(ctx, name,
 * v), which returns 0 (taken), -1 (a bad value) or -2 (no such option). */
typedef struct {
    void *ctx;
    int (*flag)(void *ctx, const char *name);
    int (*value)(void *ctx, const char *name, const char *v);
    const char **inputs;
    int n_inputs; /* out */
} dk_cli_options;

/* 0, or the usage error printed for argv[0] and its exit code. */
int dk_cli_parse_options(int argc, char **argv, dk_cli_options *o);

/* After the options of a command over a model and images (predict, adapt): a --model, an
 * --out (`out_form` names its value in the message), a case list or image paths, and
 * --where only with --cases. 0, or the usage error printed for cmd and its exit code. */
int dk_cli_check_model_inputs(const char *cmd, const char *model, const char *out,
                              const char *out_form, const char *cases, int n_inputs,
                              int where);

/* SIGINT and SIGTERM become dk_interrupt_request (the trainer checkpoints before its next
 * step and stops, the study runner stops between stages); a second one ends the process at
 * once. For the long commands (train, distill, run). */
void dk_cli_catch_interrupts(void);
/* After an interrupted run: "dakd <cmd>: interrupted by SIG...; <what>" and the command to
 * continue, the one this process was started with (shell-quoted) plus `add` (NULL: none)
 * when it is not on the line yet, to stderr. Returns the exit code 128 + signal. */
int dk_cli_interrupted(const char *cmd, const char *what, const char *add);

/* What stderr shows (apps/term.c): log lines from INFO up ("[info] ..."), or from WARN up
 * when `quiet`, and, unless quiet, the library's progress reporters: one bar line redrawn on
 * a terminal, which every log line clears first; a plain line every `interval` seconds, at
 * each stage, epoch or case and at the end when stderr is no terminal (never a \r there). */
void dk_cli_term_install(int quiet, double interval);

/* 1 if argv[i] is -h or --help. */
int dk_cli_is_help(const char *arg);

/* Parse a --series value: digits = index, anything else = SeriesInstanceUID (borrowed
 * from `arg`). 0 on success, -1 on an empty value. */
int dk_cli_parse_series(const char *arg, dk_read_opts *ro);

/* Parse "a,b,c" integers (1..n values) into out; returns the count or -1. */
int dk_cli_parse_ints(const char *s, long long *out, int max);

#endif
