/* Parameters, optimisers, LR schedules and safetensors checkpoints: registration and
 * offsets, global norm and clipping against hand values, SGD and AdamW against hand values
 * and against torch.optim (tests/tools/torch_optim_ref.py), schedules at key steps, and
 * checkpoints: round trip, the numpy-only Python reader (tests/tools/read_safetensors.py),
 * damaged files and unwritable paths. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dakd/nn.h"
#include "test_util.h"

static const char *scratch(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

/* Assert a failure with the given status whose message names `path` (when not NULL) and
 * contains `needle`; print the message when it does not. */
static void expect_fail(dk_status st, dk_status want, const char *path, const char *needle) {
    const char *msg = dk_last_error();
    int ok = st == want && (!path || strstr(msg, path)) && (!needle || strstr(msg, needle));
    if (!ok)
        printf("\n    got status %d (want %d), message \"%s\" (want \"%s\")\n", st, want, msg,
               needle ? needle : "");
    CU_ASSERT(ok);
}

static int close_rel(double got, double want, double rel) {
    return fabs(got - want) <= rel * fabs(want) + 1e-12;
}

/* ================================================================ parameters */

static void test_register(void) {
    dk_params p;
    dk_params_init(&p);
    const int64_t s1[4] = {16, 2, 3, 3}, s2[1] = {16}, s3[5] = {4, 16, 2, 2, 2};
    CU_ASSERT_EQUAL(dk_params_add(&p, "enc0.conv1.weight", 4, s1), 0);
    CU_ASSERT_EQUAL(dk_params_add(&p, "enc0.norm1.weight", 1, s2), 288);
    CU_ASSERT_EQUAL(dk_params_add(&p, "up0.weight", 5, s3), 304);
    CU_ASSERT_EQUAL(p.total, 304 + 512);
    CU_ASSERT_EQUAL(p.count, 3);

    CU_ASSERT_EQUAL(dk_params_add(&p, "enc0.norm1.weight", 1, s2), -1);
    expect_fail(DK_ERR_ARG, DK_ERR_ARG, "enc0.norm1.weight", "twice");
    const int64_t zero[2] = {3, 0};
    CU_ASSERT_EQUAL(dk_params_add(&p, "bad", 2, zero), -1);
    expect_fail(DK_ERR_ARG, DK_ERR_ARG, "bad", "shape");
    CU_ASSERT_EQUAL(dk_params_add(&p, "bad6", 6, s3), -1);
    CU_ASSERT_EQUAL(dk_params_add(&p, "bad0", 0, s3), -1);
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CU_ASSERT_EQUAL(dk_params_add(&p, longname, 1, s2), -1);
    CU_ASSERT_EQUAL(p.count, 3);
    /* Many names: the table grows. */
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra.%d", i);
        CU_ASSERT_EQUAL(dk_params_add(&p, name, 1, s2), 816 + 16 * i);
    }
    const dk_param_info *e = dk_params_find(&p, "up0.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT(e->ndim == 5 && e->numel == 512 && e->offset == 304 && e->shape[1] == 16);
    CU_ASSERT_PTR_NULL(dk_params_find(&p, "nope"));

    CU_ASSERT_EQUAL(dk_params_alloc(&p, 1), DK_OK);
    CU_ASSERT(((uintptr_t)p.w % 64) == 0 && ((uintptr_t)p.g % 64) == 0);
    int zero_ok = 1;
    for (int64_t i = 0; i < p.total; i++)
        zero_ok &= p.w[i] == 0.0f && p.g[i] == 0.0f;
    CU_ASSERT(zero_ok);
    CU_ASSERT_EQUAL(dk_params_add(&p, "late", 1, s2), -1);
    expect_fail(DK_ERR_ARG, DK_ERR_ARG, "late", "after");
    CU_ASSERT_PTR_NULL(p.m);
    CU_ASSERT_EQUAL(dk_params_alloc_state(&p, 2), DK_OK);
    CU_ASSERT(p.m && p.v && ((uintptr_t)p.v % 64) == 0 && p.m[p.total - 1] == 0.0f);

    dk_params_fill(&p, "enc0.norm1.weight", 1.5f);
    CU_ASSERT(p.w[287] == 0.0f && p.w[288] == 1.5f && p.w[303] == 1.5f && p.w[304] == 0.0f);
    p.g[5] = 3.0f;
    dk_params_zero_grad(&p);
    CU_ASSERT(p.g[5] == 0.0f);

    dk_params_free(&p);
    CU_ASSERT(p.w == NULL && p.info == NULL && p.count == 0);
    dk_params_free(&p); /* idempotent */
    dk_params_free(NULL);
}

/* Two tensors a (1) = [3] and b (2) = [4, 0]: global norm 5. */
static void make_34(dk_params *p) {
    const int64_t s1[1] = {1}, s2[1] = {2};
    dk_params_init(p);
    dk_params_add(p, "a", 1, s1);
    dk_params_add(p, "b", 1, s2);
    CU_ASSERT_FATAL(dk_params_alloc(p, 1) == DK_OK);
    p->g[0] = 3.0f;
    p->g[1] = 4.0f;
}

static void test_grad_norm_clip(void) {
    dk_params p;
    make_34(&p);
    CU_ASSERT_DOUBLE_EQUAL(dk_params_grad_norm(&p), 5.0, 0.0);
    /* max_norm above the norm: nothing changes, not even by a bit. */
    CU_ASSERT_DOUBLE_EQUAL(dk_params_clip_grad_norm(&p, 10.0), 5.0, 0.0);
    CU_ASSERT(p.g[0] == 3.0f && p.g[1] == 4.0f && p.g[2] == 0.0f);
    /* max_norm 1: coef = 1 / (5 + 1e-6), so g = [0.6, 0.8] * (1 - 2e-7). */
    CU_ASSERT_DOUBLE_EQUAL(dk_params_clip_grad_norm(&p, 1.0), 5.0, 0.0);
    const float c = (float)(1.0 / (5.0 + 1e-6));
    CU_ASSERT(p.g[0] == 3.0f * c && p.g[1] == 4.0f * c);
    CU_ASSERT(close_rel(p.g[0], 0.6 * (1 - 2e-7), 1e-7) &&
              close_rel(p.g[1], 0.8 * (1 - 2e-7), 1e-7));
    CU_ASSERT(dk_params_grad_norm(&p) < 1.0);
    /* A NaN gradient: the norm says so, g is left for the caller to inspect. */
    p.g[2] = NAN;
    CU_ASSERT(isnan(dk_params_clip_grad_norm(&p, 1.0)));
    CU_ASSERT(p.g[0] == 3.0f * c);
    dk_params_free(&p);

    /* A buffer large enough for the threaded path: 10^6 ones have norm 1000 exactly. */
    const int64_t big[2] = {1000, 1000};
    dk_params_init(&p);
    dk_params_add(&p, "big", 2, big);
    CU_ASSERT_FATAL(dk_params_alloc(&p, 1) == DK_OK);
    for (int64_t i = 0; i < p.total; i++)
        p.g[i] = 1.0f;
    CU_ASSERT_DOUBLE_EQUAL(dk_params_grad_norm(&p), 1000.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(dk_params_clip_grad_norm(&p, 500.0), 1000.0, 0.0);
    CU_ASSERT(close_rel(dk_params_grad_norm(&p), 500.0, 1e-6));
    dk_params_free(&p);
    /* No gradient buffer: norm 0. */
    dk_params_init(&p);
    CU_ASSERT_DOUBLE_EQUAL(dk_params_grad_norm(&p), 0.0, 0.0);
}

static void test_init_normal(void) {
    const int64_t s[1] = {20000};
    dk_params p;
    dk_params_init(&p);
    dk_params_add(&p, "w", 1, s);
    CU_ASSERT_FATAL(dk_params_alloc(&p, 0) == DK_OK);
    CU_ASSERT_PTR_NULL(p.g);
    dk_rng r;
    dk_rng_seed(&r, 42);
    dk_params_init_normal(&p, "w", 2.0, &r);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < p.total; i++) {
        sum += p.w[i];
        sq += (double)p.w[i] * p.w[i];
    }
    double mean = sum / (double)p.total, sd = sqrt(sq / (double)p.total - mean * mean);
    CU_ASSERT(fabs(mean) < 0.05 && fabs(sd - 2.0) < 0.05);
    /* The same seed gives the same draws, as std * dk_rng_normal. */
    dk_rng_seed(&r, 42);
    CU_ASSERT(p.w[0] == (float)(2.0 * dk_rng_normal(&r)) &&
              p.w[1] == (float)(2.0 * dk_rng_normal(&r)));
    dk_params_free(&p);
}

/* ================================================================ optimisers: hand values */

/* One parameter w = 1, constant gradient 0.5, lr 0.1; returns w after each of 2 steps. */
static void run_one(dk_optim o, float *w_after) {
    const int64_t s[1] = {1};
    dk_params p;
    dk_params_init(&p);
    dk_params_add(&p, "w", 1, s);
    CU_ASSERT_FATAL(dk_params_alloc(&p, 1) == DK_OK);
    CU_ASSERT_FATAL(dk_optim_init(&o, &p) == DK_OK);
    p.w[0] = 1.0f;
    for (int k = 0; k < 2; k++) {
        p.g[0] = 0.5f;
        dk_optim_step(&o, &p, 0.1);
        w_after[k] = p.w[0];
    }
    CU_ASSERT_EQUAL(o.step, 2);
    dk_params_free(&p);
}

static void test_sgd_hand(void) {
    float w[2];
    dk_optim o = {.kind = DK_OPT_SGD};
    run_one(o, w); /* plain: w -= 0.1 * 0.5 */
    CU_ASSERT(close_rel(w[0], 0.95, 1e-6) && close_rel(w[1], 0.90, 1e-6));
    o.momentum = 0.9; /* buf 0.5 then 0.95 */
    run_one(o, w);
    CU_ASSERT(close_rel(w[0], 0.95, 1e-6) && close_rel(w[1], 0.855, 1e-6));
    o.nesterov = 1; /* step 0.5 + 0.9*0.5 = 0.95, then 0.5 + 0.9*0.95 = 1.355 */
    run_one(o, w);
    CU_ASSERT(close_rel(w[0], 0.905, 1e-6) && close_rel(w[1], 0.7695, 1e-6));
    o = (dk_optim){.kind = DK_OPT_SGD, .weight_decay = 0.1};
    run_one(o, w); /* g' = 0.5 + 0.1*1 = 0.6 -> 0.94; g' = 0.5 + 0.094 = 0.594 -> 0.8806 */
    CU_ASSERT(close_rel(w[0], 0.94, 1e-6) && close_rel(w[1], 0.8806, 1e-6));
}

static void test_adamw_hand(void) {
    /* Constant gradient: m/(1-b1^t) = 0.5 and v/(1-b2^t) = 0.25 at every step, so each step
     * moves by lr * 0.5 / (0.5 + eps) after the decay w *= 1 - lr*wd = 0.999. */
    float w[2];
    dk_optim o = {
        .kind = DK_OPT_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    run_one(o, w);
    const double stepsz = 0.1 * 0.5 / (0.5 + 1e-8);
    const double w1 = 0.999 - stepsz, w2 = w1 * 0.999 - stepsz;
    CU_ASSERT(close_rel(w[0], w1, 1e-6) && close_rel(w[1], w2, 1e-6));
    CU_ASSERT(close_rel(w1, 0.899, 1e-7) && close_rel(w2, 0.798101, 1e-7));
    o.kind = (dk_opt_kind)7;
    dk_params p;
    const int64_t s[1] = {1};
    dk_params_init(&p);
    dk_params_add(&p, "w", 1, s);
    CU_ASSERT_FATAL(dk_params_alloc(&p, 1) == DK_OK);
    expect_fail(dk_optim_init(&o, &p), DK_ERR_ARG, NULL, "optimiser");
    dk_params_free(&p);
}

/* ================================================================ optimisers: PyTorch */

enum { TN = 37, TSTEPS = 6 };

static int torch_state = -1; /* -1 unknown, 0 missing, 1 importable */
static char torch_reason[512];

static int have_torch(const char *what) {
    if (torch_state < 0) {
        char out[4096];
        int rc = dk_test_sh(out, sizeof out, "/usr/bin/python3 -c 'import torch'");
        torch_state = rc == 0;
        if (!torch_state) {
            char *nl = strrchr(out, '\n');
            if (nl && nl[1] == '\0') *nl = '\0';
            nl = strrchr(out, '\n');
            snprintf(torch_reason, sizeof torch_reason,
                     "/usr/bin/python3 cannot import torch (%.400s)", nl ? nl + 1 : out);
        }
    }
    if (!torch_state) dk_test_skip(what, torch_reason);
    return torch_state;
}

/* Deterministic inputs spanning several magnitudes and both signs. */
static float value_at(uint64_t seed, int i) {
    dk_rng r;
    dk_rng_seed(&r, seed * 1000003u + (uint64_t)i);
    double mag = pow(10.0, -3.0 + 4.0 * dk_rng_uniform_double(&r));
    return (float)(dk_rng_uniform_double(&r) < 0.5 ? -mag : mag);
}

static double lr_at_step(int k) { return 0.05 / (1.0 + 0.5 * k); }

typedef struct {
    const char *label;
    dk_optim o;
} torch_case;

static const torch_case torch_cases[] = {
    {"SGD", {.kind = DK_OPT_SGD}},
    {"SGD momentum 0.99", {.kind = DK_OPT_SGD, .momentum = 0.99}},
    {"SGD nesterov + wd",
     {.kind = DK_OPT_SGD, .momentum = 0.9, .nesterov = 1, .weight_decay = 3e-5}},
    {"SGD wd", {.kind = DK_OPT_SGD, .weight_decay = 0.01}},
    {"AdamW",
     {.kind = DK_OPT_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01}},
    {"AdamW b1=0.8 b2=0.99 wd=0.1",
     {.kind = DK_OPT_ADAMW, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1}},
};
enum { NCASES = sizeof torch_cases / sizeof torch_cases[0] };

/* The same start and gradients for every case: magnitudes 1e-3..10 of both signs, and one
 * element whose gradient is always zero (as frozen or dead units give). */
static void torch_inputs(float *w0, float g[TSTEPS][TN]) {
    for (int i = 0; i < TN; i++)
        w0[i] = value_at(1, i);
    for (int k = 0; k < TSTEPS; k++) {
        for (int i = 0; i < TN; i++)
            g[k][i] = value_at(2 + (uint64_t)k, i);
        g[k][TN - 1] = 0.0f;
    }
}

/* Write the torch_optim_ref.py input: a JSON list with one object per case. */
static void write_ref_input(const char *path, const float *w0, float g[TSTEPS][TN]) {
    cJSON *root = cJSON_CreateArray();
    for (int c = 0; c < NCASES; c++) {
        const dk_optim *o = &torch_cases[c].o;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(root, x);
        cJSON_AddStringToObject(x, "opt", o->kind == DK_OPT_SGD ? "sgd" : "adamw");
        cJSON *lrs = cJSON_AddArrayToObject(x, "lr"), *gs = cJSON_AddArrayToObject(x, "grads");
        for (int k = 0; k < TSTEPS; k++) {
            cJSON_AddItemToArray(lrs, cJSON_CreateNumber(lr_at_step(k)));
            cJSON_AddItemToArray(gs, cJSON_CreateFloatArray(g[k], TN));
        }
        cJSON_AddItemToObject(x, "w", cJSON_CreateFloatArray(w0, TN));
        cJSON_AddNumberToObject(x, "momentum", o->momentum);
        cJSON_AddNumberToObject(x, "nesterov", o->nesterov);
        cJSON_AddNumberToObject(x, "weight_decay", o->weight_decay);
        cJSON_AddNumberToObject(x, "beta1", o->beta1);
        cJSON_AddNumberToObject(x, "beta2", o->beta2);
        cJSON_AddNumberToObject(x, "eps", o->eps);
    }
    char *text = cJSON_Print(root);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL && text != NULL);
    fputs(text, f);
    fclose(f);
    cJSON_free(text);
    cJSON_Delete(root);
}

/* Run dk_optim for one case and compare w after every step with torch's lines at *cur. With
 * PyTorch's AVX2 kernels the two agree bit for bit (both fuse the same multiply-adds); the
 * count is printed, the assertion is the 1e-6 relative bound so a torch running other
 * kernels still passes. */
static void compare_case(const torch_case *tc, const float *w0, float g[TSTEPS][TN], char **cur) {
    const int64_t s[1] = {TN};
    dk_optim o = tc->o;
    dk_params p;
    dk_params_init(&p);
    dk_params_add(&p, "w", 1, s);
    CU_ASSERT_FATAL(dk_params_alloc(&p, 1) == DK_OK && dk_optim_init(&o, &p) == DK_OK);
    memcpy(p.w, w0, TN * sizeof *w0);
    int bad = 0, same_bits = 0;
    double worst = 0.0;
    for (int k = 0; k < TSTEPS; k++) {
        memcpy(p.g, g[k], sizeof g[k]);
        dk_optim_step(&o, &p, lr_at_step(k));
        for (int i = 0; i < TN; i++) {
            char *end;
            float want = (float)strtod(*cur, &end);
            CU_ASSERT_FATAL(end != *cur);
            *cur = end;
            /* Relative 1e-6; values under 1e-3 (cancellation) are held to 1e-9 absolute. */
            double rel = fabs((double)p.w[i] - want) / fmax(fabs((double)want), 1e-3);
            worst = fmax(worst, rel);
            bad += rel > 1e-6;
            same_bits += p.w[i] == want;
        }
    }
    printf("\n    torch %s: %d/%d values bit-identical, worst relative difference %.2e", tc->label,
           same_bits, TSTEPS * TN, worst);
    CU_ASSERT_EQUAL(bad, 0);
    dk_params_free(&p);
}

static void test_optim_torch(void) {
    if (!have_torch("SGD/AdamW against torch.optim")) return;
    static char out[NCASES * TSTEPS * TN * 20 + 4096];
    float w0[TN], g[TSTEPS][TN];
    torch_inputs(w0, g);
    const char *cfg = scratch("optim_ref.json");
    write_ref_input(cfg, w0, g);
    int rc = dk_test_sh(out, sizeof out, "/usr/bin/python3 %s/tests/tools/torch_optim_ref.py %s",
                        dk_test_source_dir(), cfg);
    if (rc != 0) printf("\n    torch_optim_ref.py said: %.2000s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *cur = out;
    for (int c = 0; c < NCASES; c++)
        compare_case(&torch_cases[c], w0, g, &cur);
}

/* ================================================================ LR schedules */

static void test_lr_schedules(void) {
    dk_lr_schedule s = {.kind = DK_LR_CONSTANT, .base = 0.01, .total_steps = 100};
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 0), 0.01, 0);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 1000), 0.01, 0);

    s = (dk_lr_schedule){.kind = DK_LR_POLY, .base = 0.01, .power = 0.9, .total_steps = 1000};
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 0), 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 500), 0.01 * pow(0.5, 0.9), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 999), 0.01 * pow(0.001, 0.9), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 1000), 0.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 5000), 0.0, 0);
    s.power = 0.0; /* unset: nnU-Net's 0.9 */
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 500), 0.01 * pow(0.5, 0.9), 1e-15);

    s = (dk_lr_schedule){.kind = DK_LR_COSINE, .base = 1.0, .min_lr = 0.1, .total_steps = 100};
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 0), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 50), 0.55, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 25), 0.1 + 0.9 * (1 + sqrt(0.5)) / 2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 100), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 200), 0.1, 1e-15);

    /* Warm-up of 10 steps: base/10 * (t+1) up to base at t = 9, then cosine from the top. */
    s.warmup_steps = 10;
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 0), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 4), 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 9), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 10), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 60), 0.55, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, 110), 0.1, 1e-15);
    /* A pure function: asking again, or out of order, gives the same value. */
    CU_ASSERT(dk_lr_at(&s, 37) == dk_lr_at(&s, 37));
    CU_ASSERT_DOUBLE_EQUAL(dk_lr_at(&s, -5), 0.1, 1e-15);
}

/* ================================================================ safetensors */

/* Two tensors with distinct values; a (2, 3) and b (4). */
static float sa[6] = {1.5f, -2.25f, 3.0e-7f, 4.0e8f, -0.0f, 0.1f};
static float sb[4] = {1.0f, 2.0f, 3.0f, 4.0f};

static void two_refs(dk_tensor_ref *t, float *a, float *b) {
    t[0] = (dk_tensor_ref){.name = "enc0.conv1.weight", .ndim = 2, .shape = {2, 3}, .data = a};
    t[1] = (dk_tensor_ref){.name = "head.bias", .ndim = 1, .shape = {4}, .data = b};
}

static const char *write_two(const char *name) {
    const char *path = scratch(name);
    dk_tensor_ref t[2];
    two_refs(t, sa, sb);
    const char *meta[] = {"step", "1234", "rng", "[1, 2, 3, 4]", NULL};
    CU_ASSERT_EQUAL(dk_safetensors_write(path, t, 2, meta), DK_OK);
    return path;
}

static void test_st_roundtrip(void) {
    const char *path = write_two("round.safetensors");
    /* Layout: N a multiple of 8, the data right after it, 6*4 + 4*4 bytes of it. */
    struct stat sb_;
    CU_ASSERT_FATAL(stat(path, &sb_) == 0);
    FILE *f = fopen(path, "rb");
    uint64_t n = 0;
    char head[17] = {0};
    CU_ASSERT_FATAL(f && fread(&n, 8, 1, f) == 1 && fread(head, 1, 16, f) == 16);
    fclose(f);
    CU_ASSERT(n % 8 == 0 && (int64_t)sb_.st_size == 8 + (int64_t)n + 40);
    CU_ASSERT_STRING_EQUAL(head, "{\"__metadata__\":");

    float a[6], b[4];
    dk_tensor_ref t[2];
    two_refs(t, a, b);
    char *meta = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_safetensors_read(path, t, 2, 0, &meta), DK_OK);
    CU_ASSERT(memcmp(a, sa, sizeof a) == 0 && memcmp(b, sb, sizeof b) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
    CU_ASSERT_STRING_EQUAL(meta, "{\"step\":\"1234\",\"rng\":\"[1, 2, 3, 4]\"}");
    free(meta);
    /* Order of the refs does not matter; a subset with allow_extra reads just that one. */
    memset(b, 0, sizeof b);
    CU_ASSERT_EQUAL(dk_safetensors_read(path, &t[1], 1, 1, NULL), DK_OK);
    CU_ASSERT(memcmp(b, sb, sizeof b) == 0);
    /* No metadata: meta_json is "{}". Overwriting replaces the file whole. */
    t[0].data = sb;
    t[0].ndim = 1;
    t[0].shape[0] = 4;
    CU_ASSERT_EQUAL(dk_safetensors_write(path, t, 1, NULL), DK_OK);
    CU_ASSERT_EQUAL(dk_safetensors_read(path, t, 1, 0, &meta), DK_OK);
    CU_ASSERT_STRING_EQUAL(meta, "{}");
    free(meta);
    /* Bad arguments to the writer. */
    dk_tensor_ref dup[2] = {t[0], t[0]};
    expect_fail(dk_safetensors_write(path, dup, 2, NULL), DK_ERR_ARG, path, "twice");
    const char *odd[] = {"key", NULL};
    expect_fail(dk_safetensors_write(path, t, 1, odd), DK_ERR_ARG, path, "key");
}

/* Parse "name d0,d1 v v v" from the reader's output and compare with the source. */
static void check_reader_line(const char *out, const char *name, const char *shape,
                              const float *want, int n) {
    char key[128];
    snprintf(key, sizeof key, "\n%s %s ", name, shape);
    const char *p = strstr(out, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p += strlen(key);
    int same = 1;
    for (int i = 0; i < n; i++) {
        char *end;
        float v = (float)strtod(p, &end);
        same &= end != p && memcmp(&v, &want[i], sizeof v) == 0;
        p = end;
    }
    CU_ASSERT(same);
}

static void test_st_python(void) {
    const char *path = write_two("python.safetensors");
    char out[8192];
    const char *tool = "/usr/bin/python3 %s/tests/tools/read_safetensors.py %s %s";
    int rc = dk_test_sh(out, sizeof out, tool, dk_test_source_dir(), path, "");
    if (rc != 0) printf("\n    reader said: %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(strncmp(out, "{\"rng\": \"[1, 2, 3, 4]\", \"step\": \"1234\"}\n", 39) == 0);
    check_reader_line(out, "enc0.conv1.weight", "2,3", sa, 6);
    check_reader_line(out, "head.bias", "4", sb, 4);
    if (!have_torch("safetensors values through numpy into torch")) return;
    rc = dk_test_sh(out, sizeof out, tool, dk_test_source_dir(), path, "--torch");
    if (rc != 0) printf("\n    reader said: %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    check_reader_line(out, "enc0.conv1.weight", "2,3", sa, 6);
    check_reader_line(out, "head.bias", "4", sb, 4);
}

/* A file of an 8-byte length n (the JSON's length when n < 0), the JSON, then `data`. */
static const char *raw_file(const char *name, const char *json, long long n, size_t data_len) {
    static const unsigned char data[64];
    const char *path = scratch(name);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    uint64_t len = n < 0 ? (uint64_t)strlen(json) : (uint64_t)n;
    fwrite(&len, 8, 1, f);
    fwrite(json, 1, strlen(json), f);
    fwrite(data, 1, data_len, f);
    fclose(f);
    return path;
}

typedef struct {
    const char *file, *json;
    long long n;
    size_t data_len;
    dk_status want;
    const char *needle;
} bad_case;

#define A4 "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}"

static const bad_case bad_cases[] = {
    {"trunc_header.st", "{\"a\":", 100, 0, DK_ERR_FORMAT, "truncated header"},
    {"absurd_n.st", "{}", 1LL << 40, 0, DK_ERR_FORMAT, "100 MB"},
    {"bad_json.st", "{\"a\": {\"dtype\": \"F32\",", -1, 0, DK_ERR_FORMAT, "invalid JSON"},
    {"not_object.st", "[1, 2]", -1, 0, DK_ERR_FORMAT, "not an object"},
    {"trailing_json.st", "{" A4 "} x", -1, 16, DK_ERR_FORMAT, "invalid JSON"},
    {"dtype.st", "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", -1, 8,
     DK_ERR_UNSUPPORTED, "a: dtype F16"},
    {"no_dtype.st", "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 16, DK_ERR_FORMAT,
     "a: dtype"},
    {"neg_shape.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", -1, 16,
     DK_ERR_FORMAT, "a: shape[0]"},
    {"span.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", -1, 12,
     DK_ERR_FORMAT, "a: data_offsets span 12"},
    {"out_of_range.st", "{" A4 "}", -1, 8, DK_ERR_FORMAT, "a: data_offsets [0, 16] beyond"},
    {"offsets_shape.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", -1, 4,
     DK_ERR_FORMAT, "a: data_offsets"},
    {"overlap.st", "{" A4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", -1,
     16, DK_ERR_FORMAT, "overlapping"},
    {"gap.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8,
     DK_ERR_FORMAT, "a: data_offsets begin at 4"},
    {"trailing.st", "{" A4 "}", -1, 20, DK_ERR_FORMAT, "4 bytes after the last tensor"},
    {"twice.st", "{" A4 "," A4 "}", -1, 16, DK_ERR_FORMAT, "a: listed twice"},
    {"meta.st", "{\"__metadata__\":{\"step\":3}," A4 "}", -1, 16, DK_ERR_FORMAT,
     "__metadata__ field step"},
};

/* A NUL inside the header would end cJSON's parse early and hide what follows. */
static void nul_in_header(void) {
    const char *path = scratch("nul.st");
    const char json[] = "{" A4 "}\0 x      ";
    uint64_t len = sizeof json - 1;
    static const unsigned char data[16];
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(&len, 8, 1, f);
    fwrite(json, 1, len, f);
    fwrite(data, 1, sizeof data, f);
    fclose(f);
    float buf[4];
    dk_tensor_ref t = {.name = "a", .ndim = 1, .shape = {4}, .data = buf};
    expect_fail(dk_safetensors_read(path, &t, 1, 0, NULL), DK_ERR_FORMAT, path, "NUL byte");
}

static void test_st_bad_files(void) {
    nul_in_header();
    float buf[4];
    dk_tensor_ref t = {.name = "a", .ndim = 1, .shape = {4}, .data = buf};
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        const char *path = raw_file(c->file, c->json, c->n, c->data_len);
        expect_fail(dk_safetensors_read(path, &t, 1, 1, NULL), c->want, path, c->needle);
    }
    const char *tiny = scratch("tiny.st");
    FILE *f = fopen(tiny, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fputs("abc", f);
    fclose(f);
    expect_fail(dk_safetensors_read(tiny, &t, 1, 1, NULL), DK_ERR_FORMAT, tiny, "header length");
    expect_fail(dk_safetensors_read(scratch("absent.st"), &t, 1, 1, NULL), DK_ERR_IO, "absent.st",
                "cannot open");

    /* A good file cut short by one float: the last tensor's offsets leave the file. */
    const char *path = write_two("trunc_data.st");
    struct stat sb_;
    CU_ASSERT_FATAL(stat(path, &sb_) == 0 && truncate(path, sb_.st_size - 4) == 0);
    float a[6], b[4];
    dk_tensor_ref two[2];
    two_refs(two, a, b);
    expect_fail(dk_safetensors_read(path, two, 2, 0, NULL), DK_ERR_FORMAT, path,
                "head.bias: data_offsets [24, 40] beyond the 36 data bytes");

    /* Name and shape checks against the model on a good file. */
    path = write_two("model.st");
    dk_tensor_ref m[3];
    two_refs(m, a, b);
    m[2] = (dk_tensor_ref){.name = "dec0.weight", .ndim = 1, .shape = {4}, .data = b};
    expect_fail(dk_safetensors_read(path, m, 3, 0, NULL), DK_ERR_FORMAT, path,
                "dec0.weight: missing");
    m[0].shape[1] = 2;
    m[0].shape[0] = 3;
    expect_fail(dk_safetensors_read(path, m, 2, 0, NULL), DK_ERR_FORMAT, path,
                "enc0.conv1.weight: file has [2, 3], model has [3, 2]");
    m[0] = (dk_tensor_ref){.name = "enc0.conv1.weight", .ndim = 3, .shape = {2, 3, 1}, .data = a};
    expect_fail(dk_safetensors_read(path, m, 1, 0, NULL), DK_ERR_FORMAT, path,
                "file has [2, 3], model has [2, 3, 1]");
    expect_fail(dk_safetensors_read(path, &m[1], 1, 0, NULL), DK_ERR_FORMAT, path,
                "enc0.conv1.weight: in the file but not in the model");
    CU_ASSERT_EQUAL(dk_safetensors_read(path, &m[1], 1, 1, NULL), DK_OK);
}

/* Number of names in `dir` containing ".tmp". */
static int count_tmp(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_st_unwritable(void) {
    dk_tensor_ref t[2];
    two_refs(t, sa, sb);
    const char *missing = "/nonexistent-dakd-dir/ckpt.safetensors";
    expect_fail(dk_safetensors_write(missing, t, 2, NULL), DK_ERR_IO, missing, "cannot create");
    CU_ASSERT(!dk_test_exists(missing));

    /* The final name is a directory: the temporary file is written, the rename fails, and
     * nothing is left behind. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/unwritable", dk_test_tmpdir());
    CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
    const char *target = dk_test_path(dir, "is_a_dir.safetensors");
    CU_ASSERT_FATAL(mkdir(target, 0755) == 0);
    expect_fail(dk_safetensors_write(target, t, 2, NULL), DK_ERR_IO, target, "rename");
    CU_ASSERT_EQUAL(count_tmp(dir), 0);

    /* The disk fills up part way (a file-size limit): the writer's checks catch it and the
     * temporary file goes. */
    enum { BIG = 65536 };
    float *big = calloc(BIG, sizeof *big);
    CU_ASSERT_FATAL(big != NULL);
    dk_tensor_ref bt = {.name = "big", .ndim = 1, .shape = {BIG}, .data = big};
    const char *full = dk_test_path(dir, "full.safetensors");
    struct rlimit old, lim;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 32768;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    dk_status st = dk_safetensors_write(full, &bt, 1, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    free(big);
    expect_fail(st, DK_ERR_IO, full, "write failed");
    CU_ASSERT(!dk_test_exists(full) && count_tmp(dir) == 0);

    /* A folder no file can be made in. Root writes into a 0555 directory anyway, so for
     * root the folder is a regular file's path, which refuses everyone. */
    const char *ro = dk_test_path(dir, "ro.safetensors");
    if (geteuid() != 0) {
        CU_ASSERT_FATAL(chmod(dir, 0555) == 0);
    } else {
        FILE *f = fopen(dk_test_path(dir, "plain_file"), "w");
        CU_ASSERT_FATAL(f != NULL);
        fclose(f);
        ro = dk_test_path(dir, "plain_file/ro.safetensors");
    }
    expect_fail(dk_safetensors_write(ro, t, 2, NULL), DK_ERR_IO, ro, "cannot create");
    CU_ASSERT(!dk_test_exists(ro) && count_tmp(dir) == 0);
    chmod(dir, 0755);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite p = CU_add_suite("params", NULL, NULL);
    CU_add_test(p, "registration, offsets, alloc, free", test_register);
    CU_add_test(p, "grad norm and clipping", test_grad_norm_clip);
    CU_add_test(p, "init_normal", test_init_normal);
    CU_add_test(p, "SGD hand values", test_sgd_hand);
    CU_add_test(p, "AdamW hand values", test_adamw_hand);
    CU_add_test(p, "SGD/AdamW vs torch.optim", test_optim_torch);
    CU_add_test(p, "LR schedules", test_lr_schedules);
    CU_pSuite s = CU_add_suite("safetensors", NULL, NULL);
    CU_add_test(s, "round trip with metadata", test_st_roundtrip);
    CU_add_test(s, "numpy-only Python reader and torch", test_st_python);
    CU_add_test(s, "damaged files", test_st_bad_files);
    CU_add_test(s, "unwritable paths leave nothing", test_st_unwritable);
    return dk_test_run();
}
