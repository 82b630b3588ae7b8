/*
 * The trainer: loads the cases a config names, builds the networks, runs the epochs
 * (steps in trainer_step.c, checkpoints and logs in trainer_io.c) and validates on held-out
 * source cases. See dakd/train.h for the modes, files and the model-selection rule.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dakd/dist.h"
#include "trainer_internal.h"

/* The config holds the schema's preprocessing options (dakd/data.h); classes is the
 * trainer's key, shared with the networks and the sampler. */
static void prep_from_config(dk_prep_opts *po, const dk_train_config *c) {
    *po = c->prep;
    po->classes = c->classes;
}

static void free_cases(dk_case_data *cs, int n) {
    for (int i = 0; cs && i < n; i++) dk_case_data_free(&cs[i]);
    free(cs);
}

/* DK_ERR_ARG when the CSV lacks the column a [data] key names. */
static dk_status need_column(const dk_case_list *l, const char *key, const char *name) {
    if (dk_cases_column(l, name) >= 0) return DK_OK;
    return dk_fail(DK_ERR_ARG, "%s:1: no column '%s', named by [data] %s (the header has %d "
                   "columns, first '%s')", l->path, name, key, l->n_columns,
                   l->n_columns ? l->columns[0] : "");
}

/* Case i of `sel` loaded and preprocessed; without its label file when no_label (the file
 * is then never opened). Failures name the CSV line and the case. */
static dk_status load_case(dk_case_data *out, const dk_case_list *sel, int i,
                           const dk_trainer *t, int no_label) {
    dk_case one = sel->cases[i];
    dk_case_list view = *sel;
    if (no_label) one.label = NULL;
    view.cases = &one;
    view.n = 1;
    dk_status st = dk_case_load(out, &view, 0, &t->prep);
    if (st != DK_OK)
        st = dk_error_context(st, "%s:%d: case '%s'", t->cfg.cases, one.line, one.id);
    return st;
}

/* Cases of `all` with domain == dom (when the config has a domain column) and split ==
 * split (when both are non-empty), loaded and preprocessed. need_label: a case without a
 * label is an error; drop_label: the label file is not read (target cases are used
 * unlabelled). */
static dk_status load_set(dk_case_data **out, int *n, dk_trainer *t, const char *dom,
                          const char *split, int need_label, int drop_label) {
    const dk_train_config *c = &t->cfg;
    dk_case_list a = {0}, b = {0};
    const dk_case_list *sel = &t->list;
    dk_status st = DK_OK;
    *out = NULL;
    *n = 0;
    if (c->domain_column[0]) st = need_column(sel, "domain_column", c->domain_column);
    if (st == DK_OK && c->split_column[0] && split[0])
        st = need_column(sel, "split_column", c->split_column);
    if (st != DK_OK) goto out;
    if (c->domain_column[0]) {
        if ((st = dk_cases_filter(&a, sel, c->domain_column, dom)) != DK_OK) goto out;
        sel = &a;
    }
    if (c->split_column[0] && split[0]) {
        if ((st = dk_cases_filter(&b, sel, c->split_column, split)) != DK_OK) goto out;
        sel = &b;
    }
    *out = calloc((size_t)(sel->n ? sel->n : 1), sizeof **out);
    if (!*out) {
        st = dk_fail(DK_ERR_NOMEM, "%s: no memory for %d cases", c->cases, sel->n);
        goto out;
    }
    for (int i = 0; i < sel->n; i++) {
        const dk_case *k = &sel->cases[i];
        if (need_label && !k->label) {
            st = dk_fail(DK_ERR_FORMAT, "%s:%d: case '%s' (domain %s) has no label, needed "
                         "for supervised training or validation", c->cases, k->line, k->id, dom);
            goto out;
        }
        if ((st = load_case(&(*out)[i], sel, i, t, drop_label)) != DK_OK) goto out;
        *n = i + 1;
        if (!c->use_mask) dk_volume_free(&(*out)[i].mask);
    }
out:
    dk_cases_free(&a);
    dk_cases_free(&b);
    if (st != DK_OK) {
        free_cases(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return st;
}

static dk_status load_data(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    dk_trainer_mode m = t->opts.mode;
    dk_status st = dk_cases_read(&t->list, c->cases);
    if (st != DK_OK) return st;
    if (m == DK_TRAINER_ORACLE) {
        dk_log(DK_LOG_WARN, "oracle run: trains on TARGET labels (%s = %s, split %s); an "
               "upper bound, not a result of the method", c->domain_column, c->target,
               c->target_split);
        st = load_set(&t->src, &t->nsrc, t, c->target, c->target_split, 1, 0);
    } else {
        st = load_set(&t->src, &t->nsrc, t, c->source, c->train_split, 1, 0);
    }
    if (st != DK_OK) return st;
    if (m == DK_TRAINER_DISTILL) {
        st = load_set(&t->tgt, &t->ntgt, t, c->target, c->target_split, 0, 1);
        if (st != DK_OK) return st;
    }
    const char *vdom = c->val_domain == DK_VAL_TARGET ? c->target : c->source;
    if (c->validate_every > 0 && (st = load_set(&t->val, &t->nval, t, vdom, c->val_split, 1,
                                                0)) != DK_OK)
        return st;
    if (t->nsrc == 0)
        return dk_fail(DK_ERR_ARG, "%s: no labelled training cases (%s = %s, %s = %s)", c->cases,
                       c->domain_column, m == DK_TRAINER_ORACLE ? c->target : c->source,
                       c->split_column, m == DK_TRAINER_ORACLE ? c->target_split : c->train_split);
    if (m == DK_TRAINER_DISTILL && t->ntgt == 0)
        return dk_fail(DK_ERR_ARG, "%s: no target cases (%s = %s, %s = %s)", c->cases,
                       c->domain_column, c->target, c->split_column, c->target_split);
    if (c->validate_every > 0 && t->nval == 0)
        return dk_fail(DK_ERR_ARG, "%s: no validation cases (%s = %s, %s = %s) for model "
                       "selection; [train] validate_every = 0 trains without validation",
                       c->cases, c->domain_column, vdom, c->split_column, c->val_split);
    return DK_OK;
}

static dk_status make_sampler(dk_sampler *s, dk_batch *b, const dk_trainer *t,
                              const dk_case_data *cs, int n) {
    dk_sampler_opts so;
    dk_sampler_defaults(&so);
    for (int a = 0; a < 3; a++) so.patch[a] = t->cfg.patch[a];
    so.fg_fraction = t->cfg.fg_fraction;
    so.classes = t->cfg.classes;
    so.centre_in_mask = t->cfg.centre_in_mask;
    dk_status st = dk_sampler_init(s, cs, n, &so);
    if (st != DK_OK) return st;
    if (s->channels != t->cfg.in_channels)
        return dk_fail(DK_ERR_ARG, "%s: case '%s' has %lld channels, [model] in_channels = %d",
                       t->cfg.cases, cs[0].id, (long long)s->channels, t->cfg.in_channels);
    return dk_batch_alloc(b, t->batch, s->channels, so.patch[0], so.patch[1], so.patch[2]);
}

static void augment_from_config(dk_augment_opts *a, const dk_train_config *c) {
    *a = c->aug;
    if (c->patch[0] == 1) a->p_flip[0] = 0;
}

/* A frozen network loaded from `path`, checked against `cfg`. */
static dk_status load_frozen(dk_unet **out, const dk_unet_config *cfg, const char *path,
                             const char *what) {
    dk_rng r;
    dk_rng_seed(&r, 0);
    dk_status st = dk_unet_create(out, cfg, 0, &r);
    if (st != DK_OK) return st;
    if ((st = dk_unet_load(*out, path, NULL)) != DK_OK) {
        dk_unet_free(*out);
        *out = NULL;
        return dk_error_context(st, "%s%s", what, st == DK_ERR_FORMAT ? " (a checkpoint of the "
                                "[model] teacher_* network)" : "");
    }
    return DK_OK;
}

/* An extra teacher: any network of the run's dims, channels and classes (its width, depth,
 * norm and up-sampling are its file's), whose levels divide the patch. */
static dk_status load_extra(dk_unet **out, const dk_train_config *c, const char *path) {
    dk_status st = dk_unet_open(out, path, NULL);
    if (st != DK_OK) return dk_error_context(st, "[distill] extra_teachers");
    const dk_unet_config *g = dk_unet_get_config(*out);
    const char *bad = g->dims != c->dims               ? "dims"
                      : g->in_channels != c->in_channels ? "in_channels"
                      : g->classes != c->classes         ? "classes"
                                                         : NULL;
    int64_t div[3];
    dk_unet_multiple(g, div);
    if (!bad && (c->patch[1] % div[1] || c->patch[2] % div[2] || c->patch[0] % div[0]))
        bad = "levels or pool strides (the patch is not divisible by the product of the pool "
              "strides along each axis)";
    if (!bad) return DK_OK;
    dk_unet_free(*out);
    *out = NULL;
    return dk_fail(DK_ERR_ARG, "[distill] extra_teachers: %s: the network does not fit this "
                   "run: %s (the run has dims %d, in_channels %d, classes %d, patch "
                   "%lldx%lldx%lld)", path, bad,
                   c->dims, c->in_channels, c->classes, (long long)c->patch[0],
                   (long long)c->patch[1], (long long)c->patch[2]);
}

static dk_status build_teachers(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    if (!c->teacher_checkpoint[0])
        return dk_fail(DK_ERR_ARG, "[model] teacher_checkpoint is empty: distill needs a "
                       "trained teacher (the model file of a teacher run)");
    dk_status st = load_frozen(&t->teachers[0], &c->teacher, c->teacher_checkpoint,
                               "[model] teacher_checkpoint");
    if (st != DK_OK) return st;
    for (t->nteachers = 1; t->nteachers < c->nteachers; t->nteachers++) {
        const char *path = c->extra_paths[t->nteachers - 1];
        if ((st = load_extra(&t->teachers[t->nteachers], c, path)) != DK_OK) return st;
    }
    return DK_OK;
}

static dk_status plan_all(dk_trainer *t) {
    const int64_t *p = t->cfg.patch;
    dk_status st = dk_unet_plan(t->net, t->batch, p[0], p[1], p[2]);
    for (int i = 0; st == DK_OK && i < t->nteachers; i++)
        st = dk_unet_plan(t->teachers[i], t->batch, p[0], p[1], p[2]);
    if (st == DK_OK && t->ema) st = dk_unet_plan(t->ema, t->batch, p[0], p[1], p[2]);
    /* attention transfer pools the teacher's enc<l> onto the student's: with other pool
     * strides the teacher's grid must still be a multiple of the student's on each axis */
    for (int l = 0; st == DK_OK && t->cfg.lambda_at > 0 && t->nteachers > 0; l++) {
        char name[16];
        snprintf(name, sizeof name, "enc%d", l);
        dk_tap *a = dk_unet_tap(t->net, name), *b = dk_unet_tap(t->teachers[0], name);
        if (!a || !b) break;
        const dk_tensor *s = &a->value, *q = &b->value;
        if (q->d % s->d || q->h % s->h || q->w % s->w)
            st = dk_fail(DK_ERR_ARG, "[distill] lambda_at: %s is %lldx%lldx%lld in the student, "
                         "%lldx%lldx%lld in the teacher (not a multiple: [model] student_pool "
                         "and teacher_pool differ)", name, (long long)s->d, (long long)s->h,
                         (long long)s->w, (long long)q->d, (long long)q->h, (long long)q->w);
    }
    return st;
}

static dk_status alloc_step_buffers(dk_trainer *t) {
    int64_t nx = t->batch * t->cfg.in_channels * t->nvox;
    t->x = dk_alloc_aligned((size_t)nx, sizeof(float));
    t->lab = malloc((size_t)(t->batch * t->nvox));
    t->mask = malloc((size_t)(t->batch * t->nvox));
    t->sample_loss = calloc((size_t)t->batch, sizeof(double));
    t->sample_w = calloc((size_t)t->batch, sizeof(float));
    t->grad_rows = dk_alloc_aligned((size_t)(t->batch * t->cfg.classes * t->nvox), sizeof(float));
    dk_tap *tap = dk_unet_tap(t->net, t->cfg.align_tap[0] ? t->cfg.align_tap : "logits");
    if (!tap)
        return dk_fail(DK_ERR_ARG, "[distill] align_tap = '%s' is not a tap of the student "
                       "(enc<l>, bottleneck, dec<l>, logits)", t->cfg.align_tap);
    int64_t ch = tap->value.c;
    t->align_x = calloc((size_t)(4 * ALIGN_ROWS * ch), sizeof(float));
    size_t nw = dk_loss_mmd_work_doubles(ALIGN_ROWS, ALIGN_ROWS);
    size_t nc = dk_loss_coral_work_doubles(ch);
    t->align_work = calloc(nw > nc ? nw : nc, sizeof(double));
    t->align_idx = calloc(2 * ALIGN_ROWS, sizeof(int64_t));
    t->tap_mask = malloc((size_t)(t->batch * t->nvox));
    t->at_work_n = 1;
    for (int i = 0; i < dk_unet_tap_count(t->net); i++) {
        size_t k = dk_loss_at_work_floats(&dk_unet_tap_at(t->net, i)->value);
        if (k > t->at_work_n) t->at_work_n = k;
    }
    t->at_work = calloc(t->at_work_n, sizeof(float));
    if (t->opts.mode == DK_TRAINER_DISTILL && (t->cfg.self_distill & DK_SELF_LAYERS))
        if (!(t->self_target = malloc((size_t)(t->batch * t->cfg.classes * t->nvox / 4) *
                                      sizeof(float))))
            return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the self-distillation targets");
    if (!t->x || !t->lab || !t->mask || !t->sample_loss || !t->sample_w || !t->grad_rows || !t->align_x ||
        !t->align_work || !t->align_idx || !t->at_work || !t->tap_mask)
        return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the step buffers");
    return DK_OK;
}

static dk_status check_options(const dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    dk_trainer_mode m = t->opts.mode;
    if (c->val_domain == DK_VAL_TARGET && m != DK_TRAINER_ORACLE)
        return dk_fail(DK_ERR_ARG, "[data] val_domain = target: model selection must not look "
                       "at target labels; only an oracle run may validate on target");
    if (m != DK_TRAINER_DISTILL && m != DK_TRAINER_TEACHER && c->student.deep_supervision)
        return dk_fail(DK_ERR_ARG, "[model] student_deep_supervision = true: only distill trains "
                       "the heads (self_distill = layers); a %s run would leave them random",
                       m == DK_TRAINER_STUDENT ? "student" : "oracle");
    if (m == DK_TRAINER_DISTILL && c->align != DK_ALIGN_NONE && c->lambda_align > 0 &&
        c->batch_size < 4)
        return dk_fail(DK_ERR_ARG, "[data] batch_size = %d: alignment needs at least 2 source "
                       "and 2 target patches per step (batch_size >= 4)", c->batch_size);
    return DK_OK;
}

/* The FitNets adapter: a 1x1 conv (with bias) from the student's channels at hint_tap to the
 * first teacher's, Kaiming-initialised from the seed, with its own optimiser state. Nothing
 * when hints are off. After plan_all (the taps have their shapes). */
static dk_status build_hint(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    dk_params_init(&t->hint);
    if (t->opts.mode != DK_TRAINER_DISTILL || c->lambda_hint <= 0) return DK_OK;
    dk_tap *fs = dk_unet_tap(t->net, c->hint_tap), *ft = dk_unet_tap(t->teachers[0], c->hint_tap);
    if (!fs || !ft || !strcmp(c->hint_tap, "logits"))
        return dk_fail(DK_ERR_ARG, "[distill] hint_tap = '%s' is not a feature tap of both the "
                       "student and the teacher (enc<l>, bottleneck, dec<l>)", c->hint_tap);
    const dk_tensor *a = &fs->value, *b = &ft->value;
    if (a->d != b->d || a->h != b->h || a->w != b->w)
        return dk_fail(DK_ERR_ARG, "[distill] hint_tap = '%s': the student's grid %lldx%lldx%lld "
                       "differs from the teacher's %lldx%lldx%lld (pick a tap at the same level)",
                       c->hint_tap, (long long)a->d, (long long)a->h, (long long)a->w,
                       (long long)b->d, (long long)b->h, (long long)b->w);
    int64_t ws[5] = {b->c, a->c, 1, 1, 1}, bs[1] = {b->c};
    if (dk_params_add(&t->hint, "hint.weight", 5, ws) < 0 ||
        dk_params_add(&t->hint, "hint.bias", 1, bs) < 0)
        return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the hint adapter");
    dk_status st = dk_params_alloc(&t->hint, 1);
    if (st != DK_OK) return st;
    dk_rng r;
    dk_rng_seed(&r, (uint64_t)c->seed);
    dk_rng init = dk_rng_split(&r, 101);
    dk_params_init_normal(&t->hint, "hint.weight", sqrt(2.0 / (double)a->c), &init);
    t->hint_optim = c->optim;
    t->hint_optim.step = 0;
    if ((st = dk_optim_init(&t->hint_optim, &t->hint)) != DK_OK) return st;
    t->hint_work = calloc(dk_loss_hint_work_floats(a, b->c), sizeof(float));
    if (!t->hint_work) return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the hint scratch");
    return DK_OK;
}

/* target_bn: a copy of the first teacher with target batch-norm statistics. */
static dk_status build_teacher_tgt(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    if (t->opts.mode != DK_TRAINER_DISTILL || !c->target_bn) return DK_OK;
    dk_status st = load_frozen(&t->teacher_tgt, &c->teacher, c->teacher_checkpoint,
                               "[model] teacher_checkpoint");
    return st != DK_OK ? st : dk__trainer_adapt_bn(t, t->teacher_tgt);
}

static dk_status build_nets(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    dk_trainer_mode m = t->opts.mode;
    dk_rng r;
    dk_rng_seed(&r, (uint64_t)c->seed);
    dk_rng init = dk_rng_split(&r, 100);
    const dk_unet_config *nc = m == DK_TRAINER_TEACHER ? &c->teacher : &c->student;
    dk_status st = dk_unet_create(&t->net, nc, 1, &init);
    if (st != DK_OK) return st;
    t->optim = c->optim;
    t->optim.step = 0;
    if ((st = dk_optim_init(&t->optim, dk_unet_params(t->net))) != DK_OK) return st;
    if (m != DK_TRAINER_DISTILL) return DK_OK;
    if ((st = build_teachers(t)) != DK_OK) return st;
    if (c->self_distill & DK_SELF_EMA) {
        if ((st = dk_unet_create(&t->ema, &c->student, 0, &init)) != DK_OK) return st;
        dk_params *ep = dk_unet_params(t->ema), *sp = dk_unet_params(t->net);
        dk_params *eb = dk_unet_buffers(t->ema), *sb = dk_unet_buffers(t->net);
        memcpy(ep->w, sp->w, (size_t)sp->total * sizeof(float));
        if (sb->total) memcpy(eb->w, sb->w, (size_t)sb->total * sizeof(float));
    }
    return DK_OK;
}

static dk_status trainer_init(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    dk_status st = check_options(t);
    if (st != DK_OK) return st;
    if (c->threads > 0) dk_set_threads(c->threads);
    prep_from_config(&t->prep, c);
    augment_from_config(&t->aug, c);
    t->batch = c->batch_size;
    t->nvox = c->patch[0] * c->patch[1] * c->patch[2];
    dk_rng r;
    dk_rng_seed(&r, (uint64_t)c->seed);
    t->base_src = dk_rng_split(&r, 1);
    t->base_tgt = dk_rng_split(&r, 2);
    t->base_step = dk_rng_split(&r, 3);
    dk_dynweights_init(&t->dyn, c->dyn_beta, 0.3, 0.9);
    t->stats.best_val_dice = -1;
    t->stats.best_epoch = -1;
    if ((st = load_data(t)) != DK_OK) return st;
    if ((st = make_sampler(&t->ssrc, &t->bsrc, t, t->src, t->nsrc)) != DK_OK) return st;
    if ((st = build_nets(t)) != DK_OK) return st;
    if ((st = dk__trainer_pl_volumes(t)) != DK_OK) return st;
    if (t->ntgt && (st = make_sampler(&t->stgt, &t->btgt, t, t->tgt, t->ntgt)) != DK_OK)
        return st;
    if ((st = plan_all(t)) != DK_OK) return st;
    if ((st = alloc_step_buffers(t)) != DK_OK) return st;
    if ((st = dk__trainer_dist_init(t)) != DK_OK) return st;
    if ((st = build_hint(t)) != DK_OK) return st;
    if ((st = build_teacher_tgt(t)) != DK_OK) return st;
    if ((st = dk__trainer_da_init(t)) != DK_OK) return st;
    if ((st = dk__trainer_check_outputs(t)) != DK_OK) return st;
    /* rank 0 alone writes into run_dir; the others only read a checkpoint to resume */
    if (t->rank == 0 && (st = dk_mkdirs(c->run_dir)) != DK_OK) return st;
    if (t->rank == 0 && (st = dk_dir_lock_take(&t->lock, c->run_dir)) != DK_OK) return st;
    snprintf(t->path_ckpt, sizeof t->path_ckpt, "%s/checkpoint.safetensors", c->run_dir);
    snprintf(t->path_log, sizeof t->path_log, "%s/steps.jsonl", c->run_dir);
    /* config.ini after the checkpoint is accepted, so a refused --resume leaves the run's */
    st = t->opts.resume ? dk__trainer_load_state(t) : dk__trainer_open_log(t, 0);
    if (st != DK_OK || t->rank != 0) return st;
    char cfgpath[DK_TRAIN_PATH_MAX + 32];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.ini", c->run_dir);
    return dk_train_config_write(c, cfgpath);
}

dk_status dk_trainer_create(dk_trainer **out, const dk_train_config *c,
                            const dk_trainer_opts *o) {
    *out = NULL;
    dk_trainer *t = calloc(1, sizeof *t);
    if (!t) return dk_fail(DK_ERR_NOMEM, "trainer: no memory");
    t->lock.fd = -1;
    t->cfg = *c;
    t->opts = *o;
    dk_status st = trainer_init(t);
    if (st != DK_OK) {
        dk_trainer_free(t);
        return st;
    }
    *out = t;
    return DK_OK;
}

void dk_trainer_free(dk_trainer *t) {
    if (!t) return;
    if (t->log) fclose(t->log);
    dk_dir_lock_release(&t->lock);
    dk_unet_free(t->net);
    dk_unet_free(t->ema);
    dk_unet_free(t->teacher_tgt);
    for (int i = 0; i < t->nteachers; i++) dk_unet_free(t->teachers[i]);
    dk_sampler_free(&t->ssrc);
    dk_sampler_free(&t->stgt);
    dk_batch_free(&t->bsrc);
    dk_batch_free(&t->btgt);
    free_cases(t->src, t->nsrc);
    free_cases(t->tgt, t->ntgt);
    free_cases(t->val, t->nval);
    dk_cases_free(&t->list);
    dk__trainer_dist_free(t);
    dk_free(t->x);
    free(t->lab);
    free(t->mask);
    free(t->sample_loss);
    free(t->sample_w);
    dk_free(t->grad_rows);
    free(t->at_work);
    free(t->align_x);
    free(t->align_work);
    free(t->align_idx);
    free(t->tap_mask);
    free(t->self_target);
    dk_params_free(&t->hint);
    free(t->hint_work);
    dk__trainer_da_free(t);
    free(t);
}

dk_unet *dk_trainer_model(dk_trainer *t) { return t->net; }
const dk_trainer_stats *dk_trainer_get_stats(const dk_trainer *t) { return &t->stats; }

/* Validation at the end of epoch e; saves best.safetensors on improvement. */
static dk_status validate(dk_trainer *t, int e, double *dice) {
    *dice = NAN;
    if (t->cfg.validate_every <= 0 || (e + 1) % t->cfg.validate_every != 0 || t->nval == 0)
        return DK_OK;
    /* rank 0 scores (every rank holds the same weights) and tells the others */
    dk_status st = DK_OK;
    if (t->rank == 0) st = dk__trainer_val_dice(dice, t, t->val, t->nval);
    if (t->rank == 0 && st == DK_OK) st = plan_all(t);
    if (st == DK_OK) st = dk_dist_bcast(dice, sizeof *dice, 0);
    if (st != DK_OK) return st;
    t->stats.last_val_dice = *dice;
    if (*dice > t->stats.best_val_dice) {
        t->stats.best_val_dice = *dice;
        t->stats.best_epoch = e;
        st = dk__trainer_save_model(t, "best.safetensors", NULL);
    }
    return st;
}

static void log_epoch(const dk_trainer *t, int e, const step_terms *sum, int64_t n, double sec,
                      double val) {
    double k = n > 0 ? 1.0 / (double)n : 0;
    dk_log(DK_LOG_INFO,
           "%sepoch %d/%d  loss %.4f  kd %.4f  sup %.4f (ce %.4f dice %.4f)  at %.4f  hint %.4f  "
           "align %.4f  ent %.4f  T %.3g  mix %.3g  alpha %.3g  lr %.3g  gnorm %.3g  "
           "val_dice %.4f  %.1fs",
           t->opts.mode == DK_TRAINER_ORACLE ? "oracle (TARGET labels) " : "", e + 1,
           t->cfg.epochs, sum->total * k, sum->kd * k, sum->sup * k, sum->ce * k, sum->dice * k,
           sum->at * k, sum->hint * k, sum->align * k, sum->ent * k, sum->T, sum->mix, sum->alpha,
           sum->lr, sum->grad_norm * k, val, sec);
}

static void add_terms(step_terms *sum, const step_terms *s) {
    sum->total += s->total, sum->kd += s->kd, sum->sup += s->sup, sum->ce += s->ce;
    sum->dice += s->dice, sum->at += s->at, sum->hint += s->hint, sum->align += s->align;
    sum->ent += s->ent;
    sum->grad_norm += s->grad_norm;
    sum->T = s->T, sum->mix = s->mix, sum->alpha = s->alpha, sum->lr = s->lr;
}

/* The count of non-finite values among the network's weights and buffers and the adapter's
 * weights: an update that overflowed (the loss and gradient were finite). */
static int64_t nonfinite_weights(dk_trainer *t) {
    const dk_params *p[3] = {dk_unet_params(t->net), dk_unet_buffers(t->net), &t->hint};
    int64_t bad = 0;
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < p[k]->total; i++) bad += !isfinite(p[k]->w[i]);
    return bad;
}

/* An interrupt request before step s of epoch e: the state after the steps run so far
 * becomes the checkpoint (nothing to write when this process ran none: the one on disk, if
 * any, is that state already). */
static dk_status interrupt(dk_trainer *t, int e, int64_t s, int sig, int *stopped) {
    *stopped = 1;
    t->stats.interrupted = sig;
    if (t->stats.steps == 0) return DK_OK;
    t->epoch = e;
    t->epoch_step = s;
    dk_status st = dk__trainer_save_state(t);
    if (st == DK_OK)
        dk_log(DK_LOG_INFO, "interrupted (signal %d): checkpoint at epoch %d step %lld in %s",
               t->stats.interrupted, e + 1, (long long)s, t->path_ckpt);
    return st;
}

static dk_status run_epoch(dk_trainer *t, int e, dk_progress *pg, int *stopped) {
    step_terms sum, last;
    memset(&sum, 0, sizeof sum);
    memset(&last, 0, sizeof last);
    double t0 = dk_time_now(), last_sec = 0;
    int64_t spe = t->cfg.steps_per_epoch, first = t->epoch_step;
    dk_progress_item(pg, "epoch %d/%d", e + 1, t->cfg.epochs);
    for (int64_t s = first; s < spe; s++) {
        if (t->opts.stop_after_steps > 0 && t->stats.steps >= t->opts.stop_after_steps) {
            *stopped = 1;
            return DK_OK;
        }
        /* every rank stops at the same step: a signal may reach them at different times */
        int sig = dk_dist_max(dk_interrupt_pending());
        if (sig) return interrupt(t, e, s, sig, stopped);
        step_terms st1;
        double ts = dk_time_now();
        dk_status st = dk__trainer_step(t, e, s, &st1);
        if (st != DK_OK) return st;
        int64_t bad = nonfinite_weights(t);
        if (bad)
            return dk_fail(DK_ERR_NUMERIC, "%s: epoch %d step %lld (steps.jsonl \"epoch\": %d, "
                           "\"step\": %lld): the update (lr %g) made %lld weights non-finite; "
                           "stopped before any checkpoint or model file", t->cfg.run_dir, e + 1,
                           (long long)s, e, (long long)s, st1.lr, (long long)bad);
        double sec = dk_time_now() - ts;
        t->stats.sec_step += sec;
        t->stats.steps++;
        if (s + 1 < spe) dk__trainer_log_step(t, e, s, &st1, sec, NAN);
        else last = st1, last_sec = sec;
        add_terms(&sum, &st1);
        dk_progress_step(pg, 1);
    }
    double val;
    dk_status st = validate(t, e, &val);
    if (st != DK_OK) return st;
    /* the epoch's last step line waits for validation, so that it carries the Dice */
    dk__trainer_log_step(t, e, spe - 1, &last, last_sec, val);
    log_epoch(t, e, &sum, spe - first, dk_time_now() - t0, val);
    t->epoch = e + 1;
    t->epoch_step = 0;
    t->stats.epochs_done = e + 1;
    int ce = t->cfg.checkpoint_every;
    if ((ce > 0 && (e + 1) % ce == 0) || e + 1 == t->cfg.epochs)
        st = dk__trainer_save_state(t);
    return st;
}

dk_status dk_trainer_run(dk_trainer *t) {
    dk_progress pg;
    int64_t steps_left = (int64_t)(t->cfg.epochs - t->epoch) * t->cfg.steps_per_epoch -
                         t->epoch_step;
    dk_progress_begin(&pg, "train", steps_left);
    dk_status st = DK_OK;
    int stopped = 0;
    for (int e = t->epoch; e < t->cfg.epochs && !stopped && st == DK_OK; e++)
        st = run_epoch(t, e, &pg, &stopped);
    dk_progress_end(&pg);
    if (st != DK_OK || stopped) return st;
    if (t->nval)
        dk_log(DK_LOG_INFO, "best epoch %d: %s validation Dice %.4f (selection uses %s "
               "labels only)", t->stats.best_epoch + 1,
               t->cfg.val_domain == DK_VAL_TARGET ? "target" : "source", t->stats.best_val_dice,
               t->cfg.val_domain == DK_VAL_TARGET ? "TARGET (oracle)" : "source");
    if (t->opts.mode == DK_TRAINER_ORACLE)
        dk_log(DK_LOG_WARN, "oracle run: trained on TARGET labels; an upper bound, not a result "
               "of the method");
    if (t->opts.mode == DK_TRAINER_DISTILL && t->cfg.target_bn) {
        if ((st = dk__trainer_adapt_bn(t, t->net)) != DK_OK) return st;
        dk_log(DK_LOG_INFO, "target_bn: the student's batch-norm statistics re-estimated on "
               "%d target patches", DK_ADABN_BATCHES * (int)t->batch);
    }
    if (t->opts.mode == DK_TRAINER_DISTILL && t->cfg.target_bn)
        return dk__trainer_adapt_files(t);
    return dk__trainer_save_model(t, "model.safetensors", NULL);
}

dk_status dk_trainer_eval(double *dice, dk_trainer *t, const char *domain, const char *split) {
    dk_case_data *cs = NULL;
    int n = 0;
    dk_status st = load_set(&cs, &n, t, domain, split, 1, 0);
    if (st == DK_OK && n == 0)
        st = dk_fail(DK_ERR_ARG, "%s: no cases with %s = %s and %s = %s", t->cfg.cases,
                     t->cfg.domain_column, domain, t->cfg.split_column, split);
    if (st == DK_OK) st = dk__trainer_val_dice(dice, t, cs, n);
    free_cases(cs, n);
    if (st == DK_OK) st = plan_all(t);
    return st;
}
