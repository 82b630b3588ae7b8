/*
 * U-Net checkpoints over safetensors: the parameters then the buffers under their
 * registered names and PyTorch shapes (2-D weights are 4-D), and the config in
 * __metadata__ as "dakd.config.<field>" strings beside the caller's keys.
 *
 * Loading reads into a scratch copy first, so a failed load (missing tensor, different
 * shape, truncated file, different config) leaves the model untouched. Config keys absent
 * from the file are not checked (a checkpoint written by another tool carries none; the
 * names and shapes have matched already); a key that is present must match.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet_internal.h"

enum { CFG_KEYS = 10, CFG_VAL = 32 };
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

/* Tensor references for every parameter then every buffer; data from w_base / b_base
 * (the model's own buffers when saving, a scratch copy when loading). */
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
            r[k].data = bases[s] + e->offset;
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
    const char **all = calloc((size_t)(2 * (CFG_KEYS + nuser) + 1), sizeof *all);
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
    for (int k = 0; k < 2 * nuser; k++) all[2 * CFG_KEYS + k] = meta[k];
    st = dk_safetensors_write(path, refs, count, all);
out:
    free(all);
    free(refs);
    return st;
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
