/*
 * CUnit suite for lib/data (part 2): the patch sampler (foreground fraction, padding,
 * unlabelled and masked cases), augmentation (identities and image/label consistency,
 * intensity transforms against hand-computed values) and the seeded batch stream.
 */
#include "dakd/data.h"
#include "test_data.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A case with image value ch*100000 + voxel index, and optional label and mask. */
static void make_case(dk_case_data *c, int64_t nx, int64_t ny, int64_t nz, int64_t nc,
                      int with_label, int with_mask) {
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "c%lldx%lld", (long long)nx, (long long)ny);
    CU_ASSERT_FATAL(dk_volume_alloc(&c->image, nx, ny, nz, 1, nc, DK_F32) == DK_OK);
    float *x = c->image.data;
    for (int64_t i = 0; i < dk_volume_numel(&c->image); i++)
        x[i] = (float)(i / (nx * ny * nz) * 100000 + i % (nx * ny * nz));
    if (with_label) CU_ASSERT_FATAL(dk_volume_alloc(&c->label, nx, ny, nz, 1, 1, DK_U8) == DK_OK);
    if (with_mask) CU_ASSERT_FATAL(dk_volume_alloc(&c->mask, nx, ny, nz, 1, 1, DK_U8) == DK_OK);
}

static void set_box(dk_volume *v, int64_t x0, int64_t x1, int64_t y0, int64_t y1, uint8_t val) {
    uint8_t *p = v->data;
    for (int64_t z = 0; z < v->nz; z++)
        for (int64_t y = y0; y < y1; y++)
            for (int64_t x = x0; x < x1; x++) p[(z * v->ny + y) * v->nx + x] = val;
}

/* Voxels of patch j that differ from what the rules say they should hold. */
static int64_t patch_mismatches(const dk_batch *b, int64_t j, const dk_case_data *c) {
    const dk_tensor *t = &b->image;
    const int64_t *s = b->start[j], X = c->image.nx, Y = c->image.ny, Z = c->image.nz;
    const uint8_t *lab = c->label.data, *msk = c->mask.data;
    int64_t bad = 0;
    for (int64_t z = 0; z < t->d; z++)
        for (int64_t y = 0; y < t->h; y++)
            for (int64_t x = 0; x < t->w; x++) {
                int64_t sz = s[0] + z, sy = s[1] + y, sx = s[2] + x;
                int in = sz >= 0 && sz < Z && sy >= 0 && sy < Y && sx >= 0 && sx < X;
                int64_t si = (sz * Y + sy) * X + sx, o = ((j * t->d + z) * t->h + y) * t->w + x;
                uint8_t wl = in ? (lab ? lab[si] : 255) : 255, wm = in ? (msk ? msk[si] : 1) : 0;
                bad += b->label[o] != wl || b->mask[o] != wm;
                for (int64_t ch = 0; ch < t->c; ch++) {
                    float want = in ? ((float *)c->image.data)[ch * Z * Y * X + si] : 0.0f;
                    bad += *dk_tensor_at(t, j, ch, z, y, x) != want;
                }
            }
    return bad;
}

/* Default sampler options with patch (d, h, w). */
static dk_sampler_opts patch_opts(int64_t d, int64_t h, int64_t w) {
    dk_sampler_opts o;
    dk_sampler_defaults(&o);
    o.patch[0] = d, o.patch[1] = h, o.patch[2] = w;
    return o;
}

/* A sampler over the cases and a batch of n patches that fits it. */
static void start_sampling(dk_sampler *s, dk_batch *b, const dk_case_data *c, int n_cases,
                           const dk_sampler_opts *o, int64_t n) {
    CU_ASSERT_FATAL(dk_sampler_init(s, c, n_cases, o) == DK_OK);
    CU_ASSERT_FATAL(dk_batch_alloc(b, n, c[0].image.nc, o->patch[0], o->patch[1],
                                   o->patch[2]) == DK_OK);
}

/* ------------------------------------------------------------------ sampler */

static void test_foreground_fraction(void) {
    dk_case_data c;
    make_case(&c, 96, 96, 1, 2, 1, 0);
    set_box(&c.label, 70, 74, 10, 14, 1); /* 16 foreground voxels of 9216 */
    dk_sampler s;
    dk_batch b;
    dk_sampler_opts o = patch_opts(1, 16, 16);
    start_sampling(&s, &b, &c, 1, &o, 6);
    dk_rng r;
    dk_rng_seed(&r, 1);
    int64_t n_fg = 0, centred = 0, bad = 0, total = 0;
    for (int it = 0; it < 400; it++) {
        dk_sampler_fill(&b, &s, &r);
        for (int j = 0; j < 6; j++, total++) {
            int64_t o_c = (j * 16 + 8) * 16 + 8; /* patch centre (8, 8) */
            n_fg += b.is_fg[j];
            centred += b.label[o_c] == 1;
            if (b.is_fg[j] && b.label[o_c] != 1) bad++;
            if (it < 20) bad += patch_mismatches(&b, j, &c);
        }
    }
    double f = (double)n_fg / (double)total;
    printf("\n    foreground-centred %.3f (want 1/3), centre on foreground %.3f\n", f,
           (double)centred / (double)total);
    CU_ASSERT(f > 0.29 && f < 0.38);
    CU_ASSERT(centred >= n_fg && centred < n_fg + total / 20);
    CU_ASSERT_EQUAL(bad, 0);
    dk_sampler_free(&s);

    /* Three classes: the class is chosen first, so a tiny class gets half of them. */
    set_box(&c.label, 0, 40, 0, 40, 1);
    set_box(&c.label, 90, 92, 90, 92, 2);
    o.classes = 3, o.fg_fraction = 1;
    CU_ASSERT_FATAL(dk_sampler_init(&s, &c, 1, &o) == DK_OK);
    int64_t small = 0;
    for (int it = 0; it < 100; it++) {
        dk_sampler_fill(&b, &s, &r);
        for (int j = 0; j < 6; j++) small += b.label[(j * 16 + 8) * 16 + 8] == 2;
    }
    CU_ASSERT(small > 240 && small < 360);
    dk_sampler_free(&s);
    o.fg_fraction = 1.5;
    CU_ASSERT_EQUAL(dk_sampler_init(&s, &c, 1, &o), DK_ERR_ARG);
    dk_batch_free(&b);
    dk_case_data_free(&c);
}

static void test_padding(void) {
    dk_case_data c[2];
    make_case(&c[0], 10, 10, 1, 1, 1, 0); /* smaller than the patch on both axes */
    ((uint8_t *)c[0].label.data)[55] = 1;
    make_case(&c[1], 12, 10, 6, 1, 1, 1); /* 3-D, d smaller than the patch */
    set_box(&c[1].mask, 2, 10, 2, 8, 1);
    set_box(&c[1].label, 0, 2, 0, 2, 1);
    dk_sampler s;
    dk_batch b;
    dk_sampler_opts o = patch_opts(1, 16, 16);
    start_sampling(&s, &b, &c[0], 1, &o, 4);
    dk_rng r;
    dk_rng_seed(&r, 2);
    int64_t bad = 0, real = 0;
    for (int it = 0; it < 50; it++) {
        dk_sampler_fill(&b, &s, &r);
        for (int j = 0; j < 4; j++) {
            bad += patch_mismatches(&b, j, &c[0]);
            for (int k = 0; k < 256; k++) real += b.mask[j * 256 + k];
            if (!b.is_fg[j]) bad += b.start[j][1] < -6 || b.start[j][1] > 0;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(real, 50 * 4 * 100); /* every patch, centred or not, holds all 10x10 */
    dk_sampler_free(&s);
    dk_batch_free(&b);

    o = patch_opts(8, 8, 8);
    o.fg_fraction = 0.5;
    start_sampling(&s, &b, &c[1], 1, &o, 2);
    for (int it = 0; it < 30; it++) {
        dk_sampler_fill(&b, &s, &r);
        for (int j = 0; j < 2; j++) bad += patch_mismatches(&b, j, &c[1]);
    }
    CU_ASSERT_EQUAL(bad, 0);
    dk_sampler_free(&s);
    dk_batch_free(&b);
    dk_case_data_free(&c[0]);
    dk_case_data_free(&c[1]);
}

static void test_unlabelled_in_mask(void) {
    dk_case_data c;
    make_case(&c, 100, 100, 1, 1, 0, 1);
    set_box(&c.mask, 40, 50, 40, 50, 1);
    dk_sampler s;
    dk_batch b;
    dk_sampler_opts o = patch_opts(1, 8, 8);
    o.centre_in_mask = 1;
    start_sampling(&s, &b, &c, 1, &o, 3);
    dk_rng r;
    dk_rng_seed(&r, 3);
    int64_t outside = 0, labelled = 0, fg = 0, bad = 0;
    for (int it = 0; it < 100; it++) {
        dk_sampler_fill(&b, &s, &r);
        for (int j = 0; j < 3; j++) {
            int64_t cy = b.start[j][1] + 4, cx = b.start[j][2] + 4;
            outside += cy < 40 || cy >= 50 || cx < 40 || cx >= 50;
            for (int k = 0; k < 64; k++) labelled += b.label[j * 64 + k] != 255;
            fg += b.is_fg[j];
            bad += patch_mismatches(&b, j, &c);
        }
    }
    CU_ASSERT_EQUAL(outside, 0);
    CU_ASSERT_EQUAL(labelled, 0);
    CU_ASSERT_EQUAL(fg, 0);
    CU_ASSERT_EQUAL(bad, 0);
    dk_sampler_free(&s);
    dk_batch_free(&b);
    dk_case_data_free(&c);
}

/* ------------------------------------------------------------------ augmentation */

static void fill_random_batch(dk_batch *b, uint64_t seed) {
    dk_rng r;
    dk_rng_seed(&r, seed);
    int64_t vox = b->image.n * b->image.d * b->image.h * b->image.w;
    for (int64_t i = 0; i < dk_tensor_numel(&b->image); i++)
        b->image.data[i] = (float)dk_rng_normal(&r);
    for (int64_t i = 0; i < vox; i++) {
        b->label[i] = (uint8_t)dk_rng_below(&r, 4);
        b->mask[i] = (uint8_t)dk_rng_below(&r, 2);
    }
}

typedef struct {
    float *image;
    uint8_t *label, *mask;
} batch_copy;

static batch_copy save(const dk_batch *b) {
    size_t ni = (size_t)dk_tensor_numel(&b->image) * sizeof(float);
    size_t nv = (size_t)(b->image.n * b->image.d * b->image.h * b->image.w);
    batch_copy k = {malloc(ni), malloc(nv), malloc(nv)};
    CU_ASSERT_FATAL(k.image && k.label && k.mask);
    memcpy(k.image, b->image.data, ni);
    memcpy(k.label, b->label, nv);
    memcpy(k.mask, b->mask, nv);
    return k;
}

static int same(const dk_batch *b, const batch_copy *k) {
    size_t ni = (size_t)dk_tensor_numel(&b->image) * sizeof(float);
    size_t nv = (size_t)(b->image.n * b->image.d * b->image.h * b->image.w);
    return !memcmp(k->image, b->image.data, ni) && !memcmp(k->label, b->label, nv) &&
           !memcmp(k->mask, b->mask, nv);
}

static void drop(batch_copy *k) {
    free(k->image);
    free(k->label);
    free(k->mask);
}

/* A random batch of that shape and a copy of it. */
static batch_copy random_batch(dk_batch *b, int64_t n, int64_t c, int64_t d, int64_t h,
                               int64_t w, uint64_t seed) {
    CU_ASSERT_FATAL(dk_batch_alloc(b, n, c, d, h, w) == DK_OK);
    fill_random_batch(b, seed);
    return save(b);
}

static void test_flip_rot_identities(void) {
    dk_batch b;
    batch_copy k = random_batch(&b, 2, 2, 4, 6, 6, 11);
    for (int a = 0; a < 3; a++) {
        dk_augment_flip(&b, 1, a);
        CU_ASSERT(!same(&b, &k));
        dk_augment_flip(&b, 1, a);
        CU_ASSERT(same(&b, &k));
    }
    for (int q = 0; q < 4; q++) dk_augment_rot90(&b, 0, 1);
    CU_ASSERT(same(&b, &k));
    dk_augment_rot90(&b, 1, 1);
    dk_augment_rot90(&b, 1, 3);
    CU_ASSERT(same(&b, &k));
    /* one quarter turn as numpy.rot90: out[y][x] = in[x][5 - y], every plane */
    dk_augment_rot90(&b, 1, 1);
    int64_t bad = 0;
    for (int z = 0; z < 4; z++)
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++) {
                int64_t o = (z * 6 + y) * 6 + x, i = (z * 6 + x) * 6 + 5 - y; /* in patch 1 */
                bad += b.label[144 + o] != k.label[144 + i] || b.mask[144 + o] != k.mask[144 + i];
                bad += b.image.data[3 * 144 + o] != k.image[3 * 144 + i]; /* channel 1 */
            }
    CU_ASSERT_EQUAL(bad, 0);
    dk_augment_rot90(&b, 1, -1);
    CU_ASSERT(same(&b, &k));
    /* a half turn is the two in-plane flips */
    dk_augment_rot90(&b, 0, 2);
    dk_augment_flip(&b, 0, 1);
    dk_augment_flip(&b, 0, 2);
    CU_ASSERT(same(&b, &k));
    drop(&k);
    dk_batch_free(&b);
}

/* Spatial transforms move image, label and mask together: with channel 0 = label and
 * channel 1 = mask, they stay equal after any random flips and turns. */
static void test_spatial_consistency(void) {
    const int64_t shapes[2][3] = {{1, 8, 8}, {3, 4, 6}}; /* square; h != w gets half turns */
    for (int s = 0; s < 2; s++) {
        const int64_t d = shapes[s][0], h = shapes[s][1], w = shapes[s][2], v = d * h * w;
        dk_batch b;
        CU_ASSERT_FATAL(dk_batch_alloc(&b, 4, 2, d, h, w) == DK_OK);
        fill_random_batch(&b, 12);
        for (int64_t j = 0; j < 4; j++)
            for (int64_t i = 0; i < v; i++) {
                b.image.data[(j * 2) * v + i] = b.label[j * v + i];
                b.image.data[(j * 2 + 1) * v + i] = b.mask[j * v + i];
            }
        batch_copy k = save(&b);
        dk_augment_opts o;
        dk_augment_defaults(&o);
        o.p_scale = o.p_shift = o.p_gamma = o.p_noise = 0;
        o.p_rot90 = 1;
        dk_rng r;
        dk_rng_seed(&r, 13);
        int64_t bad = 0, changed = 0;
        for (int it = 0; it < 10; it++) {
            dk_augment_batch(&b, &o, &r);
            changed += !same(&b, &k);
            for (int64_t j = 0; j < 4; j++)
                for (int64_t i = 0; i < v; i++)
                    bad += b.image.data[(j * 2) * v + i] != b.label[j * v + i] ||
                           b.image.data[(j * 2 + 1) * v + i] != b.mask[j * v + i];
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(changed > 5);
        drop(&k);
        dk_batch_free(&b);
    }
}

static void test_intensity(void) {
    dk_batch b;
    batch_copy k = random_batch(&b, 1, 2, 1, 16, 16, 14);
    dk_augment_opts o;
    dk_augment_defaults(&o);
    o.p_flip[0] = o.p_flip[1] = o.p_flip[2] = o.p_rot90 = o.p_gamma = o.p_noise = o.p_shift = 0;
    o.p_scale = 1, o.scale_lo = o.scale_hi = 2;
    dk_rng r;
    dk_rng_seed(&r, 15);
    dk_augment_batch(&b, &o, &r);
    int64_t bad = 0, n = 512;
    for (int64_t i = 0; i < n; i++) bad += b.image.data[i] != 2 * k.image[i];
    o.p_scale = 0, o.p_shift = 1, o.shift_lo = o.shift_hi = 0.5;
    dk_augment_batch(&b, &o, &r);
    for (int64_t i = 0; i < n; i++) bad += b.image.data[i] != 2 * k.image[i] + 0.5f;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(!memcmp(b.label, k.label, 256) && !memcmp(b.mask, k.mask, 256));

    /* noise: zero-mean, std at most sqrt(var_hi) */
    memcpy(b.image.data, k.image, (size_t)n * sizeof(float));
    o.p_shift = 0, o.p_noise = 1, o.noise_var_hi = 0.01;
    dk_augment_batch(&b, &o, &r);
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = b.image.data[i] - k.image[i];
        s += e, q += e * e;
    }
    double sd = sqrt(q / n - (s / n) * (s / n));
    CU_ASSERT(sd > 0 && sd < 0.1 * 1.15);
    CU_ASSERT(fabs(s / n) < 4 * 0.1 / sqrt((double)n));
    drop(&k);
    dk_batch_free(&b);
}

static void test_gamma(void) {
    dk_batch b;
    batch_copy k = random_batch(&b, 1, 2, 1, 16, 16, 16);
    int64_t n = 512;
    /* gamma 1 changes nothing (beyond rounding); gamma 2 keeps min and max */
    dk_augment_gamma(&b, 0, 1.0, 0);
    double err = 0, mn = 1e9, mx = -1e9;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(b.image.data[i] - k.image[i]));
    CU_ASSERT(err < 1e-5);
    for (int64_t i = 0; i < 256; i++) mn = fmin(mn, k.image[i]), mx = fmax(mx, k.image[i]);
    dk_augment_gamma(&b, 0, 2.0, 0);
    double gmn = 1e9, gmx = -1e9, r0 = mx - mn + 1e-7;
    for (int64_t i = 0; i < 256; i++)
        gmn = fmin(gmn, b.image.data[i]), gmx = fmax(gmx, b.image.data[i]);
    CU_ASSERT_DOUBLE_EQUAL(gmn, mn, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(gmx, mx, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(b.image.data[7], mn + r0 * pow((k.image[7] - mn) / r0, 2), 1e-5);
    /* with retain_stats the channel's mean and std come back */
    memcpy(b.image.data, k.image, (size_t)n * sizeof(float));
    dk_augment_gamma(&b, 0, 0.7, 1);
    for (int c = 0; c < 2; c++) {
        double s0 = 0, s1 = 0, q0 = 0, q1 = 0;
        for (int64_t i = c * 256; i < (c + 1) * 256; i++) {
            s0 += k.image[i], q0 += (double)k.image[i] * k.image[i];
            s1 += b.image.data[i], q1 += (double)b.image.data[i] * b.image.data[i];
        }
        CU_ASSERT_DOUBLE_EQUAL(s1 / 256, s0 / 256, 1e-4);
        CU_ASSERT_DOUBLE_EQUAL(q1 / 256, q0 / 256, 1e-3);
    }
    CU_ASSERT(fabs(b.image.data[3] - k.image[3]) > 1e-4); /* but the values moved */
    CU_ASSERT(!memcmp(b.label, k.label, 256) && !memcmp(b.mask, k.mask, 256));
    drop(&k);
    dk_batch_free(&b);
}

/* ------------------------------------------------------------------ determinism */

static void test_seeded_stream(void) {
    dk_case_data c[2];
    make_case(&c[0], 40, 30, 1, 3, 1, 1);
    make_case(&c[1], 33, 50, 1, 3, 0, 0);
    set_box(&c[0].label, 5, 9, 5, 9, 1);
    set_box(&c[0].mask, 0, 40, 0, 25, 1);
    dk_sampler s;
    dk_batch a, b;
    dk_sampler_opts o = patch_opts(1, 32, 32);
    start_sampling(&s, &a, c, 2, &o, 4);
    CU_ASSERT_FATAL(dk_batch_alloc(&b, 4, 3, 1, 32, 32) == DK_OK);
    dk_augment_opts aug;
    dk_augment_defaults(&aug);
    aug.p_noise = aug.p_gamma = 0.5;
    dk_rng base, other;
    dk_rng_seed(&base, 42);
    dk_rng_seed(&other, 43);
    /* a run that goes through steps 0..9 of epoch 3 ... */
    batch_copy at6 = {0};
    for (int step = 0; step < 10; step++) {
        dk_sampler_step(&a, &s, &aug, &base, 3, step);
        if (step == 6) at6 = save(&a);
    }
    /* ... and one resumed at step 6 draw the same batch */
    dk_sampler_step(&b, &s, &aug, &base, 3, 6);
    CU_ASSERT(same(&b, &at6));
    dk_sampler_step(&b, &s, &aug, &base, 3, 7);
    CU_ASSERT(!same(&b, &at6));
    dk_sampler_step(&b, &s, &aug, &base, 4, 6);
    CU_ASSERT(!same(&b, &at6));
    dk_sampler_step(&b, &s, &aug, &other, 3, 6);
    CU_ASSERT(!same(&b, &at6));
    /* and the plain fill + augment from one seeded generator repeats too */
    dk_rng r1, r2;
    dk_rng_seed(&r1, 7);
    dk_rng_seed(&r2, 7);
    dk_sampler_fill(&a, &s, &r1);
    dk_augment_batch(&a, &aug, &r1);
    dk_sampler_fill(&b, &s, &r2);
    dk_augment_batch(&b, &aug, &r2);
    batch_copy ka = save(&a);
    CU_ASSERT(same(&b, &ka));
    drop(&ka);
    drop(&at6);
    dk_batch_free(&a);
    dk_batch_free(&b);
    dk_sampler_free(&s);
    dk_case_data_free(&c[0]);
    dk_case_data_free(&c[1]);
}

void add_sampling_tests(void) {
    CU_pSuite s = CU_add_suite("data_sampling", NULL, NULL);
    CU_add_test(s, "foreground fraction and class choice", test_foreground_fraction);
    CU_add_test(s, "padding 2-D and 3-D, copies exact", test_padding);
    CU_add_test(s, "unlabelled case centred in mask", test_unlabelled_in_mask);
    CU_add_test(s, "flip twice, four turns, rot90 as numpy", test_flip_rot_identities);
    CU_add_test(s, "spatial augmentation keeps image/label/mask aligned",
                test_spatial_consistency);
    CU_add_test(s, "scale, shift, noise", test_intensity);
    CU_add_test(s, "gamma: identity, range kept, stats kept", test_gamma);
    CU_add_test(s, "same seed same batches; resume at a step", test_seeded_stream);
}
