/*
 * dakd/nn.h — the network engine: layers as forward/backward pairs, the flat parameter
 * buffers, optimisers and LR schedules, safetensors checkpoints, the U-Net, and the BLAS
 * set-up.
 *
 * What it does not do: losses beyond what a layer needs (dakd/train.h), data loading,
 * file formats other than checkpoints.
 *
 * Tensors are float32, contiguous NCDHW, W fastest; a 2-D network is the same code with
 * D = 1 (its kernels have depth 1, its pools and upsampling leave D alone).
 *
 * Kernel conventions (docs/style.md, "Models"):
 *  - forward(out, saved..., in, weights, &shape, work): OVERWRITES out.
 *  - backward(din, dweights..., dout, saved..., in, weights, &shape, work): ACCUMULATES
 *    into din and the weight gradients (+=); the caller zeroes gradients once a step.
 *    din may be NULL when the input needs no gradient (the network's first layer).
 *  - Kernels do no I/O and no allocation; `work` is caller-allocated scratch of the size
 *    the matching *_work_floats() returns. They assert on programmer errors and return void.
 *  - Threads: kernels use OpenMP on outer loops (dk_get_threads() threads); the
 *    convolutions call single-threaded OpenBLAS inside them, each thread on its own slice
 *    and its own part of `work`; reductions combine per-thread partials in index order
 *    (bit-reproducible for a fixed thread count).
 *
 * Weight layouts follow PyTorch, so a safetensors checkpoint maps 1:1 onto torch modules:
 *   Conv3d/Conv2d weight          (cout, cin, kd, kh, kw)       (2-D: kd = 1, squeezed in files)
 *   ConvTranspose weight          (cin, cout, kd, kh, kw)
 *   BatchNorm/InstanceNorm        weight (c), bias (c); running_mean (c), running_var (c)
 */
#ifndef DAKD_NN_H
#define DAKD_NN_H

#include "dakd/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== layers */

/* Convolution with cubic kernel k in {1, 3}, stride in {1, 2}, zero padding k/2.
 * 2-D (id == 1): kd = sd = 1, pd = 0. Output size o = (i + 2p - k) / s + 1. */
typedef struct {
    int64_t n, cin, cout;
    int64_t id, ih, iw; /* input spatial */
    int64_t od, oh, ow; /* output spatial */
    int kd, kh, kw;
    int sd, sh, sw;
    int pd, ph, pw;
} dk_conv_shape;

void dk_conv_shape_make(dk_conv_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                        int64_t h, int64_t w, int k, int stride);
/* Stride 1 with a kernel per axis k = (kd, kh, kw), each 1 or 3, zero padding k/2 on each
 * axis (output size = input size): the 1x3x3 convolution of a network on thick slices. kd
 * is taken as given even when d == 1 (a 3-D network whose depth has been pooled to 1). */
void dk_conv_shape_make_axes(dk_conv_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                             int64_t h, int64_t w, const int k[3]);
/* Scratch floats needed by dk_conv_forward and dk_conv_backward (the larger of the two) at
 * the current dk_get_threads(): a column buffer per thread and, for backward, a
 * weight-gradient partial per thread beyond the first. The same for dk_convt_work_floats. */
size_t dk_conv_work_floats(const dk_conv_shape *s);
/* out (n, cout, od, oh, ow) = conv(in (n, cin, id, ih, iw), w (cout, cin, kd, kh, kw)) + b.
 * b (cout) may be NULL (no bias). */
void dk_conv_forward(float *out, const float *in, const float *w, const float *b,
                     const dk_conv_shape *s, float *work);
/* din (n, cin, ...) += dL/din (NULL: skip); dw (cout, cin, kd, kh, kw) += dL/dw;
 * db (cout) += dL/db (NULL when no bias). */
void dk_conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                      const float *w, const dk_conv_shape *s, float *work);

/* Transposed convolution with kernel = stride per axis, each 1 or 2 (each input voxel paints
 * its own kd x kh x kw block): out (n, cout, kd*id, kh*ih, kw*iw); w (cin, cout, kd, kh, kw).
 * dk_convt_shape_make gives kh = kw = 2 and kd = 2 in 3-D (d > 1), 1 in 2-D. */
typedef struct {
    int64_t n, cin, cout;
    int64_t id, ih, iw;
    int64_t od, oh, ow;
    int kd; /* 2 in 3-D, 1 in 2-D */
    int kh, kw; /* 2 unless made by dk_convt_shape_make_axes */
} dk_convt_shape;

void dk_convt_shape_make(dk_convt_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                         int64_t h, int64_t w);
/* Kernel and stride k = (kd, kh, kw) per axis, each 1 or 2 (1x2x2: up-sampling in-plane only). */
void dk_convt_shape_make_axes(dk_convt_shape *s, int64_t n, int64_t cin, int64_t cout, int64_t d,
                              int64_t h, int64_t w, const int k[3]);
size_t dk_convt_work_floats(const dk_convt_shape *s);
void dk_convt_forward(float *out, const float *in, const float *w, const float *b,
                      const dk_convt_shape *s, float *work);
void dk_convt_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, const dk_convt_shape *s, float *work);

/* Max-pool with window = stride per axis, each 1 or 2: dk_pool_shape_make gives 2 on every
 * axis (depth untouched in 2-D), dk_pool_shape_make_axes (kd, kh, kw) as asked (1x2x2 pools
 * each slice of a thick-slice volume alone); odd sizes floor as PyTorch. argmax
 * (n, c, od, oh, ow) records the flat input index (within one (n, c) plane) of each maximum,
 * first one on ties in window order (depth, row, column). */
typedef struct {
    int64_t n, c;
    int64_t id, ih, iw;
    int64_t od, oh, ow;
    int kd; /* 2 in 3-D, 1 in 2-D */
    int kh, kw; /* 2 unless made by a *_make_axes function */
} dk_pool_shape;

void dk_pool_shape_make(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w);
void dk_pool_shape_make_axes(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h,
                             int64_t w, const int k[3]);
void dk_maxpool_forward(float *out, int32_t *argmax, const float *in, const dk_pool_shape *s);
void dk_maxpool_backward(float *din, const float *dout, const int32_t *argmax,
                         const dk_pool_shape *s);

/* x2 linear upsampling (bilinear in 2-D, trilinear in 3-D), align_corners = False as
 * PyTorch's nn.Upsample(scale_factor=2, mode='bilinear'/'trilinear'). Reuses dk_pool_shape
 * with the roles swapped: in (n, c, id, ih, iw) is the small grid, out (od, oh, ow) twice it
 * (od = id in 2-D). Use dk_upsample_shape_make, or dk_upsample_shape_make_axes for a factor
 * (kd, kh, kw) per axis, each 1 or 2 (an axis of factor 1 is copied: PyTorch's
 * scale_factor=(1, 2, 2)). */
void dk_upsample_shape_make(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h,
                            int64_t w);
void dk_upsample_shape_make_axes(dk_pool_shape *s, int64_t n, int64_t c, int64_t d, int64_t h,
                                 int64_t w, const int k[3]);
void dk_upsample2_forward(float *out, const float *in, const dk_pool_shape *s);
void dk_upsample2_backward(float *din, const float *dout, const dk_pool_shape *s);

/* Normalisation over a (n, c, s) view, s = d*h*w. */
typedef struct {
    int64_t n, c, s;
    float eps;      /* 1e-5 as PyTorch */
    float momentum; /* batch norm running-stat momentum, 0.1 as PyTorch */
} dk_norm_shape;

/* Batch norm, training: statistics per channel over (n, s). Saves mean (c) and rstd (c)
 * = 1/sqrt(var + eps) (biased var) for backward, and updates running_mean/var (c) as
 * PyTorch: r = (1 - momentum) r + momentum * stat, with the UNBIASED var for running_var. */
void dk_batchnorm_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                                float *running_var, const float *in, const float *gamma,
                                const float *beta, const dk_norm_shape *s);
/* Batch norm, evaluation: running statistics. */
void dk_batchnorm_forward_eval(float *out, const float *in, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, const dk_norm_shape *s);
/* Gradients of the training-mode forward; `in` is the forward's input (xhat recomputed). */
void dk_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, const dk_norm_shape *s);
/* Batch norm followed by (leaky) ReLU with `slope`, fused: one pass less over memory each
 * way. The forwards write act(bn(in)), the same values as the batch-norm forward followed by
 * dk_relu_forward. The backward takes dout = dL/d(activation output) and that output y
 * (its sign is the norm output's) and does what dk_relu_backward into a zeroed buffer and
 * dk_batchnorm_backward of that would, without the buffer: din += bn'(dout * act'(y)). */
void dk_batchnorm_relu_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                                     float *running_var, const float *in, const float *gamma,
                                     const float *beta, float slope, const dk_norm_shape *s);
void dk_batchnorm_relu_forward_eval(float *out, const float *in, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, float slope,
                                    const dk_norm_shape *s);
void dk_batchnorm_relu_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *y, const float *in, const float *mean,
                                const float *rstd, const float *gamma, float slope,
                                const dk_norm_shape *s);
/* Instance norm with affine gamma/beta (c): statistics per (n, c) over s; mean and rstd
 * have n*c entries. Same in training and evaluation (no running statistics). */
void dk_instancenorm_forward(float *out, float *mean, float *rstd, const float *in,
                             const float *gamma, const float *beta, const dk_norm_shape *s);
void dk_instancenorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                              const float *in, const float *mean, const float *rstd,
                              const float *gamma, const dk_norm_shape *s);

/* ReLU (slope 0) or leaky ReLU (slope > 0) over n elements; out may alias in. */
void dk_relu_forward(float *out, const float *in, int64_t n, float slope);
/* din += dout * (y > 0 ? 1 : slope), where y is the forward OUTPUT (or input: same sign). */
void dk_relu_backward(float *din, const float *dout, const float *y, int64_t n, float slope);

/* Channel concat: out (n, ca + cb, s) = [a (n, ca, s), b (n, cb, s)]. */
void dk_concat_forward(float *out, const float *a, const float *b, int64_t n, int64_t ca,
                       int64_t cb, int64_t s);
void dk_concat_backward(float *da, float *db, const float *dout, int64_t n, int64_t ca,
                        int64_t cb, int64_t s);

/* Softmax over channels of in (n, c, s) at temperature T: out = softmax(in / T).
 * Backward: din += J^T dout, given the forward output. log_softmax likewise. */
void dk_softmax_forward(float *out, const float *in, int64_t n, int64_t c, int64_t s, float T);
void dk_softmax_backward(float *din, const float *dout, const float *out, int64_t n, int64_t c,
                         int64_t s, float T);
void dk_log_softmax_forward(float *out, const float *in, int64_t n, int64_t c, int64_t s,
                            float T);
void dk_log_softmax_backward(float *din, const float *dout, const float *out, int64_t n,
                             int64_t c, int64_t s, float T);

/* Inverted dropout: each element kept with probability 1 - p and scaled by 1/(1 - p);
 * mask (n) records kept elements. p = 0 copies. */
void dk_dropout_forward(float *out, uint8_t *mask, const float *in, int64_t n, float p,
                        dk_rng *rng);
void dk_dropout_backward(float *din, const float *dout, const uint8_t *mask, int64_t n, float p);

/* ======================================================================== parameters */

/* One named tensor inside a flat buffer. */
typedef struct {
    char name[64];   /* e.g. "enc0.conv1.weight" (PyTorch-style dotted names) */
    int ndim;        /* 1..5 */
    int64_t shape[5];
    int64_t offset;  /* in floats from the start of the buffer */
    int64_t numel;
} dk_param_info;

/* A set of named tensors in one contiguous buffer `w`; `g`, `m`, `v` have the same layout
 * (gradients; optimiser state) and are NULL until allocated. Registration first
 * (dk_params_add), then dk_params_alloc. A model has two sets: trainable parameters, and
 * buffers (batch-norm running statistics) that are saved but never get gradients. */
typedef struct {
    dk_param_info *info;
    int count, cap;
    int64_t total; /* floats */
    float *w;      /* (total), owned, 64-byte aligned */
    float *g;      /* (total) or NULL */
    float *m, *v;  /* (total) or NULL */
} dk_params;

void dk_params_init(dk_params *p);
/* Register a tensor; returns its offset, or -1 with DK_ERR_ARG / DK_ERR_NOMEM recorded
 * (duplicate name, bad shape). Only before dk_params_alloc. */
int64_t dk_params_add(dk_params *p, const char *name, int ndim, const int64_t *shape);
/* Allocate w (zeroed), and g when with_grad. */
dk_status dk_params_alloc(dk_params *p, int with_grad);
/* Allocate n_state (1: m; 2: m and v) zeroed optimiser buffers; buffers that already exist
 * are kept as they are. */
dk_status dk_params_alloc_state(dk_params *p, int n_state);
const dk_param_info *dk_params_find(const dk_params *p, const char *name);
void dk_params_zero_grad(dk_params *p);
/* L2 norm of g over the whole buffer (double accumulation, fixed order). */
double dk_params_grad_norm(const dk_params *p);
/* Scale g so its global L2 norm is at most max_norm (PyTorch clip_grad_norm_ with
 * coefficient max_norm / (norm + 1e-6) when that is < 1); returns the pre-clip norm. A NaN or
 * Inf norm is returned with g untouched (the caller decides to skip the step). */
double dk_params_clip_grad_norm(dk_params *p, double max_norm);
/* Fill the named tensor with N(0, std^2) draws from rng (Kaiming-normal: std =
 * sqrt(2 / fan_in), the caller computes fan_in), or with a constant. */
void dk_params_init_normal(dk_params *p, const char *name, double std, dk_rng *rng);
void dk_params_fill(dk_params *p, const char *name, float value);
void dk_params_free(dk_params *p);

/* ======================================================================== optimisers */

typedef enum { DK_OPT_SGD = 0, DK_OPT_ADAMW = 1 } dk_opt_kind;

/* PyTorch semantics (bit-identical to torch 1.13's AVX2 CPU kernels, which fuse a + s*b into
 * an FMA; lib/nn/optim.c says which). SGD: g' = g + wd*w; buf = momentum*buf + g'
 * (buf = g' at step 1, i.e. while step == 0);
 * step = nesterov ? g' + momentum*buf : buf; w -= lr*step.
 * AdamW: w -= lr*wd*w; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 * Weight decay applies to every parameter (as torch.optim with one param group). */
typedef struct {
    dk_opt_kind kind;
    double momentum;     /* SGD; 0.99 nnU-Net, 0.9 common */
    int nesterov;
    double weight_decay;
    double beta1, beta2, eps; /* AdamW: 0.9, 0.999, 1e-8 */
    int64_t step;        /* steps taken (saved in checkpoints) */
} dk_optim;

/* Allocate the state the optimiser needs in p (m; m and v). */
dk_status dk_optim_init(dk_optim *o, dk_params *p);
/* One update of p->w from p->g at learning rate lr; increments o->step. */
void dk_optim_step(dk_optim *o, dk_params *p, double lr);

typedef enum {
    DK_LR_CONSTANT = 0,
    DK_LR_POLY = 1,   /* nnU-Net: base * (1 - t/T)^power, power 0.9 (power <= 0 reads 0.9) */
    DK_LR_COSINE = 2  /* min + (base - min) * (1 + cos(pi t/T)) / 2 */
} dk_lr_kind;

typedef struct {
    dk_lr_kind kind;
    double base, min_lr, power;
    int64_t warmup_steps; /* linear warm-up from base/warmup to base over these steps */
    int64_t total_steps;  /* T (after warm-up) */
} dk_lr_schedule;

/* Learning rate at 0-based step t: a pure function of (schedule, t). Warm-up steps
 * t < warmup give base * (t + 1) / warmup; after it t counts from 0 again over T; past T the
 * value stays at its end (poly 0, cosine min_lr); T <= 0 means constant. */
double dk_lr_at(const dk_lr_schedule *s, int64_t t);

/* ======================================================================== checkpoints */

/* safetensors: u64 little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...}, "name": {"dtype": "F32", "shape": [...],
 *    "data_offsets": [begin, end]}, ...}
 * then the raw little-endian tensor bytes. Written to a temporary name, fsynced, renamed. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[5];
    float *data; /* (prod shape): source when writing, destination when reading; NULL
                  * when reading = match the name and shape only, read nothing */
} dk_tensor_ref;

/* meta: NULL-terminated list of key, value strings (may be NULL). */
dk_status dk_safetensors_write(const char *path, const dk_tensor_ref *t, int n,
                               const char *const *meta);
/* Read every tensor named in t (shape must match exactly; a missing name or a different
 * shape is DK_ERR_FORMAT naming the tensor and both shapes); tensors in the file that t
 * does not name are an error unless allow_extra. If meta_json is not NULL it receives the
 * __metadata__ object as a JSON string (caller frees with free()), "{}" if absent. */
dk_status dk_safetensors_read(const char *path, const dk_tensor_ref *t, int n, int allow_extra,
                              char **meta_json);

/* ======================================================================== U-Net */

typedef enum { DK_NORM_BATCH = 0, DK_NORM_INSTANCE = 1, DK_NORM_NONE = 2 } dk_norm_kind;
typedef enum { DK_UP_TRANSPOSED = 0, DK_UP_INTERP = 1 } dk_up_kind;

enum { DK_UNET_MAX_LEVELS = 7 };

/* A U-Net with `levels` resolution levels of widths base * 2^l (l = 0..levels-1); the last
 * level is the bottleneck (levels - 1 pools). Each level: two (3x3[x3] conv, no bias ->
 * norm -> ReLU/leaky) blocks; down: max-pool 2; up: 2x2 transposed conv (or x2 linear
 * upsampling + 1x1 conv) to the width of the level below it, concat with the skip, two
 * blocks; head: 1x1 conv with bias to `classes`. Deep supervision adds a 1x1 head on each
 * decoder level below the top. Convolutions followed by a norm have no bias.
 *
 * Anisotropic networks (thick slices): `pool` and `kernel` give per level and per axis
 * (d, h, w) the stride of the pool after encoder level l and of the up-sampling back into
 * level l (1 or 2; the max-pool window, the transposed-conv kernel and the interpolation
 * factor equal it), and the kernel of level l's four 3x3[x3] convolutions, encoder and
 * decoder (1 or 3, zero padding k/2 per axis). An entry 0 is today's value (2; 3), so a
 * zeroed array is the isotropic network; a 2-D network's d entries are 0 or 1 (its depth
 * is never pooled and its kernels have depth 1). dk_unet_plan_anisotropic fills both the
 * way nnU-Net plans them. Rows past levels - 2 (pool) and levels - 1 (kernel) must be 0. */
typedef struct {
    int dims;          /* 2 or 3 */
    int in_channels;
    int classes;
    int base;          /* width of level 0 */
    int levels;        /* >= 2 */
    dk_norm_kind norm;
    dk_up_kind up;
    int deep_supervision;
    float leaky_slope; /* 0 = ReLU; 0.01 as nnU-Net */
    float dropout;     /* p at the bottleneck; 0 = none */
    int pool[DK_UNET_MAX_LEVELS][3];   /* (d, h, w) stride after level l, l < levels - 1 */
    int kernel[DK_UNET_MAX_LEVELS][3]; /* (d, h, w) conv kernel of level l, l < levels */
} dk_unet_config;

/* The effective pool stride (1 or 2) after level l and conv kernel (1 or 3) of level l along
 * axis a (0 = d, 1 = h, 2 = w): the config's entry, or its default when 0 (2 and 3; 1 along
 * d in 2-D). */
int dk_unet_pool_at(const dk_unet_config *c, int l, int a);
int dk_unet_kernel_at(const dk_unet_config *c, int l, int a);
/* mult (d, h, w): what every input size along each axis must be a multiple of, the product of
 * the pool strides along it (2^(levels-1) on every axis of an isotropic network; 1 for d in
 * 2-D). */
void dk_unet_multiple(const dk_unet_config *c, int64_t mult[3]);
/* 1 when every pool stride is 2 and every kernel 3 (on the axes the network has): the
 * network of a zeroed pool/kernel array, whatever the arrays hold. */
int dk_unet_is_isotropic(const dk_unet_config *c);

/* The nnU-Net plan (get_pool_and_conv_props of nnU-Net v1/v2) of c->levels - 1 pools for a
 * patch (d, h, w) at voxel spacing (d, h, w) in mm (NULL: 1, 1, 1); fills c->pool and
 * c->kernel (rows past the levels zeroed), reading c->dims and c->levels. Rules, applied
 * pool after pool with the current (pooled) sizes and spacings:
 *  - an axis may be pooled while its extent is even and >= 8 (so it stays >= 4 voxels,
 *    nnU-Net's min_feature_map_size 4), and its spacing is < 2x the finest spacing among the
 *    axes that may be pooled by extent; when a single axis qualifies it must be >= 12
 *    (nnU-Net's rule: do not pool one axis alone down to the minimum);
 *  - a pool halves the extent and doubles the spacing of each axis it pools;
 *  - level l's kernel is 3 on the axes whose spacing at that level is < 2x the finest
 *    spacing at that level, 1 on the others (1x3x3 on thick slices until pooling has brought
 *    them within 2x); the bottleneck follows the same rule (nnU-Net always gives it 3: with
 *    a fixed level count the bottleneck may still be anisotropic).
 * A 2-D network (dims 2) plans h and w only (d: stride and kernel 1). An isotropic patch
 * whose sides stay >= 4 gives the isotropic network (every stride 2, every kernel 3).
 * DK_ERR_ARG when no axis qualifies before levels - 1 pools are placed (the message says how
 * many the patch allows), or for a patch side < 1 or a spacing <= 0; c is unchanged then. */
dk_status dk_unet_plan_anisotropic(dk_unet_config *c, const int64_t patch[3],
                                   const double spacing[3]);

/* Per-level axis triples as text, "1,2,2; 1,2,2; 2,2,2" (d,h,w per level, levels separated
 * by ';'), as [model] *_pool / *_kernel and the model file's dakd.config.pool / .kernel
 * spell them. Parse: v[0..count) filled, the rest of v zeroed; DK_ERR_ARG for text that is
 * not 1..DK_UNET_MAX_LEVELS triples of integers (the message quotes it; the caller adds the
 * key). Format: n triples into buf (always terminated). */
dk_status dk_unet_axes_parse(int v[DK_UNET_MAX_LEVELS][3], int *count, const char *text);
void dk_unet_axes_format(char *buf, size_t size, const int *v, int n); /* v (n, 3) */

/* A named feature map through which losses read activations and add gradients. Names:
 * "enc<l>" (output of encoder level l, l < levels-1), "bottleneck", "dec<l>" (output of
 * decoder level l), "ds<l>" (deep-supervision logits at decoder level l), "logits".
 * `grad` has the value's shape; it is zeroed by each forward, losses ADD into it, and
 * dk_unet_backward propagates it. Backward uses the tap grads as its own gradient buffers:
 * afterwards they hold intermediate values (read what you need before it). A network
 * built with trainable = 0 has no tap grads (grad = NULL). */
typedef struct {
    char name[32];
    dk_tensor value; /* borrowed view into the activation arena */
    float *grad;     /* borrowed; same shape */
} dk_tap;

typedef struct dk_unet dk_unet;

/* Build the network and its parameters (Kaiming-normal conv weights, zero biases, norm
 * gamma 1 / beta 0) from rng. trainable = 0 (a frozen teacher) allocates no gradient or
 * optimiser memory. DK_ERR_ARG for a bad config. */
dk_status dk_unet_create(dk_unet **out, const dk_unet_config *cfg, int trainable, dk_rng *rng);
void dk_unet_free(dk_unet *m);
const dk_unet_config *dk_unet_get_config(const dk_unet *m);
dk_params *dk_unet_params(dk_unet *m);  /* trainable parameters */
dk_params *dk_unet_buffers(dk_unet *m); /* running statistics */

/* Size the activation arena and workspace for input (batch, in_channels, d, h, w); d = 1
 * for 2-D. Spatial sizes must be divisible by dk_unet_multiple (2^(levels-1) when isotropic;
 * DK_ERR_ARG otherwise, naming the axis and the multiple).
 * Re-planning with the same sizes and the same dk_get_threads() is free; the workspace is
 * sized for, and the network runs on, the thread count of the last plan (call dk_unet_plan
 * again after dk_set_threads). Returns DK_ERR_NOMEM when it cannot allocate. */
dk_status dk_unet_plan(dk_unet *m, int64_t batch, int64_t d, int64_t h, int64_t w);
/* Bytes held by the plan (activations + workspace) and by the parameters. */
size_t dk_unet_plan_bytes(const dk_unet *m);

/* Forward pass on x (batch, in_channels, d, h, w); train = 1 uses batch statistics,
 * updates running stats and applies dropout (from rng; may be NULL when dropout = 0),
 * train = 0 is inference. Zeroes every tap's grad. */
void dk_unet_forward(dk_unet *m, const float *x, int train, dk_rng *rng);
/* Back-propagate the tap gradients (at least "logits" set by a loss) into the parameter
 * gradients (accumulating). Only after a train = 1 forward, only when trainable. */
void dk_unet_backward(dk_unet *m);
/* dL/dx (batch, in_channels, d, h, w), OVERWRITTEN by each dk_unet_backward when enabled
 * with dk_unet_want_input_grad(m, 1) (off by default: the first convolution then skips
 * its input gradient). Borrowed from the plan; NULL before a plan or when disabled. */
void dk_unet_want_input_grad(dk_unet *m, int on);
const float *dk_unet_input_grad(const dk_unet *m);

int dk_unet_tap_count(const dk_unet *m);
dk_tap *dk_unet_tap_at(dk_unet *m, int i);
dk_tap *dk_unet_tap(dk_unet *m, const char *name); /* NULL if no such tap */

/* Checkpoints: parameters and buffers under PyTorch-style names, the config and `meta`
 * (NULL-terminated key/value list, e.g. step and RNG state) in __metadata__. Loading
 * checks names and shapes against the model and says which one differs. The config is
 * "dakd.config.<field>"; an anisotropic network adds dakd.config.pool and .kernel (its
 * effective strides and kernels, dk_unet_axes_format), an isotropic one writes neither (its
 * file is byte for byte what dakd wrote before them), and a dakd file without them is an
 * isotropic network to every loader. */
dk_status dk_unet_save(const dk_unet *m, const char *path, const char *const *meta);
dk_status dk_unet_load(dk_unet *m, const char *path, char **meta_json);
/* Build a frozen network (trainable = 0, for inference) from the dakd.config.* keys of the
 * checkpoint at `path` and load its weights into it. The file's tensors (names, shapes, and
 * so their total size against the file's size) are checked against the network the keys
 * describe BEFORE its weights are allocated, so a file of metadata alone fails at once,
 * whatever size of network it names. *out is the caller's (dk_unet_free);
 * meta_json (may be NULL) receives the whole __metadata__ as JSON (free()). On failure *out
 * is NULL: DK_ERR_IO (unreadable), DK_ERR_FORMAT (not safetensors, a dakd.config.* key
 * missing or bad — named —, tensors that do not match the config). */
dk_status dk_unet_open(dk_unet **out, const char *path, char **meta_json);

/* ======================================================================== BLAS and threads */

/* Before any BLAS call: when the user has not set OPENBLAS_CORETYPE and this CPU has
 * AVX-512 that Debian's OpenBLAS 0.3.21 does not recognise, the process must be started
 * again with OPENBLAS_CORETYPE=SkylakeX (OpenBLAS reads it only at load time).
 * dk_blas_want_coretype returns the value to set ("SkylakeX", "Haswell") or NULL when
 * nothing should change (already set by the user, or no better kernel). */
const char *dk_blas_want_coretype(void);
/* For programs (the dakd command, benchmarks), first thing in main(): restart the process
 * once (execv of /proc/self/exe's target with argv), with what must be set before the
 * libraries load and the user has not set put into the environment:
 *  - OPENBLAS_CORETYPE, when dk_blas_want_coretype() names a kernel;
 *  - OMP_WAIT_POLICY=passive, when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set
 *    (libgomp's default spinning costs 3-6x on cores shared with another busy process and
 *    gains nothing measurable on quiet ones; lib/nn/blas.c).
 * A user's value is never overridden. DAKD_BLAS_RESTARTED names what was set (see
 * dk_blas_chose) and prevents a second restart. Returns only when nothing needed doing, when
 * the process was already restarted, or when exec failed; the process then runs on with what
 * it has (dk_blas_kernel() tells the kernel). */
void dk_blas_restart_if_needed(char **argv);
/* 1 when dk_blas_restart_if_needed set the environment variable `var` (e.g.
 * "OPENBLAS_CORETYPE", "OMP_WAIT_POLICY") for this process, else 0. */
int dk_blas_chose(const char *var);
/* The kernel OpenBLAS is using ("SkylakeX", "Prescott", ...) and its configuration. */
const char *dk_blas_kernel(void);
const char *dk_blas_config(void);
/* Which convolution path the stride-1 layers take on this CPU: a direct AVX2 + FMA kernel
 * (rows at least 16 wide, at most 32 input and output channels) or vol2col + sgemm;
 * DAKD_CONV=gemm in the environment keeps the GEMM path everywhere. The bits of a network's
 * output depend on it, as on the BLAS kernel. */
const char *dk_conv_path(void);
/* One thread setting for the OpenMP loops (n <= 0: number of cores). OpenBLAS itself is kept
 * at one thread: the kernels call it from their own OpenMP threads, each on its own slice
 * (two thread pools spinning on the same cores made 2 threads slower than 1). Kernels size
 * their workspace for dk_get_threads() (*_work_floats): query it again after a change. */
void dk_set_threads(int n);
int dk_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
