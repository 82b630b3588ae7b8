/*
 * dakd/train.h — losses, schedules and the training loops.
 *
 * Every loss is a forward/backward pair whose formula and normalisation are stated at its
 * declaration; weights and totals are combined by the trainer, never inside a loss.
 * Gradients are ADDED into the caller's buffers (usually a network tap's grad).
 */
#ifndef DAKD_TRAIN_H
#define DAKD_TRAIN_H

#include "dakd/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Softmax cross-entropy over channels:
 *   L = (1/V) * sum_{voxels v with label != 255} -log softmax(logits)[label_v, v]
 * where V is the number of counted voxels (label 255 = ignore). logits (n, c, s), labels
 * (n, s) with values < c or 255. Returns L (0 when V = 0) and adds scale * dL/dlogits
 * into dlogits (n, c, s) (dlogits may be NULL for a forward-only evaluation). */
double dk_loss_ce(float *dlogits, const float *logits, const uint8_t *labels, int64_t n,
                  int64_t c, int64_t s, float scale);

#ifdef __cplusplus
}
#endif
#endif
