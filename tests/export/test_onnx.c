/* ONNX export: models of every kind the U-Net builder makes (2-D and 3-D; batch, instance and
 * no norm; transposed and interpolating up-sampling; deep supervision; ReLU and leaky ReLU;
 * anisotropic pool strides and kernels)
 * are saved, exported and run in ONNX Runtime (onnxruntime-node, tests/tools/onnx/run_onnx.js)
 * on random inputs of two sizes each, against dakd's own forward of the same file: max abs
 * difference of the logits <= 1e-4. The onnx package's checker (full_check) accepts each
 * file, whose ops, tensors and metadata are what dakd/export.h promises. Then `dakd export`
 * on bad inputs: clear errors, non-zero exits, nothing written. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/export.h"
#include "test_util.h"

typedef struct {
    const char *label;
    dk_unet_config cfg;
    int64_t n, size[2][3]; /* batch; two input sizes (d, h, w), d = 1 in 2-D */
} export_case;

#define ISO {{0}}, {{0}} /* pool, kernel: the isotropic network */
static const export_case cases[] = {
    {"2d_batch_transposed", {2, 1, 3, 4, 3, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0.01f, 0.0f, ISO},
     2, {{1, 16, 24}, {1, 36, 8}}},
    {"2d_instance_interp_ds", {2, 2, 4, 4, 4, DK_NORM_INSTANCE, DK_UP_INTERP, 1, 0.0f, 0.0f, ISO},
     1, {{1, 24, 16}, {1, 8, 40}}},
    {"2d_none_transposed", {2, 1, 2, 3, 2, DK_NORM_NONE, DK_UP_TRANSPOSED, 0, 0.2f, 0.3f, ISO}, 2,
     {{1, 10, 6}, {1, 4, 14}}},
    {"3d_batch_interp", {3, 1, 2, 3, 3, DK_NORM_BATCH, DK_UP_INTERP, 0, 0.01f, 0.0f, ISO}, 2,
     {{8, 12, 16}, {4, 8, 4}}},
    {"3d_instance_transposed",
     {3, 2, 3, 4, 3, DK_NORM_INSTANCE, DK_UP_TRANSPOSED, 1, 0.01f, 0.0f, ISO}, 1,
     {{8, 8, 12}, {12, 4, 8}}},
    /* anisotropic: thick slices pooled in-plane first with 1x3x3 kernels (multiples 2, 4, 4),
     * and a mix with a 2x2x1 pool and a 3x1x3 kernel (multiples 2, 4, 2) */
    {"3d_aniso_batch_transposed",
     {3, 1, 3, 3, 3, DK_NORM_BATCH, DK_UP_TRANSPOSED, 0, 0.01f, 0.0f, {{1, 2, 2}, {2, 2, 2}},
      {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}}},
     2, {{4, 12, 16}, {6, 8, 4}}},
    {"3d_aniso_instance_interp_ds",
     {3, 1, 2, 3, 3, DK_NORM_INSTANCE, DK_UP_INTERP, 1, 0.0f, 0.0f, {{1, 2, 2}, {2, 2, 1}},
      {{1, 3, 3}, {3, 1, 3}, {3, 3, 3}}},
     1, {{4, 8, 12}, {2, 16, 6}}},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

static const char *dir;
static char out[1 << 16];

static const char *case_path(int i, const char *ext) {
    static char p[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s.%s", dir, cases[i].label, ext);
    return p[k];
}

/* Every weight and batch-norm statistic random (not the builder's 1/0 norms), so a swapped
 * input of a node shows in the numbers. */
static void randomise(dk_unet *m, dk_rng *r) {
    dk_params *p = dk_unet_params(m), *b = dk_unet_buffers(m);
    for (int k = 0; k < p->count; k++) {
        const dk_param_info *e = &p->info[k];
        int gamma = strstr(e->name, ".norm.weight") != NULL, bias = strstr(e->name, "bias") != NULL;
        for (int64_t i = 0; gamma || bias ? i < e->numel : 0; i++)
            p->w[e->offset + i] = gamma ? 0.5f + dk_rng_uniform(r) : 0.2f * (float)dk_rng_normal(r);
    }
    for (int k = 0; k < b->count; k++) {
        const dk_param_info *e = &b->info[k];
        int var = strstr(e->name, "running_var") != NULL;
        for (int64_t i = 0; i < e->numel; i++)
            b->w[e->offset + i] = var ? 0.3f + 2.0f * dk_rng_uniform(r)
                                      : 0.5f * (float)dk_rng_normal(r);
    }
}

/* Save case i's random model with preprocessing metadata, as training would. */
static int setup(void) {
    dir = dk_test_path(dk_test_tmpdir(), "export");
    if (dk_test_sh(NULL, 0, "mkdir -p %s", dir) != 0) return 1;
    static const char *const meta[] = {"dakd.data.norm", "zscore", "dakd.data.patch", "1,16,24",
                                       "dakd.data.spacing", "0.5,0.5,1", "dakd.epoch", "3", NULL};
    for (int i = 0; i < NCASES; i++) {
        dk_rng r;
        dk_rng_seed(&r, 100 + (uint64_t)i);
        dk_unet *m = NULL;
        if (dk_unet_create(&m, &cases[i].cfg, 0, &r) != DK_OK) return 1;
        randomise(m, &r);
        dk_status st = dk_unet_save(m, case_path(i, "safetensors"), meta);
        dk_unet_free(m);
        if (st != DK_OK) return 1;
    }
    return 0;
}

static void test_export_summary(void) {
    for (int i = 0; i < NCASES; i++) {
        dk_onnx_summary s;
        dk_status st = dk_export_onnx(case_path(i, "onnx"), &s, case_path(i, "safetensors"));
        CU_ASSERT_EQUAL_FATAL(st, DK_OK);
        CU_ASSERT_EQUAL(s.opset, 13);
        int64_t mult[3];
        dk_unet_multiple(&cases[i].cfg, mult);
        int top = (int)(mult[0] > mult[1] ? mult[0] : mult[1]);
        CU_ASSERT_EQUAL(s.spatial_multiple, top > mult[2] ? top : (int)mult[2]);
        for (int a = 0; a < 3; a++) CU_ASSERT_EQUAL(s.spatial_multiples[a], mult[a]);
        if (dk_unet_is_isotropic(&cases[i].cfg))
            CU_ASSERT_EQUAL(s.spatial_multiple, 1 << (cases[i].cfg.levels - 1));
        CU_ASSERT_EQUAL(s.cfg.norm, cases[i].cfg.norm);
        CU_ASSERT(s.bytes > 4 * s.parameters);
        printf("\n  %s: %d nodes, %d tensors, %lld parameters, %lld bytes", cases[i].label,
               s.nodes, s.initializers, (long long)s.parameters, (long long)s.bytes);
    }
}

static int write_floats(const char *path, const float *x, int64_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof *x, (size_t)n, f) == (size_t)n;
    return (f && fclose(f) == 0 && ok) ? 0 : -1;
}

static int read_floats(const char *path, float *x, int64_t n) {
    FILE *f = fopen(path, "rb");
    int ok = f && fread(x, sizeof *x, (size_t)n, f) == (size_t)n && fgetc(f) == EOF;
    if (f) fclose(f);
    return ok ? 0 : -1;
}

static int runtime_missing(void) {
    return dk_test_sh(NULL, 0, "cd %s/tests/tools/onnx && node -e \"require('onnxruntime-node')\"",
                      dk_test_source_dir()) != 0;
}

/* dakd's forward and ONNX Runtime's on one random input of case i at size j: the max abs
 * difference of the logits, or INFINITY when the runtime failed or gave other dims. */
static double compare(int i, int j, dk_unet *m) {
    const export_case *c = &cases[i];
    const int64_t *sz = c->size[j];
    int64_t nin = c->n * c->cfg.in_channels * sz[0] * sz[1] * sz[2];
    int64_t nout = c->n * c->cfg.classes * sz[0] * sz[1] * sz[2];
    float *x = malloc((size_t)nin * sizeof *x), *y = malloc((size_t)nout * sizeof *y);
    double worst = INFINITY;
    dk_rng r;
    dk_rng_seed(&r, 7 + (uint64_t)(10 * i + j));
    CU_ASSERT_FATAL(x && y);
    for (int64_t k = 0; k < nin; k++) x[k] = (float)dk_rng_normal(&r);
    CU_ASSERT_EQUAL_FATAL(dk_unet_plan(m, c->n, sz[0], sz[1], sz[2]), DK_OK);
    dk_unet_forward(m, x, 0, NULL);
    const float *ref = dk_unet_tap(m, "logits")->value.data;
    char dims[128], want[160];
    if (c->cfg.dims == 3)
        snprintf(dims, sizeof dims, "%lld,%d,%lld,%lld,%lld", (long long)c->n,
                 c->cfg.in_channels, (long long)sz[0], (long long)sz[1], (long long)sz[2]);
    else
        snprintf(dims, sizeof dims, "%lld,%d,%lld,%lld", (long long)c->n, c->cfg.in_channels,
                 (long long)sz[1], (long long)sz[2]);
    snprintf(want, sizeof want, "logits dims %lld,%d,%s", (long long)c->n, c->cfg.classes,
             strchr(strchr(dims, ',') + 1, ',') + 1);
    const char *xin = case_path(i, "in.f32"), *yout = case_path(i, "out.f32");
    CU_ASSERT_EQUAL_FATAL(write_floats(xin, x, nin), 0);
    remove(yout);
    int rc = dk_test_sh(out, sizeof out, "node %s/tests/tools/onnx/run_onnx.js %s %s %s %s",
                        dk_test_source_dir(), case_path(i, "onnx"), xin, dims, yout);
    if (rc != 0 || !strstr(out, want) || read_floats(yout, y, nout) != 0) {
        printf("\n  %s %s: run_onnx.js exit %d, wanted '%s':\n%s", c->label, dims, rc, want, out);
    } else {
        worst = 0;
        for (int64_t k = 0; k < nout; k++) { /* a NaN from either side is the worst */
            double e = fabs((double)y[k] - ref[k]);
            if (!(e <= worst)) worst = e;
        }
    }
    free(x);
    free(y);
    return worst;
}

static void test_onnx_runtime(void) {
    if (runtime_missing()) {
        dk_test_skip("ONNX Runtime comparison", "node or onnxruntime-node is missing "
                     "(scripts/bootstrap.sh --test installs it into tests/tools/onnx)");
        return;
    }
    for (int i = 0; i < NCASES; i++) {
        dk_unet *m = NULL;
        CU_ASSERT_EQUAL_FATAL(dk_unet_open(&m, case_path(i, "safetensors"), NULL), DK_OK);
        for (int j = 0; j < 2; j++) {
            double d = compare(i, j, m);
            printf("\n  %s at %lldx%lldx%lld: max |logits dakd - ONNX Runtime| = %.3g",
                   cases[i].label, (long long)cases[i].size[j][0], (long long)cases[i].size[j][1],
                   (long long)cases[i].size[j][2], d);
            CU_ASSERT(d <= 1e-4);
        }
        dk_unet_free(m);
    }
}

/* The onnx checker's verdict and the lines of tests/tools/onnx_inspect.py for case i. */
static int inspect(int i) {
    return dk_test_sh(out, sizeof out, "/usr/bin/python3 %s/tests/tools/onnx_inspect.py %s",
                      dk_test_source_dir(), case_path(i, "onnx"));
}

static void test_onnx_checker(void) {
    if (dk_test_sh(NULL, 0, "/usr/bin/python3 -c 'import onnx'") != 0) {
        dk_test_skip("ONNX checker", "python3-onnx is not importable by /usr/bin/python3");
        return;
    }
    for (int i = 0; i < NCASES; i++) {
        const dk_unet_config *c = &cases[i].cfg;
        CU_ASSERT_EQUAL(inspect(i), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "checker ok"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "opset ai.onnx 13"));
        char want[96];
        const char *axes = c->dims == 3 ? "D,H,W" : "H,W";
        snprintf(want, sizeof want, "input input N,%d,%s\n", c->in_channels, axes);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
        snprintf(want, sizeof want, "output logits N,%d,%s\n", c->classes, axes);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
        CU_ASSERT_PTR_NULL(strstr(out, "Softmax"));
        CU_ASSERT_PTR_NULL(strstr(out, "Dropout"));
        const char *norm = c->norm == DK_NORM_BATCH ? "BatchNormalization"
                         : c->norm == DK_NORM_INSTANCE ? "InstanceNormalization" : NULL;
        if (norm) CU_ASSERT_PTR_NOT_NULL(strstr(out, norm));
        if (!norm) CU_ASSERT_PTR_NULL(strstr(out, "Normalization"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, c->up == DK_UP_TRANSPOSED ? "ConvTranspose" : "Resize"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, c->leaky_slope > 0 ? "LeakyRelu" : " Relu"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "MaxPool"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "meta dakd.version=dakd "));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "meta dakd.config.levels="));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "meta dakd.data.norm=zscore\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "meta dakd.data.spacing=0.5,0.5,1\n"));
        int64_t m[3];
        dk_unet_multiple(c, m);
        if (dk_unet_is_isotropic(c))
            snprintf(want, sizeof want, "meta dakd.onnx.spatial_multiple=%d\n",
                     1 << (c->levels - 1));
        else
            snprintf(want, sizeof want, "meta dakd.onnx.spatial_multiple=%lld,%lld,%lld\n",
                     (long long)m[0], (long long)m[1], (long long)m[2]);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
        /* the anisotropic graph carries the level's kernels and strides and its pool keys */
        if (!dk_unet_is_isotropic(c))
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "meta dakd.config.pool=1,2,2;"));
        CU_ASSERT_PTR_NULL(strstr(out, "dakd.epoch")); /* only the network and preprocessing */
    }
}

/* The README's node and onnx lines (after its onnx-snippet marker) on a 2-D student. */
static void test_readme_snippet(void) {
    if (runtime_missing() || dk_test_sh(NULL, 0, "/usr/bin/python3 -c 'import onnx'") != 0) {
        dk_test_skip("README snippet", "onnxruntime-node or python3-onnx is missing");
        return;
    }
    const char *d = dk_test_path(dir, "readme");
    int rc = dk_test_sh(out, sizeof out,
                        "mkdir -p %s && cp %s %s/student.onnx && cd %s && "
                        "sed -n '/onnx-snippet/,/^```$/p' %s/README.md > snippet.sh && "
                        "grep -c . snippet.sh && export NODE_PATH=%s/tests/tools/onnx/node_modules"
                        " && eval \"$(grep '^node -e' snippet.sh)\" && "
                        "eval \"$(grep '^python3 -c \\\"import onnx;' snippet.sh | "
                        "sed 's,^python3,/usr/bin/python3,')\"",
                        d, case_path(0, "onnx"), d, d, dk_test_source_dir(), dk_test_source_dir());
    printf("\n    %s", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[ 1, 3, 64, 64 ]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'dakd.data.norm': 'zscore'"));
}

/* ---------------------------------------------------------------- the command, bad inputs */

static int dakd(const char *fmt, const char *a, const char *b) {
    char args[8192];
    snprintf(args, sizeof args, fmt, a, b);
    return dk_test_sh(out, sizeof out, "%s %s", dk_test_cli(), args);
}

/* Files in dir whose names contain ".tmp": leftovers of a failed atomic write. */
static int leftover_temps(const char *d) {
    DIR *dp = opendir(d);
    int n = 0;
    for (struct dirent *e; dp && (e = readdir(dp));) n += strstr(e->d_name, ".tmp") != NULL;
    if (dp) closedir(dp);
    return n;
}

static void test_cli(void) {
    const char *model = case_path(0, "safetensors"), *onnx = dk_test_path(dir, "cli.onnx");
    CU_ASSERT_EQUAL(dakd("export --help%s%s", "", ""), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: dakd export --onnx"));
    CU_ASSERT_EQUAL(dakd("--help%s%s", "", ""), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "export"));
    CU_ASSERT_EQUAL(dakd("export --onnx %s %s", model, onnx), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(ONNX opset 13)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "H, W multiples of 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "before softmax"));
    CU_ASSERT(dk_test_exists(onnx));
    /* usage: no format, a missing or extra path */
    CU_ASSERT_EQUAL(dakd("export %s %s", model, onnx), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--onnx"));
    CU_ASSERT_EQUAL(dakd("export --onnx %s%s", model, ""), 1);
    CU_ASSERT_EQUAL(dakd("export --onnx --bogus %s %s", model, onnx), 1);
}

/* dakd with fmt(a, b) exits `rc` and leaves `path` with the bytes it had. */
static void refused_keeps(const char *path, int rc, const char *fmt, const char *a,
                          const char *b) {
    char before[256], after[256]; /* the sums go there: `out` keeps the command's output */
    dk_test_sh(before, sizeof before, "sha256sum < %s", path);
    CU_ASSERT_EQUAL(dakd(fmt, a, b), rc);
    dk_test_sh(after, sizeof after, "sha256sum < %s", path);
    CU_ASSERT_STRING_EQUAL(before, after);
}

static void test_cli_bad_inputs(void) {
    const char *model = case_path(0, "safetensors");
    const char *fresh = dk_test_path(dir, "never.onnx"), *kept = dk_test_path(dir, "kept.onnx");
    /* a missing model: I/O error naming it, nothing written */
    CU_ASSERT_EQUAL(dakd("export --onnx %s %s", dk_test_path(dir, "missing.safetensors"), fresh),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "missing.safetensors"));
    CU_ASSERT(!dk_test_exists(fresh));
    /* not a model: a text file, and an ONNX file (format errors naming the file) */
    const char *text = dk_test_path(dir, "notes.txt");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "echo 'no model here' > %s", text), 0);
    CU_ASSERT_EQUAL(dakd("export --onnx %s %s", text, fresh), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "notes.txt"));
    CU_ASSERT_EQUAL(dakd("export --onnx %s %s", case_path(0, "onnx"), fresh), 3);
    CU_ASSERT(!dk_test_exists(fresh));
    /* an earlier export at OUT stays whole when the next one fails */
    CU_ASSERT_EQUAL_FATAL(dakd("export --onnx %s %s", model, kept), 0);
    refused_keeps(kept, 3, "export --onnx %s %s", text, kept);
    /* the output is the model (the same path, or another name of it): refused naming both,
     * the model untouched */
    refused_keeps(model, 1, "export --onnx %s %s", model, model);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is the model file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2d_batch_transposed.safetensors"));
    char other[4096];
    snprintf(other, sizeof other, "%s/./../export/%s.safetensors", dir, cases[0].label);
    refused_keeps(model, 1, "export --onnx %s %s", model, other);
    /* an unwritable folder (a path under a regular file; root ignores permission bits) and
     * a missing one: I/O errors naming the output, no temporary file left */
    snprintf(other, sizeof other, "%s/sub/x.onnx", text);
    CU_ASSERT_EQUAL(dakd("export --onnx %s %s", model, other), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "x.onnx"));
    snprintf(other, sizeof other, "%s/no_such_folder/y.onnx", dir);
    CU_ASSERT_EQUAL(dakd("export --onnx %s %s", model, other), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "y.onnx"));
    CU_ASSERT_EQUAL(leftover_temps(dir), 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("export", setup, NULL);
    CU_add_test(s, "export writes every kind of U-Net", test_export_summary);
    CU_add_test(s, "ONNX Runtime gives dakd's logits (<= 1e-4)", test_onnx_runtime);
    CU_add_test(s, "onnx checker, ops and metadata", test_onnx_checker);
    CU_add_test(s, "the README's node and onnx lines", test_readme_snippet);
    CU_add_test(s, "dakd export: help, output, usage errors", test_cli);
    CU_add_test(s, "dakd export: bad inputs write nothing", test_cli_bad_inputs);
    return dk_test_run();
}
