/*
 * Per-case overlay images for report.html, encoded as PNG in memory (libpng with
 * png_set_write_fn) and inlined as base64.
 *
 * Labels: a voxel's "shown label" is its value when that value is one of the run's labels,
 * else 0. The slice shown is the axial slice z with the most voxels whose shown labels
 * differ between prediction and reference (FP + FN over the labels; the first such slice
 * on ties; with no disagreement at all, the slice with the most reference voxels); a 2-D
 * case shows its one image.
 * Background: the image of --image (the mean of its channels for colour images), windowed
 * linearly to the 1st–99th percentile of the slice; without one, the reference's shown
 * labels as grey levels (0 black, labels 110..220 by their rank).
 * Contours: a pixel is on a label map's contour when its shown label is non-zero and one of
 * its 4 in-slice neighbours (or the image edge) has another shown label. Reference green,
 * prediction magenta, both yellow.
 * Scale: an image whose long side exceeds 384 pixels is reduced by box averaging (a
 * contour pixel anywhere in a box marks it); a smaller one is enlarged by the largest
 * integer factor that keeps the long side at most 384 (nearest neighbour), and its
 * contours are found on the enlarged picture (lines 2 pixels wide, inside the label), so
 * they stay thin. The PNG is palette-coded: 64 grey levels and the three contour colours.
 */
#include "report_internal.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SIDE_PX = 384 };

static int label_rank(const int *labels, int n_labels, int64_t v) {
    for (int k = 0; k < n_labels; k++)
        if (labels[k] == v) return k + 1;
    return 0;
}

/* Shown label (1-based rank in the label list, 0 = none) of element i. */
static int shown(const dk_volume *v, int64_t i, const int *labels, int n_labels) {
    double x = dk_volume_get(v, i);
    return x > 0 ? label_rank(labels, n_labels, (int64_t)llround(x)) : 0;
}

static int64_t pick_slice(const dk_volume *pred, const dk_volume *ref, const int *labels,
                          int n_labels, int64_t *disagree) {
    int64_t plane = ref->nx * ref->ny, best = 0, best_d = -1, best_r = -1, best_rz = 0;
    for (int64_t z = 0; z < ref->nz; z++) {
        int64_t d = 0, r = 0;
        for (int64_t i = z * plane; i < (z + 1) * plane; i++) {
            int a = shown(ref, i, labels, n_labels);
            d += a != shown(pred, i, labels, n_labels);
            r += a != 0;
        }
        if (d > best_d) best_d = d, best = z;
        if (r > best_r) best_r = r, best_rz = z;
    }
    *disagree = best_d;
    return best_d > 0 ? best : best_rz;
}

/* Grey background of slice z into g (nx*ny bytes). */
static dk_status background(uint8_t *g, const dk_volume *image, const dk_volume *ref,
                            int64_t z, const int *labels, int n_labels) {
    int64_t plane = ref->nx * ref->ny;
    if (!image) {
        for (int64_t i = 0; i < plane; i++) {
            int k = shown(ref, z * plane + i, labels, n_labels);
            g[i] = k ? (uint8_t)(110 + (110 * k) / n_labels) : 0;
        }
        return DK_OK;
    }
    float *v = malloc((size_t)plane * 3 * sizeof *v); /* slice, finite slice, work */
    if (!v) return dk_fail(DK_ERR_NOMEM, "overlay: %lld pixels", (long long)plane);
    int64_t vol = image->nx * image->ny * image->nz * image->nt;
    for (int64_t i = 0; i < plane; i++) {
        double s = 0;
        for (int64_t c = 0; c < image->nc; c++) s += dk_volume_get(image, c * vol + z * plane + i);
        v[i] = (float)(s / (double)image->nc);
        v[plane + i] = isfinite(v[i]) ? v[i] : 0.0f;
    }
    double lo = dk_percentile(v + plane, plane, 1.0, v + 2 * plane);
    double hi = dk_percentile(v + plane, plane, 99.0, v + 2 * plane);
    double span = hi > lo ? hi - lo : 1.0;
    for (int64_t i = 0; i < plane; i++) {
        double t = isfinite(v[i]) ? (v[i] - lo) / span : 0.0;
        g[i] = (uint8_t)lround(255.0 * (t < 0 ? 0 : t > 1 ? 1 : t));
    }
    free(v);
    return DK_OK;
}

/* Shown labels of slice z: ref into l[0..plane), pred into l[plane..2 plane). */
static void slice_labels(uint16_t *l, const dk_volume *pred, const dk_volume *ref, int64_t z,
                         const int *labels, int n_labels) {
    int64_t plane = ref->nx * ref->ny;
    for (int64_t i = 0; i < plane; i++) {
        l[i] = (uint16_t)shown(ref, z * plane + i, labels, n_labels);
        l[plane + i] = (uint16_t)shown(pred, z * plane + i, labels, n_labels);
    }
}

/* On the picture of label map l (nx × ny) enlarged f times, is pixel (X, Y) on a contour:
 * its label non-zero and a pixel within t steps along x or y (or the border) different? */
static int on_contour(const uint16_t *l, int64_t nx, int64_t ny, int64_t f, int64_t X,
                      int64_t Y, int t) {
    uint16_t k = l[(Y / f) * nx + X / f];
    if (!k) return 0;
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    for (int d = 1; d <= t; d++)
        for (int q = 0; q < 4; q++) {
            int64_t x = X + dx[q] * d, y = Y + dy[q] * d;
            if (x < 0 || y < 0 || x >= nx * f || y >= ny * f) return 1;
            if (l[(y / f) * nx + x / f] != k) return 1;
        }
    return 0;
}

/* Contour bits (1 reference, 2 prediction) and grey level of output pixel (ox, oy): an
 * enlarged picture (f >= 1) tests the pixel itself with 2-pixel lines (1 when f < 3); a
 * reduced one (s source pixels per output pixel) ORs the 1-pixel contours of its box and
 * averages its grey levels. */
static int pixel(uint8_t *grey, const uint8_t *g, const uint16_t *l, int64_t nx, int64_t ny,
                 int64_t f, double s, int ox, int oy) {
    int bits = 0;
    if (f >= 1) {
        for (int w = 0; w < 2; w++)
            bits |= on_contour(l + w * nx * ny, nx, ny, f, ox, oy, f < 3 ? 1 : 2) << w;
        *grey = g[(oy / f) * nx + ox / f];
        return bits;
    }
    int64_t x0 = (int64_t)floor(ox * s), y0 = (int64_t)floor(oy * s);
    int64_t x1 = (int64_t)floor((ox + 1) * s), y1 = (int64_t)floor((oy + 1) * s);
    x1 = x1 > nx ? nx : x1 <= x0 ? x0 + 1 : x1;
    y1 = y1 > ny ? ny : y1 <= y0 ? y0 + 1 : y1;
    double sum = 0;
    for (int64_t y = y0; y < y1; y++)
        for (int64_t x = x0; x < x1; x++) {
            sum += g[y * nx + x];
            for (int w = 0; w < 2; w++)
                bits |= on_contour(l + w * nx * ny, nx, ny, 1, x, y, 1) << w;
        }
    *grey = (uint8_t)lround(sum / (double)((x1 - x0) * (y1 - y0)));
    return bits;
}

/* Palette: GREYS grey levels, then the contour colours (reference, prediction, both). */
enum { GREYS = 64 };

/* Compose the scaled picture as palette indices (w*h bytes, allocated). */
static uint8_t *compose(const uint8_t *g, const uint16_t *l, int64_t nx, int64_t ny, int *w,
                        int *h) {
    int64_t longest = nx > ny ? nx : ny;
    int64_t f = longest > MAX_SIDE_PX ? 0 : MAX_SIDE_PX / longest; /* enlargement */
    double s = f ? 1.0 / (double)f : (double)longest / MAX_SIDE_PX;
    *w = f ? (int)(nx * f) : (int)ceil((double)nx / s - 1e-9);
    *h = f ? (int)(ny * f) : (int)ceil((double)ny / s - 1e-9);
    uint8_t *px = malloc((size_t)*w * (size_t)*h);
    if (!px) return NULL;
    for (int oy = 0; oy < *h; oy++)
        for (int ox = 0; ox < *w; ox++) {
            uint8_t grey;
            int bits = pixel(&grey, g, l, nx, ny, f, s, ox, oy);
            px[(size_t)oy * (size_t)*w + (size_t)ox] =
                (uint8_t)(bits ? GREYS - 1 + bits : (grey * (GREYS - 1) + 127) / 255);
        }
    return px;
}

/* ---------------------------------------------------------------- PNG in memory */

typedef struct {
    dk_sbuf png; /* the encoded bytes */
    char msg[200];
} mem_writer;

static void on_error(png_structp png, png_const_charp msg) {
    mem_writer *m = png_get_error_ptr(png);
    snprintf(m->msg, sizeof m->msg, "%s", msg);
    png_longjmp(png, 1);
}
static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }
static void write_fn(png_structp png, png_bytep in, size_t n) {
    mem_writer *m = png_get_io_ptr(png);
    dk_sb_putn(&m->png, (const char *)in, n);
}
static void flush_fn(png_structp png) { (void)png; }

/* The setjmp lives alone in this function: nothing local changes after it. */
static int encode(png_structp png, png_infop info, const uint8_t *px, int w, int h) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_color pal[GREYS + 3];
    for (int i = 0; i < GREYS; i++)
        pal[i].red = pal[i].green = pal[i].blue = (png_byte)((i * 255 + (GREYS - 1) / 2) /
                                                             (GREYS - 1));
    static const png_color contour[3] = {{0, 220, 0}, {255, 0, 255}, {255, 210, 0}};
    memcpy(pal + GREYS, contour, sizeof contour);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_PALETTE,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, pal, GREYS + 3);
    png_set_compression_level(png, 9);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * (size_t)w);
    png_write_end(png, info);
    return 0;
}

static dk_status png_base64(dk_rep_case *c, const uint8_t *px, int w, int h) {
    mem_writer m;
    memset(&m, 0, sizeof m);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &m, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (info) {
        png_set_write_fn(png, &m, write_fn, flush_fn);
        rc = encode(png, info, px, w, h);
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    if (rc != 0 || m.png.oom) {
        dk_sb_free(&m.png);
        return dk_fail(m.png.oom ? DK_ERR_NOMEM : DK_ERR_INTERNAL, "%s: overlay PNG: %s", c->id,
                       m.msg[0] ? m.msg : "libpng failed");
    }
    dk_sbuf b64 = {0};
    dk_sb_base64(&b64, (const unsigned char *)m.png.s, m.png.len);
    dk_sb_free(&m.png);
    if (b64.oom) {
        dk_sb_free(&b64);
        return dk_fail(DK_ERR_NOMEM, "%s: overlay base64", c->id);
    }
    c->overlay_b64 = b64.s;
    c->overlay_w = w;
    c->overlay_h = h;
    return DK_OK;
}

dk_status dk_rep_overlay(dk_rep_case *c, const dk_volume *pred, const dk_volume *ref,
                         const dk_volume *image, const int *labels, int n_labels) {
    if (image && (image->nx != ref->nx || image->ny != ref->ny || image->nz != ref->nz))
        return dk_fail(DK_ERR_FORMAT, "case %s: %s: image grid %lldx%lldx%lld differs from the "
                       "reference's %lldx%lldx%lld", c->id, c->image, (long long)image->nx,
                       (long long)image->ny, (long long)image->nz, (long long)ref->nx,
                       (long long)ref->ny, (long long)ref->nz);
    int64_t plane = ref->nx * ref->ny;
    c->overlay_3d = ref->nz > 1;
    c->overlay_z = pick_slice(pred, ref, labels, n_labels, &c->overlay_disagree);
    uint8_t *g = malloc((size_t)plane);
    uint16_t *l = malloc((size_t)plane * 2 * sizeof *l);
    dk_status st = g && l ? background(g, image, ref, c->overlay_z, labels, n_labels)
                          : dk_fail(DK_ERR_NOMEM, "case %s: overlay of %lld pixels", c->id,
                                    (long long)plane);
    if (st == DK_OK) {
        slice_labels(l, pred, ref, c->overlay_z, labels, n_labels);
        int w, h;
        uint8_t *px = compose(g, l, ref->nx, ref->ny, &w, &h);
        st = px ? png_base64(c, px, w, h)
                 : dk_fail(DK_ERR_NOMEM, "case %s: overlay picture", c->id);
        free(px);
    }
    free(g);
    free(l);
    return st;
}
