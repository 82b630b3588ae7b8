/*
 * CUnit suite for the schedules, dynamic sample weights and the EMA update
 * (lib/train/schedule.c, weights.c): values at key epochs worked out by hand in the
 * comments, purity (same arguments, same value; no hidden state), and the clamps.
 */
#include "dakd/nn.h"
#include "dakd/train.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>

#define CHECK_CLOSE(a, b) CU_ASSERT_DOUBLE_EQUAL((a), (b), 1e-12)

static void test_mixing(void) {
    dk_schedule s = dk_schedule_mix_default();
    /* r(e) = max(0.2, 0.8 - 0.05 e) */
    CHECK_CLOSE(dk_schedule_at(&s, 0, 0), 0.8);
    CHECK_CLOSE(dk_schedule_at(&s, 1, 0), 0.75);
    CHECK_CLOSE(dk_schedule_at(&s, 6, 0), 0.5);
    CHECK_CLOSE(dk_schedule_at(&s, 11, 0), 0.25);
    CHECK_CLOSE(dk_schedule_at(&s, 12, 0), 0.2);
    CHECK_CLOSE(dk_schedule_at(&s, 13, 0), 0.2);
    CHECK_CLOSE(dk_schedule_at(&s, 1000, 0), 0.2);
    /* per epoch: the step inside it changes nothing */
    CHECK_CLOSE(dk_schedule_at(&s, 6, 57), 0.5);
    /* with steps_per_epoch it interpolates: epoch 2, step 25 of 50 is t = 2.5 -> 0.675 */
    s.steps_per_epoch = 50;
    CHECK_CLOSE(dk_schedule_at(&s, 2, 25), 0.675);
}

static void test_temperature(void) {
    dk_schedule a = dk_schedule_temp_adaptive();
    /* T(e) = max(1, 5 * 0.95^e): 5, 4.75, 5 * 0.95^10 = 2.9936846961918935; 0.95^e < 0.2 from
     * e = 32 (0.95^31 = 0.2039, 0.95^32 = 0.1937) */
    CHECK_CLOSE(dk_schedule_at(&a, 0, 0), 5.0);
    CHECK_CLOSE(dk_schedule_at(&a, 1, 0), 4.75);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&a, 10, 0), 2.9936846961918935, 1e-12);
    CU_ASSERT(dk_schedule_at(&a, 31, 0) > 1.0);
    CHECK_CLOSE(dk_schedule_at(&a, 32, 0), 1.0);
    CHECK_CLOSE(dk_schedule_at(&a, 500, 0), 1.0);
    dk_schedule h = dk_schedule_temp_halving();
    /* 10 halved every epoch, floor 1: 10, 5, 2.5, 1.25, 1, 1 */
    const double want[6] = {10, 5, 2.5, 1.25, 1, 1};
    for (int e = 0; e < 6; e++) CHECK_CLOSE(dk_schedule_at(&h, e, 3), want[e]);
    /* every 3 epochs: 10, 10, 10, 5, 5, 5, 2.5 */
    h.period = 3;
    CHECK_CLOSE(dk_schedule_at(&h, 2, 0), 10.0);
    CHECK_CLOSE(dk_schedule_at(&h, 3, 0), 5.0);
    CHECK_CLOSE(dk_schedule_at(&h, 6, 0), 2.5);
    dk_schedule c = dk_schedule_constant(4.0);
    CHECK_CLOSE(dk_schedule_at(&c, 0, 0), 4.0);
    CHECK_CLOSE(dk_schedule_at(&c, 99, 7), 4.0);
}

static void test_alpha(void) {
    dk_schedule c = dk_schedule_constant(0.8);
    CHECK_CLOSE(dk_schedule_at(&c, 0, 0), 0.8);
    CHECK_CLOSE(dk_schedule_at(&c, 50, 0), 0.8);
    /* ramp 0 -> 0.8 over 10 epochs: 0, 0.4 at e = 5, 0.8 from e = 10 */
    dk_schedule r = dk_schedule_ramp(0.0, 0.8, 10.0);
    CHECK_CLOSE(dk_schedule_at(&r, 0, 0), 0.0);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&r, 5, 0), 0.4, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&r, 10, 0), 0.8, 1e-15);
    CHECK_CLOSE(dk_schedule_at(&r, 30, 0), 0.8);
    /* a downward ramp clamps at its end too */
    dk_schedule d = dk_schedule_ramp(1.0, 0.5, 5.0);
    CU_ASSERT_DOUBLE_EQUAL(dk_schedule_at(&d, 1, 0), 0.9, 1e-15);
    CHECK_CLOSE(dk_schedule_at(&d, 9, 0), 0.5);
    /* pure: asking again in another order gives the same numbers */
    double first = dk_schedule_at(&r, 3, 0);
    (void)dk_schedule_at(&r, 9, 0);
    CU_ASSERT_EQUAL(dk_schedule_at(&r, 3, 0), first);
}

static void test_dynweights(void) {
    dk_dynweights d;
    dk_dynweights_defaults(&d);
    CHECK_CLOSE(d.beta, 0.5);
    CHECK_CLOSE(d.gain, 0.3);
    CHECK_CLOSE(d.momentum, 0.9);
    /* batch 1: losses 1, 2, 3 -> lbar = 2, dbar = mean |l - 2| = 2/3 (the first batch sets
     * both); Delta = (l - 2) / (2/3) = -1.5, 0, 1.5; w = 0.5 (1 + 0.3 tanh(Delta)):
     * tanh(1.5) = 0.9051482536448664 -> 0.36422776195327006, 0.5, 0.6357722380467299 */
    const double l1[3] = {1.0, 2.0, 3.0};
    float w[3];
    dk_dynweights_update(&d, l1, 3);
    CHECK_CLOSE(d.lbar, 2.0);
    CU_ASSERT_DOUBLE_EQUAL(d.dbar, 2.0 / 3.0, 1e-15);
    dk_dynweights_compute(w, &d, l1, 3);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.36422776195327006, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(w[1], 0.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(w[2], 0.6357722380467299, 1e-7);
    /* batch 2: mean 5 -> lbar = 0.9 * 2 + 0.1 * 5 = 2.3; mean |l - 2.3| = 2.7 -> dbar =
     * 0.9 * 2/3 + 0.1 * 2.7 = 0.87; w(5) = 0.5 (1 + 0.3 tanh(2.7 / 0.87)) = 0.6493965713855896 */
    const double l2[2] = {4.0, 6.0};
    dk_dynweights_update(&d, l2, 2);
    CU_ASSERT_DOUBLE_EQUAL(d.lbar, 2.3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(d.dbar, 0.87, 1e-15);
    const double five = 5.0;
    dk_dynweights_compute(w, &d, &five, 1);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.6493965713855896, 1e-7);
    /* weights stay within beta (1 -+ gain) whatever the loss */
    const double far[2] = {-1e6, 1e6};
    dk_dynweights_compute(w, &d, far, 2);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 0.35, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(w[1], 0.65, 1e-7);
    /* normalised by the spread: losses 1000 times smaller (late in training) or larger give
     * the same weights, neither all beta (tanh vanishing) nor all beta (1 -+ gain) */
    for (int k = 0; k < 2; k++) {
        double sc = k ? 1e3 : 1e-3, ls[3] = {1.0 * sc, 2.0 * sc, 3.0 * sc};
        float ws[3];
        dk_dynweights d2;
        dk_dynweights_defaults(&d2);
        dk_dynweights_update(&d2, ls, 3);
        dk_dynweights_compute(ws, &d2, ls, 3);
        CU_ASSERT_DOUBLE_EQUAL(ws[0], 0.36422776195327006, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(ws[2], 0.6357722380467299, 1e-6);
    }
}

/* The mean teacher's ramp-up: exp(-5) at 0, exp(-5 (1 - 2/5)^2) at 2 of 5 epochs, 1 after;
 * no ramp: 1 throughout. */
static void test_ema_rampup(void) {
    CU_ASSERT_DOUBLE_EQUAL(dk_ema_rampup(0, 5), 0.006737946999085467, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dk_ema_rampup(2, 5), 0.16529888822158656, 1e-15);
    CHECK_CLOSE(dk_ema_rampup(5, 5), 1.0);
    CHECK_CLOSE(dk_ema_rampup(40, 5), 1.0);
    CHECK_CLOSE(dk_ema_rampup(0, 0), 1.0);
    CU_ASSERT(dk_ema_rampup(1, 5) < dk_ema_rampup(1.5, 5));
}

static void test_ema(void) {
    dk_params a, b;
    dk_params_init(&a), dk_params_init(&b);
    const int64_t shape[1] = {5};
    CU_ASSERT(dk_params_add(&a, "w", 1, shape) == 0 && dk_params_add(&b, "w", 1, shape) == 0);
    CU_ASSERT_EQUAL(dk_params_alloc(&a, 0), DK_OK);
    CU_ASSERT_EQUAL(dk_params_alloc(&b, 0), DK_OK);
    for (int i = 0; i < 5; i++) a.w[i] = (float)i, b.w[i] = 10.0f;
    /* m = 0.99: 0.99 * i + 0.01 * 10 = 0.1, 1.09, 2.08, 3.07, 4.06 */
    dk_ema_update(&a, &b, 0.99);
    const double want[5] = {0.1, 1.09, 2.08, 3.07, 4.06};
    for (int i = 0; i < 5; i++) CU_ASSERT_DOUBLE_EQUAL(a.w[i], want[i], 1e-6);
    /* m = 0 copies; m = 1 keeps */
    dk_ema_update(&a, &b, 1.0);
    CU_ASSERT_DOUBLE_EQUAL(a.w[4], 4.06, 1e-6);
    dk_ema_update(&a, &b, 0.0);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(a.w[i], 10.0f);
    /* b is read only */
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(b.w[i], 10.0f);
    dk_params_free(&a), dk_params_free(&b);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("train.schedules", NULL, NULL);
    if (!s || !CU_add_test(s, "mixing ratio", test_mixing) ||
        !CU_add_test(s, "temperature", test_temperature) ||
        !CU_add_test(s, "alpha", test_alpha) ||
        !CU_add_test(s, "dynamic sample weights", test_dynweights) ||
        !CU_add_test(s, "EMA teacher ramp-up", test_ema_rampup) ||
        !CU_add_test(s, "EMA update", test_ema)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
