/*
 * U-Net checkpoints over safetensors: the parameters then the buffers under their
 * registered names and PyTorch shapes (2-D weights are 4-D), and the config in
 * __metadata__ as "dakd.config.<field>" strings beside the caller's keys.
 *
 * Loading reads into a scratch copy first, so a failed load (missing tensor, different
 * shape, truncated file, different config) leaves the model untouched. Config keys absent
 * from the file are not checked (a checkpoint written by another tool carries none; the
 * names and shapes have matched already); a key that is present must match.
 *
 * An anisotropic network (dk_unet_is_isotropic = 0) also writes dakd.config.pool and
 * dakd.config.kernel, its effective per-level strides and kernels as dk_unet_axes_format
 * spells them ("1,2,2;1,2,2;2,2,2"); an isotropic one writes neither, so its file is the file
 * dakd always wrote, and a file without them is an isotropic network. A file that carries
 * dakd.config.levels (a dakd model file) is checked for them even where they are absent.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet_internal.h"

enum { CFG_KEYS = 10, CFG_VAL = 32, AXES_VAL = 8 * DK_UNET_MAX_LEVELS };
static const char *const axes_keys[2] = {"pool", "kernel"};
#define CFG_PREFIX "dakd.config."

typedef struct {
    const char *key[CFG_KEYS];
    char val[CFG_KEYS][CFG_VAL];
    int is_float[CFG_KEYS];
} cfg_meta;

static void put(cfg_meta *c, int *k, const char *key, int is_float, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void put(cfg_meta *c, int *k, const char *key, int is_float, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    c->key[*k] = key;
    c->is_float[*k] = is_float;
    vsnprintf(c->val[*k], CFG_VAL, fmt, ap);
    va_end(ap);
    (*k)++;
}

static void config_meta(cfg_meta *c, const dk_unet_config *g) {
    static const char *norms[] = {"batch", "instance", "none"};
    static const char *ups[] = {"transposed", "interp"};
    int k = 0;
    put(c, &k, CFG_PREFIX "dims", 0, "%d", g->dims);
    put(c, &k, CFG_PREFIX "in_channels", 0, "%d", g->in_channels);
    put(c, &k, CFG_PREFIX "classes", 0, "%d", g->classes);
    put(c, &k, CFG_PREFIX "base", 0, "%d", g->base);
    put(c, &k, CFG_PREFIX "levels", 0, "%d", g->levels);
    put(c, &k, CFG_PREFIX "norm", 0, "%s", norms[g->norm]);
    put(c, &k, CFG_PREFIX "up", 0, "%s", ups[g->up]);
    put(c, &k, CFG_PREFIX "deep_supervision", 0, "%d", g->deep_supervision);
    put(c, &k, CFG_PREFIX "leaky_slope", 1, "%.9g", (double)g->leaky_slope);
    put(c, &k, CFG_PREFIX "dropout", 1, "%.9g", (double)g->dropout);
    DK_ASSERT(k == CFG_KEYS);
}

/* The effective strides (kernel = 0) or kernels (1) of g, as the file spells them. */
static void axes_text(char *buf, size_t size, const dk_unet_config *g, int kernel) {
    int v[DK_UNET_MAX_LEVELS][3], n = kernel ? g->levels : g->levels - 1;
    for (int l = 0; l < n; l++)
        for (int a = 0; a < 3; a++)
            v[l][a] = kernel ? dk_unet_kernel_at(g, l, a) : dk_unet_pool_at(g, l, a);
    dk_unet_axes_format(buf, size, &v[0][0], n);
}

/* g's pool (kernel = 0) or kernel (1) from the file's dakd.config.<key> (absent: zeroed, the
 * isotropic network). DK_ERR_FORMAT naming the key for text that is not one triple per pool
 * (per level). */
static dk_status axes_from_meta(dk_unet_config *g, const cJSON *root, const char *path,
                                int kernel) {
    int(*v)[3] = kernel ? g->kernel : g->pool;
    int n = 0, want = kernel ? g->levels : g->levels - 1;
    memset(v, 0, sizeof g->pool);
    char key[64];
    snprintf(key, sizeof key, CFG_PREFIX "%s", axes_keys[kernel]);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) return DK_OK;
    const char *text = cJSON_IsString(it) ? it->valuestring : NULL;
    if (!text || dk_unet_axes_parse(v, &n, text) != DK_OK || n != want) {
        memset(v, 0, sizeof g->pool);
        return dk_fail(DK_ERR_FORMAT, "%s: %s = '%s' is not %d triples d,h,w (one per %s)",
                       path, key, text ? text : "(not a string)", want,
                       kernel ? "level" : "pool");
    }
    return DK_OK;
}

/* Tensor references for every parameter then every buffer; data from w_base / b_base
 * (the model's own buffers when saving, a scratch copy when loading; NULL: names and shapes
 * only, for dk_safetensors_read to check). */
static dk_tensor_ref *make_refs(const dk_unet *m, float *w_base, float *b_base, int *count) {
    const dk_params *sets[2] = {&m->params, &m->buffers};
    float *bases[2] = {w_base, b_base};
    int n = m->params.count + m->buffers.count, k = 0;
    dk_tensor_ref *r = calloc((size_t)(n > 0 ? n : 1), sizeof *r);
    if (!r) return NULL;
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->count; i++, k++) {
            const dk_param_info *e = &sets[s]->info[i];
            r[k].name = e->name;
            r[k].ndim = e->ndim;
            memcpy(r[k].shape, e->shape, sizeof r[k].shape);
            r[k].data = bases[s] ? bases[s] + e->offset : NULL;
        }
    *count = n;
    return r;
}

dk_status dk_unet_save(const dk_unet *m, const char *path, const char *const *meta) {
    DK_ASSERT(m && path);
    int nuser = 0;
    for (; meta && meta[2 * nuser]; nuser++)
        if (strncmp(meta[2 * nuser], CFG_PREFIX, strlen(CFG_PREFIX)) == 0)
            return dk_fail(DK_ERR_ARG, "%s: metadata key %s is reserved for the model config",
                           path, meta[2 * nuser]);
    cfg_meta c;
    config_meta(&c, &m->cfg);
    int naxes = dk_unet_is_isotropic(&m->cfg) ? 0 : 2;
    char axes[2][AXES_VAL], axes_key[2][32];
    for (int k = 0; k < naxes; k++) {
        axes_text(axes[k], sizeof axes[k], &m->cfg, k);
        snprintf(axes_key[k], sizeof axes_key[k], CFG_PREFIX "%s", axes_keys[k]);
    }
    const char **all = calloc((size_t)(2 * (CFG_KEYS + naxes + nuser) + 1), sizeof *all);
    int count = 0;
    dk_tensor_ref *refs = make_refs(m, m->params.w, m->buffers.w, &count);
    dk_status st;
    if (!all || !refs) {
        st = dk_fail(DK_ERR_NOMEM, "%s: cannot allocate the checkpoint index", path);
        goto out;
    }
    for (int k = 0; k < CFG_KEYS; k++) {
        all[2 * k] = c.key[k];
        all[2 * k + 1] = c.val[k];
    }
    for (int k = 0; k < naxes; k++) {
        all[2 * (CFG_KEYS + k)] = axes_key[k];
        all[2 * (CFG_KEYS + k) + 1] = axes[k];
    }
    for (int k = 0; k < 2 * nuser; k++) all[2 * (CFG_KEYS + naxes) + k] = meta[k];
    st = dk_safetensors_write(path, refs, count, all);
out:
    free(all);
    free(refs);
    return st;
}

/* The file's strides and kernels must be the model's where the file is a dakd model file
 * (absent keys: isotropic) or carries them. */
static dk_status check_axes(const dk_unet *m, const char *path, const cJSON *root) {
    int dakd_file = cJSON_GetObjectItemCaseSensitive(root, CFG_PREFIX "levels") != NULL;
    for (int k = 0; k < 2; k++) {
        char key[64];
        snprintf(key, sizeof key, CFG_PREFIX "%s", axes_keys[k]);
        if (!dakd_file && !cJSON_GetObjectItemCaseSensitive(root, key)) continue;
        dk_unet_config f = m->cfg;
        dk_status st = axes_from_meta(&f, root, path, k);
        if (st != DK_OK) return st;
        char fv[AXES_VAL], mv[AXES_VAL];
        axes_text(fv, sizeof fv, &f, k);
        axes_text(mv, sizeof mv, &m->cfg, k);
        if (strcmp(fv, mv) != 0)
            return dk_fail(DK_ERR_FORMAT, "%s: %s is %s in the file, %s in the model", path, key,
                           fv, mv);
    }
    return DK_OK;
}

/* The file's config keys that are present must equal the model's. */
static dk_status check_config(const dk_unet *m, const char *path, const char *meta_json) {
    cJSON *root = cJSON_Parse(meta_json ? meta_json : "{}");
    if (!root) return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ is not valid JSON", path);
    cfg_meta c;
    config_meta(&c, &m->cfg);
    dk_status st = DK_OK;
    for (int k = 0; k < CFG_KEYS && st == DK_OK; k++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, c.key[k]);
        if (!it) continue;
        const char *fv = cJSON_IsString(it) ? it->valuestring : NULL;
        int same = fv && (c.is_float[k] ? strtof(fv, NULL) == strtof(c.val[k], NULL)
                                        : strcmp(fv, c.val[k]) == 0);
        if (!same)
            st = dk_fail(DK_ERR_FORMAT, "%s: %s is %s in the file, %s in the model", path,
                         c.key[k], fv ? fv : "(not a string)", c.val[k]);
    }
    if (st == DK_OK) st = check_axes(m, path, root);
    cJSON_Delete(root);
    return st;
}

dk_status dk_unet_load(dk_unet *m, const char *path, char **meta_json) {
    DK_ASSERT(m && path);
    if (meta_json) *meta_json = NULL;
    int64_t nw = m->params.total, nb = m->buffers.total;
    float *tmp = dk_alloc_aligned((size_t)(nw + nb + 1), sizeof(float));
    int count = 0;
    dk_tensor_ref *refs = tmp ? make_refs(m, tmp, tmp + nw, &count) : NULL;
    char *mj = NULL;
    dk_status st;
    if (!tmp || !refs) {
        st = dk_fail(DK_ERR_NOMEM, "%s: cannot allocate %lld floats to load into", path,
                     (long long)(nw + nb));
        goto out;
    }
    if ((st = dk_safetensors_read(path, refs, count, 0, &mj)) != DK_OK) goto out;
    if ((st = check_config(m, path, mj)) != DK_OK) goto out;
    memcpy(m->params.w, tmp, (size_t)nw * sizeof(float));
    memcpy(m->buffers.w, tmp + nw, (size_t)nb * sizeof(float));
    if (meta_json) {
        *meta_json = mj;
        mj = NULL;
    }
out:
    free(mj);
    free(refs);
    dk_free(tmp);
    return st;
}

/* ---------------------------------------------------------------- a model from its file */

/* The string value of metadata key `key`, or NULL. */
static const char *meta_str(const cJSON *root, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Index of `v` in names[0..n), or -1. */
static int name_index(const char *v, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) return i;
    return -1;
}

/* The dk_unet_config written by config_meta, read back from the parsed __metadata__. */
static dk_status config_from_meta(dk_unet_config *g, const cJSON *root, const char *path) {
    static const char *const norms[] = {"batch", "instance", "none"};
    static const char *const ups[] = {"transposed", "interp"};
    static const char *const keys[CFG_KEYS] = {"dims", "in_channels", "classes", "base",
                                               "levels", "norm", "up", "deep_supervision",
                                               "leaky_slope", "dropout"};
    const char *v[CFG_KEYS];
    char key[64];
    for (int k = 0; k < CFG_KEYS; k++) {
        snprintf(key, sizeof key, CFG_PREFIX "%s", keys[k]);
        if (!(v[k] = meta_str(root, key)))
            return dk_fail(DK_ERR_FORMAT, "%s: __metadata__ lacks %s: not a dakd model "
                           "checkpoint (dk_unet_save writes every dakd.config.* key)", path, key);
    }
    int ints[5];
    for (int k = 0; k < 5; k++) {
        char *end;
        long x = strtol(v[k], &end, 10);
        if (end == v[k] || *end || x < 0 || x > 1 << 20)
            return dk_fail(DK_ERR_FORMAT, "%s: " CFG_PREFIX "%s = '%s' is not an integer", path,
                           keys[k], v[k]);
        ints[k] = (int)x;
    }
    int norm = name_index(v[5], norms, 3), up = name_index(v[6], ups, 2);
    if (norm < 0 || up < 0)
        return dk_fail(DK_ERR_FORMAT, "%s: " CFG_PREFIX "%s = '%s' is not one of the known "
                       "names", path, norm < 0 ? "norm" : "up", norm < 0 ? v[5] : v[6]);
    memset(g, 0, sizeof *g);
    g->dims = ints[0], g->in_channels = ints[1], g->classes = ints[2];
    g->base = ints[3], g->levels = ints[4];
    g->norm = (dk_norm_kind)norm;
    g->up = (dk_up_kind)up;
    g->deep_supervision = strcmp(v[7], "0") != 0;
    g->leaky_slope = strtof(v[8], NULL);
    g->dropout = strtof(v[9], NULL);
    if (g->levels < 2 || g->levels > DK_UNET_MAX_LEVELS) return DK_OK; /* unet_new names it */
    dk_status st = axes_from_meta(g, root, path, 0);
    return st != DK_OK ? st : axes_from_meta(g, root, path, 1);
}

/* Check the file's tensors against the registered names and shapes with nothing allocated
 * for them (dk_safetensors_read also checks that their spans tile the file's data), then
 * allocate and read them in place: on failure the caller frees the whole model, so no
 * scratch copy is needed. */
static dk_status load_new(dk_unet *m, const char *path) {
    int count = 0;
    dk_tensor_ref *refs = make_refs(m, NULL, NULL, &count);
    if (!refs) return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate the checkpoint index", path);
    dk_status st = dk_safetensors_read(path, refs, count, 0, NULL);
    free(refs);
    if (st == DK_OK) st = dk_params_alloc(&m->params, 0);
    if (st == DK_OK) st = dk_params_alloc(&m->buffers, 0);
    if (st != DK_OK) return st;
    if (!(refs = make_refs(m, m->params.w, m->buffers.w, &count)))
        return dk_fail(DK_ERR_NOMEM, "%s: cannot allocate the checkpoint index", path);
    st = dk_safetensors_read(path, refs, count, 0, NULL);
    free(refs);
    return st;
}

dk_status dk_unet_open(dk_unet **out, const char *path, char **meta_json) {
    DK_ASSERT(out && path);
    *out = NULL;
    if (meta_json) *meta_json = NULL;
    char *mj = NULL;
    dk_status st = dk_safetensors_read(path, NULL, 0, 1, &mj);
    if (st != DK_OK) return st;
    cJSON *root = cJSON_Parse(mj);
    dk_unet_config g;
    st = root ? config_from_meta(&g, root, path)
              : dk_fail(DK_ERR_FORMAT, "%s: __metadata__ is not valid JSON", path);
    cJSON_Delete(root);
    if (st == DK_OK && (st = unet_new(out, &g, 0)) != DK_OK)
        st = dk_error_context(st, "%s: the dakd.config.* keys describe no valid network", path);
    if (st == DK_OK) st = load_new(*out, path);
    if (st != DK_OK) {
        dk_unet_free(*out);
        *out = NULL;
        free(mj);
        return st;
    }
    if (meta_json) *meta_json = mj;
    else free(mj);
    return DK_OK;
}
