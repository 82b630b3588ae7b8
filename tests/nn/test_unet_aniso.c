/*
 * CUnit suite for anisotropic U-Nets (lib/nn/unet_axes.c and the per-level strides and
 * kernels through unet_build.c, unet_plan.c, unet_io.c): the nnU-Net planner on thick-slice,
 * isotropic and 2-D patches, the per-level text, the config checks, plan sizes and shapes,
 * and the model file round trip (keys written only for anisotropic networks, read back by
 * dk_unet_open, checked by dk_unet_load). Gradients: tests/nn/test_unet.c; PyTorch parity:
 * tests/nn/test_parity.c.
 */
#include "dakd/nn.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int levels3[DK_UNET_MAX_LEVELS][3];

static dk_unet_config net3(int levels) {
    dk_unet_config c = {.dims = 3, .in_channels = 1, .classes = 2, .base = 2, .levels = levels,
                        .norm = DK_NORM_BATCH, .up = DK_UP_TRANSPOSED, .leaky_slope = 0.01f};
    return c;
}

static void print_plan(const char *what, const dk_unet_config *c) {
    char p[128], k[128];
    dk_unet_axes_format(p, sizeof p, &c->pool[0][0], c->levels - 1);
    dk_unet_axes_format(k, sizeof k, &c->kernel[0][0], c->levels);
    printf("\n    %s: pool %s, kernel %s", what, p, k);
}

/* ------------------------------------------------------------------ the planner */

/* The plan of `levels` levels for the patch at spacing sp, printed as `what`. */
static dk_unet_config planned(int levels, const int64_t patch[3], const double sp[3],
                              const char *what) {
    dk_unet_config c = net3(levels);
    CU_ASSERT_EQUAL(dk_unet_plan_anisotropic(&c, patch, sp), DK_OK);
    print_plan(what, &c);
    return c;
}

/* A prostate MR patch, 20 slices of 3.6 mm, 160^2 pixels of 0.6 mm. */
static void test_plan_thick_slices(void) {
    const int64_t patch[3] = {20, 160, 160};
    const double sp[3] = {3.6, 0.6, 0.6};
    dk_unet_config c = planned(5, patch, sp, "20x160x160 at 3.6x0.6x0.6, 5 levels");
    /* slices 6x, 3x, then 1.5x the pixel: pooled in-plane twice, then everywhere; 1x3x3
     * kernels while the slices are >= 2x the pixels */
    static const levels3 pool = {{1, 2, 2}, {1, 2, 2}, {2, 2, 2}, {2, 2, 2}};
    static const levels3 kern = {{1, 3, 3}, {1, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}};
    CU_ASSERT(memcmp(c.pool, pool, sizeof pool) == 0);
    CU_ASSERT(memcmp(c.kernel, kern, sizeof kern) == 0);
    int64_t mult[3];
    dk_unet_multiple(&c, mult);
    CU_ASSERT(mult[0] == 4 && mult[1] == 16 && mult[2] == 16);
    CU_ASSERT_EQUAL(dk_unet_is_isotropic(&c), 0);
    /* one level more: d (5) is odd and below 8, h and w pool on to 5 */
    c.levels = 6;
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan_anisotropic(&c, patch, sp), DK_OK);
    CU_ASSERT(c.pool[4][0] == 1 && c.pool[4][1] == 2 && c.pool[4][2] == 2);
    /* then nothing may pool: refused, c unchanged */
    dk_unet_config before = c;
    c.levels = 7;
    CU_ASSERT_EQUAL(dk_unet_plan_anisotropic(&c, patch, sp), DK_ERR_ARG);
    printf("\n    %s", dk_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "allows 5 pools"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "levels = 7 needs 6"));
    CU_ASSERT(memcmp(c.pool, before.pool, sizeof c.pool) == 0);
}

/* Spacing ratio exactly 2 is not pooled (nnU-Net: ratio < 2), and gets kernel 1. */
static void test_plan_ratio_two(void) {
    const int64_t patch[3] = {32, 32, 32};
    const double sp[3] = {2.0, 1.0, 1.0};
    dk_unet_config c = planned(3, patch, sp, "32^3 at 2x1x1");
    static const levels3 pool = {{1, 2, 2}, {2, 2, 2}};
    static const levels3 kern = {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}};
    CU_ASSERT(memcmp(c.pool, pool, sizeof pool) == 0 && memcmp(c.kernel, kern, sizeof kern) == 0);
}

/* An isotropic patch gives today's network; so does a 2-D one until a side reaches 8. */
static void test_plan_isotropic_and_2d(void) {
    dk_unet_config c = net3(4);
    const int64_t cube[3] = {64, 64, 64};
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan_anisotropic(&c, cube, NULL), DK_OK);
    CU_ASSERT_EQUAL(dk_unet_is_isotropic(&c), 1);
    for (int l = 0; l < 3; l++)
        for (int a = 0; a < 3; a++) CU_ASSERT(c.pool[l][a] == 2 && c.kernel[l][a] == 3);
    dk_unet_config t = c;
    t.levels = 5; /* 64 -> 4 in four pools: the last leaves 4, still allowed */
    CU_ASSERT_EQUAL(dk_unet_plan_anisotropic(&t, cube, NULL), DK_OK);
    CU_ASSERT_EQUAL(dk_unet_is_isotropic(&t), 1);
    dk_unet_config c2 = net3(5);
    c2.dims = 2;
    const int64_t slab[3] = {1, 64, 256};
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan_anisotropic(&c2, slab, NULL), DK_OK);
    CU_ASSERT_EQUAL(dk_unet_is_isotropic(&c2), 1);
    CU_ASSERT(c2.pool[0][0] == 1 && c2.kernel[0][0] == 1); /* 2-D: no depth */
    /* a sixth level: h is at 4, w (16) alone may pool (>= 12) */
    c2.levels = 6;
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan_anisotropic(&c2, slab, NULL), DK_OK);
    print_plan("2-D 64x256, 6 levels", &c2);
    CU_ASSERT(c2.pool[4][0] == 1 && c2.pool[4][1] == 1 && c2.pool[4][2] == 2);
    /* a seventh: w at 8 would be pooled alone down to 4 (needs 12) */
    c2.levels = 7;
    CU_ASSERT_EQUAL(dk_unet_plan_anisotropic(&c2, slab, NULL), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "allows 5 pools"));
    const double bad[3] = {1, 0, 1};
    CU_ASSERT_EQUAL(dk_unet_plan_anisotropic(&c, cube, bad), DK_ERR_ARG);
}

/* ------------------------------------------------------------------ text and checks */

static void test_axes_text(void) {
    levels3 v;
    int n = 0;
    CU_ASSERT_EQUAL_FATAL(dk_unet_axes_parse(v, &n, " 1,2, 2;2,2,2 "), DK_OK);
    CU_ASSERT(n == 2 && v[0][0] == 1 && v[0][2] == 2 && v[1][0] == 2 && v[2][0] == 0);
    char buf[64];
    dk_unet_axes_format(buf, sizeof buf, &v[0][0], n);
    CU_ASSERT_STRING_EQUAL(buf, "1,2,2;2,2,2");
    const char *bad[] = {"", "1,2", "1,2,2;", "1,2,2,2", "a,b,c", "1;2;3",
                         "1,1,1;1,1,1;1,1,1;1,1,1;1,1,1;1,1,1;1,1,1;1,1,1"};
    for (int i = 0; i < 7; i++) {
        CU_ASSERT_EQUAL(dk_unet_axes_parse(v, &n, bad[i]), DK_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "triples"));
    }
}

static void expect_bad(dk_unet_config c, const char *frag) {
    dk_rng r;
    dk_rng_seed(&r, 1);
    dk_unet *m = NULL;
    CU_ASSERT_EQUAL(dk_unet_create(&m, &c, 1, &r), DK_ERR_ARG);
    CU_ASSERT_PTR_NULL(m);
    if (!strstr(dk_last_error(), frag)) printf("\n  '%s' lacks '%s'", dk_last_error(), frag);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), frag));
}

static void test_config_entries(void) {
    dk_unet_config ok = net3(3), c;
    c = ok, c.pool[0][1] = 3, expect_bad(c, "pool[0][h] = 3, must be 1 or 2");
    c = ok, c.kernel[2][0] = 2, expect_bad(c, "kernel[2][d] = 2, must be 1 or 3");
    c = ok, c.pool[2][2] = 2, expect_bad(c, "pool[2][w] = 2 past the 2 pools");
    c = ok, c.kernel[3][0] = 3, expect_bad(c, "kernel[3][d] = 3 past the 3 levels");
    c = ok, c.dims = 2, c.pool[0][0] = 2, expect_bad(c, "pool[0][d] = 2 in a 2-D network");
}

/* ------------------------------------------------------------------ plan and shapes */

static dk_unet_config thick(dk_up_kind up) {
    dk_unet_config c = net3(3);
    c.up = up;
    static const levels3 pool = {{1, 2, 2}, {2, 2, 2}};
    static const levels3 kern = {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}};
    memcpy(c.pool, pool, sizeof pool);
    memcpy(c.kernel, kern, sizeof kern);
    return c;
}

static dk_unet *make(const dk_unet_config *c, int trainable, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    dk_unet *m = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_unet_create(&m, c, trainable, &r), DK_OK);
    return m;
}

static void test_plan_sizes_and_shapes(void) {
    dk_unet_config c = thick(DK_UP_TRANSPOSED);
    dk_unet *m = make(&c, 1, 3);
    const dk_param_info *w0 = dk_params_find(dk_unet_params(m), "enc0.block1.conv.weight");
    const dk_param_info *u0 = dk_params_find(dk_unet_params(m), "up0.weight");
    const dk_param_info *u1 = dk_params_find(dk_unet_params(m), "up1.weight");
    const dk_param_info *d0 = dk_params_find(dk_unet_params(m), "dec0.block2.conv.weight");
    CU_ASSERT(w0->shape[2] == 1 && w0->shape[3] == 3 && w0->shape[4] == 3);
    CU_ASSERT(d0->shape[2] == 1 && d0->shape[3] == 3);
    CU_ASSERT(u0->shape[2] == 1 && u0->shape[3] == 2 && u0->shape[4] == 2);
    CU_ASSERT(u1->shape[2] == 2 && u1->shape[3] == 2 && u1->shape[4] == 2);
    /* multiples (2, 4, 4): the message names the axis and the multiple */
    CU_ASSERT_EQUAL(dk_unet_plan(m, 1, 3, 8, 8), DK_ERR_ARG);
    printf("\n    %s", dk_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "d = 3 is not a positive multiple of the "
                                                   "product of the pool strides along it = 2"));
    CU_ASSERT_EQUAL(dk_unet_plan(m, 1, 2, 8, 6), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "w = 6"));
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan(m, 2, 6, 12, 8), DK_OK);
    const char *names[4] = {"enc0", "enc1", "bottleneck", "dec1"};
    const int64_t want[4][3] = {{6, 12, 8}, {6, 6, 4}, {3, 3, 2}, {6, 6, 4}};
    for (int i = 0; i < 4; i++) {
        const dk_tensor *v = &dk_unet_tap(m, names[i])->value;
        CU_ASSERT(v->d == want[i][0] && v->h == want[i][1] && v->w == want[i][2]);
    }
    dk_unet_free(m);
}

/* ------------------------------------------------------------------ model files */

/* __metadata__ of a file as JSON text (caller frees). */
static char *meta_of(const char *path) {
    char *mj = NULL;
    CU_ASSERT_EQUAL(dk_safetensors_read(path, NULL, 0, 1, &mj), DK_OK);
    return mj;
}

/* The logits of m and o on the same input, equal bit for bit. */
static void same_forward(dk_unet *m, dk_unet *o, int64_t d, int64_t h, int64_t w) {
    int64_t n = d * h * w;
    float *x = malloc((size_t)n * sizeof *x);
    dk_rng r;
    dk_rng_seed(&r, 9);
    for (int64_t i = 0; i < n; i++) x[i] = (float)dk_rng_normal(&r);
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan(m, 1, d, h, w), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan(o, 1, d, h, w), DK_OK);
    dk_unet_forward(m, x, 0, NULL);
    dk_unet_forward(o, x, 0, NULL);
    const dk_tensor *a = &dk_unet_tap(m, "logits")->value, *b = &dk_unet_tap(o, "logits")->value;
    CU_ASSERT(memcmp(a->data, b->data, (size_t)dk_tensor_numel(a) * sizeof(float)) == 0);
    free(x);
}

static void test_model_file(void) {
    const char *dir = dk_test_tmpdir();
    char path[2][4096];
    snprintf(path[0], sizeof path[0], "%s/aniso_interp.safetensors", dir);
    snprintf(path[1], sizeof path[1], "%s/iso_interp.safetensors", dir);
    dk_unet_config c = thick(DK_UP_INTERP), iso = net3(3);
    iso.up = DK_UP_INTERP;
    memcpy(iso.kernel, c.kernel, sizeof c.kernel); /* same tensors; only the pools differ */
    dk_unet *m = make(&c, 0, 5), *mi = make(&iso, 0, 5);
    static const char *const meta[] = {"dakd.epoch", "1", NULL};
    CU_ASSERT_EQUAL_FATAL(dk_unet_save(m, path[0], meta), DK_OK);
    char *mj = meta_of(path[0]);
    CU_ASSERT_PTR_NOT_NULL(strstr(mj, "\"dakd.config.pool\":\"1,2,2;2,2,2\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(mj, "\"dakd.config.kernel\":\"1,3,3;3,3,3;3,3,3\""));
    free(mj);
    /* read back by the loaders: the same network, the same numbers */
    dk_unet *o = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_unet_open(&o, path[0], NULL), DK_OK);
    const dk_unet_config *g = dk_unet_get_config(o);
    CU_ASSERT(memcmp(g->pool, c.pool, sizeof c.pool) == 0);
    CU_ASSERT(memcmp(g->kernel, c.kernel, sizeof c.kernel) == 0);
    same_forward(m, o, 4, 8, 12);
    dk_unet_free(o);
    /* the same tensors with other strides are told apart, both ways */
    CU_ASSERT_EQUAL(dk_unet_load(mi, path[0], NULL), DK_ERR_FORMAT);
    printf("\n    %s", dk_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "dakd.config.pool is 1,2,2;2,2,2 in the "
                                                   "file, 2,2,2;2,2,2 in the model"));
    CU_ASSERT_EQUAL_FATAL(dk_unet_save(mi, path[1], NULL), DK_OK);
    mj = meta_of(path[1]);
    /* anisotropic by its kernels alone: both keys, the pools as 2 */
    CU_ASSERT_PTR_NOT_NULL(strstr(mj, "\"dakd.config.pool\":\"2,2,2;2,2,2\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(mj, "dakd.config.kernel"));
    free(mj);
    CU_ASSERT_EQUAL(dk_unet_load(m, path[1], NULL), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "dakd.config.pool is 2,2,2;2,2,2 in the file"));
    CU_ASSERT_EQUAL(dk_unet_load(m, path[0], NULL), DK_OK);
    dk_unet_free(m);
    dk_unet_free(mi);
    /* an isotropic network's file carries neither key */
    dk_unet_config plain = net3(3);
    dk_unet *p = make(&plain, 0, 6);
    CU_ASSERT_EQUAL_FATAL(dk_unet_save(p, path[1], NULL), DK_OK);
    mj = meta_of(path[1]);
    CU_ASSERT_PTR_NULL(strstr(mj, "dakd.config.pool"));
    CU_ASSERT_PTR_NULL(strstr(mj, "dakd.config.kernel"));
    free(mj);
    dk_unet_free(p);
}

/* A damaged dakd.config.pool: dk_unet_open names the key. */
static void test_model_file_bad_key(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/aniso_bad.safetensors", dk_test_tmpdir());
    dk_unet_config c = thick(DK_UP_TRANSPOSED);
    dk_unet *m = make(&c, 0, 7);
    CU_ASSERT_EQUAL_FATAL(dk_unet_save(m, path, NULL), DK_OK);
    dk_unet_free(m);
    /* same length, so the header stays valid JSON of the same size */
    static const char *const edits[2][2] = {{"\"1,2,2;2,2,2\"", "\"1,2,2;2,2\"  "},
                                            {"\"1,2,2;2,2\"  ", "\"1,2,2;3,2,2\""}};
    const char *want[2] = {"dakd.config.pool = '1,2,2;2,2' is not 2 triples d,h,w",
                           "pool[1][d] = 3, must be 1 or 2"};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "sed -i 's/%s/%s/' %s", edits[i][0], edits[i][1],
                                         path), 0);
        dk_unet *o = NULL;
        CU_ASSERT_NOT_EQUAL(dk_unet_open(&o, path, NULL), DK_OK);
        CU_ASSERT_PTR_NULL(o);
        printf("\n    %s", dk_last_error());
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), want[i]));
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("nn.unet anisotropic", NULL, NULL);
    CU_add_test(s, "planner: thick slices", test_plan_thick_slices);
    CU_add_test(s, "planner: spacing ratio 2", test_plan_ratio_two);
    CU_add_test(s, "planner: isotropic and 2-D patches", test_plan_isotropic_and_2d);
    CU_add_test(s, "per-level text", test_axes_text);
    CU_add_test(s, "config entries checked", test_config_entries);
    CU_add_test(s, "plan sizes, shapes and multiples", test_plan_sizes_and_shapes);
    CU_add_test(s, "model file round trip", test_model_file);
    CU_add_test(s, "model file with a damaged key", test_model_file_bad_key);
    return dk_test_run();
}
