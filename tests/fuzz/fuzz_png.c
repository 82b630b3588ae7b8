/* PNG through libpng: dk_volume_read of x.png (the input as it is). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    const char *path = fz_write("x.png", data, n);
    dk_volume v;
    if (dk_volume_read(&v, path) == DK_OK) fz_use_volume(&v);
    dk_volume_free(&v);
    return 0;
}
