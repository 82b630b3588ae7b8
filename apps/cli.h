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
int dk_cmd_train(int argc, char **argv);
int dk_cmd_distill(int argc, char **argv);
int dk_cmd_run(int argc, char **argv);
int dk_cmd_predict(int argc, char **argv);
int dk_cmd_adapt(int argc, char **argv);
int dk_cmd_eval(int argc, char **argv);

/* The body of dakd train (distill = 0) and dakd distill (1): options, config, trainer. */
int dk_cli_train_run(int argc, char **argv, int distill);

/* Exit codes: 0 success, then one per dk_status (1 usage/argument ... 7 internal). */
int dk_cli_exit_code(dk_status st);

/* Print "dakd <cmd>: <dk_last_error()>" to stderr and return the exit code for `st`. */
int dk_cli_report(const char *cmd, dk_status st);

/* Print a usage error for `cmd` and return the usage exit code (1). */
int dk_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* 1 if argv[i] is -h or --help. */
int dk_cli_is_help(const char *arg);

/* Parse a --series value: digits = index, anything else = SeriesInstanceUID (borrowed
 * from `arg`). 0 on success, -1 on an empty value. */
int dk_cli_parse_series(const char *arg, dk_read_opts *ro);

/* Parse "a,b,c" integers (1..n values) into out; returns the count or -1. */
int dk_cli_parse_ints(const char *s, long long *out, int max);

#endif
