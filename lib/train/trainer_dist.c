/*
 * Data-parallel training over ranks (dakd/dist.h; under `mpirun -np N`). See dakd/train.h
 * ("Data parallelism") for what a rank computes and why the result does not depend on N
 * beyond float summation order.
 *
 * Every rank draws the same global batch of B rows (the same seed, epoch and step: the
 * samplers are unchanged) and runs the networks on its rows only: rank q takes the rows
 * i = q, q + N, q + 2N, ... (the source rows i < ns first, then the target rows, so every
 * rank sees the step's mixing ratio to within one row). The loss terms are coupled across
 * rows (batch Dice, dynamic weights, MMD/CORAL, class-balanced pseudo-labels, the means over
 * the counted voxels of the whole batch), so they are not split: each tap a loss reads is
 * gathered from every rank into a (B, ...) copy in batch order (dk__trainer_tap), every rank
 * computes every loss on those copies exactly as one process would, and each rank hands the
 * gradient rows of its own rows to its network's backward. The terms that are sums of
 * per-row terms are the exception: each rank computes attention transfer and the KD rows on
 * its own rows from the networks' own taps (the teachers' feature maps and logits, the bulk
 * of what would be gathered, never leave the rank), and only values are summed over ranks:
 * attention transfer's, and the B per-row KD losses that set the dynamic weights. The
 * parameter gradients are then summed over ranks in rank order (dk_dist_sum) before
 * clipping, and every rank applies the same update. Batch-norm layers of the trained
 * network use per-rank batch statistics (the rank's rows, as PyTorch's
 * DistributedDataParallel without SyncBatchNorm); their running
 * statistics are averaged over the ranks after each step, so every rank keeps the same
 * buffers. With one rank none of this runs: the taps are the networks' own.
 */
#include <stdlib.h>
#include <string.h>

#include "dakd/dist.h"
#include "trainer_internal.h"

enum { MAX_SHADOWS = 48 };
enum { ROWS_ALL, ROWS_SRC, ROWS_TGT }; /* the rows a network runs on (forward_all) */

typedef struct {
    const dk_unet *net;
    char name[32];
    int64_t gen; /* the step it was gathered for */
    dk_tap tap;  /* value (rows of its kind in batch order) and, for the student, grad */
    float *val, *grad;
} shadow;

struct dk_trainer_dist {
    shadow s[MAX_SHADOWS];
    int n;
    int64_t gen;
    int64_t *counts; /* (ranks) */
    float *stage;    /* the gathered rows in rank order */
    int64_t stage_n;
    float *work;     /* dk_dist_sum's scratch (the larger of params and buffers) */
    dk_status status;
};

/* Rows i < n with i % ranks == q. */
static int64_t rows_of(int64_t n, int q, int ranks) {
    return n > q ? (n - q + ranks - 1) / ranks : 0;
}

/* Rows of kind `k` that rank q runs in a batch of B with ns source rows. */
static int64_t kind_rows(const dk_trainer *t, int q, int k, int64_t ns) {
    int64_t all = rows_of(t->batch, q, t->ranks), src = rows_of(ns, q, t->ranks);
    return k == ROWS_ALL ? all : k == ROWS_SRC ? src : all - src;
}

/* The row of the gathered copy that local row j of rank q's kind-k rows is. */
static int64_t global_row(const dk_trainer *t, int q, int k, int64_t j, int64_t ns) {
    if (k != ROWS_TGT) return q + j * t->ranks;
    return q + (rows_of(ns, q, t->ranks) + j) * t->ranks - ns;
}

static int row_kind(const dk_trainer *t, const dk_unet *net) {
    if (net == t->teacher_tgt || net == t->ema) return ROWS_TGT;
    if (net == t->teachers[0] && t->teacher_tgt) return ROWS_SRC;
    return ROWS_ALL;
}

dk_status dk__trainer_dist_init(dk_trainer *t) {
    t->rank = dk_dist_rank();
    t->ranks = dk_dist_size();
    t->nl = t->batch;
    t->xl = t->x;
    t->ml = t->mask;
    if (t->ranks == 1) return DK_OK;
    if (t->batch < t->ranks)
        return dk_fail(DK_ERR_ARG, "[data] batch_size = %lld is smaller than the %d ranks: each "
                       "rank needs at least one row of the global batch", (long long)t->batch,
                       t->ranks);
    if (dk_unet_get_config(t->net)->dropout > 0)
        return dk_fail(DK_ERR_UNSUPPORTED, "[model] dropout > 0 is not supported with %d ranks "
                       "(the dropout masks are drawn over the whole batch tensor)", t->ranks);
    struct dk_trainer_dist *d = calloc(1, sizeof *d);
    if (!d) return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the rank state");
    t->dist = d;
    int64_t np = dk_unet_params(t->net)->total, nb = dk_unet_buffers(t->net)->total;
    t->nl = rows_of(t->batch, t->rank, t->ranks);
    t->xl = dk_alloc_aligned((size_t)(t->nl * t->cfg.in_channels * t->nvox), sizeof(float));
    t->ml = malloc((size_t)(t->nl * t->nvox));
    d->counts = calloc((size_t)t->ranks, sizeof(int64_t));
    d->work = malloc((size_t)(np > nb ? np : nb) * sizeof(float));
    if (!t->xl || !t->ml || !d->counts || !d->work)
        return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the rank's rows");
    return DK_OK;
}

void dk__trainer_dist_free(dk_trainer *t) {
    struct dk_trainer_dist *d = t->dist;
    if (t->xl != t->x) dk_free(t->xl);
    if (t->ml != t->mask) free(t->ml);
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->s[i].val), free(d->s[i].grad);
    free(d->counts);
    free(d->stage);
    free(d->work);
    free(d);
}

void dk__trainer_dist_split(dk_trainer *t, int64_t ns) {
    t->nls = ns;
    if (!t->dist) return;
    int64_t nx = t->cfg.in_channels * t->nvox;
    t->nls = rows_of(ns, t->rank, t->ranks);
    for (int64_t j = 0; j < t->nl; j++) {
        int64_t i = global_row(t, t->rank, ROWS_ALL, j, ns);
        memcpy(t->xl + j * nx, t->x + i * nx, (size_t)nx * sizeof(float));
        memcpy(t->ml + j * t->nvox, t->mask + i * t->nvox, (size_t)t->nvox);
    }
    t->dist->gen++;
    t->dist->status = DK_OK;
    t->dist_ns = ns;
}

static shadow *find_shadow(struct dk_trainer_dist *d, const dk_unet *net, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (d->s[i].net == net && !strcmp(d->s[i].name, name)) return &d->s[i];
    if (d->n == MAX_SHADOWS) return NULL;
    shadow *s = &d->s[d->n++];
    memset(s, 0, sizeof *s);
    s->net = net;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->gen = -1;
    return s;
}

/* Every rank's rows of `local` into s in batch order (the copy's row count is the kind's:
 * B, ns or nt); its grad zeroed. */
static dk_status gather(dk_trainer *t, shadow *s, const dk_tap *local, int k) {
    struct dk_trainer_dist *d = t->dist;
    const dk_tensor *v = &local->value;
    int64_t per = v->c * v->d * v->h * v->w, ns = t->dist_ns, total = 0;
    int64_t rows = k == ROWS_ALL ? t->batch : k == ROWS_SRC ? ns : t->batch - ns;
    for (int q = 0; q < t->ranks; q++) total += d->counts[q] = kind_rows(t, q, k, ns) * per;
    if (!s->val) {
        s->val = malloc((size_t)(t->batch * per) * sizeof(float));
        if (local->grad) s->grad = malloc((size_t)(t->batch * per) * sizeof(float));
    }
    if (total > d->stage_n) {
        free(d->stage);
        d->stage = malloc((size_t)total * sizeof(float));
        d->stage_n = d->stage ? total : 0;
    }
    if (!s->val || (local->grad && !s->grad) || !d->stage)
        return dk_fail(DK_ERR_NOMEM, "trainer: no memory for the gathered tap '%s'", s->name);
    dk_status st = dk_dist_gather(d->stage, v->data, d->counts);
    if (st != DK_OK) return st;
    const float *src = d->stage;
    for (int q = 0; q < t->ranks; q++)
        for (int64_t j = 0; j < kind_rows(t, q, k, ns); j++, src += per)
            memcpy(s->val + global_row(t, q, k, j, ns) * per, src, (size_t)per * sizeof(float));
    s->tap = *local;
    s->tap.value = dk_tensor_view(s->val, rows, v->c, v->d, v->h, v->w);
    s->tap.grad = s->grad;
    if (s->grad) memset(s->grad, 0, (size_t)(rows * per) * sizeof(float));
    return DK_OK;
}

dk_tap *dk__trainer_tap(dk_trainer *t, dk_unet *net, const char *name) {
    dk_tap *tap = dk_unet_tap(net, name);
    struct dk_trainer_dist *d = t->dist;
    if (!d || !tap) return tap;
    shadow *s = find_shadow(d, net, name);
    if (!s) {
        d->status = dk_fail(DK_ERR_INTERNAL, "trainer: more than %d gathered taps", MAX_SHADOWS);
        return tap;
    }
    if (s->gen != d->gen) {
        dk_status st = gather(t, s, tap, row_kind(t, net));
        if (st != DK_OK) {
            if (d->status == DK_OK) d->status = st;
            return tap;
        }
        s->gen = d->gen;
    }
    return &s->tap;
}

dk_status dk__trainer_dist_grads(dk_trainer *t) {
    struct dk_trainer_dist *d = t->dist;
    if (!d) return DK_OK;
    if (d->status != DK_OK) return d->status;
    for (int i = 0; i < d->n; i++) {
        shadow *s = &d->s[i];
        if (s->net != t->net || s->gen != d->gen || !s->grad) continue;
        dk_tap *tap = dk_unet_tap(t->net, s->name);
        const dk_tensor *v = &tap->value;
        int64_t per = v->c * v->d * v->h * v->w;
        for (int64_t j = 0; j < t->nl; j++) { /* added: a per-row loss wrote there itself */
            const float *g = s->grad + global_row(t, t->rank, ROWS_ALL, j, t->dist_ns) * per;
            float *dst = tap->grad + j * per;
            for (int64_t e = 0; e < per; e++) dst[e] += g[e];
        }
    }
    return DK_OK;
}

int64_t dk__trainer_row(const dk_trainer *t, int64_t j) {
    return t->dist ? global_row(t, t->rank, ROWS_ALL, j, t->dist_ns) : j;
}

void dk__trainer_dist_total(dk_trainer *t, double *v, int64_t n) {
    struct dk_trainer_dist *d = t->dist;
    if (!d) return;
    dk_status st = dk_dist_sum_f64(v, (int)n);
    if (st != DK_OK && d->status == DK_OK) d->status = st;
}

dk_status dk__trainer_dist_reduce(dk_trainer *t) {
    if (!t->dist) return DK_OK;
    dk_params *p = dk_unet_params(t->net);
    return dk_dist_sum(p->g, p->total, t->dist->work);
}

dk_status dk__trainer_dist_buffers(dk_trainer *t) {
    dk_params *b = dk_unet_buffers(t->net);
    if (!t->dist || !b->total) return DK_OK;
    dk_status st = dk_dist_sum(b->w, b->total, t->dist->work);
    for (int64_t i = 0; st == DK_OK && i < b->total; i++) b->w[i] /= (float)t->ranks;
    return st;
}
