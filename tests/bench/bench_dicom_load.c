/* How long dk_volume_read takes on the 150-file GE 4-D series (dcm_qa_nih mr_0004)
 * against dcm2niix converting the same folder (`dcm2niix -z n -o TMP DIR`, fork/exec,
 * wall time), both measured in this run, runs interleaved. Prints a table of medians and
 * the ratio; the goal is dakd <= 1.5 x dcm2niix. Not a test: machines vary.
 *   usage: bench_dicom_load [RUNS]   (default 15; DAKD_SHARED_DATA locates the data) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dakd/volume.h"
#include "test_util.h"

/* Wall time of one dcm2niix conversion into `out` (emptied first); < 0 on failure. */
static double time_dcm2niix(const char *dir, const char *out) {
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*", out);
    if (system(cmd) != 0) return -1;
    double t0 = dk_time_now();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execlp("dcm2niix", "dcm2niix", "-z", "n", "-o", out, dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    double t = dk_time_now() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 15;
    const char *shared = dk_test_shared_data();
    if (!shared || runs < 1) {
        fprintf(stderr, "bench_dicom_load: ../shared/data not found (DAKD_SHARED_DATA)\n");
        return 1;
    }
    char dir[4200], out[4200];
    snprintf(dir, sizeof dir, "%s/conformance/dcm_qa_nih/In/20180918GE/mr_0004", shared);
    snprintf(out, sizeof out, "%s/bench_dcm2niix", dk_test_tmpdir());
    char mk[4300];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", out);
    if (system(mk) != 0) return 1;
    double *td = malloc(sizeof *td * (size_t)runs), *tn = malloc(sizeof *tn * (size_t)runs);
    if (!td || !tn) return 1;
    dk_volume v;
    for (int r = -1; r < runs; r++) { /* r = -1 warms the page cache for both */
        double t0 = dk_time_now();
        if (dk_volume_read(&v, dir) != DK_OK) {
            fprintf(stderr, "bench_dicom_load: %s\n", dk_last_error());
            return 1;
        }
        double t = dk_time_now() - t0;
        dk_volume_free(&v);
        double n = time_dcm2niix(dir, out);
        if (n < 0) {
            fprintf(stderr, "bench_dicom_load: dcm2niix failed (is it installed?)\n");
            return 1;
        }
        if (r >= 0) td[r] = t, tn[r] = n;
    }
    double md = dk_median(td, runs), mn = dk_median(tn, runs);
    printf("GE MR series, 150 files (64x64, 15 slices x 10 volumes), %d runs, medians\n", runs);
    printf("  %-44s %10s\n", "", "ms");
    printf("  %-44s %10.1f\n", "dakd dk_volume_read (scan, order, decode)", md * 1e3);
    printf("  %-44s %10.1f\n", "dcm2niix -z n (process, convert, write .nii)", mn * 1e3);
    printf("  %-44s %10.2f   (goal <= 1.50)\n", "ratio dakd / dcm2niix", md / mn);
    free(td);
    free(tn);
    return 0;
}
