/* The flat parameter buffers: a name table of (name, shape, offset) filled while a model is
 * built, then one 64-byte aligned allocation each for weights, gradients and optimiser
 * state, all of the same layout. Tensors are packed back to back in registration order
 * (no padding), so `total` is the sum of the sizes and a checkpoint is one pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/nn.h"

/* The global norm is summed in NORM_CHUNKS fixed slices of the buffer, each in double,
 * then the slices in index order: the result depends on `total` alone, not on how many
 * threads ran the slices. */
enum { NORM_CHUNKS = 64 };

void dk_params_init(dk_params *p) {
    DK_ASSERT(p != NULL);
    memset(p, 0, sizeof *p);
}

static int grow_info(dk_params *p) {
    if (p->count < p->cap) return 1;
    int cap = p->cap ? 2 * p->cap : 32;
    dk_param_info *info = realloc(p->info, (size_t)cap * sizeof *info);
    if (!info) return 0;
    p->info = info;
    p->cap = cap;
    return 1;
}

/* Product of the dims, or -1 when a dim is < 1 or the product leaves the range a buffer
 * of floats can be indexed in. */
static int64_t shape_numel(int ndim, const int64_t *shape) {
    const int64_t limit = INT64_MAX / 16;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > limit / n) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t dk_params_add(dk_params *p, const char *name, int ndim, const int64_t *shape) {
    DK_ASSERT(p != NULL);
    if (p->w) {
        dk_fail(DK_ERR_ARG, "parameter %s: registered after the buffers were allocated",
                name ? name : "(null)");
        return -1;
    }
    if (!name || !name[0] || strlen(name) >= sizeof p->info[0].name) {
        dk_fail(DK_ERR_ARG, "parameter name \"%s\": empty or longer than %zu characters",
                name ? name : "(null)", sizeof p->info[0].name - 1);
        return -1;
    }
    if (dk_params_find(p, name)) {
        dk_fail(DK_ERR_ARG, "parameter %s: registered twice", name);
        return -1;
    }
    int64_t numel = (ndim >= 1 && ndim <= 5 && shape) ? shape_numel(ndim, shape) : -1;
    if (numel < 0 || p->total > INT64_MAX / 16 - numel) {
        dk_fail(DK_ERR_ARG, "parameter %s: bad shape (ndim %d; dims must be >= 1, ndim 1..5)", name,
                ndim);
        return -1;
    }
    if (!grow_info(p)) {
        dk_fail(DK_ERR_NOMEM, "parameter %s: cannot grow the name table", name);
        return -1;
    }
    dk_param_info *e = &p->info[p->count++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, strlen(name) + 1);
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->offset = p->total;
    e->numel = numel;
    p->total += numel;
    return e->offset;
}

/* A zeroed buffer of p->total floats (at least one, so an empty set still allocates). */
static float *alloc_buffer(const dk_params *p, const char *what) {
    size_t n = p->total > 0 ? (size_t)p->total : 1;
    float *b = dk_alloc_aligned(n, sizeof(float));
    if (!b) {
        dk_fail(DK_ERR_NOMEM, "parameters: cannot allocate %s (%lld floats)", what,
                (long long)p->total);
        return NULL;
    }
    memset(b, 0, n * sizeof(float));
    return b;
}

dk_status dk_params_alloc(dk_params *p, int with_grad) {
    DK_ASSERT(p != NULL);
    if (!p->w && !(p->w = alloc_buffer(p, "weights"))) return DK_ERR_NOMEM;
    if (with_grad && !p->g && !(p->g = alloc_buffer(p, "gradients"))) return DK_ERR_NOMEM;
    return DK_OK;
}

dk_status dk_params_alloc_state(dk_params *p, int n_state) {
    DK_ASSERT(p != NULL && p->w != NULL && n_state >= 0 && n_state <= 2);
    /* Buffers that exist already are kept (they may hold state loaded from a checkpoint). */
    if (n_state >= 1 && !p->m && !(p->m = alloc_buffer(p, "optimiser state m")))
        return DK_ERR_NOMEM;
    if (n_state >= 2 && !p->v && !(p->v = alloc_buffer(p, "optimiser state v")))
        return DK_ERR_NOMEM;
    return DK_OK;
}

const dk_param_info *dk_params_find(const dk_params *p, const char *name) {
    DK_ASSERT(p != NULL && name != NULL);
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->info[i].name, name) == 0) return &p->info[i];
    return NULL;
}

void dk_params_zero_grad(dk_params *p) {
    DK_ASSERT(p != NULL);
    if (p->g) memset(p->g, 0, (size_t)p->total * sizeof(float));
}

double dk_params_grad_norm(const dk_params *p) {
    DK_ASSERT(p != NULL);
    if (!p->g || p->total == 0) return 0.0;
    const float *g = p->g;
    const int64_t total = p->total;
    const int64_t chunk = (total + NORM_CHUNKS - 1) / NORM_CHUNKS;
    double part[NORM_CHUNKS];
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        int64_t lo = (int64_t)c * chunk, hi = lo + chunk < total ? lo + chunk : total;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++)
            s += (double)g[i] * (double)g[i];
        part[c] = s;
    }
    double sum = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++)
        sum += part[c];
    return sqrt(sum);
}

/* PyTorch clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1. PyTorch
 * multiplies by the clamped coefficient always; multiplying by 1 changes nothing, so the
 * loop runs only when coef < 1. The norm itself is summed in double (PyTorch: float32
 * per-tensor norms, then the norm of those), so it agrees to float rounding, not bit for
 * bit. A NaN/Inf norm is returned as is and g is left alone (PyTorch would fill g with NaN);
 * the trainer checks the returned norm. */
double dk_params_clip_grad_norm(dk_params *p, double max_norm) {
    double norm = dk_params_grad_norm(p);
    if (!isfinite(norm)) return norm;
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        const float c = (float)coef;
        float *g = p->g;
        const int64_t total = p->total;
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int64_t i = 0; i < total; i++)
            g[i] *= c;
    }
    return norm;
}

static const dk_param_info *must_find(const dk_params *p, const char *name) {
    const dk_param_info *e = dk_params_find(p, name);
    DK_ASSERT(e != NULL && p->w != NULL); /* a name the builder never registered */
    return e;
}

void dk_params_init_normal(dk_params *p, const char *name, double std, dk_rng *rng) {
    DK_ASSERT(rng != NULL);
    const dk_param_info *e = must_find(p, name);
    float *w = p->w + e->offset;
    for (int64_t i = 0; i < e->numel; i++)
        w[i] = (float)(std * dk_rng_normal(rng));
}

void dk_params_fill(dk_params *p, const char *name, float value) {
    const dk_param_info *e = must_find(p, name);
    float *w = p->w + e->offset;
    for (int64_t i = 0; i < e->numel; i++)
        w[i] = value;
}

void dk_params_free(dk_params *p) {
    if (!p) return;
    dk_free(p->w);
    dk_free(p->g);
    dk_free(p->m);
    dk_free(p->v);
    free(p->info);
    memset(p, 0, sizeof *p);
}
