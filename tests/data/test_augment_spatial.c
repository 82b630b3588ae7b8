/*
 * CUnit suite for lib/data (part 3): the spatial map (rotation, zoom, deformation) and blur.
 * The main oracle is a phantom whose label is a threshold of its image: after any map the
 * label must equal the threshold of the mapped image except within one voxel of a label
 * boundary, and by more than a label mapped with an off-by-one centre or a transposed axis.
 */
#include "dakd/data.h"
#include "test_data.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double DEG = 3.14159265358979323846 / 180;

/* Label thresholds: background | body (0.35 x bias) | the brighter organs. */
static const float T1 = 0.175f, T2 = 0.62f;

static uint8_t classify(float v) { return (uint8_t)((v > T1) + (v > T2)); }

/* Patch 0 of a (1, 1, d, h, w) batch: a source phantom (seed), label = its thresholds, mask =
 * the body (image > T1). */
static void phantom_batch(dk_batch *b, int64_t d, int64_t h, int64_t w, uint64_t seed) {
    dk_phantom_opts po = {w, h, d, {0}, 0};
    dk_volume img, lab;
    dk_rng r;
    dk_rng_seed(&r, seed);
    CU_ASSERT_FATAL(dk_phantom_generate(&img, &lab, &po, &r) == DK_OK);
    CU_ASSERT_FATAL(dk_batch_alloc(b, 1, 1, d, h, w) == DK_OK);
    const float *x = img.data;
    for (int64_t i = 0; i < d * h * w; i++) {
        b->image.data[i] = x[i];
        b->label[i] = classify(x[i]);
        b->mask[i] = x[i] > T1;
    }
    dk_volume_free(&img);
    dk_volume_free(&lab);
}

typedef struct {
    int64_t field;   /* voxels inside the field (label != 255) */
    int64_t agree;   /* ... whose label is the threshold of the image */
    int64_t off;     /* ... farther than one voxel from a label boundary */
    int64_t off_bad; /* ... of those, disagreeing */
} agreement;

/* Does any voxel of the 3x3(x3) neighbourhood of (z, y, x) hold a label other than v? */
static int near_boundary(const uint8_t *lab, int64_t d, int64_t h, int64_t w, int64_t z, int64_t y,
                         int64_t x) {
    uint8_t v = lab[(z * h + y) * w + x];
    for (int64_t c = z - 1; c <= z + 1; c++)
        for (int64_t b = y - 1; b <= y + 1; b++)
            for (int64_t a = x - 1; a <= x + 1; a++)
                if (c >= 0 && c < d && b >= 0 && b < h && a >= 0 && a < w &&
                    lab[(c * h + b) * w + a] != v)
                    return 1;
    return 0;
}

/* Label `lab` against classify(img) on a (d, h, w) patch; the mask against the body. */
static agreement compare(const uint8_t *lab, const uint8_t *mask, const float *img, int64_t d,
                         int64_t h, int64_t w) {
    agreement a = {0};
    for (int64_t z = 0; z < d; z++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                int64_t o = (z * h + y) * w + x;
                if (lab[o] == 255) continue;
                int ok = lab[o] == classify(img[o]) && (!mask || mask[o] == (img[o] > T1));
                int off = !near_boundary(lab, d, h, w, z, y, x);
                a.field++, a.agree += ok, a.off += off, a.off_bad += off && !ok;
            }
    return a;
}

/* The map applied to `src`'s label through a patch 2 voxels larger in h and w (the label at
 * the low corner): the map's centre is then off by one voxel along h and w. */
static void label_off_centre(uint8_t *out, const dk_batch *src, const dk_spatial_map *m,
                             uint64_t seed) {
    const dk_tensor *t = &src->image;
    dk_batch big;
    CU_ASSERT_FATAL(dk_batch_alloc(&big, 1, 1, t->d, t->h + 2, t->w + 2) == DK_OK);
    for (int64_t z = 0; z < t->d; z++)
        for (int64_t y = 0; y < t->h; y++)
            memcpy(big.label + (z * (t->h + 2) + y) * (t->w + 2),
                   src->label + (z * t->h + y) * t->w, (size_t)t->w);
    dk_rng r;
    dk_rng_seed(&r, seed);
    dk_augment_spatial(&big, 0, m, &r);
    for (int64_t z = 0; z < t->d; z++)
        for (int64_t y = 0; y < t->h; y++)
            memcpy(out + (z * t->h + y) * t->w, big.label + (z * (t->h + 2) + y) * (t->w + 2),
                   (size_t)t->w);
    dk_batch_free(&big);
}

/* The map applied with h and w swapped for the label: transpose, map, transpose back. */
static void label_transposed(uint8_t *out, const dk_batch *src, const dk_spatial_map *m,
                             uint64_t seed) {
    const dk_tensor *t = &src->image;
    const int64_t d = t->d, n = t->h;
    CU_ASSERT_FATAL(t->h == t->w);
    dk_batch tr;
    CU_ASSERT_FATAL(dk_batch_alloc(&tr, 1, 1, d, n, n) == DK_OK);
    for (int64_t z = 0; z < d; z++)
        for (int64_t y = 0; y < n; y++)
            for (int64_t x = 0; x < n; x++)
                tr.label[(z * n + x) * n + y] = src->label[(z * n + y) * n + x];
    dk_rng r;
    dk_rng_seed(&r, seed);
    dk_augment_spatial(&tr, 0, m, &r);
    for (int64_t z = 0; z < d; z++)
        for (int64_t y = 0; y < n; y++)
            for (int64_t x = 0; x < n; x++)
                out[(z * n + x) * n + y] = tr.label[(z * n + y) * n + x];
    dk_batch_free(&tr);
}

static double frac(int64_t a, int64_t n) { return n ? (double)a / (double)n : 0; }

enum { OFF_CENTRE = 1, TRANSPOSED = 2 }; /* the wrong maps that differ from a map */

/* One map on one phantom: the label agrees with the thresholded image off the boundary
 * band (measured: everywhere) and on >= 99 % of the field (measured 0.992-0.998), while a
 * label mapped with an off-by-one centre (0.961-0.988; the control needs a map without
 * deformation, whose noise depends on the patch size) or with h and w transposed (0.66-0.89;
 * not for a pure zoom, which a transpose does not change) agrees on less. */
static void check_map(const char *what, int64_t d, int64_t h, int64_t w, const dk_spatial_map *m,
                      int controls) {
    const double bound = 0.99;
    dk_batch b, c;
    phantom_batch(&b, d, h, w, 21);
    phantom_batch(&c, d, h, w, 21);
    uint8_t *off = malloc((size_t)(d * h * w)), *tr = malloc((size_t)(d * h * w));
    CU_ASSERT_FATAL(off && tr);
    label_off_centre(off, &c, m, 5);
    label_transposed(tr, &c, m, 5);
    dk_rng r;
    dk_rng_seed(&r, 5);
    dk_augment_spatial(&b, 0, m, &r);
    agreement ok = compare(b.label, b.mask, b.image.data, d, h, w);
    agreement shifted = compare(off, NULL, b.image.data, d, h, w);
    agreement transposed = compare(tr, NULL, b.image.data, d, h, w);
    printf("\n  %-28s agree %.4f (off the band %.5f of %lld), off-centre %.4f, transposed %.4f",
           what, frac(ok.agree, ok.field), 1 - frac(ok.off_bad, ok.off), (long long)ok.off,
           frac(shifted.agree, shifted.field), frac(transposed.agree, transposed.field));
    CU_ASSERT(ok.field > d * h * w / 2);
    CU_ASSERT(ok.off_bad == 0);
    CU_ASSERT(frac(ok.agree, ok.field) >= bound);
    if (controls & OFF_CENTRE) CU_ASSERT(frac(shifted.agree, shifted.field) < bound);
    if (controls & TRANSPOSED) CU_ASSERT(frac(transposed.agree, transposed.field) < bound);
    free(off);
    free(tr);
    dk_batch_free(&b);
    dk_batch_free(&c);
}

static void test_threshold_alignment(void) {
    const int both = OFF_CENTRE | TRANSPOSED;
    const dk_spatial_map rot2 = {{40 * DEG, 0, 0}, 1, 0, 0, 1};
    const dk_spatial_map zoom_out = {{0}, 1.4, 0, 0, 1}, zoom_in = {{0}, 0.6, 0, 0, 1};
    const dk_spatial_map elastic2 = {{0}, 1, 150, 8, 1};
    const dk_spatial_map all2 = {{-50 * DEG, 0, 0}, 1.2, 150, 8, 1};
    const dk_spatial_map rot3 = {{30 * DEG, -25 * DEG, 30 * DEG}, 1, 0, 0, 0};
    const dk_spatial_map elastic3 = {{0}, 1, 700, 6, 0};
    const dk_spatial_map all3 = {{-30 * DEG, 20 * DEG, 25 * DEG}, 0.75, 700, 6, 0};
    check_map("2-D rotation 40", 1, 96, 96, &rot2, both);
    check_map("2-D zoom 1.4", 1, 96, 96, &zoom_out, OFF_CENTRE);
    check_map("2-D zoom 0.6", 1, 96, 96, &zoom_in, OFF_CENTRE);
    check_map("2-D deformation", 1, 96, 96, &elastic2, TRANSPOSED);
    check_map("2-D all", 1, 96, 96, &all2, TRANSPOSED);
    check_map("in-plane rotation (16x64x64)", 16, 64, 64, &rot2, both);
    check_map("in-plane all (16x64x64)", 16, 64, 64, &all2, TRANSPOSED);
    check_map("3-D rotation (40^3)", 40, 40, 40, &rot3, both);
    check_map("3-D deformation (40^3)", 40, 40, 40, &elastic3, TRANSPOSED);
    check_map("3-D all (40^3)", 40, 40, 40, &all3, TRANSPOSED);
}

/* ------------------------------------------------------------------ exact cases */

/* A batch of normal noise, labels from {0, 3, 7} and a {0, 1} mask. */
static void random_batch(dk_batch *b, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w,
                         uint64_t seed) {
    static const uint8_t values[3] = {0, 3, 7};
    CU_ASSERT_FATAL(dk_batch_alloc(b, n, c, d, h, w) == DK_OK);
    dk_rng r;
    dk_rng_seed(&r, seed);
    for (int64_t i = 0; i < dk_tensor_numel(&b->image); i++)
        b->image.data[i] = (float)dk_rng_normal(&r);
    for (int64_t i = 0; i < n * d * h * w; i++) {
        b->label[i] = values[dk_rng_below(&r, 3)];
        b->mask[i] = (uint8_t)dk_rng_below(&r, 2);
    }
}

static void copy_batch(dk_batch *dst, const dk_batch *src) {
    const dk_tensor *t = &src->image;
    CU_ASSERT_FATAL(dk_batch_alloc(dst, t->n, t->c, t->d, t->h, t->w) == DK_OK);
    size_t vox = (size_t)(t->n * t->d * t->h * t->w);
    memcpy(dst->image.data, t->data, (size_t)dk_tensor_numel(t) * sizeof(float));
    memcpy(dst->label, src->label, vox);
    memcpy(dst->mask, src->mask, vox);
}

static int same_bits(const dk_batch *a, const dk_batch *b) {
    const dk_tensor *t = &a->image;
    size_t vox = (size_t)(t->n * t->d * t->h * t->w);
    return !memcmp(a->image.data, b->image.data, (size_t)dk_tensor_numel(t) * sizeof(float)) &&
           !memcmp(a->label, b->label, vox) && !memcmp(a->mask, b->mask, vox);
}

/* The identity map returns the patch bit for bit; ±90° and 180° about d are
 * dk_augment_rot90's quarter turns, on the whole patch (the snapped matrix lands on the
 * grid), in 2-D, in-plane and as a 3-D map. */
static void test_identity_and_quarter_turns(void) {
    const int64_t shapes[3][3] = {{1, 12, 12}, {3, 10, 10}, {4, 9, 9}};
    for (int s = 0; s < 3; s++) {
        dk_batch b, k;
        random_batch(&b, 2, 2, shapes[s][0], shapes[s][1], shapes[s][2], 31 + (uint64_t)s);
        copy_batch(&k, &b);
        for (int plane = 0; plane < 2; plane++) {
            const dk_spatial_map id = {{0}, 1, 0, 0, plane};
            dk_augment_spatial(&b, 1, &id, NULL);
            CU_ASSERT(same_bits(&b, &k));
        }
        const int turns[3] = {1, 3, 2};
        const double angles[3] = {90 * DEG, -90 * DEG, 180 * DEG};
        for (int q = 0; q < 3; q++) {
            const dk_spatial_map m = {{angles[q], 0, 0}, 1, 0, 0, s == 1};
            dk_augment_rot90(&k, 1, turns[q]);
            dk_augment_spatial(&b, 1, &m, NULL);
            CU_ASSERT(same_bits(&b, &k));
        }
        dk_batch_free(&b);
        dk_batch_free(&k);
    }
}

/* Label values come only from the patch (and 255 where the map leaves it); with a map that
 * stays inside, never 255; a mask equal to a binary label stays equal to it (0 where the
 * label became 255). */
static void test_label_values_and_mask(void) {
    const dk_spatial_map maps[3] = {{{20 * DEG, 0, 0}, 0.7, 0, 0, 1},
                                    {{20 * DEG, 10 * DEG, 10 * DEG}, 0.6, 0, 0, 0},
                                    {{35 * DEG, 0, 0}, 1.3, 0, 0, 1}};
    for (int k = 0; k < 3; k++) {
        const int64_t d = k == 1 ? 20 : 8, h = k == 1 ? 20 : 24, vox = d * h * h;
        dk_batch b;
        random_batch(&b, 1, 1, d, h, h, 41 + (uint64_t)k);
        int64_t bad = 0, outside = 0, mism = 0;
        int seen[256] = {0};
        dk_augment_spatial(&b, 0, &maps[k], NULL);
        for (int64_t i = 0; i < vox; i++)
            seen[b.label[i]]++, bad += b.mask[i] > 1;
        for (int v = 0; v < 256; v++)
            bad += seen[v] && v != 0 && v != 3 && v != 7 && v != 255;
        outside = seen[255];
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(seen[0] && seen[3] && seen[7]);
        CU_ASSERT(k == 2 ? outside > 0 : outside == 0);
        /* the mask as a copy of a binary label */
        for (int64_t i = 0; i < vox; i++)
            b.label[i] = b.mask[i] = (uint8_t)(b.label[i] == 3);
        dk_augment_spatial(&b, 0, &maps[k], NULL);
        for (int64_t i = 0; i < vox; i++)
            mism += b.mask[i] != (b.label[i] == 255 ? 0 : b.label[i]);
        CU_ASSERT_EQUAL(mism, 0);
        dk_batch_free(&b);
    }
}

/* All four new transforms on, through dk_augment_batch: the same seed gives the same bits,
 * another seed others; every probability at 0 draws nothing (the 8 draws a patch of the
 * transforms that were there before) and changes nothing. */
static void test_seeded_and_no_draws(void) {
    dk_augment_opts o;
    dk_augment_defaults(&o);
    CU_ASSERT(o.p_rot == 0 && o.p_zoom == 0 && o.p_elastic == 0 && o.p_blur == 0);
    o.p_rot = o.p_zoom = o.p_elastic = o.p_blur = 1;
    dk_batch a, b, k;
    random_batch(&a, 3, 2, 6, 20, 20, 51);
    copy_batch(&b, &a);
    copy_batch(&k, &a);
    dk_rng r1, r2;
    dk_rng_seed(&r1, 9);
    dk_rng_seed(&r2, 9);
    dk_augment_batch(&a, &o, &r1);
    dk_augment_batch(&b, &o, &r2);
    CU_ASSERT(same_bits(&a, &b));
    CU_ASSERT(!same_bits(&a, &k));
    dk_rng_seed(&r2, 10);
    dk_batch_free(&b);
    copy_batch(&b, &k);
    dk_augment_batch(&b, &o, &r2);
    CU_ASSERT(!same_bits(&a, &b));
    dk_batch_free(&b);

    dk_augment_defaults(&o);
    o.p_flip[0] = o.p_flip[1] = o.p_flip[2] = o.p_rot90 = 0;
    o.p_scale = o.p_shift = o.p_gamma = o.p_noise = 0;
    copy_batch(&b, &k);
    dk_rng_seed(&r1, 11);
    dk_rng_seed(&r2, 11);
    dk_augment_batch(&b, &o, &r1);
    for (int i = 0; i < 3 * 8; i++)
        dk_rng_uniform_double(&r2);
    CU_ASSERT(dk_rng_u64(&r1) == dk_rng_u64(&r2));
    CU_ASSERT(same_bits(&b, &k));
    dk_batch_free(&a);
    dk_batch_free(&b);
    dk_batch_free(&k);
}

/* Blur keeps a constant image (every voxel, so its mean) and the label and mask; a delta
 * spreads with variance sigma² along each blurred axis and not at all along the others. */
static void test_blur(void) {
    dk_batch b;
    CU_ASSERT_FATAL(dk_batch_alloc(&b, 1, 2, 6, 20, 20) == DK_OK);
    for (int64_t i = 0; i < dk_tensor_numel(&b.image); i++)
        b.image.data[i] = 5.0f;
    for (int64_t i = 0; i < 6 * 400; i++)
        b.label[i] = (uint8_t)(i % 3), b.mask[i] = i % 2;
    dk_batch k;
    copy_batch(&k, &b);
    const double s3[3] = {1, 0.7, 1.3};
    dk_augment_blur(&b, 0, 1, s3);
    double err = 0;
    for (int64_t i = 0; i < dk_tensor_numel(&b.image); i++)
        err = fmax(err, fabs(b.image.data[i] - 5.0));
    CU_ASSERT(err < 5e-6);
    CU_ASSERT(!memcmp(b.label, k.label, 2400) && !memcmp(b.mask, k.mask, 2400));
    /* a delta at (3, 10, 10) of channel 0, blurred in (h, w) only */
    memset(b.image.data, 0, 2400 * sizeof(float));
    b.image.data[(3 * 20 + 10) * 20 + 10] = 1;
    const double s2[3] = {0, 1.5, 1.5};
    dk_augment_blur(&b, 0, 0, s2);
    double sum = 0, vx = 0, other = 0;
    for (int64_t z = 0; z < 6; z++)
        for (int64_t y = 0; y < 20; y++)
            for (int64_t x = 0; x < 20; x++) {
                double v = b.image.data[(z * 20 + y) * 20 + x];
                if (z != 3) other += fabs(v);
                sum += v, vx += v * (double)((x - 10) * (x - 10));
            }
    CU_ASSERT(other == 0);
    CU_ASSERT_DOUBLE_EQUAL(sum, 1, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(vx, 2.25, 0.01);
    dk_batch_free(&b);
    dk_batch_free(&k);
}

/* Through dk_augment_batch, a thick-slice patch (auto: in-plane) is blurred within its
 * slices; with in_plane_only = false the slices mix. */
static void test_blur_in_plane(void) {
    dk_augment_opts o;
    dk_augment_defaults(&o);
    o.p_flip[0] = o.p_flip[1] = o.p_flip[2] = o.p_rot90 = 0;
    o.p_scale = o.p_shift = o.p_gamma = o.p_noise = 0;
    o.p_blur = 1;
    for (int mode = 0; mode < 2; mode++) {
        dk_batch b;
        CU_ASSERT_FATAL(dk_batch_alloc(&b, 1, 1, 4, 32, 32) == DK_OK);
        for (int64_t i = 2 * 1024; i < 3 * 1024; i++)
            b.image.data[i] = 1; /* slice 2 */
        o.in_plane_only = mode ? DK_IN_PLANE_FALSE : DK_IN_PLANE_AUTO;
        dk_rng r;
        dk_rng_seed(&r, 3);
        dk_augment_batch(&b, &o, &r);
        double off_slice = 0;
        for (int64_t i = 0; i < 4 * 1024; i++)
            off_slice += (i / 1024 != 2) * b.image.data[i];
        CU_ASSERT(mode ? off_slice > 100 : off_slice == 0);
        dk_batch_free(&b);
    }
}

void add_spatial_tests(void) {
    CU_pSuite s = CU_add_suite("data_augment_spatial", NULL, NULL);
    CU_add_test(s, "mapped label = threshold of the mapped image", test_threshold_alignment);
    CU_add_test(s, "identity exact; ±90° and 180° are the quarter turns",
                test_identity_and_quarter_turns);
    CU_add_test(s, "label values kept; the mask mapped as the label", test_label_values_and_mask);
    CU_add_test(s, "same seed same bits; probability 0 draws nothing", test_seeded_and_no_draws);
    CU_add_test(s, "blur keeps constants, label and mask; spreads by sigma", test_blur);
    CU_add_test(s, "thick-slice patches blurred in-plane", test_blur_in_plane);
}
