/*
 * The bump arena and 64-byte aligned heap buffers. 64 bytes is one cache line and the
 * widest SIMD register (AVX-512), so no kernel ever straddles a line at a buffer start.
 */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include "dakd/core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { ALIGN = 64 };

/* Round up to a multiple of ALIGN; 0 on overflow (callers treat it as "does not fit"). */
static size_t round_up(size_t bytes) {
    if (bytes > SIZE_MAX - (ALIGN - 1)) return 0;
    return (bytes + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
}

void *dk_alloc_aligned(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    /* A zero-byte request still gets a distinct, freeable block. */
    size_t total = count * size;
    size_t bytes = round_up(total != 0 ? total : 1);
    if (bytes == 0) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, bytes) != 0) return NULL;
    return p;
}

void dk_free(void *p) { free(p); }

/* From 2 MiB up: 2 MiB aligned and advised for transparent huge pages (a no-op where the
 * kernel has them off or always on). */
void *dk_alloc_large(size_t count, size_t size) {
    enum { HUGE = 2 << 20 };
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    const size_t total = count * size;
    if (total < HUGE) return dk_alloc_aligned(count, size);
    void *p = NULL;
    if (posix_memalign(&p, HUGE, total) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, total & ~(size_t)(HUGE - 1), MADV_HUGEPAGE);
#endif
    return p;
}

dk_status dk_arena_init(dk_arena *a, size_t capacity) {
    DK_ASSERT(a != NULL);
    memset(a, 0, sizeof *a);
    size_t cap = round_up(capacity ? capacity : 1);
    unsigned char *base = cap ? dk_alloc_aligned(cap, 1) : NULL;
    if (!base) return dk_fail(DK_ERR_NOMEM, "arena: cannot allocate %zu bytes", capacity);
    a->base = base;
    a->capacity = cap;
    return DK_OK;
}

void *dk_arena_alloc(dk_arena *a, size_t bytes) {
    if (!a || !a->base) return NULL;
    /* Zero-byte requests take one slot so every returned pointer is distinct. */
    size_t need = round_up(bytes ? bytes : 1);
    if (need == 0 || need > a->capacity - a->used) return NULL;
    void *p = a->base + a->used;
    a->used += need;
    if (a->used > a->high_water) a->high_water = a->used;
    return p;
}

void *dk_arena_calloc(dk_arena *a, size_t bytes) {
    void *p = dk_arena_alloc(a, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

size_t dk_arena_mark(const dk_arena *a) {
    DK_ASSERT(a != NULL);
    return a->used;
}

void dk_arena_release(dk_arena *a, size_t mark) {
    DK_ASSERT(a != NULL);
    /* A mark beyond `used` came from after a release or from another arena. */
    DK_ASSERT(mark <= a->used);
    a->used = mark;
}

void dk_arena_reset(dk_arena *a) {
    DK_ASSERT(a != NULL);
    a->used = 0;
}

void dk_arena_free(dk_arena *a) {
    if (!a) return;
    dk_free(a->base);
    memset(a, 0, sizeof *a);
}
