/*
 * U-Net plan: every layer's shape for one input size, and ONE arena holding every
 * activation, gradient buffer and the convolution workspace.
 *
 * Layout (T_l = batch * w_l * s_l floats, the size of one block output at level l):
 *  - Trainable network: everything backward reads is kept: per block the conv output c and
 *    the activated output a (the ReLU runs in place on the norm output; without a norm
 *    c == a), norm mean/rstd, the pooled tensor and its argmax, the dropout mask, and per
 *    decoder level the concat buffer cat (2 T_l). The up path writes its output straight
 *    into cat's second half (one transposed conv / upsampling call per sample, since
 *    per-sample slices of (n, 2 w, s) interleave); the skip is copied into the first half
 *    (the encoder output must stay a contiguous tensor for its tap). Gradients: one buffer
 *    per tap (losses write there; backward uses them as the gradient at that point) and two
 *    ping-pong buffers of max over blocks of n * max(cin, cout) * s floats (2 T_0), which
 *    carry every other gradient in mirror order.
 *  - Frozen network (trainable = 0, a teacher): only tensors read by a LATER stage are kept
 *    (taps, pooled tensors, the input copy); everything else lives in one scratch region
 *    shared by every stage (a stage = one encoder level, the bottleneck or one decoder
 *    level), sized by the largest stage. No gradient buffers.
 * The sizing runs twice over the same code: once to measure, once to place pointers.
 */
#include <stdio.h>
#include <string.h>

#include "unet_internal.h"

typedef struct {
    unsigned char *base;  /* NULL while measuring */
    size_t persist;       /* bytes of kept tensors placed so far */
    size_t persist_total; /* the measured total: the scratch region starts there */
    size_t scratch, scratch_max;
    int frozen;
} layout;

static void *take(layout *L, int64_t count, size_t elem, int kept) {
    size_t bytes = ((size_t)count * elem + 63) & ~(size_t)63;
    size_t off;
    if (kept || !L->frozen) {
        off = L->persist;
        L->persist += bytes;
    } else {
        off = L->persist_total + L->scratch;
        L->scratch += bytes;
        if (L->scratch > L->scratch_max) L->scratch_max = L->scratch;
    }
    return L->base ? L->base + off : NULL;
}

static float *takef(layout *L, int64_t count, int kept) {
    return take(L, count, sizeof(float), kept);
}

static void new_stage(layout *L) { L->scratch = 0; }

/* A stride-1 convolution at level v with kernel k (d, h, w): a 3-D net whose depth has been
 * pooled to 1 still uses its 3-deep kernels (only the middle slice meets data). */
static void conv_shape(dk_conv_shape *s, int64_t n, int64_t cin, int64_t cout,
                       const unet_level *v, const int k[3]) {
    dk_conv_shape_make_axes(s, n, cin, cout, v->d, v->h, v->w, k);
}

static const int k_one[3] = {1, 1, 1};

static void block_layout(dk_unet *m, layout *L, unet_block *b, const float *in,
                         const unet_level *v, int out_kept) {
    int64_t cnt = v->n * b->cout * v->s;
    int k[3];
    unet_kernel(m, (int)(v - m->lv), k);
    conv_shape(&b->cs, v->n, b->cin, b->cout, v, k);
    b->ns = (dk_norm_shape){.n = v->n, .c = b->cout, .s = v->s, .eps = 1e-5f, .momentum = 0.1f};
    b->in = in;
    if (m->cfg.norm == DK_NORM_NONE) {
        b->c = b->a = takef(L, cnt, out_kept);
        b->mean = b->rstd = NULL;
        return;
    }
    b->c = takef(L, cnt, 0);
    b->a = takef(L, cnt, out_kept);
    b->mean = takef(L, v->n * b->cout, 0);
    b->rstd = takef(L, v->n * b->cout, 0);
}

static void add_tap(dk_unet *m, layout *L, dk_tap **slot, const char *name, float *value,
                    int64_t c, const unet_level *v) {
    DK_ASSERT(m->ntaps < UNET_MAX_TAPS);
    dk_tap *t = &m->taps[m->ntaps++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->value = dk_tensor_view(value, v->n, c, v->d, v->h, v->w);
    t->grad = m->trainable ? takef(L, v->n * c * v->s, 1) : NULL;
    *slot = t;
}

static void encoder_layout(dk_unet *m, layout *L) {
    int nl = m->cfg.levels;
    const float *in = m->x;
    char name[32];
    for (int l = 0; l < nl; l++) {
        unet_level *v = &m->lv[l];
        new_stage(L);
        block_layout(m, L, &v->b1, in, v, 0);
        /* b2.a is a tap (enc<l>, or the bottleneck when there is no dropout after it) */
        block_layout(m, L, &v->b2, v->b1.a, v, l < nl - 1 || m->cfg.dropout == 0.0f);
        if (l == nl - 1) break;
        int st[3];
        unet_stride(m, l, st);
        dk_pool_shape_make_axes(&v->pool, v->n, v->c, v->d, v->h, v->w, st);
        int64_t pc = v->n * v->c * v->pool.od * v->pool.oh * v->pool.ow;
        v->pooled = takef(L, pc, 1);
        v->argmax = take(L, pc, sizeof(int32_t), 0);
        in = v->pooled;
        snprintf(name, sizeof name, "enc%d", l);
        add_tap(m, L, &m->t_enc[l], name, v->b2.a, v->c, v);
    }
    unet_level *bn = &m->lv[nl - 1];
    float *bval = bn->b2.a;
    m->drop_out = NULL;
    m->drop_mask = NULL;
    if (m->cfg.dropout > 0.0f) {
        m->drop_out = bval = takef(L, bn->n * bn->c * bn->s, 1);
        m->drop_mask = take(L, bn->n * bn->c * bn->s, 1, 0);
    }
    add_tap(m, L, &m->t_bottleneck, "bottleneck", bval, bn->c, bn);
}

/* Up-sampling by the strides of the pool after level v (a 3-D net whose bottleneck has depth
 * 1 still up-samples its depth by 2). */
static void up_layout(dk_unet *m, layout *L, unet_level *v, const unet_level *below) {
    int st[3];
    unet_stride(m, (int)(v - m->lv), st);
    if (m->cfg.up == DK_UP_TRANSPOSED) {
        dk_convt_shape_make_axes(&v->up_t, 1, below->c, v->c, below->d, below->h, below->w, st);
        v->up_low = NULL;
        return;
    }
    /* interp: 1x1 conv on the coarse grid, then upsample; both are linear and the
     * upsampling weights of each output sum to 1, so this equals Upsample -> Conv1x1 at a
     * quarter (2-D) or an eighth (3-D) of the cost */
    conv_shape(&v->up_c, below->n, below->c, v->c, below, k_one);
    dk_upsample_shape_make_axes(&v->up_i, 1, v->c, below->d, below->h, below->w, st);
    v->up_low = takef(L, below->n * v->c * below->s, 0);
}

static void decoder_layout(dk_unet *m, layout *L) {
    int nl = m->cfg.levels;
    char name[32];
    for (int l = nl - 2; l >= 0; l--) {
        unet_level *v = &m->lv[l];
        new_stage(L);
        up_layout(m, L, v, &m->lv[l + 1]);
        v->cat = takef(L, v->n * 2 * v->c * v->s, 0);
        block_layout(m, L, &v->d1, v->cat, v, 0);
        block_layout(m, L, &v->d2, v->d1.a, v, 1);
        snprintf(name, sizeof name, "dec%d", l);
        add_tap(m, L, &m->t_dec[l], name, v->d2.a, v->c, v);
        m->t_ds[l] = NULL;
        if (unet_has_ds(m, l)) {
            conv_shape(&v->ds.cs, v->n, v->c, m->cfg.classes, v, k_one);
            v->ds.out = takef(L, v->n * m->cfg.classes * v->s, 1);
            snprintf(name, sizeof name, "ds%d", l);
            add_tap(m, L, &m->t_ds[l], name, v->ds.out, m->cfg.classes, v);
        }
    }
    unet_level *top = &m->lv[0];
    conv_shape(&m->head.cs, top->n, top->c, m->cfg.classes, top, k_one);
    m->head.out = takef(L, top->n * m->cfg.classes * top->s, 1);
    add_tap(m, L, &m->t_logits, "logits", m->head.out, m->cfg.classes, top);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static size_t block_work(const dk_unet *m, const unet_block *b) {
    return dk_conv_work_floats_nt(&b->cs, m->threads);
}

/* The workspace and the ping-pong gradient buffers, sized from the shapes set above. */
static void buffers_layout(dk_unet *m, layout *L) {
    size_t work = dk_conv_work_floats_nt(&m->head.cs, m->threads);
    int64_t g = 0;
    for (int l = 0; l < m->cfg.levels; l++) {
        const unet_level *v = &m->lv[l];
        const unet_block *bl[4] = {&v->b1, &v->b2, &v->d1, &v->d2};
        int nb = l == m->cfg.levels - 1 ? 2 : 4;
        for (int k = 0; k < nb; k++) {
            work = max_sz(work, block_work(m, bl[k]));
            int64_t c = bl[k]->cin > bl[k]->cout ? bl[k]->cin : bl[k]->cout;
            if (v->n * c * v->s > g) g = v->n * c * v->s;
        }
        if (l == m->cfg.levels - 1) continue;
        if (m->cfg.up == DK_UP_TRANSPOSED)
            work = max_sz(work, dk_convt_work_floats_nt(&v->up_t, m->threads));
        else
            work = max_sz(work, dk_conv_work_floats_nt(&v->up_c, m->threads));
        if (unet_has_ds(m, l))
            work = max_sz(work, dk_conv_work_floats_nt(&v->ds.cs, m->threads));
    }
    m->work_floats = work;
    m->work = takef(L, (int64_t)max_sz(work, 1), 1);
    m->gbuf_floats = g;
    m->ga = m->gb = m->dx = NULL;
    if (!m->trainable) return;
    m->ga = takef(L, g, 1);
    m->gb = takef(L, g, 1);
    m->dx = takef(L, m->lv[0].n * m->cfg.in_channels * m->lv[0].s, 1);
}

static void lay_out(dk_unet *m, layout *L, int64_t n, int64_t d, int64_t h, int64_t w) {
    int64_t sz[3] = {m->cfg.dims == 3 ? d : 1, h, w};
    for (int l = 0; l < m->cfg.levels; l++) {
        unet_level *v = &m->lv[l];
        v->n = n;
        v->c = unet_width(m, l);
        v->d = sz[0];
        v->h = sz[1];
        v->w = sz[2];
        v->s = v->d * v->h * v->w;
        for (int a = 0; a < 3 && l < m->cfg.levels - 1; a++)
            sz[a] /= dk_unet_pool_at(&m->cfg, l, a);
    }
    m->ntaps = 0;
    m->x = takef(L, n * m->cfg.in_channels * d * h * w, 1);
    encoder_layout(m, L);
    decoder_layout(m, L);
    buffers_layout(m, L);
}

static dk_status check_size(const dk_unet *m, int64_t n, int64_t d, int64_t h, int64_t w) {
    int64_t f[3];
    dk_unet_multiple(&m->cfg, f);
    int iso = dk_unet_is_isotropic(&m->cfg);
    if (n < 1) return dk_fail(DK_ERR_ARG, "unet plan: batch = %lld, must be >= 1", (long long)n);
    if (m->cfg.dims == 2 && d != 1)
        return dk_fail(DK_ERR_ARG, "unet plan: d = %lld, a 2-D network needs d = 1",
                       (long long)d);
    const int64_t sz[3] = {d, h, w};
    const char *nm[3] = {"d", "h", "w"};
    for (int i = m->cfg.dims == 2 ? 1 : 0; i < 3; i++)
        if (sz[i] < f[i] || sz[i] % f[i] != 0)
            return dk_fail(DK_ERR_ARG,
                           "unet plan: %s = %lld is not a positive multiple of %s = %lld",
                           nm[i], (long long)sz[i],
                           iso ? "2^(levels-1)" : "the product of the pool strides along it",
                           (long long)f[i]);
    /* argmax holds int32 plane indices; activations must index in int64 comfortably */
    double vox = (double)d * (double)h * (double)w;
    if (vox > 2147483647.0 ||
        vox * (double)n * (4.0 * m->cfg.base + m->cfg.in_channels + m->cfg.classes) > 0x1p50)
        return dk_fail(DK_ERR_ARG, "unet plan: input %lldx%lldx%lldx%lld is too large",
                       (long long)n, (long long)d, (long long)h, (long long)w);
    return DK_OK;
}

dk_status dk_unet_plan(dk_unet *m, int64_t batch, int64_t d, int64_t h, int64_t w) {
    DK_ASSERT(m != NULL);
    dk_status st = check_size(m, batch, d, h, w);
    if (st != DK_OK) return st;
    int nt = dk_get_threads();
    if (m->planned && m->pn == batch && m->pd == d && m->ph == h && m->pw == w &&
        m->threads == nt)
        return DK_OK;
    unet_unplan(m);
    m->threads = nt;
    layout measure = {.frozen = !m->trainable};
    lay_out(m, &measure, batch, d, h, w);
    size_t total = measure.persist + measure.scratch_max;
    if ((st = dk_arena_init(&m->arena, total)) != DK_OK) return st;
    layout place = {.frozen = !m->trainable, .persist_total = measure.persist};
    place.base = dk_arena_alloc(&m->arena, total);
    DK_ASSERT(place.base != NULL);
    lay_out(m, &place, batch, d, h, w);
    DK_ASSERT(place.persist == measure.persist && place.scratch_max == measure.scratch_max);
    m->planned = 1;
    m->pn = batch;
    m->pd = d;
    m->ph = h;
    m->pw = w;
    m->last_forward_train = 0;
    return DK_OK;
}

void unet_unplan(dk_unet *m) {
    dk_arena_free(&m->arena);
    m->planned = 0;
    m->ntaps = 0;
    m->last_forward_train = 0;
}

size_t dk_unet_plan_bytes(const dk_unet *m) {
    const dk_params *p = &m->params;
    size_t copies = 1 + (p->g != NULL) + (p->m != NULL) + (p->v != NULL);
    size_t bytes = ((size_t)p->total * copies + (size_t)m->buffers.total) * sizeof(float);
    return bytes + (m->planned ? m->arena.capacity : 0);
}
