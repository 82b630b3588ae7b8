/* dakd: dispatch to a subcommand; --help and --version; interrupts. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dakd/dist.h"
#include "dakd/nn.h"

static const dk_cli_command commands[] = {
    {"info", "describe volumes: dims, spacing, affine, orientation, values, labels",
     dk_cmd_info},
    {"convert", "convert volumes: NIfTI, PNG, MHA/MHD, NRRD; DICOM series and SEG in",
     dk_cmd_convert},
    {"phantom", "generate two-domain phantom images with known label maps", dk_cmd_phantom},
    {"cases", "write a checked case list from nnU-Net, Decathlon, DICOM or plain folders",
     dk_cmd_cases},
    {"train", "train a teacher, a source-only student or an oracle (CE + Dice)", dk_cmd_train},
    {"distill", "distil a teacher into a student for the target domain", dk_cmd_distill},
    {"run", "run a study: data, training, evaluation, report (resumable)", dk_cmd_run},
    {"predict", "predict label maps with a model: sliding window, Gaussian blending, TTA",
     dk_cmd_predict},
    {"adapt", "re-estimate a model's batch-norm statistics on target images (AdaBN)",
     dk_cmd_adapt},
    {"eval", "score predictions against references (CSV, JSON, HTML); compare two runs",
     dk_cmd_eval},
    {"export", "write a model's network as ONNX, with its preprocessing in the metadata",
     dk_cmd_export},
};
static const size_t n_commands = sizeof commands / sizeof commands[0];

static void usage(FILE *out) {
    fprintf(out, "usage: dakd [--version] [--help] [--threads N] [--quiet] <command> [<args>]\n\n"
                 "Domain-adaptive knowledge distillation for medical image segmentation.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < n_commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  --threads N  threads for BLAS and every parallel loop (default: all cores;\n"
                 "               also DAKD_THREADS); before the command or among its options\n"
                 "  --quiet      no progress and no [info] lines, only warnings and errors\n"
                 "               (anywhere on the line, as --threads)\n"
                 "\nProgress (train, distill, adapt, predict, eval, run) goes to stderr: on a\n"
                 "terminal one bar line redrawn in place, cleared before every log line; else a\n"
                 "plain line every DAKD_PROGRESS_SECONDS seconds (default 30; 0: at every step),\n"
                 "at each stage, epoch and case, and at the end, with no \\r.\n"
                 "\nSizes on the command line are X,Y,Z (X the fastest axis, as 'dakd info'\n"
                 "prints dims): phantom --size, predict --patch.\n"
                 "\nDAKD_MAX_VOLUME_BYTES (default 8G) is the largest volume a file may make\n"
                 "dakd allocate (voxels x channels x bytes); a larger one is refused (exit 4).\n"
                 "\n'dakd <command> --help' describes a command. Exit codes: 0 ok; 1 usage (a\n"
                 "command, option or value, inputs that collide); 2 I/O (a file missing or\n"
                 "unreadable, nothing readable, unmatched files, an output not writable); 3 data\n"
                 "(a file read but invalid, or files that do not fit together: grids, channels,\n"
                 "label values); 4 unsupported; 5 out of memory; 6 numeric (NaN/Inf); 7 internal;\n"
                 "130 / 143 / 138: train, distill or run stopped by SIGINT / SIGTERM / SIGUSR1\n"
                 "after writing its checkpoint (it prints the command that continues; under\n"
                 "mpirun send SIGUSR1: docs/scaling.md).\n");
}

int dk_cli_exit_code(dk_status st) { return (int)st; }

static int main_argc;
static char **main_argv; /* the command line as started, for the resume hint */

static void on_interrupt(int sig) {
    static const char msg[] = "\ndakd: stopping at the next safe point (training writes its "
                              "checkpoint first); a second Ctrl-C stops at once\n";
    if (dk_interrupt_pending()) { /* the second: the default action, now */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    dk_interrupt_request(sig);
    if (dk_dist_rank() != 0) return; /* under mpirun, rank 0 speaks for all */
    ssize_t k = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)k;
}

void dk_cli_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESTART; /* file I/O goes on; the loops read the request */
    sigemptyset(&sa.sa_mask);
    /* an ignored signal stays ignored (a background job of a shell without job control) */
    /* SIGUSR1 too: mpirun passes it on to every rank at once, while it holds SIGTERM back
     * and follows it with SIGKILL (docs/scaling.md) */
    const int sigs[3] = {SIGINT, SIGTERM, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

/* One word for a POSIX shell: as it is when it is plain, else in single quotes. */
static void put_word(FILE *f, const char *w) {
    if (*w && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        "_-./=,:+@%") == strlen(w)) {
        fputs(w, f);
        return;
    }
    fputc('\'', f);
    for (; *w; w++) {
        if (*w == '\'') fputs("'\\''", f);
        else fputc(*w, f);
    }
    fputc('\'', f);
}

int dk_cli_interrupted(const char *cmd, const char *what, const char *add) {
    int sig = dk_interrupt_pending();
    if (dk_dist_rank() != 0) return 128 + sig; /* rank 0 prints the hint for all */
    fprintf(stderr, "dakd %s: interrupted by %s; %s. To continue, run:\n  ", cmd,
            sig == SIGINT    ? "SIGINT (Ctrl-C)"
            : sig == SIGTERM ? "SIGTERM"
            : sig == SIGUSR1 ? "SIGUSR1"
                             : "a signal",
            what);
    if (dk_dist_size() > 1) fprintf(stderr, "mpirun -np %d ", dk_dist_size()); /* same N */
    int has = 0;
    for (int i = 0; i < main_argc; i++) {
        if (i) fputc(' ', stderr);
        put_word(stderr, main_argv[i]);
        has |= add && strcmp(main_argv[i], add) == 0;
    }
    if (add && !has) fprintf(stderr, " %s", add);
    fputc('\n', stderr);
    return 128 + sig;
}

int dk_cli_report(const char *cmd, dk_status st) {
    if (st != DK_OK) fprintf(stderr, "dakd %s: %s\n", cmd, dk_last_error());
    return dk_cli_exit_code(st);
}

int dk_cli_rank_failed(const char *cmd, dk_status st) {
    st = dk_error_context(st, "rank %d of %d", dk_dist_world_rank(), dk_dist_world_size());
    int rc = dk_cli_report(cmd, st);
    fflush(stderr);
    dk_dist_abort(rc);
    return rc;
}

int dk_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "dakd %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'dakd %s --help')\n", cmd);
    return dk_cli_exit_code(DK_ERR_ARG);
}

int dk_cli_is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int dk_cli_parse_options(int argc, char **argv, dk_cli_options *o) {
    const char *cmd = argv[0];
    o->n_inputs = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (k[0] != '-' || !k[1]) {
            o->inputs[o->n_inputs++] = k;
            continue;
        }
        if (o->flag(o->ctx, k)) continue;
        if (i + 1 >= argc) return dk_cli_usage_error(cmd, "%s needs a value", k);
        int rc = o->value(o->ctx, k, argv[++i]);
        if (rc == -2) return dk_cli_usage_error(cmd, "unknown option '%s'", k);
        if (rc) return dk_cli_usage_error(cmd, "bad value '%s' for %s", argv[i], k);
    }
    return 0;
}

int dk_cli_check_model_inputs(const char *cmd, const char *model, const char *out,
                              const char *out_form, const char *cases, int n_inputs,
                              int where) {
    if (!model) return dk_cli_usage_error(cmd, "--model is required");
    if (!out) return dk_cli_usage_error(cmd, "--out %s is required", out_form);
    if (!cases && n_inputs == 0) return dk_cli_usage_error(cmd, "give --cases CSV or image files");
    if (where && !cases) return dk_cli_usage_error(cmd, "--where needs --cases");
    return 0;
}

int dk_cli_parse_series(const char *arg, dk_read_opts *ro) {
    if (!arg[0]) return -1;
    size_t digits = strspn(arg, "0123456789");
    if (arg[digits] == '\0' && digits < 9) {
        ro->series_index = atoi(arg);
        ro->series_uid = NULL;
    } else {
        ro->series_uid = arg;
        ro->series_index = -1;
    }
    return 0;
}

int dk_cli_parse_ints(const char *s, long long *out, int max) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || n == max) return -1;
        out[n++] = v;
        if (*end == ',') p = end + 1;
        else if (*end == '\0') p = end;
        else return -1;
    }
    return n ? n : -1;
}

static void print_version(void) {
    printf("%s\n", dk_version_string());
    printf("OpenBLAS kernel %s (%s)%s\n", dk_blas_kernel(), dk_blas_config(),
           dk_blas_chose("OPENBLAS_CORETYPE") ? ", chosen by dakd" : "");
    printf("convolution %s\n", dk_conv_path());
    const char *wait = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    printf("OpenMP wait policy %s%s%s%s\n", wait && *wait ? wait : "default",
           spin && *spin ? ", GOMP_SPINCOUNT " : "", spin && *spin ? spin : "",
           dk_blas_chose("OMP_WAIT_POLICY") ? ", chosen by dakd" : "");
    printf("threads %d\n", dk_get_threads());
    printf("MPI %s\n", dk_dist_built() ? "Open MPI (mpirun -np N dakd train|distill)"
                                        : "none (built without MPI)");
}

/* A --threads value (the option's or DAKD_THREADS') into *n; 0, or -1 after a usage error. */
static int threads_value(const char *v, const char *what, long long *n) {
    if (dk_cli_parse_ints(v, n, 1) == 1 && *n >= 1 && *n <= 1024) return 0;
    dk_cli_usage_error("--threads", "%s needs a number 1..1024, got '%s'", what, v);
    return -1;
}

/* The global options. --threads N (or --threads=N) may stand anywhere on the line, before
 * the command or among its own options: it is taken out of `kept` (argv without them, argv[0]
 * dropped), which the command then parses. --help and --version count before the command
 * only. Returns the index in kept of the command (*n_kept when there is none), or -1 after a
 * usage error; *want is 'h' (help), 'v' (version) or 0. */
static int parse_globals(int argc, char **argv, char **kept, int *n_kept, int *want,
                         int *quiet) {
    const char *env = getenv("DAKD_THREADS");
    long long n = 0;
    if (env && *env && dk_cli_parse_ints(env, &n, 1) != 1)
        return dk_cli_usage_error("--threads", "DAKD_THREADS='%s' is not a number", env), -1;
    int cmd = -1;
    *n_kept = 0, *want = 0, *quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--threads=", 10) == 0) {
            if (threads_value(a + 10, "--threads", &n)) return -1;
        } else if (strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc)
                return dk_cli_usage_error("--threads", "needs a number 1..1024"), -1;
            if (threads_value(argv[++i], "--threads", &n)) return -1;
        } else if (strcmp(a, "--quiet") == 0) {
            *quiet = 1;
        } else if (cmd < 0 && (dk_cli_is_help(a) || strcmp(a, "--version") == 0)) {
            if (!*want) *want = dk_cli_is_help(a) ? 'h' : 'v';
        } else {
            if (cmd < 0) cmd = *n_kept;
            kept[(*n_kept)++] = argv[i];
        }
    }
    kept[*n_kept] = NULL;
    dk_set_threads((int)n);
    return cmd < 0 ? *n_kept : cmd;
}

/* DAKD_PROGRESS_SECONDS into *s (30 when unset); 0, or -1 after a usage error. */
static int progress_seconds(double *s) {
    const char *v = getenv("DAKD_PROGRESS_SECONDS");
    *s = 30.0;
    if (!v || !*v) return 0;
    char *end;
    *s = strtod(v, &end);
    if (end != v && !*end && *s >= 0 && *s <= 1e6) return 0;
    dk_cli_usage_error("dakd", "DAKD_PROGRESS_SECONDS='%s' is not a number of seconds 0..1e6",
                       v);
    return -1;
}

/* argv[0] is the command's name. */
static int run_command(int argc, char **argv) {
    if (argv[0][0] == '-') {
        fprintf(stderr, "dakd: unknown option '%s'\n\n", argv[0]);
        usage(stderr);
        return dk_cli_exit_code(DK_ERR_ARG);
    }
    for (size_t i = 0; i < n_commands; i++)
        if (strcmp(argv[0], commands[i].name) == 0) return commands[i].run(argc, argv);
    fprintf(stderr, "dakd: unknown command '%s'\n\n", argv[0]);
    usage(stderr);
    return dk_cli_exit_code(DK_ERR_ARG);
}

int main(int argc, char **argv) {
    dk_blas_restart_if_needed(argv);
    main_argc = argc, main_argv = argv;
    dk_log_set_sink(dk_log_stderr_sink, NULL, DK_LOG_INFO);
    char **kept = calloc((size_t)argc + 1, sizeof *kept);
    if (!kept) return dk_cli_exit_code(DK_ERR_NOMEM);
    int n_kept, want, quiet, rc;
    int first = parse_globals(argc, argv, kept, &n_kept, &want, &quiet);
    uint64_t limit; /* a bad DAKD_MAX_VOLUME_BYTES is reported before any work */
    double interval;
    if (first >= 0 && progress_seconds(&interval) == 0) dk_cli_term_install(quiet, interval);
    else first = -1;
    if (first < 0) {
        rc = dk_cli_exit_code(DK_ERR_ARG);
    } else if (dk_volume_limit(&limit) != DK_OK) {
        fprintf(stderr, "dakd: %s\n", dk_last_error());
        rc = dk_cli_exit_code(DK_ERR_ARG);
    } else if (want == 'h' || want == 'v') {
        if (want == 'h') usage(stdout);
        else print_version();
        rc = 0;
    } else if (first >= n_kept) {
        usage(stderr);
        rc = dk_cli_exit_code(DK_ERR_ARG);
    } else {
        rc = run_command(n_kept - first, kept + first);
    }
    free(kept);
    return rc;
}
