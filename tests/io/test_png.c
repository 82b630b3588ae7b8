/* PNG read and write: round trips for every colour type and bit depth, files made here
 * with libpng directly (palette, low-bit gray, interlaced) so the expected values are
 * exact, damaged files, write refusals, atomic output, and the DRIVE and CHASE_DB1 retina
 * PNGs from the shared data. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dakd/volume.h"
#include "test_util.h"

static const char *scratch(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

/* Assert a failure with the given status whose message names `path` and contains `needle`;
 * print the message when it does not, so the log shows what was said instead. */
static void expect_fail(dk_status st, dk_status want, const char *path, const char *needle) {
    const char *msg = dk_last_error();
    int ok = st == want && strstr(msg, path) && (!needle || strstr(msg, needle));
    if (!ok)
        printf("\n    got status %d (want %d), message \"%s\" (want \"%s\")\n", st, want, msg,
               needle ? needle : "");
    CU_ASSERT(ok);
}

/* ---------------------------------------------------------------- fixtures via libpng */

/* One PNG written straight through libpng. samples: (h, w, channels) interleaved, one
 * value per sample (palette indices for palette images, unpacked values for 1/2/4 bit). */
typedef struct {
    int w, h, color_type, bit_depth, interlace;
    const uint16_t *samples;
    const png_color *palette;
    int n_palette;
    const png_byte *trns; /* palette alpha table, or NULL */
    int n_trns;
    const png_color_16 *trns_color; /* gray/RGB tRNS value, or NULL */
    int stored; /* 1: zlib level 0 in 256-byte IDATs: the IDAT bytes are the raw rows */
} fixture;

static int channels_of(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

/* Rows of one byte per sample (8 bit and below; libpng packs) or two big-endian bytes. */
static unsigned char *fixture_rows(const fixture *f, png_bytep *rows) {
    const size_t ns = (size_t)f->w * (size_t)channels_of(f->color_type);
    const size_t bps = f->bit_depth == 16 ? 2 : 1;
    unsigned char *buf = malloc(ns * bps * (size_t)f->h);
    for (size_t y = 0; buf && y < (size_t)f->h; y++) {
        rows[y] = buf + y * ns * bps;
        for (size_t i = 0; i < ns; i++) {
            const uint16_t s = f->samples[y * ns + i];
            if (bps == 2) {
                rows[y][2 * i] = (unsigned char)(s >> 8);
                rows[y][2 * i + 1] = (unsigned char)(s & 0xff);
            } else {
                rows[y][i] = (unsigned char)s;
            }
        }
    }
    return buf;
}

static void fixture_header(png_structp png, png_infop info, const fixture *f) {
    png_set_IHDR(png, info, (png_uint_32)f->w, (png_uint_32)f->h, f->bit_depth, f->color_type,
                 f->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (f->palette) png_set_PLTE(png, info, f->palette, f->n_palette);
    if (f->trns || f->trns_color) png_set_tRNS(png, info, f->trns, f->n_trns, f->trns_color);
    if (f->stored) {
        png_set_compression_level(png, 0);
        png_set_compression_buffer_size(png, 256);
    }
}

/* The libpng part of write_fixture; a longjmp lands in this frame, which has no locals. */
static int fixture_session(png_structp png, png_infop info, FILE *fp, png_bytep *rows,
                           const fixture *f) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, fp);
    fixture_header(png, info, f);
    png_write_info(png, info);
    if (f->bit_depth < 8) png_set_packing(png);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

/* Write the fixture; 0 on success. */
static int write_fixture(const char *path, const fixture *f) {
    png_bytep *rows = malloc((size_t)f->h * sizeof *rows);
    unsigned char *buf = rows ? fixture_rows(f, rows) : NULL;
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = (buf && fp && info) ? fixture_session(png, info, fp, rows, f) : -1;
    png_destroy_write_struct(&png, &info);
    if (fp && fclose(fp) != 0) rc = -1;
    free(buf);
    free(rows);
    return rc;
}

/* A file as libpng sees it with no transformations (8/16-bit files only). */
typedef struct {
    png_uint_32 w, h;
    int channels, bit_depth, color_type;
    uint16_t *samples; /* (h, w, channels) interleaved */
} raw_png;

static int raw_read_body(png_structp png, png_infop info, FILE *fp, raw_png *r,
                         unsigned char **buf) {
    png_init_io(png, fp);
    png_read_info(png, info);
    r->w = png_get_image_width(png, info);
    r->h = png_get_image_height(png, info);
    r->channels = png_get_channels(png, info);
    r->bit_depth = png_get_bit_depth(png, info);
    r->color_type = png_get_color_type(png, info);
    const size_t rb = png_get_rowbytes(png, info), ns = (size_t)r->w * (size_t)r->channels;
    *buf = malloc(rb);
    r->samples = malloc(ns * r->h * sizeof *r->samples);
    if (!*buf || !r->samples || r->bit_depth < 8) return -1;
    for (size_t y = 0; y < r->h; y++) {
        png_read_row(png, *buf, NULL);
        for (size_t i = 0; i < ns; i++)
            r->samples[y * ns + i] =
                r->bit_depth == 16 ? (uint16_t)((*buf)[2 * i] << 8 | (*buf)[2 * i + 1]) : (*buf)[i];
    }
    png_read_end(png, NULL);
    return 0;
}

static int raw_session(png_structp png, png_infop info, FILE *fp, raw_png *r, unsigned char **buf) {
    if (setjmp(png_jmpbuf(png))) return -1;
    return raw_read_body(png, info, fp, r, buf);
}

static int raw_read(const char *path, raw_png *r) {
    memset(r, 0, sizeof *r);
    unsigned char *buf = NULL;
    FILE *fp = fopen(path, "rb");
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = (fp && info) ? raw_session(png, info, fp, r, &buf) : -1;
    png_destroy_read_struct(&png, &info, NULL);
    if (fp) fclose(fp);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- round trips */

/* A deterministic sample in 0..maxv that varies with x, y and c and hits both ends. */
static unsigned pattern(int64_t x, int64_t y, int64_t c, unsigned maxv) {
    if (x == 0 && y == 0) return c % 2 ? 0 : maxv;
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)c * 83492791u;
    h ^= h >> 13;
    return (unsigned)(h % (maxv + 1u));
}

static void fill_pattern(dk_volume *v, unsigned maxv) {
    for (int64_t c = 0; c < v->nc; c++)
        for (int64_t y = 0; y < v->ny; y++)
            for (int64_t x = 0; x < v->nx; x++)
                dk_volume_set(v, (c * v->ny + y) * v->nx + x, pattern(x, y, c, maxv));
}

/* The file holds the volume's pixels interleaved, row 0 first, at `depth` bits. */
static void check_file_samples(const char *path, const dk_volume *v, int depth, int ctype) {
    raw_png r;
    CU_ASSERT_EQUAL_FATAL(raw_read(path, &r), 0);
    CU_ASSERT_EQUAL(r.w, v->nx);
    CU_ASSERT_EQUAL(r.h, v->ny);
    CU_ASSERT_EQUAL(r.channels, v->nc);
    CU_ASSERT_EQUAL(r.bit_depth, depth);
    CU_ASSERT_EQUAL(r.color_type, ctype);
    int64_t bad = 0;
    for (int64_t y = 0; y < v->ny; y++)
        for (int64_t x = 0; x < v->nx; x++)
            for (int64_t c = 0; c < v->nc; c++)
                bad += r.samples[(y * v->nx + x) * v->nc + c] !=
                       dk_volume_get(v, (c * v->ny + y) * v->nx + x);
    CU_ASSERT_EQUAL(bad, 0);
    free(r.samples);
}

static void roundtrip(int64_t nc, dk_dtype dt, unsigned maxv, const char *name) {
    static const int ctype[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    const char *path = scratch(name);
    dk_volume v, w;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 13, 7, 1, 1, nc, dt), DK_OK);
    v.color = nc == 3 ? DK_COLOR_RGB : nc == 4 ? DK_COLOR_RGBA : DK_COLOR_NONE;
    fill_pattern(&v, maxv);
    CU_ASSERT_EQUAL_FATAL(dk_png_write(&v, path), DK_OK);
    check_file_samples(path, &v, dt == DK_U16 ? 16 : 8, ctype[nc]);
    CU_ASSERT_EQUAL_FATAL(dk_png_read(&w, path), DK_OK);
    CU_ASSERT(w.nx == 13 && w.ny == 7 && w.nz == 1 && w.nt == 1 && w.nc == nc);
    CU_ASSERT_EQUAL(w.ndim, 2);
    CU_ASSERT_EQUAL(w.dtype, dt);
    CU_ASSERT_EQUAL(w.color, v.color);
    CU_ASSERT(w.geom.spacing[0] == 1 && w.geom.spacing[1] == 1 && w.geom.spacing[2] == 1);
    CU_ASSERT(w.geom.origin[0] == 0 && w.geom.direction[0][0] == 1);
    CU_ASSERT(memcmp(v.data, w.data, dk_volume_nbytes(&v)) == 0);
    dk_volume_free(&v);
    dk_volume_free(&w);
}

static void test_rt_gray8(void) { roundtrip(1, DK_U8, 255, "gray8.png"); }
static void test_rt_gray_alpha(void) { roundtrip(2, DK_U8, 255, "ga8.png"); }
static void test_rt_rgb8(void) { roundtrip(3, DK_U8, 255, "rgb8.png"); }
static void test_rt_rgba8(void) { roundtrip(4, DK_U8, 255, "rgba8.png"); }
static void test_rt_rgb16(void) { roundtrip(3, DK_U16, 65535, "rgb16.png"); }
static void test_rt_ga16(void) { roundtrip(2, DK_U16, 65535, "ga16.png"); }

/* 16-bit gray with values well above 255, and the byte order checked on a known value. */
static void test_rt_gray16(void) {
    roundtrip(1, DK_U16, 65535, "gray16.png");
    const char *path = scratch("gray16b.png");
    dk_volume v, w;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 3, 2, 1, 1, 1, DK_U16), DK_OK);
    const uint16_t vals[6] = {0x0102, 300, 65535, 0, 256, 4095};
    memcpy(v.data, vals, sizeof vals);
    CU_ASSERT_EQUAL_FATAL(dk_png_write(&v, path), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_png_read(&w, path), DK_OK);
    CU_ASSERT(memcmp(w.data, vals, sizeof vals) == 0);
    dk_volume_free(&v);
    dk_volume_free(&w);
}

/* Entries in `dir` other than . and .. (temporaries are hidden dot files, counted too). */
static int count_entries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return n;
}

/* Writing over an existing file replaces it and leaves no temporary behind. */
static void test_overwrite(void) {
    const char *dir = scratch("overwrite");
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/img.png", dir);
    dk_volume v, w;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 4, 1, 1, 1, DK_U8), DK_OK);
    CU_ASSERT_EQUAL(dk_png_write(&v, path), DK_OK);
    memset(v.data, 7, 16);
    CU_ASSERT_EQUAL(dk_png_write(&v, path), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_png_read(&w, path), DK_OK);
    CU_ASSERT_EQUAL(dk_volume_get(&w, 15), 7);
    CU_ASSERT_EQUAL(count_entries(dir), 1);
    dk_volume_free(&v);
    dk_volume_free(&w);
}

/* ---------------------------------------------------------------- other dtypes on write */

/* Write `v`, check the file's bit depth, read back as `want` with the same values. */
static void write_as(const dk_volume *v, const char *name, int depth, dk_dtype want) {
    const char *path = scratch(name);
    dk_volume w;
    CU_ASSERT_EQUAL_FATAL(dk_png_write(v, path), DK_OK);
    check_file_samples(path, v, depth, PNG_COLOR_TYPE_GRAY);
    CU_ASSERT_EQUAL_FATAL(dk_png_read(&w, path), DK_OK);
    CU_ASSERT_EQUAL(w.dtype, want);
    dk_volume_free(&w);
}

static void refuse(const dk_volume *v, const char *name, const char *needle) {
    const char *path = scratch(name);
    expect_fail(dk_png_write(v, path), DK_ERR_UNSUPPORTED, path, needle);
    CU_ASSERT(!dk_test_exists(path));
}

static void test_write_integer_dtypes(void) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 5, 3, 1, 1, 1, DK_I32), DK_OK);
    fill_pattern(&v, 200);
    write_as(&v, "i32_small.png", 8, DK_U8);
    dk_volume_set(&v, 4, 1000);
    write_as(&v, "i32_mid.png", 16, DK_U16);
    dk_volume_set(&v, 4, -1);
    refuse(&v, "i32_neg.png", "-1..");
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 5, 3, 1, 1, 1, DK_U32), DK_OK);
    dk_volume_set(&v, 2, 70000);
    refuse(&v, "u32_big.png", "0..70000");
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 5, 3, 1, 1, 1, DK_I16), DK_OK);
    fill_pattern(&v, 30000);
    write_as(&v, "i16.png", 16, DK_U16);
    dk_volume_free(&v);
}

/* A label map scaled to float is written; a real-valued image is refused, not rounded. */
static void test_write_float(void) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 6, 4, 1, 1, 1, DK_F32), DK_OK);
    fill_pattern(&v, 4);
    write_as(&v, "f32_labels.png", 8, DK_U8);
    dk_volume_set(&v, 7, 0.5);
    refuse(&v, "f32_half.png", "not an integer");
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "x=1 y=1"));
    dk_volume_set(&v, 7, NAN);
    refuse(&v, "f32_nan.png", "not an integer");
    dk_volume_set(&v, 7, -2);
    refuse(&v, "f32_neg.png", "not an integer");
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 6, 4, 1, 1, 1, DK_F64), DK_OK);
    dk_volume_set(&v, 3, 300);
    write_as(&v, "f64_300.png", 16, DK_U16);
    dk_volume_set(&v, 3, 70000);
    refuse(&v, "f64_big.png", "70000");
    dk_volume_free(&v);
}

static void test_write_shape_refusals(void) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 4, 40, 1, 1, DK_U8), DK_OK);
    refuse(&v, "nz40.png", "volume has nz=40");
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 4, 1, 2, 1, DK_U8), DK_OK);
    refuse(&v, "nt2.png", "nt=2");
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 4, 1, 1, 5, DK_U8), DK_OK);
    refuse(&v, "nc5.png", "nc=5");
    dk_volume_free(&v);
}

/* A directory that is a regular file, and a target that is a directory (the rename fails
 * after the temporary was written): DK_ERR_IO naming the path, and no file left over. */
static void test_unwritable(void) {
    const char *plain = scratch("plainfile");
    FILE *f = fopen(plain, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    char path[4200];
    snprintf(path, sizeof path, "%s/out.png", plain);
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 8, 8, 1, 1, 1, DK_U8), DK_OK);
    expect_fail(dk_png_write(&v, path), DK_ERR_IO, path, NULL);

    const char *dir = scratch("commitfail");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/out.png", dir);
    mkdir(path, 0755);
    snprintf(path + strlen(path), 32, "/keep");
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/out.png", dir);
    expect_fail(dk_png_write(&v, path), DK_ERR_IO, path, NULL);
    CU_ASSERT_EQUAL(count_entries(dir), 1); /* only the directory out.png, no temporary */
    dk_volume_free(&v);
}

/* A write that fails half-way (file size limit, as on a full disk): DK_ERR_IO with the
 * system's reason, and the temporary is removed. */
static void test_write_fails_midway(void) {
    const char *dir = scratch("fsize");
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/big.png", dir);
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 256, 256, 1, 1, 3, DK_U8), DK_OK);
    fill_pattern(&v, 255); /* hashed values: ~190 KB compressed */
    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 32768;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    dk_status st = dk_png_write(&v, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    expect_fail(st, DK_ERR_IO, path, "write failed: File too large");
    CU_ASSERT_EQUAL(count_entries(dir), 0);
    dk_volume_free(&v);
}

/* ---------------------------------------------------------------- reading fixtures */

static uint16_t *make_samples(int w, int h, int ch, unsigned maxv) {
    uint16_t *s = malloc((size_t)w * h * ch * sizeof *s);
    for (int y = 0; s && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                s[((size_t)y * w + x) * ch + c] = pattern(x, y, c, maxv);
    return s;
}

/* Read `path` and compare with the fixture's samples mapped through `palette` (3 or 4
 * bytes per entry, NULL for direct samples). */
static void check_read(const char *path, const fixture *f, int nc, dk_dtype dt,
                       const unsigned char *palette) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_png_read(&v, path), DK_OK);
    CU_ASSERT(v.nx == f->w && v.ny == f->h && v.nz == 1 && v.nc == nc && v.ndim == 2);
    CU_ASSERT_EQUAL(v.dtype, dt);
    CU_ASSERT_EQUAL(v.color, nc == 3 ? DK_COLOR_RGB : nc == 4 ? DK_COLOR_RGBA : DK_COLOR_NONE);
    const int fch = channels_of(f->color_type);
    int64_t bad = 0;
    for (int64_t y = 0; y < v.ny; y++)
        for (int64_t x = 0; x < v.nx; x++)
            for (int64_t c = 0; c < nc; c++) {
                const double got = dk_volume_get(&v, (c * v.ny + y) * v.nx + x);
                const unsigned s =
                    f->samples[(y * f->w + x) * (palette ? 1 : fch) + (palette ? 0 : c)];
                bad += got != (palette ? palette[s * nc + c] : s);
            }
    CU_ASSERT_EQUAL(bad, 0);
    dk_volume_free(&v);
}

/* 1/2/4-bit gray keeps the sample values (a 1-bit mask is {0,1}); odd widths pad rows. */
static void test_read_low_bit_gray(void) {
    for (int depth = 1; depth <= 4; depth *= 2) {
        for (int interlace = 0; interlace <= 1; interlace++) {
            const unsigned maxv = (1u << depth) - 1;
            uint16_t *s = make_samples(13, 9, 1, maxv);
            fixture f = {.w = 13,
                         .h = 9,
                         .color_type = PNG_COLOR_TYPE_GRAY,
                         .bit_depth = depth,
                         .interlace = interlace,
                         .samples = s};
            char name[64];
            snprintf(name, sizeof name, "gray%d_%d.png", depth, interlace);
            const char *path = scratch(name);
            CU_ASSERT_EQUAL_FATAL(write_fixture(path, &f), 0);
            check_read(path, &f, 1, DK_U8, NULL);
            free(s);
        }
    }
}

static const png_color pal[5] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {1, 2, 3}, {90, 91, 255}};

/* Palette → RGB without tRNS, RGBA with it (alpha 255 past the tRNS entries). */
static void test_read_palette(void) {
    unsigned char rgb[15], rgba[20];
    const png_byte trns[2] = {0, 128};
    for (int i = 0; i < 5; i++) {
        const unsigned char px[3] = {pal[i].red, pal[i].green, pal[i].blue};
        memcpy(rgb + 3 * i, px, 3);
        memcpy(rgba + 4 * i, px, 3);
        rgba[4 * i + 3] = i < 2 ? trns[i] : 255;
    }
    const int depths[3] = {8, 4, 4};
    for (int k = 0; k < 3; k++) {
        uint16_t *s = make_samples(11, 6, 1, 4);
        fixture f = {.w = 11,
                     .h = 6,
                     .color_type = PNG_COLOR_TYPE_PALETTE,
                     .bit_depth = depths[k],
                     .interlace = k == 2,
                     .samples = s,
                     .palette = pal,
                     .n_palette = 5,
                     .trns = k ? trns : NULL,
                     .n_trns = k ? 2 : 0};
        char name[64];
        snprintf(name, sizeof name, "palette_%d.png", k);
        const char *path = scratch(name);
        CU_ASSERT_EQUAL_FATAL(write_fixture(path, &f), 0);
        check_read(path, &f, k ? 4 : 3, DK_U8, k ? rgba : rgb);
        free(s);
    }
}

/* Adam7 files of each kind decode to the same pixels as their samples. */
static void test_read_interlaced(void) {
    static const struct {
        int ct, depth, nc;
        dk_dtype dt;
    } kinds[] = {{PNG_COLOR_TYPE_GRAY, 8, 1, DK_U8},
                 {PNG_COLOR_TYPE_GRAY, 16, 1, DK_U16},
                 {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 2, DK_U8},
                 {PNG_COLOR_TYPE_RGB, 16, 3, DK_U16},
                 {PNG_COLOR_TYPE_RGB_ALPHA, 8, 4, DK_U8}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        uint16_t *s = make_samples(17, 11, kinds[k].nc, kinds[k].depth == 16 ? 65535 : 255);
        fixture f = {.w = 17,
                     .h = 11,
                     .color_type = kinds[k].ct,
                     .bit_depth = kinds[k].depth,
                     .interlace = PNG_INTERLACE_ADAM7,
                     .samples = s};
        char name[64];
        snprintf(name, sizeof name, "adam7_%zu.png", k);
        const char *path = scratch(name);
        CU_ASSERT_EQUAL_FATAL(write_fixture(path, &f), 0);
        check_read(path, &f, kinds[k].nc, kinds[k].dt, NULL);
        free(s);
    }
}

/* tRNS on a gray image adds no alpha channel (as PIL reads it). */
static void test_read_gray_trns(void) {
    uint16_t *s = make_samples(5, 5, 1, 255);
    png_color_16 key = {.gray = 17};
    fixture f = {.w = 5,
                 .h = 5,
                 .color_type = PNG_COLOR_TYPE_GRAY,
                 .bit_depth = 8,
                 .samples = s,
                 .trns_color = &key};
    const char *path = scratch("gray_trns.png");
    CU_ASSERT_EQUAL_FATAL(write_fixture(path, &f), 0);
    check_read(path, &f, 1, DK_U8, NULL);
    free(s);
}

/* ---------------------------------------------------------------- damaged files */

static long file_bytes(const char *path, unsigned char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *out = malloc((size_t)n);
    if (!*out || fread(*out, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    return n;
}

static void put_bytes(const char *path, const unsigned char *b, long n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(b, 1, (size_t)n, f), (size_t)n);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

/* A good 48x40 gray PNG whose IDATs hold the raw rows (zlib level 0); returns its bytes. */
static long good_png(const char *path, unsigned char **bytes) {
    uint16_t *s = make_samples(48, 40, 1, 255);
    fixture f = {.w = 48,
                 .h = 40,
                 .color_type = PNG_COLOR_TYPE_GRAY,
                 .bit_depth = 8,
                 .samples = s,
                 .stored = 1};
    int rc = write_fixture(path, &f);
    free(s);
    return rc == 0 ? file_bytes(path, bytes) : -1;
}

/* Read must fail with `want`, name the file and say `needle`, and leave v zeroed. */
static void expect_read_fail(const char *path, dk_status want, const char *needle) {
    dk_volume v;
    memset(&v, 0xab, sizeof v);
    expect_fail(dk_png_read(&v, path), want, path, needle);
    CU_ASSERT(v.data == NULL && v.nx == 0 && v.nc == 0);
}

/* Offset of the data of the k-th IDAT chunk (k = -1: the last); *len gets its length. */
static long idat_data(const unsigned char *b, long n, int k, long *len) {
    long found = -1;
    for (long at = 8, i = 0; at + 12 <= n;) {
        const long sz = (long)b[at] << 24 | b[at + 1] << 16 | b[at + 2] << 8 | b[at + 3];
        if (memcmp(b + at + 4, "IDAT", 4) == 0 && (k < 0 || i++ == k)) {
            found = at + 8;
            *len = sz;
        }
        at += sz + 12;
    }
    return found;
}

/* A flipped pixel byte in the first of several IDATs: libpng checks that chunk's CRC when
 * it moves to the next one. In the last IDAT, zlib's Adler-32 check fires first. */
static void test_bad_crc(void) {
    const char *path = scratch("badcrc.png");
    unsigned char *b = NULL;
    long n = good_png(path, &b), len = 0;
    CU_ASSERT_FATAL(n > 0);
    long at = idat_data(b, n, 0, &len);
    CU_ASSERT_FATAL(at > 0 && len > 100);
    CU_ASSERT_FATAL(idat_data(b, n, 1, &len) > 0); /* there is a second IDAT */
    b[at + 120] ^= 0x10;                           /* pixel x=23 of row 2 */
    put_bytes(path, b, n);
    expect_read_fail(path, DK_ERR_FORMAT, "IDAT: CRC error");
    b[at + 120] ^= 0x10;
    at = idat_data(b, n, -1, &len);
    CU_ASSERT_FATAL(at > 0 && len > 20);
    b[at + len - 8] ^= 0x10;
    put_bytes(path, b, n);
    expect_read_fail(path, DK_ERR_FORMAT, "IDAT: incorrect data check");
    free(b);
}

static void test_truncated(void) {
    const char *path = scratch("trunc.png");
    unsigned char *b = NULL;
    long n = good_png(path, &b);
    CU_ASSERT_FATAL(n > 0);
    const long cut[4] = {n / 2, n - 12 /* IEND missing */, 20 /* inside IHDR */, 5};
    for (int k = 0; k < 4; k++) {
        put_bytes(path, b, cut[k]);
        expect_read_fail(path, DK_ERR_IO, "truncated");
    }
    free(b);
}

/* Signature and an IHDR chunk with a valid CRC: libpng's limits give the reason. */
static void write_ihdr_only(const char *path, uint32_t width) {
    unsigned char b[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                           0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    const unsigned char fields[13] = {width >> 24,
                                      width >> 16 & 0xff,
                                      width >> 8 & 0xff,
                                      width & 0xff,
                                      0,
                                      0,
                                      0,
                                      1,
                                      8,
                                      0,
                                      0,
                                      0,
                                      0};
    memcpy(b + 16, fields, sizeof fields);
    const uint32_t crc = (uint32_t)crc32(0, b + 12, 17);
    const unsigned char c[4] = {crc >> 24, crc >> 16 & 0xff, crc >> 8 & 0xff, crc & 0xff};
    memcpy(b + 29, c, 4);
    put_bytes(path, b, sizeof b);
}

static void test_bad_header(void) {
    const char *path = scratch("ihdr.png");
    write_ihdr_only(path, 0);
    expect_read_fail(path, DK_ERR_FORMAT, "width is zero");
    write_ihdr_only(path, 1u << 25); /* over the 2^24 per side limit */
    expect_read_fail(path, DK_ERR_FORMAT, "exceeds user limit");
}

static void test_not_png(void) {
    const char *path = scratch("text.png");
    const char *text = "this is a text file, not an image\n";
    put_bytes(path, (const unsigned char *)text, (long)strlen(text));
    expect_read_fail(path, DK_ERR_FORMAT, "not a PNG");
    path = scratch("empty.png");
    put_bytes(path, (const unsigned char *)"", 0);
    expect_read_fail(path, DK_ERR_FORMAT, "empty");
    expect_read_fail(scratch("does_not_exist.png"), DK_ERR_IO, "cannot open");
}

/* ---------------------------------------------------------------- retina data */

/* Count elements equal to 0, to 1, and anything else in a uint8 single-channel volume. */
static void check_mask(const dk_volume *m, const dk_volume *img, const char *path) {
    int64_t n0 = 0, n1 = 0, other = 0, n = dk_volume_numel(m);
    const uint8_t *p = m->data;
    for (int64_t i = 0; i < n; i++) {
        n0 += p[i] == 0;
        n1 += p[i] == 1;
    }
    other = n - n0 - n1;
    int ok = m->nc == 1 && m->dtype == DK_U8 && m->nx == img->nx && m->ny == img->ny && n0 > 0 &&
             n1 > 0 && other == 0;
    if (!ok)
        printf("\n    %s: nc=%lld, %lld zeros, %lld ones, %lld others\n", path, (long long)m->nc,
               (long long)n0, (long long)n1, (long long)other);
    CU_ASSERT(ok);
}

/* One cases.csv row: dataset,case,split,image,label,fov,label_2nd. Returns files read. */
static int check_case(const char *root, char *line) {
    char *f[7] = {0};
    int k = 0;
    for (char *p = line; k < 7; k++) {
        f[k] = p;
        p += strcspn(p, ",\r\n");
        if (*p != ',') {
            *p = '\0';
            break;
        }
        *p++ = '\0';
    }
    CU_ASSERT_FATAL(k >= 5);
    const int drive = strcmp(f[0], "drive") == 0;
    char path[4096];
    dk_volume img, m;
    snprintf(path, sizeof path, "%s/%s", root, f[3]);
    CU_ASSERT_EQUAL_FATAL(dk_png_read(&img, path), DK_OK);
    CU_ASSERT(img.nc == 3 && img.dtype == DK_U8 && img.color == DK_COLOR_RGB);
    CU_ASSERT_EQUAL(img.nx, drive ? 565 : 999);
    CU_ASSERT_EQUAL(img.ny, drive ? 584 : 960);
    int nread = 1;
    for (int col = 4; col <= 6 && col <= k; col++) {
        if (!f[col][0]) continue; /* label_2nd: CHASE_DB1 only */
        snprintf(path, sizeof path, "%s/%s", root, f[col]);
        CU_ASSERT_EQUAL_FATAL(dk_png_read(&m, path), DK_OK);
        check_mask(&m, &img, path);
        dk_volume_free(&m);
        nread++;
    }
    dk_volume_free(&img);
    return nread;
}

static void test_retina(void) {
    const char *shared = dk_test_shared_data();
    if (!shared) {
        dk_test_skip("retina PNGs", "no shared data folder (set DAKD_SHARED_DATA)");
        return;
    }
    char root[2048], csv[2100], line[1024];
    snprintf(root, sizeof root, "%s/retina", shared);
    snprintf(csv, sizeof csv, "%s/cases.csv", root);
    FILE *f = fopen(csv, "r");
    if (!f) {
        dk_test_skip("retina PNGs", "retina/cases.csv not found in the shared data");
        return;
    }
    int cases = 0, files = 0, drive = 0;
    for (int row = 0; fgets(line, sizeof line, f); row++) {
        if (row == 0 || line[0] == '\n') continue; /* header */
        drive += strncmp(line, "drive,", 6) == 0;
        files += check_case(root, line);
        cases++;
    }
    fclose(f);
    printf("\n    retina: %d cases (%d DRIVE, %d CHASE_DB1), %d PNGs read\n", cases, drive,
           cases - drive, files);
    CU_ASSERT(drive == 40 && cases - drive == 28);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("png", NULL, NULL);
    CU_add_test(s, "round trip 8-bit gray", test_rt_gray8);
    CU_add_test(s, "round trip 16-bit gray", test_rt_gray16);
    CU_add_test(s, "round trip gray+alpha", test_rt_gray_alpha);
    CU_add_test(s, "round trip 16-bit gray+alpha", test_rt_ga16);
    CU_add_test(s, "round trip RGB", test_rt_rgb8);
    CU_add_test(s, "round trip RGBA", test_rt_rgba8);
    CU_add_test(s, "round trip 16-bit RGB", test_rt_rgb16);
    CU_add_test(s, "overwrite leaves one file", test_overwrite);
    CU_add_test(s, "integer dtypes choose 8/16 bit or refuse", test_write_integer_dtypes);
    CU_add_test(s, "float written only as integers 0..65535", test_write_float);
    CU_add_test(s, "nz, nt, nc refusals", test_write_shape_refusals);
    CU_add_test(s, "unwritable path, no leftover", test_unwritable);
    CU_add_test(s, "write failing half-way, no leftover", test_write_fails_midway);
    CU_add_test(s, "1/2/4-bit gray keeps sample values", test_read_low_bit_gray);
    CU_add_test(s, "palette to RGB / RGBA", test_read_palette);
    CU_add_test(s, "interlaced files", test_read_interlaced);
    CU_add_test(s, "gray tRNS adds no alpha", test_read_gray_trns);
    CU_add_test(s, "bad IDAT CRC", test_bad_crc);
    CU_add_test(s, "truncated files", test_truncated);
    CU_add_test(s, "zero and huge width in IHDR", test_bad_header);
    CU_add_test(s, "not a PNG, empty, missing", test_not_png);
    CU_pSuite r = CU_add_suite("png_retina", NULL, NULL);
    CU_add_test(r, "DRIVE and CHASE_DB1 images and labels", test_retina);
    return dk_test_run();
}
