/* dakd predict — sliding-window prediction of label maps with a trained model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dakd/eval.h"

static const char *predict_help =
    "usage: dakd predict --model M.safetensors (--cases CSV [--where column=value]... | IMAGE...)\n"
    "                    --out DIR [--patch X,Y,Z | X,Y] [--overlap F] [--no-gaussian] [--tta]\n"
    "                    [--largest-cc] [--batch N] [--probs]\n"
    "                    [--dicom-seg] [--label-names FILE]\n\n"
    "Predict a label map for each image with a model exported by 'dakd train' or 'dakd\n"
    "distill'. Images are preprocessed as in training (the model's dakd.data.* metadata:\n"
    "channels, normalisation inside the case's mask when the CSV has one, resampling to the\n"
    "training spacing), then segmented by a sliding window with Gaussian blending of the\n"
    "softmax probabilities; probabilities are resampled back to the input grid (linear)\n"
    "before the argmax. Writes DIR/<case>.nii.gz (DIR/<case>.png for a 2-D PNG input):\n"
    "uint8 labels on the input's exact grid, geometry and NIfTI header. The case id is the\n"
    "CSV's 'case' column; for an image path, the file name without its extension and then\n"
    "without a trailing \"_0000\"-style channel suffix (underscore, 4 digits) or \"_image\":\n"
    "case_0000.nii.gz and case_image.nii.gz give DIR/case.nii.gz, which 'dakd eval' pairs\n"
    "with case.nii.gz or case_label.nii.gz. Paths case_0000, case_0001, ... are the channels\n"
    "of one case (stacked in that order, as nnU-Net reads them); any other two inputs with\n"
    "one id are refused up front, naming both. A 4-D image's volumes are its channels.\n\n"
    "  --model M       model .safetensors (its dakd.config.* and dakd.data.* metadata)\n"
    "  --cases CSV     case list (case, image, image_1.. for more channels, mask, ...)\n"
    "  --where c=v     only rows whose column c equals v; repeat to combine (all must hold,\n"
    "                  e.g. --where site=a --where split=test)\n"
    "  IMAGE...        image files (any format dakd reads; both forms may be combined)\n"
    "  --out DIR       output folder (made if missing); an output that would replace an\n"
    "                  input (the model, the CSV, an image or mask) is refused up front\n"
    "  --patch X,Y,Z   window size in voxels, X fastest as 'dakd info' prints dims (X,Y for\n"
    "                  2-D); default: the training patch\n"
    "  --overlap F     fraction of the window shared by neighbours, [0, 1) (default 0.5)\n"
    "  --no-gaussian   equal weights instead of the Gaussian importance map (sigma = patch/8)\n"
    "  --tta           average over all flips of the spatial axes (2-D: 4, 3-D: 8 passes)\n"
    "  --largest-cc    keep the largest face-connected component of each label\n"
    "  --batch N       windows per forward pass (default 4)\n"
    "  --probs         also write DIR/<case>_probs.nii.gz (float32, one component per class)\n"
    "  --dicom-seg     also write DIR/<case>.seg.dcm: the labels as a DICOM SEG (binary, one\n"
    "                  segment per class 1..K-1, empty ones kept without frames) referencing\n"
    "                  the input series, for a PACS or viewer; every input must be DICOM\n"
    "  --label-names FILE  segment names and colours, a 3D Slicer colour table: lines\n"
    "                  \"value name R G B A\", # comments (default \"label N\", fixed colours)\n";

typedef struct {
    dk_predict_opts o;
    const char **inputs; /* NULL-terminated */
    const char **where;  /* NULL-terminated --where values */
    int n_inputs, n_where;
} predict_args;

/* X,Y[,Z] (the command line's axis order) into the window's (d, h, w) = (Z, Y, X). */
static int parse_patch(const char *v, int64_t patch[3]) {
    long long p[3];
    int n = dk_cli_parse_ints(v, p, 3);
    if (n < 2) return -1;
    for (int a = 0; a < n; a++)
        if (p[a] < 1) return -1;
    patch[0] = n == 3 ? p[2] : 1;
    patch[1] = p[1];
    patch[2] = p[0];
    return 0;
}

static int parse_value(void *ctx, const char *k, const char *v) {
    predict_args *a = ctx;
    dk_predict_opts *o = &a->o;
    char *end;
    if (strcmp(k, "--model") == 0)
        o->model = v;
    else if (strcmp(k, "--cases") == 0)
        o->cases_csv = v;
    else if (strcmp(k, "--out") == 0)
        o->out_dir = v;
    else if (strcmp(k, "--label-names") == 0)
        o->label_names = v;
    else if (strcmp(k, "--where") == 0) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) return -1;
        a->where[a->n_where++] = v;
    } else if (strcmp(k, "--patch") == 0)
        return parse_patch(v, o->infer.patch);
    else if (strcmp(k, "--overlap") == 0) {
        o->infer.overlap = strtod(v, &end);
        return end != v && !*end && o->infer.overlap >= 0 && o->infer.overlap < 1 ? 0 : -1;
    } else if (strcmp(k, "--batch") == 0) {
        long long b;
        if (dk_cli_parse_ints(v, &b, 1) != 1 || b < 1 || b > 4096) return -1;
        o->infer.batch = (int)b;
    } else
        return -2;
    return 0;
}

static int parse_flag(void *ctx, const char *k) {
    predict_args *a = ctx;
    if (strcmp(k, "--no-gaussian") == 0)
        a->o.infer.gaussian = 0;
    else if (strcmp(k, "--tta") == 0)
        a->o.infer.tta_flips = 1;
    else if (strcmp(k, "--largest-cc") == 0)
        a->o.infer.largest_cc = 1;
    else if (strcmp(k, "--probs") == 0)
        a->o.write_probs = 1;
    else if (strcmp(k, "--dicom-seg") == 0)
        a->o.dicom_seg = 1;
    else
        return 0;
    return 1;
}

static int parse(int argc, char **argv, predict_args *a) {
    const char *cmd = argv[0];
    dk_cli_options opt = {a, parse_flag, parse_value, a->inputs, 0};
    int rc = dk_cli_parse_options(argc, argv, &opt);
    a->n_inputs = opt.n_inputs;
    if (rc || (rc = dk_cli_check_model_inputs(cmd, a->o.model, a->o.out_dir, "DIR", a->o.cases_csv,
                                              a->n_inputs, a->n_where)))
        return rc;
    a->o.inputs = a->n_inputs ? a->inputs : NULL;
    a->o.where = a->n_where ? a->where : NULL;
    return 0;
}

int dk_cmd_predict(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (dk_cli_is_help(argv[i])) {
            fputs(predict_help, stdout);
            return 0;
        }
    predict_args a;
    memset(&a, 0, sizeof a);
    dk_infer_defaults(&a.o.infer);
    a.inputs = calloc((size_t)argc + 1, sizeof *a.inputs);
    a.where = calloc((size_t)argc + 1, sizeof *a.where);
    double ms = 0;
    a.o.ms_per_image = &ms;
    int rc = !a.inputs || !a.where ? dk_cli_report(argv[0], dk_fail(DK_ERR_NOMEM, "no memory"))
                                   : parse(argc, argv, &a);
    if (rc == 0) {
        dk_status st = dk_predict_run(&a.o);
        if (st == DK_OK)
            printf("predict: labels in %s; median %.1f ms per image (inference)\n", a.o.out_dir,
                   ms);
        rc = dk_cli_report(argv[0], st);
    }
    free(a.inputs);
    free(a.where);
    return rc;
}
