/* NIfTI reader and writer: bitwise round trips for every datatype, NIfTI-1 and -2, .nii,
 * .nii.gz and .hdr/.img, with an oblique anisotropic affine and every metadata field set;
 * 4-D, 5-D and colour volumes; scaling; then bad input, each its own test, asserting the
 * status and that the message names the file and the field; atomic output; and the guard
 * against nifticlib's sibling-file swapping. Bad headers are made by writing a valid file
 * and patching bytes at the offsets of the header structs in nifti1.h / nifti2.h. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <nifti/nifti1.h>
#include <nifti/nifti2.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dakd/volume.h"
#include "test_util.h"

/* ---------------------------------------------------------------- helpers */

static const char *tmp(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

/* Random bytes in every element: integer extremes, float NaN payloads and denormals all
 * have to come back bit for bit. */
static dk_volume make_volume(int64_t nx, int64_t ny, int64_t nz, int64_t nt, int64_t nc,
                             dk_dtype dt, uint64_t seed) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, nx, ny, nz, nt, nc, dt) == DK_OK);
    dk_rng r;
    dk_rng_seed(&r, seed);
    unsigned char *b = v.data;
    for (size_t i = 0; i < dk_volume_nbytes(&v); i++)
        b[i] = (unsigned char)dk_rng_u64(&r);
    if (dt == DK_U64 || dt == DK_I64) { /* within +-2^53, what readers accept (volume.h) */
        uint64_t *w = v.data;
        const int64_t half = (int64_t)1 << 53;
        for (int64_t i = 0; i < dk_volume_numel(&v); i++)
            w[i] = dt == DK_U64 ? w[i] >> 11 : (uint64_t)((int64_t)(w[i] >> 10) - half);
    }
    /* oblique: rotations about z then x, anisotropic spacing, an off-grid origin */
    const double a = 0.3, c = -0.45;
    const double rz[3][3] = {{cos(a), -sin(a), 0}, {sin(a), cos(a), 0}, {0, 0, 1}};
    const double rx[3][3] = {{1, 0, 0}, {0, cos(c), -sin(c)}, {0, sin(c), cos(c)}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 3; k++)
                s += rz[i][k] * rx[k][j];
            v.geom.direction[i][j] = s;
        }
    const double sp[3] = {0.7, 1.3, 2.5}, org[3] = {-10.25, 33.5, 7.125};
    memcpy(v.geom.spacing, sp, sizeof sp);
    memcpy(v.geom.origin, org, sizeof org);
    return v;
}

/* Every dk_nifti_meta field off its default, with values float32 holds exactly. */
static void set_meta(dk_nifti_meta *m) {
    m->qform_code = NIFTI_XFORM_ALIGNED_ANAT;
    m->sform_code = NIFTI_XFORM_MNI_152;
    m->intent_code = NIFTI_INTENT_TTEST;
    m->intent_p1 = 1.5, m->intent_p2 = -2.25, m->intent_p3 = 3.125;
    snprintf(m->intent_name, sizeof m->intent_name, "t-map");
    snprintf(m->descrip, sizeof m->descrip, "dakd round trip: every field");
    snprintf(m->aux_file, sizeof m->aux_file, "aux.txt");
    m->cal_min = -4.5, m->cal_max = 1024.0;
    m->toffset = 0.25;
    m->dt = 2.5, m->du = 0.75;
    m->xyz_units = NIFTI_UNITS_MICRON;
    m->time_units = NIFTI_UNITS_MSEC;
    m->freq_dim = 1, m->phase_dim = 2, m->slice_dim = 3;
    m->slice_code = NIFTI_SLICE_ALT_INC;
    m->slice_start = 1, m->slice_end = 2;
    m->slice_duration = 0.125;
}

static int meta_equal(const dk_nifti_meta *a, const dk_nifti_meta *b) {
    return a->qform_code == b->qform_code && a->sform_code == b->sform_code &&
           a->intent_code == b->intent_code && a->intent_p1 == b->intent_p1 &&
           a->intent_p2 == b->intent_p2 && a->intent_p3 == b->intent_p3 &&
           !strcmp(a->intent_name, b->intent_name) && !strcmp(a->descrip, b->descrip) &&
           !strcmp(a->aux_file, b->aux_file) && a->cal_min == b->cal_min &&
           a->cal_max == b->cal_max && a->toffset == b->toffset && a->dt == b->dt &&
           a->du == b->du && a->xyz_units == b->xyz_units && a->time_units == b->time_units &&
           a->freq_dim == b->freq_dim && a->phase_dim == b->phase_dim &&
           a->slice_dim == b->slice_dim && a->slice_code == b->slice_code &&
           a->slice_start == b->slice_start && a->slice_end == b->slice_end &&
           a->slice_duration == b->slice_duration;
}

static int same_shape(const dk_volume *a, const dk_volume *b) {
    return a->nx == b->nx && a->ny == b->ny && a->nz == b->nz && a->nt == b->nt && a->nc == b->nc &&
           a->dtype == b->dtype && a->color == b->color;
}

static int same_voxels(const dk_volume *a, const dk_volume *b) {
    return same_shape(a, b) && !memcmp(a->data, b->data, dk_volume_nbytes(a));
}

/* Affines equal bit for bit; with `as_float`, `b` is compared after rounding `a` to
 * float32 (what a NIfTI-1 sform holds). */
static int affine_equal(const dk_geometry *a, const dk_geometry *b, int as_float) {
    double ma[4][4], mb[4][4];
    dk_geometry_to_nifti_affine(a, ma);
    dk_geometry_to_nifti_affine(b, mb);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            double want = as_float ? (double)(float)ma[r][c] : ma[r][c];
            if (want != mb[r][c]) {
                static int shown;
                if (!shown++)
                    printf("\n    affine[%d][%d]: want %.17g, read back %.17g (further "
                           "mismatches not shown)\n",
                           r, c, want, mb[r][c]);
                return 0;
            }
        }
    return 1;
}

static int error_names(const char *a, const char *b) {
    const char *e = dk_last_error();
    int ok = strstr(e, a) != NULL && (!b || strstr(e, b) != NULL);
    if (!ok) printf("\n    message was: %s\n", e);
    return ok;
}

static void patch(const char *path, long offset, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, offset, SEEK_SET), 0);
    CU_ASSERT_EQUAL(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* Write a small valid int16 NIfTI-1 (or -2) file to `name` and return its path. */
static const char *valid_file(const char *name, int version) {
    const char *p = tmp(name);
    dk_volume v = make_volume(6, 5, 4, 1, 1, DK_I16, 7);
    dk_write_opts o = {version, 0};
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, p, &o), DK_OK);
    dk_volume_free(&v);
    return p;
}

/* Number of entries in `dir` whose name contains ".tmp" (left-over temporaries). */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------- round trips */

static const dk_dtype all_types[] = {DK_U8,  DK_I8,  DK_U16, DK_I16, DK_U32,
                                     DK_I32, DK_U64, DK_I64, DK_F32, DK_F64};
static const char *const all_exts[] = {".nii", ".nii.gz", ".hdr"};

/* write → read → write → read of `v`: voxels bitwise, metadata, and the affine exactly
 * (NIfTI-1: the float32 of what was written; the second trip changes nothing). */
static void round_trip(const dk_volume *v, const char *path, int version) {
    dk_write_opts o = {version, 1};
    dk_volume r1, r2;
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(v, path, &o), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&r1, path, 0), DK_OK);
    CU_ASSERT(same_voxels(v, &r1));
    CU_ASSERT(meta_equal(&v->meta, &r1.meta));
    CU_ASSERT_EQUAL(r1.meta.nifti_version, version);
    CU_ASSERT_EQUAL(r1.ndim, v->nz == 1 ? 2 : 3);
    CU_ASSERT(affine_equal(&v->geom, &r1.geom, version == 1));
    CU_ASSERT(dk_geometry_equal(&v->geom, &r1.geom, 1e-6));
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&r1, path, NULL), DK_OK); /* version as read */
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&r2, path, 0), DK_OK);
    CU_ASSERT_EQUAL(r2.meta.nifti_version, version);
    CU_ASSERT(same_voxels(&r1, &r2));
    CU_ASSERT(affine_equal(&r1.geom, &r2.geom, 0));
    CU_ASSERT(meta_equal(&r1.meta, &r2.meta));
    dk_volume_free(&r1);
    dk_volume_free(&r2);
}

static void test_round_trip_every_type(void) {
    int n = 0;
    for (size_t t = 0; t < sizeof all_types / sizeof all_types[0]; t++)
        for (int version = 1; version <= 2; version++)
            for (size_t e = 0; e < sizeof all_exts / sizeof all_exts[0]; e++) {
                char name[64];
                snprintf(name, sizeof name, "rt_%s_v%d%s", dk_dtype_name(all_types[t]), version,
                         all_exts[e]);
                dk_volume v = make_volume(7, 5, 3, 1, 1, all_types[t], 100 + t);
                set_meta(&v.meta);
                round_trip(&v, tmp(name), version);
                dk_volume_free(&v);
                n++;
            }
    CU_ASSERT_EQUAL(n, 60);
}

static void test_round_trip_4d_5d(void) {
    for (int version = 1; version <= 2; version++)
        for (size_t e = 0; e < sizeof all_exts / sizeof all_exts[0]; e++) {
            char name[64];
            snprintf(name, sizeof name, "rt_4d_v%d%s", version, all_exts[e]);
            dk_volume v = make_volume(4, 3, 5, 6, 1, DK_F32, 11);
            set_meta(&v.meta);
            round_trip(&v, tmp(name), version);
            dk_volume_free(&v);
            snprintf(name, sizeof name, "rt_5d_v%d%s", version, all_exts[e]);
            v = make_volume(4, 3, 2, 3, 2, DK_I16, 12);
            set_meta(&v.meta);
            round_trip(&v, tmp(name), version);
            dk_volume_free(&v);
        }
}

static void test_round_trip_2d(void) {
    dk_volume v = make_volume(9, 8, 1, 1, 1, DK_U8, 13);
    round_trip(&v, tmp("rt_2d.nii"), 1);
    dk_volume_free(&v);
}

static void test_round_trip_colour(void) {
    const dk_color colours[] = {DK_COLOR_RGB, DK_COLOR_RGBA};
    for (int k = 0; k < 2; k++)
        for (size_t e = 0; e < sizeof all_exts / sizeof all_exts[0]; e++) {
            char name[64];
            snprintf(name, sizeof name, "rt_colour%d%s", (int)colours[k], all_exts[e]);
            dk_volume v = make_volume(5, 4, 3, 1, (int64_t)colours[k], DK_U8, 14);
            v.color = colours[k];
            round_trip(&v, tmp(name), 1);
            dk_volume_free(&v);
        }
    /* the file is interleaved: voxel 1's (R, G, B) follow voxel 0's */
    dk_volume v = make_volume(2, 1, 1, 1, 3, DK_U8, 15);
    v.color = DK_COLOR_RGB;
    const unsigned char planar[6] = {10, 11, 20, 21, 30, 31};
    memcpy(v.data, planar, 6);
    const char *p = tmp("rgb_layout.nii");
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, p, NULL), DK_OK);
    unsigned char file[6];
    FILE *f = fopen(p, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, 352, SEEK_SET), 0);
    CU_ASSERT_EQUAL(fread(file, 1, 6, f), 6);
    fclose(f);
    const unsigned char want[6] = {10, 20, 30, 11, 21, 31};
    CU_ASSERT(!memcmp(file, want, 6));
    dk_volume_free(&v);
}

/* ---------------------------------------------------------------- header semantics */

static void test_header_only(void) {
    const char *p = valid_file("hdr_only.nii.gz", 1);
    dk_volume v, full;
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&v, p, 1), DK_OK);
    CU_ASSERT_PTR_NULL(v.data);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&full, p, 0), DK_OK);
    CU_ASSERT(same_shape(&v, &full));
    CU_ASSERT(affine_equal(&v.geom, &full.geom, 0));
    dk_volume_free(&v);
    dk_volume_free(&full);
}

static void test_scaling(void) {
    const char *p = valid_file("scaled.nii", 1);
    dk_volume raw, v, h;
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&raw, p, 0), DK_OK);
    const float slope = 2.0f, inter = -1.5f;
    patch(p, offsetof(nifti_1_header, scl_slope), &slope, 4);
    patch(p, offsetof(nifti_1_header, scl_inter), &inter, 4);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&v, p, 0), DK_OK);
    CU_ASSERT_EQUAL(v.dtype, DK_F32);
    int ok = 1;
    for (int64_t i = 0; i < dk_volume_numel(&v); i++)
        ok &= dk_volume_get(&v, i) == dk_volume_get(&raw, i) * 2.0 - 1.5;
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&h, p, 1), DK_OK);
    CU_ASSERT_EQUAL(h.dtype, DK_F32); /* the header-only read reports the loaded type */
    dk_volume_free(&h);
    dk_volume_free(&v);
    /* 32-bit integers scale into float64; slope NaN or 0 means "not scaled" */
    dk_volume i32 = make_volume(3, 3, 3, 1, 1, DK_I32, 16);
    p = tmp("scaled_i32.nii");
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&i32, p, NULL), DK_OK);
    patch(p, offsetof(nifti_1_header, scl_slope), &slope, 4);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&v, p, 0), DK_OK);
    CU_ASSERT_EQUAL(v.dtype, DK_F64);
    CU_ASSERT_EQUAL(dk_volume_get(&v, 5), dk_volume_get(&i32, 5) * 2.0);
    dk_volume_free(&v);
    const float nan = NAN;
    patch(p, offsetof(nifti_1_header, scl_slope), &nan, 4);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&v, p, 0), DK_OK);
    CU_ASSERT(same_voxels(&v, &i32));
    dk_volume_free(&v);
    dk_volume_free(&i32);
    dk_volume_free(&raw);
}

static void test_analyze_and_pixdim_geometry(void) {
    dk_volume v = make_volume(4, 4, 4, 1, 1, DK_U8, 17);
    const char *p = tmp("analyze.hdr");
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, p, NULL), DK_OK);
    const char nomagic[4] = {0, 0, 0, 0};
    patch(p, offsetof(nifti_1_header, magic), nomagic, 4);
    dk_volume r;
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&r, p, 0), DK_OK);
    CU_ASSERT_EQUAL(r.meta.nifti_version, 0);
    CU_ASSERT(same_voxels(&v, &r));
    /* Analyze: SPM's rule, x flipped, origin at the grid centre when no originator */
    double m[4][4];
    const float dx = 0.7f, dy = 1.3f;
    dk_geometry_to_nifti_affine(&r.geom, m);
    CU_ASSERT_EQUAL(m[0][0], -(double)dx);
    CU_ASSERT_EQUAL(m[1][1], (double)dy);
    CU_ASSERT_EQUAL(m[2][2], 2.5);
    CU_ASSERT_EQUAL(m[0][1], 0);
    CU_ASSERT_EQUAL(m[0][3], 1.5 * dx);
    CU_ASSERT_EQUAL(m[1][3], -1.5 * dy);
    CU_ASSERT_EQUAL(m[2][3], -1.5 * 2.5);
    CU_ASSERT_EQUAL(r.geom.direction[0][0], 1.0); /* RAS -x is LPS +x */
    dk_volume_free(&r);
    /* with SPM's originator (1-based voxel (2, 3, 1)) the origin moves there */
    const unsigned char origin[6] = {2, 0, 3, 0, 1, 0};
    patch(p, 253, origin, 6);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&r, p, 0), DK_OK);
    dk_geometry_to_nifti_affine(&r.geom, m);
    CU_ASSERT_EQUAL(m[0][3], 1.0 * dx);
    CU_ASSERT_EQUAL(m[1][3], -2.0 * dy);
    CU_ASSERT_EQUAL(m[2][3], 0);
    dk_volume_free(&r);
    /* NIfTI with qform_code = sform_code = 0: method 1, diag(pixdim) with origin 0 */
    const char *q = tmp("nocodes.nii");
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, q, NULL), DK_OK);
    const int16_t zero = 0;
    patch(q, offsetof(nifti_1_header, qform_code), &zero, 2);
    patch(q, offsetof(nifti_1_header, sform_code), &zero, 2);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&r, q, 0), DK_OK);
    dk_geometry_to_nifti_affine(&r.geom, m);
    CU_ASSERT_EQUAL(m[0][0], (double)dx);
    CU_ASSERT_EQUAL(m[1][1], (double)dy);
    CU_ASSERT_EQUAL(m[0][3], 0);
    CU_ASSERT_EQUAL(r.geom.direction[0][0], -1.0);
    dk_volume_free(&r);
    dk_volume_free(&v);
}

/* ---------------------------------------------------------------- bad input */

static void test_truncated_nii(void) {
    const char *p = valid_file("trunc.nii", 1);
    CU_ASSERT_EQUAL(truncate(p, 352 + 100), 0);
    dk_volume v;
    CU_ASSERT_EQUAL(dk_nifti_read(&v, p, 0), DK_ERR_IO);
    CU_ASSERT(error_names(p, "truncated"));
    CU_ASSERT(error_names("vox_offset", "expected 240 bytes"));
    CU_ASSERT_PTR_NULL(v.data);
    CU_ASSERT_EQUAL(truncate(p, 200), 0);
    CU_ASSERT_EQUAL(dk_nifti_read(&v, p, 1), DK_ERR_FORMAT);
    CU_ASSERT(error_names(p, "truncated header"));
}

static void test_truncated_nii_gz(void) {
    const char *p = valid_file("trunc_src.nii.gz", 1);
    const char *q = tmp("trunc.nii.gz");
    char out[256];
    /* keep the first 60% of the compressed stream */
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out,
                               "head -c $(( $(stat -c %%s '%s') * 6 / 10 )) "
                               "'%s' > '%s'",
                               p, p, q),
                    0);
    dk_volume v;
    dk_status st = dk_nifti_read(&v, q, 0);
    CU_ASSERT(st == DK_ERR_IO || st == DK_ERR_FORMAT);
    CU_ASSERT(error_names(q, "voxel data"));
    CU_ASSERT_PTR_NULL(v.data);
}

/* Patch `n` bytes at `offset` of `p`, then expect a read (header-only or full) to fail with
 * `st` and a message naming the file and `field`. */
static void expect_patched(const char *p, size_t offset, const void *bytes, size_t n,
                           int header_only, dk_status st, const char *field) {
    patch(p, (long)offset, bytes, n);
    dk_volume v;
    CU_ASSERT_EQUAL(dk_nifti_read(&v, p, header_only), st);
    CU_ASSERT(error_names(p, field));
    CU_ASSERT_PTR_NULL(v.data);
}

#define DIM1(i) (offsetof(nifti_1_header, dim) + (size_t)(i) * sizeof(short))

static void test_dim_negative(void) {
    const short d = -5;
    expect_patched(valid_file("dim_neg.nii", 1), DIM1(2), &d, 2, 1, DK_ERR_FORMAT, "dim[2] = -5");
}

static void test_dim_zero(void) {
    const char *p = valid_file("dim_zero.nii", 1);
    const short zero = 0, nine = 9;
    expect_patched(p, DIM1(3), &zero, 2, 0, DK_ERR_FORMAT, "dim[3] = 0");
    expect_patched(p, DIM1(0), &nine, 2, 0, DK_ERR_FORMAT, "dim[0] = 9");
}

static void test_dim_overflow(void) {
    const int64_t big[3] = {(int64_t)1 << 30, (int64_t)1 << 30, (int64_t)1 << 30};
    const char *p = valid_file("dim_overflow.nii", 2);
    expect_patched(p, offsetof(nifti_2_header, dim) + sizeof(int64_t), big, sizeof big, 0,
                   DK_ERR_FORMAT, "dim[1..3]");
    CU_ASSERT(error_names("overflows", NULL));
}

static void test_dims_beyond_five(void) {
    const short d[8] = {6, 6, 5, 4, 1, 1, 2, 1};
    expect_patched(valid_file("dim6.nii", 1), DIM1(0), d, sizeof d, 0, DK_ERR_UNSUPPORTED,
                   "dim[6] = 2");
}

static void test_vox_offset_past_eof(void) {
    const char *p = valid_file("vox_eof.nii", 1);
    const float past = 1.0e6f, inside = 100.0f;
    const size_t at = offsetof(nifti_1_header, vox_offset);
    expect_patched(p, at, &past, 4, 0, DK_ERR_FORMAT, "vox_offset = 1000000");
    CU_ASSERT(error_names("past the end", NULL));
    expect_patched(p, at, &inside, 4, 0, DK_ERR_FORMAT, "vox_offset = 100");
}

static void test_unknown_datatype(void) {
    const char *p = valid_file("dtype.nii", 1);
    const short unknown = 999, complex = DT_COMPLEX64, f128 = DT_FLOAT128;
    const size_t at = offsetof(nifti_1_header, datatype);
    expect_patched(p, at, &unknown, 2, 1, DK_ERR_FORMAT, "datatype = 999");
    expect_patched(p, at, &complex, 2, 1, DK_ERR_UNSUPPORTED, "datatype = 32");
    expect_patched(p, at, &f128, 2, 1, DK_ERR_UNSUPPORTED, "datatype = 1536");
}

static void test_bad_sizeof_hdr_and_magic(void) {
    const int bad = 1234;
    expect_patched(valid_file("sizeof.nii", 1), offsetof(nifti_1_header, sizeof_hdr), &bad, 4, 1,
                   DK_ERR_FORMAT, "sizeof_hdr = 1234");
    expect_patched(valid_file("magic.nii", 1), offsetof(nifti_1_header, magic), "ni1", 4, 0,
                   DK_ERR_FORMAT, "magic");
}

static void test_missing_img(void) {
    const char *h = valid_file("pair_noimg.hdr", 1);
    const char *img = tmp("pair_noimg.img");
    CU_ASSERT_EQUAL(unlink(img), 0);
    dk_volume v;
    CU_ASSERT_EQUAL(dk_nifti_read(&v, h, 1), DK_OK);
    CU_ASSERT_EQUAL(v.nx, 6);
    CU_ASSERT_EQUAL(v.dtype, DK_I16);
    dk_volume_free(&v);
    CU_ASSERT_EQUAL(dk_nifti_read(&v, h, 0), DK_ERR_IO);
    CU_ASSERT(error_names(img, "cannot open"));
    /* named by its .img, the pair still needs its own header */
    CU_ASSERT_EQUAL(dk_nifti_read(&v, img, 0), DK_ERR_IO);
    CU_ASSERT(error_names(img, NULL));
}

static void test_missing_file_and_bad_name(void) {
    dk_volume v;
    const char *p = tmp("does_not_exist.nii.gz");
    CU_ASSERT_EQUAL(dk_nifti_read(&v, p, 0), DK_ERR_IO);
    CU_ASSERT(error_names(p, "cannot open"));
    CU_ASSERT_EQUAL(dk_nifti_read(&v, tmp("x.mha"), 0), DK_ERR_ARG);
    CU_ASSERT(error_names("x.mha", ".nii"));
}

/* ---------------------------------------------------------------- writing */

static void test_unwritable_path(void) {
    dk_volume v = make_volume(4, 4, 4, 1, 1, DK_F32, 18);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp("unwritable"));
    /* a regular file used as a directory */
    const char *file = tmp("plain_file");
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    char p[4200];
    snprintf(p, sizeof p, "%s/out.nii.gz", file);
    CU_ASSERT_EQUAL(dk_nifti_write(&v, p, NULL), DK_ERR_IO);
    CU_ASSERT(error_names(p, NULL));
    CU_ASSERT_EQUAL(dk_nifti_write(&v, "/proc/dakd_test/out.nii", NULL), DK_ERR_IO);
    CU_ASSERT(error_names("/proc/dakd_test/out.nii", NULL));
    /* the rename fails after the data are written (the target is a directory): the
     * temporary must be gone */
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    snprintf(p, sizeof p, "%s/out.nii", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
    CU_ASSERT_EQUAL(dk_nifti_write(&v, p, NULL), DK_ERR_IO);
    CU_ASSERT(error_names(p, NULL));
    /* a pair whose .img is blocked leaves neither file nor temporary */
    snprintf(p, sizeof p, "%s/pair.img", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/pair.hdr", dir);
    CU_ASSERT_EQUAL(dk_nifti_write(&v, p, NULL), DK_ERR_IO);
    CU_ASSERT(!dk_test_exists(p));
    CU_ASSERT_EQUAL(count_temps(dir), 0);
    dk_volume_free(&v);
}

/* A write that fails part-way (file size limit) leaves nothing behind. */
static void test_failed_write_leaves_nothing(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp("fsize"));
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    dk_volume v = make_volume(64, 64, 64, 1, 1, DK_F32, 19); /* 1 MiB of noise */
    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 100000;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const char *names[] = {"big.nii", "big.nii.gz", "big.hdr", "big.img.gz"};
    dk_status st[4];
    for (int i = 0; i < 4; i++)
        st[i] = dk_nifti_write(&v, dk_test_path(dir, names[i]), NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(st[i], DK_ERR_IO);
        CU_ASSERT(!dk_test_exists(dk_test_path(dir, names[i])));
    }
    CU_ASSERT(!dk_test_exists(dk_test_path(dir, "big.img")));
    CU_ASSERT(!dk_test_exists(dk_test_path(dir, "big.hdr.gz")));
    CU_ASSERT_EQUAL(count_temps(dir), 0);
    dk_volume_free(&v);
}

static void test_write_rejects(void) {
    dk_volume v = make_volume(40000, 1, 1, 1, 1, DK_U8, 20);
    const char *p = tmp("too_wide.nii");
    CU_ASSERT_EQUAL(dk_nifti_write(&v, p, NULL), DK_ERR_UNSUPPORTED);
    CU_ASSERT(error_names(p, "dim[1] = 40000"));
    dk_write_opts o = {2, 0};
    CU_ASSERT_EQUAL(dk_nifti_write(&v, p, &o), DK_OK); /* NIfTI-2 holds it */
    dk_volume r;
    CU_ASSERT_EQUAL(dk_nifti_read(&r, p, 0), DK_OK);
    CU_ASSERT(same_voxels(&v, &r));
    dk_volume_free(&r);
    o.nifti_version = 3;
    CU_ASSERT_EQUAL(dk_nifti_write(&v, p, &o), DK_ERR_ARG);
    CU_ASSERT(error_names(p, "nifti_version = 3"));
    dk_volume_free(&v);
}

/* ---------------------------------------------------------------- sibling guard */

static void expect_own_data(const char *a, const char *b) {
    dk_volume va = make_volume(5, 4, 3, 1, 1, DK_I16, 21);
    dk_volume vb = make_volume(6, 4, 3, 1, 1, DK_I16, 22);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&va, a, NULL), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&vb, b, NULL), DK_OK);
    dk_volume ra, rb;
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&ra, a, 0), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&rb, b, 0), DK_OK);
    CU_ASSERT(same_voxels(&va, &ra));
    CU_ASSERT(same_voxels(&vb, &rb));
    dk_volume_free(&ra);
    dk_volume_free(&rb);
    dk_volume_free(&va);
    dk_volume_free(&vb);
}

static void test_sibling_guard(void) {
    expect_own_data(tmp("sib.nii"), tmp("sib.nii.gz"));
    expect_own_data(tmp("sib2.nii.gz"), tmp("sib2.nii")); /* either written first */
    expect_own_data(tmp("sibp.hdr"), tmp("sibp.hdr.gz"));
    expect_own_data(tmp("sibq.nii"), tmp("sibq.hdr"));
}

/* Every failure above goes through nifticlib; none of it may reach stderr. */
static void test_library_prints_nothing(void) {
    char log[4096];
    snprintf(log, sizeof log, "%s", tmp("stderr.log"));
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    test_dim_negative();
    test_dim_zero();
    test_unknown_datatype();
    test_bad_sizeof_hdr_and_magic();
    test_vox_offset_past_eof();
    test_truncated_nii();
    test_missing_img();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(log, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite rt = CU_add_suite("nifti round trips", NULL, NULL);
    CU_add_test(rt, "every datatype x NIfTI-1/2 x .nii/.nii.gz/.hdr", test_round_trip_every_type);
    CU_add_test(rt, "4-D and 5-D volumes", test_round_trip_4d_5d);
    CU_add_test(rt, "2-D volume", test_round_trip_2d);
    CU_add_test(rt, "RGB24 and RGBA32", test_round_trip_colour);
    CU_add_test(rt, "header-only read", test_header_only);
    CU_add_test(rt, "scl_slope / scl_inter", test_scaling);
    CU_add_test(rt, "Analyze header, pixdim geometry", test_analyze_and_pixdim_geometry);
    CU_pSuite bad = CU_add_suite("nifti bad input", NULL, NULL);
    CU_add_test(bad, "truncated .nii", test_truncated_nii);
    CU_add_test(bad, "truncated .nii.gz", test_truncated_nii_gz);
    CU_add_test(bad, "negative dim", test_dim_negative);
    CU_add_test(bad, "zero dim, bad dim[0]", test_dim_zero);
    CU_add_test(bad, "dim product overflow", test_dim_overflow);
    CU_add_test(bad, "dims beyond 5", test_dims_beyond_five);
    CU_add_test(bad, "vox_offset past EOF / inside header", test_vox_offset_past_eof);
    CU_add_test(bad, "unknown and unsupported datatypes", test_unknown_datatype);
    CU_add_test(bad, "bad sizeof_hdr and magic", test_bad_sizeof_hdr_and_magic);
    CU_add_test(bad, "missing .img", test_missing_img);
    CU_add_test(bad, "missing file, unknown extension", test_missing_file_and_bad_name);
    CU_add_test(bad, "nifticlib prints nothing", test_library_prints_nothing);
    CU_pSuite wr = CU_add_suite("nifti writing", NULL, NULL);
    CU_add_test(wr, "unwritable path, no partial file", test_unwritable_path);
    CU_add_test(wr, "write failing part-way leaves nothing", test_failed_write_leaves_nothing);
    CU_add_test(wr, "NIfTI-1 limits, bad options", test_write_rejects);
    CU_add_test(wr, "x.nii vs x.nii.gz: each reads its own data", test_sibling_guard);
    return dk_test_run();
}
