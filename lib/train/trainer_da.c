/*
 * The trainer's domain-adaptation parts beside the losses of trainer_step.c (dakd/train.h,
 * the trainer): Fourier domain adaptation of the source rows of a distillation batch, and
 * the CE on confident pseudo-labels of its target rows.
 */
#include <stdlib.h>
#include <string.h>

#include "loss_internal.h"
#include "trainer_internal.h"

dk_status dk__trainer_da_init(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    if (t->opts.mode != DK_TRAINER_DISTILL) return DK_OK;
    if (c->fda_p > 0) {
        dk_status st = dk_fda_create(&t->fda, c->patch[0], c->patch[1], c->patch[2]);
        if (st != DK_OK) return st;
    }
    if (c->lambda_pl > 0) {
        t->pl_lab = malloc((size_t)(t->batch * t->nvox));
        t->pl_work = malloc((size_t)(2 * t->batch * t->nvox) * sizeof(float));
        if (!t->pl_lab || !t->pl_work)
            return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the pseudo-labels");
    }
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
    int64_t k = dk_pseudo_labels(t->pl_lab, NULL, pl_logits(t, ns), m, nt, c->classes, t->nvox,
                                 c->pl_tau, c->pl_class_share, t->pl_work);
    int64_t counted = dk_loss_count_mask(m, nt * t->nvox);
    st->pl_share = counted ? (double)k / (double)counted : 0;
    dk_tap *lg = dk__trainer_tap(t, t->net, "logits");
    return dk_loss_ce(lg->grad + off, lg->value.data + off, t->pl_lab, nt, c->classes, t->nvox,
                      scale);
}
