/*
 * CUnit suite for the study runner (lib/study, dakd/study.h) on a tiny study: generated
 * 2-D 32x32 phantoms, tiny U-Nets, one epoch of two steps per training stage.
 *  - parse errors name file and line: unknown key, bad stage name, unknown teacher, cycle,
 *    [output], an override of an unknown training key;
 *  - the study runs end to end (phantoms, teacher, student, distill, eval, report);
 *  - a rerun skips every stage and leaves every stage.json untouched;
 *  - changing one override reruns that stage and its dependents only; --from reruns from a
 *    stage on; a deleted stage.json reruns that stage and its dependents only;
 *  - a training stage stopped mid-run (a simulated kill) resumes from its checkpoint and
 *    ends with the same model file as an uninterrupted run;
 *  - manifest.json has its fields; the same study in two run folders gives identical
 *    model files and keys;
 *  - a stage folder the runner did not make is never deleted;
 *  - an adapt stage (AdaBN on the student's model) is evaluated and reported beside it;
 *  - a distill stage with two teachers of different width, depth, norm and up-sampling
 *    (teacher = a, b) and layer self-distillation runs, and is keyed on both teachers;
 *  - seeds = 42, 7 with the teacher pinned to one seed: one run per seed, each distilled
 *    run taught by the pinned teacher, per-seed skipping, the table over seeds with the
 *    paired difference to the baseline; impossible pairings and bad seed lists refused;
 *  - the study page (forest plot, learning curves) in headless Chromium;
 *  - `dakd run` through the binary: output, exit codes;
 *  - [study] jobs = 2: the same model files and table as one stage at a time, logs per
 *    stage, a failing stage named with its log, SIGTERM, the resume after it; bad values.
 */
#include "dakd/study.h"
#include "dakd/train.h"
#include "test_util.h"

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[1024], study[1200];
static int expect_failure; /* run_tiny prints a failure unless the test expects one */

static const char *tiny_study =
    "[study]\n"
    "name = tiny\n"
    "seed = 3\n"
    "threads = 1\n"
    "stages = phantoms, teacher, student, distill, eval_target, report\n"
    "\n"
    "[phantoms]\n"
    "dims = 2\n"
    "size = 32,32\n"
    "source_train = 4\n"
    "source_val = 1\n"
    "source_test = 2\n"
    "target_train = 4\n"
    "target_test = 2\n"
    "\n"
    "[model]\n"
    "teacher_base = 4\n"
    "teacher_levels = 2\n"
    "student_base = 2\n"
    "student_levels = 2\n"
    "\n"
    "[data]\n"
    "batch_size = 4\n"
    "\n"
    "[train]\n"
    "epochs = 1\n"
    "steps_per_epoch = 2\n"
    "checkpoint_every = 1\n"
    "optimizer = adamw\n"
    "lr = 0.01\n"
    "\n"
    "[stage.teacher]\n"
    "mode = teacher\n"
    "\n"
    "[stage.student]\n"
    "mode = student\n"
    "\n"
    "[stage.distill]\n"
    "mode = distill\n"
    "teacher = teacher\n"
    "distill.align = none\n"
    "\n"
    "[stage.eval_target]\n"
    "kind = eval\n"
    "models = teacher, student, distill\n"
    "domain = target\n"
    "split = test\n"
    "use_mask = false\n"
    "\n"
    "[stage.report]\n"
    "kind = report\n";

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int suite_init(void) {
    snprintf(dir, sizeof dir, "%s/study", dk_test_tmpdir());
    mkdir(dir, 0777);
    snprintf(study, sizeof study, "%s/tiny.ini", dir);
    return write_text(study, tiny_study) != 0;
}

/* Load the tiny study into run folder `run` with extra --set overrides and run it.
 * ran[i] receives dk_study_stage_ran. Returns the status. */
static dk_status run_tiny(const char *run, const char *const *extra, const char *from,
                          int64_t stop, int ran[8]) {
    const char *sets[16];
    char rd[1300];
    snprintf(rd, sizeof rd, "study.run_dir=%s/%s", dir, run);
    int n = 0;
    sets[n++] = rd;
    for (int i = 0; extra && extra[i] && n < 15; i++) sets[n++] = extra[i];
    sets[n] = NULL;
    dk_study *s = NULL;
    dk_status st = dk_study_load(&s, study, sets);
    if (st == DK_OK) {
        dk_study_opts o = {from, NULL, stop};
        st = dk_study_run(s, &o);
        for (int i = 0; i < dk_study_stage_count(s) && i < 8; i++) ran[i] = dk_study_stage_ran(s, i);
    }
    if (st != DK_OK && !expect_failure) printf("\n  study: %s\n", dk_last_error());
    dk_study_free(s);
    return st;
}

/* "phantoms, teacher, student, distill, eval_target, report" as a 0/1 string. */
static void ran_str(char *buf, const int ran[8]) {
    for (int i = 0; i < 6; i++) buf[i] = (char)('0' + ran[i]);
    buf[6] = '\0';
}

static double mtime_of(const char *run, const char *stage) {
    char p[1400];
    snprintf(p, sizeof p, "%s/%s/%s/stage.json", dir, run, stage);
    struct stat sb;
    if (stat(p, &sb) != 0) return -1;
    return (double)sb.st_mtim.tv_sec + 1e-9 * (double)sb.st_mtim.tv_nsec;
}

static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca, cb;
    long n = 0;
    while (same) {
        ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
        n++;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same && n > 0;
}

/* ---------------------------------------------------------------- parse errors */

/* Write `text` as a study file and expect dk_study_load to fail with `want` in the message
 * (which must start with the file name and the line). */
static void expect_error(const char *name, const char *text, int line, const char *want) {
    char path[1300], prefix[1400];
    snprintf(path, sizeof path, "%s/%s.ini", dir, name);
    CU_ASSERT_EQUAL_FATAL(write_text(path, text), 0);
    dk_study *s = NULL;
    dk_status st = dk_study_load(&s, path, NULL);
    CU_ASSERT_EQUAL(st, DK_ERR_ARG);
    CU_ASSERT_PTR_NULL(s);
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    const char *msg = dk_last_error();
    int ok = strncmp(msg, prefix, strlen(prefix)) == 0 && strstr(msg, want) != NULL;
    if (!ok) printf("\n  %s: got \"%s\", want \"%s...%s\"\n", name, msg, prefix, want);
    CU_ASSERT(ok);
    dk_study_free(s);
}

static void test_parse_errors(void) {
    const char *head = "[study]\nrun_dir = x\nstages = teacher\n[stage.teacher]\nmode = teacher\n";
    char buf[2048];
    snprintf(buf, sizeof buf, "%s[train]\nepochz = 3\n", head);
    expect_error("unknown_key", buf, 7, "epochz");
    expect_error("unknown_study_key", "[study]\nrun_dir = x\nnmae = a\n", 3, "nmae");
    expect_error("bad_stage", "[study]\nrun_dir = x\nstages = teacher, nope\n"
                              "[stage.teacher]\nmode = teacher\n", 3, "unknown stage 'nope'");
    expect_error("bad_stage_chars", "[study]\nrun_dir = x\nstages = a\n[stage.Bad-Name]\n"
                                    "mode = teacher\n", 5, "bad stage name");
    expect_error("unknown_teacher", "[study]\nrun_dir = x\nstages = teacher, kd\n"
                                    "[stage.teacher]\nmode = teacher\n[stage.kd]\nmode = distill\n"
                                    "teacher = techer\n", 8, "teacher = techer");
    expect_error("cycle", "[study]\nrun_dir = x\nstages = a, b\n[stage.a]\nmode = distill\n"
                          "teacher = b\n[stage.b]\nmode = distill\nteacher = a\n", 6,
                 "dependency cycle a -> b -> a");
    expect_error("order", "[study]\nrun_dir = x\nstages = kd, t\n[stage.t]\nmode = teacher\n"
                          "[stage.kd]\nmode = distill\nteacher = t\n", 3, "comes after it");
    snprintf(buf, sizeof buf, "%s[output]\nrun_dir = y\n", head);
    expect_error("output", buf, 7, "[output]");
    expect_error("bad_jobs", "[study]\nrun_dir = x\njobs = 0\n", 3,
                 "[study] jobs = 0 is out of range [1, 64]");
    snprintf(buf, sizeof buf, "%strain.epochz = 2\n", head);
    expect_error("override", buf, 6, "epochz");
    expect_error("bad_mode", "[study]\nrun_dir = x\nstages = t\n[stage.t]\nmode = teachr\n", 5,
                 "mode");
    expect_error("adapt_no_model", "[study]\nrun_dir = x\nstages = a\n[stage.a]\nkind = adapt\n"
                                   "domain = target\n", 5, "needs model = <train stage>");
    expect_error("adapt_of_eval", "[study]\nrun_dir = x\nstages = t, e, a\n[stage.t]\n"
                                  "mode = teacher\n[stage.e]\nkind = eval\nmodels = t\n"
                                  "domain = target\n[stage.a]\nkind = adapt\nmodel = e\n"
                                  "domain = target\n", 12, "not a stage of kind train");
    snprintf(buf, sizeof buf, "%s[distill]\nextra_teachers = a.safetensors\n", head);
    expect_error("extra_teachers", buf, 7, "distill.extra_teachers: the study runner sets");
    snprintf(buf, sizeof buf, "%smodel.teacher_checkpoint = a.safetensors\n", head);
    expect_error("teacher_checkpoint", buf, 6, "model.teacher_checkpoint: the study runner");
    expect_error("unknown_second_teacher", "[study]\nrun_dir = x\nstages = t, kd\n"
                                           "[stage.t]\nmode = teacher\n[stage.kd]\n"
                                           "mode = distill\nteacher = t, u\n", 8,
                 "teacher = u: not a stage");
    expect_error("eval_of_report", "[study]\nrun_dir = x\nstages = r, e\n[stage.r]\n"
                                   "kind = report\n[stage.e]\nkind = eval\nmodels = r\n"
                                   "domain = target\n", 8, "of kind train or adapt");
    /* no [study] stages: phantoms, then the sections in file order (and a bad order still
     * fails) */
    char noli[1300];
    snprintf(noli, sizeof noli, "%s/no_list.ini", dir);
    CU_ASSERT_EQUAL_FATAL(write_text(noli, "[study]\nrun_dir = x\n[phantoms]\nseed = 1\n"
                                           "[stage.t]\nmode = teacher\n[stage.kd]\n"
                                           "mode = distill\nteacher = t\n[stage.s]\n"
                                           "mode = student\n"), 0);
    dk_study *s = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_study_load(&s, noli, NULL), DK_OK);
    const char *order[] = {"phantoms", "t", "kd", "s"};
    CU_ASSERT_EQUAL(dk_study_stage_count(s), 4);
    for (int i = 0; i < 4 && i < dk_study_stage_count(s); i++)
        CU_ASSERT_STRING_EQUAL(dk_study_stage_name(s, i), order[i]);
    dk_study_free(s);
    /* lists go on over indented lines (a stage list longer than a line); the stages are
     * those of the joined list, in its order; any other key refuses an indented line */
    char multi[1300];
    snprintf(multi, sizeof multi, "%s/multi_line.ini", dir);
    CU_ASSERT_EQUAL_FATAL(write_text(multi, "[study]\nrun_dir = x\nstages = t, kd,\n"
                                            "    s,\n\te\n[stage.t]\nmode = teacher\n"
                                            "[stage.kd]\nmode = distill\nteacher = t\n"
                                            "[stage.s]\nmode = student\n[stage.e]\n"
                                            "kind = eval\ndomain = target\nmodels = t,\n"
                                            "  kd, s\n"), 0);
    s = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_study_load(&s, multi, NULL), DK_OK);
    const char *morder[] = {"t", "kd", "s", "e"};
    CU_ASSERT_EQUAL(dk_study_stage_count(s), 4);
    for (int i = 0; i < 4 && i < dk_study_stage_count(s); i++)
        CU_ASSERT_STRING_EQUAL(dk_study_stage_name(s, i), morder[i]);
    dk_study_free(s);
    expect_error("continued_label", "[study]\nrun_dir = x\nstages = t\n[stage.t]\n"
                                    "mode = teacher\nlabel = a\n  b\n", 7,
                 "an indented line goes on with the value of [stage.t] label");
    expect_error("continued_shared", "[study]\nrun_dir = x\nstages = t\n[stage.t]\n"
                                     "mode = teacher\n[train]\nepochs = 2\n 3\n", 8,
                 "an indented line goes on with the value of [train] epochs");
    s = NULL;
    CU_ASSERT_EQUAL(dk_study_load(&s, "/nonexistent/study.ini", NULL), DK_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    /* overrides given with the file are named as such, by key, never by a command-line flag */
    char path[1300];
    snprintf(path, sizeof path, "%s/sets.ini", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(head, f);
    fclose(f);
    const char *bad[][2] = {{"train.epochz=2", "override: unknown key train.epochz"},
                            {"epochs", "override 'epochs': expected section.key=value"},
                            {"output.run_dir=y", "override: [output] run_dir"},
                            {"stage.Bad.mode=teacher", "override: [stage.Bad]: bad stage name"},
                            {"study.jobs=65", "override: [study] jobs = 65 is out of range"}};
    for (int i = 0; i < 5; i++) {
        const char *sets[] = {bad[i][0], NULL};
        CU_ASSERT_EQUAL(dk_study_load(&s, path, sets), DK_ERR_ARG);
        const char *m = dk_last_error();
        if (!strstr(m, bad[i][1]) || strstr(m, "--")) printf("\n    %s -> %s\n", bad[i][0], m);
        CU_ASSERT(strstr(m, bad[i][1]) && !strstr(m, "--"));
    }
}

/* ---------------------------------------------------------------- runs */

static void test_end_to_end_and_rerun(void) {
    int ran[8] = {0};
    char got[8];
    CU_ASSERT_EQUAL_FATAL(run_tiny("a", NULL, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    CU_ASSERT_STRING_EQUAL(got, "111111");
    const char *stages[] = {"phantoms", "teacher", "student", "distill", "eval_target", "report"};
    double before[6];
    for (int i = 0; i < 6; i++) {
        before[i] = mtime_of("a", stages[i]);
        CU_ASSERT(before[i] > 0);
    }
    char p[1400];
    snprintf(p, sizeof p, "%s/a/report/report.html", dir);
    CU_ASSERT(dk_test_exists(p));
    snprintf(p, sizeof p, "%s/a/eval_target/distill/report/report.html", dir);
    CU_ASSERT(dk_test_exists(p));
    /* a rerun skips every stage and touches no stage.json */
    memset(ran, 0, sizeof ran);
    CU_ASSERT_EQUAL_FATAL(run_tiny("a", NULL, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    CU_ASSERT_STRING_EQUAL(got, "000000");
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(mtime_of("a", stages[i]), before[i]);
}

/* A case list with a spacing column (a copy of run a's phantoms): an eval stage with
 * distance_unit = voxels says so in the table's HD95 header and its per-case report; one
 * case's spacing changed reruns every stage that reads the list, the phantoms aside. */
static void test_spacing_and_voxels(void) {
    char ph[1300], set_cases[1400], got[8];
    snprintf(ph, sizeof ph, "%s/sp_phantoms", dir);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "rm -rf %s && cp -r %s/a/phantoms %s && sed -i "
                                     "'1s/$/,spacing/; 2,$s/$/,1x1x1/' %s/cases.csv", ph, dir,
                                     ph, ph), 0);
    snprintf(set_cases, sizeof set_cases, "data.cases=%s/cases.csv", ph);
    const char *sets[] = {set_cases, "study.stages=phantoms, teacher, eval_target, report",
                          "stage.eval_target.models=teacher",
                          "stage.eval_target.distance_unit=voxels", NULL};
    int ran[8] = {0};
    CU_ASSERT_EQUAL_FATAL(run_tiny("sp", sets, NULL, 0, ran), DK_OK);
    char p[1400];
    snprintf(p, sizeof p, "%s/sp/report/report.md", dir);
    char *md = dk_test_slurp(p);
    CU_ASSERT(md && strstr(md, "| HD95 eval_target (voxels) |") && strstr(md, "HD95 (voxels)"));
    CU_ASSERT(md && strstr(md, "whole image, distances in voxels"));
    free(md);
    snprintf(p, sizeof p, "%s/sp/eval_target/teacher/report/summary.md", dir);
    md = dk_test_slurp(p);
    CU_ASSERT(md && strstr(md, "hd95 (voxels)") && strstr(md, "from the spacing column"));
    free(md);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "sed -i '2s/,1x1x1$/,1x1x2/' %s/cases.csv", ph), 0);
    CU_ASSERT_EQUAL_FATAL(run_tiny("sp", sets, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    got[4] = '\0';
    CU_ASSERT_STRING_EQUAL(got, "0111"); /* phantoms, teacher, eval_target, report */
    CU_ASSERT_EQUAL_FATAL(run_tiny("sp", sets, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    got[4] = '\0';
    CU_ASSERT_STRING_EQUAL(got, "0000");
}

/* The overrides the study in folder "a" has after test_override_reruns_dependents. */
static const char *const both_lr[] = {"stage.student.train.lr=0.02",
                                      "stage.teacher.train.lr=0.02", NULL};

static void test_override_reruns_dependents(void) {
    int ran[8] = {0};
    char got[8];
    const char *sets[] = {"stage.student.train.lr=0.02", NULL};
    CU_ASSERT_EQUAL_FATAL(run_tiny("a", sets, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    CU_ASSERT_STRING_EQUAL(got, "001011"); /* student, eval, report */
    /* the teacher's change reaches the distilled student too */
    CU_ASSERT_EQUAL_FATAL(run_tiny("a", both_lr, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    CU_ASSERT_STRING_EQUAL(got, "010111");
}

static void test_from_and_deleted_stage(void) {
    int ran[8] = {0};
    char got[8];
    CU_ASSERT_EQUAL_FATAL(run_tiny("a", both_lr, "distill", 0, ran), DK_OK);
    ran_str(got, ran);
    CU_ASSERT_STRING_EQUAL(got, "000111");
    char p[1400];
    snprintf(p, sizeof p, "%s/a/teacher/stage.json", dir);
    CU_ASSERT_EQUAL(remove(p), 0);
    CU_ASSERT_EQUAL_FATAL(run_tiny("a", both_lr, NULL, 0, ran), DK_OK);
    ran_str(got, ran);
    CU_ASSERT_STRING_EQUAL(got, "010111"); /* teacher and its dependents, not the student */
    dk_study *s = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_study_load(&s, study, NULL), DK_OK);
    dk_study_opts o = {"nosuch", NULL, 0};
    CU_ASSERT_EQUAL(dk_study_run(s, &o), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "nosuch"));
    dk_study_free(s);
}

/* A stage folder the runner did not make is never deleted. */
static void test_foreign_folder_kept(void) {
    char p[1400];
    snprintf(p, sizeof p, "%s/foreign", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/foreign/teacher", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/foreign/teacher/notes.txt", dir);
    CU_ASSERT_EQUAL_FATAL(write_text(p, "mine\n"), 0);
    int ran[8] = {0};
    expect_failure = 1;
    dk_status st = run_tiny("foreign", NULL, NULL, 0, ran);
    expect_failure = 0;
    CU_ASSERT_EQUAL(st, DK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "refusing"));
    CU_ASSERT(dk_test_exists(p));
    /* a runner killed while writing the marker leaves its temporary file alone in the folder:
     * that folder is the runner's, cleared and run */
    CU_ASSERT_EQUAL(remove(p), 0);
    snprintf(p, sizeof p, "%s/foreign/teacher/..dakd-stage.4242.0.tmp", dir);
    CU_ASSERT_EQUAL_FATAL(write_text(p, ""), 0);
    memset(ran, 0, sizeof ran);
    CU_ASSERT_EQUAL(run_tiny("foreign", NULL, NULL, 0, ran), DK_OK);
    CU_ASSERT(!dk_test_exists(p));
}

static const char *str_at(const cJSON *j, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, a), b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

static void test_manifest(void) {
    char p[1400];
    snprintf(p, sizeof p, "%s/a/manifest.json", dir);
    cJSON *m = read_json(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(str_at(m, "dakd", "version"));
    CU_ASSERT_PTR_NOT_NULL(str_at(m, "dakd", "commit"));
    const char *libs[] = {"openblas_kernel", "openblas_config", "itk", "nifticlib", "libpng",
                          "zlib", "cjson", "inih", "openssl"};
    for (int i = 0; i < 9; i++) CU_ASSERT_PTR_NOT_NULL(str_at(m, "libraries", libs[i]));
    CU_ASSERT_PTR_NOT_NULL(str_at(m, "machine", "uname"));
    CU_ASSERT_PTR_NOT_NULL(str_at(m, "machine", "cpu"));
    const cJSON *mach = cJSON_GetObjectItemCaseSensitive(m, "machine");
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(mach, "cores")));
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(mach, "memory_bytes")));
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(mach, "threads")));
    CU_ASSERT_EQUAL(strlen(str_at(m, "study", "file_sha256") ? str_at(m, "study", "file_sha256")
                                                              : ""), 64);
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(m, "stages");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(stages), 6);
    const cJSON *teacher = cJSON_GetArrayItem(stages, 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(teacher, "name")->valuestring,
                           "teacher");
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(teacher, "seconds")));
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(teacher, "seed")));
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(teacher, "config");
    CU_ASSERT(cJSON_IsString(cfg) && strstr(cfg->valuestring, "train.seed=3"));
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(teacher, "inputs");
    /* the CSV, 13 images, the 7 source labels: the teacher never reads the 6 target ones */
    CU_ASSERT(cJSON_GetArraySize(inputs) == 1 + 13 + 7);
    cJSON_Delete(m);
}

/* The same study into two folders: same keys, same model files, bit for bit. A run stopped
 * mid-training and resumed ends with the uninterrupted run's model. */
static void test_determinism_and_resume(void) {
    int ran[8] = {0};
    const char *sets[] = {"train.epochs=2", NULL};
    CU_ASSERT_EQUAL_FATAL(run_tiny("b", sets, NULL, 0, ran), DK_OK);
    CU_ASSERT_EQUAL_FATAL(run_tiny("c", sets, NULL, 3, ran), DK_OK); /* stops in the teacher */
    char p[1400], q[1400];
    snprintf(p, sizeof p, "%s/c/teacher/stage.json", dir);
    CU_ASSERT(!dk_test_exists(p));
    snprintf(p, sizeof p, "%s/c/teacher/checkpoint.safetensors", dir);
    CU_ASSERT(dk_test_exists(p));
    CU_ASSERT_EQUAL_FATAL(run_tiny("c", sets, NULL, 0, ran), DK_OK);
    snprintf(p, sizeof p, "%s/c/teacher/stage.json", dir);
    cJSON *rec = read_json(p);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(rec, "result");
    CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "resumed")));
    cJSON *rb;
    snprintf(q, sizeof q, "%s/b/teacher/stage.json", dir);
    rb = read_json(q);
    const cJSON *ka = cJSON_GetObjectItemCaseSensitive(rec, "key");
    const cJSON *kb = cJSON_GetObjectItemCaseSensitive(rb, "key");
    CU_ASSERT(cJSON_IsString(ka) && cJSON_IsString(kb) &&
              strcmp(ka->valuestring, kb->valuestring) == 0);
    cJSON_Delete(rec);
    cJSON_Delete(rb);
    /* and the same scores */
    snprintf(p, sizeof p, "%s/b/eval_target/stage.json", dir);
    snprintf(q, sizeof q, "%s/c/eval_target/stage.json", dir);
    cJSON *eb = read_json(p), *ec = read_json(q);
    const char *stages[] = {"teacher", "student", "distill"};
    for (int i = 0; i < 3; i++) {
        const cJSON *mb = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(eb, "result"),
                                             "models"), stages[i]);
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ec, "result"),
                                             "models"), stages[i]);
        const cJSON *db = cJSON_GetObjectItemCaseSensitive(mb, "dice_mean");
        const cJSON *dc = cJSON_GetObjectItemCaseSensitive(mc, "dice_mean");
        CU_ASSERT(cJSON_IsNumber(db) && cJSON_IsNumber(dc) && db->valuedouble == dc->valuedouble);
    }
    cJSON_Delete(eb);
    cJSON_Delete(ec);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/b/%s/model.safetensors", dir, stages[i]);
        snprintf(q, sizeof q, "%s/c/%s/model.safetensors", dir, stages[i]);
        int same = same_file(p, q);
        if (!same) printf("\n  %s differs between run folders\n", stages[i]);
        CU_ASSERT(same);
    }
}

/* ---------------------------------------------------------------- seeds */

static const char *const seeded[] = {"study.seeds=42, 7", "stage.teacher.seeds=42",
                                     "study.baseline=student",
                                     "study.compare=distill - student, student - distill", NULL};

static double json_num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The over_seeds object of row `stage` on eval_target in report.json (j owns it). */
static const cJSON *over_seeds(const cJSON *j, const char *stage) {
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(j, "rows")) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(row, "stage");
        if (!cJSON_IsString(st) || strcmp(st->valuestring, stage)) continue;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(row, "evals"), "eval_target");
        return cJSON_GetObjectItemCaseSensitive(e, "over_seeds");
    }
    return NULL;
}

/* seeds = 42, 7 with the teacher pinned to 42: one run per seed in <stage>/seed<N>/, both
 * distilled runs taught by teacher/seed42, per-seed keys and skipping, the table over seeds
 * with the paired difference to the baseline; pairings that cannot work are refused. */
static void test_seeds(void) {
    int ran[8] = {0};
    char got[16], p[1400];
    CU_ASSERT_EQUAL_FATAL(run_tiny("seeds", seeded, NULL, 0, ran), DK_OK);
    for (int i = 0; i < 8; i++) got[i] = (char)('0' + ran[i]);
    got[8] = '\0';
    CU_ASSERT_STRING_EQUAL(got, "11111111"); /* phantoms teacher 2 students 2 distills eval report */
    const char *files[] = {"teacher/seed42/model.safetensors", "student/seed42/model.safetensors",
                           "student/seed7/model.safetensors", "distill/seed7/model.safetensors",
                           "eval_target/distill/seed7/report/report.html"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/seeds/%s", dir, files[i]);
        CU_ASSERT(dk_test_exists(p));
    }
    char q[1400];
    snprintf(p, sizeof p, "%s/seeds/student/seed42/model.safetensors", dir);
    snprintf(q, sizeof q, "%s/seeds/student/seed7/model.safetensors", dir);
    CU_ASSERT(!same_file(p, q)); /* another seed, another model */
    snprintf(p, sizeof p, "%s/seeds/distill/seed7/stage.json", dir);
    cJSON *rec = read_json(p);
    CU_ASSERT(json_num(rec, "seed") == 7);
    cJSON_Delete(rec);
    snprintf(p, sizeof p, "%s/seeds/distill/seed7/config.ini", dir);
    FILE *f = fopen(p, "r");
    char line[2048];
    int pinned = 0;
    while (f && fgets(line, sizeof line, f)) pinned |= strstr(line, "/teacher/seed42/") != NULL;
    if (f) fclose(f);
    CU_ASSERT(pinned);
    /* the table: mean over seeds, interval around it, the paired difference to student */
    snprintf(p, sizeof p, "%s/seeds/report/report.json", dir);
    rec = read_json(p);
    const cJSON *d = over_seeds(rec, "distill"), *b = over_seeds(rec, "student");
    CU_ASSERT_FATAL(d && b);
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(d, "seed_dice");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(sd), 2);
    double mean = (cJSON_GetArrayItem(sd, 0)->valuedouble + cJSON_GetArrayItem(sd, 1)->valuedouble) / 2;
    CU_ASSERT_DOUBLE_EQUAL(json_num(d, "dice"), mean, 1e-12);
    CU_ASSERT(json_num(d, "dice_ci_lo") <= mean && mean <= json_num(d, "dice_ci_hi"));
    /* two runs of the same cases: the paired difference is the difference of the means */
    CU_ASSERT_DOUBLE_EQUAL(json_num(d, "diff"), mean - json_num(b, "dice"), 1e-12);
    CU_ASSERT(json_num(d, "diff_ci_lo") <= json_num(d, "diff") &&
              json_num(d, "diff") <= json_num(d, "diff_ci_hi"));
    CU_ASSERT(json_num(d, "wilcoxon_p") > 0 && json_num(d, "wilcoxon_p") <= 1);
    CU_ASSERT(isnan(json_num(b, "diff"))); /* the baseline has no difference to itself */
    /* [study] compare: distill - student is the table's difference, student - distill its
     * negative with the interval mirrored */
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(rec, "comparisons");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(cmp), 2);
    const cJSON *c0 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cmp, 0), "evals"), "eval_target");
    const cJSON *c1 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cmp, 1), "evals"), "eval_target");
    CU_ASSERT_FATAL(c0 && c1);
    CU_ASSERT_DOUBLE_EQUAL(json_num(c0, "diff"), json_num(d, "diff"), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(json_num(c0, "wilcoxon_p"), json_num(d, "wilcoxon_p"), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(json_num(c1, "diff"), -json_num(d, "diff"), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_num(c1, "diff_ci_lo"), -json_num(d, "diff_ci_hi"), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_num(c1, "wilcoxon_p"), json_num(d, "wilcoxon_p"), 1e-12);
    /* per seed: each seed's case-mean Dice minus the other's at the same seed, mirrored */
    const cJSON *p0 = cJSON_GetObjectItemCaseSensitive(c0, "per_seed"),
                *p1 = cJSON_GetObjectItemCaseSensitive(c1, "per_seed"),
                *bd = cJSON_GetObjectItemCaseSensitive(b, "seed_dice");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(p0), 2);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(p1), 2);
    int agree = 1;
    for (int k = 0; k < 2; k++) {
        double want =
            cJSON_GetArrayItem(sd, k)->valuedouble - cJSON_GetArrayItem(bd, k)->valuedouble;
        const cJSON *e0 = cJSON_GetArrayItem(p0, k), *e1 = cJSON_GetArrayItem(p1, k);
        CU_ASSERT(json_num(e0, "seed") == (k ? 7 : 42));
        CU_ASSERT_DOUBLE_EQUAL(json_num(e0, "diff"), want, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(json_num(e1, "diff"), -want, 1e-12);
        agree &= json_num(c0, "diff") > 0 ? want > 0 : json_num(c0, "diff") < 0 && want < 0;
    }
    CU_ASSERT_EQUAL(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c0, "seeds_agree")), agree);
    CU_ASSERT_EQUAL(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c1, "seeds_agree")), agree);
    cJSON_Delete(rec);
    snprintf(p, sizeof p, "%s/seeds/report/report.md", dir);
    char md[1 << 16];
    FILE *mf = fopen(p, "r");
    size_t mn = mf ? fread(md, 1, sizeof md - 1, mf) : 0;
    if (mf) fclose(mf);
    md[mn] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| student − distill |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| per seed eval_target |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, " 42: "));
    snprintf(p, sizeof p, "%s/seeds/report/report.html", dir);
    FILE *h = fopen(p, "r");
    static char html[1 << 20];
    size_t n = h ? fread(html, 1, sizeof html - 1, h) : 0;
    if (h) fclose(h);
    html[n] = '\0';
    CU_ASSERT(strstr(html, "<svg class=\"forest\"") && strstr(html, "<svg class=\"curve\"") &&
              strstr(html, "eval_target/distill/seed7/report/report.html"));
    /* a rerun skips every run; a deleted stage.json reruns that seed and what reads it */
    CU_ASSERT_EQUAL_FATAL(run_tiny("seeds", seeded, NULL, 0, ran), DK_OK);
    for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(ran[i], 0);
    snprintf(p, sizeof p, "%s/seeds/student/seed7/stage.json", dir);
    remove(p);
    CU_ASSERT_EQUAL_FATAL(run_tiny("seeds", seeded, NULL, 0, ran), DK_OK);
    for (int i = 0; i < 8; i++) got[i] = (char)('0' + ran[i]);
    CU_ASSERT_STRING_EQUAL(got, "00010011");
    /* refusals, naming the file and the line */
    const char *two_teachers[] = {"study.seeds=42, 7", "stage.teacher.seeds=1, 2", NULL};
    expect_failure = 1;
    CU_ASSERT_EQUAL(run_tiny("never", two_teachers, NULL, 0, ran), DK_ERR_ARG);
    snprintf(p, sizeof p, "%s:40: [stage.distill] at seed 42: teacher", study);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), p));
    const char *bad[][2] = {{"study.seeds=4, 4", "distinct"},
                            {"stage.eval_target.seeds=1", "only train and adapt"},
                            {"study.baseline=eval_target", "baseline = eval_target"},
                            {"study.compare=distill + student", "\"distill + student\" is not"},
                            {"study.compare=distill - eval_target", "eval_target is not a train"},
                            {"study.compare=student - student", "with itself"}};
    for (int i = 0; i < 6; i++) {
        const char *sets[] = {bad[i][0], NULL};
        CU_ASSERT_EQUAL(run_tiny("never", sets, NULL, 0, ran), DK_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), bad[i][1]));
    }
    expect_failure = 0;
}

/* The study page in headless Chromium: it loads without a console message, and the forest
 * plot and the learning curves are in the rendered DOM. */
static void test_report_in_chromium(void) {
    if (dk_test_sh(NULL, 0, "command -v chromium") != 0) {
        dk_test_skip("chromium", "no chromium on PATH");
        return;
    }
    char html[1400], dom[1400], log[1400];
    snprintf(html, sizeof html, "%s/seeds/report/report.html", dir);
    CU_ASSERT_FATAL(dk_test_exists(html));
    snprintf(dom, sizeof dom, "%s", dk_test_path(dir, "dom.html"));
    snprintf(log, sizeof log, "%s", dk_test_path(dir, "chromium.log"));
    CU_ASSERT_EQUAL(dk_test_chromium_dom(dir, html, dom, log), 0);
    static char d[1 << 21], l[1 << 16];
    FILE *f = fopen(dom, "r");
    size_t n = f ? fread(d, 1, sizeof d - 1, f) : 0;
    if (f) fclose(f);
    d[n] = '\0';
    f = fopen(log, "r");
    n = f ? fread(l, 1, sizeof l - 1, f) : 0;
    if (f) fclose(f);
    l[n] = '\0';
    CU_ASSERT(strstr(d, "<svg class=\"forest\"") && strstr(d, "<circle") &&
              strstr(d, "<polyline") && strstr(d, "</html>"));
    CU_ASSERT_PTR_NULL(strstr(l, "Uncaught"));
    CU_ASSERT_PTR_NULL(strstr(l, "CONSOLE"));
}

/* "source only + AdaBN": an adapt stage of the student, evaluated and reported beside it. */
static void test_adapt_stage(void) {
    const char *sets[] = {"study.stages=phantoms, student, student_adabn, eval_target, report",
                          "stage.student_adabn.kind=adapt", "stage.student_adabn.model=student",
                          "stage.student_adabn.domain=target", "stage.student_adabn.split=train",
                          "stage.eval_target.models=student, student_adabn", NULL};
    int ran[8] = {0};
    CU_ASSERT_EQUAL_FATAL(run_tiny("adapt", sets, NULL, 0, ran), DK_OK);
    CU_ASSERT(ran[0] && ran[1] && ran[2] && ran[3] && ran[4]);
    char p[1400];
    snprintf(p, sizeof p, "%s/adapt/student_adabn/stage.json", dir);
    cJSON *rec = read_json(p);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(rec, "result");
    const cJSON *patches = cJSON_GetObjectItemCaseSensitive(res, "patches");
    CU_ASSERT(cJSON_IsNumber(patches) && patches->valuedouble == 50 * 4);
    CU_ASSERT_STRING_EQUAL(str_at(rec, "result", "model") ? str_at(rec, "result", "model") : "",
                           dk_test_path(dir, "adapt/student_adabn/model.safetensors"));
    cJSON_Delete(rec);
    /* evaluated (its own model file, not the student's) and a row of the table */
    snprintf(p, sizeof p, "%s/adapt/eval_target/stage.json", dir);
    rec = read_json(p);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rec, "result"), "models");
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(models, "student_adabn"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(models, "student"));
    cJSON_Delete(rec);
    snprintf(p, sizeof p, "%s/adapt/report/report.json", dir);
    rec = read_json(p);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "rows")), 2);
    cJSON_Delete(rec);
    snprintf(p, sizeof p, "%s/adapt/student_adabn/model.safetensors", dir);
    char q[1400];
    snprintf(q, sizeof q, "%s/adapt/student/model.safetensors", dir);
    CU_ASSERT(dk_test_exists(p) && !same_file(p, q));
    /* a rerun skips it */
    CU_ASSERT_EQUAL_FATAL(run_tiny("adapt", sets, NULL, 0, ran), DK_OK);
    CU_ASSERT(!ran[2]);
}

/* teacher = teacher, teacher_b: a second teacher of another width, depth, norm and
 * up-sampling joins through extra_teachers (confidence weights), the student's heads learn
 * its own output (self_distill = layers); the stage depends on and is keyed on both. */
static void test_two_teachers_stage(void) {
    const char *sets[] = {"study.stages=phantoms, teacher, teacher_b, distill, eval_target, report",
                          "stage.teacher_b.mode=teacher",
                          "stage.teacher_b.model.teacher_base=6",
                          "stage.teacher_b.model.teacher_levels=3",
                          "stage.teacher_b.model.teacher_norm=instance",
                          "stage.teacher_b.model.teacher_up=interp",
                          "stage.distill.teacher=teacher, teacher_b",
                          "stage.distill.distill.teacher_combine=confidence",
                          "stage.distill.distill.self_distill=layers",
                          "stage.distill.model.student_deep_supervision=true",
                          "stage.distill.model.student_levels=3",
                          "stage.eval_target.models=teacher, teacher_b, distill",
                          NULL};
    int ran[8] = {0};
    CU_ASSERT_EQUAL_FATAL(run_tiny("two", sets, NULL, 0, ran), DK_OK);
    CU_ASSERT(ran[0] && ran[1] && ran[2] && ran[3] && ran[4] && ran[5]);
    char p[1400], want[1400];
    snprintf(p, sizeof p, "%s/two/distill/config.ini", dir);
    dk_train_config c;
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_load(&c, p), DK_OK);
    snprintf(want, sizeof want, "%s/two/teacher_b/best.safetensors", dir);
    CU_ASSERT_STRING_EQUAL(c.extra_teachers, want);
    CU_ASSERT_EQUAL(c.self_distill, DK_SELF_LAYERS);
    /* the heads were trained: every step logs L_self > 0 */
    snprintf(p, sizeof p, "%s/two/distill/steps.jsonl", dir);
    FILE *f = fopen(p, "r");
    CU_ASSERT_FATAL(f != NULL);
    char line[4096];
    int steps = 0, with_self = 0;
    while (fgets(line, sizeof line, f)) {
        steps++;
        const char *k = strstr(line, "\"self\":");
        with_self += k && atof(k + 7) > 0;
    }
    fclose(f);
    CU_ASSERT(steps == 2 && with_self == 2);
    /* a change of the second teacher reruns the distill stage */
    const char *more[16];
    int n = 0;
    for (; sets[n]; n++) more[n] = sets[n];
    more[n++] = "stage.teacher_b.model.teacher_base=5";
    more[n] = NULL;
    CU_ASSERT_EQUAL_FATAL(run_tiny("two", more, NULL, 0, ran), DK_OK);
    CU_ASSERT(!ran[1] && ran[2] && ran[3]);
}

/* ---------------------------------------------------------------- CLI */

static void test_cli(void) {
    static char out[65536];
    const char *cli = dk_test_cli();
    int rc = dk_test_sh(out, sizeof out, "'%s' run '%s' --set study.run_dir='%s/cli' 2>&1", cli,
                        study, dir);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "| model | stage | params |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "report: "));
    rc = dk_test_sh(out, sizeof out, "'%s' run '%s' --set study.run_dir='%s/cli' 2>&1", cli,
                    study, dir);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[2/6] teacher: up to date"));
    CU_ASSERT_PTR_NULL(strstr(out, "running"));
    rc = dk_test_sh(out, sizeof out, "'%s' run '%s' --set study.run_dir='%s/cli' --from nope "
                    "2>&1", cli, study, dir);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--from nope"));
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/unknown_key.ini", dir);
    rc = dk_test_sh(out, sizeof out, "'%s' run '%s' 2>&1", cli, bad);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ":7: "));
    rc = dk_test_sh(out, sizeof out, "'%s' run /nonexistent.ini 2>&1", cli);
    CU_ASSERT_EQUAL(rc, 2);
    rc = dk_test_sh(out, sizeof out, "'%s' run 2>&1", cli);
    CU_ASSERT_EQUAL(rc, 1);
    rc = dk_test_sh(out, sizeof out, "'%s' run --help", cli);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--from STAGE"));
}

/* [study] jobs = 2 through the binary (a fresh process: a child forked after OpenMP ran
 * with more threads would hang, study_jobs.c): the same model files and table as one stage
 * at a time, each stage's output in its run.log; a failing stage stops the study, naming
 * the stage and its log, while the one beside it finishes; SIGTERM reaches the children,
 * leaves no process and no stage.json of an unfinished stage, and the next run resumes. */
static void test_jobs(void) {
    static char out[65536];
    const char *cli = dk_test_cli();
    int rc = dk_test_sh(out, sizeof out, "cd '%s' && '%s' run tiny.ini --set study.run_dir=jobs1 "
                        "> jobs1.out && '%s' run tiny.ini --set study.run_dir=jobs2 --set "
                        "study.jobs=2 > jobs2.out", dir, cli, cli);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    rc = dk_test_sh(out, sizeof out, "cd '%s' && for r in jobs1 jobs2; do (cd $r && find . "
                    "-name '*.safetensors' ! -name checkpoint.safetensors | sort | xargs "
                    "sha256sum) > $r.sha; grep '^| ' $r.out | awk -F'|' 'NF>7{print $2,$3,$4,"
                    "$5,$6}' > $r.tab; done; test $(wc -l < jobs1.sha) = 6 && test $(wc -l < "
                    "jobs1.tab) = 4 && cmp jobs1.sha jobs2.sha && cmp jobs1.tab jobs2.tab && "
                    "! grep -q log: jobs1.out && grep -q 'epoch 1/1' jobs2/teacher/run.log && "
                    "cat jobs2.out", dir);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[2/6] teacher: running (train, teacher) — log: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[4/6] distill: running (train, distill) — log: "
                                       "jobs2/distill/run.log\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[4/6] distill: done in "));
    /* the student cannot find its cases: the teacher beside it (made slower than that
     * failure) finishes, and nothing starts after it */
    rc = dk_test_sh(out, sizeof out, "cd '%s' && '%s' run tiny.ini --set study.run_dir=jobsf "
                    "--set study.jobs=2 --set stage.student.data.source=nowhere --set "
                    "stage.teacher.train.epochs=30", dir, cli);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(strstr(out, "stage student failed (exit status 1): ") &&
              strstr(out, "(domain = nowhere, split = train)") &&
              strstr(out, "(log: jobsf/student/run.log)"));
    char p[1400];
    snprintf(p, sizeof p, "%s/jobsf/teacher/stage.json", dir);
    CU_ASSERT(dk_test_exists(p));
    snprintf(p, sizeof p, "%s/jobsf/distill", dir);
    CU_ASSERT(!dk_test_exists(p));
    /* SIGTERM to the parent mid-training (run_dir in a variable so that pgrep finds dakd,
     * not this shell) */
    rc = dk_test_sh(out, sizeof out, "cd '%s' && r=jobs; r=${r}int; '%s' run tiny.ini --set "
                    "study.run_dir=$r --set study.jobs=2 --set train.epochs=100 > $r.out 2>&1 & "
                    "p=$!; n=0; until grep -q 'epoch 5/' jobsint/teacher/run.log 2>/dev/null || "
                    "[ $n -ge 400 ]; do sleep 0.05; n=$((n+1)); done; kill -TERM $p; wait $p; "
                    "echo \"exit $?\"; pgrep -f 'run_dir=jobs[i]nt' || echo 'no process'; "
                    "cat $r.out", dir, cli);
    CU_ASSERT(strstr(out, "exit 143\nno process\n") && strstr(out, "interrupted by SIGTERM"));
    snprintf(p, sizeof p, "%s/jobsint/teacher/stage.json", dir);
    CU_ASSERT(!dk_test_exists(p));
    rc = dk_test_sh(out, sizeof out, "cd '%s' && '%s' run tiny.ini --set study.run_dir=jobsint "
                    "--set study.jobs=2 --set train.epochs=100", dir, cli);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "teacher: running (train, teacher), resuming from its "
                                       "checkpoint — log: "));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("study", suite_init, NULL);
    CU_add_test(s, "parse errors name file and line", test_parse_errors);
    CU_add_test(s, "end to end, then a rerun skips every stage", test_end_to_end_and_rerun);
    CU_add_test(s, "spacing column keys the stages; distance_unit = voxels in the table",
                test_spacing_and_voxels);
    CU_add_test(s, "an override reruns its stage and dependents", test_override_reruns_dependents);
    CU_add_test(s, "--from and a deleted stage.json", test_from_and_deleted_stage);
    CU_add_test(s, "a folder the runner did not make is kept", test_foreign_folder_kept);
    CU_add_test(s, "manifest.json fields", test_manifest);
    CU_add_test(s, "two run folders agree; a stopped run resumes", test_determinism_and_resume);
    CU_add_test(s, "an adapt stage is evaluated and reported", test_adapt_stage);
    CU_add_test(s, "two teachers of different shapes, layer self-distillation",
                test_two_teachers_stage);
    CU_add_test(s, "seeds: runs per seed, pinned teacher, table over seeds", test_seeds);
    CU_add_test(s, "the study page in headless Chromium", test_report_in_chromium);
    CU_add_test(s, "dakd run through the binary", test_cli);
    CU_add_test(s, "jobs = 2: same results, failures, SIGTERM", test_jobs);
    return dk_test_run();
}
