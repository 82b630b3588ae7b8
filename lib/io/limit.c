/* What a file may make dakd allocate (dakd/volume.h): the volume size limit and its
 * environment variable, the size check every reader makes before it allocates, the
 * deflate bound for compressed data, and the range check of 64-bit integer voxels. */
#include "dakd/volume.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIMIT_ENV "DAKD_MAX_VOLUME_BYTES"

static uint64_t limit_set; /* dk_volume_set_limit; 0 = unset */

void dk_volume_set_limit(uint64_t bytes) { limit_set = bytes; }

/* "123", "16G", "16GiB", "512m", "2TB": digits then an optional K/M/G/T (powers of 1024)
 * and an optional "B" or "iB". 0 when the text is not such a count or overflows. */
static uint64_t parse_bytes(const char *text) {
    if (!isdigit((unsigned char)text[0])) return 0;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno == ERANGE) return 0;
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    int shift = 0;
    if (u) {
        shift = 10 * (int)(u - units + 1);
        end++;
        if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0) end += strlen(end);
    } else if (strcasecmp(end, "B") == 0) {
        end++;
    }
    if (*end || (shift && n > (UINT64_MAX >> shift))) return 0;
    return (uint64_t)n << shift;
}

dk_status dk_volume_limit(uint64_t *bytes) {
    *bytes = DK_VOLUME_LIMIT_DEFAULT;
    if (limit_set) {
        *bytes = limit_set;
        return DK_OK;
    }
    const char *env = getenv(LIMIT_ENV);
    if (!env || !env[0]) return DK_OK;
    uint64_t n = parse_bytes(env);
    if (n == 0)
        return dk_fail(DK_ERR_ARG,
                       LIMIT_ENV " = '%.64s': not a byte count >= 1 (e.g. 17179869184, "
                                 "16G or 16GiB; K, M, G, T are powers of 1024)",
                       env);
    *bytes = n;
    return DK_OK;
}

dk_status dk_volume_check_size(const char *path, const char *fields, const int64_t n[5],
                               dk_dtype t) {
    uint64_t limit, count = 1, elem = dk_dtype_size(t);
    DK_ASSERT(elem > 0);
    dk_status st = dk_volume_limit(&limit);
    if (st != DK_OK) return dk_error_context(st, "%s", path);
    int overflow = 0;
    for (int i = 0; i < 5; i++) {
        if (n[i] < 1)
            return dk_fail(DK_ERR_FORMAT, "%s: %s: extent %d is %lld (must be >= 1)", path, fields,
                           i + 1, (long long)n[i]);
        if ((uint64_t)n[i] > UINT64_MAX / elem / count)
            overflow = 1;
        else
            count *= (uint64_t)n[i];
    }
    if (overflow)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: %s give %lld x %lld x %lld x %lld x %lld (x y z t c) elements: "
                       "the byte count overflows",
                       path, fields, (long long)n[0], (long long)n[1], (long long)n[2],
                       (long long)n[3], (long long)n[4]);
    if (count * elem > limit)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "%s: %s give %lld x %lld x %lld x %lld x %lld (x y z t c) %s = %llu "
                       "bytes, over the volume size limit of %llu bytes (" LIMIT_ENV " raises it)",
                       path, fields, (long long)n[0], (long long)n[1], (long long)n[2],
                       (long long)n[3], (long long)n[4], dk_dtype_name(t),
                       (unsigned long long)(count * elem), (unsigned long long)limit);
    return DK_OK;
}

uint64_t dk_inflate_bound(uint64_t compressed) {
    const uint64_t ratio = 1032, margin = 65536;
    if (compressed > (UINT64_MAX - margin) / ratio) return UINT64_MAX;
    return compressed * ratio + margin;
}

/* ---------------------------------------------------------------- 64-bit integers */

/* Index of the first element outside +-2^53, or -1. */
static int64_t first_inexact(const dk_volume *v) {
    const int64_t n = dk_volume_numel(v), lim = DK_VOLUME_MAX_EXACT_INT;
    if (v->dtype == DK_U64) {
        const uint64_t *p = v->data;
        for (int64_t i = 0; i < n; i++)
            if (p[i] > (uint64_t)lim) return i;
    } else if (v->dtype == DK_I64) {
        const int64_t *p = v->data;
        for (int64_t i = 0; i < n; i++)
            if (p[i] > lim || p[i] < -lim) return i;
    }
    return -1;
}

dk_status dk_volume_check_int64(const dk_volume *v, const char *path) {
    const int64_t i = first_inexact(v);
    if (i < 0) return DK_OK;
    char value[32];
    if (v->dtype == DK_U64)
        snprintf(value, sizeof value, "%llu", (unsigned long long)((const uint64_t *)v->data)[i]);
    else
        snprintf(value, sizeof value, "%lld", (long long)((const int64_t *)v->data)[i]);
    int64_t r = i, at[5];
    const int64_t ext[5] = {v->nx, v->ny, v->nz, v->nt, v->nc};
    for (int a = 0; a < 5; a++) {
        at[a] = r % ext[a];
        r /= ext[a];
    }
    return dk_fail(DK_ERR_UNSUPPORTED,
                   "%s: %s value %s at x=%lld y=%lld z=%lld t=%lld c=%lld lies beyond +-2^53: "
                   "dakd holds voxel values as doubles, which keep integers exact only up to "
                   "2^53 (labels would merge)",
                   path, dk_dtype_name(v->dtype), value, (long long)at[0], (long long)at[1],
                   (long long)at[2], (long long)at[3], (long long)at[4]);
}
