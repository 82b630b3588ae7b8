/* What parsing DICOM in a child process costs (lib/io/dicom_isolate.c): per folder, the
 * headers parsed in this process (structure check + GDCM, one file after another, as dakd
 * did before) against dk_dcm_set_from_dir (the same work in one forked child, results
 * piped back), and the whole dk_volume_read (headers, then pixels in a second child).
 * Runs interleaved; medians, and per file. Not a test: machines vary.
 *   usage: bench_dicom_isolation [RUNS]   (default 15; DAKD_SHARED_DATA locates the data) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom_internal.h"
#include "test_util.h"

/* The headers of every file of s (paths set), in this process; the count parsed. */
static int scan_here(dk_dcm_set *s) {
    int ok = 0;
    for (int i = 0; i < s->n; i++) {
        dk_dcm_file *f = &s->files[i];
        if (dk_dcm_check_structure(f->path, NULL) == DK_OK && dk_itk_dcm_scan(f) == DK_OK) ok++;
        dk_itk_dcm_clear(f);
    }
    return ok;
}

static int bench(const char *name, const char *dir, int runs) {
    dk_dcm_set s, listed;
    if (dk_dcm_set_from_dir(&listed, dir) != DK_OK) {
        fprintf(stderr, "bench_dicom_isolation: %s\n", dk_last_error());
        return 1;
    }
    double *t = calloc((size_t)runs * 3, sizeof *t);
    if (!t) return 1;
    for (int r = -1; r < runs; r++) { /* r = -1 warms the page cache */
        double t0 = dk_time_now();
        int ok = scan_here(&listed);
        double t1 = dk_time_now();
        dk_status st = dk_dcm_set_from_dir(&s, dir);
        double t2 = dk_time_now();
        if (st == DK_OK) dk_dcm_set_free(&s);
        dk_volume v;
        if (st == DK_OK) st = dk_volume_read(&v, dir);
        double t3 = dk_time_now();
        if (st != DK_OK || ok != listed.n) {
            fprintf(stderr, "bench_dicom_isolation: %s\n", dk_last_error());
            return 1;
        }
        dk_volume_free(&v);
        if (r >= 0) t[r] = t1 - t0, t[runs + r] = t2 - t1, t[2 * runs + r] = t3 - t2;
    }
    const char *what[3] = {"headers, this process (as before)", "headers, one child",
                           "dk_volume_read (headers + pixels, 2 children)"};
    printf("%s, %d files, %d runs, medians\n", name, listed.n, runs);
    printf("  %-46s %9s %9s\n", "", "ms", "ms/file");
    for (int k = 0; k < 3; k++) {
        double m = dk_median(t + k * runs, runs);
        printf("  %-46s %9.1f %9.3f\n", what[k], m * 1e3, m * 1e3 / listed.n);
    }
    dk_dcm_set_free(&listed);
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 15;
    const char *shared = dk_test_shared_data();
    if (!shared || runs < 1) {
        fprintf(stderr, "bench_dicom_isolation: ../shared/data not found (DAKD_SHARED_DATA)\n");
        return 1;
    }
    char ge[4200], j2k[4200];
    snprintf(ge, sizeof ge, "%s/conformance/dcm_qa_nih/In/20180918GE/mr_0004", shared);
    snprintf(j2k, sizeof j2k, "%s/conformance/totalsegmentator/tests/reference_files/"
             "example_ct_dicom", shared);
    return bench("GE MR 64x64, explicit VR LE", ge, runs) ||
           bench("CT 512x512, JPEG 2000 lossless", j2k, runs);
}
