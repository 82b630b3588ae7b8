/*
 * Faults around a run, through the dakd binary on a tiny 2-D phantom set (32x32, 4 classes,
 * a 2-level teacher of base 4): nothing a command reads is ever overwritten or lost.
 *  - outputs never overwrite inputs: predict (its image, its model), convert (the same
 *    file, a hard link), eval (the prediction folder; an earlier report holding the
 *    reference folder), run (run_dir = the cases CSV; the study file inside a stage folder);
 *  - the folder lock: a second train or run on a folder a live process holds is refused
 *    naming the holder's pid; released, the run goes; a lock left by a dead pid is taken
 *    over with a note;
 *  - resume before the first checkpoint (train --resume, a study stage) starts again and
 *    ends with the model of an uninterrupted run;
 *  - SIGTERM to `dakd train` and SIGINT to `dakd run`: a checkpoint, exit 143 / 130, the
 *    command that continues; run, it ends with the uninterrupted run's model and log;
 *  - a full disk (RLIMIT_FSIZE, SIGXFSZ ignored): the next checkpoint or report fails with
 *    the file and the reason, and the previous checkpoint, model and report keep their bytes.
 */
#include "dakd/study.h"
#include "dakd/train.h"
#include "test_util.h"
#include "trainer_fixture.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NX = 32 };

static char dir[1024], csv[1100], ini[1100], study[1100], model[1100];
static char out[1 << 16]; /* output of the last command */

/* A dakd command (the arguments, printf style) through the shell; its exit status, the
 * output in `out`. */
static int dakd(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int dakd(const char *fmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return dk_test_sh(out, sizeof out, "%s %s", dk_test_cli(), args);
}

static const char *at(const char *name) { return dk_test_path(dir, name); }

static int same_bytes(const char *a, const char *b) {
    return dk_test_sh(NULL, 0, "cmp -s '%s' '%s'", a, b) == 0;
}

static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Run `cmd` through sh in a child whose files may not grow past `bytes` (RLIMIT_FSIZE), with
 * SIGXFSZ ignored so that a write past it fails with EFBIG as on a full disk; output in
 * `out`. Returns the exit status, -1 if it could not run. */
static int run_limited(long bytes, const char *cmd) {
    const char *log = at("limited.log");
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {(rlim_t)bytes, (rlim_t)bytes};
        signal(SIGXFSZ, SIG_IGN);
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(STDOUT_FILENO, STDERR_FILENO) < 0 || setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid) return -1;
    dk_test_sh(out, sizeof out, "cat '%s'", log);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* ------------------------------------------------------------------ data */

static const char *study_text =
    "[study]\nname = faults\nseed = 42\nthreads = 1\nstages = teacher\n\n"
    "[data]\ncases = %s\ndomain_column = dataset\nsource = src\ntarget = tgt\n"
    "patch_h = 32\npatch_w = 32\nbatch_size = 4\nclasses = 4\n\n"
    "[model]\nteacher_base = 4\nteacher_levels = 2\n\n"
    "[train]\nepochs = 2\nsteps_per_epoch = 3\ncheckpoint_every = 1\nvalidate_every = 0\n"
    "lr = 0.01\n\n[stage.teacher]\nmode = teacher\n";

/* 4 labelled source cases and 2 target cases; base.ini (a teacher, 2 epochs of 3 steps,
 * a checkpoint every epoch, no validation, seed 42 by default) and its run "base"; a study
 * file of the same training as one stage (so both give the same model file). */
static int suite_init(void) {
    FILE *f = dk_fx_open_cases(dir, csv, sizeof dir, "faults");
    if (!f) return 1;
    int rc = 0;
    for (int i = 0; i < 6 && rc == 0; i++) {
        char name[16];
        snprintf(name, sizeof name, "%s%02d", i < 4 ? "s" : "t", i);
        rc = dk_fx_write_case(f, dir, name, NX, i >= 4, 900 + (uint64_t)i, "train", 1, 0);
    }
    fclose(f);
    static const char *const sets[] = {
        "data.domain_column=dataset", "data.source=src", "data.target=tgt", "data.patch_h=32",
        "data.patch_w=32", "data.batch_size=4", "data.classes=4", "model.teacher_base=4",
        "model.teacher_levels=2", "train.lr=0.01", "train.threads=1",
        "train.checkpoint_every=1", "train.validate_every=0", NULL};
    dk_train_config c;
    if (rc || dk_fx_config(&c, sets, csv, dir, "base", 2, 3, "")) return 1;
    snprintf(ini, sizeof ini, "%s/base.ini", dir);
    if (dk_train_config_validate(&c) != DK_OK || dk_train_config_write(&c, ini) != DK_OK) {
        printf("\n  config: %s\n", dk_last_error());
        return 1;
    }
    snprintf(model, sizeof model, "%s/base/model.safetensors", dir);
    snprintf(study, sizeof study, "%s/study.ini", dir);
    FILE *s = fopen(study, "w");
    if (!s) return 1;
    fprintf(s, study_text, csv);
    fclose(s);
    if (dakd("train %s", ini) != 0) {
        printf("\n  base run: %s\n", out);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ outputs vs inputs */

static void test_predict_convert(void) {
    const char *img = at("s00_img.nii.gz");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "cp %s %s", img, at("keep.nii.gz")), 0);
    /* the prediction of s00_img.nii.gz into its own folder is s00_img.nii.gz */
    CU_ASSERT_EQUAL(dakd("predict --model %s --out %s %s", model, dir, img), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "which is the image of"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, img));
    CU_ASSERT(same_bytes(img, at("keep.nii.gz")));
    /* the output folder is the model file */
    CU_ASSERT_EQUAL(dakd("predict --model %s --out %s %s", model, model, img), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "which is the model"));
    CU_ASSERT_EQUAL(dakd("predict --model %s --out %s %s", model, at("pred"), img), 0);
    CU_ASSERT(dk_test_exists(at("pred/s00_img.nii.gz")));
    /* convert: the same path, another name of the same inode; then a real conversion */
    CU_ASSERT_EQUAL(dakd("convert %s %s", img, img), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is the input"));
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "ln -f %s %s", img, at("hard.nii.gz")), 0);
    CU_ASSERT_EQUAL(dakd("convert %s %s", img, at("hard.nii.gz")), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, at("hard.nii.gz")));
    CU_ASSERT(same_bytes(img, at("keep.nii.gz")));
    CU_ASSERT_EQUAL(dakd("convert %s %s", img, at("conv.mha")), 0);
}

static void test_eval_outputs(void) {
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s %s && cp %s %s && cp %s %s",
                                     at("ev_pred"), at("ev_ref"), at("s00_lab.nii.gz"),
                                     at("ev_pred/s00.nii.gz"), at("s00_lab.nii.gz"),
                                     at("ev_ref/s00.nii.gz")), 0);
    CU_ASSERT_EQUAL(dakd("eval --pred %s --ref %s --out %s", at("ev_pred"), at("ev_ref"),
                         at("ev_pred")), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is the prediction folder"));
    CU_ASSERT(dk_test_exists(at("ev_pred/s00.nii.gz")));
    CU_ASSERT_EQUAL_FATAL(dakd("eval --pred %s --ref %s --out %s", at("ev_pred"), at("ev_ref"),
                               at("ev_out")), 0);
    /* an earlier report (replaced whole) holding the reference folder */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "cp -r %s %s", at("ev_ref"), at("ev_out/refs")), 0);
    CU_ASSERT_EQUAL(dakd("eval --pred %s --ref %s --out %s", at("ev_pred"), at("ev_out/refs"),
                         at("ev_out")), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "holds the reference folder"));
    CU_ASSERT(dk_test_exists(at("ev_out/refs/s00.nii.gz")));
}

static void test_run_outputs(void) {
    CU_ASSERT_EQUAL(dakd("run %s --set study.run_dir=%s", study, csv), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "which is [data] cases"));
    /* the study file inside the folder of its stage "teacher", which a run clears */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s && cp %s %s", at("sr_in/teacher"),
                                     study, at("sr_in/teacher/study.ini")), 0);
    CU_ASSERT_EQUAL(dakd("run %s --set study.run_dir=%s", at("sr_in/teacher/study.ini"),
                         at("sr_in")), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the study file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the folder of stage teacher"));
    CU_ASSERT(dk_test_exists(at("sr_in/teacher/study.ini")));
    CU_ASSERT(!dk_test_exists(at("sr_in/manifest.json")));
}

/* ------------------------------------------------------------------ the folder lock */

static void test_lock(void) {
    /* in one process: a second lock on the folder is refused, the first released frees it */
    dk_dir_lock a, b;
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s", at("locked")), 0);
    CU_ASSERT_EQUAL_FATAL(dk_dir_lock_take(&a, at("locked")), DK_OK);
    CU_ASSERT_EQUAL(dk_dir_lock_take(&b, at("locked")), DK_ERR_IO);
    char pid[64];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), pid));
    /* dakd train on the held folder: refused naming it and this pid, nothing written */
    CU_ASSERT_EQUAL(dakd("train %s --set output.run_dir=%s", ini, at("locked")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "in use by another dakd process"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, pid));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, at("locked")));
    CU_ASSERT(!dk_test_exists(at("locked/steps.jsonl")));
    dk_dir_lock_release(&a);
    CU_ASSERT_EQUAL(dakd("train %s --set output.run_dir=%s", ini, at("locked")), 0);
    /* a lock file left by a process that is gone: taken over, with a note */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    CU_ASSERT_FATAL(dead > 0 && waitpid(dead, NULL, 0) == dead);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s && echo %ld > %s", at("stale"),
                                     (long)dead, at("stale/.dakd.lock")), 0);
    CU_ASSERT_EQUAL(dakd("train %s --set output.run_dir=%s", ini, at("stale")), 0);
    snprintf(pid, sizeof pid, "taking over the lock of pid %ld", (long)dead);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, pid));
    /* dakd run on a held run_dir */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s", at("run_locked")), 0);
    CU_ASSERT_EQUAL_FATAL(dk_dir_lock_take(&a, at("run_locked")), DK_OK);
    CU_ASSERT_EQUAL(dakd("run %s --set study.run_dir=%s", study, at("run_locked")), 2);
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CU_ASSERT_PTR_NOT_NULL(strstr(out, pid));
    CU_ASSERT(!dk_test_exists(at("run_locked/teacher")));
    dk_dir_lock_release(&a);
}

/* ------------------------------------------------------------------ resume */

static int count_lines(const char *p) {
    char buf[64];
    if (dk_test_sh(buf, sizeof buf, "wc -l < '%s'", p) != 0) return -1;
    return atoi(buf);
}

static void test_resume_without_checkpoint(void) {
    /* stopped after 2 of 6 steps, before the first checkpoint, a half line at the log's end */
    const char *args = "--set train.checkpoint_every=2";
    CU_ASSERT_EQUAL_FATAL(dakd("train %s %s --set output.run_dir=%s --stop-after 2", ini, args,
                               at("early")), 0);
    CU_ASSERT(!dk_test_exists(at("early/checkpoint.safetensors")));
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "printf '{\"mode\":\"tea' >> %s",
                                     at("early/steps.jsonl")), 0);
    CU_ASSERT_EQUAL(dakd("train %s %s --set output.run_dir=%s --resume", ini, args, at("early")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no checkpoint yet"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "starting from the beginning"));
    CU_ASSERT_EQUAL(count_lines(at("early/steps.jsonl")), 6);
    CU_ASSERT(same_bytes(at("early/model.safetensors"), model));
    /* a study stage stopped before its first checkpoint: the next run starts it again */
    const char *sets[] = {NULL, "train.checkpoint_every=2", NULL};
    char rd[1200];
    snprintf(rd, sizeof rd, "study.run_dir=%s", at("st_early"));
    sets[0] = rd;
    for (int pass = 0; pass < 2; pass++) {
        dk_study *s = NULL;
        dk_status st = dk_study_load(&s, study, sets);
        dk_study_opts o = {NULL, NULL, pass == 0 ? 1 : 0};
        if (st == DK_OK) st = dk_study_run(s, &o);
        if (st != DK_OK) printf("\n  study pass %d: %s\n", pass, dk_last_error());
        CU_ASSERT_EQUAL(st, DK_OK);
        CU_ASSERT_EQUAL(dk_study_stage_ran(s, 0), pass);
        dk_study_free(s);
        CU_ASSERT_EQUAL(dk_test_exists(at("st_early/teacher/checkpoint.safetensors")), pass);
    }
    CU_ASSERT(same_bytes(at("st_early/teacher/model.safetensors"), model));
}

/* ------------------------------------------------------------------ signals */

/* Start `cmd` in the background, send `sig` once `log` has `lines` lines, wait; the exit
 * status and the output are returned as dakd() does. */
/* env --default-signal: without job control a shell starts a background job with SIGINT
 * ignored, and dakd leaves an ignored signal ignored */
static int signal_after(const char *cmd, const char *log, int lines, const char *sig) {
    return dk_test_sh(out, sizeof out,
                      "exec env --default-signal=INT %s > %s 2>&1 & p=$!; i=0; "
                      "while [ \"$(cat %s 2>/dev/null | wc -l)\" -lt %d ] && [ $i -lt 1200 ]; "
                      "do sleep 0.05; i=$((i+1)); done; kill -%s $p; wait $p; rc=$?; "
                      "cat %s; exit $rc", cmd, at("sig.log"), log, lines, sig, at("sig.log"));
}

/* The command the interrupted run printed, run again. */
static int continue_as_printed(void) {
    const char *k = strstr(out, "To continue, run:\n  ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    char cmd[4096];
    k += strlen("To continue, run:\n  ");
    snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(k, "\n"), k);
    return dk_test_sh(out, sizeof out, "%s", cmd);
}

static void test_signals(void) {
    /* SIGTERM to dakd train: checkpoint, 143, the command with --resume */
    const char *longer = "--set train.epochs=3 --set train.steps_per_epoch=40";
    CU_ASSERT_EQUAL_FATAL(dakd("train %s %s --set output.run_dir=%s", ini, longer, at("sig_ref")),
                          0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train %s %s --set output.run_dir=%s", dk_test_cli(), ini,
             longer, at("sig_t"));
    CU_ASSERT_EQUAL(signal_after(cmd, at("sig_t/steps.jsonl"), 5, "TERM"), 143);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "interrupted by SIGTERM"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--resume\n"));
    CU_ASSERT(dk_test_exists(at("sig_t/checkpoint.safetensors")));
    CU_ASSERT(!dk_test_exists(at("sig_t/model.safetensors")));
    CU_ASSERT_EQUAL(continue_as_printed(), 0);
    CU_ASSERT(same_bytes(at("sig_t/model.safetensors"), at("sig_ref/model.safetensors")));
    /* the step log too, once the wall times are cut */
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "sed 's/,\"sec\":[^,}]*//' %s > %s && "
                               "sed 's/,\"sec\":[^,}]*//' %s > %s && cmp -s %s %s",
                               at("sig_t/steps.jsonl"), at("a.jsonl"), at("sig_ref/steps.jsonl"),
                               at("b.jsonl"), at("a.jsonl"), at("b.jsonl")), 0);
    /* SIGINT to dakd run inside its training stage: 130, the same command again */
    snprintf(cmd, sizeof cmd, "%s run %s --set study.run_dir=%s --set train.steps_per_epoch=40",
             dk_test_cli(), study, at("sig_run"));
    CU_ASSERT_EQUAL(signal_after(cmd, at("sig_run/teacher/steps.jsonl"), 5, "INT"), 130);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "interrupted by SIGINT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "teacher: interrupted (its checkpoint remains)"));
    CU_ASSERT(!dk_test_exists(at("sig_run/teacher/stage.json")));
    CU_ASSERT_EQUAL(continue_as_printed(), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "resuming from its checkpoint"));
    CU_ASSERT_EQUAL(dakd("train %s --set train.steps_per_epoch=40 --set output.run_dir=%s", ini,
                         at("sig_run_ref")), 0);
    CU_ASSERT(same_bytes(at("sig_run/teacher/model.safetensors"),
                         at("sig_run_ref/model.safetensors")));
}

/* ------------------------------------------------------------------ full disk */

static void test_full_disk(void) {
    const char *rd = at("full"), *wide = "--set model.teacher_base=8"; /* a larger checkpoint */
    CU_ASSERT_EQUAL_FATAL(dakd("train %s %s --set output.run_dir=%s", ini, wide, rd), 0);
    const char *ck = at("full/checkpoint.safetensors"), *mf = at("full/model.safetensors");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "cp %s %s && cp %s %s", ck, at("ck.keep"), mf,
                                     at("model.keep")), 0);
    /* room for the config and the step log, not for the next checkpoint */
    long ckb = file_size(ck), cfg = file_size(at("full/config.ini"));
    long lim = ckb / 2;
    if (cfg >= lim) printf("\n  config.ini %ld bytes, checkpoint %ld\n", cfg, ckb);
    CU_ASSERT_FATAL(cfg < lim && 4 * file_size(at("full/steps.jsonl")) < lim);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train %s %s --set output.run_dir=%s --set train.epochs=4 "
             "--resume", dk_test_cli(), ini, wide, rd);
    CU_ASSERT_EQUAL(run_limited(lim, cmd), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ck));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "File too large"));
    CU_ASSERT(same_bytes(ck, at("ck.keep")));
    CU_ASSERT(same_bytes(mf, at("model.keep")));
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "ls -a %s | grep -q tmp", rd), 1);
    /* the report of test_eval_outputs: a new one that does not fit leaves it whole */
    const char *rep = at("ev_out/report.html");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "rm -rf %s && cp %s %s", at("ev_out/refs"), rep,
                                     at("report.keep")), 0);
    snprintf(cmd, sizeof cmd, "%s eval --pred %s --ref %s --out %s", dk_test_cli(),
             at("ev_pred"), at("ev_ref"), at("ev_out"));
    CU_ASSERT_EQUAL(run_limited(file_size(rep) / 2, cmd), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "File too large"));
    CU_ASSERT(same_bytes(rep, at("report.keep")));
    CU_ASSERT_EQUAL(dk_test_sh(NULL, 0, "ls -a %s | grep -q 'ev_out.*tmp'", dir), 1);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("faults", suite_init, NULL);
    if (!s || !CU_add_test(s, "predict and convert never write over an input",
                           test_predict_convert) ||
        !CU_add_test(s, "eval's output folder is not, nor holds, an input", test_eval_outputs) ||
        !CU_add_test(s, "run: run_dir and stage folders hold no input", test_run_outputs) ||
        !CU_add_test(s, "the folder lock: held, released, stale", test_lock) ||
        !CU_add_test(s, "resume before the first checkpoint starts again",
                     test_resume_without_checkpoint) ||
        !CU_add_test(s, "SIGTERM and SIGINT: checkpoint, message, continued", test_signals) ||
        !CU_add_test(s, "full disk: the previous checkpoint, model and report stay",
                     test_full_disk)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
