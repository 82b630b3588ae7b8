/* Random label maps for the metric tests and the evaluation benchmark: each label is the
 * union of a few ellipsoids; a voxel takes the label of the ellipsoid in whose normalised
 * radius q = Σ ((x − c) / r)² it lies deepest (q < 1), with optional per-voxel jitter of q
 * so boundaries are ragged. A "prediction" is the same blobs with moved centres, scaled
 * radii and its own jitter. Header-only (static functions). */
#ifndef DK_TEST_BLOBS_H
#define DK_TEST_BLOBS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "dakd/core.h"

typedef struct {
    double c[3], r[3];
    int label;
} blob;

/* per_label ellipsoids for labels 1..n_labels inside an n[0] x n[1] x n[2] grid, radii
 * between rmin and rmax voxels (z radius scaled by zscale, e.g. 1 / 2.5 for thick slices). */
static void blobs_make(blob *b, int n_labels, int per_label, const int64_t n[3], double rmin,
                       double rmax, double zscale, dk_rng *rng) {
    for (int l = 0; l < n_labels; l++)
        for (int k = 0; k < per_label; k++) {
            blob *o = &b[l * per_label + k];
            o->label = l + 1;
            for (int a = 0; a < 3; a++) {
                double r = rmin + (rmax - rmin) * dk_rng_uniform_double(rng);
                if (a == 2) r *= zscale;
                if (n[a] == 1) r = 1e9; /* 2-D: no extent along z */
                o->r[a] = r;
                o->c[a] = n[a] == 1 ? 0 : r * 0.5 + (n[a] - r) * dk_rng_uniform_double(rng);
            }
        }
}

/* The same blobs, centres moved by up to `move` voxels and radii scaled by 1 ± `scale`. */
static void blobs_perturb(blob *out, const blob *in, int nb, double move, double scale,
                          dk_rng *rng) {
    for (int i = 0; i < nb; i++) {
        out[i] = in[i];
        for (int a = 0; a < 3; a++) {
            if (in[i].r[a] > 1e8) continue;
            out[i].c[a] += move * (2 * dk_rng_uniform_double(rng) - 1);
            out[i].r[a] *= 1 + scale * (2 * dk_rng_uniform_double(rng) - 1);
        }
    }
}

/* Paint into out (n voxels, x fastest): label of the deepest ellipsoid, 0 elsewhere;
 * jitter adds jitter·(u − 0.5) to each voxel's q, u uniform from a hash of (voxel, seed). */
static int blobs_paint(uint8_t *out, const blob *b, int nb, const int64_t n[3], double jitter,
                       uint64_t seed) {
    int64_t nvox = n[0] * n[1] * n[2];
    float *best = malloc((size_t)nvox * sizeof *best);
    if (!best) return -1;
    for (int64_t i = 0; i < nvox; i++) best[i] = 1.0f, out[i] = 0;
    for (int k = 0; k < nb; k++) {
        int64_t lo[3], hi[3];
        for (int a = 0; a < 3; a++) {
            double ext = b[k].r[a] * (1 + jitter) + 1;
            lo[a] = (int64_t)fmax(0, floor(b[k].c[a] - ext));
            hi[a] = (int64_t)fmin((double)n[a] - 1, ceil(b[k].c[a] + ext));
        }
        for (int64_t z = lo[2]; z <= hi[2]; z++)
            for (int64_t y = lo[1]; y <= hi[1]; y++)
                for (int64_t x = lo[0]; x <= hi[0]; x++) {
                    int64_t i = (z * n[1] + y) * n[0] + x;
                    double dx = (x - b[k].c[0]) / b[k].r[0], dy = (y - b[k].c[1]) / b[k].r[1];
                    double dz = (z - b[k].c[2]) / b[k].r[2];
                    double q = dx * dx + dy * dy + dz * dz;
                    if (jitter > 0) {
                        uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (seed + (uint64_t)k);
                        h ^= h >> 31;
                        h *= 0xBF58476D1CE4E5B9ull;
                        h ^= h >> 29;
                        q += jitter * ((double)(h >> 11) / 9007199254740992.0 - 0.5);
                    }
                    if (q < best[i]) best[i] = (float)q, out[i] = (uint8_t)b[k].label;
                }
    }
    free(best);
    return 0;
}

#endif
