/*
 * The trainer's state, shared by trainer.c (set-up, loop, validation), trainer_step.c (the
 * supervised and distillation steps) and trainer_io.c (checkpoints, logs).
 */
#ifndef DAKD_TRAINER_INTERNAL_H
#define DAKD_TRAINER_INTERNAL_H

#include "dakd/data.h"
#include "dakd/train.h"

/* the teachers and the EMA student: the most KD targets a row can have */
enum { MAX_TEACHERS = DK_TRAIN_MAX_TEACHERS + 1, ALIGN_ROWS = 64 };

/* The loss terms of one step (unweighted; total is the objective L), as logged. */
typedef struct {
    double total, kd, sup, ce, dice, at, hint, align, ent, self;
    double pl, pl_share;     /* L_pl; the target rows' counted voxels with a pseudo-label */
    double grad_norm, lr, T, alpha, mix;
    double ema_w;            /* the EMA teacher's KD weight rho (0 without one) */
    double w_src[3], w_tgt[3]; /* dynamic weights: mean, min, max over source / target rows */
    int64_t ns, nt;
} step_terms;

struct dk_trainer {
    dk_train_config cfg;
    dk_trainer_opts opts;
    dk_trainer_stats stats;
    dk_case_list list;
    dk_prep_opts prep;
    dk_case_data *src, *tgt, *val; /* training cases (labelled), target cases, validation */
    int nsrc, ntgt, nval;
    dk_sampler ssrc, stgt;
    dk_batch bsrc, btgt;            /* (B, ...) each domain */
    dk_augment_opts aug;
    dk_rng base_src, base_tgt, base_step;
    int64_t batch, nvox;            /* B; voxels per patch */
    float *x;                       /* (B, C, d, h, w) the mixed batch */
    uint8_t *lab, *mask;            /* (B, nvox) */
    dk_unet *net;                   /* the trained network */
    dk_unet *teachers[MAX_TEACHERS];
    int nteachers;
    dk_unet *ema;                   /* EMA copy of the student, or NULL */
    dk_unet *teacher_tgt;           /* target_bn: the first teacher with target BN statistics */
    dk_optim optim;
    dk_dynweights dyn;
    double *sample_loss;            /* (B) */
    float *sample_w;                /* (B) */
    float *grad_rows;               /* (B, classes, nvox) per-sample logit gradients */
    float *at_work;
    size_t at_work_n;
    float *align_x;                 /* (2 ALIGN_ROWS, c) rows, then their gradients */
    double *align_work;
    int64_t *align_idx;             /* (2 ALIGN_ROWS) the last step's source, target positions */
    int64_t align_ms, align_mt;     /* how many of each the last step drew (0: no term) */
    uint8_t *tap_mask;              /* (B, nvox) the mask pooled onto a tap's grid */
    float *self_target;             /* (B, classes, nvox / 4) the final logits on a head's grid
                                     * (self_distill layers), else NULL */
    dk_params hint;                 /* FitNets adapter "hint.weight" (ct, cs, 1, 1, 1), "hint.bias"
                                     * (ct); total 0 when hints are off */
    dk_optim hint_optim;            /* its optimiser state; step follows optim.step */
    float *hint_work;
    dk_fda *fda;                    /* FDA plans (fda_p > 0), else NULL */
    double fda_beta;                /* the last batch's band */
    int64_t fda_rows;               /* its source rows that took a target style */
    uint8_t *pl_lab;                /* (B, nvox) pseudo-labels of the target rows (lambda_pl) */
    float *pl_work;                 /* (2 B nvox) their scratch */
    /* data parallelism (trainer_dist.c); one rank: nl = batch, nls = ns, xl = x, dist NULL */
    int rank, ranks;
    int64_t nl, nls, dist_ns;       /* this rank's rows and source rows; the step's ns */
    float *xl;                      /* (nl, C, d, h, w) this rank's rows of x, in batch order */
    uint8_t *ml;                    /* (nl, nvox) this rank's rows of mask */
    struct dk_trainer_dist *dist;   /* the gathered taps and scratch */
    int epoch;                      /* next epoch to run */
    int64_t epoch_step;             /* its steps already run (a resume after an interrupt) */
    dk_dir_lock lock;               /* run_dir/.dakd.lock */
    FILE *log;                      /* steps.jsonl */
    char path_ckpt[DK_TRAIN_PATH_MAX + 32], path_log[DK_TRAIN_PATH_MAX + 32];
};

/* trainer_adabn.c: target_bn. The batch-norm statistics of `net` re-estimated on the target
 * training patches (dk_adabn over the target sampler, the run's seed; nothing for other
 * norms); dk__trainer_adapt_files writes model.safetensors (the adapted t->net) with its
 * "dakd.adabn" record and re-estimates best.safetensors alike. */
dk_status dk__trainer_adapt_bn(dk_trainer *t, dk_unet *net);
dk_status dk__trainer_adapt_files(dk_trainer *t);
/* adabn.c: the record of a re-estimation as one JSON object (a string the caller frees; NULL
 * without memory), the value of "dakd.adabn". */
char *dk__adabn_record_json(const dk_adabn_record *r);

/* trainer_step.c: one step of (epoch, step) = fill + grad + clipping, the optimisers and the
 * EMA update; fills the terms; DK_ERR_NUMERIC on NaN/Inf. */
dk_status dk__trainer_step(dk_trainer *t, int epoch, int64_t step, step_terms *st);
/* The batch of (epoch, step) into x, lab, mask (labels masked); returns its ns. */
int64_t dk__trainer_fill(dk_trainer *t, int epoch, int64_t step);
/* The forwards, losses and backward of (epoch, step) on the batch in x, lab, mask with ns
 * source rows: ADDS the step's gradient into the student's and the adapter's g (zero after
 * each update) and fills the terms; no clipping, no update. Tests call it on a batch of
 * their own. */
dk_status dk__trainer_grad(dk_trainer *t, int epoch, int64_t step, int64_t ns, step_terms *st);
/* Number of source samples in a distillation batch of epoch e. */
int64_t dk__trainer_nsrc(const dk_trainer *t, int epoch);

/* trainer_da.c: FDA and pseudo-labels. init makes the FDA plans and pseudo-label buffers a
 * distill run's config asks for; free accepts a zeroed trainer. dk__trainer_fda gives the
 * source rows [0, ns) of x their target styles (after the batch is filled); dk__trainer_pl
 * returns L_pl and adds scale * its gradient into the student's logits (after the
 * forwards). */
dk_status dk__trainer_da_init(dk_trainer *t);
void dk__trainer_da_free(dk_trainer *t);
void dk__trainer_fda(dk_trainer *t, int epoch, int64_t step, int64_t ns);
double dk__trainer_pl(dk_trainer *t, step_terms *st, int64_t ns, float scale);
/* pl_source = volume (and lambda_pl > 0, distill): the target cases' labels become the
 * teacher's pseudo-label volumes (dakd/train.h, L_pl); after the teachers are loaded, before
 * the target sampler indexes their foreground and before the networks are planned for the
 * batch (inference replans the teacher). */
dk_status dk__trainer_pl_volumes(dk_trainer *t);

/* trainer_dist.c: data parallelism over ranks (dakd/dist.h). init after the step buffers
 * (one rank: nothing allocated); split before the forwards of a step: this rank's rows of x
 * into xl, nl and nls. dk__trainer_tap is how the losses read a tap of `net`: the network's
 * own with one rank, else every rank's rows gathered in batch order (once a step; the
 * student's with a zeroed grad of that shape). dist_grads adds this rank's rows of those
 * grads into the student's taps before its backward; dist_reduce sums the student's parameter
 * gradients over ranks (before clipping); dist_buffers averages its running statistics. */
dk_status dk__trainer_dist_init(dk_trainer *t);
void dk__trainer_dist_free(dk_trainer *t);
void dk__trainer_dist_split(dk_trainer *t, int64_t ns);
dk_tap *dk__trainer_tap(dk_trainer *t, dk_unet *net, const char *name);
dk_status dk__trainer_dist_grads(dk_trainer *t);
dk_status dk__trainer_dist_reduce(dk_trainer *t);
dk_status dk__trainer_dist_buffers(dk_trainer *t);
/* The losses computed on this rank's own rows (those that need no other row: attention
 * transfer, the KD rows): v (n) summed over ranks in rank order (one rank: nothing to do);
 * row: the batch row of this rank's row j (one rank: j). */
void dk__trainer_dist_total(dk_trainer *t, double *v, int64_t n);
int64_t dk__trainer_row(const dk_trainer *t, int64_t j);

/* trainer_io.c */
/* DK_ERR_ARG when a file the run writes (config.ini, steps.jsonl, the checkpoint, the model
 * files) is one it reads (the case list, a teacher's model file), naming both. */
dk_status dk__trainer_check_outputs(const dk_trainer *t);
dk_status dk__trainer_save_state(dk_trainer *t);
dk_status dk__trainer_load_state(dk_trainer *t);
dk_status dk__trainer_open_log(dk_trainer *t, int64_t keep_bytes);
/* One line of steps.jsonl; val_dice is the epoch's validation Dice on its last step (NaN:
 * none, and the line has no "val_dice"). */
void dk__trainer_log_step(dk_trainer *t, int epoch, int64_t step, const step_terms *st,
                          double seconds, double val_dice);
dk_status dk__trainer_save_model(dk_trainer *t, const char *name, const char *adabn_json);
/* Mean over cases of the mean foreground Dice (classes 1..classes-1, both empty = 1) of
 * t->net, scored as `dakd predict` + `dakd eval --mask` score a case: lib/eval's sliding
 * window (dk_infer_defaults with [data] patch: overlap 0.5, Gaussian blending, no flips),
 * the argmax of the blended probabilities, dk_eval_case's Dice over the voxels inside the
 * case's mask (when it has one) whose label is not DK_IGNORE_LABEL. On the PREPARED grid:
 * equal to the report's Dice when the model keeps the input grid (no target spacing, size
 * or mask extent) and no ignore voxel lies inside the mask (eval counts them as background);
 * a resampling model is scored on its own grid here, on the input grid by `dakd eval`.
 * The network is left planned for the windows (callers re-plan for training). */
dk_status dk__trainer_val_dice(double *dice, const dk_trainer *t, const dk_case_data *cases,
                               int n);

#endif
