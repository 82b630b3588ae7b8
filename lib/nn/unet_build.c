/*
 * U-Net construction: config validation, parameter registration under PyTorch-style names,
 * initialisation, and the small accessors.
 *
 * Names (a PyTorch module tree with these attribute names loads the checkpoint 1:1):
 *   enc<l>.block<1|2>.conv.weight            (cout, cin, 3, 3[, 3]), or level l's kernel
 *                                            (kd, kh, kw); .conv.bias with norm NONE
 *   enc<l>.block<k>.norm.weight / .bias      (cout)   BatchNorm/InstanceNorm affine
 *   enc<l>.block<k>.norm.running_mean / _var (cout)   buffers, batch norm only
 *   bottleneck.block<k>.*                    the last level (no pool after it)
 *   up<l>.weight / .bias                     ConvTranspose (w_{l+1}, w_l, 2, 2[, 2]) into level l,
 *                                            or the pool strides after level l (1, 2, 2)
 *   up<l>.conv.weight / .bias                interp: the 1x1 conv (w_l, w_{l+1}, 1, 1[, 1])
 *   dec<l>.block<k>.*                        decoder level l (block1 reads the concat)
 *   ds<l>.weight / .bias                     deep supervision 1x1 head, 1 <= l <= levels-2
 *   head.weight / .bias                      the 1x1 output head
 * 2-D weights are registered with PyTorch's 4-D shapes (no depth axis); the memory layout
 * is the same as with kd = 1, so the kernels read them unchanged.
 *
 * Initialisation: every weight with ndim >= 2 is Kaiming-normal, std = sqrt(2 / fan_in)
 * with fan_in = shape[1] * prod(shape[2:]) as torch.nn.init computes it. For a transposed
 * convolution that is cout * kd*2*2 (PyTorch's convention for the (cin, cout, ...) layout,
 * what nnU-Net's InitWeights_He gets), not the true fan-in cin. Biases 0, norm weight 1,
 * bias 0, running_mean 0, running_var 1. Draws follow registration order, so a seed fixes
 * every weight; the deep-supervision heads ds<l> draw from a stream of their own
 * (dk_rng_split of the seed's state, index 0x4453), so a network with heads has every other
 * weight equal to the same network without them and an ablation of the heads' loss changes
 * nothing else.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet_internal.h"

/* Registration state: the first failure is kept and later calls do nothing. */
typedef struct {
    dk_unet *m;
    dk_status st;
} builder;

static int64_t reg(builder *b, dk_params *p, const char *prefix, const char *suffix, int ndim,
                   const int64_t *shape) {
    if (b->st != DK_OK) return -1;
    char name[sizeof(((dk_param_info *)0)->name)];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    int64_t off = dk_params_add(p, name, ndim, shape);
    /* Names and shapes are well formed by construction, so only the table growth can fail
     * (dk_params_add recorded the message). */
    if (off < 0) b->st = DK_ERR_NOMEM;
    return off;
}

/* A conv / transposed-conv weight: (a, b, kd, kh, kw), 2-D nets drop the depth axis. */
static int64_t reg_kernel(builder *b, const char *prefix, const char *suffix, int64_t a,
                          int64_t c, const int k[3]) {
    int two = b->m->cfg.dims == 2;
    int64_t shape[5] = {a, c, k[two], k[two + 1], two ? 0 : k[2]};
    return reg(b, &b->m->params, prefix, suffix, b->m->cfg.dims + 2, shape);
}

static const int k_one[3] = {1, 1, 1};

static int64_t reg_vec(builder *b, dk_params *p, const char *prefix, const char *suffix,
                       int64_t n) {
    return reg(b, p, prefix, suffix, 1, &n);
}

/* A block of level l: its kernel is the level's (unet_kernel). */
static void reg_block(builder *b, unet_block *blk, const char *prefix, int l, int64_t cin,
                      int64_t cout) {
    const dk_unet_config *c = &b->m->cfg;
    int k[3];
    unet_kernel(b->m, l, k);
    snprintf(blk->name, sizeof blk->name, "%s", prefix);
    blk->cin = cin;
    blk->cout = cout;
    blk->conv_w = reg_kernel(b, prefix, "conv.weight", cout, cin, k);
    blk->conv_b = blk->gamma = blk->beta = blk->run_mean = blk->run_var = -1;
    if (c->norm == DK_NORM_NONE) {
        blk->conv_b = reg_vec(b, &b->m->params, prefix, "conv.bias", cout);
        return;
    }
    blk->gamma = reg_vec(b, &b->m->params, prefix, "norm.weight", cout);
    blk->beta = reg_vec(b, &b->m->params, prefix, "norm.bias", cout);
    if (c->norm == DK_NORM_BATCH) {
        blk->run_mean = reg_vec(b, &b->m->buffers, prefix, "norm.running_mean", cout);
        blk->run_var = reg_vec(b, &b->m->buffers, prefix, "norm.running_var", cout);
    }
}

static void reg_conv1(builder *b, unet_conv1 *h, const char *prefix, const char *wname,
                      const char *bname, int64_t cin, int64_t cout) {
    h->cin = cin;
    h->cout = cout;
    h->w = reg_kernel(b, prefix, wname, cout, cin, k_one);
    h->b = reg_vec(b, &b->m->params, prefix, bname, cout);
}

/* Register everything in forward order: encoder, bottleneck, then per decoder level up,
 * blocks and deep-supervision head, then the output head. */
static void register_all(builder *b) {
    dk_unet *m = b->m;
    const dk_unet_config *c = &m->cfg;
    int L = c->levels;
    char pre[32];
    for (int l = 0; l < L; l++) {
        int64_t cin = l == 0 ? c->in_channels : unet_width(m, l - 1), w = unet_width(m, l);
        const char *lvl = l == L - 1 ? "bottleneck" : "enc";
        for (int k = 1; k <= 2; k++) {
            if (l == L - 1) snprintf(pre, sizeof pre, "%s.block%d", lvl, k);
            else snprintf(pre, sizeof pre, "%s%d.block%d", lvl, l, k);
            reg_block(b, k == 1 ? &m->lv[l].b1 : &m->lv[l].b2, pre, l, k == 1 ? cin : w, w);
        }
    }
    for (int l = L - 2; l >= 0; l--) {
        unet_level *v = &m->lv[l];
        int64_t w = unet_width(m, l), wb = unet_width(m, l + 1);
        snprintf(pre, sizeof pre, "up%d", l);
        if (c->up == DK_UP_TRANSPOSED) {
            int st[3];
            unet_stride(m, l, st);
            v->up_w = reg_kernel(b, pre, "weight", wb, w, st);
            v->up_b = reg_vec(b, &m->params, pre, "bias", w);
        } else {
            unet_conv1 tmp;
            reg_conv1(b, &tmp, pre, "conv.weight", "conv.bias", wb, w);
            v->up_w = tmp.w;
            v->up_b = tmp.b;
        }
        for (int k = 1; k <= 2; k++) {
            snprintf(pre, sizeof pre, "dec%d.block%d", l, k);
            reg_block(b, k == 1 ? &v->d1 : &v->d2, pre, l, k == 1 ? 2 * w : w, w);
        }
        v->ds.w = v->ds.b = -1;
        if (unet_has_ds(m, l)) {
            snprintf(pre, sizeof pre, "ds%d", l);
            reg_conv1(b, &v->ds, pre, "weight", "bias", w, c->classes);
        }
    }
    reg_conv1(b, &m->head, "head", "weight", "bias", unet_width(m, 0), c->classes);
}

static void init_weights(dk_unet *m, dk_rng *rng) {
    dk_rng heads = dk_rng_split(rng, 0x4453);
    for (int i = 0; i < m->params.count; i++) {
        const dk_param_info *e = &m->params.info[i];
        size_t len = strlen(e->name);
        if (e->ndim >= 2) {
            int64_t fan_in = e->shape[1];
            for (int k = 2; k < e->ndim; k++) fan_in *= e->shape[k];
            int head = strncmp(e->name, "ds", 2) == 0;
            dk_params_init_normal(&m->params, e->name, sqrt(2.0 / (double)fan_in),
                                  head ? &heads : rng);
        } else if (len > 12 && strcmp(e->name + len - 12, ".norm.weight") == 0) {
            dk_params_fill(&m->params, e->name, 1.0f);
        }
    }
    for (int i = 0; i < m->buffers.count; i++) {
        const dk_param_info *e = &m->buffers.info[i];
        size_t len = strlen(e->name);
        if (len > 12 && strcmp(e->name + len - 12, ".running_var") == 0)
            dk_params_fill(&m->buffers, e->name, 1.0f);
    }
}

static dk_status check_config(const dk_unet_config *c) {
    if (c->dims != 2 && c->dims != 3)
        return dk_fail(DK_ERR_ARG, "unet config: dims = %d, must be 2 or 3", c->dims);
    if (c->in_channels < 1 || c->in_channels > 65536)
        return dk_fail(DK_ERR_ARG, "unet config: in_channels = %d, must be 1..65536",
                       c->in_channels);
    if (c->classes < 2 || c->classes > 65536)
        return dk_fail(DK_ERR_ARG, "unet config: classes = %d, must be 2..65536", c->classes);
    if (c->base < 1 || c->base > 65536)
        return dk_fail(DK_ERR_ARG, "unet config: base = %d, must be 1..65536", c->base);
    if (c->levels < 2 || c->levels > UNET_MAX_LEVELS)
        return dk_fail(DK_ERR_ARG, "unet config: levels = %d, must be 2..%d", c->levels,
                       UNET_MAX_LEVELS);
    if (c->norm != DK_NORM_BATCH && c->norm != DK_NORM_INSTANCE && c->norm != DK_NORM_NONE)
        return dk_fail(DK_ERR_ARG, "unet config: norm = %d is not a dk_norm_kind", (int)c->norm);
    if (c->up != DK_UP_TRANSPOSED && c->up != DK_UP_INTERP)
        return dk_fail(DK_ERR_ARG, "unet config: up = %d is not a dk_up_kind", (int)c->up);
    if (c->deep_supervision != 0 && c->deep_supervision != 1)
        return dk_fail(DK_ERR_ARG, "unet config: deep_supervision = %d, must be 0 or 1",
                       c->deep_supervision);
    if (!(c->leaky_slope >= 0.0f && c->leaky_slope < 1.0f))
        return dk_fail(DK_ERR_ARG, "unet config: leaky_slope = %g, must be in [0, 1)",
                       (double)c->leaky_slope);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return dk_fail(DK_ERR_ARG, "unet config: dropout = %g, must be in [0, 1)",
                       (double)c->dropout);
    return unet_check_axes(c);
}

dk_status unet_new(dk_unet **out, const dk_unet_config *cfg, int trainable) {
    *out = NULL;
    dk_status st = check_config(cfg);
    if (st != DK_OK) return st;
    dk_unet *m = calloc(1, sizeof *m);
    if (!m) return dk_fail(DK_ERR_NOMEM, "unet: cannot allocate the model");
    m->cfg = *cfg;
    m->trainable = trainable ? 1 : 0;
    dk_params_init(&m->params);
    dk_params_init(&m->buffers);
    builder b = {m, DK_OK};
    register_all(&b);
    if (b.st != DK_OK) {
        dk_unet_free(m);
        return b.st;
    }
    *out = m;
    return DK_OK;
}

dk_status dk_unet_create(dk_unet **out, const dk_unet_config *cfg, int trainable, dk_rng *rng) {
    DK_ASSERT(out && cfg && rng);
    dk_unet *m;
    *out = NULL;
    dk_status st = unet_new(&m, cfg, trainable);
    if (st != DK_OK) return st;
    st = dk_params_alloc(&m->params, m->trainable);
    if (st == DK_OK) st = dk_params_alloc(&m->buffers, 0);
    if (st != DK_OK) {
        dk_unet_free(m);
        return st;
    }
    init_weights(m, rng);
    *out = m;
    return DK_OK;
}

void dk_unet_free(dk_unet *m) {
    if (!m) return;
    unet_unplan(m);
    dk_params_free(&m->params);
    dk_params_free(&m->buffers);
    free(m);
}

const dk_unet_config *dk_unet_get_config(const dk_unet *m) { return &m->cfg; }
dk_params *dk_unet_params(dk_unet *m) { return &m->params; }
dk_params *dk_unet_buffers(dk_unet *m) { return &m->buffers; }

int dk_unet_tap_count(const dk_unet *m) { return m->planned ? m->ntaps : 0; }

dk_tap *dk_unet_tap_at(dk_unet *m, int i) {
    return (m->planned && i >= 0 && i < m->ntaps) ? &m->taps[i] : NULL;
}

dk_tap *dk_unet_tap(dk_unet *m, const char *name) {
    for (int i = 0; m->planned && i < m->ntaps; i++)
        if (strcmp(m->taps[i].name, name) == 0) return &m->taps[i];
    return NULL;
}

void dk_unet_want_input_grad(dk_unet *m, int on) {
    DK_ASSERT(!on || m->trainable);
    m->want_input_grad = on ? 1 : 0;
}

const float *dk_unet_input_grad(const dk_unet *m) {
    return (m->planned && m->want_input_grad) ? m->dx : NULL;
}
