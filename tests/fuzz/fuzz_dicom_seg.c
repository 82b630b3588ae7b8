/* DICOM SEG: the input as x.dcm, read onto the grid of the series it references with
 * dk_dicom_seg_read, the series being a fixed one (tests/fuzz/data/seg_series: dcmqi's
 * 23 x 38 x 3 CT that the seeds reference) copied once into a folder of its own. GDCM runs
 * in this process (fz_dicom_setup). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static char series[4096];

/* Copy the series beside the work folder once. */
static void copy_series(void) {
    snprintf(series, sizeof series, "%s/series", fz_root());
    fz_check(mkdir(series, 0700) == 0, "cannot make the series folder");
    for (int i = 1; i <= 3; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/IMG000%d.dcm", DK_FUZZ_SEG_SERIES, i);
        snprintf(to, sizeof to, "%s/IMG000%d.dcm", series, i);
        char *buf;
        size_t len;
        fz_check(dk_read_file(&buf, &len, from) == DK_OK, "cannot read the SEG's series");
        FILE *f = fopen(to, "wb");
        fz_check(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0,
                 "cannot copy the SEG's series");
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_dicom_setup();
    if (!series[0]) copy_series();
    fz_begin();
    const char *path = fz_write("x.dcm", data, n);
    dk_volume v;
    if (dk_dicom_seg_read(&v, path, series) == DK_OK) fz_use_volume(&v);
    dk_volume_free(&v);
    return 0;
}
