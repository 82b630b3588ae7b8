/*
 * Inputs for prediction, shared by the inference suite (test_infer) and its benchmark
 * (bench_predict): random images and a model file that carries the "dakd.data.*"
 * preprocessing metadata dk_predict_run reads.
 */
#ifndef DK_PREDICT_FIXTURE_H
#define DK_PREDICT_FIXTURE_H

#include <stdint.h>

#include "dakd/nn.h"
#include "dakd/volume.h"

/* Allocate v as a float32 image (nc, nz, ny, nx) of N(0, 1) values from `seed`; 2-D when
 * nz == 1. 0, or -1 when the allocation fails. */
int dk_test_noise_image(dk_volume *v, int64_t nx, int64_t ny, int64_t nz, int64_t nc,
                        uint64_t seed);

/* Save `net` to `path` as a model whose metadata says: channels ("all" or "index"), norm
 * ("zscore", ...), spacing, patch ("d,h,w") and classes as written; the other fields are
 * fixed (percentiles 0.5/99.5, CT 40/400, statistics inside the mask). 0 or -1. */
int dk_test_save_model(const char *path, dk_unet *net, const char *channels, const char *norm,
                       const char *spacing, const char *patch, const char *classes);

/* A random 3-D model of 4 classes (seed 11; head bias 0.05 * class, so every class wins
 * somewhere), saved to `path` with z-score normalisation, no resampling and the training
 * patch `patch` ("d,h,w"). 0 or -1. */
int dk_test_random_model(const char *path, const char *patch);
/* The same model, its metadata asking for resampling to `spacing` ("x,y,z" mm). */
int dk_test_random_model_at(const char *path, const char *patch, const char *spacing);

/* Run `dakd <args>` (printf-style; dk_test_vcli) with its output kept for dk_test_expect;
 * returns its exit status. */
int dk_test_dakd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last dk_test_dakd run checked with CUnit: exit code `rc` is `code` and every needle
 * (NULL-terminated list, may be NULL) is in its output; prints the output when not. */
void dk_test_expect(int rc, int code, const char *const *needles);

#endif
