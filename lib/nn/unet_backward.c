/*
 * U-Net backward, the forward in mirror order: output head, decoder levels from the top
 * down (deep-supervision head, blocks, concat split into skip and up), bottleneck
 * (dropout, blocks), encoder levels from the bottom up (pool, blocks).
 *
 * Gradient buffers: each tap's grad is the gradient at that point (losses have added
 * their part; the layers above add theirs: the head into dec0, the skip into enc<l>, the
 * up path into the level below). Everything else flows through two ping-pong buffers
 * A and B (m->ga, m->gb): a block's output gradient is masked by the activation in place,
 * the norm backward writes the conv-output gradient into the other buffer, and the conv
 * backward writes the input gradient into the buffer just consumed (or, without a norm,
 * into the other one). Parameter gradients accumulate; the caller zeroes them once a step.
 */
#include <string.h>

#include "unet_internal.h"

void unet_zero(float *p, int64_t n) {
    enum { BLK = 1 << 16 };
    int64_t nb = (n + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t len = n - b * BLK < BLK ? n - b * BLK : BLK;
        memset(p + b * BLK, 0, (size_t)len * sizeof *p);
    }
}

/* g *= act'(y): the activation backward in place (y is the block output; its sign is the
 * input's, so the saved output suffices). A select of constants, not `if (!(y > 0)) g *=
 * slope`: the branch mispredicts on random signs and stays scalar (17x slower measured). */
static void act_backward_inplace(float *g, const float *y, int64_t n, float slope) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        float k = y[i] > 0.0f ? 1.0f : slope;
        g[i] *= k;
    }
}

/* One block: g (n, cout, s) is dL/d(output), consumed; gc is scratch for dL/d(conv out)
 * (unused without a norm); gx (n, cin, s) receives dL/d(input), zeroed here, or is NULL.
 * gx may be g's buffer only when there is a norm (g is dead once the norm has read it). */
static void block_backward(dk_unet *m, const unet_block *b, float *g, float *gc, float *gx) {
    const dk_norm_shape *ns = &b->ns;
    int64_t cnt = ns->n * ns->c * ns->s;
    float slope = m->cfg.leaky_slope;
    /* batch norm applies the activation mask on the fly (fused kernel) */
    if (m->cfg.norm != DK_NORM_BATCH) act_backward_inplace(g, b->a, cnt, slope);
    const float *dconv = g;
    if (m->cfg.norm != DK_NORM_NONE) {
        unet_zero(gc, cnt);
        float *gamma = unet_w(m, b->gamma);
        if (m->cfg.norm == DK_NORM_BATCH)
            dk_batchnorm_relu_backward(gc, unet_g(m, b->gamma), unet_g(m, b->beta), g, b->a,
                                       b->c, b->mean, b->rstd, gamma, slope, ns);
        else
            dk_instancenorm_backward(gc, unet_g(m, b->gamma), unet_g(m, b->beta), g, b->c,
                                     b->mean, b->rstd, gamma, ns);
        dconv = gc;
    } else {
        DK_ASSERT(gx != g);
    }
    if (gx) unet_zero(gx, b->cs.n * b->cs.cin * b->cs.id * b->cs.ih * b->cs.iw);
    dk_conv_backward_nt(gx, unet_g(m, b->conv_w), unet_g(m, b->conv_b), dconv, b->in,
                        unet_w(m, b->conv_w), &b->cs, m->work, m->threads);
}

/* Picks the buffers for a block whose output gradient is g and runs it; returns where
 * dL/d(input) now is (A or B). */
static float *block_bw(dk_unet *m, const unet_block *b, float *g) {
    float *A = m->ga, *B = m->gb, *gc, *gx;
    int none = m->cfg.norm == DK_NORM_NONE;
    if (g == A) {
        gc = B;
        gx = none ? B : A;
    } else if (g == B) {
        gc = A;
        gx = none ? A : B;
    } else { /* a tap's grad */
        gc = B;
        gx = A;
    }
    block_backward(m, b, g, gc, gx);
    return gx;
}

static void conv1_backward(dk_unet *m, const unet_conv1 *h, float *din, const float *dout,
                           const float *in) {
    dk_conv_backward_nt(din, unet_g(m, h->w), unet_g(m, h->b), dout, in, unet_w(m, h->w),
                        &h->cs, m->work, m->threads);
}

/* The up path of level l: the concat's second half (per sample) back into the gradient of
 * the level below (gbelow, accumulated). spare: a free gradient buffer (interp only). */
static void up_backward(dk_unet *m, const unet_level *v, const unet_level *lb, const float *gcat,
                        const float *below, float *gbelow, float *spare) {
    int64_t half = v->c * v->s, coarse = lb->c * lb->s;
    if (m->cfg.up == DK_UP_TRANSPOSED) {
        for (int64_t i = 0; i < v->n; i++)
            dk_convt_backward_nt(gbelow + i * coarse, unet_g(m, v->up_w), unet_g(m, v->up_b),
                                 gcat + (2 * i + 1) * half, below + i * coarse,
                                 unet_w(m, v->up_w), &v->up_t, m->work, m->threads);
        return;
    }
    int64_t low = v->c * lb->s; /* one sample of up_low */
    unet_zero(spare, v->n * low);
    for (int64_t i = 0; i < v->n; i++)
        dk_upsample2_backward(spare + i * low, gcat + (2 * i + 1) * half, &v->up_i);
    dk_conv_backward_nt(gbelow, unet_g(m, v->up_w), unet_g(m, v->up_b), spare, below,
                        unet_w(m, v->up_w), &v->up_c, m->work, m->threads);
}

static void decoder_backward(dk_unet *m, int l) {
    unet_level *v = &m->lv[l], *lb = &m->lv[l + 1];
    float *gd = m->t_dec[l]->grad;
    if (unet_has_ds(m, l)) conv1_backward(m, &v->ds, gd, m->t_ds[l]->grad, v->d2.a);
    float *g1 = block_bw(m, &v->d2, gd);
    float *gcat = block_bw(m, &v->d1, g1);
    float *spare = gcat == m->ga ? m->gb : m->ga;
    /* cat = [skip, up] per sample: the first half goes to the encoder tap */
    dk_concat_backward(m->t_enc[l]->grad, NULL, gcat, v->n, v->c, v->c, v->s);
    int top = l == m->cfg.levels - 2;
    const float *below = top ? m->t_bottleneck->value.data : lb->d2.a;
    float *gbelow = top ? m->t_bottleneck->grad : m->t_dec[l + 1]->grad;
    up_backward(m, v, lb, gcat, below, gbelow, spare);
}

/* Returns the buffer holding dL/d(last pooled tensor). */
static float *bottleneck_backward(dk_unet *m) {
    unet_level *bn = &m->lv[m->cfg.levels - 1];
    float *g = m->t_bottleneck->grad;
    if (m->drop_out) {
        int64_t cnt = bn->n * bn->c * bn->s;
        unet_zero(m->ga, cnt);
        dk_dropout_backward(m->ga, g, m->drop_mask, cnt, m->cfg.dropout);
        g = m->ga;
    }
    float *g1 = block_bw(m, &bn->b2, g);
    return block_bw(m, &bn->b1, g1);
}

void dk_unet_backward(dk_unet *m) {
    DK_ASSERT(m && m->trainable && m->planned && m->last_forward_train);
    const int nl = m->cfg.levels;
    unet_level *lv = m->lv;
    conv1_backward(m, &m->head, m->t_dec[0]->grad, m->t_logits->grad, lv[0].d2.a);
    for (int l = 0; l <= nl - 2; l++) decoder_backward(m, l);

    float *gp = bottleneck_backward(m);
    for (int l = nl - 2; l >= 0; l--) {
        float *ge = m->t_enc[l]->grad;
        dk_maxpool_backward(ge, gp, lv[l].argmax, &lv[l].pool);
        float *g1 = block_bw(m, &lv[l].b2, ge);
        if (l > 0) {
            gp = block_bw(m, &lv[l].b1, g1);
            continue;
        }
        /* the first block: its input gradient only when asked for */
        float *gc = g1 == m->ga ? m->gb : m->ga;
        block_backward(m, &lv[0].b1, g1, gc, m->want_input_grad ? m->dx : NULL);
    }
}
