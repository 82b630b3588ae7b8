/* dakd train / dakd distill — parse CONFIG and --set overrides, run the trainer. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dakd/dist.h"
#include "dakd/train.h"

static const char *train_help =
    "usage: dakd train CONFIG [--model teacher|student] [--oracle] [--set section.key=value]...\n"
    "                  [--resume]\n\n"
    "Train a network supervised (CE + soft Dice) on labelled source cases:\n"
    "  --model teacher   the [model] teacher_* network (default)\n"
    "  --model student   the student_* network: the source-only baseline\n"
    "  --oracle          the student on TARGET labels ([data] target_split): an upper bound\n"
    "  --set s.k=v       override a config key (repeatable); unknown keys are errors\n"
    "  --resume          continue from RUN_DIR/checkpoint.safetensors; ends with the same\n"
    "                    weights as an uninterrupted run (same seed and threads). With no\n"
    "                    checkpoint yet (killed before the first) it starts from the\n"
    "                    beginning, with a new steps.jsonl\n"
    "  --stop-after N    stop after N steps without a checkpoint (tests a resume)\n\n"
    "Writes RUN_DIR/config.ini (effective config), steps.jsonl (one line per step),\n"
    "checkpoint.safetensors, best.safetensors (best SOURCE validation Dice: model selection\n"
    "never reads target labels) and model.safetensors. No file it writes may be one it reads\n"
    "(the cases CSV, a teacher's model file): such a run is refused before it starts.\n"
    "RUN_DIR/.dakd.lock keeps a second run off the folder while this one lives (the\n"
    "refusal names the holder's pid; a lock left by a killed run is taken over).\n"
    "Ctrl-C, SIGTERM or SIGUSR1: the run writes its checkpoint before the next step, stops\n"
    "(exit 130 / 143 / 138) and prints the command that continues it (this one with\n"
    "--resume); a second Ctrl-C stops at once. Under mpirun send SIGUSR1 to mpirun (it\n"
    "gives the ranks 1 s after a SIGTERM, then SIGKILL). Progress on stderr: a bar on a terminal, else a plain\n"
    "line every DAKD_PROGRESS_SECONDS (default 30) and each epoch; --quiet: none (dakd\n"
    "--help). Under 'mpirun -np N' (a build with Open MPI) the N processes train one network\n"
    "data-parallel: [data] batch_size stays the global batch, rank 0 alone writes RUN_DIR,\n"
    "and a rank that fails stops them all (docs/scaling.md). Config keys:\n";

static const char *distill_help =
    "usage: dakd distill CONFIG [--set section.key=value]... [--resume]\n\n"
    "Distil the teacher ([model] teacher_checkpoint, plus [distill] extra_teachers) into the\n"
    "student on source (labelled) and target (unlabelled) cases:\n"
    "  L = alpha L_KD + (1-alpha) L_sup + lambda_at L_AT + lambda_hint L_hint\n"
    "      + lambda_align L_align + lambda_ent L_ent + lambda_self L_self\n"
    "A step takes [data] batch_size patches in all: round(r(e) batch_size) source, the rest\n"
    "target (at least 2 of each with alignment on), with the source share\n"
    "r(e) = max(mix_min, mix_r0 - mix_delta e); then the temperature schedule, gradient\n"
    "clipping, dynamic sample weights. Self-distillation ([distill] self_distill): 'layers'\n"
    "trains the student's deep-supervision heads ([model] student_deep_supervision = true)\n"
    "on its own final output (L_self), 'ema' adds a mean teacher, 'both' does both. Extra\n"
    "teachers may differ from the first in width, depth, norm and up-sampling; their soft\n"
    "targets mix with teacher_weights, per voxel by confidence with teacher_combine =\n"
    "confidence; attention transfer and hints use the first teacher. Options and outputs\n"
    "as 'dakd train'. Config keys:\n";

/* Options in any order; the --set overrides apply after CONFIG is loaded, in their order,
 * so `--set k=v CONFIG` and `CONFIG --set k=v` mean the same. */
static int parse(int argc, char **argv, dk_train_config *c, dk_trainer_opts *o, int distill) {
    const char *cmd = argv[0], *cfgpath = NULL;
    dk_train_config_defaults(c);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (dk_cli_is_help(k)) {
            size_t n;
            const dk_cfg_field *t = dk_train_config_table(&n);
            fputs(distill ? distill_help : train_help, stdout);
            dk_cfg_print_help(t, n, stdout);
            return -2;
        }
        if (strcmp(k, "--resume") == 0) o->resume = 1;
        else if (!distill && strcmp(k, "--oracle") == 0) o->mode = DK_TRAINER_ORACLE;
        else if (k[0] != '-' && !cfgpath) {
            cfgpath = k;
            dk_status st = dk_train_config_load(c, cfgpath);
            if (st != DK_OK) return dk_cli_report(cmd, st);
        } else if (i + 1 >= argc) return dk_cli_usage_error(cmd, "%s needs a value", k);
        else if (strcmp(k, "--set") == 0) {
            i++; /* applied below, after CONFIG */
        } else if (strcmp(k, "--stop-after") == 0) {
            long long n;
            if (dk_cli_parse_ints(argv[++i], &n, 1) != 1 || n < 1)
                return dk_cli_usage_error(cmd, "--stop-after needs a positive number");
            o->stop_after_steps = n;
        } else if (!distill && strcmp(k, "--model") == 0) {
            const char *v = argv[++i];
            if (strcmp(v, "teacher") && strcmp(v, "student"))
                return dk_cli_usage_error(cmd, "--model is teacher or student, not '%s'", v);
            if (o->mode != DK_TRAINER_ORACLE)
                o->mode = strcmp(v, "teacher") ? DK_TRAINER_STUDENT : DK_TRAINER_TEACHER;
        } else return dk_cli_usage_error(cmd, "unknown option '%s'", k);
    }
    if (!cfgpath) return dk_cli_usage_error(cmd, "CONFIG is required");
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--stop-after") == 0 || strcmp(argv[i], "--model") == 0) i++;
        else if (strcmp(argv[i], "--set") == 0) {
            dk_status st = dk_train_config_set(c, argv[++i]);
            if (st != DK_OK) return dk_cli_report(cmd, st);
        }
    }
    dk_status st = dk_train_config_validate(c);
    return st != DK_OK ? dk_cli_report(cmd, st) : 0;
}

/* Stopped by SIGINT / SIGTERM at its checkpoint (or before any step): say how to go on. */
static int interrupted(const char *cmd, const char *run_dir) {
    char ck[DK_TRAIN_PATH_MAX + 32], what[DK_TRAIN_PATH_MAX + 96];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run_dir);
    if (access(ck, F_OK) == 0) snprintf(what, sizeof what, "%s holds the run so far", ck);
    else snprintf(what, sizeof what, "nothing trained yet (no %s)", ck);
    return dk_cli_interrupted(cmd, what, "--resume");
}

static int train_ranks(int argc, char **argv, int distill);

/* The shared body of both commands: under mpirun -np N (N > 1) each process is one rank of a
 * data-parallel run (dakd/dist.h); ranks other than 0 print only warnings and errors. */
int dk_cli_train_run(int argc, char **argv, int distill) {
    dk_status st = dk_dist_init(&argc, &argv);
    if (st != DK_OK) return dk_cli_report(argv[0], st);
    if (dk_dist_rank() > 0) dk_cli_term_install(1, 0);
    int rc = train_ranks(argc, argv, distill);
    dk_dist_finalize();
    return rc;
}

static int train_ranks(int argc, char **argv, int distill) {
    dk_train_config c;
    dk_trainer_opts o = {distill ? DK_TRAINER_DISTILL : DK_TRAINER_TEACHER, 0, 0};
    int rc = parse(argc, argv, &c, &o, distill);
    if (rc == -2) return 0;
    if (rc != 0) return rc;
    dk_cli_catch_interrupts();
    dk_trainer *t = NULL;
    dk_status st = dk_trainer_create(&t, &c, &o);
    if (st == DK_OK) st = dk_trainer_run(t);
    if (st != DK_OK && dk_dist_size() > 1) {
        dk_trainer_free(t);
        return dk_cli_rank_failed(argv[0], st); /* the others wait in an exchange */
    }
    if (st == DK_OK && dk_trainer_get_stats(t)->interrupted) {
        dk_trainer_free(t);
        return interrupted(argv[0], c.run_dir);
    }
    if (st == DK_OK && o.stop_after_steps == 0 && dk_dist_rank() == 0) {
        const dk_trainer_stats *s = dk_trainer_get_stats(t);
        printf("%s: %d epochs, model in %s\n", argv[0], s->epochs_done, c.run_dir);
        if (o.mode == DK_TRAINER_ORACLE)
            printf("oracle run: trained on TARGET labels (%s = %s, split %s): an upper bound, "
                   "not a result of the method\n", c.domain_column, c.target, c.target_split);
        if (s->best_epoch >= 0)
            printf("best %s-validation Dice %.4f (epoch %d): %s/best.safetensors\n",
                   c.val_domain == DK_VAL_TARGET ? "target" : "source", s->best_val_dice,
                   s->best_epoch + 1, c.run_dir);
        double nets = s->sec_teacher + s->sec_student_fwd + s->sec_student_bwd;
        printf("time in steps %.2fs: teachers %.2fs, EMA forward %.2fs, student forward %.2fs, "
               "backward %.2fs, data %.2fs, losses %.2fs; beyond the networks %.1f %%\n",
               s->sec_step, s->sec_teacher, s->sec_ema, s->sec_student_fwd, s->sec_student_bwd,
               s->sec_data, s->sec_loss,
               nets > 0 ? 100 * (s->sec_step - nets) / nets : 0.0);
    }
    dk_trainer_free(t);
    return dk_cli_report(argv[0], st);
}

int dk_cmd_train(int argc, char **argv) { return dk_cli_train_run(argc, argv, 0); }
