/*
 * CUnit suite for the trainer (lib/train/trainer*.c) on generated two-domain phantoms
 * (2-D, 64x64, 4 classes) written as NIfTI with a cases CSV in a scratch folder:
 *  - a killed (stopped) distillation run (hints on) resumed from its checkpoint ends with
 *    the same weights, bit for bit, as an uninterrupted one, and logs the same steps;
 *  - FitNets hints: the term is finite and logged, the adapter is checkpointed, not exported;
 *  - the distilled student (the full method with alignment) scores a target Dice at least
 *    0.05 above the source-only student's for each of two seeds (held-out labelled target
 *    cases; neither training nor selection reads target labels);
 *  - the validation Dice of a case equals the Dice `dakd predict` + `dakd eval --mask`
 *    report for the exported model on it (sliding windows, a field-of-view mask), and
 *    steps.jsonl carries it on the last step of each epoch;
 *  - bad input stops with a message naming file, case or key;
 *  - the cost beyond teacher forward + student forward/backward is measured (printed).
 */
#include "dakd/data.h"
#include "dakd/eval.h"
#include "dakd/train.h"
#include "test_util.h"
#include "trainer_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[1024], csv[1100], teacher[1100];

/* 8 source train, 2 source val, 6 source test, 8 target train (unlabelled), 6 target test
 * (labelled; read by dk_trainer_eval only). */
static int make_data(void) {
    snprintf(dir, sizeof dir, "%s/trainer", dk_test_tmpdir());
    mkdir(dir, 0777);
    snprintf(csv, sizeof csv, "%s/cases.csv", dir);
    FILE *f = fopen(csv, "w");
    if (!f) return -1;
    fprintf(f, "case,image,label,dataset,split\n");
    int rc = 0;
    char name[32];
    for (int i = 0; i < 30 && rc == 0; i++) {
        int dom = i >= 16, lab = i < 16 || i >= 24;
        const char *split = i < 8    ? "train"
                            : i < 10 ? "val"
                            : i < 16 ? "test"
                            : i < 24 ? "train"
                                     : "test";
        snprintf(name, sizeof name, "%s%02d", dom ? "t" : "s", i);
        rc = dk_fx_write_case(f, dir, name, 64, dom, 1000 + (uint64_t)i, split, lab, 0);
    }
    fclose(f);
    return rc;
}

/* The tiny-net config of every run here; 0 on success (usable in the suite's init). */
static int base_config(dk_train_config *c, const char *run, int epochs, int steps) {
    static const char *const sets[] = {
        "data.domain_column=dataset", "data.source=src", "data.target=tgt", "data.patch_h=64",
        "data.patch_w=64", "data.batch_size=4", "data.classes=4", "model.teacher_base=8",
        "model.teacher_levels=3", "model.student_base=4", "model.student_levels=3",
        "train.lr=0.1", "train.momentum=0.9", "train.threads=1", "train.checkpoint_every=1",
        "distill.dynamic_weights=true", "data.fg_fraction=0.5", NULL};
    return dk_fx_config(c, sets, csv, dir, run, epochs, steps, teacher);
}

static dk_status run(dk_trainer **out, dk_train_config *c, dk_trainer_mode mode, int resume,
                     int64_t stop) {
    dk_trainer_opts o = {mode, resume, stop};
    dk_status st = dk_train_config_validate(c);
    if (st == DK_OK) st = dk_trainer_create(out, c, &o);
    if (st == DK_OK) st = dk_trainer_run(*out);
    if (st != DK_OK) printf("\n  trainer: %s\n", dk_last_error());
    return st;
}

static int suite_init(void) {
    if (make_data() != 0) return 1;
    snprintf(teacher, sizeof teacher, "%s/teacher/model.safetensors", dir);
    dk_train_config c;
    if (base_config(&c, "teacher", 12, 20)) return 1;
    dk_trainer *t = NULL;
    dk_status st = run(&t, &c, DK_TRAINER_TEACHER, 0, 0);
    double d = 0, ds = 0;
    if (st == DK_OK) st = dk_trainer_eval(&ds, t, "src", "test");
    if (st == DK_OK) st = dk_trainer_eval(&d, t, "tgt", "test");
    if (st == DK_OK)
        printf("\n  teacher: source test Dice %.4f, target test Dice %.4f\n", ds, d);
    dk_trainer_free(t);
    return st != DK_OK;
}

static const char *distill_sets[] = {"distill.align=mmd", "distill.lambda_align=0.1",
                                     "distill.lambda_at=1", "distill.lambda_ent=0.01",
                                     "distill.self_distill=ema", "distill.target_bn=true", NULL};

static void set_all(dk_train_config *c, const char *const *sets) {
    for (int i = 0; sets[i]; i++) CU_ASSERT_EQUAL(dk_train_config_set(c, sets[i]), DK_OK);
}

/* Lines of steps.jsonl without their "sec" field. */
static int same_logs(const char *a, const char *b) {
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    char la[2048], lb[2048];
    int same = fa && fb, lines = 0;
    while (same && fgets(la, sizeof la, fa)) {
        if (!fgets(lb, sizeof lb, fb)) same = 0;
        char *sa = strstr(la, ",\"sec\""), *sb = strstr(lb, ",\"sec\"");
        if (!same || !sa || !sb) same = 0;
        else *sa = *sb = '\0', same = strcmp(la, lb) == 0, lines++;
    }
    if (same && fgets(lb, sizeof lb, fb)) same = 0;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same ? lines : -1;
}

static void expect_fail(dk_train_config *c, dk_trainer_mode mode, dk_status want,
                        const char *needle);

/* FitNets hints on (adapter in the checkpoint, optimiser state, joint clipping). */
static const char *hint_sets[] = {"distill.lambda_hint=0.5", "distill.hint_tap=bottleneck", NULL};

static void test_resume_identical(void) {
    dk_train_config c;
    dk_trainer *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "full", 3, 3), 0);
    set_all(&c, distill_sets);
    set_all(&c, hint_sets);
    CU_ASSERT_EQUAL_FATAL(run(&a, &c, DK_TRAINER_DISTILL, 0, 0), DK_OK);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "killed", 3, 3), 0);
    set_all(&c, distill_sets);
    set_all(&c, hint_sets);
    /* "killed" after 5 steps (mid epoch 2): the checkpoint of epoch 1 is the last one */
    CU_ASSERT_EQUAL_FATAL(run(&b, &c, DK_TRAINER_DISTILL, 0, 5), DK_OK);
    CU_ASSERT_EQUAL(dk_trainer_get_stats(b)->epochs_done, 1);
    dk_trainer_free(b);
    b = NULL;
    CU_ASSERT_EQUAL_FATAL(run(&b, &c, DK_TRAINER_DISTILL, 1, 0), DK_OK);
    CU_ASSERT_EQUAL(dk_trainer_get_stats(b)->steps, 6);
    dk_params *pa = dk_unet_params(dk_trainer_model(a)), *pb = dk_unet_params(dk_trainer_model(b));
    dk_params *ba = dk_unet_buffers(dk_trainer_model(a)), *bb = dk_unet_buffers(dk_trainer_model(b));
    CU_ASSERT_EQUAL_FATAL(pa->total, pb->total);
    CU_ASSERT(memcmp(pa->w, pb->w, (size_t)pa->total * sizeof(float)) == 0);
    CU_ASSERT(memcmp(ba->w, bb->w, (size_t)ba->total * sizeof(float)) == 0);
    char la[1200], lb[1200];
    snprintf(la, sizeof la, "%s/full/steps.jsonl", dir);
    snprintf(lb, sizeof lb, "%s/killed/steps.jsonl", dir);
    CU_ASSERT_EQUAL(same_logs(la, lb), 9);
    const dk_trainer_stats *s = dk_trainer_get_stats(a);
    double core = s->sec_teacher + s->sec_student_fwd + s->sec_student_bwd;
    printf("\n  distill step: teacher fwd %.3fs, EMA fwd %.3fs, student fwd %.3fs, bwd %.3fs, "
           "step %.3fs: overhead beyond the networks %.1f %% (data %.3fs, losses %.3fs)\n",
           s->sec_teacher, s->sec_ema, s->sec_student_fwd, s->sec_student_bwd, s->sec_step,
           100 * (s->sec_step - core) / core, s->sec_data, s->sec_loss);
    dk_trainer_free(a);
    dk_trainer_free(b);
}

/* The "hint" values of steps.jsonl: count of lines whose hint is finite and > 0, or -1. */
static int hint_lines(const char *path) {
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *h = strstr(line, "\"hint\":");
        double v = h ? strtod(h + 7, NULL) : NAN;
        if (!isfinite(v) || v <= 0) n = -1;
        if (n >= 0) n++;
    }
    if (f) fclose(f);
    return f ? n : -1;
}

/* Whether the safetensors header of `path` names a tensor starting with "hint.". */
static int file_has_hint(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char len[8];
    char head[65536] = "";
    if (f && fread(len, 1, 8, f) == 8) {
        size_t n = 0;
        for (int i = 7; i >= 0; i--) n = n * 256 + len[i];
        if (n >= sizeof head) n = sizeof head - 1;
        head[fread(head, 1, n, f)] = '\0';
    }
    if (f) fclose(f);
    return strstr(head, "\"hint.") != NULL;
}

/* A short distillation with hints: the term is finite and logged; the adapter is in the
 * checkpoint but not in the exported student; a hint tap off the teacher's grid is refused. */
static void test_hints(void) {
    dk_train_config c;
    dk_trainer *t = NULL;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "hints", 1, 3), 0);
    set_all(&c, hint_sets);
    CU_ASSERT_EQUAL_FATAL(run(&t, &c, DK_TRAINER_DISTILL, 0, 0), DK_OK);
    dk_trainer_free(t);
    char p[1200];
    snprintf(p, sizeof p, "%s/hints/steps.jsonl", dir);
    CU_ASSERT_EQUAL(hint_lines(p), 3);
    snprintf(p, sizeof p, "%s/hints/checkpoint.safetensors", dir);
    CU_ASSERT(file_has_hint(p));
    snprintf(p, sizeof p, "%s/hints/model.safetensors", dir);
    CU_ASSERT(!file_has_hint(p));
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "hints_bad", 1, 1), 0);
    set_all(&c, hint_sets);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.hint_tap=nosuchtap"), DK_OK);
    expect_fail(&c, DK_TRAINER_DISTILL, DK_ERR_ARG, "hint_tap");
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "hints_bad", 1, 1), 0);
    set_all(&c, hint_sets);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "model.student_levels=2"), DK_OK);
    expect_fail(&c, DK_TRAINER_DISTILL, DK_ERR_ARG, "grid");
}

/* Train (mode) and score on the held-out test cases of both domains: *src, *tgt (-1 on
 * failure). */
static void train_and_score(double *src, double *tgt, dk_train_config *c, dk_trainer_mode mode) {
    dk_trainer *t = NULL;
    *src = *tgt = -1;
    if (run(&t, c, mode, 0, 0) == DK_OK) {
        CU_ASSERT_EQUAL(dk_trainer_eval(src, t, "src", "test"), DK_OK);
        CU_ASSERT_EQUAL(dk_trainer_eval(tgt, t, "tgt", "test"), DK_OK);
    }
    dk_trainer_free(t);
}

/* The phantom recipe (pipelines/README.md "Phantom recipe"): every term of the method on,
 * KD weight alpha 0.5, dynamic weights at beta 1 (mean weight ~1: the default beta 0.5 halves
 * the KD gradient against the other terms), and AdaBN target statistics. */
static const char *margin_sets[] = {"distill.alpha=0.5", "distill.align=mmd",
                                    "distill.lambda_align=0.1", "distill.align_tap=bottleneck",
                                    "distill.lambda_at=1", "distill.lambda_ent=0.01",
                                    "distill.self_distill=ema", "distill.dynamic_weights=true",
                                    "distill.dyn_beta=1", "distill.target_bn=true", NULL};

/* The method's claim on the phantoms: per seed, the source-only student (the same student,
 * augmentation, steps and learning rate, on source batches only) against the distilled one
 * (teacher of suite_init). Measured (Release, 1 thread), target test Dice source-only /
 * distilled: seed 42 0.7391 / 0.8600, seed 7 0.6754 / 0.8554: margins 0.121 and 0.180, above
 * the 0.064 spread of the source-only student over these seeds. (The next numbers were
 * measured before the distillation step used batch Dice and KD-only dynamic weights.)
 * Without target_bn the distilled student scores 0.7206 / 0.6399 / 0.6914, below the
 * source-only one: the margin needs the target batch-norm statistics (teacher and student);
 * with them, KD, AT, entropy, EMA and MMD add 0.07 over the source-only student given the
 * same AdaBN afterwards. The ASan+UBSan build runs seed 42 only (3x slower) and asserts the
 * same margin. */
static void test_distill_beats_source_only(void) {
    static const int seeds[] = {42, 7};
    int nseeds = 2;
#if defined(__SANITIZE_ADDRESS__)
    nseeds = 1;
    printf("\n  AddressSanitizer build: seed 42 only (the full pass runs seeds 42 and 7)");
#endif
    double sum = 0;
    for (int k = 0; k < nseeds; k++) {
        char seed[64], name[64];
        double ss, st, ds, dt;
        dk_train_config c;
        snprintf(seed, sizeof seed, "train.seed=%d", seeds[k]);
        snprintf(name, sizeof name, "source_only_%d", seeds[k]);
        CU_ASSERT_EQUAL_FATAL(base_config(&c, name, 12, 20), 0);
        CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, seed), DK_OK);
        train_and_score(&ss, &st, &c, DK_TRAINER_STUDENT);
        snprintf(name, sizeof name, "distilled_%d", seeds[k]);
        CU_ASSERT_EQUAL_FATAL(base_config(&c, name, 12, 20), 0);
        CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, seed), DK_OK);
        set_all(&c, margin_sets);
        train_and_score(&ds, &dt, &c, DK_TRAINER_DISTILL);
        printf("\n  seed %d: source-only student source %.4f target %.4f; distilled source "
               "%.4f target %.4f; target margin %.4f", seeds[k], ss, st, ds, dt, dt - st);
        CU_ASSERT(st >= 0 && dt >= 0);
        CU_ASSERT(dt - st >= 0.05);
        sum += dt - st;
    }
    printf("\n  mean target margin %.4f over %d seed(s)\n", sum / nseeds, nseeds);
}

/* ---------------------------------------------------------------- validation = dakd eval */

/* Phantom `id` (source domain) as valeq/img/<id>.nii.gz, its label as <labdir>/<id>.nii.gz
 * and a field-of-view mask (a disc of radius 22 voxels, as a fundus camera's, cutting
 * through the shapes) as valeq/masks/<id>.nii.gz, with its CSV row. 0 on success. */
static int write_fov_case(FILE *f, const char *root, const char *id, const char *labdir,
                          const char *split, uint64_t seed) {
    dk_volume img = {0}, lab = {0}, msk = {0};
    dk_phantom_opts po = {64, 64, 1, {1, 1, 1}, 0};
    dk_rng r;
    dk_rng_seed(&r, seed);
    char ip[1300], lp[1300], mp[1300];
    snprintf(ip, sizeof ip, "%s/img/%s.nii.gz", root, id);
    snprintf(lp, sizeof lp, "%s/%s/%s.nii.gz", root, labdir, id);
    snprintf(mp, sizeof mp, "%s/masks/%s.nii.gz", root, id);
    int rc = dk_phantom_generate(&img, &lab, &po, &r) != DK_OK ||
             dk_volume_alloc(&msk, 64, 64, 1, 1, 1, DK_U8) != DK_OK;
    if (!rc) {
        msk.geom = lab.geom;
        for (int64_t i = 0; i < 64 * 64; i++) {
            int64_t x = i % 64 - 32, y = i / 64 - 32;
            ((uint8_t *)msk.data)[i] = x * x + y * y < 22 * 22;
        }
        rc = dk_volume_write(&img, ip, NULL) || dk_volume_write(&lab, lp, NULL) ||
             dk_volume_write(&msk, mp, NULL);
        fprintf(f, "%s,%s,%s,%s,src,%s\n", id, ip, lp, mp, split);
    }
    dk_volume_free(&img), dk_volume_free(&lab), dk_volume_free(&msk);
    return rc;
}

/* valeq/: 4 source training cases and one validation case "v0", each with a mask; v0's
 * label is the only file of valeq/refs. 0 on success. */
static int write_valeq(const char *root, const char *vcsv) {
    static const char *const sub[] = {"", "img", "labs", "refs", "masks"};
    char p[1200];
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/%s", root, sub[k]);
        mkdir(p, 0777);
    }
    FILE *f = fopen(vcsv, "w");
    if (!f) return -1;
    fprintf(f, "case,image,label,mask,dataset,split\n");
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        rc |= write_fov_case(f, root, id, "labs", "train", 500 + (uint64_t)i);
    }
    rc |= write_fov_case(f, root, "v0", "refs", "val", 600);
    return fclose(f) != 0 || rc;
}

/* The "val_dice" values of steps.jsonl into v (at most 8) and the 1-based lines they are on
 * into at; their count, or -1 when the file cannot be read. */
static int val_dice_lines(double *v, int *at, const char *path) {
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0, i = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *h = strstr(line, "\"val_dice\":");
        i++;
        if (h && n < 8) v[n] = strtod(h + 11, NULL), at[n++] = i;
    }
    if (f) fclose(f);
    return f ? n : -1;
}

/* `dakd predict` of the validation rows with the model's defaults, then `dakd eval --mask`:
 * the report's mean foreground Dice of v0 into *dice. */
static void predict_and_eval(double *dice, const char *root, const char *vcsv) {
    char p[4][1200];
    snprintf(p[0], sizeof p[0], "%s/run/model.safetensors", root);
    snprintf(p[1], sizeof p[1], "%s/pred", root);
    snprintf(p[2], sizeof p[2], "%s/refs", root);
    snprintf(p[3], sizeof p[3], "%s/masks", root);
    static const char *const val[] = {"split=val", NULL};
    dk_predict_opts po = {p[0], NULL, vcsv, val, p[1], {{0, 0, 0}, 0, 0, 0, 0, 0}, 0, NULL, 0,
                          NULL};
    dk_infer_defaults(&po.infer);
    CU_ASSERT_EQUAL_FATAL(dk_predict_run(&po), DK_OK);
    static const int labels[] = {1, 2, 3};
    dk_eval_results res = {0};
    dk_eval_opts eo;
    memset(&eo, 0, sizeof eo);
    dk_metric_defaults(&eo.metric);
    eo.pred_dir = p[1], eo.ref_dir = p[2], eo.mask_dir = p[3];
    eo.labels = labels, eo.n_labels = 3, eo.results = &res;
    eo.out_dir = dk_test_path(root, "report");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&eo), DK_OK);
    CU_ASSERT_EQUAL_FATAL(res.n_cases, 1);
    CU_ASSERT_EQUAL_FATAL(res.n_labels, 3);
    CU_ASSERT_STRING_EQUAL(res.ids[0], "v0");
    *dice = (res.m[0].dice + res.m[1].dice + res.m[2].dice) / 3;
    dk_eval_results_free(&res);
}

/* The trainer's validation Dice of a case is the number `dakd predict` + `dakd eval --mask`
 * report for it: a student trained with a 32x32 patch on 64x64 phantoms (so the image is
 * covered by 3x3 blended windows) and a field-of-view mask, validated on one source case;
 * the exported model (the last epoch's network, the one validated last) predicted with its
 * defaults and scored with the masks. The model keeps the input grid, so both score the
 * same voxels. Measured: one whole-image forward instead of the windows, or scoring without
 * the mask each give another number here. */
static void test_validation_is_eval(void) {
    char root[1100], vcsv[1200];
    snprintf(root, sizeof root, "%s/valeq", dir);
    snprintf(vcsv, sizeof vcsv, "%s/cases.csv", root);
    CU_ASSERT_EQUAL_FATAL(write_valeq(root, vcsv), 0);
    static const char *const sets[] = {
        "data.domain_column=dataset", "data.source=src", "data.target=tgt", "data.patch_h=32",
        "data.patch_w=32", "data.batch_size=4", "data.classes=4", "model.student_base=4",
        "model.student_levels=3", "train.lr=0.1", "train.momentum=0.9", "train.threads=1",
        "data.fg_fraction=0.5", NULL};
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(dk_fx_config(&c, sets, vcsv, root, "run", 3, 6, teacher), 0);
    dk_trainer *t = NULL;
    CU_ASSERT_EQUAL_FATAL(run(&t, &c, DK_TRAINER_STUDENT, 0, 0), DK_OK);
    double val = dk_trainer_get_stats(t)->last_val_dice, again = -1, ev = -1;
    CU_ASSERT_EQUAL(dk_trainer_eval(&again, t, "src", "val"), DK_OK);
    dk_trainer_free(t);
    predict_and_eval(&ev, root, vcsv);
    printf("\n  validation Dice %.17g, dakd eval Dice %.17g\n", val, ev);
    CU_ASSERT(val >= 0 && val <= 1);
    CU_ASSERT(fabs(again - val) <= 1e-12);
    CU_ASSERT(fabs(ev - val) <= 1e-12);
    /* steps.jsonl: each epoch's Dice on its last step's line (6 steps an epoch), the last
     * one the number above, exactly */
    double v[8];
    int at[8];
    char log[1200];
    snprintf(log, sizeof log, "%s/run/steps.jsonl", root);
    CU_ASSERT_EQUAL_FATAL(val_dice_lines(v, at, log), 3);
    for (int i = 0; i < 3; i++) CU_ASSERT(at[i] == 6 * (i + 1) && v[i] >= 0 && v[i] <= 1);
    CU_ASSERT(v[2] == val);
}

static void expect_fail(dk_train_config *c, dk_trainer_mode mode, dk_status want,
                        const char *needle) {
    dk_trainer *t = NULL;
    dk_trainer_opts o = {mode, 0, 0};
    dk_status st = dk_train_config_validate(c);
    if (st == DK_OK) st = dk_trainer_create(&t, c, &o);
    CU_ASSERT_EQUAL(st, want);
    if (!strstr(dk_last_error(), needle))
        printf("\n  message '%s' lacks '%s'\n", dk_last_error(), needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), needle));
    dk_trainer_free(t);
}

static void test_bad_input(void) {
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "bad", 1, 1), 0);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.no_such_key=1"), DK_ERR_ARG);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.alpha=1.5"), DK_ERR_ARG);
    /* a teacher checkpoint that does not match [model] teacher_* */
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "model.teacher_base=16"), DK_OK);
    expect_fail(&c, DK_TRAINER_DISTILL, DK_ERR_FORMAT, "teacher");
    /* a missing teacher file */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "bad", 1, 1), 0);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "model.teacher_checkpoint=/nonexistent.st"), DK_OK);
    expect_fail(&c, DK_TRAINER_DISTILL, DK_ERR_IO, "/nonexistent.st");
    /* validation on target labels is refused outside an oracle run */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "bad", 1, 1), 0);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "data.val_domain=target"), DK_OK);
    expect_fail(&c, DK_TRAINER_STUDENT, DK_ERR_ARG, "val_domain");
    /* resume without a checkpoint (killed before its first): not refused, starts at epoch 0 */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "bad_empty", 1, 1), 0);
    dk_trainer *t = NULL;
    dk_trainer_opts o = {DK_TRAINER_STUDENT, 1, 0};
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    CU_ASSERT_EQUAL(dk_trainer_create(&t, &c, &o), DK_OK);
    CU_ASSERT_EQUAL(t ? dk_trainer_get_stats(t)->epochs_done : -1, 0);
    dk_trainer_free(t);
    /* a label value outside 0..classes-1, named with its file */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/bad.csv", dir);
    FILE *f = fopen(bad, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "case,image,label,dataset,split\n");
    CU_ASSERT_EQUAL(dk_fx_write_case(f, dir, "badlab", 64, 0, 7, "train", 1, 1), 0);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "bad", 1, 1), 0);
    char set[1300];
    snprintf(set, sizeof set, "data.cases=%s", bad);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, set), DK_OK);
    expect_fail(&c, DK_TRAINER_TEACHER, DK_ERR_FORMAT, "badlab_lab.nii.gz");
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("train.trainer", suite_init, NULL);
    if (!s || !CU_add_test(s, "bad input is refused with a clear message", test_bad_input) ||
        !CU_add_test(s, "kill and resume gives identical weights", test_resume_identical) ||
        !CU_add_test(s, "FitNets hints run, log and stay out of the model", test_hints) ||
        !CU_add_test(s, "validation Dice = dakd eval Dice of the exported model",
                     test_validation_is_eval) ||
        !CU_add_test(s, "distilled student beats source-only on target",
                     test_distill_beats_source_only)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
