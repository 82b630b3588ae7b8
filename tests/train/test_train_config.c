/*
 * CUnit suite for the training / distillation config (lib/train/config.c): the defaults are
 * the method's numbers, pipelines/train_example.ini loads and validates, cross-field checks
 * fail with the keys named, and the effective config reads back to the same struct.
 */
#include "dakd/train.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int warnings;
static void count_warn(dk_log_level level, const char *msg, void *user) {
    (void)msg;
    (void)user;
    if (level == DK_LOG_WARN) warnings++;
}

static void test_defaults(void) {
    dk_train_config c;
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL(c.alpha, 0.8);
    CU_ASSERT_EQUAL(c.temp_schedule, DK_TEMP_ADAPTIVE);
    CU_ASSERT_EQUAL(c.temp_t0, 0.0); /* the schedule's own T0 (test_temperature_defaults) */
    CU_ASSERT_EQUAL(c.temp_gamma, 0.95);
    CU_ASSERT_EQUAL(c.temp_min, 1.0);
    CU_ASSERT_EQUAL(c.mix_r0, 0.8);
    CU_ASSERT_EQUAL(c.mix_delta, 0.05);
    CU_ASSERT_EQUAL(c.mix_min, 0.2);
    CU_ASSERT_EQUAL(c.clip_norm, 1.0);
    CU_ASSERT_EQUAL(c.dyn_beta, 0.5);
    CU_ASSERT_EQUAL(c.ema_momentum, 0.99);
    CU_ASSERT_EQUAL(c.ema_rampup_epochs, 5.0);
    CU_ASSERT_STRING_EQUAL(c.align_tap, "bottleneck");
    CU_ASSERT_EQUAL(c.optim.kind, DK_OPT_SGD);
    CU_ASSERT_EQUAL(c.lr.kind, DK_LR_POLY);
    CU_ASSERT_EQUAL(c.teacher.norm, DK_NORM_BATCH);
    /* derived fields are filled */
    CU_ASSERT_EQUAL(c.teacher.classes, 2);
    CU_ASSERT_EQUAL(c.student.dims, 2);
    CU_ASSERT_EQUAL(c.lr.total_steps, 100 * 250);
    /* the schedules the config describes equal the method's ready-made ones */
    dk_schedule t = dk_train_config_temperature(&c), t_ref = dk_schedule_temp_adaptive();
    dk_schedule m = dk_train_config_mixing(&c), m_ref = dk_schedule_mix_default();
    for (int e = 0; e < 40; e++) {
        CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, e, 0), dk_schedule_at(&t_ref, e, 0), 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&m, e, 0), dk_schedule_at(&m_ref, e, 0), 1e-12);
    }
}

/* Each temperature schedule's default is the header's: halving 10, 5, 2.5, 1.25, then the
 * floor 1; constant 4; adaptive 5 * 0.95^e (floor 1). A temp_t0 set in a config still wins. */
static void test_temperature_defaults(void) {
    static const double halving[6] = {10, 5, 2.5, 1.25, 1, 1};
    dk_train_config c;
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.temp_schedule=halving"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    dk_schedule t = dk_train_config_temperature(&c), ref = dk_schedule_temp_halving();
    for (int e = 0; e < 6; e++) {
        CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, e, 0), halving[e], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&ref, e, 0), halving[e], 1e-12);
    }
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.temp_schedule=constant"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    t = dk_train_config_temperature(&c);
    for (int e = 0; e < 30; e += 7) CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, e, 0), 4.0, 1e-12);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.temp_schedule=adaptive"), DK_OK);
    t = dk_train_config_temperature(&c);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, 0, 0), 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, 3, 0), 5.0 * pow(0.95, 3), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, 40, 0), 1.0, 1e-12);
    /* an explicit T0 is kept for every kind */
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.temp_t0=7"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.temp_schedule=halving"), DK_OK);
    t = dk_train_config_temperature(&c);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, 0, 0), 7.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, 1, 0), 3.5, 1e-12);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.temp_schedule=constant"), DK_OK);
    t = dk_train_config_temperature(&c);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&t, 9, 0), 7.0, 1e-12);
}

/* c written as the effective config, read into fresh defaults and validated: the same struct. */
static void expect_reads_back(const dk_train_config *c, const char *name) {
    const char *out = dk_test_path(dk_test_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_write(c, out), DK_OK);
    dk_train_config d;
    dk_train_config_defaults(&d);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_load(&d, out), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_validate(&d), DK_OK);
    CU_ASSERT_EQUAL(memcmp(c, &d, sizeof d), 0);
}

static void test_example_loads(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/pipelines/train_example.ini", dk_test_source_dir());
    dk_train_config c;
    dk_train_config_defaults(&c);
    dk_status st = dk_train_config_load(&c, path);
    if (st != DK_OK) printf("\n  %s\n", dk_last_error());
    CU_ASSERT_EQUAL_FATAL(st, DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_validate(&c), DK_OK);
    CU_ASSERT_STRING_EQUAL(c.source, "drive");
    CU_ASSERT_STRING_EQUAL(c.target, "chase");
    CU_ASSERT_EQUAL(c.prep.channels, DK_CHANNELS_ONE);
    CU_ASSERT_EQUAL(c.prep.channel_index, 1);
    CU_ASSERT_EQUAL(c.prep.norm.kind, DK_INTENSITY_PERCENTILE_ZSCORE);
    CU_ASSERT_EQUAL(c.lr.warmup_steps, 500);
    CU_ASSERT_EQUAL(c.lr.total_steps, 100 * 250 - 500);
    CU_ASSERT_STRING_EQUAL(c.run_dir, "runs/drive_to_chase");
    expect_reads_back(&c, "train_effective.ini");
}

/* Defaults, one or two --set (set2 may be NULL), validate: expect DK_ERR_ARG naming `frag`. */
static void expect_invalid2(const char *set, const char *set2, const char *frag) {
    dk_train_config c;
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, set), DK_OK);
    if (set2) CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, set2), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_ERR_ARG);
    if (!strstr(dk_last_error(), frag)) printf("\n  '%s' lacks '%s'\n", dk_last_error(), frag);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), frag));
}

static void expect_invalid(const char *set, const char *frag) { expect_invalid2(set, NULL, frag); }

static void test_validation(void) {
    expect_invalid("distill.mix_min=0.9", "[distill] mix_min = 0.9 exceeds mix_r0 = 0.8");
    expect_invalid("distill.temp_min=6", "temp_min = 6 exceeds T0 = 5");
    expect_invalid2("distill.temp_schedule=halving", "distill.temp_min=11", "T0 = 10");
    expect_invalid2("distill.temp_t0=2", "distill.temp_min=3", "temp_min = 3 exceeds T0 = 2");
    expect_invalid("model.student_deep_supervision=true",
                   "[model] student_deep_supervision = true: only [distill] self_distill = "
                   "layers or both trains the heads (it is none)");
    expect_invalid("distill.self_distill=layers",
                   "self_distill = layers needs [model] student_deep_supervision = true");
    expect_invalid2("distill.self_distill=both", "model.student_levels=2",
                    "needs [model] student_deep_supervision = true");
    expect_invalid("distill.teacher_weights=1,2",
                   "teacher_weights = '1,2': needs 1 numbers >= 0 with a positive sum");
    expect_invalid("distill.teacher_weights=0", "needs 1 numbers >= 0 with a positive sum");
    expect_invalid2("distill.extra_teachers=a.safetensors, b.safetensors",
                    "distill.teacher_weights=1,x,2", "needs 3 numbers");
    expect_invalid2("distill.extra_teachers=a.safetensors", "distill.teacher_weights=1,-1",
                    "needs 2 numbers >= 0");
    expect_invalid("model.teacher_deep_supervision=true", "teacher_deep_supervision");
    expect_invalid("data.patch_h=200", "[data] patch_h = 200 is not divisible by 2^(teacher");
    expect_invalid2("data.patch_w=48", "model.student_levels=6",
                    "[data] patch_w = 48 is not divisible by 2^(student_levels-1) = 32");
    expect_invalid("data.patch_d=4", "patch_d = 4 must be 1");
    expect_invalid("data.norm_lo_pct=99.9", "norm_lo_pct");
    expect_invalid("augment.gamma_lo=2", "[augment] gamma_lo");
    expect_invalid2("data.channels=luminance", "model.in_channels=3", "in_channels = 3");
    expect_invalid("train.warmup_steps=25000", "warmup_steps");
    expect_invalid("output.run_dir=", "run_dir is empty");
    expect_invalid("data.source=", "source and target");
    /* a key that does not exist is caught by --set already */
    dk_train_config c;
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL(c.nteachers, 1);
    CU_ASSERT_EQUAL(c.teacher_w[0], 1.0);
    /* the derived teacher weights */
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.extra_teachers=a.st, b.st"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.teacher_weights=1, 0.5 ,0"), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_validate(&c), DK_OK);
    CU_ASSERT_EQUAL(c.nteachers, 3);
    CU_ASSERT(c.teacher_w[0] == 1.0 && c.teacher_w[1] == 0.5 && c.teacher_w[2] == 0.0);
    /* layer self-distillation with its heads: valid */
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "distill.self_distill=both"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "model.student_deep_supervision=true"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "train.clip=2"), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "did you mean train.clip_norm?"));
    /* a student as large as the teacher is valid but warned about */
    warnings = 0;
    dk_log_set_sink(count_warn, NULL, DK_LOG_WARN);
    CU_ASSERT_EQUAL(dk_train_config_set(&c, "model.student_base=32"), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    CU_ASSERT_EQUAL(warnings, 1);
    dk_log_set_sink(NULL, NULL, DK_LOG_WARN);
}

/* [model] <net>_pool / <net>_kernel: empty (isotropic), explicit triples, auto (nnU-Net's plan
 * from the patch and the [data] spacing); bad values and patches refused naming the key. */
static void test_pool_kernel_keys(void) {
    dk_train_config c;
    dk_train_config_defaults(&c);
    static const int zero[DK_UNET_MAX_LEVELS][3];
    CU_ASSERT(memcmp(c.teacher.pool, zero, sizeof zero) == 0);
    CU_ASSERT(memcmp(c.student.kernel, zero, sizeof zero) == 0);
    const char *sets[] = {"model.dims=3", "data.patch_d=20", "data.patch_h=160",
                          "data.patch_w=160", "model.teacher_pool=1,2,2; 1,2,2; 2,2,2;2,2,2",
                          "model.teacher_kernel=1,3,3;1,3,3;3,3,3;3,3,3;3,3,3",
                          "model.student_pool=auto", "model.student_kernel=auto"};
    for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, sets[i]), DK_OK);
    dk_status st = dk_train_config_validate(&c);
    if (st != DK_OK) printf("\n  %s\n", dk_last_error());
    CU_ASSERT_EQUAL_FATAL(st, DK_OK);
    CU_ASSERT(c.teacher.pool[0][0] == 1 && c.teacher.pool[0][1] == 2 && c.teacher.pool[2][0] == 2);
    CU_ASSERT(c.teacher.kernel[1][0] == 1 && c.teacher.kernel[2][0] == 3);
    /* auto at 1 mm: 20 -> 10 -> 5 along d, then in-plane only */
    static const int auto_pool[4][3] = {{2, 2, 2}, {2, 2, 2}, {1, 2, 2}, {1, 2, 2}};
    CU_ASSERT(memcmp(c.student.pool, auto_pool, sizeof auto_pool) == 0);
    CU_ASSERT(dk_unet_is_isotropic(&c.teacher) == 0 && c.student.kernel[4][0] == 3);
    expect_reads_back(&c, "aniso_effective.ini");
    /* auto at the [data] spacing: 3.6 mm slices of 0.6 mm pixels, 1x3x3 until within 2x */
    const char *sp[] = {"data.spacing_x=0.6", "data.spacing_y=0.6", "data.spacing_z=3.6",
                        "model.teacher_pool=auto", "model.teacher_kernel=auto"};
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, sp[i]), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_validate(&c), DK_OK);
    static const int sp_pool[4][3] = {{1, 2, 2}, {1, 2, 2}, {2, 2, 2}, {2, 2, 2}};
    static const int sp_kern[5][3] = {{1, 3, 3}, {1, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}};
    CU_ASSERT(memcmp(c.teacher.pool, sp_pool, sizeof sp_pool) == 0);
    CU_ASSERT(memcmp(c.teacher.kernel, sp_kern, sizeof sp_kern) == 0);
    /* refused, naming the key */
    expect_invalid2("model.teacher_pool=1,3,2", "model.teacher_levels=2",
                    "[model] teacher_pool = '1,3,2': entry h of triple 1 is 3, must be 1 or 2");
    expect_invalid2("model.student_kernel=1,3,3;1,2,3", "model.student_levels=2",
                    "[model] student_kernel = '1,3,3;1,2,3': entry h of triple 2 is 2, must be "
                    "1 or 3");
    expect_invalid("model.teacher_pool=2,2,2; 2,2,2",
                   "[model] teacher_pool = '2,2,2; 2,2,2' has 2 triples d,h,w; teacher_levels "
                   "needs 4");
    expect_invalid("model.student_pool=1,2", "[model] student_pool: '1,2' is not 1 to 7 triples");
    expect_invalid("model.teacher_pool=2,2,2;2,2,2;2,2,2;2,2,2",
                   "entry d of triple 1 is 2, must be 1 (a 2-D network)");
    expect_invalid2("model.dims=3", "model.teacher_pool=1,2,2;2,2,2;2,2,2;2,2,2",
                    "[data] patch_d = 1 is not divisible by 8, the product of the teacher_pool "
                    "strides along d");
    dk_train_config_defaults(&c);
    const char *small[] = {"data.patch_h=16", "data.patch_w=16", "model.student_pool=auto"};
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, small[i]), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_ERR_ARG);
    printf("\n  %s", dk_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "[model] student_pool = auto: unet plan: the "
                                  "patch 1x16x16 (spacing 1 x 1 x 1) allows 2 pools"));
}

static void test_load_keeps_struct_on_error(void) {
    const char *p = dk_test_path(dk_test_tmpdir(), "bad_train.ini");
    FILE *f = fopen(p, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("[train]\nepochs = 7\nclip_norm = -1\n", f);
    fclose(f);
    dk_train_config c, before;
    dk_train_config_defaults(&c);
    before = c;
    CU_ASSERT_EQUAL(dk_train_config_load(&c, p), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), ":3: [train] clip_norm = -1 is out of range"));
    CU_ASSERT_EQUAL(memcmp(&c, &before, sizeof c), 0);
}

/* A value longer than the INI reader's line cannot be set, so whatever is set writes back. */
static void test_long_values(void) {
    dk_train_config c;
    dk_train_config_defaults(&c);
    char set[400];
    int k = snprintf(set, sizeof set, "data.cases=");
    memset(set + k, 'p', 300);
    set[k + 300] = '\0';
    CU_ASSERT_EQUAL(dk_train_config_set(&c, set), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "limit"));
    set[k + 180] = '\0'; /* "cases = " + 180 fits in 197 */
    CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, set), DK_OK);
    const char *out = dk_test_path(dk_test_tmpdir(), "long_effective.ini");
    CU_ASSERT_EQUAL_FATAL(dk_train_config_write(&c, out), DK_OK);
    dk_train_config d;
    dk_train_config_defaults(&d);
    CU_ASSERT_EQUAL(dk_train_config_load(&d, out), DK_OK);
    CU_ASSERT_STRING_EQUAL(d.cases, c.cases);
}

/* The config's preprocessing and augmentation defaults are the option schema's. */
static void test_schema_defaults(void) {
    dk_train_config c;
    dk_train_config_defaults(&c);
    dk_prep_opts p;
    dk_augment_opts a;
    dk_data_opts d;
    dk_prep_defaults(&p);
    dk_augment_defaults(&a);
    dk_data_defaults(&d);
    CU_ASSERT_EQUAL(memcmp(&c.prep, &p, sizeof p), 0);
    CU_ASSERT_EQUAL(memcmp(&c.aug, &a, sizeof a), 0);
    CU_ASSERT_EQUAL(memcmp(c.patch, d.patch, sizeof d.patch), 0);
    CU_ASSERT_EQUAL(c.classes, p.classes);
    CU_ASSERT_EQUAL(p.norm.kind, DK_INTENSITY_ZSCORE); /* the documented defaults */
    CU_ASSERT_EQUAL(a.p_gamma, 0.3);
    CU_ASSERT_EQUAL(d.patch[1], 256);
    /* the schema bounds classes by what the losses take */
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].section, "data") && !strcmp(t[i].key, "classes")) {
            found = 1;
            CU_ASSERT_EQUAL(t[i].max, DK_LOSS_MAX_CLASSES);
        }
    CU_ASSERT(found);
}

/* A value other than the row's default: another name, the other boolean, a bound (the
 * lower one when the default is the upper). */
static void other_value(char *v, size_t n, const dk_cfg_field *f) {
    if (f->type == DK_CFG_ENUM)
        snprintf(v, n, "%s", f->enum_names[strcmp(f->enum_names[0], f->def) ? 0 : 1]);
    else if (f->type == DK_CFG_BOOL)
        snprintf(v, n, "%s", strcmp(f->def, "true") ? "true" : "false");
    else if (isfinite(f->max) && f->max != atof(f->def))
        snprintf(v, n, "%.17g", f->max);
    else
        snprintf(v, n, "%.17g", isfinite(f->min) ? f->min : 7.0);
}

/* Each schema key set through the config lands in the member it names in dk_data_opts. */
static void test_schema_keys(void) {
    size_t ns, nkeys = 0;
    const dk_prep_field *s = dk_prep_schema(&ns);
    for (size_t i = 0; i < ns; i++) {
        const dk_cfg_field *f = &s[i].cfg;
        if (!f->section) continue;
        nkeys++;
        char v[64], set[160];
        other_value(v, sizeof v, f);
        CU_ASSERT(strcmp(v, f->def) != 0);
        snprintf(set, sizeof set, "%s.%s=%s", f->section, f->key, v);
        dk_train_config c;
        dk_data_opts d;
        dk_train_config_defaults(&c);
        dk_data_defaults(&d);
        CU_ASSERT_EQUAL_FATAL(dk_train_config_set(&c, set), DK_OK);
        CU_ASSERT_EQUAL_FATAL(dk_cfg_set(&d, f, 1, set), DK_OK);
        int same = c.classes == d.prep.classes;
        d.prep.classes = c.prep.classes; /* the config keeps classes beside prep */
        same = same && !memcmp(&c.prep, &d.prep, sizeof d.prep) &&
               !memcmp(&c.aug, &d.aug, sizeof d.aug) && !memcmp(c.patch, d.patch, sizeof c.patch);
        if (!same) printf("\n  %s lands elsewhere\n", set);
        CU_ASSERT(same);
    }
    CU_ASSERT_EQUAL(nkeys, 9 + 4 + 3 + 1 + 1 + 31); /* ..., classes, label_map, [augment] */
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("train.config", NULL, NULL);
    if (!s || !CU_add_test(s, "defaults are the method's", test_defaults) ||
        !CU_add_test(s, "temperature defaults follow the schedule", test_temperature_defaults) ||
        !CU_add_test(s, "pipelines/train_example.ini loads", test_example_loads) ||
        !CU_add_test(s, "cross-field validation", test_validation) ||
        !CU_add_test(s, "pool and kernel keys", test_pool_kernel_keys) ||
        !CU_add_test(s, "failed load leaves the config", test_load_keeps_struct_on_error) ||
        !CU_add_test(s, "long values", test_long_values) ||
        !CU_add_test(s, "defaults are the option schema's", test_schema_defaults) ||
        !CU_add_test(s, "schema keys land in their members", test_schema_keys)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
