/*
 * target_bn's model files: after the last epoch the student's batch-norm statistics are
 * re-estimated on the target training patches (dk_adabn) before model.safetensors is
 * written, and so are those of best.safetensors (the best epoch's weights), from the same
 * patches, so whichever file a run hands on carries the adaptation the config asked for.
 * Both files record it ("dakd.adabn", dk_adabn_save). See dakd/train.h.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer_internal.h"

dk_status dk__trainer_adapt_bn(dk_trainer *t, dk_unet *net) {
    if (dk_unet_get_config(net)->norm != DK_NORM_BATCH) return DK_OK;
    return dk_adabn(net, &t->btgt, &t->stgt, DK_ADABN_BATCHES, (uint64_t)t->cfg.seed);
}

/* 1 when the model file at `path` already records an AdaBN re-estimation. */
static int has_record(const char *path) {
    char *mj = NULL;
    if (dk_safetensors_read(path, NULL, 0, 1, &mj) != DK_OK) return 0;
    cJSON *m = cJSON_Parse(mj);
    int has = cJSON_GetObjectItemCaseSensitive(m, "dakd.adabn") != NULL;
    cJSON_Delete(m);
    free(mj);
    return has;
}

/* best.safetensors re-estimated in place, unless it already was (a resumed finished run). */
static dk_status adapt_best(dk_trainer *t, const char *path, const dk_adabn_record *r) {
    if (t->stats.best_epoch < 0 || access(path, F_OK) != 0 || has_record(path)) return DK_OK;
    dk_unet *net = NULL;
    dk_status st = dk_unet_open(&net, path, NULL);
    if (st == DK_OK) st = dk__trainer_adapt_bn(t, net);
    if (st == DK_OK) st = dk_adabn_save(net, path, path, r);
    dk_unet_free(net);
    if (st == DK_OK)
        dk_log(DK_LOG_INFO, "target_bn: best.safetensors (epoch %d) re-estimated on the same "
               "target patches", t->stats.best_epoch + 1);
    return st;
}

dk_status dk__trainer_adapt_files(dk_trainer *t) {
    const dk_train_config *c = &t->cfg;
    if (t->rank != 0) return DK_OK;
    if (dk_unet_get_config(t->net)->norm != DK_NORM_BATCH)
        return dk__trainer_save_model(t, "model.safetensors", NULL);
    char source[3 * DK_TRAIN_PATH_MAX], best[DK_TRAIN_PATH_MAX + 32];
    const char *slash = strrchr(c->cases, '/'); /* the file's name: not where it lies */
    int k = snprintf(source, sizeof source, "%s", slash ? slash + 1 : c->cases);
    if (c->domain_column[0])
        k += snprintf(source + k, sizeof source - (size_t)k, " where %s=%s", c->domain_column,
                      c->target);
    if (c->split_column[0] && c->target_split[0])
        snprintf(source + k, sizeof source - (size_t)k, "%s%s=%s",
                 c->domain_column[0] ? ", " : " where ", c->split_column, c->target_split);
    dk_adabn_record r = {DK_ADABN_BATCHES, t->batch, t->ntgt, (uint64_t)c->seed, source};
    snprintf(best, sizeof best, "%s/best.safetensors", c->run_dir);
    /* t->net holds the adapted student: model.safetensors is written once, with its record */
    char *rec = dk__adabn_record_json(&r);
    dk_status st = rec ? dk__trainer_save_model(t, "model.safetensors", rec)
                       : dk_fail(DK_ERR_NOMEM, "%s: no memory for the metadata", c->run_dir);
    free(rec);
    return st == DK_OK ? adapt_best(t, best, &r) : st;
}
