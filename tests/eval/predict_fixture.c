/* Inputs for prediction: see predict_fixture.h. */
#include "predict_fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

int dk_test_noise_image(dk_volume *v, int64_t nx, int64_t ny, int64_t nz, int64_t nc,
                        uint64_t seed) {
    if (dk_volume_alloc(v, nx, ny, nz, 1, nc, DK_F32) != DK_OK) return -1;
    v->ndim = nz == 1 ? 2 : 3;
    dk_rng r;
    dk_rng_seed(&r, seed);
    float *x = v->data;
    for (int64_t i = 0; i < dk_volume_numel(v); i++)
        x[i] = (float)dk_rng_normal(&r);
    return 0;
}

int dk_test_save_model(const char *path, dk_unet *net, const char *channels, const char *norm,
                       const char *spacing, const char *patch, const char *classes) {
    /* clang-format off */
    const char *meta[] = {"dakd.data.channels", channels, "dakd.data.channel_index", "0",
                          "dakd.data.norm", norm, "dakd.data.norm_lo_pct", "0.5",
                          "dakd.data.norm_hi_pct", "99.5", "dakd.data.ct_level", "40",
                          "dakd.data.ct_width", "400", "dakd.data.zero_outside_mask", "1",
                          "dakd.data.norm_in_mask", "1", "dakd.data.spacing", spacing,
                          "dakd.data.size", "0,0,0", "dakd.data.patch", patch,
                          "dakd.data.classes", classes, NULL};
    /* clang-format on */
    return dk_unet_save(net, path, meta) == DK_OK ? 0 : -1;
}

int dk_test_random_model(const char *path, const char *patch) {
    return dk_test_random_model_at(path, patch, "0,0,0");
}

int dk_test_random_model_at(const char *path, const char *patch, const char *spacing) {
    dk_unet_config c = {3, 1, 4, 4, 2, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0.01f, 0, {{0}}, {{0}}};
    dk_rng r;
    dk_rng_seed(&r, 11);
    dk_unet *net = NULL;
    if (dk_unet_create(&net, &c, 0, &r) != DK_OK) return -1;
    const dk_param_info *b = dk_params_find(dk_unet_params(net), "head.bias");
    for (int64_t i = 0; b && i < b->numel; i++) /* every class wins somewhere */
        dk_unet_params(net)->w[b->offset + i] = 0.05f * (float)i;
    int rc = dk_test_save_model(path, net, "all", "zscore", spacing, patch, "4");
    dk_unet_free(net);
    return rc;
}

static char cli_out[1 << 16]; /* the last dk_test_dakd run's output */

int dk_test_dakd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = dk_test_vcli(cli_out, sizeof cli_out, fmt, ap);
    va_end(ap);
    return rc;
}

void dk_test_expect(int rc, int code, const char *const *needles) {
    int ok = rc == code;
    for (int i = 0; needles && needles[i]; i++)
        ok &= strstr(cli_out, needles[i]) != NULL;
    if (!ok) printf("\n    exit %d (want %d): %s\n", rc, code, cli_out);
    CU_ASSERT_EQUAL(rc, code);
    for (int i = 0; needles && needles[i]; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(cli_out, needles[i]));
}
