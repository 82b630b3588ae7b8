/*
 * PNG read and write through libpng 1.6.
 *
 * A PNG holds one 2-D image: it maps onto a dk_volume with nx = width, ny = height (row 0,
 * the top of the image, is y = 0), nz = nt = 1, ndim = 2, identity geometry with unit
 * spacing, and the file's interleaved samples stored PLANAR (channel slowest).
 *
 * What a read gives, by the file's colour type (the arrays skimage.io.imread and nnU-Net's
 * NaturalImage2DIO hand to Python for the same files):
 *   gray 8/16 bit            nc = 1, DK_U8 / DK_U16
 *   gray 1/2/4 bit           nc = 1, DK_U8 holding the SAMPLE values: a 1-bit mask reads as
 *                            {0, 1}, not {0, 255}. Segmentation masks are stored this way
 *                            and their values are labels, so they are unpacked
 *                            (png_set_packing), never rescaled to 0..255.
 *   gray + alpha             nc = 2
 *   RGB / RGBA 8/16 bit      nc = 3 / 4, colour DK_COLOR_RGB / DK_COLOR_RGBA
 *   palette                  expanded to RGB (nc = 3), or to RGBA (nc = 4) when the file
 *                            has a tRNS chunk — what PIL gives after convert("RGB"/"RGBA"),
 *                            as skimage does. Index maps are not kept: dakd label PNGs are
 *                            grayscale, and a palette image is a picture.
 *   tRNS on gray or RGB      ignored (no alpha channel is added), as PIL does.
 * No gamma, sRGB or background transformations are applied: samples are read as stored.
 *
 * Errors: libpng prints nothing (its error and warning callbacks are replaced); its error
 * text goes into the dk_fail message with the file name ("x.png: IDAT: CRC error").
 * Truncated or unreadable files are DK_ERR_IO, invalid content DK_ERR_FORMAT. Before anything
 * is allocated for the image, IHDR's size is checked against the volume size limit and
 * against what the file's bytes can inflate to (dakd/volume.h): a 100-byte file that claims
 * 40000 x 40000 pixels fails at once.
 *
 * Write: nz = nt = 1 and nc 1..4 (gray, gray+alpha, RGB, RGBA). DK_U8 → 8-bit, DK_U16 →
 * 16-bit; other dtypes are written when every value is an integer in 0..65535 (8-bit when
 * all fit in 0..255), else refused. The file appears complete or not at all (temporary
 * name, fsync, rename).
 *
 * setjmp: each libpng session runs in a function whose only local work is the setjmp;
 * everything the error path needs lives in a struct owned by the caller, so no local
 * variable is modified between setjmp and longjmp.
 */
#include "dakd/volume.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest width or height accepted either way (libpng's own default is 1e6). */
#define MAX_SIDE (1u << 24)
/* Largest ancillary chunk libpng may allocate (iCCP, zTXt, ...): its default, stated. The
 * image itself is checked by check_image_size before anything is allocated for it. */
#define MAX_CHUNK 8000000

/* State shared with libpng's callbacks. */
typedef struct {
    const char *path;
    FILE *fp;
    char msg[256];  /* libpng's error text */
    char warn[256]; /* its last warning (an IHDR error gives its reason as a warning) */
    int io_errno;   /* errno of a failed fread/fwrite, else 0 */
    int eof;        /* the file ended early */
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->warn, sizeof c->warn, "%s", msg);
}

static void read_fn(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (fread(out, 1, n, c->fp) == n) return;
    if (ferror(c->fp)) {
        c->io_errno = errno ? errno : EIO;
        png_error(png, "read failed");
    }
    c->eof = 1;
    png_error(png, "unexpected end of file");
}

static void write_fn(png_structp png, png_bytep in, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (fwrite(in, 1, n, c->fp) == n) return;
    c->io_errno = errno ? errno : EIO;
    png_error(png, "write failed");
}

static void flush_fn(png_structp png) { (void)png; }

/* ---------------------------------------------------------------- reading */

typedef struct {
    png_ctx c;
    png_structp png;
    png_infop info;
    unsigned char *buf; /* interleaved samples: one row, or every row when interlaced */
    png_bytep *rows;    /* (height) pointers into buf, interlaced files only */
    uint64_t file_bytes;
} reader;

static dk_status read_failure(const png_ctx *c) {
    if (c->io_errno)
        return dk_fail(DK_ERR_IO, "%s: read failed: %s", c->path, strerror(c->io_errno));
    if (c->eof) return dk_fail(DK_ERR_IO, "%s: truncated PNG (file ends early)", c->path);
    if (c->warn[0])
        return dk_fail(DK_ERR_FORMAT, "%s: %s (libpng warned: %s)", c->path, c->msg, c->warn);
    return dk_fail(DK_ERR_FORMAT, "%s: %s", c->path, c->msg);
}

/* The 8-byte signature, checked before libpng sees the file so the message says what the
 * file is not. */
static dk_status check_signature(FILE *fp, const char *path) {
    png_byte sig[8];
    size_t n = fread(sig, 1, sizeof sig, fp);
    if (ferror(fp)) return dk_fail(DK_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    if (n == 0) return dk_fail(DK_ERR_FORMAT, "%s: empty file (0 bytes), not a PNG", path);
    if (png_sig_cmp(sig, 0, n) != 0)
        return dk_fail(DK_ERR_FORMAT, "%s: not a PNG file (no PNG signature)", path);
    if (n < sizeof sig) return dk_fail(DK_ERR_IO, "%s: truncated PNG (%zu bytes)", path, n);
    return DK_OK;
}

/* See the banner for the choices: palette → RGB(A), low-bit gray unpacked, not scaled. */
static void set_read_transforms(png_structp png, png_infop info) {
    if (png_get_color_type(png, info) == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    } else if (png_get_bit_depth(png, info) < 8) {
        png_set_packing(png);
    }
}

/* One row of interleaved big-endian samples into the planar volume at row y. */
static void deinterleave_row(dk_volume *v, int64_t y, const unsigned char *row) {
    const int64_t nx = v->nx, nc = v->nc, plane = v->nx * v->ny;
    if (v->dtype == DK_U8) {
        uint8_t *d = (uint8_t *)v->data + y * nx;
        for (int64_t c = 0; c < nc; c++)
            for (int64_t x = 0; x < nx; x++)
                d[c * plane + x] = row[x * nc + c];
        return;
    }
    uint16_t *d = (uint16_t *)v->data + y * nx;
    for (int64_t c = 0; c < nc; c++)
        for (int64_t x = 0; x < nx; x++) {
            const unsigned char *s = row + 2 * (x * nc + c);
            d[c * plane + x] = (uint16_t)(s[0] << 8 | s[1]);
        }
}

/* The image IHDR describes, checked before libpng or dakd allocates for it: the volume it
 * reads as (after palette expansion and unpacking) against the volume size limit, and its
 * samples (at the file's bit depth, at least what the IDAT stream must inflate to) against
 * what the file's bytes can inflate to. */
static dk_status check_image_size(const reader *r) {
    const uint64_t w = png_get_image_width(r->png, r->info);
    const uint64_t h = png_get_image_height(r->png, r->info);
    const int type = png_get_color_type(r->png, r->info);
    const int depth = png_get_bit_depth(r->png, r->info);
    const int in_channels = png_get_channels(r->png, r->info); /* 1 for palette indices */
    int nc = in_channels;
    if (type == PNG_COLOR_TYPE_PALETTE) nc = png_get_valid(r->png, r->info, PNG_INFO_tRNS) ? 4 : 3;
    const int64_t n[5] = {(int64_t)w, (int64_t)h, 1, 1, nc};
    dk_status st = dk_volume_check_size(r->c.path, "IHDR width x height (and colour type)", n,
                                        depth == 16 ? DK_U16 : DK_U8);
    if (st != DK_OK) return st;
    /* sides <= 2^24 (the user limits), so this stays below 2^54 */
    const uint64_t bits = w * h * (uint64_t)in_channels * (uint64_t)depth;
    if (bits / 8 > dk_inflate_bound(r->file_bytes))
        return dk_fail(DK_ERR_FORMAT,
                       "%s: IHDR width x height = %llu x %llu (%d channel(s) of %d bits) needs "
                       "%llu bytes of image data, more than the %llu-byte file can hold "
                       "(deflate expands at most 1032:1)",
                       r->c.path, (unsigned long long)w, (unsigned long long)h, in_channels, depth,
                       (unsigned long long)(bits / 8), (unsigned long long)r->file_bytes);
    return DK_OK;
}

/* Allocate the volume and the row buffer for the transformed image described by r->info. */
static dk_status alloc_image(reader *r, dk_volume *v, int passes) {
    const uint32_t w = png_get_image_width(r->png, r->info);
    const uint32_t h = png_get_image_height(r->png, r->info);
    const int nc = png_get_channels(r->png, r->info);
    const int depth = png_get_bit_depth(r->png, r->info);
    const size_t rowbytes = png_get_rowbytes(r->png, r->info);
    if ((depth != 8 && depth != 16) || nc < 1 || nc > 4 ||
        rowbytes != (size_t)w * (size_t)nc * (size_t)(depth / 8))
        return dk_fail(DK_ERR_INTERNAL, "%s: unexpected decoded layout (%d channels, %d bits)",
                       r->c.path, nc, depth);
    dk_status st = dk_volume_alloc(v, w, h, 1, 1, nc, depth == 16 ? DK_U16 : DK_U8);
    if (st != DK_OK) return dk_error_context(st, "%s", r->c.path);
    v->ndim = 2;
    v->color = nc == 3 ? DK_COLOR_RGB : nc == 4 ? DK_COLOR_RGBA : DK_COLOR_NONE;
    const size_t nrows = passes > 1 ? h : 1;
    if (rowbytes > SIZE_MAX / nrows) return dk_fail(DK_ERR_NOMEM, "%s: image too large", r->c.path);
    r->buf = malloc(rowbytes * nrows);
    r->rows = passes > 1 ? malloc(nrows * sizeof *r->rows) : NULL;
    if (!r->buf || (passes > 1 && !r->rows))
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate %zu bytes of rows", r->c.path,
                       rowbytes * nrows);
    for (size_t y = 0; passes > 1 && y < nrows; y++)
        r->rows[y] = r->buf + y * rowbytes;
    return DK_OK;
}

static dk_status decode_body(reader *r, dk_volume *v) {
    png_set_user_limits(r->png, MAX_SIDE, MAX_SIDE);
    png_set_chunk_malloc_max(r->png, MAX_CHUNK);
    png_set_read_fn(r->png, &r->c, read_fn);
    png_set_sig_bytes(r->png, 8);
    png_read_info(r->png, r->info);
    dk_status st = check_image_size(r);
    if (st != DK_OK) return st;
    set_read_transforms(r->png, r->info);
    const int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    st = alloc_image(r, v, passes);
    if (st != DK_OK) return st;
    if (passes > 1) {
        png_read_image(r->png, r->rows);
        for (int64_t y = 0; y < v->ny; y++)
            deinterleave_row(v, y, r->rows[y]);
    } else {
        for (int64_t y = 0; y < v->ny; y++) {
            png_read_row(r->png, r->buf, NULL);
            deinterleave_row(v, y, r->buf);
        }
    }
    png_read_end(r->png, NULL); /* checks the chunks after the image, IEND included */
    return DK_OK;
}

/* The libpng session: a longjmp from any png_* call lands here with the reason in r->c. */
static dk_status decode(reader *r, dk_volume *v) {
    if (setjmp(png_jmpbuf(r->png))) return read_failure(&r->c);
    return decode_body(r, v);
}

dk_status dk_png_read(dk_volume *v, const char *path) {
    DK_ASSERT(v && path);
    memset(v, 0, sizeof *v);
    reader r;
    memset(&r, 0, sizeof r);
    r.c.path = path;
    r.c.fp = fopen(path, "rb");
    if (!r.c.fp) return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    dk_status st = check_signature(r.c.fp, path);
    if (st != DK_OK) goto out;
    struct stat sb;
    if (fstat(fileno(r.c.fp), &sb) != 0) {
        st = dk_fail(DK_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    r.file_bytes = (uint64_t)sb.st_size;
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.c, on_error, on_warning);
    r.info = r.png ? png_create_info_struct(r.png) : NULL;
    if (!r.info) {
        st = dk_fail(DK_ERR_NOMEM, "%s: cannot create the libpng reader", path);
        goto out;
    }
    st = decode(&r, v);
out:
    png_destroy_read_struct(&r.png, &r.info, NULL);
    free(r.rows);
    free(r.buf);
    fclose(r.c.fp);
    if (st != DK_OK) dk_volume_free(v);
    return st;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    png_ctx c;
    png_structp png;
    png_infop info;
    unsigned char *row; /* one interleaved row */
} writer;

static dk_status check_shape(const dk_volume *v, const char *path) {
    if (v->nz != 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: PNG holds one 2-D image; volume has nz=%lld", path,
                       (long long)v->nz);
    if (v->nt != 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: PNG holds one 2-D image; volume has nt=%lld", path,
                       (long long)v->nt);
    if (v->nc < 1 || v->nc > 4)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "%s: PNG holds 1 to 4 channels (gray, gray+alpha, RGB, RGBA); "
                       "volume has nc=%lld",
                       path, (long long)v->nc);
    if (v->nx < 1 || v->ny < 1 || v->nx > MAX_SIDE || v->ny > MAX_SIDE)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: image %lld x %lld outside 1..%u per side", path,
                       (long long)v->nx, (long long)v->ny, MAX_SIDE);
    return DK_OK;
}

/* Bit depth for the samples: 8 or 16 by dtype for U8/U16; for other dtypes 8 when every
 * value is an integer in 0..255, 16 when in 0..65535, else a refusal naming the range
 * (integers) or the first offending value (floats). */
static dk_status choose_depth(const dk_volume *v, const char *path, int *depth) {
    if (v->dtype == DK_U8 || v->dtype == DK_U16) {
        *depth = v->dtype == DK_U8 ? 8 : 16;
        return DK_OK;
    }
    const int64_t n = dk_volume_numel(v);
    const int is_int = dk_dtype_is_integer(v->dtype);
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const double x = dk_volume_get(v, i);
        if (!is_int && !(x >= 0 && x <= 65535 && x == floor(x))) {
            const int64_t plane = v->nx * v->ny;
            return dk_fail(DK_ERR_UNSUPPORTED,
                           "%s: %s value %g at x=%lld y=%lld c=%lld is not an integer in "
                           "0..65535; PNG stores unsigned integers (round or rescale first)",
                           path, dk_dtype_name(v->dtype), x, (long long)(i % v->nx),
                           (long long)(i % plane / v->nx), (long long)(i / plane));
        }
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    if (lo < 0 || hi > 65535)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: %s values span %.0f..%.0f; PNG stores 0..65535",
                       path, dk_dtype_name(v->dtype), lo, hi);
    *depth = hi <= 255 ? 8 : 16;
    return DK_OK;
}

/* Row y of the planar volume as interleaved samples (16-bit big-endian, as PNG stores). */
static void interleave_row(unsigned char *row, const dk_volume *v, int64_t y, int depth) {
    const int64_t nx = v->nx, nc = v->nc, plane = v->nx * v->ny;
    for (int64_t c = 0; c < nc; c++)
        for (int64_t x = 0; x < nx; x++) {
            const int64_t i = c * plane + y * nx + x, k = x * nc + c;
            unsigned s;
            switch (v->dtype) {
            case DK_U8: s = ((const uint8_t *)v->data)[i]; break;
            case DK_U16: s = ((const uint16_t *)v->data)[i]; break;
            default: s = (unsigned)dk_volume_get(v, i); /* range checked by choose_depth */
            }
            if (depth == 8) {
                row[k] = (unsigned char)s;
            } else {
                row[2 * k] = (unsigned char)(s >> 8);
                row[2 * k + 1] = (unsigned char)(s & 0xff);
            }
        }
}

static dk_status encode_body(writer *w, const dk_volume *v, int depth) {
    static const int color_type[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                      PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_user_limits(w->png, MAX_SIDE, MAX_SIDE);
    png_set_write_fn(w->png, &w->c, write_fn, flush_fn);
    png_set_IHDR(w->png, w->info, (png_uint_32)v->nx, (png_uint_32)v->ny, depth, color_type[v->nc],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(w->png, w->info);
    const size_t rowbytes = (size_t)v->nx * (size_t)v->nc * (size_t)(depth / 8);
    w->row = malloc(rowbytes);
    if (!w->row)
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate a %zu-byte row", w->c.path, rowbytes);
    for (int64_t y = 0; y < v->ny; y++) {
        interleave_row(w->row, v, y, depth);
        png_write_row(w->png, w->row);
    }
    png_write_end(w->png, NULL);
    return DK_OK;
}

static dk_status encode(writer *w, const dk_volume *v, int depth) {
    if (setjmp(png_jmpbuf(w->png))) {
        if (w->c.io_errno)
            return dk_fail(DK_ERR_IO, "%s: write failed: %s", w->c.path, strerror(w->c.io_errno));
        return dk_fail(DK_ERR_INTERNAL, "%s: libpng: %s", w->c.path, w->c.msg);
    }
    return encode_body(w, v, depth);
}

dk_status dk_png_write(const dk_volume *v, const char *path) {
    DK_ASSERT(v && v->data && path);
    int depth = 0;
    dk_status st = check_shape(v, path);
    if (st == DK_OK) st = choose_depth(v, path, &depth);
    char tmp[4096];
    if (st == DK_OK) st = dk_tmp_path_for(tmp, sizeof tmp, path);
    if (st != DK_OK) return st;
    writer w;
    memset(&w, 0, sizeof w);
    w.c.path = path;
    w.c.fp = fopen(tmp, "wb");
    if (!w.c.fp)
        return dk_fail(DK_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                       strerror(errno));
    w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w.c, on_error, on_warning);
    w.info = w.png ? png_create_info_struct(w.png) : NULL;
    if (!w.info) {
        st = dk_fail(DK_ERR_NOMEM, "%s: cannot create the libpng writer", path);
        goto out;
    }
    st = encode(&w, v, depth);
    if (st != DK_OK) goto out;
    if (fclose(w.c.fp) != 0) {
        w.c.fp = NULL;
        st = dk_fail(DK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        goto out;
    }
    w.c.fp = NULL;
    st = dk_commit_file(tmp, path); /* removes the temporary itself on failure */
out:
    png_destroy_write_struct(&w.png, &w.info);
    free(w.row);
    if (w.c.fp) fclose(w.c.fp);
    if (st != DK_OK) remove(tmp);
    return st;
}
