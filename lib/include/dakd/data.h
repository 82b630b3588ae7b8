/*
 * dakd/data.h — data made or changed before it reaches a network.
 *
 * Now: the two-domain phantom generator (the embedded demo data). Later issues add
 * orientation, resampling, intensity normalisation, patch sampling and augmentation here.
 * What it does not do: file I/O (dakd/volume.h), networks (dakd/nn.h).
 */
#ifndef DAKD_DATA_H
#define DAKD_DATA_H

#include "dakd/core.h"
#include "dakd/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A synthetic scan with a known label map: a body ellipsoid (label 0 background inside
 * it), an "organ" (label 1, a wobbly ellipsoid), two "kidneys" (label 2) and a curved
 * "vessel" tube (label 3). The domain sets how the labels look:
 *   domain 0 (source): organ brighter than body, mild bias field, low noise;
 *   domain 1 (target): contrast changed (organ darker than body, vessels brighter),
 *   stronger multiplicative bias field, more noise, Gaussian blur.
 * Shapes differ per case through `rng`; the same seed gives the same case. */
typedef struct {
    int64_t nx, ny, nz;  /* grid; nz = 1 makes a 2-D slice phantom */
    double spacing[3];   /* mm; 0 = 1 mm */
    int domain;          /* 0 source, 1 target */
} dk_phantom_opts;

/* Fill `image` (float32, nc = 1) and `label` (uint8) on the same LPS grid (axial,
 * origin at the grid centre). Both are allocated here and owned by the caller.
 * DK_ERR_ARG for bad sizes or domain, DK_ERR_NOMEM. */
dk_status dk_phantom_generate(dk_volume *image, dk_volume *label, const dk_phantom_opts *opts,
                              dk_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
