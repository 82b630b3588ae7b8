/* A model file as `dakd predict` opens it: the input as x.safetensors through dk_unet_open
 * (the network its dakd.config.* metadata describe, checked against its tensors before it
 * is built) and the preprocessing its dakd.data.* metadata record (dk_prep_meta_read). */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "dakd/data.h"
#include "dakd/nn.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    const char *path = fz_write("x.safetensors", data, n);
    dk_unet *net = NULL;
    char *meta = NULL;
    if (dk_unet_open(&net, path, &meta) != DK_OK) return 0;
    cJSON *m = cJSON_Parse(meta);
    fz_check(m != NULL, "dk_unet_open returned metadata that is not JSON");
    dk_data_opts d;
    dk_prep_meta_read(&d, m, path);
    cJSON_Delete(m);
    free(meta);
    dk_unet_free(net);
    return 0;
}
