/* The two halves of the test_layers suite: forward values (test_layers.c) and the
 * gradient checks (test_layers_grad.c). */
#ifndef DK_TEST_LAYERS_H
#define DK_TEST_LAYERS_H

#include <math.h>
#include <stdio.h>

#include "test_util.h"

typedef struct {
    const char *name;
    CU_TestFunc fn;
} layer_test;

/* Add a suite holding the n tests t; 0 on success. */
int layers_add_suite(const char *name, const layer_test *t, size_t n);

/* Register the gradient-check suite; 0 on success. */
int layers_grad_register(void);

#endif
