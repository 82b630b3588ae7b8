/*
 * Siemens mosaics: one DICOM image holding the slices of one acquisition as tiles of a
 * square grid (ImageType MOSAIC; the count in the CSA image header's NumberOfImagesInMosaic).
 * Split as dcm2niix and nibabel do: tiles of (Rows / m) x (Columns / m) for an m x m grid,
 * m = ceil(sqrt(count)), tile k at grid row k / m and column k % m. ImagePositionPatient
 * of a mosaic is the corner of the whole mosaic, so the first slice sits
 * ((Columns - tile columns) / 2, (Rows - tile rows) / 2) pixels further along the row and
 * column directions; slice k is k * SpacingBetweenSlices (else SliceThickness) further
 * along the CSA SliceNormalVector. The tiles then become the frames of the file, and the
 * series planner orders them like any other images.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom_internal.h"

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* CSA2: "SV10", 4 bytes, n_tags, 4 bytes; each tag: name[64], vm, vr[4], syngodt, nitems,
 * 4 bytes (84 in all), then nitems items of a 16-byte header (the second word is the
 * value's length) and the value as text, padded to 4 bytes. */
int dk_dcm_csa_values(double *out, int max, const unsigned char *b, size_t n,
                      const char *name) {
    if (n < 16 || memcmp(b, "SV10", 4)) return 0;
    uint32_t ntags = le32(b + 8);
    size_t at = 16;
    for (uint32_t t = 0; t < ntags && t < 1000; t++) {
        if (n - at < 84) return 0;
        const unsigned char *tag = b + at;
        uint32_t vm = le32(tag + 64), nitems = le32(tag + 76);
        int match = strnlen((const char *)tag, 64) < 64 && !strcmp((const char *)tag, name);
        at += 84;
        int got = 0;
        for (uint32_t i = 0; i < nitems && i < 1000; i++) {
            if (n - at < 16) return 0;
            uint32_t len = le32(b + at + 4);
            at += 16;
            if (len > n - at) return 0;
            if (match && got < max && i < vm && len > 0) {
                char text[64];
                snprintf(text, sizeof text, "%.*s", (int)(len < 63 ? len : 63), b + at);
                char *end;
                double x = strtod(text, &end);
                if (end == text) return got;
                out[got++] = x;
            }
            size_t padded = (size_t)len + (4 - len % 4) % 4;
            at += padded < n - at ? padded : n - at;
        }
        if (match) return got;
    }
    return 0;
}

static dk_status refuse(const dk_dcm_file *f, const char *why) {
    return dk_fail(DK_ERR_UNSUPPORTED, "%s: Siemens mosaic of %d images in %d x %d pixels: "
                   "%s, so its slices cannot be laid out", f->path, f->mosaic_images, f->cols,
                   f->rows, why);
}

dk_status dk_dcm_demosaic(dk_dcm_file *f) {
    int n = f->mosaic_images;
    if (n <= 1 || f->mosaic_rows) return DK_OK;
    int m = (int)ceil(sqrt((double)n));
    if (f->nframes != 1) return refuse(f, "the file has several frames");
    if (f->rows % m || f->cols % m) return refuse(f, "the image is no square grid of tiles");
    if (!f->has_slice_normal) return refuse(f, "the CSA header has no SliceNormalVector");
    const dk_dcm_frame base = f->frames[0];
    if (!base.has_ipp || !base.has_iop) return refuse(f, "it has no position or orientation");
    double dz = f->between > 0 ? f->between : f->thickness;
    double len = sqrt(f->slice_normal[0] * f->slice_normal[0] +
                      f->slice_normal[1] * f->slice_normal[1] +
                      f->slice_normal[2] * f->slice_normal[2]);
    if (!(dz > 0) || !(len > 0.5)) return refuse(f, "its slice spacing or normal is unusable");
    dk_dcm_frame *fr = realloc(f->frames, sizeof *fr * (size_t)n);
    if (!fr) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", f->path);
    f->frames = fr;
    int trows = f->rows / m, tcols = f->cols / m;
    double corner[3]; /* the first slice's pixel (0,0) */
    for (int r = 0; r < 3; r++)
        corner[r] = base.ipp[r] + base.iop[r] * f->spacing[1] * (f->cols - tcols) / 2.0 +
                    base.iop[3 + r] * f->spacing[0] * (f->rows - trows) / 2.0;
    for (int k = 0; k < n; k++) {
        fr[k] = base;
        for (int r = 0; r < 3; r++) fr[k].ipp[r] = corner[r] + k * dz * f->slice_normal[r] / len;
    }
    f->mosaic_rows = f->rows, f->mosaic_cols = f->cols;
    f->rows = trows, f->cols = tcols, f->nframes = n;
    return DK_OK;
}

/* Copy tile k of the decoded mosaic `whole` to image slot[k] of `base`. */
#define COPY_TILES(T)                                                                          \
    for (int k = 0; k < f->nframes; k++) {                                                     \
        if (slot[k] < 0) continue;                                                             \
        T *dst = (T *)base + (size_t)slot[k] * plane;                                          \
        const T *src = (const T *)whole + (size_t)(k / m) * f->rows * f->mosaic_cols +         \
                       (size_t)(k % m) * f->cols;                                              \
        for (int y = 0; y < f->rows; y++)                                                      \
            memcpy(dst + (size_t)y * f->cols, src + (size_t)y * f->mosaic_cols,                 \
                   sizeof(T) * (size_t)f->cols);                                               \
    }

dk_status dk_dcm_mosaic_read_pixels(void *base, int use_double, const dk_dcm_file *f,
                                    const int64_t *slot) {
    size_t elem = use_double ? sizeof(double) : sizeof(float);
    size_t plane = (size_t)f->rows * (size_t)f->cols;
    void *whole = malloc((size_t)f->mosaic_rows * (size_t)f->mosaic_cols * elem);
    if (!whole) return dk_fail(DK_ERR_NOMEM, "%s: out of memory for the mosaic", f->path);
    dk_dcm_file stored = *f; /* the image as stored: one frame, the whole mosaic */
    stored.rows = f->mosaic_rows, stored.cols = f->mosaic_cols, stored.nframes = 1;
    const int64_t zero = 0;
    dk_status st = dk_itk_dcm_read_pixels(whole, use_double, &stored, &zero);
    int m = f->mosaic_cols / f->cols;
    if (st == DK_OK && use_double) COPY_TILES(double)
    else if (st == DK_OK) COPY_TILES(float)
    free(whole);
    return st;
}
