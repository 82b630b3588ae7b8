/* dakd export — a model's network written for other runtimes (ONNX). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dakd/export.h"

static const char *export_help =
    "usage: dakd export --onnx MODEL.safetensors OUT.onnx\n\n"
    "Write the network of a model exported by 'dakd train', 'distill' or 'adapt' as an ONNX\n"
    "model (opset 13) that ONNX Runtime, TensorRT, OpenVINO and the like run without dakd.\n"
    "Layers: Conv, BatchNormalization (the running statistics, not folded) or\n"
    "InstanceNormalization, LeakyRelu/Relu, MaxPool, ConvTranspose or Conv + Resize (linear,\n"
    "half_pixel), Concat for the skips. Input 'input' float32 (N, C, D, H, W) -- (N, C, H, W)\n"
    "for a 2-D model -- with dynamic batch and spatial sizes, which must be multiples of\n"
    "2^(levels-1). Output 'logits': the full-resolution head's logits, BEFORE softmax\n"
    "(deep-supervision heads are left out); labels are the argmax over axis 1.\n"
    "The metadata (metadata_props) carries dakd.version, the model's dakd.config.* keys and\n"
    "its dakd.data.* preprocessing (channels, normalisation, spacing, patch, classes), so a\n"
    "deployment prepares images as training did; dakd.onnx.spatial_multiple gives the\n"
    "multiple. The file is written to a temporary name and renamed: a failed export leaves\n"
    "nothing at OUT.onnx. The output may not be the model file.\n\n"
    "  --onnx          the format (the only one)\n"
    "  MODEL           model .safetensors with its dakd.config.* metadata\n"
    "  OUT             the ONNX file to write (its folder must exist)\n";

static int parse_flag(void *ctx, const char *k) {
    if (strcmp(k, "--onnx") != 0) return 0;
    *(int *)ctx = 1;
    return 1;
}

static int parse_value(void *ctx, const char *k, const char *v) {
    (void)ctx, (void)k, (void)v;
    return -2;
}

int dk_cmd_export(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (dk_cli_is_help(argv[i])) {
            fputs(export_help, stdout);
            return 0;
        }
    int onnx = 0;
    const char **in = calloc((size_t)argc + 1, sizeof *in);
    if (!in) return dk_cli_report(argv[0], dk_fail(DK_ERR_NOMEM, "no memory"));
    dk_cli_options opt = {&onnx, parse_flag, parse_value, in, 0};
    int rc = dk_cli_parse_options(argc, argv, &opt);
    if (rc == 0 && !onnx)
        rc = dk_cli_usage_error(argv[0], "name the format: --onnx (the only one)");
    else if (rc == 0 && opt.n_inputs != 2)
        rc = dk_cli_usage_error(argv[0], "takes MODEL.safetensors and OUT.onnx (%d paths given)",
                                opt.n_inputs);
    if (rc == 0) {
        dk_onnx_summary s;
        double t0 = dk_time_now();
        dk_status st = dk_export_onnx(in[1], &s, in[0]);
        double ms = 1e3 * (dk_time_now() - t0);
        if (st == DK_OK) {
            const char *axes = s.cfg.dims == 3 ? "D, H, W" : "H, W";
            printf("export: %s (ONNX opset %d) from %s in %.1f ms: %d nodes, %d weight tensors "
                   "(%lld parameters), %lld bytes\n", in[1], s.opset, in[0], ms, s.nodes,
                   s.initializers, (long long)s.parameters, (long long)s.bytes);
            printf("  input  'input'  float32 (N, %d, %s); %s multiples of %d\n",
                   s.cfg.in_channels, axes, axes, s.spatial_multiple);
            printf("  output 'logits' float32 (N, %d, %s), before softmax%s\n", s.cfg.classes,
                   axes, s.cfg.deep_supervision ? " (deep-supervision heads left out)" : "");
        }
        rc = dk_cli_report(argv[0], st);
    }
    free(in);
    return rc;
}
