/* Compressed NIfTI beyond what a gzip writer makes by default: several gzip members (split
 * inside the header, inside the voxels, empty members, bgzip's 64 KiB blocks), trailing
 * bytes after the last member, more uncompressed data than the header needs, a .nii.gz
 * that is not compressed at all, a .hdr.gz/.img.gz pair; then damage: a wrong ISIZE, a
 * wrong CRC, a flipped byte, cut files. Each well-formed variant must read to the same
 * volume as the plain .nii it was made from; each damaged one must fail with the status and
 * the message the streaming (zlib) reader gives, naming the file. The variants are made
 * with zlib's gzip writer, member by member. Beside each read, the whole-buffer inflate is
 * asked directly whether it took the file or left it to zlib's stream (lib/io/nifti_gz.c):
 * it takes every well-formed file whose members end where the data asked for ends or
 * later, and leaves the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dakd/volume.h"
#include "nifti_internal.h"
#include "test_util.h"

static const char *tmp(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

static dk_volume src;      /* the volume every variant holds */
static unsigned char *raw; /* the bytes of src.nii */
static size_t raw_n;

/* The whole file (NULL when it cannot be read; no CUnit assertion, setup uses it). */
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) >= 0) {
        *n = (size_t)ftell(f);
        rewind(f);
        b = malloc(*n + 1);
        if (b && fread(b, 1, *n, f) != *n) {
            free(b);
            b = NULL;
        }
    }
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL && fwrite(b, 1, n, f) == n && fclose(f) == 0);
}

/* Gzip b[0..n) into `path` as one member per piece: the pieces end at cuts[0..ncut) and n
 * (a cut equal to the one before makes an empty member). */
static void gzip_members(const char *path, const unsigned char *b, size_t n, const size_t *cuts,
                         int ncut) {
    size_t at = 0;
    for (int i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cuts[i] : n;
        CU_ASSERT_FATAL(end >= at && end <= n);
        gzFile g = gzopen(path, i == 0 ? "wb6" : "ab6");
        CU_ASSERT_FATAL(g != NULL);
        CU_ASSERT_FATAL(end == at || gzwrite(g, b + at, (unsigned)(end - at)) == (int)(end - at));
        CU_ASSERT_FATAL(gzclose(g) == Z_OK);
        at = end;
    }
}

static void append(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "ab");
    CU_ASSERT_FATAL(f != NULL && fwrite(b, 1, n, f) == n && fclose(f) == 0);
}

/* `path` reads to src, voxel for voxel. */
static void expect_src(const char *path) {
    dk_volume v;
    dk_status st = dk_volume_read(&v, path);
    CU_ASSERT_EQUAL(st, DK_OK);
    if (st != DK_OK) {
        fprintf(stderr, "  %s\n", dk_last_error());
        return;
    }
    CU_ASSERT(v.nx == src.nx && v.ny == src.ny && v.nz == src.nz && v.dtype == src.dtype);
    CU_ASSERT(memcmp(v.data, src.data, dk_volume_nbytes(&src)) == 0);
    dk_volume_free(&v);
}

/* The whole-buffer inflate of `path`'s first `n` bytes takes the file (1, and then gives
 * `want`'s bytes) or leaves it to the stream (0). */
static void expect_whole(const char *path, const unsigned char *want, size_t n, int took) {
    unsigned char *out = malloc(n);
    CU_ASSERT_FATAL(out != NULL);
    int done = dk_nifti_gz_inflate(out, n, path);
    CU_ASSERT_EQUAL(done, took);
    if (done) CU_ASSERT(memcmp(out, want, n) == 0);
    free(out);
}

/* Reading `path` fails with `st` and a message naming the file and `what`. */
static void expect_error(const char *path, dk_status st, const char *what) {
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, path), st);
    const char *msg = dk_last_error();
    CU_ASSERT(strstr(msg, path) != NULL);
    CU_ASSERT(strstr(msg, what) != NULL);
    if (!strstr(msg, path) || !strstr(msg, what)) fprintf(stderr, "  got: %s\n", msg);
    CU_ASSERT_PTR_NULL(v.data);
}

static int setup(void) {
    if (dk_volume_alloc(&src, 64, 64, 16, 1, 1, DK_F32) != DK_OK) return 1;
    dk_rng r;
    dk_rng_seed(&r, 18);
    float *d = src.data;
    for (int64_t i = 0; i < dk_volume_numel(&src); i++) /* smooth plus noise: some matches */
        d[i] = (float)(i % 64) + (float)dk_rng_normal(&r);
    if (dk_nifti_write(&src, tmp("src.nii"), NULL) != DK_OK) return 1;
    if (dk_nifti_write(&src, tmp("pair.hdr"), NULL) != DK_OK) return 1;
    raw = read_all(tmp("src.nii"), &raw_n);
    return raw == NULL;
}

static int teardown(void) {
    dk_volume_free(&src);
    free(raw);
    raw = NULL;
    return 0;
}

/* ---------------------------------------------------------------- well-formed */

static void test_multi_member(void) {
    const size_t in_header[] = {100};
    const size_t in_voxels[] = {400};
    const size_t with_empty[] = {0, 352, 352, 70000, 200000};
    gzip_members(tmp("m1.nii.gz"), raw, raw_n, in_header, 1);
    expect_src(tmp("m1.nii.gz"));
    expect_whole(tmp("m1.nii.gz"), raw, raw_n, 1);
    gzip_members(tmp("m2.nii.gz"), raw, raw_n, in_voxels, 1);
    expect_src(tmp("m2.nii.gz"));
    expect_whole(tmp("m2.nii.gz"), raw, raw_n, 1);
    gzip_members(tmp("m3.nii.gz"), raw, raw_n, with_empty, 5);
    expect_src(tmp("m3.nii.gz"));
    expect_whole(tmp("m3.nii.gz"), raw, raw_n, 1);
    /* bgzip's layout: blocks of 65280 uncompressed bytes, then an empty member */
    size_t cuts[64];
    int n = 0;
    for (size_t at = 65280; at < raw_n && n < 63; at += 65280)
        cuts[n++] = at;
    cuts[n] = raw_n;
    gzip_members(tmp("bgzf.nii.gz"), raw, raw_n, cuts, n + 1);
    expect_src(tmp("bgzf.nii.gz"));
    expect_whole(tmp("bgzf.nii.gz"), raw, raw_n, 1);
}

static void test_trailing_bytes(void) {
    const size_t none[1] = {0};
    static const unsigned char zeros[512];
    gzip_members(tmp("garbage.nii.gz"), raw, raw_n, none, 0);
    append(tmp("garbage.nii.gz"), "not gzip", 8);
    expect_src(tmp("garbage.nii.gz"));
    expect_whole(tmp("garbage.nii.gz"), raw, raw_n, 1);
    gzip_members(tmp("zeros.nii.gz"), raw, raw_n, none, 0);
    append(tmp("zeros.nii.gz"), zeros, sizeof zeros);
    expect_src(tmp("zeros.nii.gz"));
    expect_whole(tmp("zeros.nii.gz"), raw, raw_n, 1);
}

/* More uncompressed bytes than the header needs: the excess is ignored. */
static void test_excess_data(void) {
    const size_t none[1] = {0}, split[1] = {1000};
    unsigned char *more = malloc(raw_n + 5000);
    CU_ASSERT_FATAL(more != NULL);
    memcpy(more, raw, raw_n);
    memset(more + raw_n, 0x5a, 5000);
    gzip_members(tmp("excess.nii.gz"), more, raw_n + 5000, none, 0);
    expect_src(tmp("excess.nii.gz"));
    expect_whole(tmp("excess.nii.gz"), raw, raw_n, 0); /* libdeflate cannot stop early */
    gzip_members(tmp("excess2.nii.gz"), more, raw_n + 5000, split, 1);
    expect_src(tmp("excess2.nii.gz"));
    expect_whole(tmp("excess2.nii.gz"), raw, raw_n, 0);
    free(more);
}

/* A .nii.gz holding the plain bytes reads as they are (zlib's transparent mode). */
static void test_not_compressed(void) {
    write_all(tmp("plain.nii.gz"), raw, raw_n);
    expect_src(tmp("plain.nii.gz"));
    expect_whole(tmp("plain.nii.gz"), raw, raw_n, 0);
}

static void test_pair(void) {
    size_t hn, in;
    unsigned char *h = read_all(tmp("pair.hdr"), &hn), *img = read_all(tmp("pair.img"), &in);
    CU_ASSERT_FATAL(h != NULL && img != NULL);
    const size_t none[1] = {0}, split[2] = {12345, 100000};
    gzip_members(tmp("pair.hdr.gz"), h, hn, none, 0);
    gzip_members(tmp("pair.img.gz"), img, in, split, 2);
    expect_src(tmp("pair.hdr.gz"));
    expect_src(tmp("pair.img.gz"));
    expect_whole(tmp("pair.img.gz"), img, in, 1);
    free(h);
    free(img);
}

/* ---------------------------------------------------------------- damaged */

/* A copy of a one-member .nii.gz of src with byte `at` (counted from the end when < 0)
 * XOR-ed with `x`, or cut to `keep` bytes when keep > 0. */
static const char *damaged(const char *name, long at, unsigned char x, size_t keep) {
    const size_t none[1] = {0};
    const char *p = tmp(name);
    gzip_members(p, raw, raw_n, none, 0);
    size_t n;
    unsigned char *b = read_all(p, &n);
    CU_ASSERT_FATAL(b != NULL);
    if (x) b[at < 0 ? (long)n + at : at] ^= x;
    write_all(p, b, keep ? keep : n);
    free(b);
    return p;
}

static void test_bad_isize_and_crc(void) {
    const char *p = damaged("isize.nii.gz", -1, 0x01, 0); /* ISIZE's top byte */
    expect_error(p, DK_ERR_IO, "read error in voxel data");
    expect_whole(p, raw, raw_n, 0);
    p = damaged("crc.nii.gz", -8, 0x40, 0); /* CRC32's first byte */
    expect_error(p, DK_ERR_IO, "read error in voxel data");
    expect_whole(p, raw, raw_n, 0);
}

static void test_flipped_byte(void) {
    /* well inside the deflate data of the voxels: the stream or its CRC fails */
    const char *p = damaged("flip.nii.gz", 20000, 0xff, 0);
    expect_error(p, DK_ERR_IO, "voxel data");
    expect_whole(p, raw, raw_n, 0);
}

static void test_cut(void) {
    size_t n;
    const size_t none[1] = {0}, split[1] = {130000};
    gzip_members(tmp("whole.nii.gz"), raw, raw_n, none, 0);
    unsigned char *b = read_all(tmp("whole.nii.gz"), &n);
    CU_ASSERT_FATAL(b != NULL);
    free(b);
    const char *p = damaged("cut_half.nii.gz", 0, 0, n / 2);
    expect_error(p, DK_ERR_IO, "truncated voxel data");
    /* the voxels complete, ISIZE cut off: the streaming reader stops at the last voxel
     * byte and never looks at ISIZE */
    p = damaged("cut_isize.nii.gz", 0, 0, n - 4);
    expect_src(p);
    expect_whole(p, raw, raw_n, 0);
    /* a second member cut short */
    gzip_members(tmp("cut2.nii.gz"), raw, raw_n, split, 1);
    b = read_all(tmp("cut2.nii.gz"), &n);
    CU_ASSERT_FATAL(b != NULL);
    write_all(tmp("cut2.nii.gz"), b, n - 1000);
    free(b);
    expect_error(tmp("cut2.nii.gz"), DK_ERR_IO, "truncated voxel data");
    expect_whole(tmp("cut2.nii.gz"), raw, raw_n, 0);
    /* the bytes asked for end with the first member: the cut one is never read */
    expect_whole(tmp("cut2.nii.gz"), raw, split[0], 1);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite ok = CU_add_suite("nifti gzip: well-formed variants", setup, teardown);
    CU_add_test(ok, "several members (header split, empty, bgzip blocks)", test_multi_member);
    CU_add_test(ok, "bytes after the last member", test_trailing_bytes);
    CU_add_test(ok, "more data than the header needs", test_excess_data);
    CU_add_test(ok, ".nii.gz not compressed", test_not_compressed);
    CU_add_test(ok, ".hdr.gz/.img.gz pair, members", test_pair);
    CU_pSuite bad = CU_add_suite("nifti gzip: damaged", setup, teardown);
    CU_add_test(bad, "ISIZE or CRC wrong", test_bad_isize_and_crc);
    CU_add_test(bad, "a flipped byte", test_flipped_byte);
    CU_add_test(bad, "cut files", test_cut);
    return dk_test_run();
}
