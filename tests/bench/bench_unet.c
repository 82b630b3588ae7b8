/* U-Net speed: one training step (forward + cross-entropy + backward + SGD momentum 0.9)
 * or inference, on the shapes of the engine issue; prints one line:
 *   dakd <mode> dims=D base=B batch=N size=S  median_ms=...  min_ms=...  gflops=...  rss_mb=...
 * Run each configuration in its own process so the peak RSS belongs to it
 * (tests/bench/run_unet_bench.sh does, beside the PyTorch script). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dakd/nn.h"
#include "dakd/train.h"

/* Multiply-adds x2 of every convolution in one forward pass (the FLOP count quoted). */
static double forward_flops(const dk_unet_config *c, int64_t n, int64_t d, int64_t h, int64_t w) {
    double f = 0, k3 = c->dims == 3 ? 27 : 9, s = (double)(d * h * w);
    for (int l = 0; l < c->levels; l++) {
        double wl = c->base << l, cin = l == 0 ? c->in_channels : wl / 2;
        f += 2 * n * s * k3 * (cin * wl + wl * wl); /* two conv blocks of the level */
        if (l < c->levels - 1) {
            double up = 2 * n * s * wl * 2 * wl; /* convT from width 2wl, kernel 2^dims */
            f += up + 2 * n * s * k3 * (2 * wl * wl + wl * wl);
            s /= c->dims == 3 ? 8 : 4;
        }
    }
    return f + 2 * n * (double)(d * h * w) * c->base * c->classes;
}

int main(int argc, char **argv) {
    dk_blas_restart_if_needed(argv);
    int dims = 2, base = 16, steps = 10, infer = 0;
    long long batch = 8, size = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dims")) dims = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--base")) base = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode")) infer = !strcmp(argv[i + 1], "infer");
        else if (!strcmp(argv[i], "--threads")) dk_set_threads(atoi(argv[i + 1]));
    }
    if (steps < 1 || steps > 1000) steps = 10;
    dk_unet_config cfg = {dims, 1, 2, base, 4, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0, 0,
                          {{0}}, {{0}}};
    int64_t d = dims == 3 ? size : 1, s = d * size * size;
    dk_rng rng;
    dk_rng_seed(&rng, 1);
    dk_unet *m = NULL;
    if (dk_unet_create(&m, &cfg, !infer, &rng) || dk_unet_plan(m, batch, d, size, size)) {
        fprintf(stderr, "bench_unet: %s\n", dk_last_error());
        return 1;
    }
    float *x = malloc(sizeof(float) * (size_t)(batch * s));
    uint8_t *y = malloc((size_t)(batch * s));
    for (int64_t i = 0; i < batch * s; i++) {
        x[i] = (float)dk_rng_normal(&rng);
        y[i] = (uint8_t)(x[i] > 0.5f);
    }
    dk_optim opt = {DK_OPT_SGD, 0.9, 0, 0, 0, 0, 0, 0};
    if (!infer && dk_optim_init(&opt, dk_unet_params(m))) return 1;
    double *t = malloc(sizeof(double) * (size_t)(steps + 2));
    for (int it = 0; it < steps + 2; it++) { /* two warm-up steps */
        double t0 = dk_time_now();
        if (infer) {
            dk_unet_forward(m, x, 0, NULL);
        } else {
            dk_params_zero_grad(dk_unet_params(m));
            dk_unet_forward(m, x, 1, &rng);
            dk_tap *lg = dk_unet_tap(m, "logits");
            dk_loss_ce(lg->grad, lg->value.data, y, batch, 2, s, 1.0f);
            dk_unet_backward(m);
            dk_optim_step(&opt, dk_unet_params(m), 0.01);
        }
        t[it] = dk_time_now() - t0;
    }
    dk_sort_doubles(t + 2, steps);
    double med = t[2 + steps / 2], flops = forward_flops(&cfg, batch, d, size, size);
    if (!infer) flops *= 3; /* backward: weight and input gradients */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("dakd %s dims=%d base=%d batch=%lld size=%lld  median_ms=%.1f  min_ms=%.1f  "
           "gflops=%.1f  rss_mb=%.0f  kernel=%s threads=%d\n",
           infer ? "infer" : "train", dims, base, batch, size, med * 1e3, t[2] * 1e3,
           flops / med * 1e-9, ru.ru_maxrss / 1024.0, dk_blas_kernel(), dk_get_threads());
    free(t), free(x), free(y);
    dk_unet_free(m);
    return 0;
}
