/*
 * NIfTI-1 / NIfTI-2 writing: nifticlib builds the header from a nifti_image (dims,
 * datatype, pixdim, qform quaternion, sform, metadata); dakd writes header, extender and
 * voxels itself with znz to a temporary name and publishes with fsync + rename, so the
 * output appears complete or not at all. Pairs write both temporaries, then rename the
 * .img first and the .hdr last (a reader never sees a header without its data).
 */
#include "nifti_internal.h"

#include <errno.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef union {
    nifti_1_header n1;
    nifti_2_header n2;
} any_header;

static int datatype_code(dk_dtype t) {
    static const int code[] = {
        [DK_U8] = DT_UINT8,    [DK_I8] = DT_INT8,     [DK_U16] = DT_UINT16, [DK_I16] = DT_INT16,
        [DK_U32] = DT_UINT32,  [DK_I32] = DT_INT32,   [DK_U64] = DT_UINT64, [DK_I64] = DT_INT64,
        [DK_F32] = DT_FLOAT32, [DK_F64] = DT_FLOAT64,
    };
    return t > DK_DT_UNKNOWN && t <= DK_F64 ? code[t] : DT_UNKNOWN;
}

/* The datatype the file stores; colour volumes go back to interleaved RGB24 / RGBA32. */
static dk_status file_datatype(int *dt, const dk_volume *v, const char *path) {
    if (v->color != DK_COLOR_NONE) {
        if (v->dtype != DK_U8 || v->nc != (int64_t)v->color)
            return dk_fail(DK_ERR_ARG,
                           "%s: colour volume must be uint8 with nc = %d (has %s, "
                           "nc = %lld)",
                           path, (int)v->color, dk_dtype_name(v->dtype), (long long)v->nc);
        *dt = v->color == DK_COLOR_RGB ? DT_RGB24 : DT_RGBA32;
        return DK_OK;
    }
    *dt = datatype_code(v->dtype);
    if (*dt == DT_UNKNOWN)
        return dk_fail(DK_ERR_ARG, "%s: volume has invalid data type %d", path, (int)v->dtype);
    return DK_OK;
}

static dk_status pick_version(int *version, const dk_volume *v, const dk_write_opts *opts,
                              const char *path) {
    int want = opts ? opts->nifti_version : 0;
    if (want < 0 || want > 2)
        return dk_fail(DK_ERR_ARG, "%s: nifti_version = %d (must be 0, 1 or 2)", path, want);
    *version = want ? want : v->meta.nifti_version == 2 ? 2 : 1;
    return DK_OK;
}

/* dim[] of the file: x, y, z, then t and components only when used. */
static dk_status file_dims(int64_t dims[8], const dk_volume *v, int version, const char *path) {
    int64_t nc = v->color != DK_COLOR_NONE ? 1 : v->nc;
    const int64_t ext[7] = {v->nx, v->ny, v->nz, v->nt, nc, 1, 1};
    dims[0] = nc > 1 ? 5 : v->nt > 1 ? 4 : v->nz > 1 ? 3 : 2;
    for (int i = 1; i < 8; i++) {
        dims[i] = ext[i - 1];
        if (dims[i] < 1)
            return dk_fail(DK_ERR_ARG, "%s: volume extent dim[%d] = %lld (must be >= 1)", path, i,
                           (long long)dims[i]);
        if (version == 1 && dims[i] > INT16_MAX)
            return dk_fail(DK_ERR_UNSUPPORTED,
                           "%s: dim[%d] = %lld exceeds the NIfTI-1 limit "
                           "%d (write NIfTI-2)",
                           path, i, (long long)dims[i], INT16_MAX);
    }
    return DK_OK;
}

static void copy_meta(nifti_image *nim, const dk_nifti_meta *m) {
    nim->qform_code = m->qform_code > 0 ? m->qform_code : NIFTI_XFORM_SCANNER_ANAT;
    nim->sform_code = m->sform_code > 0 ? m->sform_code : NIFTI_XFORM_SCANNER_ANAT;
    nim->intent_code = m->intent_code;
    nim->intent_p1 = m->intent_p1;
    nim->intent_p2 = m->intent_p2;
    nim->intent_p3 = m->intent_p3;
    snprintf(nim->intent_name, sizeof nim->intent_name, "%.*s", (int)sizeof m->intent_name - 1,
             m->intent_name);
    snprintf(nim->descrip, sizeof nim->descrip, "%.*s", (int)sizeof m->descrip - 1, m->descrip);
    snprintf(nim->aux_file, sizeof nim->aux_file, "%.*s", (int)sizeof m->aux_file - 1, m->aux_file);
    nim->cal_min = m->cal_min;
    nim->cal_max = m->cal_max;
    nim->toffset = m->toffset;
    nim->dt = nim->pixdim[4] = m->dt;
    nim->du = nim->pixdim[5] = m->du;
    nim->xyz_units = m->xyz_units;
    nim->time_units = m->time_units;
    nim->freq_dim = m->freq_dim;
    nim->phase_dim = m->phase_dim;
    nim->slice_dim = m->slice_dim;
    nim->slice_code = m->slice_code;
    nim->slice_start = m->slice_start;
    nim->slice_end = m->slice_end;
    nim->slice_duration = m->slice_duration;
}

/* Geometry: pixdim from spacing; sform = qform = the RAS affine (the qform through its
 * quaternion, exact up to what a quaternion and float32 can hold). */
static void set_geometry(nifti_image *nim, const dk_geometry *g) {
    double a[4][4], dx, dy, dz;
    dk_geometry_to_nifti_affine(g, a);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            nim->sto_xyz.m[r][c] = nim->qto_xyz.m[r][c] = a[r][c];
    nifti_dmat44_to_quatern(nim->qto_xyz, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d,
                            &nim->qoffset_x, &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz,
                            &nim->qfac);
    nim->dx = nim->pixdim[1] = g->spacing[0];
    nim->dy = nim->pixdim[2] = g->spacing[1];
    nim->dz = nim->pixdim[3] = g->spacing[2];
}

/* Header bytes (native order) for `v`; *hsize = 348 or 540. */
static dk_status build_header(any_header *hdr, size_t *hsize, const dk_volume *v, int version,
                              int pair, const char *path) {
    int dt;
    int64_t dims[8];
    dk_status st = file_datatype(&dt, v, path);
    if (st == DK_OK) st = file_dims(dims, v, version, path);
    if (st != DK_OK) return st;
    nifti_image *nim = nifti_make_new_nim(dims, dt, 0);
    if (!nim) return dk_fail(DK_ERR_INTERNAL, "%s: nifticlib could not make an image", path);
    *hsize = version == 2 ? sizeof(nifti_2_header) : sizeof(nifti_1_header);
    nim->nifti_type = version == 2 ? (pair ? NIFTI_FTYPE_NIFTI2_2 : NIFTI_FTYPE_NIFTI2_1)
                                   : (pair ? NIFTI_FTYPE_NIFTI1_2 : NIFTI_FTYPE_NIFTI1_1);
    nim->iname_offset = pair ? 0 : (int64_t)*hsize + 4; /* header + 4-byte extender */
    set_geometry(nim, &v->geom);
    copy_meta(nim, &v->meta);
    dk_nifti_put_xforms(nim, &v->meta, &v->geom); /* the file's own qform and codes */
    nim->scl_slope = 1.0; /* data are stored as they are in memory (scaling applied on read) */
    nim->scl_inter = 0.0;
    memset(hdr, 0, sizeof *hdr);
    int rc = version == 2 ? nifti_convert_nim2n2hdr(nim, &hdr->n2)
                          : nifti_convert_nim2n1hdr(nim, &hdr->n1);
    nifti_image_free(nim);
    if (rc != 0) return dk_fail(DK_ERR_INTERNAL, "%s: nifticlib could not build the header", path);
    return DK_OK;
}

/* Voxels in file order; colour is re-interleaved through a small buffer. 1 on success. */
static int write_voxels(znzFile fp, const dk_volume *v) {
    size_t nbytes = dk_volume_nbytes(v);
    if (v->color == DK_COLOR_NONE) return znzwrite(v->data, 1, nbytes, fp) == nbytes;
    unsigned char buf[12288]; /* a multiple of 3 and 4 */
    const unsigned char *src = v->data;
    size_t nc = (size_t)v->nc, nvox = nbytes / nc, per = sizeof buf / nc;
    for (size_t start = 0; start < nvox; start += per) {
        size_t n = nvox - start < per ? nvox - start : per;
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < nc; c++)
                buf[i * nc + c] = src[c * nvox + start + i];
        if (znzwrite(buf, 1, n * nc, fp) != n * nc) return 0;
    }
    return 1;
}

/* One output file: header (and the 4-byte extender of a single file) and/or voxels. */
static dk_status write_stream(const char *tmp, const char *final, int gz, int level,
                              const any_header *hdr, size_t hsize, const dk_volume *v) {
    char mode[8] = "wb";
    if (gz) snprintf(mode, sizeof mode, "wb%d", level);
    errno = 0;
    znzFile fp = znzopen(tmp, mode, gz);
    if (znz_isnull(fp))
        return dk_fail(DK_ERR_IO, "%s: cannot create %s: %s", final, tmp, strerror(errno));
    static const char extender[4] = {0, 0, 0, 0};
    int ok = 1;
    if (hdr) ok = znzwrite(hdr, 1, hsize, fp) == hsize;
    if (ok && hdr && v) ok = znzwrite(extender, 1, sizeof extender, fp) == sizeof extender;
    if (ok && v) ok = write_voxels(fp, v);
    int e = errno;
    if (znzclose(fp) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        return dk_fail(DK_ERR_IO, "%s: write to %s failed: %s", final, tmp,
                       e ? strerror(e) : "short write");
    return DK_OK;
}

static dk_status write_files(const dk_volume *v, const dk_nifti_files *f, const any_header *hdr,
                             size_t hsize, int level) {
    char tmp_hdr[DK_NIFTI_PATH_MAX + 64], tmp_img[DK_NIFTI_PATH_MAX + 64];
    tmp_img[0] = '\0';
    dk_status st = dk_tmp_path_for(tmp_hdr, sizeof tmp_hdr, f->hdr);
    if (st == DK_OK && f->pair) st = dk_tmp_path_for(tmp_img, sizeof tmp_img, f->img);
    if (st != DK_OK) return st;
    if (f->pair) {
        st = write_stream(tmp_img, f->img, f->gz, level, NULL, 0, v);
        if (st == DK_OK) st = write_stream(tmp_hdr, f->hdr, f->gz, level, hdr, hsize, NULL);
        if (st == DK_OK) st = dk_commit_file(tmp_img, f->img);
    } else {
        st = write_stream(tmp_hdr, f->hdr, f->gz, level, hdr, hsize, v);
    }
    if (st == DK_OK) {
        st = dk_commit_file(tmp_hdr, f->hdr);
        if (st != DK_OK && f->pair) unlink(f->img); /* no data file without its header */
    }
    if (st != DK_OK) {
        unlink(tmp_hdr);
        if (tmp_img[0]) unlink(tmp_img);
    }
    return st;
}

dk_status dk_nifti_write(const dk_volume *v, const char *path, const dk_write_opts *opts) {
    nifti_set_debug_level(0); /* the library never prints */
    if (!v || !v->data) return dk_fail(DK_ERR_ARG, "%s: volume has no data to write", path);
    int level = opts && opts->gzip_level ? opts->gzip_level : 6;
    if (level < 1 || level > 9)
        return dk_fail(DK_ERR_ARG, "%s: gzip_level = %d (must be 0..9)", path, level);
    dk_nifti_files f;
    any_header hdr;
    size_t hsize = 0;
    int version = 1;
    dk_status st = dk_nifti_files_of(&f, path);
    if (st == DK_OK) st = pick_version(&version, v, opts, path);
    if (st == DK_OK) st = build_header(&hdr, &hsize, v, version, f.pair, path);
    if (st == DK_OK) st = write_files(v, &f, &hdr, hsize, level);
    return st;
}
