/* MetaImage and NRRD through ITK's ImageIO: dk_volume_read_header and dk_volume_read of an
 * .mha or .nrrd with its data attached, or an .mhd or .nhdr whose data sit in a second file
 * x.raw (split as fz_split says; the seeds' headers name x.raw).
 * Input: mode byte (0 .mha, 1 .nrrd, 2 .mhd + x.raw, 3 .nhdr + x.raw) + file(s). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const char *const names[4] = {"x.mha", "x.nrrd", "x.mhd", "x.nhdr"};
    fz_begin();
    int mode = fz_take_mode(&data, &n, 4);
    fz_read_volume(mode < 2 ? fz_write(names[mode], data, n)
                            : fz_write_pair(names[mode], "x.raw", data, n));
    return 0;
}
