/*
 * The trainer's domain-adaptation parts beside the losses of trainer_step.c (dakd/train.h,
 * the trainer): Fourier domain adaptation of the source rows of a distillation batch, and
 * the pseudo-labels of its target rows (per patch, or per whole volume before training).
 */
#include <stdlib.h>
#include <string.h>

#include "dakd/eval.h"

#include "loss_internal.h"
#include "trainer_internal.h"

dk_status dk__trainer_da_init(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    if (t->opts.mode != DK_TRAINER_DISTILL) return DK_OK;
    if (c->fda_p > 0) {
        dk_status st = dk_fda_create(&t->fda, c->patch[0], c->patch[1], c->patch[2]);
        if (st != DK_OK) return st;
    }
    if (c->lambda_pl > 0 && c->pl_source == DK_PL_PATCH) { /* volume: the rows' own labels */
        t->pl_lab = malloc((size_t)(t->batch * t->nvox));
        t->pl_work = malloc((size_t)(2 * t->batch * t->nvox) * sizeof(float));
        if (!t->pl_lab || !t->pl_work)
            return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the pseudo-labels");
    }
    return DK_OK;
}

/* Target case c's pseudo-label volume (pl_source = volume, dakd/train.h): the first teacher's
 * sliding-window argmax on the training grid, each foreground class's largest component,
 * DK_IGNORE_LABEL below pl_tau. Returns the voxels of each class into n[] (ignore: n[classes]). */
static dk_status pl_volume(dk_trainer *t, dk_case_data *c, int64_t *n) {
    const dk_train_config *cf = &t->cfg;
    const dk_volume *im = &c->image;
    int64_t nv = im->nx * im->ny * im->nz, classes = cf->classes;
    dk_infer_opts io;
    dk_infer_defaults(&io);
    for (int a = 0; a < 3; a++) io.patch[a] = cf->patch[a];
    float *probs = dk_alloc_aligned((size_t)(classes * nv), sizeof(float));
    dk_status st = probs ? dk_volume_alloc(&c->label, im->nx, im->ny, im->nz, 1, 1, DK_U8)
                         : dk_fail(DK_ERR_NOMEM, "case '%s': no memory for its pseudo-labels",
                                   c->id);
    if (st == DK_OK) st = dk_infer_probs(probs, t->teachers[0], im, &io);
    uint8_t *lab = st == DK_OK ? c->label.data : NULL;
    if (st == DK_OK) {
        c->label.geom = im->geom, c->label.ndim = im->ndim;
        dk_infer_argmax(lab, probs, (int)classes, nv);
        if (cf->pl_largest_cc) st = dk_keep_largest_cc(lab, im->nx, im->ny, im->nz, (int)classes);
    }
    for (int64_t v = 0; st == DK_OK && v < nv; v++) {
        float best = probs[v];
        for (int64_t k = 1; k < classes; k++)
            best = probs[k * nv + v] > best ? probs[k * nv + v] : best;
        if ((double)best < cf->pl_tau) lab[v] = DK_IGNORE_LABEL;
        n[lab[v] == DK_IGNORE_LABEL ? classes : lab[v]]++;
    }
    dk_free(probs);
    return st == DK_OK ? DK_OK : dk_error_context(st, "pseudo-labels of target case '%s'", c->id);
}

dk_status dk__trainer_pl_volumes(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    if (t->opts.mode != DK_TRAINER_DISTILL || c->lambda_pl <= 0 || c->pl_source != DK_PL_VOLUME)
        return DK_OK;
    double t0 = dk_time_now();
    for (int i = 0; i < t->ntgt; i++) {
        dk_case_data *cd = &t->tgt[i];
        int64_t n[DK_LOSS_MAX_CLASSES + 1] = {0};
        dk_volume_free(&cd->label); /* never a file: target labels are not read */
        dk_status st = pl_volume(t, cd, n);
        if (st != DK_OK) return st;
        int64_t nv = cd->image.nx * cd->image.ny * cd->image.nz;
        char fg[160] = "";
        for (int k = 1, used = 0; k < c->classes && used < (int)sizeof fg - 1; k++) {
            int w = snprintf(fg + used, sizeof fg - (size_t)used, " class %d %lld", k,
                             (long long)n[k]);
            used += w > 0 ? w : 0;
        }
        dk_log(DK_LOG_INFO, "pseudo-labels of target case '%s' (teacher, whole volume%s):%s "
               "voxels, %.1f %% ignored (below pl_tau %g)", cd->id,
               c->pl_largest_cc ? ", largest component" : "", fg,
               100.0 * (double)n[c->classes] / (double)nv, c->pl_tau);
    }
    dk_log(DK_LOG_INFO, "pseudo-labels of %d target volumes in %.1f s", t->ntgt,
           dk_time_now() - t0);
    return DK_OK;
}

void dk__trainer_da_free(dk_trainer *t) {
    dk_fda_free(t->fda);
    free(t->pl_lab);
    free(t->pl_work);
}

/* The band of epoch e: fda_beta, or with fda_progressive fda_beta (1 - r(e)) / (1 - mix_min)
 * (r(e) the mixing ratio: the band grows to fda_beta as the source share falls to mix_min). */
static double fda_beta_at(const dk_train_config *c, int epoch) {
    if (!c->fda_progressive || c->mix_min >= 1) return c->fda_beta;
    dk_schedule mix = dk_train_config_mixing(c);
    double r = dk_schedule_at(&mix, epoch, 0);
    return c->fda_beta * (1 - r) / (1 - c->mix_min);
}

/* Source row i < ns takes, with probability fda_p, the style of target patch j of the step
 * (j uniform over the B patches the target sampler drew; the first nt are the target rows):
 * two draws per row from stream 9 of the step's stream, whatever the outcome. */
void dk__trainer_fda(dk_trainer *t, int epoch, int64_t step, int64_t ns) {
    const dk_train_config *c = &t->cfg;
    dk_rng r = dk_rng_split(&t->base_step, (uint64_t)(epoch * c->steps_per_epoch + step));
    dk_rng rf = dk_rng_split(&r, 9);
    int64_t nx = c->in_channels * t->nvox;
    t->fda_beta = fda_beta_at(c, epoch);
    t->fda_rows = 0;
    for (int64_t i = 0; i < ns; i++) {
        double u = dk_rng_uniform_double(&rf);
        int64_t j = (int64_t)dk_rng_below(&rf, (uint64_t)t->batch);
        if (u >= c->fda_p) continue;
        dk_fda_apply(t->fda, t->x + i * nx, t->btgt.image.data + j * nx, c->in_channels,
                     t->fda_beta);
        t->fda_rows++;
    }
}

/* The logits (nt, classes, nvox) of the teacher that gives the target rows' pseudo-labels:
 * the EMA student (pl_teacher = ema), the target_bn copy (both ran on the target rows
 * only), or the first teacher (which ran on every row: from row ns). */
static const float *pl_logits(dk_trainer *t, int64_t ns) {
    if (t->cfg.pl_teacher == DK_PL_EMA) return dk__trainer_tap(t, t->ema, "logits")->value.data;
    if (t->teacher_tgt) return dk__trainer_tap(t, t->teacher_tgt, "logits")->value.data;
    const float *z = dk__trainer_tap(t, t->teachers[0], "logits")->value.data;
    return z + ns * t->cfg.classes * t->nvox;
}

/* L_pl = dk_loss_ce of the target rows on their pseudo-labels (dk_pseudo_labels inside the
 * rows' masks), gradient scale * dL/dz into the logits' grad; the share of the target rows'
 * counted voxels that got a label into st->pl_share. */
double dk__trainer_pl(dk_trainer *t, step_terms *st, int64_t ns, float scale) {
    const dk_train_config *c = &t->cfg;
    int64_t nt = t->batch - ns, off = ns * c->classes * t->nvox;
    if (nt == 0) return 0;
    const uint8_t *m = t->mask + ns * t->nvox;
    dk_tap *lg = dk__trainer_tap(t, t->net, "logits");
    if (c->pl_source == DK_PL_VOLUME) { /* the rows' labels: patches of the volumes */
        const uint8_t *lab = t->lab + ns * t->nvox; /* masked by dk__trainer_fill */
        int64_t k = 0, counted = dk_loss_count_mask(m, nt * t->nvox);
        for (int64_t v = 0; v < nt * t->nvox; v++) k += lab[v] != DK_IGNORE_LABEL;
        st->pl_share = counted ? (double)k / (double)counted : 0;
        return dk_loss_ce(lg->grad + off, lg->value.data + off, lab, nt, c->classes, t->nvox,
                          scale) +
               dk_loss_dice(lg->grad + off, lg->value.data + off, lab, nt, c->classes, t->nvox,
                            0, 1e-5, scale);
    }
    int64_t k = dk_pseudo_labels(t->pl_lab, NULL, pl_logits(t, ns), m, nt, c->classes, t->nvox,
                                 c->pl_tau, c->pl_class_share, t->pl_work);
    int64_t counted = dk_loss_count_mask(m, nt * t->nvox);
    st->pl_share = counted ? (double)k / (double)counted : 0;
    return dk_loss_ce(lg->grad + off, lg->value.data + off, t->pl_lab, nt, c->classes, t->nvox,
                      scale);
}
