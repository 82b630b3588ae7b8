/*
 * bench_predict — time per image of whole-image prediction at the size of the retina study:
 * a 584 x 565 one-channel 2-D image, the base-8 5-level student (random weights: the time
 * does not depend on them), sliding windows of the training patch (256 x 256) and of
 * 512 x 512, overlap 0.5, batch 4, no TTA. Rows: dk_predict_run in this process (libgomp's
 * default spin-waiting), then `dakd predict` (which waits passively); each the median over
 * the images, as dakd reports it.
 * Usage: bench_predict [images, default 3]     (inputs and outputs in the build's scratch)
 */
#include "dakd/eval.h"
#include "predict_fixture.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_IMAGES = 16 };

static void die(const char *what) {
    fprintf(stderr, "bench_predict: %s: %s\n", what, dk_last_error());
    exit(1);
}

/* The model file: the student of the study, saved with the metadata predict reads. */
static const char *make_model(const char *dir) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/student.safetensors", dir);
    dk_unet_config c = {2, 1, 2, 8, 5, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0.01f, 0, {{0}}, {{0}}};
    dk_rng r;
    dk_rng_seed(&r, 81);
    dk_unet *net = NULL;
    if (dk_unet_create(&net, &c, 0, &r) != DK_OK) die("student");
    if (dk_test_save_model(path, net, "all", "zscore", "0,0,0", "1,256,256", "2") != 0)
        die(path);
    dk_unet_free(net);
    return path;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    if (n < 1 || n > MAX_IMAGES) {
        fprintf(stderr, "usage: bench_predict [images 1..%d]\n", MAX_IMAGES);
        return 1;
    }
    const char *dir = dk_test_tmpdir();
    const char *model = make_model(dir);
    static char paths[MAX_IMAGES][4200];
    const char *inputs[MAX_IMAGES + 1] = {NULL};
    char list[MAX_IMAGES * 4200] = "";
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/image_%d.nii.gz", dir, i);
        dk_volume v = {0};
        if (dk_test_noise_image(&v, 565, 584, 1, 1, 90 + (uint64_t)i) != 0) die("image");
        if (dk_volume_write(&v, paths[i], NULL) != DK_OK) die(paths[i]);
        dk_volume_free(&v);
        inputs[i] = paths[i];
        strcat(strcat(list, " "), paths[i]);
    }
    printf("584x565 2-D image, base-8 5-level student, batch 4, overlap 0.5, %d threads, "
           "median of %d images\n\n| path | windows | ms per image |\n|---|---|---|\n",
           dk_get_threads(), n);
    const int64_t patch[] = {256, 512};
    for (int i = 0; i < 2; i++) {
        dk_predict_opts o;
        memset(&o, 0, sizeof o);
        double ms = 0;
        dk_infer_defaults(&o.infer);
        o.infer.patch[0] = 1, o.infer.patch[1] = o.infer.patch[2] = patch[i];
        o.model = model, o.inputs = inputs, o.ms_per_image = &ms;
        o.out_dir = dk_test_path(dir, "out");
        if (dk_predict_run(&o) != DK_OK) die("dk_predict_run");
        printf("| dk_predict_run | %lldx%lld | %.1f |\n", (long long)patch[i],
               (long long)patch[i], ms);
    }
    char log[4096];
    int rc = dk_test_sh(log, sizeof log, "%s predict --model %s --out %s%s", dk_test_cli(), model,
                        dk_test_path(dir, "out_cli"), list);
    const char *m = strstr(log, "median ");
    if (rc != 0 || !m) {
        fprintf(stderr, "bench_predict: dakd predict failed (%d):\n%s\n", rc, log);
        return 1;
    }
    printf("| dakd predict | 256x256 | %.1f |\n", atof(m + 7));
    return 0;
}
