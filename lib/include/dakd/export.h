/*
 * dakd/export.h — a trained model's network written for other runtimes: ONNX.
 *
 * What it does: reads a model file written by dk_unet_save (dakd train, distill, adapt) with
 * dk_unet_open, the same reader `dakd predict` uses, and writes its inference network as
 * an ONNX model (protobuf through protobuf-c, over the onnx.proto schema of Debian's
 * libonnx-dev, compiled at build time), with the preprocessing the model was trained with
 * in the model's metadata_props.
 *
 * What it does not do: no preprocessing, sliding window or argmax inside the graph (those
 * stay with the deployment, told by the metadata), no training graph, no other format.
 *
 * The ONNX graph (opset 13, IR version 7), in the network's own order (dakd/nn.h, U-Net):
 *   input   "input"  float32 (N, C, D, H, W), or (N, C, H, W) for a 2-D model; N, D, H, W
 *           are symbolic (dynamic); D, H, W must be multiples of 2^(levels-1), recorded as
 *           dakd.onnx.spatial_multiple (an anisotropic network: of the product of its pool
 *           strides along each axis, recorded per axis "D,H,W" or "H,W", e.g. "4,16,16")
 *   block   Conv 3x3[x3] pad 1, or the level's kernel (1x3x3 pads 0,1,1), (with bias only
 *           without a norm) -> BatchNormalization
 *           (the running statistics, epsilon 1e-5; not folded into the Conv, so the
 *           checkpoint's tensors appear unchanged: runtimes fold it themselves) or
 *           InstanceNormalization (epsilon 1e-5) or nothing -> LeakyRelu (alpha = the
 *           model's leaky slope) or Relu (slope 0)
 *   down    MaxPool 2x2[x2] stride 2, or the level's strides (kernel = strides, 1x2x2 ...)
 *   up      ConvTranspose 2x2[x2] stride 2, or kernel = strides = the pool's (up =
 *           transposed), or Conv 1x1 then Resize x2 (x the pool's strides per axis)
 *           (mode linear, coordinate_transformation_mode half_pixel: PyTorch's
 *           align_corners = False, as dk_upsample2_forward) (up = interp)
 *   skip    Concat(skip, up) on axis 1
 *   output  "logits" float32 (N, classes, D, H, W): the full-resolution head's logits,
 *           BEFORE softmax (argmax over axis 1 gives the labels). Deep-supervision heads
 *           and dropout (identity at inference) are left out.
 * Initialisers carry the checkpoint's own tensor names ("enc0.block1.conv.weight", ...).
 *
 * metadata_props (key/value strings): dakd.version; every dakd.config.* key of the model
 * file (the network) and every dakd.data.* key (the preprocessing: channels,
 * normalisation and its parameters, spacing or mask extent, patch, classes); and
 * dakd.onnx.input, dakd.onnx.output, dakd.onnx.spatial_multiple describing the tensors.
 *
 * Failures: DK_ERR_IO (model unreadable, output not writable: the temporary file is
 * removed, nothing is left at the output path), DK_ERR_FORMAT (not a dakd model file),
 * DK_ERR_ARG (the output is the model file: nothing is read or written),
 * DK_ERR_UNSUPPORTED (a network past protobuf's 2 GiB limit), DK_ERR_NOMEM.
 */
#ifndef DAKD_EXPORT_H
#define DAKD_EXPORT_H

#include "dakd/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an export wrote, for the caller to report. */
typedef struct {
    dk_unet_config cfg;  /* the exported network */
    int opset;           /* ONNX default-domain opset (13) */
    int nodes;           /* graph nodes */
    int initializers;    /* weight tensors */
    int64_t parameters;  /* floats in the initialisers */
    int64_t bytes;       /* size of the file written */
    int spatial_multiple; /* 2^(levels-1): D (3-D), H and W must be multiples of it; an
                           * anisotropic network: the largest of spatial_multiples (all are
                           * powers of 2, so a multiple of it fits every axis) */
    int spatial_multiples[3]; /* (d, h, w): dk_unet_multiple, per axis (d = 1 in 2-D) */
} dk_onnx_summary;

/* Export the model file at `model_path` (safetensors with dakd.config.* metadata) as ONNX
 * to `out_path`, written atomically (dk_tmp_path_for + dk_commit_file). `sum` may be NULL;
 * on failure it is zeroed. An output that is the model file itself (dk_same_file) is
 * refused naming both before anything is read. */
dk_status dk_export_onnx(const char *out_path, dk_onnx_summary *sum, const char *model_path);

#ifdef __cplusplus
}
#endif
#endif
