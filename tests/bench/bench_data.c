/*
 * bench_data — single-threaded throughput of the data side of training: preprocessing per
 * case, then patches drawn (and augmented) per second, to set beside a training step.
 *   2-D: 8 x 3 x 256 x 256 patches from the DRIVE training images (../shared/data, or
 *        DAKD_SHARED_DATA); generated 565 x 584 phantoms in 3 channels when it is absent.
 *   3-D: 2 x 1 x 64^3 patches from generated 128 x 128 x 96 phantoms.
 *   then the spatial map (rotation, zoom, deformation) and blur of a 1 x 24 x 128 x 128 patch.
 * Usage: bench_data [seconds per measurement, default 1.5]
 */
#include "dakd/data.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DRIVE train, all channels, z-score inside the FOV. Returns the case count (0 = none). */
static int load_drive(dk_case_data *cases, int max, double *secs) {
    const char *root = dk_test_shared_data();
    if (!root) return 0;
    const char *csv = dk_test_path(root, "retina/cases.csv");
    dk_case_list all, drive, train;
    if (!dk_test_exists(csv) || dk_cases_read(&all, csv) != DK_OK) return 0;
    int n = 0;
    if (dk_cases_filter(&drive, &all, "dataset", "drive") == DK_OK) {
        if (dk_cases_filter(&train, &drive, "split", "train") == DK_OK) {
            dk_prep_opts o;
            dk_prep_defaults(&o);
            double t0 = dk_time_now();
            for (int i = 0; i < train.n && n < max; i++)
                if (dk_case_load(&cases[n], &train, i, &o) == DK_OK) n++;
                else fprintf(stderr, "bench_data: %s\n", dk_last_error());
            *secs = dk_time_now() - t0;
            dk_cases_free(&train);
        }
        dk_cases_free(&drive);
    }
    dk_cases_free(&all);
    return n;
}

/* Phantoms through dk_case_prepare; 2-D ones get the image copied into 3 channels. */
static int make_phantoms(dk_case_data *cases, int n, const dk_phantom_opts *po, int channels,
                         double *secs) {
    dk_rng r;
    dk_rng_seed(&r, 2024);
    dk_prep_opts o;
    dk_prep_defaults(&o);
    o.classes = 4;
    double t = 0;
    for (int i = 0; i < n; i++) {
        dk_volume img, lab, rgb;
        if (dk_phantom_generate(&img, &lab, po, &r) != DK_OK) return i;
        int ok = dk_volume_alloc(&rgb, img.nx, img.ny, img.nz, 1, channels, DK_F32) == DK_OK;
        if (ok) {
            size_t plane = dk_volume_nbytes(&img);
            for (int c = 0; c < channels; c++)
                memcpy((char *)rgb.data + c * plane, img.data, plane);
            rgb.geom = img.geom;
            double t0 = dk_time_now();
            ok = dk_case_prepare(&cases[i], &rgb, &lab, NULL, &o, "phantom") == DK_OK;
            t += dk_time_now() - t0;
        }
        dk_volume_free(&rgb);
        dk_volume_free(&img);
        dk_volume_free(&lab);
        if (!ok) return i;
    }
    *secs = t;
    return n;
}

/* Draw batches for about `budget` seconds and print one table row. */
static void measure(const char *what, const dk_sampler *s, dk_batch *b,
                    const dk_augment_opts *aug, double budget) {
    dk_rng base;
    dk_rng_seed(&base, 1);
    int64_t steps = 0;
    double t0 = dk_time_now(), dt;
    do {
        dk_sampler_step(b, s, aug, &base, 0, steps++);
        dt = dk_time_now() - t0;
    } while (dt < budget || steps < 3);
    int64_t vox = b->image.d * b->image.h * b->image.w;
    double bytes = (double)b->image.n * (double)vox * ((double)b->image.c * 4 + 2);
    printf("%-44s %4lldx%lldx%lldx%lldx%lld %9.1f %10.1f %9.2f\n", what, (long long)b->image.n,
           (long long)b->image.c, (long long)b->image.d, (long long)b->image.h,
           (long long)b->image.w, (double)(steps * b->image.n) / dt,
           (double)steps * bytes / dt / 1e6, 1e3 * dt / (double)steps);
}

static void run(const char *name, dk_case_data *cases, int n, const int64_t patch[3],
                int64_t batch, int classes, double budget) {
    dk_sampler_opts so;
    dk_sampler_defaults(&so);
    memcpy(so.patch, patch, sizeof so.patch);
    so.classes = classes;
    dk_sampler s;
    dk_batch b;
    if (dk_sampler_init(&s, cases, n, &so) != DK_OK ||
        dk_batch_alloc(&b, batch, cases[0].image.nc, patch[0], patch[1], patch[2]) != DK_OK) {
        fprintf(stderr, "bench_data: %s\n", dk_last_error());
        exit(1);
    }
    dk_augment_opts aug;
    dk_augment_defaults(&aug);
    char label[96];
    snprintf(label, sizeof label, "%s, sample only", name);
    measure(label, &s, &b, NULL, budget);
    snprintf(label, sizeof label, "%s, sample + default augment", name);
    measure(label, &s, &b, &aug, budget);
    aug.p_gamma = 1;
    snprintf(label, sizeof label, "%s, default + gamma always", name);
    measure(label, &s, &b, &aug, budget);
    aug.p_gamma = 0.3, aug.p_noise = 1;
    snprintf(label, sizeof label, "%s, default + noise always", name);
    measure(label, &s, &b, &aug, budget);
    dk_batch_free(&b);
    dk_sampler_free(&s);
}

/* The spatial map and blur on one 1 x 24 x 128 x 128 patch (a thick-slice MR patch), ms. */
static void bench_spatial(double budget) {
    dk_batch b;
    if (dk_batch_alloc(&b, 1, 1, 24, 128, 128) != DK_OK) {
        fprintf(stderr, "bench_data: %s\n", dk_last_error());
        exit(1);
    }
    dk_rng r;
    dk_rng_seed(&r, 3);
    for (int64_t i = 0; i < dk_tensor_numel(&b.image); i++) {
        b.image.data[i] = (float)dk_rng_normal(&r);
        b.label[i] = (uint8_t)(i / 4096 % 3), b.mask[i] = 1;
    }
    const double a = 0.3;
    const struct {
        const char *what;
        dk_spatial_map m;
        double blur[3];
    } runs[] = {{"rotation + zoom, in-plane", {{a, 0, 0}, 1.1, 0, 0, 1}, {0}},
                {"rotation + zoom, 3-D", {{a, a, a}, 1.1, 0, 0, 0}, {0}},
                {"rotation + zoom + deformation, in-plane", {{a, 0, 0}, 1.1, 150, 11, 1}, {0}},
                {"rotation + zoom + deformation, 3-D", {{a, a, a}, 1.1, 700, 11, 0}, {0}},
                {"blur sigma 1, in-plane", {{0}, 1, 0, 0, 1}, {0, 1, 1}},
                {"blur sigma 1, 3-D", {{0}, 1, 0, 0, 1}, {1, 1, 1}}};
    size_t vox = 24 * 128 * 128;
    float *image = malloc(vox * sizeof(float));
    uint8_t *label = malloc(vox);
    if (!image || !label) exit(1);
    memcpy(image, b.image.data, vox * sizeof(float));
    memcpy(label, b.label, vox);
    printf("spatial augmentation of one 1 x 24 x 128 x 128 patch (ms; each from the same patch)\n");
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        int64_t reps = 0;
        double spent = 0, t0 = dk_time_now();
        do {
            memcpy(b.image.data, image, vox * sizeof(float));
            memcpy(b.label, label, vox);
            memset(b.mask, 1, vox);
            double t1 = dk_time_now();
            if (runs[k].blur[1] > 0) dk_augment_blur(&b, 0, 0, runs[k].blur);
            else dk_augment_spatial(&b, 0, &runs[k].m, &r);
            spent += dk_time_now() - t1;
            reps++;
        } while (dk_time_now() - t0 < budget || reps < 3);
        printf("  %-44s %8.2f\n", runs[k].what, 1e3 * spent / (double)reps);
    }
    free(image);
    free(label);
    dk_batch_free(&b);
}

int main(int argc, char **argv) {
    double budget = argc > 1 ? atof(argv[1]) : 1.5;
    if (budget <= 0) budget = 1.5;
    enum { MAX_CASES = 20 };
    dk_case_data *cases = calloc(MAX_CASES, sizeof *cases);
    if (!cases) return 1;
    double secs = 0;
    int n = load_drive(cases, MAX_CASES, &secs);
    const char *src = "DRIVE train";
    if (n == 0) {
        dk_phantom_opts po = {565, 584, 1, {0}, 0};
        n = make_phantoms(cases, 8, &po, 3, &secs);
        src = "2-D phantoms";
    }
    printf("single thread; %s: %d cases, preprocessing %.1f ms/case (read, z-score, checks)\n",
           src, n, 1e3 * secs / (n ? n : 1));
    printf("%-44s %18s %9s %10s %9s\n", "", "batch n x c x d x h x w", "patch/s", "MB/s",
           "ms/batch");
    const int64_t p2[3] = {1, 256, 256}, p3[3] = {64, 64, 64};
    if (n > 0) run(src, cases, n, p2, 8, n && strcmp(src, "DRIVE train") ? 4 : 2, budget);
    for (int i = 0; i < n; i++) dk_case_data_free(&cases[i]);
    dk_phantom_opts p3o = {128, 128, 96, {0}, 0};
    n = make_phantoms(cases, 4, &p3o, 1, &secs);
    printf("3-D phantoms 128x128x96: %d cases, preprocessing %.1f ms/case\n", n,
           1e3 * secs / (n ? n : 1));
    if (n > 0) run("3-D phantoms", cases, n, p3, 2, 4, budget);
    for (int i = 0; i < n; i++) dk_case_data_free(&cases[i]);
    free(cases);
    bench_spatial(budget);
    return 0;
}
