/*
 * xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64, as in the authors'
 * reference code, so streams can be checked against it bit for bit.
 */
#include "dakd/core.h"

#include <math.h>

static const double TWO_PI = 6.283185307179586476925286766559;

/* The splitmix64 output function (Stafford's Mix13 variant): a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) {
    *x += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(*x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Four successive splitmix64 outputs are never all zero (it is a bijection of distinct
 * counters), so the forbidden all-zero xoshiro state cannot arise. */
static void fill_state(dk_rng *r, uint64_t x) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void dk_rng_seed(dk_rng *r, uint64_t seed) {
    DK_ASSERT(r != NULL);
    fill_state(r, seed);
}

uint64_t dk_rng_u64(dk_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top bits of xoshiro256** are its best; use them for the mantissa. */
float dk_rng_uniform(dk_rng *r) { return (float)(dk_rng_u64(r) >> 40) * 0x1.0p-24f; }

double dk_rng_uniform_double(dk_rng *r) { return (double)(dk_rng_u64(r) >> 11) * 0x1.0p-53; }

/* Modulo with rejection: 2^64 mod n values at the bottom of the range are rejected so the
 * accepted range is a whole multiple of n. At most one retry in two even for the worst n. */
uint64_t dk_rng_below(dk_rng *r, uint64_t n) {
    DK_ASSERT(n > 0);
    const uint64_t threshold = (0 - n) % n; /* == 2^64 mod n */
    for (;;) {
        uint64_t x = dk_rng_u64(r);
        if (x >= threshold) return x % n;
    }
}

double dk_rng_normal(dk_rng *r) {
    /* u1 in (0, 1] keeps log() finite; both uniforms are drawn every call so the state
     * alone determines the stream (no cached second variate to checkpoint). */
    double u1 = 1.0 - dk_rng_uniform_double(r);
    double u2 = dk_rng_uniform_double(r);
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

dk_rng dk_rng_split(const dk_rng *r, uint64_t index) {
    DK_ASSERT(r != NULL);
    /* Hash the index and all four state words into one key, then expand it with
     * splitmix64 like a seed. The parent is untouched, and neighbouring indices give
     * unrelated keys because every step goes through the full mixer. */
    uint64_t h = mix64(index + UINT64_C(0x9e3779b97f4a7c15));
    for (int i = 0; i < 4; i++) h = mix64(h ^ r->s[i]) + UINT64_C(0x9e3779b97f4a7c15);
    dk_rng child;
    fill_state(&child, h);
    return child;
}
