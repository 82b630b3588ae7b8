/*
 * The U-Net's private state, shared by unet_build.c (config, parameters, taps),
 * unet_plan.c (shapes and the activation arena), unet_forward.c, unet_backward.c and
 * unet_io.c (checkpoints).
 *
 * Parameters are registered by name into two dk_params (trainable weights; batch-norm
 * running statistics) and referred to by their float offset there, -1 when absent.
 * Activations are raw pointers into the one plan arena, set by dk_unet_plan. With
 * s = d*h*w of a level and w_l = base * 2^l:
 *
 *   encoder level l < L-1:  b1: conv(in -> w_l), b2: conv(w_l -> w_l), pool -> pooled
 *                           (kernels and strides per axis: unet_kernel, unet_stride)
 *   bottleneck (l = L-1):    b1, b2 on the last pooled tensor, then dropout
 *   decoder level l < L-1:  up (w_{l+1} -> w_l) into cat's second half, skip into its
 *                           first half; d1: conv(2 w_l -> w_l), d2: conv(w_l -> w_l);
 *                           deep supervision head ds on 1 <= l <= L-2
 *   head: 1x1 conv on dec0.
 */
#ifndef DAKD_UNET_INTERNAL_H
#define DAKD_UNET_INTERNAL_H

#include "conv_internal.h"
#include "dakd/nn.h"

enum { UNET_MAX_LEVELS = DK_UNET_MAX_LEVELS, UNET_MAX_TAPS = 4 * UNET_MAX_LEVELS };

/* conv 3x3[x3] -> norm -> ReLU/leaky. Without a norm the conv has a bias and c == a
 * (the activation runs in place on the conv output). */
typedef struct {
    char name[40];           /* "enc0.block1", "bottleneck.block2", "dec1.block1" */
    int64_t cin, cout;
    int64_t conv_w, conv_b;  /* params: (cout, cin, k..); bias (cout) only without a norm */
    int64_t gamma, beta;     /* params (cout); -1 with DK_NORM_NONE */
    int64_t run_mean, run_var; /* buffers (cout); -1 unless DK_NORM_BATCH */
    /* set by the plan */
    dk_conv_shape cs;
    dk_norm_shape ns;
    const float *in;         /* (n, cin, s) the block input, owned by another stage */
    float *c;                /* (n, cout, s) conv output = norm input */
    float *a;                /* (n, cout, s) block output (norm + activation) */
    float *mean, *rstd;      /* (n * cout) norm statistics (batch norm uses cout) */
} unet_block;

/* A convolution with bias and no norm after it: 1x1 heads, the 1x1 conv of interp up. */
typedef struct {
    int64_t w, b;            /* params: weight (cout, cin, 1..), bias (cout) */
    int64_t cin, cout;
    dk_conv_shape cs;
    float *out;              /* (n, cout, s) */
} unet_conv1;

typedef struct {
    int64_t n, c, d, h, w, s; /* this level's tensors: (n, c = w_l, d, h, w), s = d*h*w */
    /* encoder (or bottleneck when l = L-1) */
    unet_block b1, b2;
    dk_pool_shape pool;      /* b2.a -> pooled (encoder levels only) */
    float *pooled;           /* (n, w_l, s / the product of the pool strides) */
    int32_t *argmax;         /* same shape as pooled */
    /* decoder (l < L-1) */
    unet_block d1, d2;
    int64_t up_w, up_b;      /* transposed: (w_{l+1}, w_l, kd, 2, 2), (w_l);
                                interp: 1x1 conv (w_l, w_{l+1}, 1..), (w_l) */
    dk_convt_shape up_t;     /* transposed, one sample (n = 1): writes into cat */
    dk_conv_shape up_c;      /* interp: 1x1 conv at the coarse grid, whole batch */
    dk_pool_shape up_i;      /* interp: x2 upsampling of one sample (n = 1) */
    float *up_low;           /* interp: (n, w_l, coarse s) the 1x1 conv output */
    float *cat;              /* (n, 2 w_l, s): per sample [skip (w_l, s), up (w_l, s)] */
    unet_conv1 ds;           /* deep supervision head (ds.w = -1 when absent) */
} unet_level;

struct dk_unet {
    dk_unet_config cfg;
    int trainable;
    dk_params params;        /* trainable weights */
    dk_params buffers;       /* running statistics */
    unet_level lv[UNET_MAX_LEVELS];
    unet_conv1 head;
    int want_input_grad;

    /* the plan */
    int planned;
    int64_t pn, pd, ph, pw;  /* planned input size */
    int threads;             /* the thread count the workspace is sized for; the
                                convolutions run with exactly this many */
    dk_arena arena;          /* every activation, gradient buffer and the workspace */
    float *x;                /* (n, in_channels, d, h, w) copy of the forward input */
    float *dx;               /* (same) input gradient, trainable only */
    float *drop_out;         /* (n, w_{L-1}, s) dropout output, only when dropout > 0 */
    uint8_t *drop_mask;      /* (n * w_{L-1} * s) */
    float *ga, *gb;          /* ping-pong gradient buffers (gbuf_floats each) */
    int64_t gbuf_floats;
    float *work;             /* conv / convt scratch (work_floats) */
    size_t work_floats;
    dk_tap taps[UNET_MAX_TAPS];
    int ntaps;
    dk_tap *t_enc[UNET_MAX_LEVELS], *t_dec[UNET_MAX_LEVELS], *t_ds[UNET_MAX_LEVELS];
    dk_tap *t_bottleneck, *t_logits;
    int last_forward_train;  /* the last forward ran with train = 1 */
};

/* Parameter and buffer pointers from offsets (NULL for -1 or an unallocated buffer). */
static inline float *unet_w(dk_unet *m, int64_t off) {
    return off < 0 ? NULL : m->params.w + off;
}
static inline float *unet_g(dk_unet *m, int64_t off) {
    return (off < 0 || !m->params.g) ? NULL : m->params.g + off;
}
static inline float *unet_buf(dk_unet *m, int64_t off) {
    return off < 0 ? NULL : m->buffers.w + off;
}

/* Widths and level count. */
static inline int64_t unet_width(const dk_unet *m, int l) { return (int64_t)m->cfg.base << l; }
static inline int unet_has_ds(const dk_unet *m, int l) {
    return m->cfg.deep_supervision && l >= 1 && l <= m->cfg.levels - 2;
}

/* The effective kernel of level l and pool stride after level l, (d, h, w) (dk_unet_kernel_at,
 * dk_unet_pool_at). */
static inline void unet_kernel(const dk_unet *m, int l, int k[3]) {
    for (int a = 0; a < 3; a++) k[a] = dk_unet_kernel_at(&m->cfg, l, a);
}
static inline void unet_stride(const dk_unet *m, int l, int k[3]) {
    for (int a = 0; a < 3; a++) k[a] = dk_unet_pool_at(&m->cfg, l, a);
}
/* unet_axes.c: DK_ERR_ARG naming the entry when pool or kernel holds a value other than 0
 * and 1/2 (pool) or 1/3 (kernel), a d entry other than 0/1 in 2-D, or a row past the levels
 * that is not zero. */
dk_status unet_check_axes(const dk_unet_config *c);

/* unet_build.c: a model whose parameters and buffers are registered (names, shapes,
 * offsets) but not allocated; dk_unet_create allocates and initialises them. DK_ERR_ARG for
 * a bad config. On failure *out is NULL. */
dk_status unet_new(dk_unet **out, const dk_unet_config *cfg, int trainable);
/* unet_plan.c: drop the plan (arena and pointers). */
void unet_unplan(dk_unet *m);
/* unet_backward.c: p (n) = 0, in parallel blocks: a serial pass over a 16 MB buffer would
 * leave the other threads waiting. */
void unet_zero(float *p, int64_t n);

#endif
