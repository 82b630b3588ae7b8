/* Resampling onto a grid of the same extent and direction (the rule is in dakd/data.h):
 * trilinear for images, nearest for labels and masks. Voxel centres map as
 * u = (i' + 0.5) n / n' - 0.5, computed from integers so equal sizes copy exactly. */
#include "dakd/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t extent(const dk_volume *v, int a) { return a == 0 ? v->nx : a == 1 ? v->ny : v->nz; }

void dk_resample_grid(const dk_volume *in, const dk_resample_target *t, int64_t n_out[3],
                      double spacing_out[3]) {
    for (int a = 0; a < 3; a++) {
        int64_t n = extent(in, a);
        double s = in->geom.spacing[a], len = (double)n * s;
        n_out[a] = n;
        spacing_out[a] = s;
        if (t->spacing[a] > 0) {
            double want = t->spacing[a];
            n_out[a] = llround(len / want);
            if (n_out[a] < 1) n_out[a] = 1;
            spacing_out[a] = len / (double)n_out[a];
            if (fabs(spacing_out[a] - want) <= 1e-9 * want) spacing_out[a] = want;
        } else if (t->size[a] > 0) {
            n_out[a] = t->size[a];
            spacing_out[a] = len / (double)n_out[a];
        }
    }
}

/* Continuous input index of output voxel i (n input, m output voxels), clamped. */
static double source_index(int64_t i, int64_t n, int64_t m) {
    double u = (double)((2 * i + 1) * n - m) / (double)(2 * m);
    return u < 0 ? 0 : u > (double)(n - 1) ? (double)(n - 1) : u;
}

typedef struct {
    int64_t *i0, *i1; /* neighbour indices */
    double *w;        /* weight of i1 */
} axis_table;

static int table_make(axis_table *t, int64_t n, int64_t m, int nearest) {
    t->i0 = malloc((size_t)m * sizeof *t->i0);
    t->i1 = malloc((size_t)m * sizeof *t->i1);
    t->w = malloc((size_t)m * sizeof *t->w);
    if (!t->i0 || !t->i1 || !t->w) return 0;
    for (int64_t i = 0; i < m; i++) {
        double u = source_index(i, n, m);
        int64_t k = nearest ? (int64_t)floor(u + 0.5) : (int64_t)floor(u);
        if (k > n - 1) k = n - 1;
        t->i0[i] = k;
        t->i1[i] = k + 1 < n ? k + 1 : k;
        t->w[i] = nearest ? 0 : u - (double)k;
    }
    return 1;
}

static void table_free(axis_table *t) {
    free(t->i0);
    free(t->i1);
    free(t->w);
}

/* Trilinear over one channel plane set: in (nz, ny, nx) → out (mz, my, mx). */
static void linear_channel(float *out, const float *in, const int64_t n[3], const int64_t m[3],
                           const axis_table t[3]) {
    for (int64_t z = 0; z < m[2]; z++)
        for (int64_t y = 0; y < m[1]; y++) {
            const float *r[4] = {
                in + (t[2].i0[z] * n[1] + t[1].i0[y]) * n[0],
                in + (t[2].i0[z] * n[1] + t[1].i1[y]) * n[0],
                in + (t[2].i1[z] * n[1] + t[1].i0[y]) * n[0],
                in + (t[2].i1[z] * n[1] + t[1].i1[y]) * n[0],
            };
            double wy = t[1].w[y], wz = t[2].w[z];
            float *o = out + (z * m[1] + y) * m[0];
            for (int64_t x = 0; x < m[0]; x++) {
                int64_t x0 = t[0].i0[x], x1 = t[0].i1[x];
                double wx = t[0].w[x], v[4];
                for (int k = 0; k < 4; k++) v[k] = (1 - wx) * r[k][x0] + wx * r[k][x1];
                o[x] = (float)((1 - wz) * ((1 - wy) * v[0] + wy * v[1]) +
                               wz * ((1 - wy) * v[2] + wy * v[3]));
            }
        }
}

/* Nearest over one channel of elements of `es` bytes. */
static void nearest_channel(unsigned char *out, const unsigned char *in, size_t es,
                            const int64_t n[3], const int64_t m[3], const axis_table t[3]) {
    for (int64_t z = 0; z < m[2]; z++)
        for (int64_t y = 0; y < m[1]; y++) {
            const unsigned char *r = in + (size_t)((t[2].i0[z] * n[1] + t[1].i0[y]) * n[0]) * es;
            unsigned char *o = out + (size_t)((z * m[1] + y) * m[0]) * es;
            if (es == 1)
                for (int64_t x = 0; x < m[0]; x++) o[x] = r[t[0].i0[x]];
            else
                for (int64_t x = 0; x < m[0]; x++)
                    memcpy(o + (size_t)x * es, r + (size_t)t[0].i0[x] * es, es);
        }
}

static dk_status check_args(const dk_volume *in, const dk_resample_target *t, dk_interp how) {
    if (in->nt != 1)
        return dk_fail(DK_ERR_ARG, "resample: nt = %lld; resample one time point at a time",
                       (long long)in->nt);
    if (how == DK_INTERP_LINEAR && in->dtype != DK_F32)
        return dk_fail(DK_ERR_ARG, "resample: linear interpolation takes float32 (have %s)",
                       dk_dtype_name(in->dtype));
    for (int a = 0; a < 3; a++)
        if (t->spacing[a] < 0 || t->size[a] < 0 || !isfinite(t->spacing[a]))
            return dk_fail(DK_ERR_ARG, "resample: target spacing[%d] = %g, size[%d] = %lld", a,
                           t->spacing[a], a, (long long)t->size[a]);
    return DK_OK;
}

dk_status dk_resample(dk_volume *out, const dk_volume *in, const dk_resample_target *target,
                      dk_interp interp) {
    memset(out, 0, sizeof *out);
    axis_table tab[3] = {{0}};
    dk_status st = check_args(in, target, interp);
    if (st != DK_OK) return st;
    int64_t n[3] = {in->nx, in->ny, in->nz}, m[3];
    double sp[3];
    dk_resample_grid(in, target, m, sp);
    st = dk_volume_alloc(out, m[0], m[1], m[2], 1, in->nc, in->dtype);
    if (st != DK_OK) goto out;
    for (int a = 0; a < 3; a++)
        if (!table_make(&tab[a], n[a], m[a], interp == DK_INTERP_NEAREST)) {
            st = dk_fail(DK_ERR_NOMEM, "resample: index tables");
            goto out;
        }
    out->meta = in->meta;
    out->color = in->color;
    out->ndim = m[2] == 1 ? 2 : 3;
    out->geom = in->geom;
    for (int a = 0; a < 3; a++) {
        out->geom.spacing[a] = sp[a];
        for (int r = 0; r < 3; r++)
            out->geom.origin[r] += in->geom.direction[r][a] * 0.5 * (sp[a] - in->geom.spacing[a]);
    }
    size_t es = dk_dtype_size(in->dtype);
    int64_t in_plane = n[0] * n[1] * n[2], out_plane = m[0] * m[1] * m[2];
    for (int64_t c = 0; c < in->nc; c++) {
        if (interp == DK_INTERP_LINEAR)
            linear_channel((float *)out->data + c * out_plane,
                           (const float *)in->data + c * in_plane, n, m, tab);
        else
            nearest_channel((unsigned char *)out->data + (size_t)(c * out_plane) * es,
                            (const unsigned char *)in->data + (size_t)(c * in_plane) * es, es,
                            n, m, tab);
    }
out:
    for (int a = 0; a < 3; a++) table_free(&tab[a]);
    if (st != DK_OK) dk_volume_free(out);
    return st;
}
