/* NIfTI-1/-2 and Analyze: dk_volume_read_header and dk_volume_read of a .nii, a .nii.gz
 * (the input as the gzip stream, or the input gzipped here so that mutations reach the
 * header behind it) and a .hdr/.img pair (split as fz_split says).
 * Input: mode byte (0 .nii, 1 .nii.gz as given, 2 .nii.gz made here, 3 .hdr/.img) + file. */
#include <zlib.h>

#include "fuzz_util.h"

static void write_gzipped(const char *name, const uint8_t *data, size_t n) {
    const char *p = fz_path(name);
    gzFile g = gzopen(p, "wb1");
    fz_check(g != NULL, "cannot create a .nii.gz");
    fz_check((n == 0 || gzwrite(g, data, (unsigned)n) == (int)n) && gzclose(g) == Z_OK,
             "cannot write a .nii.gz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    const char *path;
    switch (fz_take_mode(&data, &n, 4)) {
    case 0: path = fz_write("x.nii", data, n); break;
    case 1: path = fz_write("x.nii.gz", data, n); break;
    case 2:
        write_gzipped("x.nii.gz", data, n);
        path = fz_path("x.nii.gz");
        break;
    default: path = fz_write_pair("x.hdr", "x.img", data, n);
    }
    fz_read_volume(path);
    return 0;
}
