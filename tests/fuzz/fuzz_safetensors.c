/* A checkpoint into a network that exists (a teacher or a resumed model): the input as
 * x.safetensors through dk_unet_load into a fixed small U-Net (2-D, 1 -> 4 classes, base 4,
 * 2 levels, batch norm, leaky slope 0.01: make_corpus.sh writes its files as seeds), and
 * through dk_safetensors_read for its metadata alone. */
#include <stdlib.h>

#include "dakd/nn.h"
#include "fuzz_util.h"

static dk_unet *net;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    if (!net) {
        dk_unet_config g = {2, 1, 4, 4, 2, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0.01f, 0.0f,
                            {{0}}, {{0}}};
        dk_rng r;
        dk_rng_seed(&r, 1);
        fz_check(dk_unet_create(&net, &g, 0, &r) == DK_OK, "cannot build the fixed U-Net");
    }
    const char *path = fz_write("x.safetensors", data, n);
    char *meta = NULL;
    dk_unet_load(net, path, &meta);
    free(meta);
    meta = NULL;
    dk_safetensors_read(path, NULL, 0, 1, &meta);
    free(meta);
    return 0;
}
