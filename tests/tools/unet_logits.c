/* dakd's logits for one raw float32 input, the side of an ONNX Runtime comparison that a
 * shell test cannot compute itself (tests/e2e/new_user.sh):
 *   unet_logits MODEL.safetensors INPUT.f32 C,D,H,W LOGITS.f32
 * INPUT.f32 holds (1, C, D, H, W) float32 little-endian; LOGITS.f32 gets (1, K, D, H, W).
 * Exit 0, 1 on a bad argument or file, 3 when the model does not open. */
#include <stdio.h>
#include <stdlib.h>

#include "dakd/nn.h"

int main(int argc, char **argv) {
    long long c, d, h, w;
    if (argc != 5 || sscanf(argv[3], "%lld,%lld,%lld,%lld", &c, &d, &h, &w) != 4) {
        fprintf(stderr, "usage: unet_logits MODEL INPUT.f32 C,D,H,W LOGITS.f32\n");
        return 1;
    }
    dk_unet *m = NULL;
    if (dk_unet_open(&m, argv[1], NULL) != DK_OK || dk_unet_plan(m, 1, d, h, w) != DK_OK) {
        fprintf(stderr, "unet_logits: %s\n", dk_last_error());
        dk_unet_free(m);
        return 3;
    }
    size_t n = (size_t)(c * d * h * w);
    float *x = malloc(n * sizeof *x);
    FILE *f = fopen(argv[2], "rb");
    int ok = x && f && fread(x, sizeof *x, n, f) == n && fgetc(f) == EOF;
    if (f) fclose(f);
    const dk_tap *t = NULL;
    if (ok) {
        dk_unet_forward(m, x, 0, NULL);
        t = dk_unet_tap(m, "logits");
        f = fopen(argv[4], "wb");
        size_t k = (size_t)dk_tensor_numel(&t->value);
        ok = f && fwrite(t->value.data, sizeof(float), k, f) == k;
        ok = (f && fclose(f) == 0) && ok;
    }
    if (!ok) fprintf(stderr, "unet_logits: %s or %s: wrong size or unwritable\n", argv[2], argv[4]);
    free(x);
    dk_unet_free(m);
    return ok ? 0 : 1;
}
