/* What a file may make dakd allocate (dakd/volume.h): the volume size limit and
 * DAKD_MAX_VOLUME_BYTES; hostile headers (a few bytes claiming gigabytes) in PNG, NIfTI
 * (.nii, .hdr/.img, .nii.gz), MetaImage and NRRD (data in the header's file or in a
 * detached one), each read in a child whose address space may
 * grow by 256 MB only, so a reader that allocates what the header claims fails the status
 * check (DK_ERR_NOMEM) instead of passing; and 64-bit integer voxels beyond 2^53, refused
 * by the readers and counted exactly by the statistics. */
#include <nifti/nifti1.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dakd/volume.h"
#include "test_util.h"

static const char *tmp(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

enum { BOUND = 256 << 20 }; /* what a hostile read may add to the address space */

static dk_status read_and_free(void *path) {
    dk_volume v;
    dk_status st = dk_volume_read(&v, path);
    dk_volume_free(&v);
    return st;
}

/* Read `path` in a bounded child; expect status `want`, a message naming the file and each
 * non-NULL fragment, within 5 s (the reads this replaces took 10 to 100 s). */
static void expect_bounded(const char *path, dk_status want, const char *a, const char *b) {
    char msg[2048];
    double t0 = dk_time_now();
    int st = dk_test_run_bounded(msg, sizeof msg, BOUND, read_and_free, (void *)path);
    double dt = dk_time_now() - t0;
    int ok = st == (int)want && strstr(msg, path) && (!a || strstr(msg, a)) &&
             (!b || strstr(msg, b)) && dt < 5.0;
    if (!ok)
        printf("\n    %s: status %d (want %d) after %.2f s: \"%s\"\n", path, st, want, dt, msg);
    CU_ASSERT(ok);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* ---------------------------------------------------------------- the limit */

static void test_limit_setting(void) {
    uint64_t b = 0;
    unsetenv("DAKD_MAX_VOLUME_BYTES");
    CU_ASSERT_EQUAL(dk_volume_limit(&b), DK_OK);
    CU_ASSERT_EQUAL(b, (uint64_t)8 << 30);
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {{"1024", 1024},         {"16G", 16ull << 30}, {"16GiB", 16ull << 30},
              {"512m", 512ull << 20}, {"2TB", 2ull << 40},  {"7K", 7168},
              {"100B", 100}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv("DAKD_MAX_VOLUME_BYTES", ok[i].text, 1);
        CU_ASSERT_EQUAL(dk_volume_limit(&b), DK_OK);
        CU_ASSERT_EQUAL(b, ok[i].bytes);
    }
    static const char *const bad[] = {"abc",  "0",    "-5",           "16X",
                                      "16 G", "1.5G", "99999999999T", "184467440737095516160"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("DAKD_MAX_VOLUME_BYTES", bad[i], 1);
        CU_ASSERT_EQUAL(dk_volume_limit(&b), DK_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "DAKD_MAX_VOLUME_BYTES"));
        CU_ASSERT_EQUAL(b, DK_VOLUME_LIMIT_DEFAULT);
    }
    /* the setter wins over the environment; 0 gives the environment back */
    dk_volume_set_limit(4096);
    CU_ASSERT_EQUAL(dk_volume_limit(&b), DK_OK);
    CU_ASSERT_EQUAL(b, 4096);
    dk_volume_set_limit(0);
    setenv("DAKD_MAX_VOLUME_BYTES", "1M", 1);
    CU_ASSERT_EQUAL(dk_volume_limit(&b), DK_OK);
    CU_ASSERT_EQUAL(b, 1u << 20);
    unsetenv("DAKD_MAX_VOLUME_BYTES");
}

static void test_check_size(void) {
    const int64_t fits[5] = {1024, 1024, 1024, 2, 1}, over[5] = {1024, 1024, 1024, 2, 2};
    CU_ASSERT_EQUAL(dk_volume_check_size("a.nii", "dim[1..5]", fits, DK_F32), DK_OK);
    CU_ASSERT_EQUAL(dk_volume_check_size("a.nii", "dim[1..5]", over, DK_F32), DK_ERR_UNSUPPORTED);
    const char *e = dk_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "a.nii: dim[1..5] give 1024 x 1024 x 1024 x 2 x 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "17179869184 bytes, over the volume size limit of "
                                     "8589934592 bytes (DAKD_MAX_VOLUME_BYTES raises it)"));
    const int64_t huge[5] = {INT64_MAX, INT64_MAX, 1, 1, 1}, zero[5] = {4, 0, 1, 1, 1};
    CU_ASSERT_EQUAL(dk_volume_check_size("a.nii", "dim", huge, DK_U8), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "overflows"));
    CU_ASSERT_EQUAL(dk_volume_check_size("a.nii", "dim", zero, DK_U8), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "extent 2 is 0"));
    /* deflate: 1032:1 at most */
    CU_ASSERT(dk_inflate_bound(100) >= 103200);
    CU_ASSERT(dk_inflate_bound(100) < 200000);
    CU_ASSERT_EQUAL(dk_inflate_bound(UINT64_MAX / 2), UINT64_MAX);
}

/* ---------------------------------------------------------------- PNG */

static void put_be32(unsigned char *p, uint32_t x) {
    p[0] = (unsigned char)(x >> 24), p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8), p[3] = (unsigned char)x;
}

/* Append chunk `type` with `n` data bytes and its CRC at buf + *len. */
static void chunk(unsigned char *buf, size_t *len, const char *type, const void *data, uint32_t n) {
    unsigned char *p = buf + *len;
    put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    put_be32(p + 8 + n, (uint32_t)crc32(0, p + 4, 4 + n));
    *len += 12 + n;
}

/* A 128-byte PNG by hand: IHDR claiming w x h, a one-entry PLTE for palette images, an
 * IDAT of 72 deflated zero bytes (an 8 x 8 gray image with its filter bytes), a tEXt chunk
 * filling the file to 128 bytes, IEND. */
static const char *hostile_png(const char *name, uint32_t w, uint32_t h, int depth, int type) {
    unsigned char buf[256], ihdr[13], z[96], raw[72] = {0};
    size_t len = 8;
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (unsigned char)depth, ihdr[9] = (unsigned char)type;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    chunk(buf, &len, "IHDR", ihdr, 13);
    if (type == 3) chunk(buf, &len, "PLTE", "\0\0\0", 3);
    uLongf zn = sizeof z;
    CU_ASSERT_EQUAL_FATAL(compress(z, &zn, raw, sizeof raw), Z_OK);
    chunk(buf, &len, "IDAT", z, (uint32_t)zn);
    char text[128];
    const uint32_t tn = (uint32_t)(128 - len - 12 - 12);
    memset(text, 'x', sizeof text);
    memcpy(text, "Comment", 8); /* keyword, NUL, then the text */
    chunk(buf, &len, "tEXt", text, tn);
    chunk(buf, &len, "IEND", NULL, 0);
    CU_ASSERT_EQUAL(len, 128);
    const char *p = tmp(name);
    write_bytes(p, buf, len);
    return p;
}

static void test_png_hostile(void) {
    /* 1.6 GB of 8-bit gray, under the limit: more than 128 bytes can inflate to */
    expect_bounded(hostile_png("gray.png", 40000, 40000, 8, 0), DK_ERR_FORMAT,
                   "IHDR width x height = 40000 x 40000", "more than the 128-byte file");
    /* 12.8 GB of 16-bit RGBA: over the limit */
    expect_bounded(hostile_png("rgba16.png", 40000, 40000, 16, 6), DK_ERR_UNSUPPORTED,
                   "IHDR width x height", "over the volume size limit");
    /* a palette image counts its expanded RGB channels */
    expect_bounded(hostile_png("palette.png", 1u << 20, 1u << 20, 8, 3), DK_ERR_UNSUPPORTED,
                   "x 3 (x y z t c) uint8", NULL);
    /* a small image in a 128-byte file passes the checks and reads (as a truncated one) */
    dk_volume v;
    const char *p = hostile_png("small.png", 8, 8, 8, 0);
    CU_ASSERT_EQUAL(dk_volume_read(&v, p), DK_OK);
    CU_ASSERT_EQUAL(v.nx, 8);
    dk_volume_free(&v);
    /* and a lowered limit refuses it */
    dk_volume_set_limit(63);
    CU_ASSERT_EQUAL(dk_volume_read(&v, p), DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "limit of 63 bytes"));
    dk_volume_set_limit(0);
}

/* ---------------------------------------------------------------- NIfTI */

/* A valid 8 x 8 x 8 int16 file at `name`, then dim[1..3] patched to `d` (NIfTI-1 shorts). */
static const char *patched_nifti(const char *name, const char *hdr_name, short d1, short d2,
                                 short d3) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 8, 8, 8, 1, 1, DK_I16) == DK_OK);
    const char *p = tmp(name);
    CU_ASSERT_FATAL(dk_nifti_write(&v, p, NULL) == DK_OK);
    dk_volume_free(&v);
    const char *h = hdr_name ? tmp(hdr_name) : p;
    FILE *f = fopen(h, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const short d[3] = {d1, d2, d3};
    fseek(f, (long)(offsetof(nifti_1_header, dim) + sizeof(short)), SEEK_SET);
    CU_ASSERT_EQUAL(fwrite(d, sizeof d[0], 3, f), 3);
    fclose(f);
    return p;
}

/* gzip `src` into `dst` (zlib's gzwrite, as a .nii.gz is made). */
static void gzip_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    gzFile out = gzopen(dst, "wb");
    CU_ASSERT_FATAL(in && out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        CU_ASSERT_EQUAL(gzwrite(out, buf, (unsigned)n), (int)n);
    fclose(in);
    gzclose(out);
}

static void test_nifti_hostile(void) {
    /* 1 GiB claimed (under the limit) by a 1.4 kB file: refused before any allocation */
    expect_bounded(patched_nifti("claims1g.nii", NULL, 1024, 1024, 512), DK_ERR_IO,
                   "truncated voxel data: expected 1073741824 bytes", NULL);
    /* the same through a .hdr/.img pair: the .img is checked */
    expect_bounded(patched_nifti("pair.img", "pair.hdr", 1024, 1024, 512), DK_ERR_IO,
                   "truncated voxel data", NULL);
    /* 16 GiB claimed: over the limit, naming the header fields */
    expect_bounded(patched_nifti("claims16g.nii", NULL, 2048, 2048, 2048), DK_ERR_UNSUPPORTED,
                   "header fields dim[1..7] give 2048 x 2048 x 2048 x 1 x 1", "int16");
    /* .nii.gz: the decompressed size is unknown, but cannot pass 1032:1 of the file */
    gzip_file(patched_nifti("gz_src.nii", NULL, 1024, 1024, 512), tmp("claims1g.nii.gz"));
    expect_bounded(tmp("claims1g.nii.gz"), DK_ERR_FORMAT, "need 1073741824 bytes of voxel data",
                   "compressed file can hold");
    /* within the bound but short: the stream ends early and the read fails cleanly */
    gzip_file(patched_nifti("gz_short.nii", NULL, 32, 32, 32), tmp("short.nii.gz"));
    expect_bounded(tmp("short.nii.gz"), DK_ERR_IO, "truncated voxel data", NULL);
    /* the header alone is still readable: nothing is allocated for it */
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read_header(&v, tmp("claims16g.nii")), DK_OK);
    CU_ASSERT_EQUAL(v.nx, 2048);
}

/* ---------------------------------------------------------------- MetaImage (ITK) */

static void test_mha_hostile(void) {
#ifdef DAKD_WITH_ITK
    const char *over = tmp("over.mha"), *wrap = tmp("wrap.mha");
    const char *h1 = "ObjectType = Image\nNDims = 3\nDimSize = 4096 4096 4096\n"
                     "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n0123456789abcdef";
    const char *h2 = "ObjectType = Image\nNDims = 3\nDimSize = 4294967295 4294967295 4294967295\n"
                     "ElementType = MET_DOUBLE\nElementDataFile = LOCAL\n0123456789abcdef";
    const char *h3 = "ObjectType = Image\nNDims = 3\nDimSize = 1024 1024 1024\n"
                     "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n0123456789abcdef";
    write_bytes(over, h1, strlen(h1));
    write_bytes(wrap, h2, strlen(h2));
    write_bytes(tmp("local.mha"), h3, strlen(h3));
    expect_bounded(over, DK_ERR_UNSUPPORTED, "4096 x 4096 x 4096 x 1 x 1", "limit");
    expect_bounded(wrap, DK_ERR_FORMAT, "overflows", NULL);
    expect_bounded(tmp("local.mha"), DK_ERR_FORMAT, "need 1073741824 bytes of data", "file holds");
    /* NDims negative or huge: MetaIO loops that many times per field (found by fuzz_metaimage;
     * before the check this never returned) */
    const char *h4 = "ObjectType = Image\nNDims = -4\nDimSize = 1 20 5\nElementType = MET_UCHAR\n"
                     "ElementDataFile = LOCAL\n0123456789abcdef";
    write_bytes(tmp("ndims.mha"), h4, strlen(h4));
    expect_bounded(tmp("ndims.mha"), DK_ERR_FORMAT, "NDims '-4'", "from 1 to 10");
    /* a NUL in the ElementDataFile value: MetaIO read past its word buffer (fuzz_metaimage) */
    static const char h5[] = "ObjectType = Image\nNDims = 3\nDimSize = 2 2 1\nElementType = "
                             "MET_UCHAR\nElementDataFile = a b\0c 1 2\n0123";
    write_bytes(tmp("nul.mha"), h5, sizeof h5 - 1);
    expect_bounded(tmp("nul.mha"), DK_ERR_FORMAT, "header line 'ElementDataFile = a b?c 1 2'",
                   "holds a NUL byte");
    /* a file pattern: MetaIO formats it with the header's text as the format string */
    const char *h6 = "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                     "ElementDataFile = a%999999999d\n";
    write_bytes(tmp("pattern.mhd"), h6, strlen(h6));
    expect_bounded(tmp("pattern.mhd"), DK_ERR_FORMAT, "ElementDataFile ' a%999999999d'",
                   "file pattern");
    /* a 300-byte field name: MetaIO strcpy'd it into 255 bytes (fortify abort, fuzz_metaimage) */
    char h7[512];
    snprintf(h7, sizeof h7, "ObjectType = Image\nNDims = 3\n%0300d = 1\nDimSize = 2 2 1\n"
             "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n0123", 0);
    write_bytes(tmp("longname.mha"), h7, strlen(h7));
    expect_bounded(tmp("longname.mha"), DK_ERR_FORMAT, "a field name of 255 bytes or more", NULL);
    /* a 255-byte ObjectType or Name value: strcpy'd into 255 bytes too (fuzz_metaimage);
     * 254 bytes read, and 1 000-byte values of fields MetaIO reads otherwise end as its own
     * error, not a crash */
    static const char *const keys[] = {"ObjectType", "Comment", "ObjectSubType", "Name"};
    char h8[2048], want[64];
    for (int k = 0; k < 4; k++) {
        snprintf(h8, sizeof h8, "ObjectType = Image\nNDims = 3\n%s = %0255d\nDimSize = 2 2 1\n"
                 "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n0123", keys[k], 0);
        write_bytes(tmp("longvalue.mha"), h8, strlen(h8));
        snprintf(want, sizeof want, "header field %s has a value of 255 bytes", keys[k]);
        expect_bounded(tmp("longvalue.mha"), DK_ERR_FORMAT, want, NULL);
    }
    /* "NDims" alone over "Offset = -2 3.5 0": MetaIO took -2 as NDims and spun (fuzz) */
    const char *h9 = "ObjectType = Image\nNDims \nOffset = -2 3.5 0\nDimSize = 2 2 1\n"
                     "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n0123";
    write_bytes(tmp("split.mha"), h9, strlen(h9));
    expect_bounded(tmp("split.mha"), DK_ERR_FORMAT, "header line 'NDims ' has no '='", NULL);
    static const struct {
        const char *key;
        int n;
        dk_status want;
    } fine[] = {{"Name", 254, DK_OK},
                {"AcquisitionDate", 1000, DK_ERR_FORMAT},
                {"Modality", 1000, DK_ERR_FORMAT}};
    for (int k = 0; k < 3; k++) {
        snprintf(h8, sizeof h8, "ObjectType = Image\nNDims = 3\n%s = %0*d\nDimSize = 2 2 1\n"
                 "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n0123", fine[k].key,
                 fine[k].n, 0);
        write_bytes(tmp("longvalue_ok.mha"), h8, strlen(h8));
        char msg[2048];
        int st = dk_test_run_bounded(msg, sizeof msg, BOUND, read_and_free,
                                     (void *)tmp("longvalue_ok.mha"));
        if (st != (int)fine[k].want)
            printf("\n    %s of %d bytes: status %d: %s\n", fine[k].key, fine[k].n, st, msg);
        CU_ASSERT_EQUAL(st, fine[k].want);
    }
#else
    dk_test_note("MetaImage", "built without ITK: no MetaImage reader to check");
#endif
}

/* Detached data: a header (.mhd, .nhdr) naming a raw file that is too short for the sizes
 * it claims is refused naming both files before anything is allocated; the same header
 * with a raw file of the right size reads (so the check can fail). */
static void test_detached_data(void) {
#ifdef DAKD_WITH_ITK
    static const char *const hdr[2] = {
        "ObjectType = Image\nNDims = 3\nDimSize = %s\nElementType = MET_FLOAT\n"
        "ElementDataFile = short_m.raw\n",
        "NRRD0004\ntype: float\ndimension: 3\nsizes: %s\nencoding: raw\n"
        "endian: little\ndata file: short_n.raw\n"};
    static const char *const name[2] = {"short.mhd", "short.nhdr"};
    static const char *const raw[2] = {"short_m.raw", "short_n.raw"};
    static const char *const fields[2] = {"DimSize and ElementType", "sizes and type"};
    static char data[4 * 8 * 8 * 8];
    char text[512];
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text, hdr[k], "512 512 512");
        write_bytes(tmp(name[k]), text, strlen(text));
        write_bytes(tmp(raw[k]), data, 100);
        /* 512^3 float32 = 512 MiB claimed, 100 bytes there: within the limit, over the bound */
        expect_bounded(tmp(name[k]), DK_ERR_FORMAT, "need 536870912 bytes of data", raw[k]);
        char msg[2048];
        dk_test_run_bounded(msg, sizeof msg, BOUND, read_and_free, (void *)tmp(name[k]));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, fields[k]));
        /* the same header at 8^3, with all its bytes: read */
        snprintf(text, sizeof text, hdr[k], "8 8 8");
        write_bytes(tmp(name[k]), text, strlen(text));
        write_bytes(tmp(raw[k]), data, sizeof data);
        dk_volume v;
        CU_ASSERT_EQUAL(dk_volume_read(&v, tmp(name[k])), DK_OK);
        CU_ASSERT_EQUAL(v.nx * v.ny * v.nz, 512);
        dk_volume_free(&v);
    }
#else
    dk_test_note("detached MetaImage/NRRD", "built without ITK: no reader to check");
#endif
}

/* A NRRD with a zero axis among its space directions: ITK hands back spacing 0 and a NaN
 * direction, which once reached dk_geometry_orientation_code (found by tests/fuzz). */
static void test_nrrd_zero_axis(void) {
#ifdef DAKD_WITH_ITK
    const char *h = "NRRD0004\ntype: uchar\ndimension: 3\nspace: left-posterior-superior\n"
                    "sizes: 2 2 1\nspace directions: (0.5,0,0) (0,0,0) (0,0,2)\n"
                    "endian: little\nencoding: raw\nspace origin: (0,0,0)\n\n0123";
    write_bytes(tmp("zero_axis.nrrd"), h, strlen(h));
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, tmp("zero_axis.nrrd")), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "axis 2: spacing 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "no finite, non-zero step"));
    CU_ASSERT_PTR_NULL(v.data);
#else
    dk_test_note("NRRD", "built without ITK: no NRRD reader to check");
#endif
}

/* A NRRD field line of 1 500 bytes that teem cannot parse: its error message overflowed a
 * stack buffer in ITK's NRRD reader (fortify abort; found by fuzz_metaimage). Refused in a
 * bounded child, naming the file and the line; a 1 500-byte key/value line and comment are
 * not refused for their length, and the same header with short lines reads. */
static void test_nrrd_long_line(void) {
#ifdef DAKD_WITH_ITK
    static const char head[] = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 1\n";
    static const char tail[] = "\nendian: little\nencoding: raw\n\n0123";
    char h[2048], pad[1501];
    memset(pad, 'x', 1500);
    pad[1500] = '\0';
    snprintf(h, sizeof h, "%skinds: domain dom%s%s", head, pad, tail);
    write_bytes(tmp("long_kinds.nrrd"), h, strlen(h));
    expect_bounded(tmp("long_kinds.nrrd"), DK_ERR_FORMAT, "header line 'kinds: domain domxxx",
                   "shorter than 512 bytes");
    const char *fine[] = {"note:=", "# "};
    for (int i = 0; i < 2; i++) {
        snprintf(h, sizeof h, "%s%s%s%s", head, fine[i], pad, tail);
        write_bytes(tmp("long_ok.nrrd"), h, strlen(h));
        dk_volume v;
        CU_ASSERT_EQUAL(dk_volume_read(&v, tmp("long_ok.nrrd")), DK_OK);
        CU_ASSERT(v.nx == 2 && v.ny == 2 && v.nz == 1 && v.data);
        dk_volume_free(&v);
    }
#else
    dk_test_note("NRRD", "built without ITK: no NRRD reader to check");
#endif
}

/* ---------------------------------------------------------------- 64-bit integers */

/* A 4 x 1 x 1 volume of `t` holding `x` (raw 64-bit patterns) written as NIfTI. */
static const char *int64_file(const char *name, dk_dtype t, const uint64_t x[4]) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 4, 1, 1, 1, 1, t) == DK_OK);
    memcpy(v.data, x, 4 * sizeof x[0]);
    const char *p = tmp(name);
    CU_ASSERT_FATAL(dk_nifti_write(&v, p, NULL) == DK_OK);
    dk_volume_free(&v);
    return p;
}

static void test_int64_read(void) {
    const uint64_t two53 = (uint64_t)1 << 53;
    const uint64_t big_u[4] = {0, (uint64_t)1 << 63, 3, 0};
    const uint64_t ok_i[4] = {two53, (uint64_t) - (int64_t)two53, 7, 0};
    const uint64_t bad_i[4] = {1, 2, two53 + 1, 0};
    dk_volume v;
    const char *p = int64_file("u64.nii", DK_U64, big_u);
    CU_ASSERT_EQUAL(dk_volume_read(&v, p), DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "uint64 value 9223372036854775808 at x=1 "
                                                   "y=0 z=0 t=0 c=0 lies beyond +-2^53"));
    CU_ASSERT_PTR_NULL(v.data);
    p = int64_file("i64_bad.nii.gz", DK_I64, bad_i);
    CU_ASSERT_EQUAL(dk_volume_read(&v, p), DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "int64 value 9007199254740993 at x=2"));
    p = int64_file("i64_ok.nii", DK_I64, ok_i);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&v, p), DK_OK);
    dk_volume_stats s;
    dk_volume_compute_stats(&v, &s);
    CU_ASSERT_EQUAL(s.n_labels, 4);
    CU_ASSERT_EQUAL(s.labels[0], -(int64_t)two53);
    CU_ASSERT_EQUAL(s.labels[3], (int64_t)two53);
    dk_volume_free(&v);
    /* dakd info names the voxel and exits 4 (unsupported), listing no label */
    char out[2048];
    int rc = dk_test_sh(out, sizeof out, "'%s' info '%s'", dk_test_cli(), tmp("u64.nii"));
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lies beyond +-2^53"));
    CU_ASSERT_PTR_NULL(strstr(out, "-9223372036854775808"));
}

/* Statistics of volumes made in memory (no reader's check): exact 64-bit labels, and a
 * uint64 beyond INT64_MAX listed as no label at all (it once became INT64_MIN). */
static void test_int64_stats(void) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 4, 1, 1, 1, 1, DK_I64) == DK_OK);
    int64_t *d = v.data;
    d[0] = d[1] = ((int64_t)1 << 60) + 1, d[2] = (int64_t)1 << 60, d[3] = INT64_MIN;
    dk_volume_stats s;
    dk_volume_compute_stats(&v, &s);
    CU_ASSERT_EQUAL(s.n_labels, 3); /* through double 2^60 and 2^60 + 1 were one label */
    CU_ASSERT_EQUAL(s.labels[0], INT64_MIN);
    CU_ASSERT_EQUAL(s.labels[1], (int64_t)1 << 60);
    CU_ASSERT_EQUAL(s.labels[2], ((int64_t)1 << 60) + 1);
    CU_ASSERT_EQUAL(s.label_counts[2], 2);
    dk_volume_free(&v);
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 3, 1, 1, 1, 1, DK_U64) == DK_OK);
    uint64_t *u = v.data;
    u[0] = 5, u[1] = UINT64_MAX, u[2] = 5;
    dk_volume_compute_stats(&v, &s);
    CU_ASSERT_EQUAL(s.labels_truncated, 1);
    for (int i = 0; i < (s.n_labels < 64 ? (int)s.n_labels : 64); i++)
        CU_ASSERT(s.labels[i] >= 0);
    CU_ASSERT_EQUAL(s.max, 18446744073709551615.0);
    dk_volume_free(&v);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("io.limits", NULL, NULL);
    if (!s ||
        !CU_add_test(s, "limit: default, DAKD_MAX_VOLUME_BYTES, setter", test_limit_setting) ||
        !CU_add_test(s, "size check and deflate bound", test_check_size) ||
        !CU_add_test(s, "PNG: 128 bytes claiming gigabytes", test_png_hostile) ||
        !CU_add_test(s, "NIfTI: .nii, .hdr/.img, .nii.gz claiming gigabytes", test_nifti_hostile) ||
        !CU_add_test(s, "MetaImage claiming gigabytes", test_mha_hostile) ||
        !CU_add_test(s, "detached MetaImage/NRRD data shorter than the header claims",
                     test_detached_data) ||
        !CU_add_test(s, "64-bit voxels beyond 2^53 refused on read", test_int64_read) ||
        !CU_add_test(s, "64-bit labels counted exactly", test_int64_stats) ||
        !CU_add_test(s, "NRRD with a zero axis refused", test_nrrd_zero_axis) ||
        !CU_add_test(s, "NRRD field line too long for ITK's messages refused",
                     test_nrrd_long_line)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
