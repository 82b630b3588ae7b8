/*
 * predict_one — segment one image with a model trained by dakd, with dakd as a library.
 *
 *   predict_one MODEL.safetensors IMAGE OUT_DIR
 *
 * Writes OUT_DIR/<case>.nii.gz: uint8 labels on IMAGE's grid, with its geometry and NIfTI
 * header (a 2-D PNG input gives a PNG). It calls dk_predict_run, the function behind
 * `dakd predict`, so the file is the one `dakd predict --model MODEL --out OUT_DIR IMAGE`
 * writes: the image is preprocessed as the model was trained (the model file's dakd.data.*
 * metadata), segmented by a Gaussian-weighted sliding window, and its class probabilities
 * are resampled back onto IMAGE's grid before the argmax. The pieces are public too
 * (dk_predict_inputs_read, dk_infer_probs, dk_infer_argmax in <dakd/eval.h>).
 */
#include <stdio.h>

#include <dakd/core.h>
#include <dakd/eval.h>
#include <dakd/nn.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: predict_one MODEL.safetensors IMAGE OUT_DIR\n");
        return 2;
    }
    /* OpenBLAS chooses its kernel when it is loaded: restart once with the one dakd chooses
     * (as the dakd command does), so the numbers are the command's. */
    dk_blas_restart_if_needed(argv);
    /* The library prints nothing itself; its log lines go to the sink installed here. */
    dk_log_set_sink(dk_log_stderr_sink, NULL, DK_LOG_INFO);

    const char *inputs[] = {argv[2], NULL};
    double ms = 0;
    dk_predict_opts o = {0};
    dk_infer_defaults(&o.infer); /* the model's training patch, overlap 0.5, Gaussian */
    o.model = argv[1];
    o.inputs = inputs;
    o.out_dir = argv[3];
    o.ms_per_image = &ms;
    if (dk_predict_run(&o) != DK_OK) {
        fprintf(stderr, "predict_one: %s\n", dk_last_error());
        return 1;
    }
    printf("labels in %s (inference %.1f ms)\n", argv[3], ms);
    return 0;
}
