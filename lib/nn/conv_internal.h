/* Helpers shared by the convolution kernels (conv.c, convt.c) and the U-Net; not part of
 * the API.
 *
 * Threads: a kernel cuts its work into jobs (one sample, or a chunk of rows of one sample)
 * and runs them under `#pragma omp for schedule(static)` on nt threads, each thread calling
 * single-threaded OpenBLAS (dk_set_threads keeps OpenBLAS at one thread) on its own slot of
 * the workspace. Weight gradients: thread 0 accumulates into dw itself, thread t > 0 into a
 * zeroed partial in the workspace, and the partials are added to dw in thread order, so a
 * fixed thread count gives bit-identical results. The *_nt entry points take nt explicitly
 * (the U-Net runs with the count its workspace was planned for); the public kernels call
 * them with dk_get_threads(). */
#ifndef DAKD_NN_CONV_INTERNAL_H
#define DAKD_NN_CONV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dakd/nn.h"

/* Rows per chunk of a column-type matrix (height, chunk_rows * row_len) when a sample has
 * `rows` rows of row_len positions: as many as fit the chunk budget (4 MB), at least 512
 * columns, at least one row, at most all of them. */
int64_t dk_conv_chunk_rows(int64_t rows, int64_t row_len, int64_t height);
/* Rows per job for n samples of `rows` rows on nt threads: at most max_rows, and cut finer
 * when that makes the job count a multiple of nt (so no thread idles at the end). */
int64_t dk_conv_split_rows(int64_t rows, int64_t max_rows, int64_t n, int nt);
/* A per-thread slot of `floats` floats, rounded up to a 64-byte line (no false sharing). */
static inline size_t dk_conv_slot(size_t floats) { return (floats + 15) & ~(size_t)15; }
/* Inside a parallel region (orphaned omp for): zero the nt - 1 partials at p (stride ld). */
void dk_conv_partials_zero(float *p, size_t ld, int64_t len, int nt);
/* Inside a parallel region: dw (len) += p[0] + ... + p[nt - 2] (stride ld), in that order. */
void dk_conv_partials_add(float *dw, const float *p, size_t ld, int64_t len, int nt);
/* out (n, cout, p) += b (cout), per channel plane. */
void dk_conv_add_bias(float *out, const float *b, int64_t n, int64_t cout, int64_t p);
/* db (cout) += sums of dout (n, cout, p) over n and p (double accumulation, fixed order). */
void dk_conv_bias_grad(float *db, const float *dout, int64_t n, int64_t cout, int64_t p);

size_t dk_conv_work_floats_nt(const dk_conv_shape *s, int nt);
/* The direct path (conv_direct.c): whether it takes this shape on this CPU, its workspace
 * for nt threads, and out = conv(in, w) without bias (add 0: out is only written) or
 * out += conv(in, w) (add 1). */
int dk_conv_direct_applies(const dk_conv_shape *s);
size_t dk_conv_direct_work_floats(const dk_conv_shape *s, int nt);
void dk_conv_direct_forward(float *out, const float *in, const float *w, const dk_conv_shape *s,
                            float *work, int nt, int add);
/* dw (cout, cin, kd, kh, kw) += the weight gradient of a shape the direct path takes; its
 * scratch: one slab per thread (each fills the input channels of its own units). */
size_t dk_conv_direct_dw_work_floats(const dk_conv_shape *s, int nt);
void dk_conv_direct_dw(float *dw, const float *dout, const float *in, const dk_conv_shape *s,
                       float *work, int nt);
void dk_conv_forward_nt(float *out, const float *in, const float *w, const float *b,
                        const dk_conv_shape *s, float *work, int nt);
void dk_conv_backward_nt(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, const dk_conv_shape *s, float *work, int nt);
size_t dk_convt_work_floats_nt(const dk_convt_shape *s, int nt);
void dk_convt_forward_nt(float *out, const float *in, const float *w, const float *b,
                         const dk_convt_shape *s, float *work, int nt);
void dk_convt_backward_nt(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, const dk_convt_shape *s, float *work, int nt);

#endif
