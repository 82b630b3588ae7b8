/* dk_volume: allocation, element access, data types and summaries. Geometry lives in
 * geometry.c, file dispatch and atomic output in volume_io.c. */
#include "dakd/volume.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
    int integer;
} dtype_info[] = {
    [DK_DT_UNKNOWN] = {"unknown", 0, 0}, [DK_U8] = {"uint8", 1, 1},
    [DK_I8] = {"int8", 1, 1},            [DK_U16] = {"uint16", 2, 1},
    [DK_I16] = {"int16", 2, 1},          [DK_U32] = {"uint32", 4, 1},
    [DK_I32] = {"int32", 4, 1},          [DK_U64] = {"uint64", 8, 1},
    [DK_I64] = {"int64", 8, 1},          [DK_F32] = {"float32", 4, 0},
    [DK_F64] = {"float64", 8, 0},
};

static int dtype_valid(dk_dtype t) { return t > DK_DT_UNKNOWN && t <= DK_F64; }

size_t dk_dtype_size(dk_dtype t) { return dtype_valid(t) ? dtype_info[t].size : 0; }
const char *dk_dtype_name(dk_dtype t) { return dtype_info[dtype_valid(t) ? t : 0].name; }
int dk_dtype_is_integer(dk_dtype t) { return dtype_valid(t) && dtype_info[t].integer; }

/* Product of the five extents, or -1 when one is < 1 or the product overflows int64 or
 * the byte count overflows size_t. */
static int64_t checked_numel(const int64_t dims[5], size_t elem) {
    int64_t n = 1;
    for (int i = 0; i < 5; i++) {
        if (dims[i] < 1 || n > INT64_MAX / dims[i]) return -1;
        n *= dims[i];
    }
    if (elem && (uint64_t)n > SIZE_MAX / elem) return -1;
    return n;
}

dk_status dk_volume_alloc(dk_volume *v, int64_t nx, int64_t ny, int64_t nz, int64_t nt,
                          int64_t nc, dk_dtype dtype) {
    memset(v, 0, sizeof *v);
    if (!dtype_valid(dtype)) return dk_fail(DK_ERR_ARG, "volume: invalid data type %d", dtype);
    const int64_t dims[5] = {nx, ny, nz, nt, nc};
    int64_t n = checked_numel(dims, dk_dtype_size(dtype));
    if (n < 0)
        return dk_fail(DK_ERR_ARG,
                       "volume: dims %lld x %lld x %lld x %lld x %lld invalid or too large",
                       (long long)nx, (long long)ny, (long long)nz, (long long)nt,
                       (long long)nc);
    void *data = dk_alloc_aligned((size_t)n, dk_dtype_size(dtype));
    if (!data)
        return dk_fail(DK_ERR_NOMEM, "volume: cannot allocate %lld x %zu bytes", (long long)n,
                       dk_dtype_size(dtype));
    memset(data, 0, (size_t)n * dk_dtype_size(dtype));
    v->nx = nx, v->ny = ny, v->nz = nz, v->nt = nt, v->nc = nc;
    v->ndim = nz == 1 ? 2 : 3;
    v->dtype = dtype;
    v->data = data;
    dk_geometry_identity(&v->geom);
    v->meta.qform_code = v->meta.sform_code = 1; /* NIFTI_XFORM_SCANNER_ANAT */
    v->meta.xyz_units = 2;                        /* NIFTI_UNITS_MM */
    v->meta.time_units = 8;                       /* NIFTI_UNITS_SEC */
    return DK_OK;
}

void dk_volume_free(dk_volume *v) {
    if (!v) return;
    dk_free(v->data);
    memset(v, 0, sizeof *v);
}

int64_t dk_volume_numel(const dk_volume *v) {
    const int64_t dims[5] = {v->nx, v->ny, v->nz, v->nt, v->nc};
    int64_t n = checked_numel(dims, 0);
    return n < 0 ? 0 : n;
}

size_t dk_volume_nbytes(const dk_volume *v) {
    return (size_t)dk_volume_numel(v) * dk_dtype_size(v->dtype);
}

double dk_volume_get(const dk_volume *v, int64_t i) {
    const void *d = v->data;
    switch (v->dtype) {
    case DK_U8: return ((const uint8_t *)d)[i];
    case DK_I8: return ((const int8_t *)d)[i];
    case DK_U16: return ((const uint16_t *)d)[i];
    case DK_I16: return ((const int16_t *)d)[i];
    case DK_U32: return ((const uint32_t *)d)[i];
    case DK_I32: return ((const int32_t *)d)[i];
    case DK_U64: return (double)((const uint64_t *)d)[i];
    case DK_I64: return (double)((const int64_t *)d)[i];
    case DK_F32: return ((const float *)d)[i];
    case DK_F64: return ((const double *)d)[i];
    default: DK_ASSERT(!"dk_volume_get: invalid dtype"); return 0;
    }
}

/* Round half away from zero and clamp into [lo, hi]; NaN becomes 0. */
static double clamp_round(double x, double lo, double hi) {
    if (isnan(x)) return 0;
    x = round(x);
    return x < lo ? lo : x > hi ? hi : x;
}

void dk_volume_set(dk_volume *v, int64_t i, double x) {
    void *d = v->data;
    switch (v->dtype) {
    case DK_U8: ((uint8_t *)d)[i] = (uint8_t)clamp_round(x, 0, 255); break;
    case DK_I8: ((int8_t *)d)[i] = (int8_t)clamp_round(x, -128, 127); break;
    case DK_U16: ((uint16_t *)d)[i] = (uint16_t)clamp_round(x, 0, 65535); break;
    case DK_I16: ((int16_t *)d)[i] = (int16_t)clamp_round(x, -32768, 32767); break;
    case DK_U32: ((uint32_t *)d)[i] = (uint32_t)clamp_round(x, 0, 4294967295.0); break;
    case DK_I32: ((int32_t *)d)[i] = (int32_t)clamp_round(x, -2147483648.0, 2147483647.0); break;
    /* 2^64 and 2^63 are the first doubles outside the ranges; stay below them. */
    case DK_U64: ((uint64_t *)d)[i] = (uint64_t)clamp_round(x, 0, 18446744073709549568.0); break;
    case DK_I64:
        ((int64_t *)d)[i] =
            (int64_t)clamp_round(x, -9223372036854775808.0, 9223372036854774784.0);
        break;
    case DK_F32: ((float *)d)[i] = (float)x; break;
    case DK_F64: ((double *)d)[i] = x; break;
    default: DK_ASSERT(!"dk_volume_set: invalid dtype");
    }
}

/* ---------------------------------------------------------------- statistics */

/* Insert `x` into the sorted distinct-value table of an integer volume. */
static void add_label(dk_volume_stats *s, int64_t x, int64_t count) {
    int lo = 0, hi = (int)(s->n_labels < 64 ? s->n_labels : 64);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->labels[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    int n = (int)(s->n_labels < 64 ? s->n_labels : 64);
    if (lo < n && s->labels[lo] == x) {
        s->label_counts[lo] += count;
        return;
    }
    s->n_labels++;
    if (n == 64) { /* table full: keep the 64 smallest values */
        s->labels_truncated = 1;
        if (lo == 64) return;
        n = 63;
    }
    memmove(s->labels + lo + 1, s->labels + lo, (size_t)(n - lo) * sizeof s->labels[0]);
    memmove(s->label_counts + lo + 1, s->label_counts + lo,
            (size_t)(n - lo) * sizeof s->label_counts[0]);
    s->labels[lo] = x;
    s->label_counts[lo] = count;
}

/* Element i of an integer volume exactly (through double, 64-bit values above 2^53 would
 * merge and a uint64 of 2^63 or more would convert with undefined behaviour); 0 when it is a
 * uint64 beyond INT64_MAX. */
static int integer_at(const dk_volume *v, int64_t i, int64_t *x) {
    switch (v->dtype) {
    case DK_U32: *x = ((const uint32_t *)v->data)[i]; return 1;
    case DK_I32: *x = ((const int32_t *)v->data)[i]; return 1;
    case DK_I64: *x = ((const int64_t *)v->data)[i]; return 1;
    case DK_U64: {
        const uint64_t u = ((const uint64_t *)v->data)[i];
        *x = u <= (uint64_t)INT64_MAX ? (int64_t)u : 0;
        return u <= (uint64_t)INT64_MAX;
    }
    default: *x = (int64_t)dk_volume_get(v, i); return 1; /* 8 and 16 bits: exact */
    }
}

/* Distinct values of an 8-bit volume by histogram (one pass, no table inserts). */
static void label_histogram_u8(const dk_volume *v, dk_volume_stats *s, int64_t n) {
    int64_t hist[256] = {0};
    const uint8_t *p = v->data;
    int off = v->dtype == DK_I8 ? 128 : 0;
    for (int64_t i = 0; i < n; i++) hist[(uint8_t)(p[i] + off)]++;
    for (int b = 0; b < 256; b++)
        if (hist[b]) add_label(s, b - off, hist[b]);
}

void dk_volume_compute_stats(const dk_volume *v, dk_volume_stats *s) {
    memset(s, 0, sizeof *s);
    int64_t n = dk_volume_numel(v);
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = dk_volume_get(v, i);
        if (isnan(x)) {
            s->n_nan++;
            continue;
        }
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        sum += x;
    }
    int64_t valid = n - s->n_nan;
    s->min = valid ? mn : NAN;
    s->max = valid ? mx : NAN;
    s->mean = valid ? sum / (double)valid : NAN;
    if (!dk_dtype_is_integer(v->dtype)) return;
    if (dk_dtype_size(v->dtype) == 1) {
        label_histogram_u8(v, s, n);
        return;
    }
    /* Runs of equal values are common in label maps: count them before inserting. */
    for (int64_t i = 0; i < n;) {
        int64_t x, y, j = i + 1;
        if (!integer_at(v, i, &x)) { /* a uint64 beyond int64: no label table holds it */
            s->labels_truncated = 1;
            return;
        }
        while (j < n && integer_at(v, j, &y) && y == x)
            j++;
        add_label(s, x, j - i);
        i = j;
    }
}
