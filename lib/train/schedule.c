/*
 * Scalar schedules (mixing ratio, temperature, alpha) as pure functions of (epoch, step);
 * formulas and the method's defaults in dakd/train.h.
 */
#include "dakd/train.h"

#include <math.h>

double dk_schedule_at(const dk_schedule *s, int64_t epoch, int64_t step) {
    DK_ASSERT(s && epoch >= 0 && step >= 0);
    double t = (double)epoch;
    if (s->steps_per_epoch > 0) t += (double)step / (double)s->steps_per_epoch;
    double v = s->v0;
    switch (s->kind) {
    case DK_SCHED_CONSTANT: break;
    case DK_SCHED_LINEAR: v = s->v0 + s->rate * t; break;
    case DK_SCHED_EXP: v = s->v0 * pow(s->rate, t); break;
    case DK_SCHED_STEP:
        DK_ASSERT(s->period >= 1);
        v = s->v0 * pow(s->rate, (double)(epoch / s->period));
        break;
    default: DK_ASSERT(!"unknown schedule kind");
    }
    if (v < s->lo) v = s->lo;
    if (v > s->hi) v = s->hi;
    return v;
}

static dk_schedule make(dk_sched_kind kind, double v0, double rate, double lo, double hi) {
    dk_schedule s = {.kind = kind, .v0 = v0, .rate = rate, .lo = lo, .hi = hi, .period = 1,
                     .steps_per_epoch = 0};
    return s;
}

dk_schedule dk_schedule_mix_default(void) {
    return make(DK_SCHED_LINEAR, 0.8, -0.05, 0.2, HUGE_VAL);
}

dk_schedule dk_schedule_temp_adaptive(void) {
    return make(DK_SCHED_EXP, 5.0, 0.95, 1.0, HUGE_VAL);
}

dk_schedule dk_schedule_temp_halving(void) {
    return make(DK_SCHED_STEP, 10.0, 0.5, 1.0, HUGE_VAL);
}

dk_schedule dk_schedule_constant(double v) {
    return make(DK_SCHED_CONSTANT, v, 0.0, -HUGE_VAL, HUGE_VAL);
}

dk_schedule dk_schedule_ramp(double a0, double a1, double ramp_epochs) {
    DK_ASSERT(ramp_epochs > 0);
    double lo = a0 < a1 ? a0 : a1, hi = a0 < a1 ? a1 : a0;
    return make(DK_SCHED_LINEAR, a0, (a1 - a0) / ramp_epochs, lo, hi);
}
