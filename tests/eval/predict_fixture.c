/* Inputs for prediction: see predict_fixture.h. */
#include "predict_fixture.h"

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
