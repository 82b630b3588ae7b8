/*
 * One training step: the supervised step (CE + soft Dice on one labelled batch) and the
 * distillation step (the method's total loss over a mixed source/target batch). Losses add
 * their gradients into the student's taps; then backward, global-norm clipping, the
 * optimiser and the EMA update. See dakd/train.h (trainer) for the formula.
 */
#include <math.h>
#include <string.h>

#include "dakd/dist.h"
#include "loss_internal.h"
#include "trainer_internal.h"

int64_t dk__trainer_nsrc(const dk_trainer *t, int epoch) {
    if (t->opts.mode != DK_TRAINER_DISTILL) return t->batch;
    dk_schedule mix = dk_train_config_mixing(&t->cfg);
    int64_t ns = (int64_t)llround(dk_schedule_at(&mix, epoch, 0) * (double)t->batch);
    const dk_train_config *c = &t->cfg;
    int64_t lo = 0, hi = t->batch;
    if (c->align != DK_ALIGN_NONE && c->lambda_align > 0) lo = 2, hi = t->batch - 2;
    return ns < lo ? lo : ns > hi ? hi : ns;
}

/* Copy patch i of b into row r of the step batch; unlabelled rows get the ignore label. */
static void put_row(dk_trainer *t, int64_t r, const dk_batch *b, int64_t i, int labelled) {
    int64_t nx = t->cfg.in_channels * t->nvox;
    memcpy(t->x + r * nx, b->image.data + i * nx, (size_t)nx * sizeof(float));
    memcpy(t->mask + r * t->nvox, b->mask + i * t->nvox, (size_t)t->nvox);
    if (labelled) memcpy(t->lab + r * t->nvox, b->label + i * t->nvox, (size_t)t->nvox);
    else memset(t->lab + r * t->nvox, DK_IGNORE_LABEL, (size_t)t->nvox);
}

/* The names of the terms of `s` that are not finite, ", "-separated ("none" if all are). */
static void bad_terms(char *list, size_t n, const step_terms *s) {
    const char *k[] = {"loss", "kd", "sup", "ce", "dice", "at", "hint", "align", "ent", "self",
                       "pl", "grad_norm"};
    double v[] = {s->total, s->kd, s->sup, s->ce, s->dice, s->at, s->hint, s->align, s->ent,
                  s->self, s->pl, s->grad_norm};
    list[0] = '\0';
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!isfinite(v[i])) {
            size_t used = strlen(list);
            snprintf(list + used, n - used, "%s%s", used ? ", " : "", k[i]);
        }
    if (!list[0]) snprintf(list, n, "none");
}

/* A step whose `term` is not finite: the cases of the batch, the terms that are not finite
 * and the step's place in steps.jsonl (0-based epoch and step, as logged). */
static dk_status numeric_fail(const dk_trainer *t, int epoch, int64_t step, const char *term,
                              double v, const step_terms *s) {
    char cases[256] = "", list[128];
    size_t used = 0;
    for (int64_t i = 0; i < t->batch && used + 1 < sizeof cases; i++) {
        const dk_case_data *cd = i < s->ns ? &t->src[t->bsrc.case_index[i]]
                                           : &t->tgt[t->btgt.case_index[i - s->ns]];
        int k = snprintf(cases + used, sizeof cases - used, "%s%s", i ? "," : "", cd->id);
        if (k < 0) break;
        used += (size_t)k;
        if (used >= sizeof cases) used = sizeof cases - 1;
    }
    bad_terms(list, sizeof list, s);
    return dk_fail(DK_ERR_NUMERIC, "%s: epoch %d step %lld: %s is %g (cases in the batch: %s); "
                   "stopped before the update, no checkpoint written; non-finite terms: %s "
                   "(steps.jsonl \"epoch\": %d, \"step\": %lld, \"global_step\": %lld)",
                   t->cfg.run_dir, epoch + 1, (long long)step, term, v, cases, list, epoch,
                   (long long)step, (long long)t->optim.step);
}

/* Tap `name` of net: the batch's rows (dk__trainer_tap), or with `local` this rank's own. */
static dk_tap *tap_of(dk_trainer *t, dk_unet *net, const char *name, int local) {
    return local ? dk_unet_tap(net, name) : dk__trainer_tap(t, net, name);
}

/* L_sup = CE + batch Dice over rows [0, n) (labels masked): the one supervised loss of every
 * mode, gradient scaled by `scale` into the logits' grad. */
static void sup_terms(dk_trainer *t, step_terms *st, int64_t n, float scale) {
    if (n == 0) return;
    dk_tap *lg = dk__trainer_tap(t, t->net, "logits");
    int64_t c = t->cfg.classes, s = t->nvox;
    st->ce = dk_loss_ce(lg->grad, lg->value.data, t->lab, n, c, s, scale);
    st->dice = dk_loss_dice(lg->grad, lg->value.data, t->lab, n, c, s, 0, 1e-5, scale);
    st->sup = st->ce + st->dice;
}

/* KD of row i against its teachers: teacher k at weight a_k (teacher_weights; on a target
 * row i >= ns the first one's target_bn copy instead of it) and, on a target row, the EMA
 * student at weight rho; fixed or per-voxel confidence weights (teacher_combine); voxels
 * class-balanced under kd_balance = class. The
 * target_bn teacher and the EMA network ran on the target rows only: row i - ns. With
 * `local`, i and ns count this rank's rows (the networks' own taps, mask ml). */
static double kd_sample(dk_trainer *t, float *grad, const float *zs, int64_t i, int64_t ns,
                        float T, float rho, float scale, int local) {
    const float *tz[MAX_TEACHERS];
    float tw[MAX_TEACHERS];
    int64_t cs = t->cfg.classes * t->nvox;
    int nt = 0;
    for (int k = 0; k < t->nteachers; k++, nt++) {
        tz[nt] = tap_of(t, t->teachers[k], "logits", local)->value.data + i * cs;
        tw[nt] = (float)t->cfg.teacher_w[k];
    }
    if (t->teacher_tgt && i >= ns)
        tz[0] = tap_of(t, t->teacher_tgt, "logits", local)->value.data + (i - ns) * cs;
    if (t->ema && i >= ns) {
        tz[nt] = tap_of(t, t->ema, "logits", local)->value.data + (i - ns) * cs;
        tw[nt++] = rho;
    }
    float *gi = grad ? grad + i * cs : NULL; /* sample i's rows, like its logits */
    const uint8_t *m = (local ? t->ml : t->mask) + i * t->nvox;
    int conf = t->cfg.teacher_combine == DK_COMBINE_CONFIDENCE;
    if (t->cfg.kd_balance == DK_KD_BALANCE_CLASS)
        return dk_loss_kd_balanced(gi, zs + i * cs, tz, tw, nt, conf, m, 1, t->cfg.classes,
                                   t->nvox, T, scale);
    return (conf ? dk_loss_kd_confidence : dk_loss_kd)(gi, zs + i * cs, tz, tw, nt, m, 1,
                                                       t->cfg.classes, t->nvox, T, scale);
}

/* Mean, min, max of w over rows [r0, r1) into out (3); nothing when the range is empty. */
static void weight_stats(double *out, const float *w, int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    out[0] = 0, out[1] = w[r0], out[2] = w[r0];
    for (int64_t i = r0; i < r1; i++) {
        out[0] += w[i];
        out[1] = w[i] < out[1] ? w[i] : out[1];
        out[2] = w[i] > out[2] ? w[i] : out[2];
    }
    out[0] /= (double)(r1 - r0);
}

/* alpha (1/B) sum_i w_i KD_i. With dynamic weights each row's KD gradient goes to a scratch
 * row first (one loss pass) and is added into the logits' gradient times its weight once the
 * batch's KD losses have set the weights. Returns the weighted mean (1/B) sum_i w_i KD_i.
 * Over ranks each rank takes its own rows, and the B losses are summed over ranks (each is
 * one rank's, the others' 0), so every rank sets the same weights. */
static double kd_terms(dk_trainer *t, step_terms *st, int64_t ns, float T, float rho) {
    int local = t->dist != NULL;
    dk_tap *lg = tap_of(t, t->net, "logits", local);
    const float *z = lg->value.data;
    int64_t cs = t->cfg.classes * t->nvox, B = t->batch, n = local ? t->nl : B;
    int dyn = t->cfg.dynamic_weights;
    float *g = dyn ? t->grad_rows : lg->grad;
    if (dyn) memset(g, 0, (size_t)(n * cs) * sizeof(float));
    if (local) memset(t->sample_loss, 0, (size_t)B * sizeof *t->sample_loss);
    for (int64_t j = 0; j < n; j++)
        t->sample_loss[dk__trainer_row(t, j)] =
            kd_sample(t, g, z, j, local ? t->nls : ns, T, rho, (float)(st->alpha / (double)B),
                      local);
    if (local) dk__trainer_dist_total(t, t->sample_loss, B);
    for (int64_t i = 0; i < B; i++) st->kd += t->sample_loss[i] / (double)B;
    if (!dyn) return st->kd;
    dk_dynweights_update(&t->dyn, t->sample_loss, B);
    dk_dynweights_compute(t->sample_w, &t->dyn, t->sample_loss, B);
    for (int64_t j = 0; j < n; j++) {
        float w = t->sample_w[dk__trainer_row(t, j)], *dst = lg->grad + j * cs;
        const float *src = g + j * cs;
        for (int64_t k = 0; k < cs; k++) dst[k] += w * src[k];
    }
    double kdw = 0;
    for (int64_t i = 0; i < B; i++) kdw += (double)t->sample_w[i] * t->sample_loss[i] / (double)B;
    weight_stats(st->w_src, t->sample_w, 0, ns);
    weight_stats(st->w_tgt, t->sample_w, ns, B);
    return kdw;
}

/* Rows [r0, r0 + n) of a (B, ...) tensor. */
static dk_tensor rows(const dk_tensor *v, int64_t r0, int64_t n) {
    return dk_tensor_view(v->data + r0 * v->c * v->d * v->h * v->w, n, v->c, v->d, v->h, v->w);
}

/* The patch masks m of n rows max-pooled onto the grid of v (a tap's value), (n, v's d*h*w)
 * in tap_mask. */
static const uint8_t *pooled_mask(dk_trainer *t, const uint8_t *m, int64_t n,
                                  const dk_tensor *v) {
    const int64_t *p = t->cfg.patch;
    dk_mask_pool(t->tap_mask, m, n, p[0], p[1], p[2], p[0] / v->d, p[1] / v->h, p[2] / v->w);
    return t->tap_mask;
}

/* The batch's masks onto the grid of v. */
static const uint8_t *tap_mask(dk_trainer *t, const dk_tensor *v) {
    return pooled_mask(t, t->mask, t->batch, v);
}

/* A feature loss between student rows fs and teacher rows ft (mask at fs's grid), gradient
 * scale * d/dfs into dfs. */
typedef double (*pair_loss)(dk_trainer *t, float *dfs, const dk_tensor *fs, const dk_tensor *ft,
                            const uint8_t *mask, float scale);

static double at_pair(dk_trainer *t, float *dfs, const dk_tensor *fs, const dk_tensor *ft,
                      const uint8_t *mask, float scale) {
    return dk_loss_at(dfs, fs, ft, mask, (dk_at_norm)t->cfg.at_norm, scale, t->at_work);
}

static double hint_pair(dk_trainer *t, float *dfs, const dk_tensor *fs, const dk_tensor *ft,
                        const uint8_t *mask, float scale) {
    dk_params *h = &t->hint;
    int64_t wo = dk_params_find(h, "hint.weight")->offset;
    int64_t bo = dk_params_find(h, "hint.bias")->offset;
    return dk_loss_hint(dfs, h->g + wo, h->g + bo, fs, ft, mask, h->w + wo, h->w + bo, scale,
                        t->hint_work);
}

/* fn at tap `name` as (1/B) (ns L_src + nt L_tgt): the source rows against the first teacher,
 * the target rows against the teacher that teaches them (target_bn: its adapted copy, which
 * ran on the target rows only). A loss that is a mean over its rows splits exactly so; with
 * `local` over this rank's rows only (nls source rows first), still weighted 1/B. */
static double by_domain(dk_trainer *t, const char *name, int64_t ns, const uint8_t *mask,
                        float scale, pair_loss fn, int local) {
    dk_tap *fs = tap_of(t, t->net, name, local);
    const dk_tensor *tv = &tap_of(t, t->teachers[0], name, local)->value;
    int64_t nrows = local ? t->nl : t->batch, s = fs->value.d * fs->value.h * fs->value.w;
    int64_t per = fs->value.c * s;
    if (local) ns = t->nls;
    double sum = 0;
    for (int tgt = 0; tgt < 2; tgt++) {
        int64_t r0 = tgt ? ns : 0, n = tgt ? nrows - ns : ns;
        if (n == 0) continue;
        dk_tensor vs = rows(&fs->value, r0, n);
        dk_tensor vt = tgt && t->teacher_tgt
                           ? rows(&tap_of(t, t->teacher_tgt, name, local)->value, 0, n)
                           : rows(tv, r0, n);
        double frac = (double)n / (double)t->batch;
        sum += frac * fn(t, fs->grad + r0 * per, &vs, &vt, mask ? mask + r0 * s : NULL,
                         (float)(scale * frac));
    }
    return sum;
}

/* Attention transfer on every encoder tap both networks have, inside the pooled masks. A sum
 * of per-row terms: over ranks each rank takes its own rows and the parts are summed. */
static double at_terms(dk_trainer *t, int64_t ns, float scale) {
    double sum = 0;
    int lv = dk_unet_get_config(t->net)->levels, lt = dk_unet_get_config(t->teachers[0])->levels;
    int n = (lv < lt ? lv : lt) - 1, local = t->dist != NULL;
    for (int l = 0; l < n; l++) {
        char name[16];
        snprintf(name, sizeof name, "enc%d", l);
        const dk_tensor *v = &tap_of(t, t->net, name, local)->value;
        const uint8_t *m = local ? pooled_mask(t, t->ml, t->nl, v) : tap_mask(t, v);
        sum += by_domain(t, name, ns, m, scale, at_pair, local);
    }
    if (local) dk__trainer_dist_total(t, &sum, 1);
    return sum;
}

/* L_self (self_distill layers): each deep-supervision head ds<l> of the student learns the
 * student's own final output at T, "Be Your Own Teacher" (Zhang et al. 2019): dk_loss_kd of
 * the head's logits against the final logits mean-pooled onto the head's grid (a constant of
 * the step), over every row, inside the rows' masks max-pooled alike; the mean over the
 * heads. Adds scale / heads * d/dhead into each head's tap. */
static double self_terms(dk_trainer *t, float T, float scale) {
    const dk_tensor *z = &dk__trainer_tap(t, t->net, "logits")->value;
    int heads = dk_unet_get_config(t->net)->levels - 2;
    double sum = 0;
    for (int l = 1; l <= heads; l++) {
        char name[16];
        snprintf(name, sizeof name, "ds%d", l);
        dk_tap *h = dk__trainer_tap(t, t->net, name);
        const dk_tensor *v = &h->value;
        dk_mean_pool(t->self_target, z->data, z->n * z->c, z->d, z->h, z->w, z->d / v->d,
                     z->h / v->h, z->w / v->w);
        const float *tz = t->self_target;
        sum += dk_loss_kd(h->grad, v->data, &tz, NULL, 1, tap_mask(t, v), v->n, v->c,
                          v->d * v->h * v->w, T, scale / (float)heads);
    }
    return sum / heads;
}

/* MMD / CORAL between per-voxel student features of source and target rows at align_tap,
 * drawn inside the rows' masks at the tap's grid (the positions stay in align_idx). */
static double align_term(dk_trainer *t, int64_t ns, dk_rng *rng, float scale) {
    dk_tap *tap = dk__trainer_tap(t, t->net, t->cfg.align_tap);
    const dk_tensor *v = &tap->value;
    int64_t per = v->c * v->d * v->h * v->w, vox = v->d * v->h * v->w, ch = v->c;
    const uint8_t *m = tap_mask(t, v);
    dk_tensor vs = rows(v, 0, ns), vt = rows(v, ns, t->batch - ns);
    int64_t ks = dk_loss_count_mask(m, ns * vox), kt = dk_loss_count_mask(m + ns * vox, vt.n * vox);
    int64_t ms = ks < ALIGN_ROWS ? ks : ALIGN_ROWS, mt = kt < ALIGN_ROWS ? kt : ALIGN_ROWS;
    t->align_ms = t->align_mt = 0;
    if (ms < 2 || mt < 2) return 0;
    int64_t *is = t->align_idx, *it = t->align_idx + ALIGN_ROWS;
    float *xs = t->align_x, *xt = xs + ALIGN_ROWS * ch;
    float *gs = xt + ALIGN_ROWS * ch, *gt = gs + ALIGN_ROWS * ch;
    dk_feat_sample_draw(is, ms, &vs, m, rng);
    dk_feat_sample_draw(it, mt, &vt, m + ns * vox, rng);
    t->align_ms = ms, t->align_mt = mt;
    dk_feat_sample_forward(xs, &vs, is, ms);
    dk_feat_sample_forward(xt, &vt, it, mt);
    memset(gs, 0, (size_t)(2 * ALIGN_ROWS * ch) * sizeof(float));
    double l = t->cfg.align == DK_ALIGN_MMD
                   ? dk_loss_mmd(gs, gt, xs, xt, ms, mt, ch, 0, scale, t->align_work)
                   : dk_loss_coral(gs, gt, xs, xt, ms, mt, ch, scale, t->align_work);
    dk_feat_sample_backward(tap->grad, gs, &vs, is, ms);
    dk_feat_sample_backward(tap->grad + ns * per, gt, &vt, it, mt);
    return l;
}

static void fill_batch(dk_trainer *t, int epoch, int64_t step, int64_t ns) {
    int oracle_or_sup = t->opts.mode != DK_TRAINER_DISTILL;
    dk_sampler_step(&t->bsrc, &t->ssrc, &t->aug, &t->base_src, epoch, step);
    for (int64_t i = 0; i < ns; i++) put_row(t, i, &t->bsrc, i, 1);
    if (oracle_or_sup || (ns == t->batch && !t->fda)) return; /* FDA styles need targets */
    dk_sampler_step(&t->btgt, &t->stgt, &t->aug, &t->base_tgt, epoch, step);
    int pl_rows = t->cfg.lambda_pl > 0 && t->cfg.pl_source == DK_PL_VOLUME;
    for (int64_t i = ns; i < t->batch; i++) put_row(t, i, &t->btgt, i - ns, pl_rows);
}

/* The losses of the distillation step, after the forwards (dakd/train.h's formula). */
static void distill_losses(dk_trainer *t, step_terms *st, int epoch, int64_t step, int64_t ns) {
    const dk_train_config *c = &t->cfg;
    dk_schedule ts = dk_train_config_temperature(c);
    float T = (float)dk_schedule_at(&ts, epoch, 0);
    double te = (double)epoch + (double)step / (double)c->steps_per_epoch;
    st->T = T;
    st->ema_w = t->ema ? dk_ema_rampup(te, c->ema_rampup_epochs) : 0;
    sup_terms(t, st, ns, (float)(1 - st->alpha));
    double kdw = kd_terms(t, st, ns, T, (float)st->ema_w);
    if (c->lambda_at > 0) st->at = at_terms(t, ns, (float)c->lambda_at);
    if ((c->self_distill & DK_SELF_LAYERS) && c->lambda_self > 0)
        st->self = self_terms(t, T, (float)c->lambda_self);
    if (t->hint.total)
        st->hint = by_domain(t, c->hint_tap, ns,
                             tap_mask(t, &dk__trainer_tap(t, t->net, c->hint_tap)->value),
                             (float)c->lambda_hint, hint_pair, 0);
    if (c->align != DK_ALIGN_NONE && c->lambda_align > 0) {
        dk_rng r = dk_rng_split(&t->base_step, (uint64_t)(epoch * c->steps_per_epoch + step));
        dk_rng ra = dk_rng_split(&r, 7);
        st->align = align_term(t, ns, &ra, (float)c->lambda_align);
    }
    if (c->lambda_ent > 0 && ns < t->batch) {
        dk_tap *lg = dk__trainer_tap(t, t->net, "logits");
        int64_t off = ns * c->classes * t->nvox;
        st->ent = dk_loss_entropy(lg->grad + off, lg->value.data + off, t->mask + ns * t->nvox,
                                  t->batch - ns, c->classes, t->nvox, (float)c->lambda_ent);
    }
    if (c->lambda_pl > 0) st->pl = dk__trainer_pl(t, st, ns, (float)c->lambda_pl);
    st->total = st->alpha * kdw + (1 - st->alpha) * st->sup + c->lambda_at * st->at +
                c->lambda_hint * st->hint + c->lambda_align * st->align + c->lambda_ent * st->ent +
                c->lambda_self * st->self + c->lambda_pl * st->pl;
}

static void scale_grad(dk_params *p, float k) {
    for (int64_t i = 0; i < p->total; i++) p->g[i] *= k;
}

/* The pre-clip global gradient norm over the student and (with hints) the adapter, clipped
 * to clip_norm as one set (dk_params_clip_grad_norm's coefficient). */
static double clip_joint(dk_trainer *t, dk_params *p) {
    double mx = t->cfg.clip_norm;
    if (!t->hint.total) return mx > 0 ? dk_params_clip_grad_norm(p, mx) : dk_params_grad_norm(p);
    double a = dk_params_grad_norm(p), b = dk_params_grad_norm(&t->hint);
    double norm = sqrt(a * a + b * b);
    if (mx <= 0 || !isfinite(norm)) return norm;
    double coef = mx / (norm + 1e-6);
    if (coef < 1.0) {
        scale_grad(p, (float)coef);
        scale_grad(&t->hint, (float)coef);
    }
    return norm;
}

/* `net` runs on rows [r0, r0 + n) of the batch, re-planned when n changes (once per epoch at
 * most). The EMA student and the target_bn teacher teach the target rows only (kd_sample);
 * with a target_bn teacher the first teacher's target rows would be overwritten by it, so the
 * first teacher runs on the source rows only. */
static dk_status rows_forward(dk_trainer *t, dk_unet *net, int64_t r0, int64_t n) {
    if (!net || n == 0) return DK_OK;
    const int64_t *p = t->cfg.patch;
    dk_status st = dk_unet_plan(net, n, p[0], p[1], p[2]);
    if (st != DK_OK) return st;
    dk_unet_forward(net, t->xl + r0 * t->cfg.in_channels * t->nvox, 0, NULL);
    return DK_OK;
}

/* The networks on this rank's rows (xl: nls source rows, then the target rows; with one rank
 * the whole batch). */
static dk_status forward_all(dk_trainer *t, int epoch, int64_t step) {
    double t0 = dk_time_now();
    int64_t nl = t->nl, ns = t->nls, nt = nl - ns;
    const int64_t *p = t->cfg.patch;
    dk_status st = rows_forward(t, t->teachers[0], 0, t->teacher_tgt ? ns : nl);
    for (int k = 1; k < t->nteachers && st == DK_OK; k++)
        st = rows_forward(t, t->teachers[k], 0, nl);
    if (st == DK_OK) st = rows_forward(t, t->teacher_tgt, ns, nt); /* target_bn teacher */
    if (st != DK_OK) return st;
    double te = dk_time_now();
    st = rows_forward(t, t->ema, ns, nt);
    if (st == DK_OK) st = dk_unet_plan(t->net, nl, p[0], p[1], p[2]);
    if (st != DK_OK) return st;
    double t1 = dk_time_now();
    dk_rng r = dk_rng_split(&t->base_step, (uint64_t)(epoch * t->cfg.steps_per_epoch + step));
    dk_rng rd = dk_rng_split(&r, 5);
    dk_unet_forward(t->net, t->xl, 1, &rd);
    t->stats.sec_teacher += te - t0;
    t->stats.sec_ema += t1 - te;
    t->stats.sec_student_fwd += dk_time_now() - t1;
    return DK_OK;
}

int64_t dk__trainer_fill(dk_trainer *t, int epoch, int64_t step) {
    int64_t ns = dk__trainer_nsrc(t, epoch);
    double td = dk_time_now();
    fill_batch(t, epoch, step, ns);
    if (t->fda) dk__trainer_fda(t, epoch, step, ns);
    dk_labels_apply_mask(t->lab, t->mask, t->batch * t->nvox);
    t->stats.sec_data += dk_time_now() - td;
    return ns;
}

dk_status dk__trainer_grad(dk_trainer *t, int epoch, int64_t step, int64_t ns, step_terms *st) {
    memset(st, 0, sizeof *st);
    st->ns = ns, st->nt = t->batch - ns;
    st->mix = (double)ns / (double)t->batch;
    st->alpha = t->opts.mode == DK_TRAINER_DISTILL ? t->cfg.alpha : 0;
    dk__trainer_dist_split(t, ns);
    dk_status fst = forward_all(t, epoch, step);
    if (fst != DK_OK) return fst;
    double tl = dk_time_now();
    if (t->opts.mode == DK_TRAINER_DISTILL) distill_losses(t, st, epoch, step, ns);
    else sup_terms(t, st, t->batch, 1.0f), st->total = st->sup;
    t->stats.sec_loss += dk_time_now() - tl;
    if ((fst = dk__trainer_dist_grads(t)) != DK_OK) return fst;
    if (!isfinite(st->total)) return numeric_fail(t, epoch, step, "the loss", st->total, st);
    double t0 = dk_time_now();
    dk_unet_backward(t->net);
    t->stats.sec_student_bwd += dk_time_now() - t0;
    return DK_OK;
}

/* After dk__trainer_grad: clipping, the optimisers and the EMA update. */
static dk_status update(dk_trainer *t, int epoch, int64_t step, step_terms *st) {
    const dk_train_config *c = &t->cfg;
    dk_params *p = dk_unet_params(t->net);
    dk_status s = dk_dist_fault(t->optim.step);
    if (s == DK_OK) s = dk__trainer_dist_reduce(t);
    if (s == DK_OK) s = dk__trainer_dist_buffers(t);
    if (s != DK_OK) return s;
    st->grad_norm = clip_joint(t, p);
    if (!isfinite(st->grad_norm))
        return numeric_fail(t, epoch, step, "the gradient norm", st->grad_norm, st);
    st->lr = dk_lr_at(&c->lr, t->optim.step);
    dk_optim_step(&t->optim, p, st->lr);
    dk_params_zero_grad(p);
    if (t->hint.total) {
        dk_optim_step(&t->hint_optim, &t->hint, st->lr);
        dk_params_zero_grad(&t->hint);
    }
    if (t->ema) {
        dk_ema_update(dk_unet_params(t->ema), p, c->ema_momentum);
        if (dk_unet_buffers(t->net)->total)
            dk_ema_update(dk_unet_buffers(t->ema), dk_unet_buffers(t->net), c->ema_momentum);
    }
    return DK_OK;
}

dk_status dk__trainer_step(dk_trainer *t, int epoch, int64_t step, step_terms *st) {
    int64_t ns = dk__trainer_fill(t, epoch, step);
    dk_status s = dk__trainer_grad(t, epoch, step, ns, st);
    return s != DK_OK ? s : update(t, epoch, step, st);
}
