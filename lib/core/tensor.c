/*
 * float32 NCDHW tensors: owned (heap, 64-byte aligned), borrowed views, or arena-placed.
 */
#include "dakd/core.h"

#include <stdint.h>
#include <string.h>

static dk_tensor shape_only(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    dk_tensor t = {NULL, n, c, d, h, w, 0};
    return t;
}

int64_t dk_tensor_numel(const dk_tensor *t) {
    if (!t) return 0;
    const int64_t dims[5] = {t->n, t->c, t->d, t->h, t->w};
    int64_t total = 1;
    for (int i = 0; i < 5; i++) {
        if (dims[i] <= 0) return 0;
        if (total > INT64_MAX / dims[i]) return 0;
        total *= dims[i];
    }
    return total;
}

/* Bytes for a tensor of that shape, or 0 when a dim is < 1, the element count overflows,
 * or the byte count does not fit a size_t. */
static size_t bytes_of(const dk_tensor *shape) {
    int64_t numel = dk_tensor_numel(shape);
    if (numel <= 0 || (uint64_t)numel > SIZE_MAX / sizeof(float)) return 0;
    return (size_t)numel * sizeof(float);
}

dk_status dk_tensor_alloc(dk_tensor *t, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    DK_ASSERT(t != NULL);
    *t = shape_only(n, c, d, h, w);
    size_t bytes = bytes_of(t);
    if (bytes == 0) {
        memset(t, 0, sizeof *t);
        return dk_fail(DK_ERR_ARG,
                       "tensor: bad shape (%lld, %lld, %lld, %lld, %lld): each dim must be >= 1 "
                       "and the element count must fit in memory",
                       (long long)n, (long long)c, (long long)d, (long long)h, (long long)w);
    }
    float *data = dk_alloc_aligned(bytes, 1);
    if (!data) {
        memset(t, 0, sizeof *t);
        return dk_fail(DK_ERR_NOMEM,
                       "tensor (%lld, %lld, %lld, %lld, %lld): cannot allocate %zu bytes",
                       (long long)n, (long long)c, (long long)d, (long long)h, (long long)w, bytes);
    }
    memset(data, 0, bytes);
    t->data = data;
    t->owned = 1;
    return DK_OK;
}

dk_tensor dk_tensor_view(float *data, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    dk_tensor t = shape_only(n, c, d, h, w);
    t.data = data;
    return t;
}

dk_status dk_tensor_arena(dk_tensor *t, dk_arena *a, int64_t n, int64_t c, int64_t d, int64_t h,
                          int64_t w) {
    DK_ASSERT(t != NULL && a != NULL);
    *t = shape_only(n, c, d, h, w);
    size_t bytes = bytes_of(t);
    if (bytes == 0) {
        memset(t, 0, sizeof *t);
        return dk_fail(DK_ERR_ARG, "tensor: bad shape (%lld, %lld, %lld, %lld, %lld) for arena",
                       (long long)n, (long long)c, (long long)d, (long long)h, (long long)w);
    }
    /* Zeroed so a region reused after dk_arena_release never leaks stale values into a
     * buffer that is accumulated into; placement happens at build time, not per step. */
    float *data = dk_arena_calloc(a, bytes);
    if (!data) {
        memset(t, 0, sizeof *t);
        return dk_fail(DK_ERR_NOMEM,
                       "tensor (%lld, %lld, %lld, %lld, %lld): %zu bytes do not fit in the arena "
                       "(%zu of %zu bytes used)",
                       (long long)n, (long long)c, (long long)d, (long long)h, (long long)w, bytes,
                       a->used, a->capacity);
    }
    t->data = data;
    return DK_OK;
}

void dk_tensor_free(dk_tensor *t) {
    if (!t) return;
    if (t->owned) dk_free(t->data);
    memset(t, 0, sizeof *t);
}

int dk_tensor_same_shape(const dk_tensor *a, const dk_tensor *b) {
    if (!a || !b) return 0;
    return a->n == b->n && a->c == b->c && a->d == b->d && a->h == b->h && a->w == b->w;
}
