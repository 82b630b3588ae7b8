/* The training config (`dakd train CONFIG`): the input as x.ini through
 * dk_train_config_load (lib/core/config.c's INI reading over the train table) and
 * dk_train_config_validate, then the reload identity of the effective config the trainer
 * writes (fz_config_round_trip), asserted for every file that loads. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    const char *path = fz_write("x.ini", data, n);
    static dk_train_config c; /* large: not on the stack */
    dk_train_config_defaults(&c);
    if (dk_train_config_load(&c, path) != DK_OK) return 0;
    dk_train_config_validate(&c); /* the trainer writes the config after it; derived fields */
    fz_config_round_trip(&c);
    return 0;
}
