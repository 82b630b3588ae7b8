/* Helpers shared by the convolution kernels (conv.c, convt.c); not part of the API. */
#ifndef DAKD_NN_CONV_INTERNAL_H
#define DAKD_NN_CONV_INTERNAL_H

#include <stdint.h>

/* Rows per chunk of a column-type matrix (height, chunk_rows * row_len) when a sample has
 * `rows` rows of row_len positions: as many as fit the chunk budget (4 MB), at least 512
 * columns, at least one row, at most all of them. */
int64_t dk_conv_chunk_rows(int64_t rows, int64_t row_len, int64_t height);
/* out (n, cout, p) += b (cout), per channel plane. */
void dk_conv_add_bias(float *out, const float *b, int64_t n, int64_t cout, int64_t p);
/* db (cout) += sums of dout (n, cout, p) over n and p (double accumulation, fixed order). */
void dk_conv_bias_grad(float *db, const float *dout, int64_t n, int64_t cout, int64_t p);

#endif
