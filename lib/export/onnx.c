/*
 * dk_export_onnx: a model file's U-Net as an ONNX graph (dakd/export.h lists what each
 * layer becomes), built in the order of dk_unet_forward (lib/nn/unet_forward.c) from the
 * names lib/nn/unet_build.c registers, with the model's metadata beside it.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

enum { OPSET = 13, MAX_LEVELS = 16 };
#define CONFIG_PREFIX "dakd.config."
#define DATA_PREFIX "dakd.data."
/* The norms' epsilon: PyTorch's default, the value dk_unet_plan gives every dk_norm_shape. */
static const float norm_eps = 1e-5f;

typedef struct {
    ox_graph *g;
    dk_unet *m;
    const dk_unet_config *c;
    int sp; /* spatial axes of the ONNX tensors: 2 (H, W) or 3 (D, H, W) */
} net;

/* The initialiser of the model tensor named prefix.suffix (a parameter or a buffer), under
 * that name, borrowing the model's floats. */
static const char *tensor(net *n, const char *prefix, const char *suffix) {
    char name[sizeof(((dk_param_info *)0)->name)];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const dk_params *set = dk_unet_params(n->m);
    const dk_param_info *e = dk_params_find(set, name);
    if (!e) {
        set = dk_unet_buffers(n->m);
        e = dk_params_find(set, name);
    }
    DK_ASSERT(e != NULL); /* the names are unet_build.c's own */
    return ox_initializer(n->g, e->name, e->ndim, e->shape, set->w + e->offset);
}

/* An ints attribute holding v (d, h, w) on the spatial axes the graph has (h, w in 2-D),
 * divided by div, `per` times (2 for pads' begins then ends). */
static Onnx__AttributeProto *spatial(net *n, const char *name, const int v[3], int div,
                                     int per) {
    int64_t ints[6];
    for (int i = 0; i < n->sp * per; i++) ints[i] = v[3 - n->sp + i % n->sp] / div;
    return ox_attr_ints(n->g, name, ints, n->sp * per);
}

static const int k_one[3] = {1, 1, 1};

/* Conv with kernel k (d, h, w; 1 or 3 each), stride 1, zero padding k/2; b may be NULL. */
static const char *conv(net *n, const char *out, const char *in, const char *w, const char *b,
                        const int k[3]) {
    const char *ins[3] = {in, w, b};
    Onnx__AttributeProto *at[2] = {spatial(n, "kernel_shape", k, 1, 1),
                                   spatial(n, "pads", k, 2, 2)};
    return ox_node(n->g, "Conv", out, ins, b ? 3 : 2, at, 2);
}

/* Level l's kernel (pool = 0) or the strides of its pool (pool = 1), (d, h, w). */
static void level_axes(const net *n, int l, int pool, int v[3]) {
    for (int a = 0; a < 3; a++)
        v[a] = pool ? dk_unet_pool_at(n->c, l, a) : dk_unet_kernel_at(n->c, l, a);
}

/* conv (level l's kernel) -> norm -> ReLU / leaky ReLU: unet_block of lib/nn/unet_internal.h. */
static const char *block(net *n, const char *prefix, int l, const char *in) {
    ox_graph *g = n->g;
    int none = n->c->norm == DK_NORM_NONE, k[3];
    level_axes(n, l, 0, k);
    const char *x = conv(n, ox_str(g, "%s.conv", prefix), in, tensor(n, prefix, "conv.weight"),
                         none ? tensor(n, prefix, "conv.bias") : NULL, k);
    if (!none) {
        const char *ins[5] = {x, tensor(n, prefix, "norm.weight"), tensor(n, prefix, "norm.bias"),
                              NULL, NULL};
        int batch = n->c->norm == DK_NORM_BATCH;
        if (batch) {
            ins[3] = tensor(n, prefix, "norm.running_mean");
            ins[4] = tensor(n, prefix, "norm.running_var");
        }
        Onnx__AttributeProto *eps = ox_attr_float(g, "epsilon", norm_eps);
        x = ox_node(g, batch ? "BatchNormalization" : "InstanceNormalization",
                    ox_str(g, "%s.norm", prefix), ins, batch ? 5 : 3, &eps, 1);
    }
    const char *act = ox_str(g, "%s.act", prefix);
    if (n->c->leaky_slope == 0.0f) return ox_node(g, "Relu", act, &x, 1, NULL, 0);
    Onnx__AttributeProto *alpha = ox_attr_float(g, "alpha", n->c->leaky_slope);
    return ox_node(g, "LeakyRelu", act, &x, 1, &alpha, 1);
}

static const char *maxpool(net *n, int l, const char *in) {
    int st[3];
    level_axes(n, l, 1, st);
    Onnx__AttributeProto *at[2] = {spatial(n, "kernel_shape", st, 1, 1),
                                   spatial(n, "strides", st, 1, 1)};
    return ox_node(n->g, "MaxPool", ox_str(n->g, "enc%d.pool", l), &in, 1, at, 2);
}

/* Level l's up path from the level below, by the strides of the pool after level l (2x2[x2],
 * or 1x2x2 ...): a transposed convolution of kernel = stride, or a 1x1 convolution on the
 * coarse grid then linear resizing, as dk_upsample2_forward (half_pixel is PyTorch's
 * align_corners = False; outputs past the edge clamp to it; a scale of 1 copies). */
static const char *up(net *n, int l, const char *below) {
    ox_graph *g = n->g;
    char pre[16];
    int st[3];
    level_axes(n, l, 1, st);
    snprintf(pre, sizeof pre, "up%d", l);
    if (n->c->up == DK_UP_TRANSPOSED) {
        const char *ins[3] = {below, tensor(n, pre, "weight"), tensor(n, pre, "bias")};
        Onnx__AttributeProto *at[2] = {spatial(n, "kernel_shape", st, 1, 1),
                                       spatial(n, "strides", st, 1, 1)};
        return ox_node(g, "ConvTranspose", pre, ins, 3, at, 2);
    }
    const char *low = conv(n, ox_str(g, "%s.conv", pre), below, tensor(n, pre, "conv.weight"),
                           tensor(n, pre, "conv.bias"), k_one);
    /* the initialiser borrows its floats: one static row per stride combination */
    static const float scales3[8][5] = {{1, 1, 1, 1, 1}, {1, 1, 1, 1, 2}, {1, 1, 1, 2, 1},
                                        {1, 1, 1, 2, 2}, {1, 1, 2, 1, 1}, {1, 1, 2, 1, 2},
                                        {1, 1, 2, 2, 1}, {1, 1, 2, 2, 2}};
    static const float scales2[4][4] = {{1, 1, 1, 1}, {1, 1, 1, 2}, {1, 1, 2, 1}, {1, 1, 2, 2}};
    int row = (st[0] - 1) * 4 + (st[1] - 1) * 2 + (st[2] - 1);
    const float *scales = n->sp == 3 ? scales3[row] : scales2[row & 3];
    int64_t len = 2 + n->sp;
    /* opset 13 takes the scales as an input (a constant per level), roi omitted ("") */
    const char *sc = ox_str(g, "%s.scales", pre);
    sc = sc ? ox_initializer(g, sc, 1, &len, scales) : NULL;
    const char *ins[3] = {low, "", sc};
    Onnx__AttributeProto *at[2] = {ox_attr_str(g, "mode", "linear"),
                                   ox_attr_str(g, "coordinate_transformation_mode", "half_pixel")};
    return ox_node(g, "Resize", ox_str(g, "%s.resize", pre), ins, 3, at, 2);
}

/* The network in forward order: encoder, bottleneck, decoder, the full-resolution head. */
static void unet_graph(net *n) {
    ox_graph *g = n->g;
    const int L = n->c->levels;
    const char *x = "input", *skip[MAX_LEVELS];
    DK_ASSERT(L >= 2 && L <= MAX_LEVELS);
    char pre[32];
    for (int l = 0; l < L - 1; l++) {
        snprintf(pre, sizeof pre, "enc%d.block1", l);
        x = block(n, pre, l, x);
        snprintf(pre, sizeof pre, "enc%d.block2", l);
        skip[l] = x = block(n, pre, l, x);
        x = maxpool(n, l, x);
    }
    x = block(n, "bottleneck.block1", L - 1, x);
    x = block(n, "bottleneck.block2", L - 1, x);
    for (int l = L - 2; l >= 0; l--) {
        const char *ins[2] = {skip[l], up(n, l, x)};
        Onnx__AttributeProto *axis = ox_attr_int(g, "axis", 1);
        x = ox_node(g, "Concat", ox_str(g, "dec%d.cat", l), ins, 2, &axis, 1);
        snprintf(pre, sizeof pre, "dec%d.block1", l);
        x = block(n, pre, l, x);
        snprintf(pre, sizeof pre, "dec%d.block2", l);
        x = block(n, pre, l, x);
    }
    conv(n, "logits", x, tensor(n, "head", "weight"), tensor(n, "head", "bias"), k_one);
}

/* The graph's input and output with symbolic batch and spatial sizes. */
static void graph_io(net *n, const char *multiple) {
    static const char *const in_par[5] = {"N", "", "D", "H", "W"};
    static const char *const in_par2[4] = {"N", "", "H", "W"};
    int64_t dims[5] = {0, n->c->in_channels, 0, 0, 0};
    int nd = 2 + n->sp;
    const char *const *par = n->sp == 3 ? in_par : in_par2;
    char doc[256];
    snprintf(doc, sizeof doc, "the image prepared as dakd.data.* says; spatial sizes "
             "multiples of %s", multiple);
    ox_value(n->g, 0, "input", doc, nd, dims, par);
    dims[1] = n->c->classes;
    ox_value(n->g, 1, "logits", "logits before softmax; labels = argmax over axis 1", nd, dims,
             par);
}

/* metadata_props: the version, the model file's dakd.config.* and dakd.data.* keys in the
 * file's order, and what the graph's tensors are. */
static void metadata(net *n, const cJSON *root, const char *multiple) {
    ox_graph *g = n->g;
    const char *axes = n->sp == 3 ? "D, H, W" : "H, W";
    ox_meta(g, "dakd.version", dk_version_string());
    for (const cJSON *it = root ? root->child : NULL; it; it = it->next)
        if (cJSON_IsString(it) && (strncmp(it->string, CONFIG_PREFIX, strlen(CONFIG_PREFIX)) == 0 ||
                                   strncmp(it->string, DATA_PREFIX, strlen(DATA_PREFIX)) == 0))
            ox_meta(g, it->string, it->valuestring);
    char v[256];
    snprintf(v, sizeof v, "input: float32 (N, %d, %s), the image prepared as the dakd.data.* "
             "keys say; %s multiples of dakd.onnx.spatial_multiple", n->c->in_channels, axes,
             axes);
    ox_meta(g, "dakd.onnx.input", v);
    snprintf(v, sizeof v, "logits: float32 (N, %d, %s) before softmax (labels = argmax over "
             "axis 1); the full-resolution head only", n->c->classes, axes);
    ox_meta(g, "dakd.onnx.output", v);
    ox_meta(g, "dakd.onnx.spatial_multiple", multiple);
}

/* Build and write the graph of the open model m (meta_json: its __metadata__). */
static dk_status export_model(const char *out_path, dk_onnx_summary *sum, dk_unet *m,
                              const char *meta_json, const char *model_path) {
    static const char *const norms[] = {"batch norm", "instance norm", "no norm"};
    ox_graph g;
    ox_init(&g);
    const dk_unet_config *c = dk_unet_get_config(m);
    net n = {&g, m, c, c->dims == 3 ? 3 : 2};
    /* isotropic: one number; anisotropic: one per spatial axis (D, H, W or H, W) */
    int64_t mult[3];
    dk_unet_multiple(c, mult);
    char multiple[64];
    if (dk_unet_is_isotropic(c))
        snprintf(multiple, sizeof multiple, "%lld", (long long)mult[2]);
    else if (n.sp == 3)
        snprintf(multiple, sizeof multiple, "%lld,%lld,%lld", (long long)mult[0],
                 (long long)mult[1], (long long)mult[2]);
    else
        snprintf(multiple, sizeof multiple, "%lld,%lld", (long long)mult[1], (long long)mult[2]);
    cJSON *root = cJSON_Parse(meta_json ? meta_json : "{}");
    if (!root) return dk_fail(DK_ERR_NOMEM, "%s: cannot parse __metadata__ again", model_path);
    graph_io(&n, multiple);
    unet_graph(&n);
    metadata(&n, root, multiple);
    cJSON_Delete(root);
    const char *base = strrchr(model_path, '/');
    char doc[512];
    snprintf(doc, sizeof doc, "dakd %d-D U-Net (%d levels, base width %d, %s, %s up-sampling, "
             "%d -> %d classes) from %s; output logits before softmax", c->dims, c->levels,
             c->base, norms[c->norm], c->up == DK_UP_TRANSPOSED ? "transposed" : "linear",
             c->in_channels, c->classes, base ? base + 1 : model_path);
    int64_t bytes = 0;
    dk_status st = ox_write(&g, out_path, OPSET, "dakd_unet", doc, &bytes);
    if (st == DK_OK && sum) {
        sum->cfg = *c;
        sum->opset = OPSET;
        sum->nodes = (int)g.nodes.n;
        sum->initializers = (int)g.inits.n;
        sum->parameters = g.init_floats;
        sum->bytes = bytes;
        for (int a = 0; a < 3; a++) sum->spatial_multiples[a] = (int)mult[a];
        sum->spatial_multiple = (int)(mult[1] > mult[2] ? mult[1] : mult[2]);
        if (mult[0] > sum->spatial_multiple) sum->spatial_multiple = (int)mult[0];
    }
    ox_free(&g);
    return st;
}

dk_status dk_export_onnx(const char *out_path, dk_onnx_summary *sum, const char *model_path) {
    DK_ASSERT(out_path && model_path);
    if (sum) memset(sum, 0, sizeof *sum);
    if (dk_same_file(out_path, model_path))
        return dk_fail(DK_ERR_ARG, "%s: the output is the model file %s itself; write the ONNX "
                       "model to another file", out_path, model_path);
    dk_unet *m = NULL;
    char *meta_json = NULL;
    dk_status st = dk_unet_open(&m, model_path, &meta_json);
    if (st == DK_OK) st = export_model(out_path, sum, m, meta_json, model_path);
    free(meta_json);
    dk_unet_free(m);
    return st;
}
