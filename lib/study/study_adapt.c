/*
 * The adapt stage (dakd/study.h): the model of a train stage with its batch-norm statistics
 * re-estimated on the study's cases of one domain (and split), through dk_adapt_run, so a
 * study shows "source only + AdaBN" beside the methods it compares.
 */
#include "study_internal.h"

#include <stdio.h>
#include <string.h>

static double params_of(const study_stage *m) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m->record, "result");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "params");
    return cJSON_IsNumber(p) ? p->valuedouble : 0;
}

dk_status dk__study_run_adapt(dk_study *s, study_stage *st, cJSON *result) {
    const study_stage *m = &s->stages[dk__study_dep(s, st, st->f.model)]; /* same seed */
    dk_train_config c;
    dk_status rc = dk__study_train_config(&c, s, m); /* sample as the model was trained */
    if (rc != DK_OK) return rc;
    if (!c.domain_column[0])
        return dk_fail(DK_ERR_ARG, "%s: [stage.%s] kind = adapt picks cases by [data] "
                       "domain_column, which is empty", s->path, st->name);
    char in[STUDY_PATH_MAX], out[STUDY_PATH_MAX], dom[160], split[160];
    dk__study_model_file(in, sizeof in, s, m);
    dk__study_path(out, sizeof out, s, st->dir, "model.safetensors");
    snprintf(dom, sizeof dom, "%s=%s", c.domain_column, st->f.domain);
    snprintf(split, sizeof split, "%s=%s", c.split_column, st->f.split);
    const char *where[3] = {dom, st->f.split[0] && c.split_column[0] ? split : NULL, NULL};
    dk_adapt_opts o;
    dk_adapt_defaults(&o);
    o.model = in, o.cases_csv = c.cases, o.where = where, o.out = out;
    o.batch_size = c.batch_size, o.seed = (uint64_t)c.seed, o.centre_in_mask = c.centre_in_mask;
    rc = dk_adapt_run(&o);
    cJSON_AddStringToObject(result, "model", out);
    cJSON_AddStringToObject(result, "adapted_from", in);
    cJSON_AddStringToObject(result, "domain", st->f.domain);
    cJSON_AddStringToObject(result, "split", st->f.split);
    cJSON_AddNumberToObject(result, "patches", (double)(o.batches * o.batch_size));
    cJSON_AddNumberToObject(result, "params", params_of(m));
    return rc;
}
