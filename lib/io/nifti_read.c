/*
 * NIfTI-1, NIfTI-2 and Analyze 7.5 reading over nifticlib.
 *
 * nifticlib's own reader looks for sibling files (asked for x.nii.gz it opens x.nii when
 * that exists) and prints to stderr, so dakd opens exactly the files named, reads and
 * validates the header bytes itself, lets nifticlib turn the (native-order, already
 * validated) header into a nifti_image for the geometry and metadata, and reads the voxel
 * data straight into the volume's buffer: compressed data inflated whole by libdeflate
 * (nifti_gz.c) where it can, else, and always for plain files, with znz (zlib's stream for
 * .gz, whose status and message are the reader's). Nothing is allocated for voxels before
 * the size the header describes has passed the volume size limit and the file's size (for
 * .gz, what its bytes can inflate to); 64-bit integers beyond +-2^53 are refused after the
 * read (dakd/volume.h).
 */
#include "nifti_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- file names */

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Copy `path` into `dst`, replacing the three letters of its extension that start at
 * `at` with `ext3`, in the case the original letters had. */
static void sibling_name(char *dst, const char *path, size_t at, const char *ext3) {
    strcpy(dst, path);
    for (int i = 0; i < 3; i++) {
        char c = ext3[i];
        dst[at + (size_t)i] = isupper((unsigned char)path[at + (size_t)i]) ? (char)toupper(c) : c;
    }
}

dk_status dk_nifti_files_of(dk_nifti_files *f, const char *path) {
    static const struct {
        const char *ext;
        int pair, gz, is_img;
    } kinds[] = {{".nii.gz", 0, 1, 0}, {".nii", 0, 0, 0},    {".hdr.gz", 1, 1, 0},
                 {".hdr", 1, 0, 0},    {".img.gz", 1, 1, 1}, {".img", 1, 0, 1}};
    memset(f, 0, sizeof *f);
    size_t n = strlen(path);
    if (n >= sizeof f->hdr)
        return dk_fail(DK_ERR_ARG, "%.200s...: path longer than %zu characters", path,
                       sizeof f->hdr - 1);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!ends_with(path, n, kinds[k].ext)) continue;
        f->pair = kinds[k].pair;
        f->gz = kinds[k].gz;
        size_t at = n - strlen(kinds[k].ext) + 1; /* first letter of "nii"/"hdr"/"img" */
        strcpy(f->hdr, path);
        strcpy(f->img, path);
        if (kinds[k].pair && kinds[k].is_img) sibling_name(f->hdr, path, at, "hdr");
        if (kinds[k].pair && !kinds[k].is_img) sibling_name(f->img, path, at, "img");
        return DK_OK;
    }
    return dk_fail(DK_ERR_ARG,
                   "%s: not a NIfTI/Analyze name (expected .nii, .nii.gz, "
                   ".hdr, .hdr.gz, .img or .img.gz)",
                   path);
}

dk_dtype dk_nifti_dtype_of(int datatype, int *channels) {
    *channels = 1;
    switch (datatype) {
    case DT_UINT8: return DK_U8;
    case DT_INT8: return DK_I8;
    case DT_UINT16: return DK_U16;
    case DT_INT16: return DK_I16;
    case DT_UINT32: return DK_U32;
    case DT_INT32: return DK_I32;
    case DT_UINT64: return DK_U64;
    case DT_INT64: return DK_I64;
    case DT_FLOAT32: return DK_F32;
    case DT_FLOAT64: return DK_F64;
    case DT_RGB24: *channels = 3; return DK_U8;
    case DT_RGBA32: *channels = 4; return DK_U8;
    default: return DK_DT_UNKNOWN;
    }
}

/* ---------------------------------------------------------------- the header */

/* The header as read, in native byte order, with the fields dakd validates widened. */
typedef struct {
    union {
        nifti_1_header n1; /* versions 0 (Analyze) and 1 */
        nifti_2_header n2;
    } raw;
    int version; /* 0 Analyze, 1, 2 */
    int swapped; /* file is in the other byte order */
    int64_t dim[8];
    double pixdim[8];
    int datatype;
    int intent_code;
    double vox_offset, scl_slope, scl_inter;
    int16_t spm_origin[3]; /* Analyze only: SPM's originator (1-based voxel), 0 = unset */
} header;

/* What the validated header describes. */
typedef struct {
    int64_t n[5]; /* nx, ny, nz, nt, nc (nc = 3/4 for colour) */
    dk_dtype dtype;
    int channels;  /* interleaved components per voxel in the file: 1, 3 or 4 */
    size_t nbytes; /* voxel data bytes in the file */
} layout;

static int32_t bswap32(int32_t x) {
    uint32_t u = (uint32_t)x;
    return (int32_t)((u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24));
}

/* Read sizeof_hdr's worth of header bytes; sets version and swapped. */
static dk_status read_header_bytes(header *h, const char *path, int gz) {
    dk_status st = DK_OK;
    const size_t n1 = sizeof(nifti_1_header), n2 = sizeof(nifti_2_header);
    znzFile fp = znzopen(path, "rb", gz);
    if (znz_isnull(fp)) return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t got = znzread(&h->raw, 1, n1, fp);
    if (got > n1) {
        st = dk_fail(DK_ERR_IO, "%s: read error in header (corrupt gzip stream?)", path);
        goto out;
    }
    if (got < n1) {
        st = dk_fail(DK_ERR_FORMAT, "%s: truncated header: %zu of %zu bytes", path, got, n1);
        goto out;
    }
    int32_t size = h->raw.n1.sizeof_hdr;
    h->swapped = size != (int32_t)n1 && size != (int32_t)n2;
    if (h->swapped) size = bswap32(size);
    if (size == (int32_t)n2) {
        got = znzread((char *)&h->raw + n1, 1, n2 - n1, fp);
        if (got != n2 - n1) {
            st = dk_fail(DK_ERR_FORMAT, "%s: truncated NIfTI-2 header: %zu of %zu bytes", path,
                         got > n2 ? n1 : n1 + got, n2);
            goto out;
        }
        h->version = 2;
    } else if (size != (int32_t)n1) {
        st = dk_fail(DK_ERR_FORMAT, "%s: header field sizeof_hdr = %d (expected 348 or 540)", path,
                     (int)h->raw.n1.sizeof_hdr);
        goto out;
    }
out:
    znzclose(fp);
    return st;
}

/* Decide the version from the magic, byte-swap, and widen the fields validated below. */
static dk_status decode_header(header *h, const char *path) {
    if (h->version == 2) {
        if (NIFTI_VERSION(h->raw.n2) != 2)
            return dk_fail(DK_ERR_FORMAT,
                           "%s: header field magic = \"%.3s\" in a 540-byte "
                           "header (expected n+2 or ni2)",
                           path, h->raw.n2.magic);
    } else {
        h->version = NIFTI_VERSION(h->raw.n1);
        if (h->version > 1)
            return dk_fail(DK_ERR_FORMAT,
                           "%s: header field magic = \"%.3s\" in a 348-byte "
                           "header (expected n+1, ni1 or none)",
                           path, h->raw.n1.magic);
    }
    if (h->version == 0) {
        /* SPM keeps the origin as five shorts at byte 253 (hist.originator), unaligned */
        const unsigned char *b = (const unsigned char *)&h->raw + 253;
        for (int i = 0; i < 3; i++)
            h->spm_origin[i] = (int16_t)(h->swapped ? (b[2 * i] << 8) | b[2 * i + 1]
                                                    : b[2 * i] | (b[2 * i + 1] << 8));
    }
    if (h->swapped) swap_nifti_header(&h->raw, h->version);
    for (int i = 0; i < 8; i++) {
        h->dim[i] = h->version == 2 ? h->raw.n2.dim[i] : h->raw.n1.dim[i];
        h->pixdim[i] = h->version == 2 ? h->raw.n2.pixdim[i] : h->raw.n1.pixdim[i];
    }
    h->datatype = h->version == 2 ? h->raw.n2.datatype : h->raw.n1.datatype;
    h->intent_code = h->version == 2 ? h->raw.n2.intent_code : h->raw.n1.intent_code;
    h->vox_offset = h->version == 2 ? (double)h->raw.n2.vox_offset : h->raw.n1.vox_offset;
    h->scl_slope = h->version == 2 ? h->raw.n2.scl_slope : h->raw.n1.scl_slope;
    h->scl_inter = h->version == 2 ? h->raw.n2.scl_inter : h->raw.n1.scl_inter;
    return DK_OK;
}

static dk_status check_datatype(const header *h, layout *l, const char *path) {
    l->dtype = dk_nifti_dtype_of(h->datatype, &l->channels);
    if (l->dtype != DK_DT_UNKNOWN) return DK_OK;
    switch (h->datatype) {
    case DT_BINARY:
    case DT_COMPLEX64:
    case DT_COMPLEX128:
    case DT_COMPLEX256:
    case DT_FLOAT128:
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: header field datatype = %d (%s) is not supported",
                       path, h->datatype, nifti_datatype_to_string(h->datatype));
    default:
        return dk_fail(DK_ERR_FORMAT, "%s: header field datatype = %d (not a NIfTI datatype code)",
                       path, h->datatype);
    }
}

/* CIFTI-2 keeps its matrix in dims 5..7 with dims 1..4 singleton (intent codes 3000..3099);
 * nibabel reports such a file with the shape (dim[5], dim[6], ...), so those dims become
 * x, y, z here. Any other use of dims 6 and 7 is refused. */
static dk_status map_extents(const header *h, layout *l, const char *path) {
    int64_t e[8];
    for (int i = 1; i < 8; i++)
        e[i] = i <= h->dim[0] ? h->dim[i] : 1;
    int cifti = h->intent_code >= 3000 && h->intent_code < 3100 && e[1] == 1 && e[2] == 1 &&
                e[3] == 1 && e[4] == 1;
    if (cifti) {
        l->n[0] = e[5], l->n[1] = e[6], l->n[2] = e[7], l->n[3] = 1, l->n[4] = 1;
    } else {
        for (int i = 6; i < 8; i++)
            if (e[i] > 1)
                return dk_fail(DK_ERR_UNSUPPORTED,
                               "%s: header field dim[%d] = %lld (dakd "
                               "reads at most 5 dimensions)",
                               path, i, (long long)e[i]);
        for (int i = 0; i < 5; i++)
            l->n[i] = e[i + 1];
    }
    if (l->channels > 1) {
        if (l->n[4] != 1)
            return dk_fail(DK_ERR_UNSUPPORTED,
                           "%s: header field dim[5] = %lld with colour "
                           "datatype %d",
                           path, (long long)l->n[4], h->datatype);
        l->n[4] = l->channels;
    }
    return DK_OK;
}

static dk_status validate_header(const header *h, layout *l, const char *path) {
    if (h->dim[0] < 1 || h->dim[0] > 7)
        return dk_fail(DK_ERR_FORMAT, "%s: header field dim[0] = %lld (must be 1..7)", path,
                       (long long)h->dim[0]);
    for (int i = 1; i <= h->dim[0]; i++)
        if (h->dim[i] < 1)
            return dk_fail(DK_ERR_FORMAT, "%s: header field dim[%d] = %lld (must be >= 1)", path, i,
                           (long long)h->dim[i]);
    dk_status st = check_datatype(h, l, path);
    if (st == DK_OK) st = map_extents(h, l, path);
    if (st != DK_OK) return st;
    uint64_t count = 1, limit = (uint64_t)INT64_MAX < SIZE_MAX ? (uint64_t)INT64_MAX : SIZE_MAX;
    limit /= dk_dtype_size(l->dtype);
    for (int i = 0; i < 5; i++) {
        if ((uint64_t)l->n[i] > limit / count)
            return dk_fail(DK_ERR_FORMAT,
                           "%s: header fields dim[1..%lld] = %lld x %lld x %lld x "
                           "%lld x %lld: voxel count overflows",
                           path, (long long)h->dim[0], (long long)l->n[0], (long long)l->n[1],
                           (long long)l->n[2], (long long)l->n[3], (long long)l->n[4]);
        count *= (uint64_t)l->n[i];
    }
    l->nbytes = (size_t)count * dk_dtype_size(l->dtype);
    if (!(h->vox_offset >= 0 && h->vox_offset < 9.0e18))
        return dk_fail(DK_ERR_FORMAT, "%s: header field vox_offset = %g (must be >= 0)", path,
                       h->vox_offset);
    return DK_OK;
}

/* ---------------------------------------------------------------- geometry and metadata */

static int is_onefile(const header *h) {
    return h->version == 2 ? NIFTI_ONEFILE(h->raw.n2) : NIFTI_ONEFILE(h->raw.n1);
}

/* nibabel's rule: a finite, non-zero slope scales; a non-finite intercept counts as 0. */
static int scaling_of(const header *h, double *slope, double *inter) {
    *slope = h->scl_slope;
    *inter = isfinite(h->scl_inter) ? h->scl_inter : 0.0;
    return h->version > 0 && isfinite(*slope) && *slope != 0.0 && !(*slope == 1.0 && *inter == 0.0);
}

static dk_dtype scaled_dtype(dk_dtype t) {
    switch (t) {
    case DK_U32:
    case DK_I32:
    case DK_U64:
    case DK_I64:
    case DK_F64: return DK_F64;
    default: return DK_F32;
    }
}

static void copy_meta(dk_nifti_meta *m, const nifti_image *nim, const header *h) {
    m->qform_code = nim->qform_code;
    m->sform_code = nim->sform_code;
    m->intent_code = nim->intent_code;
    m->intent_p1 = nim->intent_p1;
    m->intent_p2 = nim->intent_p2;
    m->intent_p3 = nim->intent_p3;
    memcpy(m->intent_name, nim->intent_name, sizeof m->intent_name - 1);
    memcpy(m->descrip, nim->descrip, sizeof m->descrip - 1);
    memcpy(m->aux_file, nim->aux_file, sizeof m->aux_file - 1);
    m->cal_min = nim->cal_min;
    m->cal_max = nim->cal_max;
    m->toffset = nim->toffset;
    m->dt = h->pixdim[4]; /* as stored: nifticlib replaces 0 by 1 within dim[0] */
    m->du = h->pixdim[5];
    m->xyz_units = nim->xyz_units;
    m->time_units = nim->time_units;
    m->freq_dim = nim->freq_dim;
    m->phase_dim = nim->phase_dim;
    m->slice_dim = nim->slice_dim;
    m->slice_code = nim->slice_code;
    m->slice_start = nim->slice_start;
    m->slice_end = nim->slice_end;
    m->slice_duration = nim->slice_duration;
    m->nifti_version = h->version;
}

/* Analyze 7.5 has no orientation fields; like SPM and nibabel, read it as radiological
 * (x flipped) with the origin at SPM's originator when set and plausible, else at the
 * grid centre: p = diag(-dx, dy, dz) * ((i, j, k) - origin). */
static void analyze_affine(double m[4][4], const header *h) {
    memset(m, 0, 16 * sizeof(double));
    int set = h->spm_origin[0] || h->spm_origin[1] || h->spm_origin[2];
    for (int a = 0; a < 3; a++) {
        double dim = (double)(h->dim[0] > a ? h->dim[a + 1] : 1);
        double o = h->spm_origin[a];
        if (!(o > -dim && o < 2 * dim)) set = 0;
    }
    for (int a = 0; a < 3; a++) {
        double dim = (double)(h->dim[0] > a ? h->dim[a + 1] : 1);
        double z = h->dim[0] > a && h->pixdim[a + 1] != 0 ? h->pixdim[a + 1] : 1.0;
        double origin = set ? h->spm_origin[a] - 1.0 : (dim - 1) / 2.0;
        m[a][a] = a == 0 ? -z : z;
        m[a][3] = -origin * m[a][a] + 0.0;
    }
    m[3][3] = 1;
}

/* Shape, type, geometry and metadata. nifticlib converts the header (native order and
 * validated above, so it has nothing to print about) into qto_xyz/sto_xyz: the sform when
 * sform_code > 0, else the qform from the quaternion, or diag(pixdim) (NIfTI's "method 1")
 * when qform_code <= 0. Analyze files follow analyze_affine. */
static dk_status describe(dk_volume *v, const header *h, const layout *l, const char *path) {
    nifti_image *nim = h->version == 2 ? nifti_convert_n2hdr2nim(h->raw.n2, NULL)
                                       : nifti_convert_n1hdr2nim(h->raw.n1, NULL);
    if (!nim) return dk_fail(DK_ERR_INTERNAL, "%s: nifticlib could not convert the header", path);
    v->nx = l->n[0], v->ny = l->n[1], v->nz = l->n[2], v->nt = l->n[3], v->nc = l->n[4];
    v->ndim = v->nz == 1 ? 2 : 3;
    double slope, inter;
    v->dtype =
        l->channels == 1 && scaling_of(h, &slope, &inter) ? scaled_dtype(l->dtype) : l->dtype;
    v->color = l->channels == 3 ? DK_COLOR_RGB : l->channels == 4 ? DK_COLOR_RGBA : DK_COLOR_NONE;
    const nifti_dmat44 *a = nim->sform_code > 0 ? &nim->sto_xyz : &nim->qto_xyz;
    double m[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            m[r][c] = a->m[r][c];
    if (h->version == 0) analyze_affine(m, h);
    dk_geometry_from_nifti_affine(&v->geom, (const double(*)[4])m);
    copy_meta(&v->meta, nim, h);
    if (h->version > 0) dk_nifti_keep_xforms(&v->meta, nim, &v->geom);
    nifti_image_free(nim);
    return DK_OK;
}

/* ---------------------------------------------------------------- voxel data */

/* A compressed file whose voxels start further in than this (extensions of over a MiB) is
 * streamed: the whole-buffer inflate needs that much extra room in the volume's buffer. */
#define GZ_LEAD_MAX ((int64_t)1 << 20)

static dk_status data_offset(int64_t *off, const header *h, const dk_nifti_files *f) {
    const int64_t hsize = h->version == 2 ? 540 : 348;
    *off = (int64_t)h->vox_offset;
    if (f->pair) return DK_OK;
    if (h->version > 0 && !is_onefile(h))
        return dk_fail(DK_ERR_FORMAT,
                       "%s: header field magic = \"%.3s\" marks a .hdr/.img "
                       "pair, but the file is a single .nii",
                       f->hdr, h->version == 2 ? h->raw.n2.magic : h->raw.n1.magic);
    if (*off == 0)
        *off = hsize + 4; /* unset: header + extender, as nibabel reads it */
    else if (*off < hsize)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: header field vox_offset = %lld (inside the %lld-byte "
                       "header)",
                       f->hdr, (long long)*off, (long long)hsize);
    return DK_OK;
}

/* Before anything is allocated: an uncompressed file must hold `nbytes` at `off`; a
 * compressed one must be large enough to inflate to them (its decompressed size cannot be
 * known without inflating it; a stream that ends early fails in read_voxels, having filled
 * only the pages it reached). */
static dk_status check_file_holds(const char *file, int gz, int64_t off, size_t nbytes) {
    struct stat sb;
    if (stat(file, &sb) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot open image file: %s", file, strerror(errno));
    if (gz) {
        if ((uint64_t)off + nbytes > dk_inflate_bound((uint64_t)sb.st_size))
            return dk_fail(DK_ERR_FORMAT,
                           "%s: header fields dim[] and vox_offset = %lld need %zu bytes of "
                           "voxel data, more than the %lld-byte compressed file can hold "
                           "(deflate expands at most 1032:1)",
                           file, (long long)off, nbytes, (long long)sb.st_size);
        return DK_OK;
    }
    if (off > (int64_t)sb.st_size)
        return dk_fail(DK_ERR_FORMAT,
                       "%s: header field vox_offset = %lld is past the end "
                       "of the file (%lld bytes)",
                       file, (long long)off, (long long)sb.st_size);
    if ((uint64_t)((int64_t)sb.st_size - off) < nbytes)
        return dk_fail(DK_ERR_IO,
                       "%s: truncated voxel data: expected %zu bytes at vox_offset "
                       "%lld, file has %lld",
                       file, nbytes, (long long)off, (long long)((int64_t)sb.st_size - off));
    return DK_OK;
}

/* Read `nbytes` at `off` of `file` into `buf` in one znzread (zlib inflates straight into
 * the buffer). For .gz files this is the stream behind the whole-buffer inflate
 * (nifti_gz.c), used when that declines; its messages are the reader's. */
static dk_status read_voxels(void *buf, size_t nbytes, const char *file, int gz, int64_t off) {
    dk_status st = DK_OK;
    znzFile fp = znzopen(file, "rb", gz);
    if (znz_isnull(fp))
        return dk_fail(DK_ERR_IO, "%s: cannot open image file: %s", file, strerror(errno));
    if (off > 0 && znzseek(fp, (znz_off_t)off, SEEK_SET) < 0) {
        st = dk_fail(DK_ERR_IO, "%s: cannot seek to vox_offset %lld", file, (long long)off);
        goto out;
    }
    size_t got = znzread(buf, 1, nbytes, fp);
    if (got > nbytes)
        st = dk_fail(DK_ERR_IO, "%s: read error in voxel data (corrupt gzip stream?)", file);
    else if (got < nbytes)
        st = dk_fail(DK_ERR_IO,
                     "%s: truncated voxel data: expected %zu bytes at vox_offset "
                     "%lld, got %zu",
                     file, nbytes, (long long)off, got);
out:
    znzclose(fp);
    return st;
}

static void deinterleave(uint8_t *dst, const uint8_t *src, size_t nvox, int nc) {
    for (int c = 0; c < nc; c++)
        for (size_t i = 0; i < nvox; i++)
            dst[(size_t)c * nvox + i] = src[i * (size_t)nc + (size_t)c];
}

static dk_status load_data(dk_volume *v, const header *h, const layout *l,
                           const dk_nifti_files *f) {
    int64_t off;
    /* the limit applies to the larger of the stored and the scaled volume */
    const dk_dtype t = dk_dtype_size(v->dtype) > dk_dtype_size(l->dtype) ? v->dtype : l->dtype;
    dk_status st = data_offset(&off, h, f);
    if (st == DK_OK) st = dk_volume_check_size(f->hdr, "header fields dim[1..7]", l->n, t);
    if (st == DK_OK) st = check_file_holds(f->img, f->gz, off, l->nbytes);
    if (st != DK_OK) return st;
    /* compressed: room for the bytes before vox_offset too, so that libdeflate inflates
     * straight into the volume's buffer; the voxels are then moved down to its start */
    const int whole = f->gz && off <= GZ_LEAD_MAX;
    const size_t lead = whole ? (size_t)off : 0;
    void *buf = dk_alloc_large(l->nbytes + lead, 1);
    if (!buf)
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate %zu bytes of voxel data", f->img,
                       l->nbytes + lead);
    if (whole && dk_nifti_gz_inflate(buf, lead + l->nbytes, f->img))
        memmove(buf, (unsigned char *)buf + lead, l->nbytes);
    else
        st = read_voxels(buf, l->nbytes, f->img, f->gz, off);
    if (st != DK_OK) goto out;
    int nbyper = 0, swapsize = 0;
    nifti_datatype_sizes(h->datatype, &nbyper, &swapsize);
    if (h->swapped && swapsize > 1)
        nifti_swap_Nbytes((int64_t)(l->nbytes / (size_t)swapsize), swapsize, buf);
    if (l->channels > 1) {
        void *planar = dk_alloc_large(l->nbytes, 1);
        if (!planar) {
            st = dk_fail(DK_ERR_NOMEM, "%s: cannot allocate %zu bytes of voxel data", f->img,
                         l->nbytes);
            goto out;
        }
        deinterleave(planar, buf, l->nbytes / (size_t)l->channels, l->channels);
        dk_free(buf);
        buf = planar;
    }
    v->data = buf;
    buf = NULL;
out:
    dk_free(buf);
    return st;
}

/* Apply scl_slope/scl_inter to data read as `stored`; v->dtype already names the result
 * (float32, or float64 for float64 and 32/64-bit integers). Same-size types convert in
 * place. */
static dk_status apply_scaling(dk_volume *v, dk_dtype stored, double slope, double inter,
                               const char *path) {
    dk_volume src = *v;
    src.dtype = stored;
    int64_t n = dk_volume_numel(v);
    int same = dk_dtype_size(stored) == dk_dtype_size(v->dtype);
    void *dst = same ? v->data : dk_alloc_large((size_t)n, dk_dtype_size(v->dtype));
    if (!dst)
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate %lld scaled voxels", path, (long long)n);
    if (v->dtype == DK_F32) {
        float *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)(dk_volume_get(&src, i) * slope + inter);
    } else {
        double *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = dk_volume_get(&src, i) * slope + inter;
    }
    if (!same) {
        dk_free(v->data);
        v->data = dst;
    }
    return DK_OK;
}

dk_status dk_nifti_read(dk_volume *v, const char *path, int header_only) {
    memset(v, 0, sizeof *v);
    nifti_set_debug_level(0); /* the library never prints */
    dk_nifti_files f;
    header h;
    layout l;
    memset(&h, 0, sizeof h);
    memset(&l, 0, sizeof l);
    dk_status st = dk_nifti_files_of(&f, path);
    if (st == DK_OK) st = read_header_bytes(&h, f.hdr, f.gz);
    if (st == DK_OK) st = decode_header(&h, f.hdr);
    if (st == DK_OK) st = validate_header(&h, &l, f.hdr);
    if (st == DK_OK) st = describe(v, &h, &l, f.hdr);
    if (st == DK_OK && !header_only) st = load_data(v, &h, &l, &f);
    double slope, inter;
    if (st == DK_OK && !header_only && l.channels == 1 && scaling_of(&h, &slope, &inter))
        st = apply_scaling(v, l.dtype, slope, inter, f.img);
    if (st == DK_OK && !header_only) st = dk_volume_check_int64(v, f.img);
    if (st != DK_OK) dk_volume_free(v);
    return st;
}
