/*
 * The training / distillation config (dakd/train.h): its field table, composed with the
 * option schema's rows (dakd/data.h), and the cross-field checks that a per-field range
 * cannot express.
 */
#include "dakd/train.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

/* Enum members are written through int lvalues by the table. */
_Static_assert(sizeof(dk_norm_kind) == sizeof(int), "enum members must be int-sized");
_Static_assert(sizeof(dk_up_kind) == sizeof(int), "enum members must be int-sized");
_Static_assert(sizeof(dk_opt_kind) == sizeof(int), "enum members must be int-sized");
_Static_assert(sizeof(dk_lr_kind) == sizeof(int), "enum members must be int-sized");

#define OFF(m) offsetof(dk_train_config, m)
#define INF HUGE_VAL
#define F_INT(s, k, m, lo, hi, d, h) {s, k, DK_CFG_INT, OFF(m), 0, lo, hi, d, NULL, h}
#define F_I64(s, k, m, lo, hi, d, h) {s, k, DK_CFG_INT64, OFF(m), 0, lo, hi, d, NULL, h}
#define F_DBL(s, k, m, lo, hi, d, h) {s, k, DK_CFG_DOUBLE, OFF(m), 0, lo, hi, d, NULL, h}
#define F_FLT(s, k, m, lo, hi, d, h) {s, k, DK_CFG_FLOAT, OFF(m), 0, lo, hi, d, NULL, h}
#define F_BOOL(s, k, m, d, h) {s, k, DK_CFG_BOOL, OFF(m), 0, 0, 1, d, NULL, h}
#define F_STR(s, k, m, d, h)                                                                   \
    {s, k, DK_CFG_STRING, OFF(m), sizeof(((dk_train_config *)0)->m), 0, 0, d, NULL, h}
#define F_ENUM(s, k, m, names, d, h) {s, k, DK_CFG_ENUM, OFF(m), 0, 0, 0, d, names, h}
/* A place holder (no section): here go the option schema's rows of group g, the first one
 * stored at member m and each other at the distance from the first it has in dk_data_opts
 * (m's group lies in the config as in dk_data_opts: prep, patch, classes, aug). */
#define SCHEMA(g, m) {NULL, NULL, DK_CFG_INT, OFF(m), (size_t)(g), 0, 0, NULL, NULL, NULL}

static const char *const val_domains[] = {"source", "target", NULL};
static const char *const net_norms[] = {"batch", "instance", "none", NULL};
static const char *const ups[] = {"transposed", "interp", NULL};
static const char *const optims[] = {"sgd", "adamw", NULL};
static const char *const lr_kinds[] = {"constant", "poly", "cosine", NULL};
static const char *const temp_kinds[] = {"adaptive", "halving", "constant", NULL};
static const char *const align_kinds[] = {"mmd", "coral", "none", NULL};
static const char *const at_norms[] = {"l2", "none", NULL}; /* dk_at_norm's order */
static const char *const self_kinds[] = {"none", "layers", "ema", "both", NULL};
static const char *const combines[] = {"fixed", "confidence", NULL};
static const char *const balances[] = {"none", "class", NULL};
static const char *const pl_teachers[] = {"teacher", "ema", NULL};
static const char *const pl_sources[] = {"patch", "volume", NULL};

/* One network's keys: [model] <prefix>_base, ... into member `net`. */
#define NET_FIELDS(p, net, def_base, def_levels)                                                   \
    F_INT("model", p "_base", net.base, 1, 1024, def_base, "width of level 0"),                    \
    F_INT("model", p "_levels", net.levels, 2, 8, def_levels, "resolution levels (pools + 1)"),    \
    F_ENUM("model", p "_norm", net.norm, net_norms, "batch", "normalisation after each conv"),     \
    F_ENUM("model", p "_up", net.up, ups, "transposed", "decoder upsampling"),                     \
    F_BOOL("model", p "_deep_supervision", net.deep_supervision, "false",                          \
           "extra 1x1 heads on the lower decoder levels"),                                         \
    F_FLT("model", p "_leaky_slope", net.leaky_slope, 0, 1, "0.01", "0 = ReLU"),                   \
    F_FLT("model", p "_dropout", net.dropout, 0, 0.95, "0", "dropout p at the bottleneck"),      \
    F_STR("model", p "_pool", net##_pool, "",                                                      \
          "pool strides d,h,w (1 or 2) after each level but the last, ';' between levels, e.g. "   \
          "1,2,2; 2,2,2; auto = nnU-Net's plan from the patch and [data] spacing; empty = 2,2,2"), \
    F_STR("model", p "_kernel", net##_kernel, "",                                                  \
          "conv kernel d,h,w (1 or 3) of each level, e.g. 1,3,3; 3,3,3; 3,3,3; auto = nnU-Net's "  \
          "plan; empty = 3,3,3")

static const dk_cfg_field layout[] = {
    F_STR("data", "cases", cases, "cases.csv", "case list CSV (case, image, label, mask, ...)"),
    F_STR("data", "domain_column", domain_column, "dataset",
          "CSV column naming the domain; empty = every case is source"),
    F_STR("data", "source", source, "source", "domain_column value of labelled source cases"),
    F_STR("data", "target", target, "target", "domain_column value of unlabelled target cases"),
    F_STR("data", "split_column", split_column, "split", "CSV column of the split; empty = none"),
    F_STR("data", "train_split", train_split, "train", "split value of training cases"),
    F_STR("data", "val_split", val_split, "val", "split value of validation cases"),
    F_STR("data", "target_split", target_split, "train",
          "split value of target cases used in training; empty = all"),
    F_ENUM("data", "val_domain", val_domain, val_domains, "source", "domain validated on"),
    SCHEMA(DK_PREP_INTENSITY, prep.channels),
    F_BOOL("data", "use_mask", use_mask, "true", "use the CSV's mask/fov column"),
    F_BOOL("data", "centre_in_mask", centre_in_mask, "false",
           "centre background patches inside the mask"),
    SCHEMA(DK_PREP_GRID, prep.target.spacing[0]),
    SCHEMA(DK_PREP_PATCH, patch[0]),
    F_INT("data", "batch_size", batch_size, 1, 4096, "8",
          "patches per step in all (distill: split source/target by the mixing ratio r(e))"),
    F_DBL("data", "fg_fraction", fg_fraction, 0, 1, "0.333333", "foreground-centred share"),
    SCHEMA(DK_PREP_CLASSES, classes),
    SCHEMA(DK_PREP_LABELS, prep.label_map),
    F_INT("model", "dims", dims, 2, 3, "2", "2-D or 3-D networks"),
    F_INT("model", "in_channels", in_channels, 1, 64, "1", "network input channels"),
    NET_FIELDS("teacher", teacher, "32", "5"),
    F_STR("model", "teacher_checkpoint", teacher_checkpoint, "",
          "trained teacher (safetensors); empty = train it first"),
    NET_FIELDS("student", student, "8", "5"),
    F_INT("train", "epochs", epochs, 1, 100000, "100", "epochs"),
    F_I64("train", "steps_per_epoch", steps_per_epoch, 1, 1e9, "250", "steps per epoch"),
    F_ENUM("train", "optimizer", optim.kind, optims, "sgd", "optimiser"),
    F_DBL("train", "lr", lr.base, 1e-12, 10, "0.01", "base learning rate"),
    F_DBL("train", "lr_min", lr.min_lr, 0, 10, "0", "cosine: final learning rate"),
    F_DBL("train", "lr_power", lr.power, 0, 10, "0.9", "poly: exponent"),
    F_ENUM("train", "lr_schedule", lr.kind, lr_kinds, "poly", "learning-rate schedule"),
    F_I64("train", "warmup_steps", lr.warmup_steps, 0, 1e9, "0", "linear warm-up steps"),
    F_DBL("train", "momentum", optim.momentum, 0, 0.9999, "0.99", "SGD momentum"),
    F_BOOL("train", "nesterov", optim.nesterov, "true", "SGD Nesterov momentum"),
    F_DBL("train", "weight_decay", optim.weight_decay, 0, 1, "3e-05", "weight decay"),
    F_DBL("train", "beta1", optim.beta1, 0, 0.9999, "0.9", "AdamW beta1"),
    F_DBL("train", "beta2", optim.beta2, 0, 0.999999, "0.999", "AdamW beta2"),
    F_DBL("train", "eps", optim.eps, 1e-12, 1, "1e-08", "AdamW epsilon"),
    F_DBL("train", "clip_norm", clip_norm, 0, INF, "1.0", "global gradient-norm clip; 0 = off"),
    F_I64("train", "seed", seed, 0, 9007199254740991.0, "42", "seed of every random choice"),
    F_INT("train", "threads", threads, 0, 1024, "0", "OpenMP threads; 0 = default"),
    F_INT("train", "validate_every", validate_every, 0, 100000, "1", "epochs; 0 = never"),
    F_INT("train", "checkpoint_every", checkpoint_every, 0, 100000, "10", "epochs; 0 = never"),
    F_DBL("distill", "alpha", alpha, 0, 1, "0.8", "total = alpha L_KD + (1 - alpha) L_sup"),
    F_ENUM("distill", "temp_schedule", temp_schedule, temp_kinds, "adaptive",
           "KD temperature: adaptive T0 gamma^e, halving T0 0.5^e, constant T0 (floor temp_min)"),
    F_DBL("distill", "temp_t0", temp_t0, 0, 100, "0",
          "initial temperature T0; 0 = the schedule's own: adaptive 5, halving 10, constant 4"),
    F_DBL("distill", "temp_gamma", temp_gamma, 1e-3, 1, "0.95", "adaptive decay per epoch"),
    F_DBL("distill", "temp_min", temp_min, 1e-3, 100, "1", "lowest temperature T_min"),
    F_DBL("distill", "mix_r0", mix_r0, 0, 1, "0.8", "initial source share of a step r0"),
    F_DBL("distill", "mix_delta", mix_delta, 0, 1, "0.05", "decrease of r per epoch"),
    F_DBL("distill", "mix_min", mix_min, 0, 1, "0.2", "lowest source share r_min"),
    F_DBL("distill", "lambda_at", lambda_at, 0, 1e3, "0", "attention-transfer weight"),
    F_ENUM("distill", "at_norm", at_norm, at_norms, "l2",
           "attention maps compared L2-normalised (Zagoruyko) or raw (none: mean-squared error)"),
    F_DBL("distill", "lambda_hint", lambda_hint, 0, 1e3, "0", "FitNets hint weight"),
    F_DBL("distill", "lambda_align", lambda_align, 0, 1e3, "0.1", "domain-alignment weight"),
    F_ENUM("distill", "align", align, align_kinds, "mmd", "domain-alignment loss"),
    F_STR("distill", "align_tap", align_tap, "bottleneck", "tap aligned (enc<l>, dec<l>, ...)"),
    F_STR("distill", "hint_tap", hint_tap, "bottleneck",
          "FitNets hint tap (enc<l>, bottleneck, dec<l>), same grid in both networks"),
    F_DBL("distill", "lambda_ent", lambda_ent, 0, 1e3, "0", "target entropy weight"),
    F_BOOL("distill", "dynamic_weights", dynamic_weights, "true", "per-sample loss weights"),
    F_DBL("distill", "dyn_beta", dyn_beta, 0, 10, "0.5", "dynamic weight scale beta"),
    F_ENUM("distill", "self_distill", self_distill, self_kinds, "none",
           "self-distillation: layers (the student's deep-supervision heads learn its own "
           "final output), ema (mean teacher), both"),
    F_DBL("distill", "lambda_self", lambda_self, 0, 1e3, "1",
          "weight of the layer-wise self-distillation term L_self"),
    F_DBL("distill", "ema_momentum", ema_momentum, 0, 1, "0.99", "EMA momentum"),
    F_DBL("distill", "ema_rampup_epochs", ema_rampup_epochs, 0, 1e5, "5",
          "the EMA teacher's KD weight ramps in as exp(-5 (1 - t/R)^2) over R epochs; 0 = none"),
    F_BOOL("distill", "target_bn", target_bn, "false",
           "AdaBN: batch-norm statistics re-estimated on target patches for the teacher on "
           "target rows and the exported student"),
    F_STR("distill", "extra_teachers", extra_teachers, "",
          "comma-separated model files of more teachers (any width, depth, norm, up); "
          "empty = none"),
    F_STR("distill", "teacher_weights", teacher_weights, "",
          "comma-separated weight of each teacher (first, then extra_teachers); empty = 1 each"),
    F_ENUM("distill", "teacher_combine", teacher_combine, combines, "fixed",
           "teachers' soft targets mixed with fixed weights or per-voxel confidence "
           "(lower entropy, more weight) times them"),
    F_ENUM("distill", "kd_balance", kd_balance, balances, "none",
           "KD voxels weighted equally (none) or so that each class the teacher predicts "
           "in a row weighs the same (class)"),
    F_DBL("distill", "fda_p", fda_p, 0, 1, "0",
          "Fourier domain adaptation: probability that a source row takes the low-frequency "
          "amplitude of a target patch of the step (Yang & Soatto 2020); 0 = off"),
    F_DBL("distill", "fda_beta", fda_beta, 0, 0.5, "0.05",
          "FDA band: frequencies |k| <= floor(min side * beta) on each axis"),
    F_BOOL("distill", "fda_progressive", fda_progressive, "false",
           "FDA band grows as the source share falls: beta (1 - r(e)) / (1 - mix_min)"),
    F_DBL("distill", "lambda_pl", lambda_pl, 0, 1e3, "0",
          "weight of the CE on confident pseudo-labels of the target rows; 0 = off"),
    F_DBL("distill", "pl_tau", pl_tau, 0, 1, "0.9",
          "pseudo-label confidence threshold tau on the teacher's max probability"),
    F_DBL("distill", "pl_class_share", pl_class_share, 0, 1, "0",
          "class balance: class k's threshold is min(tau, the confidence its most confident "
          "share of voxels reach); 0 = tau alone"),
    F_ENUM("distill", "pl_teacher", pl_teacher, pl_teachers, "teacher",
           "pseudo-labels from the teacher of the target rows (its target_bn copy when on) "
           "or the EMA student"),
    F_ENUM("distill", "pl_source", pl_source, pl_sources, "patch",
           "pseudo-labels from the teacher on each step's patches, or from its prediction of "
           "each whole target training volume made once before training"),
    F_BOOL("distill", "pl_largest_cc", pl_largest_cc, "true",
           "pl_source = volume: each foreground class keeps its largest connected component"),
    SCHEMA(DK_PREP_AUGMENT, aug),
    F_STR("output", "run_dir", run_dir, "runs/train", "run directory"),
};

enum { NLAYOUT = sizeof layout / sizeof layout[0], MAX_FIELDS = 192 };

static dk_cfg_field table[MAX_FIELDS];
static size_t nfields;
static pthread_once_t composed = PTHREAD_ONCE_INIT;

/* The layout with each place holder replaced by its group's schema rows. */
static void compose(void) {
    size_t ns;
    const dk_prep_field *s = dk_prep_schema(&ns);
    for (size_t i = 0; i < NLAYOUT; i++) {
        if (layout[i].section) {
            table[nfields++] = layout[i];
            continue;
        }
        size_t first = SIZE_MAX;
        for (size_t k = 0; k < ns; k++) {
            if (s[k].group != (dk_prep_group)layout[i].size) continue;
            if (first == SIZE_MAX) first = s[k].cfg.offset;
            DK_ASSERT(nfields < MAX_FIELDS && s[k].cfg.offset >= first);
            table[nfields] = s[k].cfg;
            table[nfields++].offset = layout[i].offset + (s[k].cfg.offset - first);
        }
    }
}

const dk_cfg_field *dk_train_config_table(size_t *n) {
    pthread_once(&composed, compose);
    if (n) *n = nfields;
    return table;
}

void dk_train_config_defaults(dk_train_config *c) {
    memset(c, 0, sizeof *c);
    dk_prep_defaults(&c->prep); /* its members that are no keys */
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    dk_cfg_defaults(c, t, n);
    dk_status st = dk_train_config_validate(c);
    DK_ASSERT(st == DK_OK);
}

dk_status dk_train_config_load(dk_train_config *c, const char *path) {
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    dk_train_config tmp = *c;
    dk_status st = dk_cfg_load(&tmp, t, n, path);
    if (st == DK_OK) *c = tmp;
    return st;
}

dk_status dk_train_config_set(dk_train_config *c, const char *assignment) {
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    return dk_cfg_set(c, t, n, assignment);
}

dk_status dk_train_config_write(const dk_train_config *c, const char *path) {
    size_t n;
    const dk_cfg_field *t = dk_train_config_table(&n);
    return dk_cfg_write(c, t, n, path);
}

static dk_status check_lo_hi(double lo, double hi, const char *sec, const char *klo,
                             const char *khi) {
    if (lo > hi)
        return dk_fail(DK_ERR_ARG, "config: [%s] %s = %g exceeds %s = %g", sec, klo, lo, khi, hi);
    return DK_OK;
}

/* One explicit <which>_<key> (pool: big 2, n = levels - 1 triples; kernel: big 3, levels). */
static dk_status parse_axes(int v[DK_UNET_MAX_LEVELS][3], const char *text, const char *which,
                            const char *key, int big, int n, int dims) {
    int count = 0;
    dk_status st = dk_unet_axes_parse(v, &count, text);
    if (st != DK_OK) return dk_error_context(st, "config: [model] %s_%s", which, key);
    if (count != n)
        return dk_fail(DK_ERR_ARG, "config: [model] %s_%s = '%s' has %d triples d,h,w; %s_levels "
                       "needs %d (one per %s)", which, key, text, count, which, n,
                       big == 2 ? "pool after a level but the last" : "level");
    for (int l = 0; l < n; l++)
        for (int a = 0; a < 3; a++)
            if ((v[l][a] != 1 && v[l][a] != big) || (dims == 2 && a == 0 && v[l][a] != 1))
                return dk_fail(DK_ERR_ARG, "config: [model] %s_%s = '%s': entry %c of triple "
                               "%d is %d, must be %s", which, key, text, "dhw"[a], l + 1,
                               v[l][a], dims == 2 && a == 0 ? "1 (a 2-D network)"
                                                            : big == 2 ? "1 or 2" : "1 or 3");
    return DK_OK;
}

/* <which>_pool and <which>_kernel into net->pool and net->kernel: "" leaves them zero (the
 * isotropic network), "auto" takes dk_unet_plan_anisotropic's plan for the patch at the
 * [data] spacing (z, y, x read as d, h, w) when all three are set, else 1 mm. */
static dk_status resolve_axes(const dk_train_config *c, dk_unet_config *net, const char *which,
                              const char *pool, const char *kernel) {
    memset(net->pool, 0, sizeof net->pool);
    memset(net->kernel, 0, sizeof net->kernel);
    net->dims = c->dims;
    int ap = strcmp(pool, "auto") == 0, ak = strcmp(kernel, "auto") == 0;
    if (ap || ak) {
        const double *sp = c->prep.target.spacing;
        double dhw[3] = {sp[2], sp[1], sp[0]};
        dk_unet_config g = *net;
        dk_status st = dk_unet_plan_anisotropic(
            &g, c->patch, sp[0] > 0 && sp[1] > 0 && sp[2] > 0 ? dhw : NULL);
        if (st != DK_OK)
            return dk_error_context(st, "config: [model] %s_%s = auto", which,
                                    ap ? "pool" : "kernel");
        if (ap) memcpy(net->pool, g.pool, sizeof g.pool);
        if (ak) memcpy(net->kernel, g.kernel, sizeof g.kernel);
    }
    dk_status st = DK_OK;
    if (!ap && pool[0])
        st = parse_axes(net->pool, pool, which, "pool", 2, net->levels - 1, c->dims);
    if (st == DK_OK && !ak && kernel[0])
        st = parse_axes(net->kernel, kernel, which, "kernel", 3, net->levels, c->dims);
    return st;
}

/* Every patch side (h, w; d in 3-D) divisible by the product of the network's pool strides
 * along it (2^(levels-1) when every pool halves every axis). */
static dk_status check_patch(const dk_train_config *c, const dk_unet_config *net,
                             const char *which) {
    static const char *const keys[3] = {"patch_d", "patch_h", "patch_w"};
    int64_t f[3];
    dk_unet_multiple(net, f);
    int iso = dk_unet_is_isotropic(net);
    for (int a = c->dims == 2 ? 1 : 0; a < 3; a++) {
        if (c->patch[a] % f[a] == 0) continue;
        if (iso)
            return dk_fail(DK_ERR_ARG,
                           "config: [data] %s = %lld is not divisible by 2^(%s_levels-1) = %lld",
                           keys[a], (long long)c->patch[a], which, (long long)f[a]);
        return dk_fail(DK_ERR_ARG, "config: [data] %s = %lld is not divisible by %lld, the "
                       "product of the %s_pool strides along %c", keys[a],
                       (long long)c->patch[a], (long long)f[a], which, "dhw"[a]);
    }
    return DK_OK;
}

static dk_status check_data(dk_train_config *c) {
    if (!c->cases[0]) return dk_fail(DK_ERR_ARG, "config: [data] cases is empty");
    if (c->domain_column[0] && (!c->source[0] || !c->target[0]))
        return dk_fail(DK_ERR_ARG, "config: [data] source and target must be set when "
                                   "domain_column = %s", c->domain_column);
    const dk_prep_opts *p = &c->prep;
    if (p->norm.lo_pct >= p->norm.hi_pct)
        return dk_fail(DK_ERR_ARG, "config: [data] norm_lo_pct = %g must be below norm_hi_pct "
                                   "= %g", p->norm.lo_pct, p->norm.hi_pct);
    if (p->channels != DK_CHANNELS_ALL && c->in_channels != 1)
        return dk_fail(DK_ERR_ARG, "config: [data] channels = %s gives 1 channel but [model] "
                                   "in_channels = %d", dk_channel_mode_name(p->channels),
                       c->in_channels);
    if (c->dims == 2 && c->patch[0] != 1)
        return dk_fail(DK_ERR_ARG, "config: [data] patch_d = %lld must be 1 when [model] dims "
                                   "= 2", (long long)c->patch[0]);
    const double *sp = p->target.spacing;
    if (p->mask_extent > 0 && !c->use_mask)
        return dk_fail(DK_ERR_ARG, "config: [data] mask_extent = %g scales images by their "
                                   "masks but use_mask = false", p->mask_extent);
    if (p->mask_extent > 0 && (sp[0] > 0 || sp[1] > 0 || sp[2] > 0))
        return dk_fail(DK_ERR_ARG, "config: [data] mask_extent = %g and spacing_x/y/z both set "
                                   "the grid: choose one", p->mask_extent);
    dk_status st = resolve_axes(c, &c->teacher, "teacher", c->teacher_pool, c->teacher_kernel);
    if (st == DK_OK)
        st = resolve_axes(c, &c->student, "student", c->student_pool, c->student_kernel);
    if (st == DK_OK) st = check_patch(c, &c->teacher, "teacher");
    return st != DK_OK ? st : check_patch(c, &c->student, "student");
}

static dk_status check_train(const dk_train_config *c) {
    int64_t total = (int64_t)c->epochs * c->steps_per_epoch;
    if (c->lr.warmup_steps >= total)
        return dk_fail(DK_ERR_ARG, "config: [train] warmup_steps = %lld must be below epochs * "
                                   "steps_per_epoch = %lld", (long long)c->lr.warmup_steps,
                       (long long)total);
    if (!c->run_dir[0]) return dk_fail(DK_ERR_ARG, "config: [output] run_dir is empty");
    return DK_OK;
}

/* T0 of the temperature schedule: temp_t0, or when it is 0 the schedule's own. */
static double temp_t0(const dk_train_config *c) {
    if (c->temp_t0 > 0) return c->temp_t0;
    if (c->temp_schedule == DK_TEMP_HALVING) return dk_schedule_temp_halving().v0;
    if (c->temp_schedule == DK_TEMP_CONSTANT) return 4.0;
    return dk_schedule_temp_adaptive().v0;
}

/* Deep-supervision heads: only the student's, and only with a loss that trains them (layer
 * self-distillation), which needs heads (levels >= 3: heads on levels 1 .. levels - 2). */
static dk_status check_heads(const dk_train_config *c) {
    int layers = c->self_distill & DK_SELF_LAYERS;
    if (c->teacher.deep_supervision)
        return dk_fail(DK_ERR_ARG, "config: [model] teacher_deep_supervision = true: no loss "
                       "trains the teacher's deep-supervision heads; set it to false");
    if (c->student.deep_supervision && !layers)
        return dk_fail(DK_ERR_ARG, "config: [model] student_deep_supervision = true: only "
                       "[distill] self_distill = layers or both trains the heads (it is %s)",
                       self_kinds[c->self_distill]);
    if (layers && !c->student.deep_supervision)
        return dk_fail(DK_ERR_ARG, "config: [distill] self_distill = %s needs [model] "
                       "student_deep_supervision = true (the heads it trains)",
                       self_kinds[c->self_distill]);
    if (layers && c->student.levels < 3)
        return dk_fail(DK_ERR_ARG, "config: [distill] self_distill = %s needs [model] "
                       "student_levels >= 3 (heads sit on levels 1 .. levels - 2; it is %d)",
                       self_kinds[c->self_distill], c->student.levels);
    return DK_OK;
}

/* nteachers and extra_paths from extra_teachers, teacher_w from teacher_weights (one per
 * teacher, >= 0, sum > 0; empty = 1 each). The files are checked when the trainer loads
 * them. */
static dk_status check_teachers(dk_train_config *c) {
    int n = 1;
    memset(c->extra_paths, 0, sizeof c->extra_paths); /* no entry of an earlier list stays */
    for (const char *p = c->extra_teachers; *p; n++) {
        size_t len = strcspn(p, ","), end = len;
        while (end && p[end - 1] == ' ') end--;
        if (end == 0 || end >= DK_TRAIN_PATH_MAX || n == DK_TRAIN_MAX_TEACHERS)
            return dk_fail(DK_ERR_ARG, "config: [distill] extra_teachers: bad list (an empty "
                           "entry, a path of more than %d characters or more than %d entries)",
                           DK_TRAIN_PATH_MAX - 1, DK_TRAIN_MAX_TEACHERS - 1);
        snprintf(c->extra_paths[n - 1], DK_TRAIN_PATH_MAX, "%.*s", (int)end, p);
        p += len + (p[len] == ',');
        while (*p == ' ') p++;
    }
    c->nteachers = n;
    if (!c->teacher_weights[0]) {
        for (int i = 0; i < n; i++) c->teacher_w[i] = 1.0;
        return DK_OK;
    }
    double sum = 0;
    int k = dk_parse_numbers(c->teacher_w, DK_TRAIN_MAX_TEACHERS, c->teacher_weights);
    for (int i = 0; i < k; i++) sum += c->teacher_w[i] >= 0 ? c->teacher_w[i] : NAN;
    if (k != n || !(sum > 0))
        return dk_fail(DK_ERR_ARG, "config: [distill] teacher_weights = '%s': needs %d "
                       "numbers >= 0 with a positive sum, one per teacher (teacher_checkpoint, "
                       "then the %d extra_teachers)", c->teacher_weights, n, n - 1);
    return DK_OK;
}

/* Every [augment] range: lo <= hi. */
static dk_status check_augment(const dk_augment_opts *a) {
    const struct {
        double lo, hi;
        const char *key;
    } r[] = {{a->scale_lo, a->scale_hi, "scale"},
             {a->shift_lo, a->shift_hi, "shift"},
             {a->gamma_lo, a->gamma_hi, "gamma"},
             {a->zoom_lo, a->zoom_hi, "zoom"},
             {a->elastic_alpha_lo, a->elastic_alpha_hi, "elastic_alpha"},
             {a->elastic_sigma_lo, a->elastic_sigma_hi, "elastic_sigma"},
             {a->blur_sigma_lo, a->blur_sigma_hi, "blur_sigma"}};
    dk_status st = DK_OK;
    for (size_t k = 0; k < sizeof r / sizeof r[0] && st == DK_OK; k++) {
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%s_lo", r[k].key);
        snprintf(hi, sizeof hi, "%s_hi", r[k].key);
        st = check_lo_hi(r[k].lo, r[k].hi, "augment", lo, hi);
    }
    return st;
}

static dk_status check_distill(dk_train_config *c) {
    dk_status st = check_lo_hi(c->mix_min, c->mix_r0, "distill", "mix_min", "mix_r0");
    if (st == DK_OK && c->temp_min > temp_t0(c))
        st = dk_fail(DK_ERR_ARG, "config: [distill] temp_min = %g exceeds T0 = %g (temp_t0%s)",
                     c->temp_min, temp_t0(c), c->temp_t0 > 0 ? "" : " 0: the schedule's own");
    if (st == DK_OK) st = check_heads(c);
    if (st == DK_OK) st = check_teachers(c);
    if (st == DK_OK && c->align != DK_ALIGN_NONE && c->lambda_align > 0 && !c->align_tap[0])
        st = dk_fail(DK_ERR_ARG, "config: [distill] align_tap is empty but align = %s",
                     align_kinds[c->align]);
    if (st == DK_OK && c->lambda_hint > 0 && !c->hint_tap[0])
        st = dk_fail(DK_ERR_ARG, "config: [distill] hint_tap is empty but lambda_hint = %g",
                     c->lambda_hint);
    if (st == DK_OK && c->lambda_pl > 0 && c->pl_teacher == DK_PL_EMA &&
        !(c->self_distill & DK_SELF_EMA))
        st = dk_fail(DK_ERR_ARG, "config: [distill] pl_teacher = ema needs self_distill = ema "
                     "or both (it is %s)", self_kinds[c->self_distill]);
    if (st == DK_OK && c->lambda_pl > 0 && c->pl_source == DK_PL_VOLUME &&
        c->pl_teacher == DK_PL_EMA)
        st = dk_fail(DK_ERR_ARG, "config: [distill] pl_source = volume needs pl_teacher = "
                     "teacher (the volumes are predicted once, before the EMA student learns)");
    return st == DK_OK ? check_augment(&c->aug) : st;
}

dk_status dk_train_config_validate(dk_train_config *c) {
    dk_status st = check_data(c);
    if (st == DK_OK) st = check_train(c);
    if (st == DK_OK) st = check_distill(c);
    if (st != DK_OK) return st;
    dk_unet_config *nets[2] = {&c->teacher, &c->student};
    for (int i = 0; i < 2; i++) {
        nets[i]->dims = c->dims;
        nets[i]->in_channels = c->in_channels;
        nets[i]->classes = c->classes;
    }
    c->lr.total_steps = (int64_t)c->epochs * c->steps_per_epoch - c->lr.warmup_steps;
    if (c->student.base >= c->teacher.base && c->student.levels >= c->teacher.levels)
        dk_log(DK_LOG_WARN, "config: the student (base %d, levels %d) is not smaller than the "
                            "teacher (base %d, levels %d)", c->student.base, c->student.levels,
               c->teacher.base, c->teacher.levels);
    return DK_OK;
}

dk_schedule dk_train_config_temperature(const dk_train_config *c) {
    dk_schedule s = dk_schedule_constant(temp_t0(c));
    if (c->temp_schedule == DK_TEMP_ADAPTIVE) {
        s.kind = DK_SCHED_EXP;
        s.rate = c->temp_gamma;
        s.lo = c->temp_min;
    } else if (c->temp_schedule == DK_TEMP_HALVING) {
        s.kind = DK_SCHED_STEP;
        s.rate = 0.5;
        s.lo = c->temp_min;
        s.period = 1;
    }
    return s;
}

dk_schedule dk_train_config_mixing(const dk_train_config *c) {
    dk_schedule s = dk_schedule_constant(c->mix_r0);
    s.kind = DK_SCHED_LINEAR;
    s.rate = -c->mix_delta;
    s.lo = c->mix_min;
    s.hi = 1.0;
    return s;
}
