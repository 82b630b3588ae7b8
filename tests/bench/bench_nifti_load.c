/* Loading a 256³ float32 NIfTI: dk_volume_read against nifticlib's nifti_image_read(path, 1)
 * and nibabel's np.asarray(nib.load(path).dataobj), on the same file, compressed (.nii.gz,
 * ~57 MB of noisy data so the inflate has real work) and uncompressed (.nii); with --before,
 * also dk_volume_read of another build of this program (the library before a change), so
 * both sides of the change are measured in one run.
 *
 * nibabel loads with mmap=False: its default maps a plain .nii, and np.asarray of the map
 * would read nothing (a .nii.gz is never mapped, so the option changes nothing there).
 *
 * Every load runs in a process of its own (`--once`), which loads the file once untimed
 * (the page cache, lazy imports) and then once timed, and reports that time and its peak
 * RSS. The methods take turns within each round, so drifts in the machine's load hit all of
 * them; the table gives median and minimum over the rounds and the ratios of the medians.
 *
 * usage: bench_nifti_load [--before BIN] [dir [runs]]   (dir default /tmp, runs default 5)
 *        bench_nifti_load --once dakd|nifticlib PATH     (one timed load: "ms peak_kb")
 * The inputs are generated once in `dir` and reused. Their base names differ, because
 * nifticlib asked for x.nii.gz reads x.nii when both exist. */
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dakd/volume.h"

enum { N = 256, MAX_RUNS = 64, METHODS = 4 };

static const char *const NIBABEL =
    "import sys, time, resource, numpy as np, nibabel as nib\n"
    "p = sys.argv[1]\n"
    "np.asarray(nib.load(p, mmap=False).dataobj)\n"
    "t = time.perf_counter(); a = np.asarray(nib.load(p, mmap=False).dataobj)\n"
    "t = time.perf_counter() - t\n"
    "print('%.3f %d' % (t * 1e3, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n";

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

static int load(const char *method, const char *path) {
    if (strcmp(method, "nifticlib") == 0) {
        nifti_image *nim = nifti_image_read(path, 1);
        int ok = nim && nim->data;
        nifti_image_free(nim);
        return ok;
    }
    dk_volume v;
    dk_status st = dk_volume_read(&v, path);
    if (st != DK_OK) fprintf(stderr, "bench: %s\n", dk_last_error());
    dk_volume_free(&v);
    return st == DK_OK;
}

/* --once: an untimed load, a timed one, then "ms peak_kb". */
static int once(const char *method, const char *path) {
    nifti_set_debug_level(0);
    if (!load(method, path)) return 1;
    double t0 = dk_time_now();
    int ok = load(method, path);
    double t = dk_time_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.3f %ld\n", t * 1e3, ru.ru_maxrss);
    return !ok;
}

/* Run `cmd` and read "ms peak_kb" from its output. */
static int run(const char *cmd, double *ms, double *kb) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int n = fscanf(p, "%lf %lf", ms, kb);
    int rc = pclose(p);
    if (n != 2 || rc != 0) fprintf(stderr, "bench: '%s' failed\n", cmd);
    return n == 2 && rc == 0 ? 0 : -1;
}

typedef struct {
    const char *label;
    double ms[MAX_RUNS], kb[MAX_RUNS];
} method;

static void bench_file(const char *label, const char *path, int runs, const char *self,
                       const char *before) {
    method m[METHODS] = {{"nifticlib nifti_image_read", {0}, {0}},
                         {"nibabel asarray(dataobj)", {0}, {0}},
                         {"dakd before (--before)", {0}, {0}},
                         {"dakd dk_volume_read", {0}, {0}}};
    char cmd[METHODS][8192];
    snprintf(cmd[0], sizeof cmd[0], "'%s' --once nifticlib '%s'", self, path);
    snprintf(cmd[1], sizeof cmd[1], "/usr/bin/python3 -c \"%s\" '%s'", NIBABEL, path);
    snprintf(cmd[2], sizeof cmd[2], "'%s' --once dakd '%s'", before ? before : "", path);
    snprintf(cmd[3], sizeof cmd[3], "'%s' --once dakd '%s'", self, path);
    for (int i = 0; i < runs; i++)
        for (int k = 0; k < METHODS; k++)
            if ((k != 2 || before) && run(cmd[k], &m[k].ms[i], &m[k].kb[i]) != 0) exit(1);
    double med[METHODS] = {0}, min[METHODS] = {0}, kb[METHODS] = {0};
    for (int k = 0; k < METHODS; k++) {
        if (k == 2 && !before) continue;
        med[k] = dk_median(m[k].ms, runs);
        min[k] = m[k].ms[0]; /* dk_median sorted them */
        kb[k] = dk_median(m[k].kb, runs);
    }
    for (int k = 0; k < METHODS; k++)
        if (k != 2 || before)
            printf("%-8s %-28s %9.1f %9.1f %8.0f %8.2f %8.2f\n", label, m[k].label, med[k], min[k],
                   kb[k] / 1024.0, med[k] / med[0], med[k] / med[1]);
}

/* The parts of the .nii.gz load besides the inflate: the header read before it (a small
 * zlib inflate of the first bytes) and moving the voxels down over the header bytes the
 * whole-buffer inflate wrote in front of them. */
static void parts(const char *gz) {
    double h[21], mv[5];
    dk_volume v;
    for (int i = 0; i < 21; i++) {
        double t0 = dk_time_now();
        if (dk_volume_read_header(&v, gz) != DK_OK) return;
        h[i] = dk_time_now() - t0;
        dk_volume_free(&v);
    }
    const size_t n = (size_t)N * N * N * 4;
    unsigned char *b = dk_alloc_large(n + 352, 1);
    if (!b) return;
    memset(b, 1, n + 352);
    for (int i = 0; i < 5; i++) {
        double t0 = dk_time_now();
        memmove(b, b + 352, n);
        mv[i] = dk_time_now() - t0;
    }
    printf("\nparts of the .nii.gz load: header-only read %.2f ms (median of 21), memmove of "
           "the voxels %.1f ms (median of 5; checksum %d)\n",
           dk_median(h, 21) * 1e3, dk_median(mv, 5) * 1e3, b[n / 2]);
    dk_free(b);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--once") == 0) return once(argv[2], argv[3]);
    const char *before = NULL;
    if (argc > 2 && strcmp(argv[1], "--before") == 0) {
        before = argv[2];
        argc -= 2, argv += 2;
    }
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
    stat(gz, &sb);
    printf("256^3 float32, %d rounds, each load in a process of its own after an untimed one; "
           "%s is %.1f MB\n\n",
           runs, gz, sb.st_size / 1e6);
    printf("%-8s %-28s %9s %9s %8s %8s %8s\n", "file", "method", "median ms", "min ms", "peak MB",
           "x nifti", "x nibabel");
    fflush(stdout);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = 0;
    bench_file(".nii.gz", gz, runs, self, before);
    bench_file(".nii", raw, runs, self, before);
    parts(gz);
    return 0;
}
