/*
 * U-Net forward, written out in network order over the planned arena: encoder levels
 * (two blocks, then max-pool), bottleneck (two blocks, dropout), decoder levels from the
 * bottom up (up into the concat buffer, skip copy, two blocks, deep-supervision head),
 * output head. No allocation; every pointer was placed by dk_unet_plan.
 */
#include <string.h>

#include "unet_internal.h"

/* conv -> norm -> activation. Training batch norm updates the running statistics. */
static void block_forward(dk_unet *m, unet_block *b, int train) {
    dk_conv_forward_nt(b->c, b->in, unet_w(m, b->conv_w), unet_w(m, b->conv_b), &b->cs, m->work,
                       m->threads);
    const float *gamma = unet_w(m, b->gamma), *beta = unet_w(m, b->beta);
    float slope = m->cfg.leaky_slope;
    switch (m->cfg.norm) {
    case DK_NORM_BATCH: /* fused with the activation: one pass less over the output */
        if (train)
            dk_batchnorm_relu_forward_train(b->a, b->mean, b->rstd, unet_buf(m, b->run_mean),
                                            unet_buf(m, b->run_var), b->c, gamma, beta, slope,
                                            &b->ns);
        else
            dk_batchnorm_relu_forward_eval(b->a, b->c, gamma, beta, unet_buf(m, b->run_mean),
                                           unet_buf(m, b->run_var), slope, &b->ns);
        return;
    case DK_NORM_INSTANCE:
        dk_instancenorm_forward(b->a, b->mean, b->rstd, b->c, gamma, beta, &b->ns);
        break;
    case DK_NORM_NONE: /* a == c: the activation runs in place on the biased conv output */
        break;
    }
    dk_relu_forward(b->a, b->a, b->ns.n * b->ns.c * b->ns.s, slope);
}

/* Level l's up path from the level below (`below`, (n, w_{l+1}, coarse s)) into the second
 * half of each sample's concat slice. */
static void up_forward(dk_unet *m, unet_level *v, const float *below, const unet_level *lb) {
    int64_t half = v->c * v->s; /* floats of one sample's half of cat */
    if (m->cfg.up == DK_UP_TRANSPOSED) {
        for (int64_t i = 0; i < v->n; i++)
            dk_convt_forward_nt(v->cat + (2 * i + 1) * half, below + i * lb->c * lb->s,
                                unet_w(m, v->up_w), unet_w(m, v->up_b), &v->up_t, m->work,
                                m->threads);
        return;
    }
    dk_conv_forward_nt(v->up_low, below, unet_w(m, v->up_w), unet_w(m, v->up_b), &v->up_c,
                       m->work, m->threads);
    for (int64_t i = 0; i < v->n; i++)
        dk_upsample2_forward(v->cat + (2 * i + 1) * half, v->up_low + i * v->c * lb->s,
                             &v->up_i);
}

/* The skip (encoder output, (n, w_l, s)) into the first half of each concat slice. */
static void skip_forward(unet_level *v, const float *skip) {
    size_t half = (size_t)(v->c * v->s);
#pragma omp parallel for schedule(static) if (v->n > 1 && half >= (1 << 15))
    for (int64_t i = 0; i < v->n; i++)
        memcpy(v->cat + 2 * (size_t)i * half, skip + (size_t)i * half, half * sizeof(float));
}

static void conv1_forward(dk_unet *m, unet_conv1 *h, const float *in) {
    dk_conv_forward_nt(h->out, in, unet_w(m, h->w), unet_w(m, h->b), &h->cs, m->work,
                       m->threads);
}

static void bottleneck_dropout(dk_unet *m, int train, dk_rng *rng) {
    if (!m->drop_out) return;
    const unet_level *bn = &m->lv[m->cfg.levels - 1];
    int64_t cnt = bn->n * bn->c * bn->s;
    dk_dropout_forward(m->drop_out, m->drop_mask, bn->b2.a, cnt, train ? m->cfg.dropout : 0.0f,
                       rng);
}

void dk_unet_forward(dk_unet *m, const float *x, int train, dk_rng *rng) {
    DK_ASSERT(m && m->planned && x);
    DK_ASSERT(!train || m->cfg.dropout == 0.0f || rng != NULL);
    const int nl = m->cfg.levels;
    unet_level *lv = m->lv;
    memcpy(m->x, x, (size_t)(lv[0].n * m->cfg.in_channels * lv[0].s) * sizeof(float));
    for (int i = 0; i < m->ntaps; i++)
        if (m->taps[i].grad)
            unet_zero(m->taps[i].grad, dk_tensor_numel(&m->taps[i].value));

    for (int l = 0; l < nl - 1; l++) {
        block_forward(m, &lv[l].b1, train);
        block_forward(m, &lv[l].b2, train);
        dk_maxpool_forward(lv[l].pooled, lv[l].argmax, lv[l].b2.a, &lv[l].pool);
    }
    block_forward(m, &lv[nl - 1].b1, train);
    block_forward(m, &lv[nl - 1].b2, train);
    bottleneck_dropout(m, train, rng);

    for (int l = nl - 2; l >= 0; l--) {
        const float *below = l == nl - 2 ? m->t_bottleneck->value.data : lv[l + 1].d2.a;
        up_forward(m, &lv[l], below, &lv[l + 1]);
        skip_forward(&lv[l], lv[l].b2.a);
        block_forward(m, &lv[l].d1, train);
        block_forward(m, &lv[l].d2, train);
        if (unet_has_ds(m, l)) conv1_forward(m, &lv[l].ds, lv[l].d2.a);
    }
    conv1_forward(m, &m->head, lv[0].d2.a);
    m->last_forward_train = train ? 1 : 0;
}
