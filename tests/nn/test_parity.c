/* Parity with PyTorch: the same weights (passed through safetensors files) give the same
 * forward output and the same gradients for one conv-BN-ReLU block and for small U-Nets
 * (2-D and 3-D, batch and instance norm, transposed and interpolating upsampling,
 * anisotropic pool strides and kernels per level: dakd.config.pool / .kernel), within
 * 1e-4 relative (norm of the difference over the norm of PyTorch's float64 result).
 * PyTorch runs under /usr/bin/python3 through tests/tools/torch_parity.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/nn.h"
#include "dakd/train.h"
#include "test_util.h"

#define MAX_REFS 256

typedef struct {
    dk_tensor_ref r[MAX_REFS];
    char names[MAX_REFS][96];
    int n;
} refs;

static void add(refs *s, const char *prefix, const char *name, int ndim, const int64_t *shape,
                float *data) {
    CU_ASSERT_FATAL(s->n < MAX_REFS);
    snprintf(s->names[s->n], sizeof s->names[0], "%s%s", prefix, name);
    dk_tensor_ref *r = &s->r[s->n++];
    r->name = s->names[s->n - 1];
    r->ndim = ndim;
    memcpy(r->shape, shape, (size_t)ndim * sizeof *shape);
    r->data = data;
}

/* Run the oracle, print its lines, return the worst relative error (or 1 on failure). */
static double oracle(const char *args) {
    static char out[1 << 16];
    int rc = dk_test_sh(out, sizeof out, "cd %s/tests/tools && /usr/bin/python3 torch_parity.py %s",
                        dk_test_source_dir(), args);
    printf("\n%s", out);
    const char *w = strstr(out, "worst ");
    return rc == 0 && w ? atof(w + 6) : 1.0;
}

static int torch_missing(void) {
    return dk_test_sh(NULL, 0, "/usr/bin/python3 -c 'import torch, numpy'") != 0;
}

typedef struct {
    const char *label;
    dk_unet_config cfg;
    int64_t batch, d, h, w;
} unet_case;

static void fill(float *x, int64_t n, dk_rng *r) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)dk_rng_normal(r);
}

static void run_unet_case(const unet_case *c) {
    dk_rng rng;
    dk_rng_seed(&rng, 2024);
    dk_unet *m = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_unet_create(&m, &c->cfg, 1, &rng), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan(m, c->batch, c->d, c->h, c->w), DK_OK);
    int64_t s = c->d * c->h * c->w, nx = c->batch * c->cfg.in_channels * s;
    float *x = malloc(sizeof(float) * (size_t)nx), *lab = malloc(sizeof(float) * (size_t)(c->batch * s));
    uint8_t *labels = malloc((size_t)(c->batch * s));
    fill(x, nx, &rng);
    for (int64_t i = 0; i < c->batch * s; i++) {
        labels[i] = (uint8_t)dk_rng_below(&rng, (uint64_t)c->cfg.classes);
        lab[i] = labels[i];
    }
    const char *dir = dk_test_tmpdir();
    char ckpt[4096], io[4096];
    snprintf(ckpt, sizeof ckpt, "%s/parity_%s_ckpt.safetensors", dir, c->label);
    snprintf(io, sizeof io, "%s/parity_%s_io.safetensors", dir, c->label);
    CU_ASSERT_EQUAL_FATAL(dk_unet_save(m, ckpt, NULL), DK_OK); /* weights before the step */
    dk_params_zero_grad(dk_unet_params(m));
    dk_unet_forward(m, x, 1, &rng);
    dk_tap *logits = dk_unet_tap(m, "logits");
    CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
    float loss = (float)dk_loss_ce(logits->grad, logits->value.data, labels, c->batch,
                                   c->cfg.classes, s, 1.0f);
    dk_unet_backward(m);
    refs *r = calloc(1, sizeof *r);
    int spatial3 = c->cfg.dims == 3;
    int64_t xs[5] = {c->batch, c->cfg.in_channels, c->d, c->h, c->w};
    int64_t ls[4] = {c->batch, c->d, c->h, c->w};
    int64_t os[5] = {c->batch, c->cfg.classes, c->d, c->h, c->w};
    if (!spatial3) xs[2] = xs[3], xs[3] = xs[4], ls[1] = ls[2], ls[2] = ls[3], os[2] = os[3], os[3] = os[4];
    add(r, "", "x", spatial3 ? 5 : 4, xs, x);
    add(r, "", "labels", spatial3 ? 4 : 3, ls, lab);
    add(r, "", "logits", spatial3 ? 5 : 4, os, logits->value.data);
    int64_t one = 1;
    add(r, "", "loss", 1, &one, &loss);
    dk_params *p = dk_unet_params(m), *b = dk_unet_buffers(m);
    for (int i = 0; i < p->count; i++)
        add(r, "grad.", p->info[i].name, p->info[i].ndim, p->info[i].shape, p->g + p->info[i].offset);
    for (int i = 0; i < b->count; i++)
        add(r, "after.", b->info[i].name, b->info[i].ndim, b->info[i].shape, b->w + b->info[i].offset);
    CU_ASSERT_EQUAL_FATAL(dk_safetensors_write(io, r->r, r->n, NULL), DK_OK);
    char args[8300];
    snprintf(args, sizeof args, "unet %s %s", ckpt, io);
    printf("\n    [%s]", c->label);
    double worst = oracle(args);
    CU_ASSERT(worst < 1e-4);
    free(r), free(x), free(lab), free(labels);
    dk_unet_free(m);
}

static void test_unets(void) {
    if (torch_missing()) {
        dk_test_skip("unet parity", "python3-torch is not importable by /usr/bin/python3");
        return;
    }
    const unet_case cases[] = {
        {"2d_batch_transposed", {2, 1, 2, 4, 3, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0, 0, {{0}}, {{0}}}, 2, 1, 16, 16},
        {"3d_batch_transposed", {3, 1, 3, 3, 3, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0, 0, {{0}}, {{0}}}, 2, 8, 8, 8},
        {"2d_instance_interp_leaky", {2, 2, 3, 4, 3, DK_NORM_INSTANCE, DK_UP_INTERP, 0, 0.01f, 0, {{0}}, {{0}}}, 2, 1, 16, 12},
        {"3d_instance_interp", {3, 1, 2, 2, 2, DK_NORM_INSTANCE, DK_UP_INTERP, 0, 0, 0, {{0}}, {{0}}}, 1, 8, 8, 8},
        /* anisotropic: thick slices (1x2x2 pool and 1x3x3 kernels at level 0), and mixes with
         * a 2x2x1 pool, 3x1x3 / 1x1x3 kernels and a 2-D network pooled 2x1 */
        {"3d_aniso_batch_transposed",
         {3, 1, 3, 3, 3, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0, 0, {{1, 2, 2}, {2, 2, 2}},
          {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}}}, 2, 4, 8, 8},
        {"3d_aniso_instance_interp_leaky",
         {3, 2, 3, 2, 3, DK_NORM_INSTANCE, DK_UP_INTERP, 0, 0.01f, 0, {{1, 2, 2}, {2, 2, 1}},
          {{1, 3, 3}, {3, 1, 3}, {3, 3, 3}}}, 2, 4, 8, 12},
        {"2d_aniso_batch_interp",
         {2, 1, 2, 3, 3, DK_NORM_BATCH, DK_UP_INTERP, 0, 0, 0, {{1, 2, 2}, {1, 2, 1}},
          {{1, 3, 3}, {1, 1, 3}, {1, 3, 3}}}, 2, 1, 16, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_unet_case(&cases[i]);
}

/* One conv(3, no bias) -> batch norm (train) -> ReLU block through the layer kernels. */
static void run_block(int dims) {
    const int64_t n = 2, cin = 3, cout = 4, d = dims == 3 ? 6 : 1, h = 7, w = 6, s = d * h * w;
    dk_conv_shape cs;
    dk_conv_shape_make(&cs, n, cin, cout, d, h, w, 3, 1);
    dk_norm_shape ns = {n, cout, s, 1e-5f, 0.1f};
    int64_t nx = n * cin * s, ny = n * cout * s, nw = cout * cin * cs.kd * 9;
    float *buf = calloc((size_t)(3 * nx + 6 * ny + 2 * nw + 8 * cout), sizeof(float));
    float *x = buf, *din = x + nx, *y = din + nx, *out = y + ny, *dout = out + ny;
    float *dy = dout + ny, *dz = dy + ny, *wt = dz + ny, *dw = wt + nw;
    float *gamma = dw + nw, *beta = gamma + cout, *dg = beta + cout, *db = dg + cout;
    float *mean = db + cout, *rstd = mean + cout, *rm = rstd + cout, *rv = rm + cout;
    float *work = calloc(dk_conv_work_floats(&cs) + 1, sizeof(float));
    dk_rng rng;
    dk_rng_seed(&rng, 7);
    fill(x, nx, &rng), fill(wt, nw, &rng), fill(dout, ny, &rng);
    for (int c = 0; c < cout; c++) gamma[c] = 1.0f + 0.1f * (float)c, beta[c] = 0.05f * (float)c, rv[c] = 1;
    dk_conv_forward(y, x, wt, NULL, &cs, work);
    dk_batchnorm_forward_train(out, mean, rstd, rm, rv, y, gamma, beta, &ns);
    dk_relu_forward(out, out, ny, 0.0f);
    dk_relu_backward(dz, dout, out, ny, 0.0f);
    dk_batchnorm_backward(dy, dg, db, dz, y, mean, rstd, gamma, &ns);
    dk_conv_backward(din, dw, NULL, dy, x, wt, &cs, work);
    refs *r = calloc(1, sizeof *r);
    int nd = dims == 3 ? 5 : 4;
    int64_t xs[5] = {n, cin, d, h, w}, ys[5] = {n, cout, d, h, w}, ws[5] = {cout, cin, 3, 3, 3};
    if (dims == 2) xs[2] = h, xs[3] = w, ys[2] = h, ys[3] = w;
    int64_t cs1[1] = {cout};
    add(r, "", "x", nd, xs, x), add(r, "", "din", nd, xs, din);
    add(r, "", "out", nd, ys, out), add(r, "", "dout", nd, ys, dout);
    add(r, "", "conv.weight", nd, ws, wt), add(r, "grad.", "conv.weight", nd, ws, dw);
    add(r, "", "norm.weight", 1, cs1, gamma), add(r, "", "norm.bias", 1, cs1, beta);
    add(r, "grad.", "norm.weight", 1, cs1, dg), add(r, "grad.", "norm.bias", 1, cs1, db);
    char io[4096], args[4200];
    snprintf(io, sizeof io, "%s/parity_block%dd.safetensors", dk_test_tmpdir(), dims);
    CU_ASSERT_EQUAL_FATAL(dk_safetensors_write(io, r->r, r->n, NULL), DK_OK);
    snprintf(args, sizeof args, "block %s", io);
    printf("\n    [block %dD]", dims);
    CU_ASSERT(oracle(args) < 1e-4);
    free(r), free(buf), free(work);
}

static void test_block(void) {
    if (torch_missing()) {
        dk_test_skip("block parity", "python3-torch is not importable by /usr/bin/python3");
        return;
    }
    run_block(2);
    run_block(3);
}

/* The README's five-line reader (json + numpy only) reads a checkpoint dakd wrote. */
static void test_readme_snippet(void) {
    if (dk_test_sh(NULL, 0, "/usr/bin/python3 -c 'import numpy'") != 0) {
        dk_test_skip("README snippet", "numpy is not importable by /usr/bin/python3");
        return;
    }
    dk_unet_config cfg = {2, 1, 2, 3, 3, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0, 0, {{0}}, {{0}}};
    dk_rng rng;
    dk_rng_seed(&rng, 5);
    dk_unet *m = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_unet_create(&m, &cfg, 0, &rng), DK_OK);
    const char *dir = dk_test_tmpdir();
    CU_ASSERT_EQUAL_FATAL(dk_unet_save(m, dk_test_path(dir, "model.safetensors"), NULL), DK_OK);
    dk_unet_free(m);
    /* the python block after the marker, run in the folder holding model.safetensors */
    static char out[4096];
    int rc = dk_test_sh(out, sizeof out,
                        "cd %s && sed -n '/safetensors-snippet/,/^```$/p' %s/README.md | "
                        "sed '1,2d;$d' > snippet.py && wc -l < snippet.py && "
                        "/usr/bin/python3 snippet.py", dir, dk_test_source_dir());
    printf("\n    %s", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(atoi(out) == 5);                                   /* five lines */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3 {'enc0.block1.conv.weight': (3, 1, 3, 3)"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("parity with PyTorch", NULL, NULL);
    CU_add_test(s, "conv-BN-ReLU block, 2-D and 3-D", test_block);
    CU_add_test(s, "small U-Nets: forward, loss, gradients, running stats", test_unets);
    CU_add_test(s, "the README's checkpoint reader", test_readme_snippet);
    return dk_test_run();
}
