/* Loading a 256³ float32 NIfTI: dk_volume_read against nifticlib's nifti_image_read(path, 1)
 * on the same file, compressed (.nii.gz, ~60 MB of noisy data so zlib has real work) and
 * uncompressed (.nii). Runs alternate between the two readers so drifts in the page cache
 * or clock hit both; the table gives median and minimum and the ratio of medians.
 *
 * usage: bench_nifti_load [dir [runs]]   (dir default /tmp, runs default 5)
 * The inputs are generated once in `dir` and reused. Their base names differ, because
 * nifticlib asked for x.nii.gz reads x.nii when both exist. */
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dakd/volume.h"

enum { N = 256, MAX_RUNS = 64 };

/* A sphere of intensity 100 on a ramp, plus unit Gaussian noise in every voxel. */
static int generate(const char *gz_path, const char *raw_path) {
    dk_volume v;
    if (dk_volume_alloc(&v, N, N, N, 1, 1, DK_F32) != DK_OK) return -1;
    dk_rng r;
    dk_rng_seed(&r, 42);
    float *d = v.data;
    for (int z = 0; z < N; z++)
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                double dx = x - N / 2, dy = y - N / 2, dz = z - N / 2;
                double base = (dx * dx + dy * dy + dz * dz < 80.0 * 80.0 ? 100.0 : 0.0) + 0.1 * z;
                d[((size_t)z * N + y) * N + x] = (float)(base + dk_rng_normal(&r));
            }
    v.geom.spacing[0] = v.geom.spacing[1] = v.geom.spacing[2] = 0.8;
    int rc =
        dk_nifti_write(&v, gz_path, NULL) == DK_OK && dk_nifti_write(&v, raw_path, NULL) == DK_OK
            ? 0
            : -1;
    if (rc) fprintf(stderr, "bench: %s\n", dk_last_error());
    dk_volume_free(&v);
    return rc;
}

static double time_nifticlib(const char *path) {
    double t0 = dk_time_now();
    nifti_image *nim = nifti_image_read(path, 1);
    double t = dk_time_now() - t0;
    if (!nim || !nim->data) {
        fprintf(stderr, "bench: nifti_image_read failed on %s\n", path);
        exit(1);
    }
    nifti_image_free(nim);
    return t;
}

static double time_dakd(const char *path) {
    dk_volume v;
    double t0 = dk_time_now();
    dk_status st = dk_volume_read(&v, path);
    double t = dk_time_now() - t0;
    if (st != DK_OK) {
        fprintf(stderr, "bench: %s\n", dk_last_error());
        exit(1);
    }
    dk_volume_free(&v);
    return t;
}

static void bench_file(const char *label, const char *path, int runs) {
    double a[MAX_RUNS], b[MAX_RUNS];
    time_nifticlib(path); /* warm the page cache for both */
    time_dakd(path);
    for (int i = 0; i < runs; i++) {
        a[i] = time_nifticlib(path);
        b[i] = time_dakd(path);
    }
    double ma = dk_median(a, runs), mb = dk_median(b, runs);
    printf("%-10s %-30s %10.1f %10.1f %8.3f\n", label, "nifti_image_read(path, 1)", ma * 1e3,
           a[0] * 1e3, 1.0);
    printf("%-10s %-30s %10.1f %10.1f %8.3f\n", label, "dk_volume_read", mb * 1e3, b[0] * 1e3,
           mb / ma);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    char gz[4096], raw[4096];
    snprintf(gz, sizeof gz, "%s/dakd_bench_256_gz.nii.gz", dir);
    snprintf(raw, sizeof raw, "%s/dakd_bench_256_raw.nii", dir);
    struct stat sb;
    if (stat(gz, &sb) != 0 || stat(raw, &sb) != 0) {
        printf("generating %s and %s ...\n", gz, raw);
        fflush(stdout);
        if (generate(gz, raw) != 0) return 1;
    }
    nifti_set_debug_level(0);
    stat(gz, &sb);
    printf("256^3 float32, %d alternating runs; %s is %.1f MB\n\n", runs, gz, sb.st_size / 1e6);
    printf("%-10s %-30s %10s %10s %8s\n", "file", "method", "median ms", "min ms", "ratio");
    bench_file(".nii.gz", gz, runs);
    bench_file(".nii", raw, runs);
    return 0;
}
