/*
 * The trainer's files: the resumable checkpoint (flat tensors + metadata, one atomic
 * safetensors write), the per-step JSONL log, model files, and validation (lib/eval's
 * sliding window and Dice).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dakd/eval.h"
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
    if (t->rank != 0) return DK_OK; /* rank 0 alone writes (trainer_dist.c) */
    dk_tensor_ref r[MAX_STATE];
    int n = state_refs(r, t);
    char v[META_KEYS][64];
    if (t->log && (fflush(t->log) != 0 || ferror(t->log)))
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
    const char *meta[2 * META_KEYS + 1] = {
        "dakd.epoch", v[0], "dakd.optim_step", v[1], "dakd.dyn_lbar", v[2], "dakd.dyn_updates",
        v[3], "dakd.best_dice", v[4], "dakd.best_epoch", v[5], "dakd.log_bytes", v[6],
        "dakd.mode", v[7], "dakd.seed", v[8], "dakd.dyn_dbar", v[9]};
    /* only an interrupted run stops inside an epoch: epoch-end checkpoints keep their bytes */
    snprintf(v[10], 64, "%" PRId64, t->epoch_step);
    if (t->epoch_step > 0) meta[20] = "dakd.epoch_step", meta[21] = v[10];
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
        meta_get(m, "dakd.best_dice", &bd) || meta_get(m, "dakd.best_epoch", &be) ||
        meta_get(m, "dakd.log_bytes", log_bytes) || meta_get(m, "dakd.mode", &mode) ||
        meta_get(m, "dakd.seed", &seed))
        return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ lacks a trainer field (dakd.epoch, "
                       "dakd.optim_step, ...): not a dakd training checkpoint", t->path_ckpt);
    if (meta_get(m, "dakd.dyn_dbar", &db))
        return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ lacks dakd.dyn_dbar: a checkpoint of an "
                       "older dakd, whose dynamic weights were another quantity; it cannot be "
                       "resumed exactly: start the run again without --resume", t->path_ckpt);
    if ((int)mode != (int)t->opts.mode)
        return dk_fail(DK_ERR_ARG, "%s: dakd.mode = %d was written by a run of another mode (0 "
                       "teacher, 1 student, 2 oracle, 3 distill) than this one (%d)",
                       t->path_ckpt, (int)mode, (int)t->opts.mode);
    if ((int64_t)seed != t->cfg.seed)
        return dk_fail(DK_ERR_ARG, "%s: dakd.seed = %.0f but [train] seed = %" PRId64
                       ": resuming with another seed would not continue the same run",
                       t->path_ckpt, seed, t->cfg.seed);
    if (ep < 0 || ep > t->cfg.epochs)
        return dk_fail(DK_ERR_FORMAT, "%s: dakd.epoch = %g outside 0..[train] epochs = %d",
                       t->path_ckpt, ep, t->cfg.epochs);
    double es = 0; /* absent: the checkpoint ends an epoch */
    if (meta_get(m, "dakd.epoch_step", &es) == 0 &&
        (es < 0 || es >= (double)t->cfg.steps_per_epoch || ep >= t->cfg.epochs))
        return dk_fail(DK_ERR_FORMAT, "%s: dakd.epoch_step = %g outside 0..[train] "
                       "steps_per_epoch - 1 = %lld of an epoch before the last", t->path_ckpt,
                       es, (long long)t->cfg.steps_per_epoch - 1);
    t->epoch = (int)ep;
    t->epoch_step = (int64_t)es;
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
    if (access(t->path_ckpt, F_OK) != 0) {
        /* killed before its first checkpoint: nothing to continue, so begin again */
        dk_log(DK_LOG_INFO, "%s: no checkpoint yet (the run stopped before its first one): "
               "starting from the beginning, with a new %s", t->path_ckpt, t->path_log);
        return dk__trainer_open_log(t, 0);
    }
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
    dk_log(DK_LOG_INFO, "resuming %s at epoch %d step %" PRId64 " (optimiser step %" PRId64 ")",
           t->path_ckpt, t->epoch + 1, t->epoch_step, t->optim.step);
    return dk__trainer_open_log(t, (int64_t)log_bytes);
}

/* Open steps.jsonl: new (keep_bytes 0) or cut back to what the checkpoint had logged. */
dk_status dk__trainer_open_log(dk_trainer *t, int64_t keep_bytes) {
    if (t->rank != 0) return DK_OK;
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
                          double seconds, double val_dice) {
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
    if (t->self_target) cJSON_AddNumberToObject(o, "self", s->self);
    if (t->opts.mode == DK_TRAINER_DISTILL && t->cfg.lambda_pl > 0) {
        cJSON_AddNumberToObject(o, "pl", s->pl);
        cJSON_AddNumberToObject(o, "pl_share", s->pl_share);
    }
    if (t->fda) {
        cJSON_AddNumberToObject(o, "fda_beta", t->fda_beta);
        cJSON_AddNumberToObject(o, "fda_rows", (double)t->fda_rows);
    }
    static const char *const wk[2][3] = {{"w_src_mean", "w_src_min", "w_src_max"},
                                         {"w_tgt_mean", "w_tgt_min", "w_tgt_max"}};
    for (int d = 0; d < 2 && t->opts.mode == DK_TRAINER_DISTILL && t->cfg.dynamic_weights; d++)
        for (int j = 0; j < 3 && (d ? s->nt : s->ns) > 0; j++)
            cJSON_AddNumberToObject(o, wk[d][j], d ? s->w_tgt[j] : s->w_src[j]);
    if (!isnan(val_dice)) cJSON_AddNumberToObject(o, "val_dice", val_dice);
    cJSON_AddNumberToObject(o, "sec", seconds);
    char *line = cJSON_PrintUnformatted(o);
    if (line) fprintf(t->log, "%s\n", line);
    free(line);
    cJSON_Delete(o);
}

/* The exported model also carries the preprocessing it was trained with and its patch
 * ("dakd.data.*" after "dakd.epoch", dk_prep_meta_write), which dk_predict_run reads back
 * through dk_prep_meta_read, so prediction prepares images exactly as training did; then
 * "dakd.adabn" = adabn_json when it is not NULL (target_bn). */
dk_status dk__trainer_save_model(dk_trainer *t, const char *name, const char *adabn_json) {
    if (t->rank != 0) return DK_OK;
    const int64_t *pt = t->cfg.patch;
    dk_data_opts d = {.prep = t->prep, .patch = {pt[0], pt[1], pt[2]}};
    dk_prep_meta pm;
    dk_prep_meta_write(&pm, &d);
    char path[DK_TRAIN_PATH_MAX + 32], epoch[16];
    snprintf(path, sizeof path, "%s/%s", t->cfg.run_dir, name);
    snprintf(epoch, sizeof epoch, "%d", t->epoch);
    const char *meta[2 * DK_PREP_META_MAX + 5] = {"dakd.epoch", epoch};
    memcpy(meta + 2, pm.kv, (size_t)(2 * pm.n + 1) * sizeof *meta);
    if (adabn_json) meta[2 + 2 * pm.n] = "dakd.adabn", meta[3 + 2 * pm.n] = adabn_json;
    return dk_unet_save(t->net, path, meta);
}

/* ---------------------------------------------------------------- validation
 *
 * A validation case is scored the way `dakd predict` and `dakd eval --mask` score it, with
 * the same library calls: dk_infer_probs with dk_infer_defaults and the training patch
 * (what the exported model's dakd.data.patch gives prediction), dk_infer_argmax, and
 * dk_eval_case's Dice (overlap only) over the counted voxels. See dk__trainer_val_dice. */

/* count (Z*Y*X) = 1 where case c is scored: inside its mask (the trainer keeps one with
 * [data] use_mask) and not DK_IGNORE_LABEL. Returns 0 when that is every voxel (no mask
 * is then needed), else 1. */
static int counted_voxels(uint8_t *count, const dk_case_data *c, int64_t n) {
    const uint8_t *lab = c->label.data, *msk = c->mask.data;
    int any = 0;
    for (int64_t i = 0; i < n; i++) {
        count[i] = (!msk || msk[i]) && lab[i] != DK_IGNORE_LABEL;
        any |= !count[i];
    }
    return any;
}

/* Mean over the foreground classes 1..classes-1 of case c's Dice (both empty = 1). pred,
 * count (Z*Y*X) and probs (classes*Z*Y*X) are the caller's scratch. */
static dk_status case_dice(double *dice, uint8_t *pred, uint8_t *count, float *probs,
                           dk_unet *net, const dk_case_data *c, const dk_infer_opts *io,
                           int classes) {
    const dk_volume *lab = &c->label;
    int64_t n = lab->nx * lab->ny * lab->nz;
    int labels[DK_LOSS_MAX_CLASSES];
    dk_label_metrics m[DK_LOSS_MAX_CLASSES];
    dk_metric_opts mo;
    dk_metric_defaults(&mo);
    mo.surface = 0;
    for (int k = 1; k < classes; k++) labels[k - 1] = k;
    dk_status st = dk_infer_probs(probs, net, &c->image, io);
    if (st != DK_OK) return st;
    dk_infer_argmax(pred, probs, classes, n);
    /* the prediction and the counted voxels on the label's grid (data borrowed) */
    dk_volume pv = *lab, cv = *lab;
    pv.data = pred, cv.data = count;
    int masked = counted_voxels(count, c, n);
    st = dk_eval_case(m, &pv, c->id, lab, c->id, masked ? &cv : NULL, labels, classes - 1, &mo);
    if (st != DK_OK) return st;
    double sum = 0;
    for (int k = 0; k < classes - 1; k++) sum += m[k].dice;
    *dice = sum / (classes - 1);
    return DK_OK;
}

dk_status dk__trainer_val_dice(double *dice, const dk_trainer *t, const dk_case_data *cases,
                               int n) {
    int classes = t->cfg.classes;
    dk_infer_opts io;
    dk_infer_defaults(&io);
    for (int a = 0; a < 3; a++) io.patch[a] = t->cfg.patch[a];
    double sum = 0;
    dk_status st = DK_OK;
    *dice = NAN;
    for (int i = 0; i < n && st == DK_OK; i++) {
        const dk_case_data *c = &cases[i];
        int64_t nv = c->label.nx * c->label.ny * c->label.nz;
        uint8_t *pred = malloc((size_t)nv), *count = malloc((size_t)nv);
        float *probs = dk_alloc_aligned((size_t)(classes * nv), sizeof(float));
        double d = 0;
        if (!pred || !count || !probs)
            st = dk_fail(DK_ERR_NOMEM, "case '%s': no memory for validation", c->id);
        if (st == DK_OK) st = case_dice(&d, pred, count, probs, t->net, c, &io, classes);
        sum += d;
        free(pred), free(count), dk_free(probs);
    }
    if (st == DK_OK) *dice = n ? sum / n : NAN;
    return st;
}

/* No file the run writes may be one it reads: the case list, the teachers' model files
 * (a teacher_checkpoint inside run_dir would be replaced by the student). Before anything
 * is written. */
dk_status dk__trainer_check_outputs(const dk_trainer *t) {
    static const char *const outs[] = {"config.ini", "steps.jsonl", "checkpoint.safetensors",
                                       "model.safetensors", "best.safetensors"};
    const dk_train_config *c = &t->cfg;
    const char *in[DK_TRAIN_MAX_TEACHERS + 1];
    const char *key[DK_TRAIN_MAX_TEACHERS + 1];
    int n = 0;
    in[n] = c->cases, key[n++] = "[data] cases";
    for (int k = 0; k < t->nteachers; k++) {
        in[n] = k ? c->extra_paths[k - 1] : c->teacher_checkpoint;
        key[n++] = k ? "[distill] extra_teachers" : "[model] teacher_checkpoint";
    }
    for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
        char p[DK_TRAIN_PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", c->run_dir, outs[o]);
        for (int i = 0; i < n; i++)
            if (dk_same_file(p, in[i]))
                return dk_fail(DK_ERR_ARG, "[output] run_dir = %s: the run would write %s, which "
                               "is %s (%s); choose another run_dir", c->run_dir, p, key[i],
                               in[i]);
    }
    return DK_OK;
}
