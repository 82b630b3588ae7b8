/*
 * Finite-difference gradient checks (tests/nn/gradcheck.h) for every backward of the layer
 * kernels and for dk_loss_ce, in 2-D (d = 1) and 3-D shapes, with inputs kept away from
 * kinks: ReLU inputs away from 0, max-pool inputs distinct by more than 2 eps.
 * Registered by test_layers.c through layers_grad_register().
 */
#include "test_layers.h"

#include <stdlib.h>
#include <string.h>

#include "dakd/nn.h"
#include "dakd/train.h"
#include "gradcheck.h"

typedef enum { L_POOL, L_UP, L_BN, L_IN, L_RELU, L_CAT, L_SM, L_LSM, L_DROP, L_CE } layer_kind;

/* One layer under test: its variables, outputs and saved state, all heap buffers. */
typedef struct {
    layer_kind kind;
    int64_t n, c, d, h, w, s; /* input shape; s = d*h*w */
    int64_t nin, nout;
    float slope, T, p;
    dk_pool_shape ps;
    dk_norm_shape ns;
    float *x, *dx, *x2, *dx2, *gamma, *dgamma, *beta, *dbeta;
    float *out, *dout, *mean, *rstd, *rm, *rv;
    int32_t *am;
    uint8_t *mask, *lab;
} layer;

static float *fzalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static void layer_forward(void *ctx) {
    layer *L = ctx;
    switch (L->kind) {
    case L_POOL: dk_maxpool_forward(L->out, L->am, L->x, &L->ps); break;
    case L_UP: dk_upsample2_forward(L->out, L->x, &L->ps); break;
    case L_BN:
        dk_batchnorm_forward_train(L->out, L->mean, L->rstd, L->rm, L->rv, L->x, L->gamma, L->beta,
                                   &L->ns);
        break;
    case L_IN:
        dk_instancenorm_forward(L->out, L->mean, L->rstd, L->x, L->gamma, L->beta, &L->ns);
        break;
    case L_RELU: dk_relu_forward(L->out, L->x, L->nin, L->slope); break;
    case L_CAT: dk_concat_forward(L->out, L->x, L->x2, L->n, L->c, 2, L->s); break;
    case L_SM: dk_softmax_forward(L->out, L->x, L->n, L->c, L->s, L->T); break;
    case L_LSM: dk_log_softmax_forward(L->out, L->x, L->n, L->c, L->s, L->T); break;
    case L_DROP: {
        dk_rng r; /* the same mask on every call */
        dk_rng_seed(&r, 99);
        dk_dropout_forward(L->out, L->mask, L->x, L->nin, L->p, &r);
        break;
    }
    case L_CE: L->out[0] = (float)dk_loss_ce(NULL, L->x, L->lab, L->n, L->c, L->s, 1.0f); break;
    }
}

static void layer_backward(void *ctx) {
    layer *L = ctx;
    switch (L->kind) {
    case L_POOL: dk_maxpool_backward(L->dx, L->dout, L->am, &L->ps); break;
    case L_UP: dk_upsample2_backward(L->dx, L->dout, &L->ps); break;
    case L_BN:
        dk_batchnorm_backward(L->dx, L->dgamma, L->dbeta, L->dout, L->x, L->mean, L->rstd, L->gamma,
                              &L->ns);
        break;
    case L_IN:
        dk_instancenorm_backward(L->dx, L->dgamma, L->dbeta, L->dout, L->x, L->mean, L->rstd,
                                 L->gamma, &L->ns);
        break;
    case L_RELU: dk_relu_backward(L->dx, L->dout, L->out, L->nin, L->slope); break;
    case L_CAT: dk_concat_backward(L->dx, L->dx2, L->dout, L->n, L->c, 2, L->s); break;
    case L_SM: dk_softmax_backward(L->dx, L->dout, L->out, L->n, L->c, L->s, L->T); break;
    case L_LSM: dk_log_softmax_backward(L->dx, L->dout, L->out, L->n, L->c, L->s, L->T); break;
    case L_DROP: dk_dropout_backward(L->dx, L->dout, L->mask, L->nin, L->p); break;
    case L_CE: dk_loss_ce(L->dx, L->x, L->lab, L->n, L->c, L->s, L->dout[0]); break;
    }
}

/* Allocate a layer of this kind for input (n, c, d, h, w) and fill its inputs. */
static layer *layer_new(layer_kind kind, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w,
                        uint64_t seed) {
    layer *L = calloc(1, sizeof *L);
    *L = (layer){.kind = kind,
                 .n = n,
                 .c = c,
                 .d = d,
                 .h = h,
                 .w = w,
                 .s = d * h * w,
                 .slope = 0,
                 .T = 1,
                 .p = 0};
    L->nin = n * c * L->s;
    L->nout = L->nin;
    L->ns = (dk_norm_shape){.n = n, .c = c, .s = L->s, .eps = 1e-5f, .momentum = 0.1f};
    if (kind == L_POOL) dk_pool_shape_make(&L->ps, n, c, d, h, w);
    if (kind == L_UP) dk_upsample_shape_make(&L->ps, n, c, d, h, w);
    if (kind == L_POOL || kind == L_UP) L->nout = n * c * L->ps.od * L->ps.oh * L->ps.ow;
    if (kind == L_CAT) L->nout = n * (c + 2) * L->s;
    if (kind == L_CE) L->nout = 1;
    L->x = fzalloc(L->nin), L->dx = fzalloc(L->nin);
    L->x2 = fzalloc(n * 2 * L->s), L->dx2 = fzalloc(n * 2 * L->s);
    L->gamma = fzalloc(c), L->dgamma = fzalloc(c), L->beta = fzalloc(c), L->dbeta = fzalloc(c);
    L->out = fzalloc(L->nout), L->dout = fzalloc(L->nout);
    L->mean = fzalloc(n * c), L->rstd = fzalloc(n * c), L->rm = fzalloc(c), L->rv = fzalloc(c);
    L->am = calloc((size_t)L->nout, sizeof *L->am);
    L->mask = calloc((size_t)L->nin, 1), L->lab = calloc((size_t)(n * L->s), 1);
    dk_gc_fill(L->x, L->nin, -2, 2, seed);
    dk_gc_fill(L->x2, n * 2 * L->s, -1, 1, seed + 1);
    dk_gc_fill(L->gamma, c, 0.5, 1.5, seed + 2);
    dk_gc_fill(L->beta, c, -0.5, 0.5, seed + 3);
    if (kind == L_POOL) dk_gc_fill_distinct(L->x, L->nin, 0.05, seed);
    if (kind == L_RELU) dk_gc_fill_away_from_zero(L->x, L->nin, 0.05, 2, seed);
    dk_rng r;
    dk_rng_seed(&r, seed + 4);
    for (int64_t i = 0; i < n * L->s; i++) /* about one voxel in six ignored */
        L->lab[i] = dk_rng_below(&r, 6) == 0 ? 255 : (uint8_t)dk_rng_below(&r, (uint64_t)c);
    return L;
}

static void layer_free(layer *L) {
    free(L->x), free(L->dx), free(L->x2), free(L->dx2), free(L->gamma), free(L->dgamma);
    free(L->beta), free(L->dbeta), free(L->out), free(L->dout), free(L->mean), free(L->rstd);
    free(L->rm), free(L->rv), free(L->am), free(L->mask), free(L->lab);
    free(L);
}

static int layer_gradcheck(layer *L, const char *label) {
    dk_gc_var vars[4];
    int nv = 0;
    vars[nv++] = (dk_gc_var){"in", L->x, L->dx, L->nin};
    if (L->kind == L_BN || L->kind == L_IN) {
        vars[nv++] = (dk_gc_var){"gamma", L->gamma, L->dgamma, L->c};
        vars[nv++] = (dk_gc_var){"beta", L->beta, L->dbeta, L->c};
    }
    if (L->kind == L_CAT) vars[nv++] = (dk_gc_var){"b", L->x2, L->dx2, L->n * 2 * L->s};
    dk_gradcheck g = {.label = label,
                      .forward = layer_forward,
                      .backward = layer_backward,
                      .ctx = L,
                      .out = L->out,
                      .dout = L->dout,
                      .nout = L->nout,
                      .vars = vars,
                      .nvars = nv,
                      .atol = 1e-4,
                      .seed = 7};
    if (L->kind == L_POOL) g.eps = 5e-3; /* below half the 0.05 spacing of the inputs */
    if (L->kind == L_CE) {
        /* gradients are ~1/V: a tight atol, and a wider step so the float loss's rounding
         * (~1e-7) stays below it */
        g.eps = 5e-2;
        g.atol = 1e-5;
    }
    return dk_gradcheck_run(&g);
}

/* The 2-D and 3-D shapes every layer is checked on (n, c, d, h, w). */
static const int64_t shapes[2][5] = {{2, 3, 1, 6, 7}, {2, 2, 4, 5, 6}};

static void check_kind(layer_kind kind, const char *label, float slope, float T, float p) {
    for (int k = 0; k < 2; k++) {
        const int64_t *sh = shapes[k];
        layer *L = layer_new(kind, sh[0], sh[1], sh[2], sh[3], sh[4], 100 + (uint64_t)k);
        L->slope = slope, L->T = T, L->p = p;
        char name[64];
        snprintf(name, sizeof name, "%s %s", label, k == 0 ? "2d" : "3d");
        CU_ASSERT_EQUAL(layer_gradcheck(L, name), 0);
        layer_free(L);
    }
}

static void test_grad_maxpool(void) { check_kind(L_POOL, "maxpool", 0, 1, 0); }
static void test_grad_upsample(void) { check_kind(L_UP, "upsample", 0, 1, 0); }
static void test_grad_batchnorm(void) { check_kind(L_BN, "batchnorm", 0, 1, 0); }
static void test_grad_instancenorm(void) { check_kind(L_IN, "instnorm", 0, 1, 0); }
static void test_grad_relu(void) { check_kind(L_RELU, "relu", 0, 1, 0); }
static void test_grad_leaky_relu(void) { check_kind(L_RELU, "leaky", 0.01f, 1, 0); }
static void test_grad_concat(void) { check_kind(L_CAT, "concat", 0, 1, 0); }
static void test_grad_softmax(void) { check_kind(L_SM, "softmax", 0, 1.7f, 0); }
static void test_grad_log_softmax(void) { check_kind(L_LSM, "logsoftmax", 0, 0.6f, 0); }
static void test_grad_dropout(void) { check_kind(L_DROP, "dropout", 0, 1, 0.3f); }
static void test_grad_ce(void) { check_kind(L_CE, "ce", 0, 1, 0); }

/* ------------------------------------------------------------------ accumulation */

/* Backward adds: starting from gradients holding a pattern P gives exactly the gradients
 * from zero plus P (up to one float rounding). Checked for every backward. */
static void check_accumulates(layer_kind kind, float p) {
    layer *L = layer_new(kind, 2, 3, 4, 4, 6, 31);
    L->p = p, L->slope = 0.1f, L->T = 1.3f;
    int64_t n2 = L->n * 2 * L->s;
    float *g0 = fzalloc(L->nin), *g0b = fzalloc(n2), *gg0 = fzalloc(L->c), *gb0 = fzalloc(L->c);
    dk_gc_fill(L->dout, L->nout, -1, 1, 5);
    layer_forward(L);
    layer_backward(L); /* from zero */
    memcpy(g0, L->dx, (size_t)L->nin * 4), memcpy(g0b, L->dx2, (size_t)n2 * 4);
    memcpy(gg0, L->dgamma, (size_t)L->c * 4), memcpy(gb0, L->dbeta, (size_t)L->c * 4);
    dk_gc_fill(L->dx, L->nin, 1, 2, 6), dk_gc_fill(L->dx2, n2, 1, 2, 7);
    dk_gc_fill(L->dgamma, L->c, 1, 2, 8), dk_gc_fill(L->dbeta, L->c, 1, 2, 9);
    float *pat = fzalloc(L->nin), *patb = fzalloc(n2), *pg = fzalloc(L->c), *pb = fzalloc(L->c);
    memcpy(pat, L->dx, (size_t)L->nin * 4), memcpy(patb, L->dx2, (size_t)n2 * 4);
    memcpy(pg, L->dgamma, (size_t)L->c * 4), memcpy(pb, L->dbeta, (size_t)L->c * 4);
    layer_backward(L);
    double worst = 0;
    for (int64_t i = 0; i < L->nin; i++)
        worst = fmax(worst, fabs(L->dx[i] - g0[i] - pat[i]));
    for (int64_t i = 0; i < n2; i++)
        worst = fmax(worst, fabs(L->dx2[i] - g0b[i] - patb[i]));
    for (int64_t i = 0; i < L->c; i++) {
        worst = fmax(worst, fabs(L->dgamma[i] - gg0[i] - pg[i]));
        worst = fmax(worst, fabs(L->dbeta[i] - gb0[i] - pb[i]));
    }
    CU_ASSERT(worst < 1e-5);
    if (worst >= 1e-5) printf("\n      kind %d does not accumulate: %g", (int)kind, worst);
    free(g0), free(g0b), free(gg0), free(gb0), free(pat), free(patb), free(pg), free(pb);
    layer_free(L);
}

static void test_backward_accumulates(void) {
    const layer_kind kinds[] = {L_POOL, L_UP, L_BN, L_IN, L_RELU, L_CAT, L_SM, L_LSM, L_DROP, L_CE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        check_accumulates(kinds[i], 0.25f);
}

/* NULL din skips the input gradient but still fills the weight gradients. */
static void test_backward_null_din(void) {
    layer *L = layer_new(L_BN, 2, 3, 1, 4, 5, 41);
    dk_gc_fill(L->dout, L->nout, -1, 1, 5);
    layer_forward(L);
    layer_backward(L);
    float dg = L->dgamma[1], db = L->dbeta[1];
    memset(L->dgamma, 0, 12), memset(L->dbeta, 0, 12);
    float *keep = L->dx;
    L->dx = NULL;
    layer_backward(L);
    L->dx = keep;
    CU_ASSERT_EQUAL(L->dgamma[1], dg);
    CU_ASSERT_EQUAL(L->dbeta[1], db);
    layer_free(L);
}

int layers_grad_register(void) {
    const layer_test t[] = {
        {"maxpool", test_grad_maxpool},
        {"upsample", test_grad_upsample},
        {"batchnorm", test_grad_batchnorm},
        {"instancenorm", test_grad_instancenorm},
        {"relu", test_grad_relu},
        {"leaky relu", test_grad_leaky_relu},
        {"concat", test_grad_concat},
        {"softmax", test_grad_softmax},
        {"log softmax", test_grad_log_softmax},
        {"dropout", test_grad_dropout},
        {"cross-entropy", test_grad_ce},
        {"backward accumulates", test_backward_accumulates},
        {"backward with NULL din", test_backward_null_din},
    };
    return layers_add_suite("layers_grad", t, sizeof t / sizeof t[0]);
}
