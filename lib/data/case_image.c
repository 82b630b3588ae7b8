/* A case's image from one file or one file per channel (dakd/data.h, "a case's image"):
 * 4-D files read as channels, the files stacked on one grid. */
#include "dakd/data.h"

#include <string.h>

/* The channels file `v` gives: nc for one volume, nt for volumes of one channel. */
static dk_status as_channels(dk_volume *v, const char *path) {
    if (v->nt == 1) return DK_OK;
    if (v->nc != 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: %lld volumes (dim[4]) of %lld channels (dim[5]); "
                       "a case image has channels or volumes, which are read as channels, not "
                       "both", path, (long long)v->nt, (long long)v->nc);
    v->nc = v->nt; /* (1, T, Z, Y, X) and (T, 1, Z, Y, X) are the same bytes */
    v->nt = 1;
    return DK_OK;
}

typedef dk_status (*reader)(dk_volume *, const char *);

/* File k read (header or whole) as channels and checked against the first one, `first`. */
static dk_status read_one(dk_volume *v, reader rd, const char *path, const dk_volume *first,
                          const char *first_path, double tol) {
    dk_status st = rd(v, path);
    if (st == DK_OK) st = as_channels(v, path);
    if (st == DK_OK && first && !dk_grid_match(first, first_path, v, path, tol))
        st = DK_ERR_FORMAT;
    if (st != DK_OK) dk_volume_free(v);
    return st;
}

static dk_status check_n(int n, const char *const *paths) {
    if (n >= 1 && n <= DK_CASE_IMAGES_MAX) return DK_OK;
    return dk_fail(DK_ERR_ARG, "%s: %d image files for one case (1..%d)",
                   n >= 1 ? paths[0] : "case image", n, DK_CASE_IMAGES_MAX);
}

dk_status dk_case_image_header(dk_volume *out, const char *const *paths, int n,
                               double grid_tol) {
    memset(out, 0, sizeof *out);
    dk_status st = check_n(n, paths);
    if (st == DK_OK) st = read_one(out, dk_volume_read_header, paths[0], NULL, NULL, grid_tol);
    for (int k = 1; st == DK_OK && k < n; k++) {
        dk_volume h;
        st = read_one(&h, dk_volume_read_header, paths[k], out, paths[0], grid_tol);
        if (st == DK_OK) out->nc += h.nc;
        dk_volume_free(&h);
    }
    if (st != DK_OK) dk_volume_free(out);
    return st;
}

/* Channels of `v` appended to `out` (DK_F32) from channel `at` on. */
static dk_status append(dk_volume *out, int64_t at, const dk_volume *v, const char *path) {
    dk_volume f = {0};
    if (at + v->nc > out->nc)
        return dk_fail(DK_ERR_IO, "%s: %lld channels now, fewer when its header was read",
                       path, (long long)v->nc);
    dk_status st = dk_channels_select(&f, v, DK_CHANNELS_ALL, 0, path);
    if (st != DK_OK) return st;
    int64_t nv = out->nx * out->ny * out->nz;
    memcpy((float *)out->data + at * nv, f.data, (size_t)(f.nc * nv) * sizeof(float));
    dk_volume_free(&f);
    return DK_OK;
}

dk_status dk_case_image_read(dk_volume *out, const char *const *paths, int n, double grid_tol) {
    memset(out, 0, sizeof *out);
    dk_volume hdr = {0}, first = {0}, v = {0};
    dk_status st = n == 1 ? DK_OK : dk_case_image_header(&hdr, paths, n, grid_tol);
    if (st == DK_OK) st = read_one(&first, dk_volume_read, paths[0], NULL, NULL, grid_tol);
    if (st != DK_OK || n == 1) {
        if (st == DK_OK) *out = first;
        dk_volume_free(&hdr);
        return st;
    }
    st = dk_volume_alloc(out, hdr.nx, hdr.ny, hdr.nz, 1, hdr.nc, DK_F32);
    if (st == DK_OK) {
        out->geom = first.geom, out->meta = first.meta, out->ndim = first.ndim;
        st = append(out, 0, &first, paths[0]);
    }
    int64_t at = first.nc;
    for (int k = 1; st == DK_OK && k < n; k++) {
        st = read_one(&v, dk_volume_read, paths[k], &first, paths[0], grid_tol);
        if (st == DK_OK) st = append(out, at, &v, paths[k]);
        at += v.nc;
        dk_volume_free(&v);
    }
    dk_volume_free(&first);
    dk_volume_free(&hdr);
    if (st != DK_OK) dk_volume_free(out);
    return st;
}
