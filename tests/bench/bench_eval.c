/* Evaluation benchmark: two 256³ label volumes (labels 1-4, spacing 1 × 1 × 2.5 mm; the
 * reference is random ellipsoid blobs with ragged edges, the prediction the same blobs moved,
 * rescaled and re-jittered). All metrics for all labels:
 *   dakd         dk_eval_case on the loaded volumes (2 threads and 1);
 *   plastimatch  `plastimatch dice --all REF_L PRED_L` for each label L on binary masks made
 *                once (only the four calls are timed; each includes reading its two files);
 *   ITK          tests/eval/itk_overlap_oracle bench: LabelOverlapMeasuresImageFilter, then
 *                per label boundaries + SignedMaurerDistanceMapImageFilter both ways, pooled
 *                HD95 (its own clock, after reading; the process wall time is shown too).
 * Runs are interleaved (dakd 2T, dakd 1T, plastimatch, ITK per round); medians. Peak memory
 * of dakd beyond the inputs is measured in a fresh process that loads the two volumes,
 * resets the peak RSS (/proc/self/clear_refs), runs dk_eval_case and reads VmHWM − VmRSS.
 *
 * usage: bench_eval [--dir DIR] [--runs N] [--size N]     (defaults /tmp/dakd-bench-eval, 5,
 *        256). Inputs are generated once in DIR (uncompressed .nii) and reused.
 *        bench_eval --mem PRED REF THREADS   (the memory probe; prints one number: bytes) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../eval/blobs.h"
#include "dakd/eval.h"

enum { MAX_RUNS = 32, NL = 4 };
static const int LABELS[NL] = {1, 2, 3, 4};

static char g_dir[1024] = "/tmp/dakd-bench-eval";
static int64_t g_size = 256;

static const char *path_of(const char *name) {
    static char buf[4][1400];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

static void die(const char *what) {
    fprintf(stderr, "bench_eval: %s: %s\n", what, dk_last_error());
    exit(1);
}

static void write_label(const dk_volume *src, int lab, const char *path) {
    dk_volume b;
    if (dk_volume_alloc(&b, src->nx, src->ny, src->nz, 1, 1, DK_U8) != DK_OK) die("alloc");
    b.geom = src->geom;
    const uint8_t *s = src->data;
    uint8_t *d = b.data;
    for (int64_t i = 0; i < dk_volume_numel(src); i++) d[i] = s[i] == lab;
    if (dk_volume_write(&b, path, NULL) != DK_OK) die(path);
    dk_volume_free(&b);
}

static void generate(void) {
    struct stat st;
    if (stat(path_of("ref_4.nii"), &st) == 0) return;
    mkdir(g_dir, 0755);
    const int64_t n[3] = {g_size, g_size, g_size};
    enum { PER = 3 };
    blob b[NL * PER], q[NL * PER];
    dk_rng rng;
    dk_rng_seed(&rng, 2026);
    blobs_make(b, NL, PER, n, g_size / 12.0, g_size / 5.0, 1 / 2.5, &rng);
    blobs_perturb(q, b, NL * PER, g_size / 64.0, 0.08, &rng);
    dk_volume p, r;
    if (dk_volume_alloc(&p, n[0], n[1], n[2], 1, 1, DK_U8) != DK_OK ||
        dk_volume_alloc(&r, n[0], n[1], n[2], 1, 1, DK_U8) != DK_OK)
        die("alloc");
    p.geom.spacing[2] = r.geom.spacing[2] = 2.5;
    if (blobs_paint(r.data, b, NL * PER, n, 0.15, 1) || blobs_paint(p.data, q, NL * PER, n, 0.15, 2))
        die("paint");
    if (dk_volume_write(&p, path_of("pred.nii"), NULL) != DK_OK) die("write pred");
    if (dk_volume_write(&r, path_of("ref.nii"), NULL) != DK_OK) die("write ref");
    for (int l = 1; l <= NL; l++) {
        char pn[32], rn[32];
        snprintf(pn, sizeof pn, "pred_%d.nii", l);
        snprintf(rn, sizeof rn, "ref_%d.nii", l);
        write_label(&p, l, path_of(pn));
        write_label(&r, l, path_of(rn));
    }
    dk_volume_free(&p);
    dk_volume_free(&r);
}

/* VmRSS or VmHWM of this process in bytes. */
static long long proc_status(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0) kb = atoll(line + k + 1);
    if (f) fclose(f);
    return kb * 1024;
}

static int mem_probe(const char *pp, const char *rp, int threads) {
    dk_volume p, r;
    if (dk_volume_read(&p, pp) != DK_OK || dk_volume_read(&r, rp) != DK_OK) die("read");
    dk_set_threads(threads);
    FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5": reset the peak RSS */
    if (!f || fputs("5", f) < 0 || fclose(f) != 0) {
        printf("-1\n");
        return 0;
    }
    long long before = proc_status("VmRSS:");
    dk_label_metrics m[NL];
    if (dk_eval_case(m, &p, pp, &r, rp, NULL, LABELS, NL, NULL) != DK_OK) die("eval");
    printf("%lld\n", proc_status("VmHWM:") - before);
    return 0;
}

/* CPU seconds (user + system) of this process, or of its waited-for children. */
static double cpu_seconds(int who) {
    struct rusage u;
    getrusage(who, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
           (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

static double time_dakd(dk_label_metrics *m, const dk_volume *p, const dk_volume *r, int th,
                        double *cpu) {
    dk_set_threads(th);
    double t0 = dk_time_now(), c0 = cpu_seconds(RUSAGE_SELF);
    if (dk_eval_case(m, p, "pred", r, "ref", NULL, LABELS, NL, NULL) != DK_OK) die("eval");
    *cpu = cpu_seconds(RUSAGE_SELF) - c0;
    return dk_time_now() - t0;
}

/* Four plastimatch calls; their HD95 ("Percent (0.95) Hausdorff distance (boundary)", a
 * boundary-based percentile of plastimatch's own definition) into hd95[]. */
static double time_plastimatch(double hd95[NL]) {
    double t = 0;
    for (int l = 1; l <= NL; l++) {
        char cmd[4096], rn[32], pn[32];
        snprintf(rn, sizeof rn, "ref_%d.nii", l);
        snprintf(pn, sizeof pn, "pred_%d.nii", l);
        snprintf(cmd, sizeof cmd, "plastimatch dice --all '%s' '%s' 2>&1", path_of(rn),
                 path_of(pn));
        double t0 = dk_time_now();
        FILE *f = popen(cmd, "r");
        char line[512];
        hd95[l - 1] = NAN;
        while (f && fgets(line, sizeof line, f)) {
            const char *k = "Percent (0.95) Hausdorff distance (boundary) = ";
            if (strncmp(line, k, strlen(k)) == 0) hd95[l - 1] = atof(line + strlen(k));
        }
        if (!f || pclose(f) != 0) return NAN;
        t += dk_time_now() - t0;
    }
    return t;
}

/* The ITK program: wall time of the process, its own time after reading, per-label HD95. */
static double time_itk(double *inner, double hd95[NL]) {
#ifndef DK_ITK_ORACLE
    (void)hd95;
    *inner = NAN;
    return NAN;
#else
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' bench '%s' '%s'", DK_ITK_ORACLE, path_of("pred.nii"),
             path_of("ref.nii"));
    double t0 = dk_time_now();
    FILE *f = popen(cmd, "r");
    char line[512];
    *inner = NAN;
    while (f && fgets(line, sizeof line, f)) {
        unsigned lab;
        double dice, hd, h95, assd;
        if (strncmp(line, "seconds ", 8) == 0) *inner = atof(line + 8);
        else if (sscanf(line, "%u %lf %lf %lf %lf", &lab, &dice, &hd, &h95, &assd) == 5 &&
                 lab >= 1 && lab <= NL)
            hd95[lab - 1] = h95;
    }
    if (!f || pclose(f) != 0) return NAN;
    return dk_time_now() - t0;
#endif
}

static double mem_bytes(int threads) {
    char cmd[4096], self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return NAN;
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' --mem '%s' '%s' %d", self, path_of("pred.nii"),
             path_of("ref.nii"), threads);
    FILE *f = popen(cmd, "r");
    double b = NAN;
    if (f && fscanf(f, "%lf", &b) != 1) b = NAN;
    if (f) pclose(f);
    return b;
}

int main(int argc, char **argv) {
    dk_blas_restart_if_needed(argv); /* passive OpenMP waiting, as the dakd command */
    if (argc == 5 && strcmp(argv[1], "--mem") == 0) return mem_probe(argv[2], argv[3], atoi(argv[4]));
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0) snprintf(g_dir, sizeof g_dir, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0) runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0) g_size = atoll(argv[i + 1]);
    }
    if (runs < 1 || runs > MAX_RUNS || g_size < 16) {
        fprintf(stderr, "usage: bench_eval [--dir DIR] [--runs 1..%d] [--size N>=16]\n", MAX_RUNS);
        return 1;
    }
    generate();
    dk_volume p, r;
    if (dk_volume_read(&p, path_of("pred.nii")) != DK_OK) die("read pred");
    if (dk_volume_read(&r, path_of("ref.nii")) != DK_OK) die("read ref");
    double t2[MAX_RUNS], t1[MAX_RUNS], tp[MAX_RUNS], ti[MAX_RUNS], tin[MAX_RUNS];
    double c2[MAX_RUNS], c1[MAX_RUNS], cp[MAX_RUNS], ci[MAX_RUNS];
    double hp[NL], hi[NL] = {NAN, NAN, NAN, NAN};
    dk_label_metrics m[NL];
    for (int k = 0; k < runs; k++) {
        t2[k] = time_dakd(m, &p, &r, 2, &c2[k]);
        t1[k] = time_dakd(m, &p, &r, 1, &c1[k]);
        double c0 = cpu_seconds(RUSAGE_CHILDREN);
        tp[k] = time_plastimatch(hp);
        double c01 = cpu_seconds(RUSAGE_CHILDREN);
        ti[k] = time_itk(&tin[k], hi);
        cp[k] = c01 - c0;
        ci[k] = cpu_seconds(RUSAGE_CHILDREN) - c01;
    }
    double m2 = dk_median(t2, runs), m1 = dk_median(t1, runs), mp = dk_median(tp, runs);
    double mi = dk_median(ti, runs), min_ = dk_median(tin, runs);
    double k2 = dk_median(c2, runs), k1 = dk_median(c1, runs), kp = dk_median(cp, runs);
    double ki = dk_median(ci, runs);
    int64_t nvox = p.nx * p.ny * p.nz;
    double b2 = mem_bytes(2), b1 = mem_bytes(1);
    printf("machine: %ld cores online; %lld^3 voxels, spacing 1 x 1 x 2.5 mm; median of %d "
           "interleaved runs\n\n", sysconf(_SC_NPROCESSORS_ONLN), (long long)g_size, runs);
    printf("| label | ref voxels | Dice | HD mm | HD95 mm (dakd, pooled) | HD95 ITK Maurer | "
           "HD95 plastimatch (own definition) | ASSD mm | NSD@1mm |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int l = 0; l < NL; l++)
        printf("| %d | %lld | %.4f | %.3f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", LABELS[l],
               (long long)m[l].n_ref, m[l].dice, m[l].hd, m[l].hd95, hi[l], hp[l], m[l].assd,
               m[l].nsd);
    printf("\n| tool | wall s | dakd 2T ÷ tool (wall) | dakd 1T ÷ tool (wall) | CPU s | "
           "dakd 1T ÷ tool (CPU) |\n|---|---|---|---|---|---|\n");
    printf("| dakd dk_eval_case, 2 threads | %.3f | 1.00 | %.3f | %.3f | %.3f |\n", m2, m1 / m2,
           k2, k1 / k2);
    printf("| dakd dk_eval_case, 1 thread | %.3f | %.3f | 1.00 | %.3f | 1.00 |\n", m1, m2 / m1, k1);
    printf("| plastimatch dice --all, 4 labels (incl. reading) | %.3f | %.3f | %.3f | %.3f | "
           "%.3f |\n", mp, m2 / mp, m1 / mp, kp, k1 / kp);
    printf("| ITK overlap + Maurer, after reading | %.3f | %.3f | %.3f | | |\n", min_, m2 / min_,
           m1 / min_);
    printf("| ITK program, whole process (incl. reading) | %.3f | %.3f | %.3f | %.3f | %.3f |\n",
           mi, m2 / mi, m1 / mi, ki, k1 / ki);
    printf("\ndakd peak memory beyond the two inputs: %.1f MB = %.2f B/voxel (2 threads), "
           "%.1f MB = %.2f B/voxel (1 thread)\n", b2 / 1e6, b2 / (double)nvox, b1 / 1e6,
           b1 / (double)nvox);
    dk_volume_free(&p);
    dk_volume_free(&r);
    return 0;
}
