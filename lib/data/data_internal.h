/* Declarations shared by files of lib/data, not part of dakd/data.h. */
#ifndef DAKD_DATA_INTERNAL_H
#define DAKD_DATA_INTERNAL_H

#include "dakd/data.h"

/* Floats of dk_batch.work for patches of (c, d, h, w): a copy of the patch's image, the
 * deformation field (3 floats a voxel), the in-plane sampling cells, label and mask copies,
 * and the rows of the Gaussian passes (augment_spatial.c lays it out). */
size_t dk__augment_work_floats(int64_t c, int64_t d, int64_t h, int64_t w);

/* Floats of the buffer dk__gauss_axis takes for a block whose longest side is `extent`. */
size_t dk__gauss_work_floats(int64_t extent);

/* How a Gaussian pass reads beyond a line's ends. */
typedef enum {
    DK_EDGE_ZERO = 0, /* 0 (a deformation field fades out) */
    DK_EDGE_MIRROR,   /* scipy's "reflect", d c b a | a b c d | d c b a: constants stay */
    DK_EDGE_CLAMP     /* the end value repeated (scipy's "nearest") */
} dk_edge_mode;

/* Smooth a (d, h, w) float block in place along `axis` (0 = d, 1 = h, 2 = w) with a
 * normalised Gaussian of `sigma` voxels (at most DK_BLUR_SIGMA_MAX) truncated at radius
 * round(4 sigma) (scipy's gaussian_filter1d); sigma 0 or an extent of 1 changes nothing.
 * `buf` holds dk__gauss_work_floats(max(d, h, w)) floats. */
void dk__gauss_axis(float *p, int64_t d, int64_t h, int64_t w, int axis, double sigma,
                    dk_edge_mode edge, float *buf);

#endif
