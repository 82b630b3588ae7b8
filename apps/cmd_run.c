/* dakd run — run a study file: its stages in order, skipping the ones that are up to date. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dakd/dist.h"
#include "dakd/study.h"

static const char *run_help =
    "usage: dakd run STUDY.ini [--from STAGE] [--set section.key=value]...\n\n"
    "Run the stages of a study ([study] stages) into its run_dir: generated phantoms,\n"
    "training (teacher, source-only student, distilled students, oracle), prediction and\n"
    "evaluation, and the report. A stage whose key (config, dependencies, input file\n"
    "hashes, dakd version) is unchanged is skipped; a killed training stage resumes from\n"
    "its checkpoint. Ends with the study table and the report's path.\n\n"
    "  --from STAGE    rerun STAGE and every stage after it from scratch\n"
    "  --set s.k=v     override a key of [study], [phantoms], [data], [model], [train],\n"
    "                  [distill] or [augment]; stage.NAME.key=v overrides a stage's key\n"
    "                  (repeatable)\n\n"
    "The thread count is the study's ([study] threads, part of every training key, so\n"
    "results repeat): the global --threads and DAKD_THREADS do not change it.\n"
    "[study] jobs = N (--set study.jobs=N) runs up to N stages at once, each in a child\n"
    "process logging to RUN_DIR/<stage>/run.log; results do not depend on it\n"
    "(threads = 1, jobs = 2 keeps two cores busy with two trainings).\n\n"
    "mpirun -np N dakd run STUDY.ini runs the stages on N ranks (one stage at a time each;\n"
    "jobs is not used): rank 0 schedules, writes manifest.json and runs its share in a child\n"
    "process, every rank logs a stage to RUN_DIR/<stage>/run.log; RUN_DIR must be on a file\n"
    "system every rank sees. Results equal a serial run's bit for bit. [stage.X] ranks = K\n"
    "trains stage X data-parallel on K ranks other than rank 0 (as mpirun -np K dakd distill;\n"
    "equal within float rounding, so its key differs from a serial run's). docs/scaling.md.\n\n"
    "Writes RUN_DIR/<stage>/ (stage.json last), RUN_DIR/manifest.json (versions, machine,\n"
    "configs, seeds, input hashes, timings). The study file format: pipelines/README.md.\n\n"
    "Before anything is written, a study whose inputs (the study file, [data] cases and\n"
    "every image, label and mask it names) are RUN_DIR, its manifest.json or inside a\n"
    "stage's folder is refused, naming both. RUN_DIR/.dakd.lock keeps a second 'dakd run'\n"
    "off the folder while this one lives (the refusal names the holder's pid; a lock left\n"
    "by a killed run is taken over). Killed (even with SIGKILL), the same command continues:\n"
    "finished stages are skipped, a training stage resumes from its last checkpoint, or from\n"
    "the beginning when it had none. Ctrl-C, SIGTERM or SIGUSR1: a training stage writes\n"
    "its checkpoint before its next step, other stages finish, then the run stops (exit\n"
    "130 / 143 / 138) and says to run the same command again; a second Ctrl-C stops at\n"
    "once. Under mpirun send SIGUSR1 to mpirun (it gives the ranks 1 s after a SIGTERM).\n"
    "Progress on stderr: 'run stage k/n NAME' and the stage's own (training steps, cases),\n"
    "a bar on a terminal, else a plain line every DAKD_PROGRESS_SECONDS (default 30) and at\n"
    "each stage; --quiet: none (dakd --help). With jobs > 1, each stage's log gets its own.\n";

/* 1 if the study has a stage of that name. */
static int has_stage(const dk_study *s, const char *name) {
    for (int i = 0; i < dk_study_stage_count(s); i++)
        if (strcmp(dk_study_stage_name(s, i), name) == 0) return 1;
    return 0;
}

static int run_ranks(int argc, char **argv);

/* Under mpirun -np N (N > 1) each process is one rank of the study (dakd/study.h). */
int dk_cmd_run(int argc, char **argv) {
    dk_status st = dk_dist_init(&argc, &argv);
    if (st != DK_OK) return dk_cli_report("run", st);
    int rc = run_ranks(argc, argv);
    dk_dist_finalize();
    return rc;
}

/* A study file every rank could load, or every rank fails: rank 0 would otherwise send
 * stages to a rank that has left. *quiet: this rank's failure is rank 0's too, which says
 * it once. */
static dk_status loaded_everywhere(dk_status st, int *quiet) {
    *quiet = 0;
    if (dk_dist_world_size() == 1) return st;
    int any = dk_dist_max(st != DK_OK), zero = st != DK_OK;
    if (dk_dist_bcast(&zero, sizeof zero, 0) != DK_OK) zero = 0;
    *quiet = dk_dist_world_rank() > 0 && zero;
    if (st != DK_OK || !any) return st;
    return dk_fail(DK_ERR_IO, "another rank could not load the study (see its message)");
}

static int run_ranks(int argc, char **argv) {
    const char *path = NULL, *from = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    if (!sets) return dk_cli_report("run", dk_fail(DK_ERR_NOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (dk_cli_is_help(k)) {
            fputs(run_help, stdout);
            free(sets);
            return 0;
        }
        if (k[0] != '-' && !path) {
            path = k;
            continue;
        }
        if (strcmp(k, "--from") && strcmp(k, "--set")) {
            free(sets);
            return dk_cli_usage_error("run", "unknown option '%s'", k);
        }
        if (i + 1 >= argc) {
            free(sets);
            return dk_cli_usage_error("run", "%s needs a value", k);
        }
        if (strcmp(k, "--from") == 0) from = argv[++i];
        else sets[nsets++] = argv[++i];
    }
    if (!path) {
        free(sets);
        return dk_cli_usage_error("run", "STUDY.ini is required");
    }
    dk_study *s = NULL;
    int quiet = 0;
    dk_status st = loaded_everywhere(dk_study_load(&s, path, sets), &quiet);
    if (st != DK_OK && quiet) {
        dk_study_free(s);
        free(sets);
        return dk_cli_exit_code(st);
    }
    if (st == DK_OK && from && !has_stage(s, from)) {
        dk_study_free(s);
        free(sets);
        return dk_cli_usage_error("run", "--from %s: no such stage in %s", from, path);
    }
    if (st == DK_OK) {
        dk_study_opts o = {from, dk_dist_world_rank() == 0 ? stdout : NULL, 0};
        dk_cli_catch_interrupts();
        st = dk_study_run(s, &o);
        if (st != DK_OK && dk_dist_world_rank() > 0) { /* rank 0 waits for its answer */
            dk_study_free(s);
            free(sets);
            return dk_cli_rank_failed("run", st);
        }
    }
    dk_study_free(s);
    free(sets);
    if (st == DK_OK && dk_interrupt_pending())
        return dk_cli_interrupted("run", "finished stages are kept and an interrupted training "
                                  "stage resumes from its checkpoint", NULL);
    return dk_cli_report("run", st);
}
