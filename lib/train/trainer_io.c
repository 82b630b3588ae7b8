/*
 * The trainer's files: the resumable checkpoint (flat tensors + metadata, one atomic
 * safetensors write), the per-step JSONL log, model files, and whole-image validation.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer_internal.h"

enum { MAX_STATE = 9, META_KEYS = 11 };

/* The flat tensors of the resumable state; returns their count. */
static int state_refs(dk_tensor_ref *r, dk_trainer *t) {
    dk_params *p = dk_unet_params(t->net), *b = dk_unet_buffers(t->net);
    int n = 0;
    r[n++] = (dk_tensor_ref){"params", 1, {p->total}, p->w};
    if (b->total) r[n++] = (dk_tensor_ref){"buffers", 1, {b->total}, b->w};
    if (p->m) r[n++] = (dk_tensor_ref){"optim.m", 1, {p->total}, p->m};
    if (p->v) r[n++] = (dk_tensor_ref){"optim.v", 1, {p->total}, p->v};
    if (t->ema) {
        dk_params *ep = dk_unet_params(t->ema), *eb = dk_unet_buffers(t->ema);
        r[n++] = (dk_tensor_ref){"ema.params", 1, {ep->total}, ep->w};
        if (eb->total) r[n++] = (dk_tensor_ref){"ema.buffers", 1, {eb->total}, eb->w};
    }
    dk_params *h = &t->hint;
    if (h->total) {
        r[n++] = (dk_tensor_ref){"hint.params", 1, {h->total}, h->w};
        if (h->m) r[n++] = (dk_tensor_ref){"hint.optim.m", 1, {h->total}, h->m};
        if (h->v) r[n++] = (dk_tensor_ref){"hint.optim.v", 1, {h->total}, h->v};
    }
    return n;
}

dk_status dk__trainer_save_state(dk_trainer *t) {
    dk_tensor_ref r[MAX_STATE];
    int n = state_refs(r, t);
    char v[META_KEYS][64];
    if (t->log && fflush(t->log) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot write: %s", t->path_log, strerror(errno));
    long bytes = t->log ? ftell(t->log) : 0;
    snprintf(v[0], 64, "%d", t->epoch);
    snprintf(v[1], 64, "%" PRId64, t->optim.step);
    snprintf(v[2], 64, "%.17g", t->dyn.lbar);
    snprintf(v[3], 64, "%" PRId64, t->dyn.updates);
    snprintf(v[4], 64, "%.17g", t->stats.best_val_dice);
    snprintf(v[5], 64, "%d", t->stats.best_epoch);
    snprintf(v[6], 64, "%ld", bytes);
    snprintf(v[7], 64, "%d", (int)t->opts.mode);
    snprintf(v[8], 64, "%" PRId64, t->cfg.seed);
    snprintf(v[9], 64, "%.17g", t->dyn.dbar);
    const char *meta[] = {"dakd.epoch", v[0], "dakd.optim_step", v[1], "dakd.dyn_lbar", v[2],
                          "dakd.dyn_updates", v[3], "dakd.best_dice", v[4], "dakd.best_epoch",
                          v[5], "dakd.log_bytes", v[6], "dakd.mode", v[7], "dakd.seed", v[8],
                          "dakd.dyn_dbar", v[9], NULL};
    return dk_safetensors_write(t->path_ckpt, r, n, meta);
}

static int meta_get(const cJSON *m, const char *key, double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(m, key);
    if (!cJSON_IsString(it)) return -1;
    char *end;
    *out = strtod(it->valuestring, &end);
    return *end == '\0' ? 0 : -1;
}

static dk_status apply_meta(dk_trainer *t, const cJSON *m, double *log_bytes) {
    double ep, os, lb, db, du, bd, be, mode, seed;
    if (meta_get(m, "dakd.epoch", &ep) || meta_get(m, "dakd.optim_step", &os) ||
        meta_get(m, "dakd.dyn_lbar", &lb) || meta_get(m, "dakd.dyn_updates", &du) ||
        meta_get(m, "dakd.dyn_dbar", &db) ||
        meta_get(m, "dakd.best_dice", &bd) || meta_get(m, "dakd.best_epoch", &be) ||
        meta_get(m, "dakd.log_bytes", log_bytes) || meta_get(m, "dakd.mode", &mode) ||
        meta_get(m, "dakd.seed", &seed))
        return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ lacks a trainer field (dakd.epoch, "
                       "dakd.optim_step, ...): not a dakd training checkpoint", t->path_ckpt);
    if ((int)mode != (int)t->opts.mode)
        return dk_fail(DK_ERR_ARG, "%s: dakd.mode = %d was written by another command (train "
                       "--model teacher/student, --oracle, distill) than this one (%d)",
                       t->path_ckpt, (int)mode, (int)t->opts.mode);
    if ((int64_t)seed != t->cfg.seed)
        return dk_fail(DK_ERR_ARG, "%s: dakd.seed = %.0f but [train] seed = %" PRId64
                       ": resuming with another seed would not continue the same run",
                       t->path_ckpt, seed, t->cfg.seed);
    if (ep < 0 || ep > t->cfg.epochs)
        return dk_fail(DK_ERR_FORMAT, "%s: dakd.epoch = %g outside 0..[train] epochs = %d",
                       t->path_ckpt, ep, t->cfg.epochs);
    t->epoch = (int)ep;
    t->stats.epochs_done = t->epoch;
    t->optim.step = (int64_t)os;
    t->hint_optim.step = t->optim.step;
    t->dyn.lbar = lb;
    t->dyn.dbar = db;
    t->dyn.updates = (int64_t)du;
    t->stats.best_val_dice = bd;
    t->stats.best_epoch = (int)be;
    return DK_OK;
}

dk_status dk__trainer_load_state(dk_trainer *t) {
    if (access(t->path_ckpt, F_OK) != 0)
        return dk_fail(DK_ERR_IO, "%s: --resume but there is no checkpoint (the run has not "
                       "reached [train] checkpoint_every)", t->path_ckpt);
    dk_tensor_ref r[MAX_STATE];
    int n = state_refs(r, t);
    char *meta = NULL;
    dk_status st = dk_safetensors_read(t->path_ckpt, r, n, 0, &meta);
    if (st != DK_OK) return st;
    cJSON *m = cJSON_Parse(meta);
    free(meta);
    double log_bytes = 0;
    st = m ? apply_meta(t, m, &log_bytes)
           : dk_fail(DK_ERR_FORMAT, "%s: __metadata__ is not JSON", t->path_ckpt);
    cJSON_Delete(m);
    if (st != DK_OK) return st;
    dk_log(DK_LOG_INFO, "resuming %s at epoch %d (optimiser step %" PRId64 ")", t->path_ckpt,
           t->epoch + 1, t->optim.step);
    return dk__trainer_open_log(t, (int64_t)log_bytes);
}

/* Open steps.jsonl: new (keep_bytes 0) or cut back to what the checkpoint had logged. */
dk_status dk__trainer_open_log(dk_trainer *t, int64_t keep_bytes) {
    if (keep_bytes > 0 && truncate(t->path_log, (off_t)keep_bytes) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot cut the step log back to the checkpoint: %s",
                       t->path_log, strerror(errno));
    t->log = fopen(t->path_log, keep_bytes > 0 ? "a" : "w");
    if (!t->log)
        return dk_fail(DK_ERR_IO, "%s: cannot open the step log: %s", t->path_log,
                       strerror(errno));
    return DK_OK;
}

void dk__trainer_log_step(dk_trainer *t, int epoch, int64_t step, const step_terms *s,
                          double seconds) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !t->log) {
        cJSON_Delete(o);
        return;
    }
    /* the mode first, so an oracle run (trained on TARGET labels) says so on every line */
    static const char *const modes[] = {"teacher", "student", "oracle", "distill"};
    cJSON_AddStringToObject(o, "mode", modes[t->opts.mode]);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "global_step", (double)(t->optim.step - 1));
    const char *k[] = {"loss", "kd", "sup", "ce", "dice", "at", "hint", "align", "ent", "T",
                       "mix", "alpha", "lr", "grad_norm"};
    double v[] = {s->total, s->kd, s->sup, s->ce, s->dice, s->at, s->hint, s->align, s->ent,
                  s->T, s->mix, s->alpha, s->lr, s->grad_norm};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) cJSON_AddNumberToObject(o, k[i], v[i]);
    cJSON_AddNumberToObject(o, "ns", (double)s->ns);
    cJSON_AddNumberToObject(o, "nt", (double)s->nt);
    if (t->ema) cJSON_AddNumberToObject(o, "ema_weight", s->ema_w);
    static const char *const wk[2][3] = {{"w_src_mean", "w_src_min", "w_src_max"},
                                         {"w_tgt_mean", "w_tgt_min", "w_tgt_max"}};
    for (int d = 0; d < 2 && t->opts.mode == DK_TRAINER_DISTILL && t->cfg.dynamic_weights; d++)
        for (int j = 0; j < 3 && (d ? s->nt : s->ns) > 0; j++)
            cJSON_AddNumberToObject(o, wk[d][j], d ? s->w_tgt[j] : s->w_src[j]);
    cJSON_AddNumberToObject(o, "sec", seconds);
    char *line = cJSON_PrintUnformatted(o);
    if (line) fprintf(t->log, "%s\n", line);
    free(line);
    cJSON_Delete(o);
}

/* The exported model also carries the preprocessing it was trained with ("dakd.data.*",
 * read by dk_predict_run so prediction prepares images exactly as training did): channel
 * choice, normalisation and its parameters, target spacing and size "x,y,z" (0 = kept),
 * the mask extent (0 = off), the training patch "d,h,w" and the classes. Numbers in %.17g
 * read back exactly. */
dk_status dk__trainer_save_model(dk_trainer *t, const char *name) {
    static const char *const chans[] = {"all", "one", "luminance"};
    static const char *const norms[] = {"none", "zscore", "percentile_zscore", "ct_window"};
    const dk_prep_opts *p = &t->prep;
    const double *sp = p->target.spacing;
    const int64_t *sz = p->target.size, *pt = t->cfg.patch;
    char path[DK_TRAIN_PATH_MAX + 32], v[13][80];
    snprintf(path, sizeof path, "%s/%s", t->cfg.run_dir, name);
    snprintf(v[0], 80, "%d", t->epoch);
    snprintf(v[1], 80, "%d", p->channel_index);
    snprintf(v[2], 80, "%.17g", p->norm.lo_pct);
    snprintf(v[3], 80, "%.17g", p->norm.hi_pct);
    snprintf(v[4], 80, "%.17g", p->norm.level);
    snprintf(v[5], 80, "%.17g", p->norm.width);
    snprintf(v[6], 80, "%d", p->norm.zero_outside_mask);
    snprintf(v[7], 80, "%d", p->norm_in_mask);
    snprintf(v[8], 80, "%.17g,%.17g,%.17g", sp[0], sp[1], sp[2]);
    snprintf(v[9], 80, "%" PRId64 ",%" PRId64 ",%" PRId64, sz[0], sz[1], sz[2]);
    snprintf(v[10], 80, "%" PRId64 ",%" PRId64 ",%" PRId64, pt[0], pt[1], pt[2]);
    snprintf(v[11], 80, "%d", p->classes);
    snprintf(v[12], 80, "%.17g", p->mask_extent);
    const char *meta[] = {"dakd.epoch", v[0], "dakd.data.channels", chans[p->channels],
                          "dakd.data.channel_index", v[1], "dakd.data.norm",
                          norms[p->norm.kind], "dakd.data.norm_lo_pct", v[2],
                          "dakd.data.norm_hi_pct", v[3], "dakd.data.ct_level", v[4],
                          "dakd.data.ct_width", v[5], "dakd.data.zero_outside_mask", v[6],
                          "dakd.data.norm_in_mask", v[7], "dakd.data.spacing", v[8],
                          "dakd.data.size", v[9], "dakd.data.patch", v[10],
                          "dakd.data.classes", v[11], "dakd.data.mask_extent", v[12],
                          NULL};
    return dk_unet_save(t->net, path, meta);
}

/* Per-class Dice of prediction vs labels over n voxels (255 = ignored); both empty = 1. */
static double case_dice(const uint8_t *pred, const uint8_t *lab, int64_t n, int classes) {
    double sum = 0;
    for (int k = 1; k < classes; k++) {
        int64_t tp = 0, np = 0, ng = 0;
        for (int64_t i = 0; i < n; i++) {
            if (lab[i] == DK_IGNORE_LABEL) continue;
            np += pred[i] == k;
            ng += lab[i] == k;
            tp += pred[i] == k && lab[i] == k;
        }
        sum += np + ng ? 2.0 * (double)tp / (double)(np + ng) : 1.0;
    }
    return sum / (classes - 1);
}

/* Whole-image prediction of case c into pred (Z*Y*X), the image zero-padded to a multiple
 * of 2^(levels-1) in every planned axis. */
static dk_status predict(uint8_t *pred, dk_unet *net, const dk_case_data *c, int classes) {
    const dk_unet_config *g = dk_unet_get_config(net);
    int64_t m = (int64_t)1 << (g->levels - 1), X = c->image.nx, Y = c->image.ny, Z = c->image.nz;
    int64_t C = c->image.nc, pd = g->dims == 3 ? (Z + m - 1) / m * m : 1;
    int64_t ph = (Y + m - 1) / m * m, pw = (X + m - 1) / m * m, ps = pd * ph * pw;
    dk_status st = dk_unet_plan(net, 1, pd, ph, pw);
    if (st != DK_OK) return st;
    if (g->dims == 2 && Z != 1)
        return dk_fail(DK_ERR_ARG, "case '%s': a 2-D network needs 2-D images (nz = %lld)",
                       c->id, (long long)Z);
    float *x = dk_alloc_aligned((size_t)(C * ps), sizeof(float));
    if (!x) return dk_fail(DK_ERR_NOMEM, "case '%s': no memory for inference", c->id);
    memset(x, 0, (size_t)(C * ps) * sizeof(float));
    const float *img = (const float *)c->image.data;
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t z = 0; z < Z; z++)
            for (int64_t y = 0; y < Y; y++)
                memcpy(x + ((ch * pd + z) * ph + y) * pw, img + ((ch * Z + z) * Y + y) * X,
                       (size_t)X * sizeof(float));
    dk_unet_forward(net, x, 0, NULL);
    const float *lg = dk_unet_tap(net, "logits")->value.data;
    for (int64_t z = 0; z < Z; z++)
        for (int64_t y = 0; y < Y; y++)
            for (int64_t xi = 0; xi < X; xi++) {
                int64_t v = (z * ph + y) * pw + xi;
                int best = 0;
                for (int k = 1; k < classes; k++)
                    if (lg[k * ps + v] > lg[best * ps + v]) best = k;
                pred[(z * Y + y) * X + xi] = (uint8_t)best;
            }
    dk_free(x);
    return DK_OK;
}

dk_status dk__eval_dice(double *dice, dk_unet *net, const dk_case_data *cases, int n,
                        int classes) {
    double sum = 0;
    *dice = NAN;
    for (int i = 0; i < n; i++) {
        const dk_case_data *c = &cases[i];
        int64_t nv = c->image.nx * c->image.ny * c->image.nz;
        uint8_t *pred = malloc((size_t)nv);
        if (!pred) return dk_fail(DK_ERR_NOMEM, "case '%s': no memory", c->id);
        dk_status st = predict(pred, net, c, classes);
        if (st == DK_OK) sum += case_dice(pred, (const uint8_t *)c->label.data, nv, classes);
        free(pred);
        if (st != DK_OK) return st;
    }
    *dice = n ? sum / n : NAN;
    return DK_OK;
}
