/*
 * AdaBN (Li et al. 2016, "Revisiting batch normalization for practical domain adaptation"):
 * a network's batch-norm running statistics re-estimated on target images. dk_adabn is the
 * one re-estimation (the trainer's target_bn and `dakd adapt` both call it); dk_adabn_save
 * writes an adapted model file; dk_adapt_run is `dakd adapt` over a model file. See
 * dakd/train.h.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/data.h"
#include "dakd/eval.h"
#include "dakd/train.h"

enum { ADABN_STREAM = 4, DROPOUT_STREAM = 1000000 };

/* The one check that a network has batch-norm statistics to re-estimate. */
static dk_status check_batch_norm(const dk_unet *net) {
    dk_norm_kind k = dk_unet_get_config(net)->norm;
    if (k == DK_NORM_BATCH) return DK_OK;
    return dk_fail(DK_ERR_ARG, "the network has no batch norm (%s): there are no statistics "
                   "to adapt", k == DK_NORM_INSTANCE ? "instance norm" : "no norm layer");
}

dk_status dk_adabn(dk_unet *net, dk_batch *b, const dk_sampler *s, int64_t batches,
                   uint64_t seed) {
    const dk_unet_config *g = dk_unet_get_config(net);
    const dk_tensor *x = &b->image;
    dk_status st = check_batch_norm(net);
    if (st != DK_OK) return dk_error_context(st, "AdaBN");
    if (x->c != g->in_channels)
        return dk_fail(DK_ERR_ARG, "AdaBN: the images have %lld channels, the network takes %d",
                       (long long)x->c, g->in_channels);
    st = dk_unet_plan(net, x->n, x->d, x->h, x->w);
    if (st != DK_OK) return st;
    dk_rng r;
    dk_rng_seed(&r, seed);
    dk_rng base = dk_rng_split(&r, ADABN_STREAM);
    dk_progress pg;
    dk_progress_begin(&pg, "adabn", batches);
    for (int64_t k = 0; k < batches; k++) {
        dk_sampler_step(b, s, NULL, &base, 0, k);
        dk_rng rd = dk_rng_split(&base, (uint64_t)(DROPOUT_STREAM + k)); /* dropout, if any */
        dk_unet_forward(net, x->data, 1, &rd);
        dk_progress_step(&pg, 1);
    }
    dk_progress_end(&pg);
    return DK_OK;
}

char *dk__adabn_record_json(const dk_adabn_record *r) {
    cJSON *o = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
    cJSON_AddNumberToObject(o, "patches", (double)(r->batches * r->batch_size));
    cJSON_AddNumberToObject(o, "batches", (double)r->batches);
    cJSON_AddNumberToObject(o, "batch_size", (double)r->batch_size);
    cJSON_AddNumberToObject(o, "images", r->images);
    cJSON_AddStringToObject(o, "source", r->source ? r->source : "");
    cJSON_AddRawToObject(o, "seed", seed);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

dk_status dk_adabn_save(const dk_unet *net, const char *from, const char *path,
                        const dk_adabn_record *r) {
    char *mj = NULL, *rec = dk__adabn_record_json(r);
    const char **kv = NULL;
    dk_status st = rec ? dk_safetensors_read(from, NULL, 0, 1, &mj)
                       : dk_fail(DK_ERR_NOMEM, "%s: no memory for the metadata", path);
    cJSON *m = st == DK_OK ? cJSON_Parse(mj) : NULL;
    if (st == DK_OK && !cJSON_IsObject(m))
        st = dk_fail(DK_ERR_FORMAT, "%s: __metadata__ is not a JSON object", from);
    int n = 0;
    if (st == DK_OK && !(kv = calloc((size_t)(2 * cJSON_GetArraySize(m) + 3), sizeof *kv)))
        st = dk_fail(DK_ERR_NOMEM, "%s: no memory for the metadata", path);
    /* every key but the network's own (dk_unet_save writes them from net) and an older record */
    for (const cJSON *it = m ? m->child : NULL; st == DK_OK && it; it = it->next)
        if (cJSON_IsString(it) && strncmp(it->string, "dakd.config.", 12) != 0 &&
            strcmp(it->string, "dakd.adabn") != 0)
            kv[n++] = it->string, kv[n++] = it->valuestring;
    if (st == DK_OK) {
        kv[n++] = "dakd.adabn", kv[n++] = rec;
        st = dk_unet_save(net, path, kv);
    }
    free(kv);
    cJSON_Delete(m);
    free(mj);
    free(rec);
    return st;
}

/* ---------------------------------------------------------------- dakd adapt */

void dk_adapt_defaults(dk_adapt_opts *o) {
    memset(o, 0, sizeof *o);
    o->batches = DK_ADABN_BATCHES;
    o->batch_size = 8;
}

/* The output must not be the input: not the same name, not the same file by another name. */
static dk_status check_paths(const dk_adapt_opts *o) {
    if (!o->model || !o->out || (!o->inputs && !o->cases_csv))
        return dk_fail(DK_ERR_ARG, "adapt: a model, an output file and images (paths or a "
                       "case list) are needed");
    if (o->batches < 1 || o->batch_size < 1)
        return dk_fail(DK_ERR_ARG, "adapt: batches = %lld and batch_size = %d must be >= 1",
                       (long long)o->batches, o->batch_size);
    if (dk_same_file(o->model, o->out))
        return dk_fail(DK_ERR_ARG, "%s: the adapted model would overwrite the model it is "
                       "adapted from (%s); write it to another file", o->out, o->model);
    return DK_OK;
}

/* The rows of the case list that pass every "column=value" of o->where (dk_cases_where),
 * into *out; the file's name and the filters are also appended to `source` for the record. */
static dk_status select_rows(dk_case_list *out, const dk_adapt_opts *o, char *source,
                             size_t n) {
    dk_case_list all = {0};
    dk_status st = dk_cases_read(&all, o->cases_csv);
    if (st == DK_OK) st = dk_cases_where(out, &all, o->where, !o->inputs);
    dk_cases_free(&all);
    size_t used = strlen(source);
    const char *slash = strrchr(o->cases_csv, '/'); /* the file's name: not where it lies */
    used += (size_t)snprintf(source + used, n - used, "%s%s", used ? " and " : "",
                             slash ? slash + 1 : o->cases_csv);
    for (int i = 0; st == DK_OK && o->where && o->where[i] && used < n; i++)
        used +=
            (size_t)snprintf(source + used, n - used, "%s%s", i ? ", " : " where ", o->where[i]);
    return st;
}

dk_status dk_adapt_run(const dk_adapt_opts *o) {
    dk_status st = check_paths(o);
    if (st != DK_OK) return st;
    dk_case_list rows = {0};
    dk_predict_inputs in;
    memset(&in, 0, sizeof in);
    dk_sampler s;
    memset(&s, 0, sizeof s);
    dk_batch b;
    memset(&b, 0, sizeof b);
    char source[1024] = "";
    int ni = 0;
    while (o->inputs && o->inputs[ni]) ni++;
    if (ni) snprintf(source, sizeof source, "%d image file%s", ni, ni == 1 ? "" : "s");
    if (o->cases_csv) st = select_rows(&rows, o, source, sizeof source);
    if (st == DK_OK)
        st = dk_predict_inputs_read(&in, o->model, o->inputs, o->cases_csv ? &rows : NULL);
    if (st == DK_OK && (st = check_batch_norm(in.net)) != DK_OK) /* before any sampling */
        st = dk_error_context(st, "%s", o->model);
    dk_sampler_opts so;
    dk_sampler_defaults(&so);
    for (int a = 0; a < 3; a++) so.patch[a] = in.patch[a];
    so.fg_fraction = 0; /* no labels are read: every patch is placed uniformly (or in the mask) */
    so.classes = in.classes;
    so.centre_in_mask = o->centre_in_mask;
    if (st == DK_OK) st = dk_sampler_init(&s, in.cases, in.n, &so);
    if (st == DK_OK) st = dk_batch_alloc(&b, o->batch_size, s.channels, so.patch[0],
                                         so.patch[1], so.patch[2]);
    if (st == DK_OK) st = dk_adabn(in.net, &b, &s, o->batches, o->seed);
    dk_adabn_record r = {o->batches, o->batch_size, in.n, o->seed, source};
    if (st == DK_OK) st = dk_adabn_save(in.net, o->model, o->out, &r);
    if (st == DK_OK)
        dk_log(DK_LOG_INFO, "adapt: batch-norm statistics of %s re-estimated on %lld patches "
               "from %d images (%s) -> %s", o->model, (long long)(o->batches * o->batch_size),
               in.n, source, o->out);
    dk_batch_free(&b);
    dk_sampler_free(&s);
    dk_predict_inputs_free(&in);
    dk_cases_free(&rows);
    return st;
}
