/*
 * dakd/train.h — losses, schedules and the training loops.
 *
 * Every loss is a forward/backward pair whose formula and normalisation are stated at its
 * declaration; weights and totals are combined by the trainer, never inside a loss.
 * Gradients are ADDED into the caller's buffers (usually a network tap's grad).
 */
#ifndef DAKD_TRAIN_H
#define DAKD_TRAIN_H

#include "dakd/core.h"
#include "dakd/data.h"
#include "dakd/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Softmax cross-entropy over channels:
 *   L = (1/V) * sum_{voxels v with label != 255} -log softmax(logits)[label_v, v]
 * where V is the number of counted voxels (label 255 = ignore). logits (n, c, s), labels
 * (n, s) with values < c or 255. Returns L (0 when V = 0) and adds scale * dL/dlogits
 * into dlogits (n, c, s) (dlogits may be NULL for a forward-only evaluation). */
double dk_loss_ce(float *dlogits, const float *logits, const uint8_t *labels, int64_t n,
                  int64_t c, int64_t s, float scale);

/* ======================================================================== conventions
 *
 * Every loss below follows dk_loss_ce: it RETURNS the loss (a double, accumulated in double
 * in a fixed order, so it repeats bit for bit for a fixed thread count) and, when its
 * gradient pointer is not NULL, ADDS scale * dL/dinput into the caller's buffer (a tap's
 * grad). The trainer passes its weight (alpha, lambda, a sample weight) as `scale`; a loss
 * never weights or sums terms itself. Gradient pointers may be NULL for forward-only use.
 * Workspace, where needed, is caller-allocated with the size the *_work_* function gives;
 * losses allocate nothing. Logits are (n, c, s) with s = d*h*w (channel stride s), and
 * c <= DK_LOSS_MAX_CLASSES. Voxel masks are uint8 (n, s): 0 = excluded, other = counted;
 * NULL counts every voxel. Label maps are uint8 (n, s) with DK_IGNORE_LABEL = not counted. */

enum { DK_LOSS_MAX_CLASSES = 32, DK_IGNORE_LABEL = 255 };

/* labels (nv) set to DK_IGNORE_LABEL where mask (nv) == 0, in place (mask NULL: no-op). The
 * trainer applies a field-of-view mask this way once per batch, so dk_loss_ce and
 * dk_loss_dice (L_sup = CE + Dice, summed by the trainer) see the same counted voxels. */
void dk_labels_apply_mask(uint8_t *labels, const uint8_t *mask, int64_t nv);

/* A voxel mask on a coarser grid (a tap's): out (n, d/fd, h/fh, w/fw) is 1 where ANY voxel of
 * the fd x fh x fw block of mask (n, d, h, w) is counted, else 0 (max-pooling, as the network
 * pools its features). fd, fh, fw >= 1 divide d, h, w. mask NULL: out all 1. */
void dk_mask_pool(uint8_t *out, const uint8_t *mask, int64_t n, int64_t d, int64_t h, int64_t w,
                  int64_t fd, int64_t fh, int64_t fw);

/* Values on a coarser grid: out (planes, d/fd, h/fh, w/fw) is the MEAN of each fd x fh x fw
 * block of in (planes, d, h, w) (planes = n * c), summed in double. fd, fh, fw >= 1 divide
 * d, h, w. The layer self-distillation brings the final logits to a head's grid with it. */
void dk_mean_pool(float *out, const float *in, int64_t planes, int64_t d, int64_t h, int64_t w,
                  int64_t fd, int64_t fh, int64_t fw);

/* ======================================================================== supervised */

/* Soft Dice over the batch ("batch Dice" as nnU-Net), p = softmax(logits), y = one-hot(label),
 * sums over every counted voxel of every sample (label != DK_IGNORE_LABEL):
 *   I_k = sum p_k y_k,  P_k = sum p_k,  Y_k = sum y_k,
 *   L = 1 - (1/|K|) sum_{k in K} (2 I_k + smooth) / (P_k + Y_k + smooth)
 * with K = {0..c-1} when include_bg, else {1..c-1} (nnU-Net's default excludes background;
 * c >= 2 then). smooth = 1e-5 as nnU-Net; a class absent from both prediction and labels
 * scores (0 + smooth)/(0 + smooth) = 1. logits (n, c, s), labels (n, s). Returns L (0 when no
 * voxel is counted) and adds scale * dL/dlogits into dlogits (n, c, s) (NULL: forward only);
 * ignored voxels get no gradient. */
double dk_loss_dice(float *dlogits, const float *logits, const uint8_t *labels, int64_t n,
                    int64_t c, int64_t s, int include_bg, double smooth, float scale);

/* ======================================================================== distillation */

/* Knowledge distillation at temperature T (Hinton et al.), teacher -> student:
 *   q_v = sum_t w_t softmax(z_t,v / T)   (w normalised to sum 1; weights NULL = equal)
 *   p_v = softmax(z_s,v / T)
 *   L   = (1/V) sum_{counted v} T^2 KL(q_v || p_v) = (1/V) sum_v T^2 sum_k q_kv log(q_kv / p_kv)
 * V = counted voxels of (n, s) (mask). The multi-teacher q averages PROBABILITIES (not
 * logits). The T^2 factor keeps the gradient dL/dz_s = T (p - q) / V of the same size as
 * T changes (as T grows it tends to ((z_s - mean_k z_s) - (z_t - mean_k z_t)) / (c V),
 * the error O(1/T); shown with one teacher). student and each teachers[i] are logits
 * (n, c, s); tweights (nteachers <= 16) >= 0, sum > 0, or NULL. Returns L (0 when V = 0);
 * adds scale * dL/dz_s into dstudent (n, c, s) (NULL: forward only). The teachers get no
 * gradient. */
double dk_loss_kd(float *dstudent, const float *student, const float *const *teachers,
                  const float *tweights, int nteachers, const uint8_t *mask, int64_t n, int64_t c,
                  int64_t s, float T, float scale);

/* dk_loss_kd with PER-VOXEL teacher weights that favour confident teachers (lower entropy,
 * more weight): at voxel v teacher t weighs
 *   w_t,v = a_t (1 - H_t,v / log c + DK_KD_CONF_EPS) / sum_u a_u (1 - H_u,v / log c + eps)
 * with a_t = tweights[t] (NULL = 1) and H_t,v = -sum_k p log p of softmax(z_t,v) at T = 1 (the
 * teacher's own prediction, not the softened one; 0 for a one-hot prediction, log c for a
 * uniform one, so 1 - H / log c is in [0, 1]); eps keeps a uniform teacher's weight above 0
 * and gives a_t's proportions where every teacher is uniform. q_v then mixes the softened
 * probabilities with these weights; the rest is dk_loss_kd's (the weights depend on the
 * teachers only, so the gradient keeps its form). c >= 2. One teacher: dk_loss_kd. */
#define DK_KD_CONF_EPS 0.01
double dk_loss_kd_confidence(float *dstudent, const float *student,
                             const float *const *teachers, const float *tweights, int nteachers,
                             const uint8_t *mask, int64_t n, int64_t c, int64_t s, float T,
                             float scale);

/* Class-balanced KD: dk_loss_kd (confidence = 0) or dk_loss_kd_confidence (1) with each
 * counted voxel v weighted by V / (K V_k(v)) instead of 1, where k(v) is the class the
 * teachers predict at v (argmax of sum_t a_t softmax(z_t,v / T) with the fixed weights a_t),
 * V_k the counted voxels of (n, s) predicted k, V all of them and K the classes predicted
 * anywhere: every predicted class carries the same share 1/K of the loss and of its
 * gradient, however few voxels it has (with one class predicted: the plain loss). For a
 * small student whose logits cannot follow the teacher's everywhere at a high T, where the
 * loss approaches a squared error of the logits, the background's many large negative
 * margins otherwise pull every foreground margin below zero (the prostate study's
 * collapse). The weights depend on the teachers only, so the gradient keeps its form:
 * dL/dz_s,v = T w_v (p - q) / V. */
double dk_loss_kd_balanced(float *dstudent, const float *student, const float *const *teachers,
                           const float *tweights, int nteachers, int confidence,
                           const uint8_t *mask, int64_t n, int64_t c, int64_t s, float T,
                           float scale);

/* How the attention maps are compared: DK_AT_L2 normalises each map (Zagoruyko & Komodakis),
 * DK_AT_NONE compares the raw maps (the [distill] at_norm names "l2", "none"). */
typedef enum { DK_AT_L2 = 0, DK_AT_NONE = 1 } dk_at_norm;

/* Attention transfer (Zagoruyko & Komodakis 2017) at a tap. Per sample i and counted voxel v
 * (mask m_i at the student's grid; the maps are 0 at voxels the mask excludes):
 *   A_i(v) = m_i(v) sum_c F_i(c, v)^2
 * norm = DK_AT_L2, with a_i = A_i / max(||A_i||_2, 1e-12)   (L2 over voxels):
 *   L = (1/n) sum_i ||a_s,i - a_t,i||_2^2   (mean over samples of the SUM over voxels; the
 *                                            reference code's .mean() is this / s)
 * norm = DK_AT_NONE, with V_i = the number of voxels m_i counts (s without a mask):
 *   L = (1/n) sum_i (1/V_i) sum_{counted v} (A_s,i(v) - A_t,i(v))^2
 *       (the mean over samples of each sample's mean over its counted voxels; a sample with
 *        V_i = 0 adds 0 but still counts in 1/n; unmasked, this is the mean-squared error
 *        over every element of the (n, s) maps, as F.mse_loss)
 * fs (n, cs, d, h, w) student, ft (n, ct, d*fd, h*fh, w*fw) teacher with integer factors
 * fd, fh, fw >= 1 (channels may differ): the teacher map A_t is AVERAGE-POOLED over each
 * fd x fh x fw block onto the student grid before its mask and normalisation. mask (n, d*h*w)
 * uint8 at the student's grid (dk_mask_pool reduces a patch mask to it), NULL = every voxel:
 * features at excluded voxels change neither the loss nor the gradient, and get none. work:
 * caller scratch of dk_loss_at_work_floats(fs) floats. Adds scale * dL/dF_s into dfs (fs's
 * shape; NULL: forward only); the teacher gets no gradient. */
size_t dk_loss_at_work_floats(const dk_tensor *fs);
double dk_loss_at(float *dfs, const dk_tensor *fs, const dk_tensor *ft, const uint8_t *mask,
                  dk_at_norm norm, float scale, float *work);

/* Hint (FitNets, Romero et al.): a 1x1 convolution adapter r(F_s) = W F_s + b maps the
 * student feature fs (n, cs, d, h, w) to the teacher's channels; ft (n, ct, d, h, w):
 *   L = (1/(ct V)) sum_{counted v} sum_c (r(F_s) - F_t)^2
 * with V the voxels of (n, d*h*w) that mask counts (mask NULL: every voxel, so L is the mean
 * over all elements, MSELoss; excluded voxels add nothing and get no gradient; V = 0 gives
 * 0). w (ct, cs, 1, 1, 1) and b (ct) (b NULL: no bias) live in a dk_params the trainer owns
 * (register "<name>.weight" / "<name>.bias"; Kaiming init with fan_in = cs). work: caller
 * scratch of dk_loss_hint_work_floats(fs, ct) floats. When dw (ct*cs) is not NULL, adds
 * scale * dL/d. into dw, dfs (fs's shape; NULL: skip) and db (ct; NULL: skip, and NULL
 * when b is); dw NULL is a forward-only call (dfs, db NULL too). The teacher gets no
 * gradient. */
size_t dk_loss_hint_work_floats(const dk_tensor *fs, int64_t ct);
double dk_loss_hint(float *dfs, float *dw, float *db, const dk_tensor *fs, const dk_tensor *ft,
                    const uint8_t *mask, const float *w, const float *b, float scale,
                    float *work);

/* ======================================================================== domain alignment */

/* Features for the alignment losses, one row per sample or per voxel.
 * Global average pooling: out (n, c) = mean over d*h*w of in (n, c, d, h, w). Backward adds
 * dout / (d*h*w) to every voxel of din (in's shape). */
void dk_feat_gap_forward(float *out, const dk_tensor *in);
void dk_feat_gap_backward(float *din, const float *dout, const dk_tensor *in);

/* Per-voxel features: m distinct flat positions p = i*s + v (sample i, voxel v) drawn
 * uniformly WITHOUT replacement from the counted voxels of `in`'s n*s (mask (n, s) at in's
 * grid, NULL = all; Floyd's algorithm over the K counted positions, m <= K, O(m^2); meant for
 * m up to a few hundred), from rng. With a mask the positions come out in increasing order
 * (the alignment losses do not depend on the order of their rows). Then out (m, c) row r =
 * in(i, :, v) at idx[r]; backward adds dout row r into din at the same voxel. */
void dk_feat_sample_draw(int64_t *idx, int64_t m, const dk_tensor *in, const uint8_t *mask,
                         dk_rng *rng);
void dk_feat_sample_forward(float *out, const dk_tensor *in, const int64_t *idx, int64_t m);
void dk_feat_sample_backward(float *din, const float *dout, const dk_tensor *in,
                             const int64_t *idx, int64_t m);

/* Squared maximum mean discrepancy (Gretton et al. 2012), UNBIASED estimator, between
 * source rows xs (ns, dim) and target rows xt (nt, dim), ns, nt >= 2:
 *   MMD^2 = 1/(ns(ns-1)) sum_{i!=j} k(x_i,x_j) + 1/(nt(nt-1)) sum_{i!=j} k(y_i,y_j)
 *           - 2/(ns nt) sum_{i,j} k(x_i,y_j)
 *   k(a,b) = (1/5) sum_{f in {1/4, 1/2, 1, 2, 4}} exp(-||a-b||^2 / (f h))   (k(a,a) = 1)
 * h = `bandwidth` when it is > 0, else (the default) the median of the squared distances
 * over all pairs of the pooled ns+nt rows (mean of the two middle values for an even count;
 * 1 when that median is 0), recomputed on each call. h is held CONSTANT in the backward.
 * The kernel is the MEAN of the 5 Gaussians (DAN-style code often sums them: 5x this L) and
 * has no factor 2 in exp(-D / (f h)). The estimate can be slightly negative (for X = Y it
 * is 2 (mean_{i!=j} k - 1) / n). work: caller scratch of dk_loss_mmd_work_doubles(ns, nt)
 * doubles. Adds scale * dL/d. into dxs (ns, dim) and dxt (nt, dim) (either may be NULL). */
size_t dk_loss_mmd_work_doubles(int64_t ns, int64_t nt);
double dk_loss_mmd(float *dxs, float *dxt, const float *xs, const float *xt, int64_t ns,
                   int64_t nt, int64_t dim, double bandwidth, float scale, double *work);

/* Deep CORAL (Sun & Saenko 2016) between xs (ns, dim) and xt (nt, dim), ns, nt >= 2:
 *   C = (X - 1 mean)^T (X - 1 mean) / (rows - 1)      (unbiased covariance, dim x dim)
 *   L = ||C_s - C_t||_F^2 / (4 dim^2)
 *   dL/dX_s = (X_s - 1 mean_s)(C_s - C_t) / (dim^2 (ns - 1)), dL/dX_t likewise with the
 *   opposite sign and nt. work: caller scratch of dk_loss_coral_work_doubles(dim) doubles.
 * Adds scale * dL/d. into dxs and dxt (either may be NULL). */
size_t dk_loss_coral_work_doubles(int64_t dim);
double dk_loss_coral(float *dxs, float *dxt, const float *xs, const float *xt, int64_t ns,
                     int64_t nt, int64_t dim, float scale, double *work);

/* Entropy minimisation on (target) predictions, p = softmax(logits):
 *   L = (1/V) sum_{counted v} -sum_k p_kv log p_kv,   dL/dx_kv = -p_kv (log p_kv + H_v) / V
 * (natural log; V = counted voxels of the mask). logits (n, c, s), mask (n, s) or NULL.
 * Returns L (0 when V = 0); adds scale * dL/dlogits into dlogits (NULL: forward only). */
double dk_loss_entropy(float *dlogits, const float *logits, const uint8_t *mask, int64_t n,
                       int64_t c, int64_t s, float scale);

/* ======================================================================== pseudo-labels */

/* Confidence-filtered pseudo-labels (self-training as mean-teacher / DACS do it, with the
 * class-balanced thresholds of CBST, Zou et al. 2018). From a teacher's logits (n, c, s) at
 * T = 1, p = softmax: at each counted voxel v (mask (n, s), NULL = all) the prediction
 * k_v = argmax_k p_kv (the lowest k on a tie) and its confidence m_v = max_k p_kv. Class k's
 * threshold is
 *   tau_k = tau                                    share = 0 (tau alone)
 *   tau_k = min(tau, the ceil(share n_k)-th largest m_v among the n_k voxels with k_v = k)
 *                                                  share in (0, 1]
 * so a rare class whose voxels are all less confident than tau still gets its most
 * confident share labelled (a class no voxel predicts keeps tau). out (n, s) = k_v where
 * m_v >= tau_{k_v}, DK_IGNORE_LABEL elsewhere and outside the mask. tau_k (c) receives the
 * thresholds (NULL: not returned). work: caller scratch of 2 n s floats. Returns the count
 * of labelled voxels. No label is read: the teacher's output alone decides. */
int64_t dk_pseudo_labels(uint8_t *out, double *tau_k, const float *logits, const uint8_t *mask,
                         int64_t n, int64_t c, int64_t s, double tau, double share, float *work);

/* ======================================================================== schedules */

/* A scalar hyper-parameter as a pure function of (epoch, step), both 0-based, step counted
 * within the epoch. With t = epoch + step / steps_per_epoch (t = epoch when
 * steps_per_epoch <= 0, i.e. the value changes once per epoch):
 *   DK_SCHED_CONSTANT  v0
 *   DK_SCHED_LINEAR    v0 + rate * t
 *   DK_SCHED_EXP       v0 * rate^t
 *   DK_SCHED_STEP      v0 * rate^floor(epoch / period)   (period >= 1 epochs; step unused)
 * and every kind is then clamped to [lo, hi]. The kind is set when the config is parsed. */
typedef enum {
    DK_SCHED_CONSTANT = 0,
    DK_SCHED_LINEAR = 1,
    DK_SCHED_EXP = 2,
    DK_SCHED_STEP = 3
} dk_sched_kind;

typedef struct {
    dk_sched_kind kind;
    double v0;               /* value at epoch 0 */
    double rate;             /* LINEAR: slope per epoch; EXP/STEP: factor */
    double lo, hi;           /* clamp bounds (-HUGE_VAL / HUGE_VAL: none) */
    int64_t period;          /* STEP: epochs between factors */
    int64_t steps_per_epoch; /* LINEAR/EXP: > 0 interpolates within an epoch */
} dk_schedule;

double dk_schedule_at(const dk_schedule *s, int64_t epoch, int64_t step);

/* The method's defaults (per epoch):
 *   mixing ratio    r(e) = max(0.2, 0.8 - 0.05 e)          (LINEAR, lo 0.2: 0.2 from e = 12)
 *   temperature     T(e) = max(1, 5 * 0.95^e)              (EXP, "adaptive")
 *                   T(e) = max(1, 10 * 0.5^e)              (STEP, halved every epoch)
 *                   T    = 4                               (CONSTANT)
 *   alpha           0.8                                    (CONSTANT)
 *                   min(a1, a0 + (a1 - a0) t / ramp)       (LINEAR ramp over `ramp` epochs) */
dk_schedule dk_schedule_mix_default(void);
dk_schedule dk_schedule_temp_adaptive(void);
dk_schedule dk_schedule_temp_halving(void);
dk_schedule dk_schedule_constant(double v);
dk_schedule dk_schedule_ramp(double a0, double a1, double ramp_epochs);

/* ======================================================================== sample weights */

/* Dynamic per-sample weights from per-sample losses l_i (the trainer passes each sample's
 * distillation loss, the same quantity for a source and a target sample, so the weight
 * measures difficulty, not domain):
 *   Delta_i = (l_i - lbar) / max(dbar, 1e-12),   w_i = beta * (1 + gain * tanh(Delta_i))
 * beta = 0.5, gain = 0.3. lbar is a running mean and dbar a running mean absolute deviation
 * of the loss, so Delta is in units of the loss's own spread (tanh neither saturates on a
 * large loss nor vanishes on a small one). The FIRST update sets lbar = mean_i l_i and
 * dbar = mean_i |l_i - lbar| of that batch; each later one, with momentum m (0.9),
 *   lbar = m lbar + (1 - m) mean_i l_i,   then   dbar = m dbar + (1 - m) mean_i |l_i - lbar|.
 * The trainer calls update with a batch's losses, then compute for the same batch; it scales
 * each sample's loss gradient by w_i (the weights are constants of the step). */
typedef struct {
    double beta, gain, momentum;
    double lbar;     /* running mean of the per-sample loss */
    double dbar;     /* running mean absolute deviation of the loss from lbar */
    int64_t updates; /* batches seen; 0 = lbar, dbar not set */
} dk_dynweights;

void dk_dynweights_init(dk_dynweights *d, double beta, double gain, double momentum);
void dk_dynweights_defaults(dk_dynweights *d); /* 0.5, 0.3, 0.9 */
void dk_dynweights_update(dk_dynweights *d, const double *loss, int64_t n);
/* w (n) = the weights of losses (n) against the current lbar, dbar (before any update: 0, 0,
 * so every Delta is +-1e12 or 0). */
void dk_dynweights_compute(float *w, const dk_dynweights *d, const double *loss, int64_t n);

/* ======================================================================== mean teacher */

/* EMA of parameters: ema->w = m * ema->w + (1 - m) * p->w over the whole flat buffer
 * (m = 0.99 default), both dk_params with the same layout (asserted: same total). Use it on
 * the trainable parameters and, for batch-norm running statistics, on the buffers. */
void dk_ema_update(dk_params *ema, const dk_params *p, double m);

/* The mean teacher's ramp-up (Tarvainen & Valpola 2017): the EMA student starts as the random
 * student, so its say grows as rho(t) = exp(-5 (1 - min(1, t / ramp))^2) with t in epochs
 * (fractional, epoch + step / steps_per_epoch): exp(-5) = 0.0067 at t = 0, 1 from t = ramp.
 * ramp <= 0: 1 throughout. */
double dk_ema_rampup(double t, double ramp);

/* ======================================================================== config
 *
 * The training / distillation config: one struct filled from an INI file through one
 * dk_cfg_field table (dakd/core.h), sections [data] [model] [train] [distill] [augment]
 * [output]. The preprocessing keys of [data] (channels ... norm_in_mask, spacing_x/y/z,
 * mask_extent, patch_d/h/w, classes) and every [augment] key are rows of the option schema
 * (dakd/data.h dk_prep_schema), composed into the table with the trainer's own keys, whose
 * defaults are in lib/train/config.c; `dakd train --help` prints the table. Strings are
 * fixed arrays inside the struct. Enumerated options are stored as their enum (the index of
 * the name in the table), so values match the C enums:
 *   [data] channels      all | one | luminance              (data.h dk_channel_mode)
 *   [data] norm          none | zscore | percentile_zscore | ct_window (dk_intensity_kind)
 *   [model] *_norm       batch | instance | none            (nn.h dk_norm_kind)
 *   [model] *_up         transposed | interp                (dk_up_kind)
 *   [train] optimizer    sgd | adamw                        (dk_opt_kind)
 *   [train] lr_schedule  constant | poly | cosine           (dk_lr_kind)
 */

enum { DK_TRAIN_PATH_MAX = 512, DK_TRAIN_NAME_MAX = 64, DK_TRAIN_LIST_MAX = 2048 };

typedef enum { DK_TEMP_ADAPTIVE = 0, DK_TEMP_HALVING = 1, DK_TEMP_CONSTANT = 2 } dk_temp_kind;
/* [distill] self_distill (names "none", "layers", "ema", "both"): bit 0 = the student's
 * deep-supervision heads learn from its own final output, bit 1 = the EMA mean teacher. */
typedef enum {
    DK_SELF_NONE = 0,
    DK_SELF_LAYERS = 1,
    DK_SELF_EMA = 2,
    DK_SELF_BOTH = 3
} dk_self_distill;
/* [distill] teacher_combine (names "fixed", "confidence"): how the teachers' soft targets
 * mix, with weights a_t (dk_loss_kd) or a_t times per-voxel confidence
 * (dk_loss_kd_confidence). */
typedef enum { DK_COMBINE_FIXED = 0, DK_COMBINE_CONFIDENCE = 1 } dk_teacher_combine;
/* [distill] kd_balance (names "none", "class"): how a row's voxels weigh in its KD term:
 * equally, or each class the teachers predict there with the same total weight
 * (dk_loss_kd_balanced). */
typedef enum { DK_KD_BALANCE_NONE = 0, DK_KD_BALANCE_CLASS = 1 } dk_kd_balance;
/* [distill] pl_teacher (names "teacher", "ema"): who gives the pseudo-labels of the target
 * rows: the teacher that teaches them (the first teacher's target_bn copy under target_bn,
 * else the first teacher) or the EMA student (self_distill = ema | both). */
typedef enum { DK_PL_TEACHER = 0, DK_PL_EMA = 1 } dk_pl_teacher;
/* [distill] pl_source (names "patch", "volume"): the target rows' pseudo-labels from the
 * teacher's logits on the step's own patches (confidence-filtered, every step), or from its
 * sliding-window prediction of each whole target training volume, made once before training
 * (L_pl in the formula below). */
typedef enum { DK_PL_PATCH = 0, DK_PL_VOLUME = 1 } dk_pl_source;
enum { DK_TRAIN_MAX_TEACHERS = 15 };
typedef enum { DK_ALIGN_MMD = 0, DK_ALIGN_CORAL = 1, DK_ALIGN_NONE = 2 } dk_align_kind;
typedef enum { DK_VAL_SOURCE = 0, DK_VAL_TARGET = 1 } dk_val_domain;

typedef struct {
    /* [data]: cases come from one CSV; a case is a source case when column domain_column
     * equals `source`, a target case when it equals `target`; split_column (empty = no
     * split) then picks train_split / val_split among them. */
    char cases[DK_TRAIN_PATH_MAX];
    char domain_column[DK_TRAIN_NAME_MAX];
    char source[DK_TRAIN_NAME_MAX];
    char target[DK_TRAIN_NAME_MAX];
    char split_column[DK_TRAIN_NAME_MAX];
    char train_split[DK_TRAIN_NAME_MAX];
    char val_split[DK_TRAIN_NAME_MAX];
    char target_split[DK_TRAIN_NAME_MAX]; /* target cases used unlabelled; "" = all */
    int val_domain;                        /* dk_val_domain */
    /* the schema's preprocessing keys; prep.classes, prep.target.size and prep.grid_tol are
     * no keys and keep dk_prep_defaults' values (the trainer sets prep's classes from
     * `classes`) */
    dk_prep_opts prep;
    int use_mask, centre_in_mask;
    int64_t patch[3];                      /* (d, h, w); schema keys */
    int batch_size;
    double fg_fraction;
    int classes;                           /* schema key */
    /* [model]: dims, in_channels and classes (from [data]) are copied into both networks
     * by dk_train_config_validate. */
    int dims, in_channels;
    dk_unet_config teacher, student;
    /* <net>_pool / <net>_kernel as written: "" (isotropic), "auto" (planned) or triples;
     * dk_train_config_validate puts what they say into teacher/student .pool and .kernel */
    char teacher_pool[DK_TRAIN_NAME_MAX], teacher_kernel[DK_TRAIN_NAME_MAX];
    char student_pool[DK_TRAIN_NAME_MAX], student_kernel[DK_TRAIN_NAME_MAX];
    char teacher_checkpoint[DK_TRAIN_PATH_MAX];
    /* [train] */
    int epochs;
    int64_t steps_per_epoch;
    dk_optim optim;          /* kind, momentum, nesterov, weight_decay, beta1/2, eps */
    dk_lr_schedule lr;       /* total_steps is set by validate: epochs*steps - warm-up */
    double clip_norm;        /* global gradient norm; 0 = off */
    int64_t seed;
    int threads;             /* 0 = OpenMP's default */
    int validate_every, checkpoint_every; /* epochs; 0 = never */
    /* [distill] */
    double alpha;            /* total = alpha L_KD + (1 - alpha) L_sup */
    int temp_schedule;       /* dk_temp_kind */
    double temp_t0;          /* T0; 0 = the schedule's own (adaptive 5, halving 10, constant 4) */
    double temp_gamma, temp_min;
    double mix_r0, mix_delta, mix_min; /* source share r(e) = max(mix_min, r0 - delta e) */
    double lambda_at, lambda_hint, lambda_align, lambda_ent;
    int at_norm;             /* dk_at_norm */
    int align;               /* dk_align_kind */
    char align_tap[32];      /* a dk_tap name */
    char hint_tap[32];       /* the FitNets hint tap (both networks; same grid) */
    int dynamic_weights;
    double dyn_beta;
    int self_distill;        /* dk_self_distill: layers and / or the EMA mean teacher */
    double lambda_self;      /* weight of L_self (self_distill layers / both) */
    double ema_momentum;
    double ema_rampup_epochs; /* the EMA teacher's weight ramps in over these (dk_ema_rampup) */
    int target_bn;           /* AdaBN: target batch-norm statistics (see the trainer) */
    char extra_teachers[DK_TRAIN_LIST_MAX]; /* comma-separated model files; "" = none */
    char teacher_weights[DK_TRAIN_LIST_MAX]; /* a_t of each teacher, first then extra; "" = 1 */
    int teacher_combine;     /* dk_teacher_combine */
    int kd_balance;          /* dk_kd_balance */
    double fda_p;            /* FDA: probability a source row gets a target style; 0 = off */
    double fda_beta;         /* FDA band beta (dakd/data.h dk_fda_apply) */
    int fda_progressive;     /* beta(e) = fda_beta (1 - r(e)) / (1 - mix_min) */
    double lambda_pl;        /* weight of L_pl (pseudo-labels on target rows); 0 = off */
    double pl_tau;           /* confidence threshold tau */
    double pl_class_share;   /* class balance: each class's most confident share passes */
    int pl_teacher;          /* dk_pl_teacher */
    int pl_source;           /* dk_pl_source */
    int pl_largest_cc;       /* pl_source = volume: keep each class's largest component */
    double teacher_w[DK_TRAIN_MAX_TEACHERS]; /* derived by validate: a_t, one per teacher */
    int nteachers;           /* derived by validate: 1 + the extra_teachers entries */
    char extra_paths[DK_TRAIN_MAX_TEACHERS][DK_TRAIN_PATH_MAX]; /* derived by validate: the
                                                                 * entries, blanks trimmed,
                                                                 * [k - 1] for teacher k */
    /* [augment]: the schema's keys */
    dk_augment_opts aug;
    /* [output] */
    char run_dir[DK_TRAIN_PATH_MAX];
} dk_train_config;

/* The field table (for --help and tools); *n receives its length. */
const dk_cfg_field *dk_train_config_table(size_t *n);

/* Every field at its default (the method's: alpha 0.8, the adaptive temperature 5 * 0.95^e
 * with T_min 1, r0 0.8, delta 0.05, r_min 0.2, clip 1.0, beta 0.5), then the derived fields as
 * validate sets them. */
void dk_train_config_defaults(dk_train_config *c);

/* Load `path` over the current values of c (call defaults first). On failure c is
 * unchanged. Errors as dk_cfg_load: DK_ERR_ARG "<path>:<line>: ..." or DK_ERR_IO. Does not
 * validate (so --set can follow). */
dk_status dk_train_config_load(dk_train_config *c, const char *path);

/* One --set "section.key=value" override (dk_cfg_set). */
dk_status dk_train_config_set(dk_train_config *c, const char *assignment);

/* Cross-field checks after load and --set, and the derived fields: copies dims,
 * in_channels and classes into teacher and student, sets lr.total_steps. DK_ERR_ARG naming
 * the keys for: mix_min > mix_r0, temp_min > T0 (temp_t0 or the schedule's own), a network
 * deep_supervision on the teacher, on the student without self_distill = layers | both (no
 * other loss trains the heads), self_distill = layers | both without student
 * deep_supervision or with student_levels < 3, teacher_weights that are not one number >= 0
 * per teacher (1 + the extra_teachers entries) with a positive sum, norm_lo_pct >= norm_hi_pct,
 * scale/shift/gamma lo > hi, a patch side not divisible by the product of either network's
 * pool strides along it (2^(levels-1) when isotropic; the message names the axis and the
 * multiple), a *_pool / *_kernel that is not "", "auto" or one triple of 1/2 (1/3) per pool
 * (level), or "auto" on a patch too small for the levels (dk_unet_plan_anisotropic),
 * dims 2 with patch d != 1, channels one/luminance with in_channels != 1, an empty cases
 * path or run_dir, an empty source or target with a domain column, warmup_steps >= the
 * total steps, align on with an empty align_tap, lambda_hint > 0 with an empty hint_tap.
 * A student that is not smaller than the teacher (base and levels) is only a warning
 * through dk_log. */
dk_status dk_train_config_validate(dk_train_config *c);

/* Write the effective config (every key) to `path` atomically (dk_cfg_write). */
dk_status dk_train_config_write(const dk_train_config *c, const char *path);

/* The schedules the config describes (per epoch):
 *   temperature: adaptive T(e) = max(T_min, T0 gamma^e); halving max(T_min, T0 0.5^e);
 *                constant T0; T0 = temp_t0, or when it is 0 (the default) the schedule's own:
 *                adaptive 5, halving 10, constant 4 (dk_schedule_temp_adaptive / _halving)
 *   mixing:      r(e) = min(1, max(mix_min, mix_r0 - mix_delta e)) */
dk_schedule dk_train_config_temperature(const dk_train_config *c);
dk_schedule dk_train_config_mixing(const dk_train_config *c);


/* ======================================================================== trainer
 *
 * The training loops behind `dakd train` and `dakd distill`. One dk_trainer owns the
 * loaded cases, the networks, the optimiser and the run directory:
 *   run_dir/config.ini            the effective config (written at create)
 *   run_dir/checkpoint.safetensors resumable state (flat tensors "params", "buffers",
 *                                 "optim.m", "optim.v", "ema.params", "ema.buffers",
 *                                 "hint.params", "hint.optim.m", "hint.optim.v" and
 *                                 __metadata__ dakd.epoch, dakd.optim_step, the dynamic
 *                                 weights' running lbar and dbar, best-model state, the
 *                                 step log's length); written
 *                                 atomically every checkpoint_every epochs, at the end
 *                                 and when a run is interrupted (then mid-epoch, with
 *                                 dakd.epoch_step, the steps of that epoch already run)
 *   run_dir/.dakd.lock            held while a trainer exists (dk_dir_lock_take): a second
 *                                 run on the same folder is refused, naming the holder
 *   run_dir/model.safetensors     the final trained network (dk_unet_save; a teacher file)
 *   run_dir/best.safetensors      the network of the best validation epoch (with target_bn:
 *                                 its statistics re-estimated at the end, as the final's)
 *   run_dir/steps.jsonl           one JSON object per step (every loss term, T, mixing
 *                                 ratio, alpha, LR, pre-clip gradient norm, seconds; with
 *                                 dynamic weights their mean / min / max over the source
 *                                 rows "w_src_mean", ... and the target rows "w_tgt_mean", ...;
 *                                 the last step of an epoch that validated also carries
 *                                 "val_dice", the validation Dice after that step, so a run
 *                                 without validation writes no such key)
 * Batches and every random draw depend only on (seed, epoch, step), so a run resumed from
 * its checkpoint ends with the same weights as an uninterrupted one (same thread count).
 * Resuming a folder with no checkpoint yet (a run killed before its first one) starts from
 * the beginning, with a new step log and an info line saying so. A pending
 * dk_interrupt_request (dakd/core.h: SIGINT, SIGTERM in the apps) is honoured before the
 * next step: the run writes its checkpoint there (when it ran a step) and dk_trainer_run
 * returns DK_OK with stats.interrupted set; a resume continues from that step.
 *
 * Model selection rule: "best" is the epoch with the highest mean foreground Dice on the
 * held-out SOURCE validation cases ([data] val_split of the source domain), scored as
 * `dakd predict` + `dakd eval --mask` score them (dakd/eval.h): sliding window with the
 * training patch and dk_infer_defaults, argmax, Dice over the voxels inside the case's mask
 * (with [data] use_mask) that are not DK_IGNORE_LABEL. It is computed on the prepared
 * grid, so it equals the report's Dice of the same model and case whenever the model
 * keeps the input grid (no spacing_*, mask_extent) and no ignore voxel lies inside the
 * mask (`dakd eval` counts those as background). Target labels
 * are never read by `train` (teacher/student) or `distill`; target training cases are
 * loaded without their labels (the file is never opened), which
 * tests/study/test_study_targets.c asserts for every train stage but the oracle and for
 * dakd adapt: with the target label files unreadable, or exchanged between cases, they write
 * the same bytes. val_domain = target is refused except for the oracle,
 * which trains on target labels and logs that it is an upper bound, not a method result.
 *
 * Modes: TEACHER / STUDENT train the [model] teacher_* / student_* network on labelled
 * source cases with L_sup (below) over the whole batch; ORACLE trains the student on labelled
 * target cases (target_split); DISTILL trains the student from the teacher_checkpoint (and
 * extra_teachers: model files of any width, depth, norm and up-sampling, with the run's dims,
 * in_channels and classes and levels that divide the patch). A distillation batch of B = batch_size patches holds ns = round(r(e) B)
 * source rows i < ns (labelled) and nt = B - ns target rows (unlabelled; ns kept in [2, B - 2]
 * when alignment is on); m_i is row i's field-of-view mask (every voxel without one). The
 * step minimises
 *   L = alpha (1/B) sum_i w_i KD_i + (1 - alpha) L_sup + lambda_at (1/B) sum_l sum_i AT_l,i
 *       + lambda_hint L_hint + lambda_align L_align + lambda_ent L_ent + lambda_self L_self
 *       + lambda_pl L_pl
 * (a term whose lambda is 0 is not computed), where
 *   L_sup    = dk_loss_ce + dk_loss_dice (batch Dice over the rows together, background
 *              excluded, smooth 1e-5) over the ns source rows, labels masked by m: the SAME
 *              supervised loss as TEACHER / STUDENT training (there over all B rows), so a
 *              source-only and a distilled student differ by the method only (nnU-Net's CE +
 *              batch Dice);
 *   KD_i     = dk_loss_kd of row i alone (n = 1: the mean over its counted voxels) at T(e),
 *              against the mixture of row i's teachers: the first teacher and the
 *              extra_teachers at weights a_t (teacher_weights; 1 each by default); on a TARGET
 *              row the first teacher is replaced by its target-statistics copy under
 *              target_bn, and the EMA student (self_distill = ema | both) joins at weight
 *              rho(t) = dk_ema_rampup(epoch + step / steps_per_epoch, ema_rampup_epochs) (the
 *              weights are normalised inside dk_loss_kd); teacher_combine = confidence
 *              multiplies each weight per voxel by the teacher's confidence
 *              (dk_loss_kd_confidence: lower entropy, more weight); kd_balance = class
 *              weights the row's voxels so that each class its teachers predict there
 *              carries the same share (dk_loss_kd_balanced);
 *   w_i      = the dynamic weight of row i (dk_dynweights updated with, then computed from,
 *              the batch's KD_i: one quantity for source and target rows), 1 when
 *              dynamic_weights is off; a constant of the step (no gradient through it);
 *   AT_l,i   = dk_loss_at of row i (n = 1, norm at_norm) at each encoder tap enc<l> both
 *              networks have, against row i's first teacher (the target-statistics copy on
 *              target rows under target_bn), mask m_i max-pooled to the tap's grid
 *              (dk_mask_pool);
 *   L_hint   = (1/B) (ns H_src + nt H_tgt), H = dk_loss_hint over the source rows and over
 *              the target rows (each the mean over the elements at the voxels their masks
 *              count, max-pooled to the tap's grid), against row i's first
 *              teacher as for AT, at hint_tap (default "bottleneck", the middle of the U-Net
 *              as FitNets' guided layer; both networks must have the tap on the same grid),
 *              through a 1x1-conv adapter (with bias) of the student's value;
 *   L_align  = MMD / CORAL between min(ALIGN_ROWS, K) per-voxel student features at align_tap
 *              drawn without replacement among the K voxels of the source rows inside their
 *              masks (max-pooled to the tap's grid), and as many of the target rows (the term
 *              is 0 when either side has fewer than 2 such voxels);
 *   L_ent    = dk_loss_entropy over the nt target rows (masked);
 *   L_self   = (self_distill = layers | both; the student's deep-supervision heads ds<l>,
 *              1 <= l <= levels - 2) (1/H) sum_l dk_loss_kd(ds<l>, pool_l(z)) over all B
 *              rows at T(e), "Be Your Own Teacher" (Zhang et al. 2019): each head learns the
 *              student's own final logits z mean-pooled onto its grid (dk_mean_pool; a
 *              constant of the step, no gradient through it), inside the masks max-pooled
 *              alike (dk_mask_pool). No feature hints between the student's stages;
 *   L_pl     = dk_loss_ce over the nt target rows against their pseudo-labels
 *              (dk_pseudo_labels at [distill] pl_tau, pl_class_share, inside the rows' masks m):
 *              the mean over the voxels that got one (0 when none did) of -log p_student.
 *              The pseudo-labels come from the teacher that teaches the target rows (its
 *              target_bn copy under target_bn, else the first teacher; pl_teacher = ema: the
 *              EMA student instead), at T = 1, and are constants of the step (self-training as
 *              mean-teacher / DACS; thresholds class-balanced as CBST, Zou et al. 2018). Target
 *              labels are never read: the rows' labels are DK_IGNORE_LABEL. steps.jsonl logs
 *              "pl" and "pl_share", the share of the target rows' counted voxels labelled.
 *              pl_source = volume instead: once, before training, the first teacher (its
 *              source statistics, also under target_bn) predicts every whole target training
 *              volume as `dakd predict` does on the training grid (dk_infer_probs with
 *              dk_infer_defaults and the training patch, dk_infer_argmax), each foreground
 *              class keeps its largest connected component (pl_largest_cc, as
 *              dk_keep_largest_cc: the organ is one piece; stray blobs of a shifted domain
 *              are not), and voxels whose largest probability is below pl_tau become
 *              DK_IGNORE_LABEL; these volumes are the target cases' labels for the sampler
 *              (foreground oversampling as for source cases) and the rows' labels, and
 *              L_pl = dk_loss_ce + dk_loss_dice of the target rows against them (the
 *              supervised loss of the source rows, on the target rows; pl_class_share is
 *              not used). Self-training on offline, post-processed teacher predictions as
 *              CBST (Zou et al. 2018) trains on its rounds' labels. Needs pl_teacher =
 *              teacher.
 * Fourier domain adaptation (fda_p > 0; Yang & Soatto 2020, dk_fda_apply): before the
 * forwards, each source row i < ns, with probability fda_p, takes the low-frequency amplitude
 * spectrum (band fda_beta) of one of the B patches the target sampler drew for the same
 * (epoch, step) (the first nt are the target rows; drawn uniformly, two draws per source row
 * from stream 9 of the step's stream whatever the outcome; the target patches are drawn
 * even when nt = 0). Labels and masks are untouched; every network, teachers included, sees
 * the styled rows, so the terms above are unchanged in form. fda_progressive: the band of
 * epoch e is fda_beta (1 - r(e)) / (1 - mix_min) (r the mixing ratio, "progressive domain
 * mixing": more target style as the source share falls; fda_beta once r reaches mix_min).
 * steps.jsonl logs "fda_beta" and "fda_rows" (the rows styled). Distill mode only.
 * So every term on a target row sees one teacher: the target-statistics copy under
 * target_bn (the extra teachers keep their own statistics). AT and hints always use the
 * first teacher. The adapter ("hint.weight", "hint.bias";
 * Kaiming init, seeded) is trained with its own optimiser state of the [train] settings and
 * learning rate; clip_norm bounds the global gradient norm over student AND adapter (the
 * logged grad_norm is that joint norm). The adapter is in checkpoint.safetensors ("hint.*"
 * tensors) but not in model.safetensors / best.safetensors (the exported student).
 * target_bn (AdaBN, Li et al. 2017; batch-norm networks): the batch-norm running statistics
 * are re-estimated on target training patches — DK_ADABN_BATCHES (dk_adabn) train-mode
 * forwards over un-augmented target batches drawn from the seed, no weight changes — for (1)
 * a copy of the first teacher, made at create, which teaches the TARGET rows in every term
 * (source rows keep the source statistics), and (2) the student after the last epoch,
 * before model.safetensors is written, and the best epoch's weights in best.safetensors,
 * from the same patches and seed: whichever file a run hands on (a study's model_file = best
 * or final) carries the target statistics. Both files then record it ("dakd.adabn",
 * dk_adabn_save); checkpoint.safetensors keeps the statistics of training, which a resumed
 * run continues from. Target labels are never read.
 * Data parallelism (`mpirun -np N dakd train|distill`, dakd/dist.h; lib/train/trainer_dist.c):
 * [data] batch_size stays the GLOBAL batch B. Every rank draws the same batch of (epoch, step)
 * from the same seed (so the global batch of step k is the same for every N, by construction)
 * and runs the networks on its rows only: rank q takes rows q, q + N, q + 2N, ... (source rows
 * first, so each rank holds the step's mixing ratio to within one row). Every tap a term reads
 * is gathered from all ranks into batch order, and every rank computes every term above on
 * the whole batch, as one process would: the means over the batch and its counted voxels,
 * batch Dice, dynamic weights, alignment and pseudo-label thresholds are the global ones.
 * Attention transfer and the KD rows, sums of per-row terms, are computed by each rank on its
 * own rows (the teachers' encoder maps and logits are never gathered); attention transfer's
 * value and the B per-row KD losses (which set the dynamic weights) are summed over ranks in
 * rank order, so every rank sets the same weights.
 * Each rank back-propagates its rows; the parameter gradients are summed over ranks in rank
 * order (dk_dist_sum: the same bits run after run for a fixed N) BEFORE clipping, so clip_norm
 * sees the global gradient, and every rank applies the same update. Batch norm of the trained
 * network: per-rank batch statistics (the rank's rows; as PyTorch DDP without SyncBatchNorm),
 * running statistics averaged over the ranks after each step; with instance norm or none a run
 * equals the serial one to float summation order. Frozen teachers, the target_bn teacher and
 * the EMA student run in inference mode (running statistics: per row, exact); the target_bn
 * re-estimations (dk_adabn) and the EMA update run whole on every rank, from identical
 * weights, so every rank holds the same networks. Rank 0 alone writes run_dir (config.ini,
 * steps.jsonl, checkpoints and model files, atomically as above) and validates; --resume
 * continues with the same N (another N continues too, with other float rounding). A failing
 * rank: `dakd` prints its message and stops every rank (MPI_Abort); the last checkpoint is
 * intact. [model] dropout > 0 is refused with N > 1 (DK_ERR_UNSUPPORTED), as is B < N.
 * Logging: one dk_log INFO line per epoch; progress (the steps, with the epoch as the
 * item) through the dakd/core.h progress reporters. */

typedef enum {
    DK_TRAINER_TEACHER = 0,
    DK_TRAINER_STUDENT = 1,
    DK_TRAINER_ORACLE = 2,
    DK_TRAINER_DISTILL = 3
} dk_trainer_mode;

typedef struct {
    dk_trainer_mode mode;
    int resume;               /* continue from run_dir/checkpoint.safetensors */
    int64_t stop_after_steps; /* > 0: return DK_OK after this many steps of THIS call
                               * without writing anything more (simulates a kill) */
} dk_trainer_opts;

typedef struct {
    int64_t steps;            /* steps run by this process */
    int epochs_done;          /* epochs completed overall */
    double best_val_dice;     /* -1 before the first validation */
    int best_epoch;
    double last_val_dice;
    /* Seconds summed over steps: the teachers' forwards, the EMA student's forward (method
     * overhead, not a teacher), the student's forward and backward, the whole step, batch
     * sampling + augmentation, and the losses (KD, sup, AT, hint, alignment, entropy,
     * dynamic weights). The rest of sec_step is clipping, the optimisers and the EMA update. */
    double sec_teacher, sec_ema, sec_student_fwd, sec_student_bwd, sec_step;
    double sec_data, sec_loss;
    int interrupted;          /* the signal of a dk_interrupt_request that stopped the run
                               * (its checkpoint written), else 0 */
} dk_trainer_stats;

typedef struct dk_trainer dk_trainer;

/* Load the cases (the config's CSV), build the networks (load the teacher checkpoints in
 * DISTILL mode, checked against [model] teacher_*), make run_dir and write config.ini.
 * `c` must have passed dk_train_config_validate; it is copied. Errors name the file, case
 * and field: DK_ERR_IO, DK_ERR_FORMAT (labels, grids, checkpoints), DK_ERR_ARG. */
dk_status dk_trainer_create(dk_trainer **out, const dk_train_config *c,
                            const dk_trainer_opts *o);
/* Run the remaining epochs. DK_ERR_NUMERIC (naming epoch, step, term and the batch's cases)
 * at the first non-finite loss or gradient, before any update or checkpoint. DK_OK with
 * stats.interrupted set when stopped by an interrupt request (no model file written). */
dk_status dk_trainer_run(dk_trainer *t);
/* The trained network (borrowed). */
dk_unet *dk_trainer_model(dk_trainer *t);
const dk_trainer_stats *dk_trainer_get_stats(const dk_trainer *t);
/* Mean over cases of the mean foreground Dice (classes 1..c-1; both empty = 1) of the
 * trained network on the config's cases with domain_column == domain and split_column ==
 * split (split "" = any), scored as validation scores (the model selection rule above).
 * Reads labels: for tests and reports, never for selection. */
dk_status dk_trainer_eval(double *dice, dk_trainer *t, const char *domain, const char *split);
void dk_trainer_free(dk_trainer *t); /* accepts NULL */

/* ======================================================================== AdaBN
 *
 * AdaBN (Li et al. 2016): a trained network's batch-norm running statistics re-estimated on
 * target images, the cheapest domain adaptation (no labels, no weight changes). The
 * trainer's target_bn and `dakd adapt` (dk_adapt_run) both go through dk_adabn.
 */

enum { DK_ADABN_BATCHES = 50 }; /* forwards of a re-estimation: 0.9^50 = 0.5 % of the old
                                 * statistics remain */

/* `batches` train-mode forwards of `net` (dk_unet_forward with train = 1; weights unchanged)
 * over batches drawn into b (its n patches of the sampler's patch size) by
 * dk_sampler_step(b, s, NULL, base, 0, k) for k = 0..batches-1, base = stream 4 of `seed`
 * (dk_rng_split), without augmentation; dropout, if any, from stream 1000000 + k of base.
 * Each forward moves every running mean/var by the layer's momentum (0.1, as PyTorch:
 * r = 0.9 r + 0.1 batch statistic, the variance unbiased), so after DK_ADABN_BATCHES the
 * old statistics keep a weight of 0.9^50. The net is re-planned for b. DK_ERR_ARG for a
 * network without batch norm (instance norm or none: nothing to re-estimate) or whose
 * in_channels differ from the images'; DK_ERR_NOMEM from the plan. */
dk_status dk_adabn(dk_unet *net, dk_batch *b, const dk_sampler *s, int64_t batches,
                   uint64_t seed);

/* What a re-estimation used, recorded in the adapted model file. */
typedef struct {
    int64_t batches, batch_size; /* forwards, patches per forward */
    int images;                  /* the images the patches came from */
    uint64_t seed;
    const char *source;          /* where they came from, e.g. "cases.csv where dataset=chase"
                                  * (a case list by its file name, so that a model file does
                                  * not depend on the folder a study runs in) */
} dk_adabn_record;

/* Write `net` to the model file `path` (dk_unet_save: atomic) with every __metadata__ key of
 * the model file `from` (dakd.data.*, dakd.epoch, ...) except the network config, which
 * dk_unet_save writes from net, and an older record; plus "dakd.adabn" = the record as a
 * JSON object {"patches", "batches", "batch_size", "images", "source", "seed"}. `from` may
 * be `path`. Errors of the read and the write, naming the file. */
dk_status dk_adabn_save(const dk_unet *net, const char *from, const char *path,
                        const dk_adabn_record *r);

/* `dakd adapt`: the model file `model` with its batch-norm statistics re-estimated on images,
 * written to `out`.
 *  - Images: `inputs` (image paths) and/or the rows of `cases_csv` passing every filter of
 *    `where` ("column=value", all must hold, e.g. "dataset=chasedb1", "split=train"), read
 *    and preprocessed exactly as dk_predict_run prepares them (dk_predict_inputs_read: the
 *    model's dakd.data.* metadata; the CSV's mask where the model was trained with masks,
 *    required for a mask_extent model). Labels are never read.
 *  - Patches of the model's training patch size (dakd.data.patch), batch_size a forward,
 *    each from a case drawn uniformly and placed uniformly (centre_in_mask: centred on a
 *    mask voxel, as [data] centre_in_mask); then dk_adabn with `batches` and `seed`.
 *  - Output: the network with every metadata key of the model plus "dakd.adabn"
 *    (dk_adabn_save), written atomically. `out` must not be the model (same path or the
 *    same file by another name).
 * With the trainer's batch size, seed and target cases this gives the statistics target_bn
 * gives, bit for bit (same thread count). DK_ERR_ARG: missing options, out = model, a
 * network without batch norm, a malformed filter, no case passing the filters, the input
 * checks of dk_predict_inputs_read; otherwise the errors of reading and writing. */
typedef struct {
    const char *model;         /* the model file to adapt */
    const char *const *inputs; /* NULL-terminated image paths, or NULL */
    const char *cases_csv;     /* a case list, or NULL */
    const char *const *where;  /* NULL-terminated "column=value" filters of its rows, or NULL */
    const char *out;           /* the adapted model file */
    int64_t batches;           /* default DK_ADABN_BATCHES */
    int batch_size;            /* patches per forward; default 8 ([data] batch_size's) */
    int centre_in_mask;        /* default 0 */
    uint64_t seed;             /* default 0 */
} dk_adapt_opts;

void dk_adapt_defaults(dk_adapt_opts *o);
dk_status dk_adapt_run(const dk_adapt_opts *o);

#ifdef __cplusplus
}
#endif
#endif
