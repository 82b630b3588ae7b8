/* DICOM through GDCM: dk_volume_read of one file x.dcm (`dakd info FILE`), or of a folder
 * holding two files split as fz_split says, listed first (`dakd info DIR`:
 * dk_dicom_list_series) then read. GDCM runs in this process (fz_dicom_setup).
 * Input: mode byte (0 one file, 1 a folder of two) + file(s). */
#include <stdlib.h>

#include "fuzz_util.h"

static void read_folder(const uint8_t *data, size_t n) {
    fz_write_pair("d/a.dcm", "d/b.dcm", data, n);
    const char *dir = fz_path("d");
    dk_dicom_series *ser = NULL;
    dk_dicom_skipped *skipped = NULL;
    int nser = 0, nskipped = 0;
    dk_dicom_list_series(&ser, &nser, &skipped, &nskipped, dir);
    free(ser);
    free(skipped);
    dk_volume v;
    if (dk_volume_read(&v, dir) == DK_OK) fz_use_volume(&v);
    dk_volume_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_dicom_setup();
    fz_begin();
    if (fz_take_mode(&data, &n, 2) == 1) {
        read_folder(data, n);
        return 0;
    }
    const char *path = fz_write("x.dcm", data, n);
    dk_volume v;
    if (dk_volume_read(&v, path) == DK_OK) fz_use_volume(&v);
    dk_volume_free(&v);
    return 0;
}
