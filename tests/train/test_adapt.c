/*
 * CUnit suite for AdaBN (lib/train/adabn.c, dakd/train.h) on tiny 2-D phantoms (32x32, 4
 * classes): a teacher and a distilled student with target_bn, one epoch each, then
 *  - the library function (dk_adabn) and `dakd adapt`'s run (dk_adapt_run) on the
 *    student's unadapted weights give the trainer's target_bn statistics bit for bit;
 *  - the model file a target_bn run hands on as best.safetensors carries the target
 *    statistics too (with one epoch, best and final are the same weights: same tensors);
 *  - bad input: a model without batch norm, the output naming the input (same path, a hard
 *    link), a mask_extent model without masks, filters that leave no case, a bad filter;
 *    nothing is written;
 *  - the command line: --help, the happy path from a case list and from image paths, exit
 *    codes.
 */
#include "dakd/data.h"
#include "dakd/eval.h"
#include "dakd/train.h"
#include "test_util.h"
#include "trainer_fixture.h"

#include <cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[1024], csv[1100], teacher[1100], model[1100], best[1100], ckpt[1100];
static char unadapted[1100];
static int64_t seed = 5;

/* 4 source train, 2 source val, 4 target train (unlabelled), 2 target test. */
static int make_data(void) {
    FILE *f = dk_fx_open_cases(dir, csv, sizeof dir, "adapt");
    if (!f) return -1;
    int rc = 0;
    char name[32];
    for (int i = 0; i < 12 && rc == 0; i++) {
        int dom = i >= 6, lab = i < 6 || i >= 10;
        const char *split = i < 4 ? "train" : i < 6 ? "val" : i < 10 ? "train" : "test";
        snprintf(name, sizeof name, "%s%02d", dom ? "t" : "s", i);
        rc = dk_fx_write_case(f, dir, name, 32, dom, 500 + (uint64_t)i, split, lab, 0);
    }
    fclose(f);
    return rc;
}

static int config(dk_train_config *c, const char *run) {
    static const char *const sets[] = {
        "data.domain_column=dataset", "data.source=src", "data.target=tgt",
        "data.split_column=split", "data.train_split=train", "data.val_split=val",
        "data.target_split=train", "data.patch_h=32", "data.patch_w=32", "data.batch_size=4",
        "data.classes=4", "model.teacher_base=4", "model.teacher_levels=3",
        "model.student_base=4", "model.student_levels=3", "train.threads=1",
        "train.checkpoint_every=1", "train.seed=5", "distill.align=none",
        "distill.target_bn=true", NULL};
    return dk_fx_config(c, sets, csv, dir, run, 1, 3, teacher);
}

static dk_status train(const char *run, dk_trainer_mode mode) {
    dk_train_config c;
    if (config(&c, run)) return DK_ERR_ARG;
    dk_trainer *t = NULL;
    dk_trainer_opts o = {mode, 0, 0};
    dk_status st = dk_train_config_validate(&c);
    if (st == DK_OK) st = dk_trainer_create(&t, &c, &o);
    if (st == DK_OK) st = dk_trainer_run(t);
    if (st != DK_OK) printf("\n  trainer: %s\n", dk_last_error());
    dk_trainer_free(t);
    return st;
}

/* Write `net` to `path` with the metadata of the model file `from`, key `key` (if not NULL)
 * set to `value`; the network config keys come from net. */
static int save_like(dk_unet *net, const char *from, const char *key, const char *value,
                     const char *path) {
    char *mj = NULL;
    if (dk_safetensors_read(from, NULL, 0, 1, &mj) != DK_OK) return -1;
    cJSON *m = cJSON_Parse(mj);
    const char *kv[128];
    int n = 0, set = 0;
    for (const cJSON *it = m ? m->child : NULL; it && n < 120; it = it->next) {
        if (!strncmp(it->string, "dakd.config.", 12)) continue;
        int mine = key && !strcmp(it->string, key);
        kv[n++] = it->string, kv[n++] = mine ? value : it->valuestring;
        set |= mine;
    }
    if (key && !set) kv[n++] = key, kv[n++] = value;
    kv[n] = NULL;
    int rc = dk_unet_save(net, path, kv) != DK_OK;
    cJSON_Delete(m);
    free(mj);
    return rc;
}

/* The student's final weights with the statistics of training (from the checkpoint), as a
 * model file. */
static int write_unadapted(void) {
    dk_unet *net = NULL;
    if (dk_unet_open(&net, model, NULL) != DK_OK) return -1;
    dk_params *p = dk_unet_params(net), *b = dk_unet_buffers(net);
    dk_tensor_ref r[2] = {{"params", 1, {p->total}, p->w}, {"buffers", 1, {b->total}, b->w}};
    int rc = dk_safetensors_read(ckpt, r, 2, 1, NULL) != DK_OK ||
             save_like(net, model, NULL, NULL, unadapted) != 0;
    dk_unet_free(net);
    return rc;
}

static int suite_init(void) {
    if (make_data() != 0) return 1;
    snprintf(teacher, sizeof teacher, "%s/teacher/model.safetensors", dir);
    snprintf(model, sizeof model, "%s/full/model.safetensors", dir);
    snprintf(best, sizeof best, "%s/full/best.safetensors", dir);
    snprintf(ckpt, sizeof ckpt, "%s/full/checkpoint.safetensors", dir);
    snprintf(unadapted, sizeof unadapted, "%s/unadapted.safetensors", dir);
    if (train("teacher", DK_TRAINER_TEACHER) != DK_OK) return 1;
    if (train("full", DK_TRAINER_DISTILL) != DK_OK) return 1;
    return write_unadapted() != 0;
}

/* Every parameter and buffer of two model files (or a file and a network) equal, bitwise. */
static int same_tensors(dk_unet *a, const char *path) {
    dk_unet *b = NULL;
    if (dk_unet_open(&b, path, NULL) != DK_OK) return 0;
    const dk_params *pa = dk_unet_params(a), *pb = dk_unet_params(b);
    const dk_params *ba = dk_unet_buffers(a), *bb = dk_unet_buffers(b);
    int same = pa->total == pb->total && ba->total == bb->total &&
               !memcmp(pa->w, pb->w, (size_t)pa->total * sizeof(float)) &&
               !memcmp(ba->w, bb->w, (size_t)ba->total * sizeof(float));
    dk_unet_free(b);
    return same;
}

static int files_same_tensors(const char *a, const char *b) {
    dk_unet *na = NULL;
    if (dk_unet_open(&na, a, NULL) != DK_OK) return 0;
    int same = same_tensors(na, b);
    dk_unet_free(na);
    return same;
}

/* The metadata value of `key` in a model file (static buffer), or NULL. */
static const char *meta_of(const char *path, const char *key) {
    static char buf[2048];
    char *mj = NULL;
    if (dk_safetensors_read(path, NULL, 0, 1, &mj) != DK_OK) return NULL;
    cJSON *m = cJSON_Parse(mj);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    const char *out = NULL;
    if (cJSON_IsString(v)) out = strncpy(buf, v->valuestring, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    cJSON_Delete(m);
    free(mj);
    return out;
}

static const char *const tgt_train[] = {"dataset=tgt", "split=train", NULL};

/* The trainer's target rows: dataset = tgt and split = train, in CSV order. */
static int target_rows(dk_case_list *out) {
    dk_case_list all = {0}, a = {0};
    int rc = dk_cases_read(&all, csv) != DK_OK || dk_cases_filter(&a, &all, "dataset", "tgt") ||
             dk_cases_filter(out, &a, "split", "train");
    dk_cases_free(&all);
    dk_cases_free(&a);
    return rc;
}

static void test_library_equals_trainer(void) {
    CU_ASSERT_FALSE(files_same_tensors(unadapted, model)); /* target_bn changed something */
    dk_case_list rows = {0};
    CU_ASSERT_EQUAL_FATAL(target_rows(&rows), 0);
    CU_ASSERT_EQUAL(rows.n, 4);
    dk_predict_inputs in;
    CU_ASSERT_EQUAL_FATAL(dk_predict_inputs_read(&in, unadapted, NULL, &rows), DK_OK);
    dk_sampler s;
    dk_batch b;
    dk_sampler_opts so;
    dk_sampler_defaults(&so);
    for (int a = 0; a < 3; a++) so.patch[a] = in.patch[a];
    so.classes = in.classes;
    CU_ASSERT_EQUAL_FATAL(dk_sampler_init(&s, in.cases, in.n, &so), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_batch_alloc(&b, 4, 1, so.patch[0], so.patch[1], so.patch[2]), DK_OK);
    CU_ASSERT_EQUAL(dk_adabn(in.net, &b, &s, DK_ADABN_BATCHES, (uint64_t)seed), DK_OK);
    CU_ASSERT(same_tensors(in.net, model));
    dk_batch_free(&b);
    dk_sampler_free(&s);
    dk_predict_inputs_free(&in);
    dk_cases_free(&rows);
    /* the whole run: the same statistics in a new file with the model's metadata */
    char out[1200];
    snprintf(out, sizeof out, "%s/adapted.safetensors", dir);
    dk_adapt_opts o;
    dk_adapt_defaults(&o);
    o.model = unadapted, o.cases_csv = csv, o.where = tgt_train, o.out = out;
    o.batch_size = 4, o.seed = (uint64_t)seed;
    CU_ASSERT_EQUAL_FATAL(dk_adapt_run(&o), DK_OK);
    CU_ASSERT(files_same_tensors(out, model));
    const char *patch = meta_of(model, "dakd.data.patch");
    CU_ASSERT(patch && meta_of(out, "dakd.data.patch") &&
              !strcmp(patch, meta_of(out, "dakd.data.patch")));
    const char *rec = meta_of(out, "dakd.adabn");
    CU_ASSERT(rec && strstr(rec, "\"patches\":200") && strstr(rec, "\"images\":4") &&
              strstr(rec, "where dataset=tgt, split=train"));
}

/* Fix: the file a target_bn run hands on as "best" carries the target statistics. With one
 * epoch the best epoch is the last, so best.safetensors and model.safetensors hold the same
 * weights and, adapted alike, the same statistics; before, best kept training's. */
static void test_best_is_adapted(void) {
    CU_ASSERT_EQUAL_FATAL(dk_test_exists(best), 1);
    CU_ASSERT(files_same_tensors(best, model));
    CU_ASSERT_FALSE(files_same_tensors(best, unadapted));
    CU_ASSERT_PTR_NOT_NULL(meta_of(best, "dakd.adabn"));
    CU_ASSERT_PTR_NOT_NULL(meta_of(model, "dakd.adabn"));
}

static void expect(dk_adapt_opts *o, dk_status want, const char *needle) {
    dk_status st = dk_adapt_run(o);
    CU_ASSERT_EQUAL(st, want);
    if (!strstr(dk_last_error(), needle))
        printf("\n  message '%s' lacks '%s'\n", dk_last_error(), needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), needle));
}

static void test_bad_input(void) {
    char out[1200], inst[1200], ext[1200], hard[1200];
    snprintf(out, sizeof out, "%s/never.safetensors", dir);
    dk_adapt_opts o;
    dk_adapt_defaults(&o);
    o.model = unadapted, o.cases_csv = csv, o.where = tgt_train, o.out = unadapted;
    o.batch_size = 4;
    expect(&o, DK_ERR_ARG, "overwrite"); /* the same path */
    snprintf(hard, sizeof hard, "%s/hard.safetensors", dir);
    unlink(hard);
    CU_ASSERT_EQUAL_FATAL(link(unadapted, hard), 0);
    o.out = hard;
    expect(&o, DK_ERR_ARG, "overwrite"); /* the same file by another name */
    /* instance norm: no statistics to adapt */
    dk_unet_config g;
    memset(&g, 0, sizeof g);
    g.dims = 2, g.in_channels = 1, g.classes = 4, g.base = 4, g.levels = 3;
    g.norm = DK_NORM_INSTANCE;
    dk_rng r;
    dk_rng_seed(&r, 1);
    dk_unet *net = NULL;
    CU_ASSERT_EQUAL_FATAL(dk_unet_create(&net, &g, 0, &r), DK_OK);
    snprintf(inst, sizeof inst, "%s/instance.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(save_like(net, unadapted, NULL, NULL, inst), 0);
    dk_unet_free(net);
    o.model = inst, o.out = out;
    expect(&o, DK_ERR_ARG, "no batch norm");
    /* a mask_extent model, and a case list without masks */
    CU_ASSERT_EQUAL_FATAL(dk_unet_open(&net, unadapted, NULL), DK_OK);
    snprintf(ext, sizeof ext, "%s/extent.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(save_like(net, unadapted, "dakd.data.mask_extent", "30", ext), 0);
    dk_unet_free(net);
    o.model = ext;
    expect(&o, DK_ERR_ARG, "mask");
    /* filters that leave nothing, a filter without '=', a column that does not exist */
    static const char *const none[] = {"dataset=tgt", "split=nope", NULL};
    static const char *const bad[] = {"dataset", NULL};
    static const char *const nocol[] = {"site=a", NULL};
    o.model = unadapted;
    o.where = none;
    expect(&o, DK_ERR_ARG, "no case");
    o.where = bad;
    expect(&o, DK_ERR_ARG, "column=value");
    o.where = nocol;
    expect(&o, DK_ERR_ARG, "site");
    CU_ASSERT(!dk_test_exists(out));
}

static void test_cli(void) {
    static char buf[16384];
    const char *cli = dk_test_cli();
    CU_ASSERT_EQUAL(dk_test_sh(buf, sizeof buf, "'%s' --help", cli), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "adapt"));
    CU_ASSERT_EQUAL(dk_test_sh(buf, sizeof buf, "'%s' adapt --help", cli), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--where c=v"));
    char out[1200];
    snprintf(out, sizeof out, "%s/cli.safetensors", dir);
    int rc = dk_test_sh(buf, sizeof buf, "'%s' --threads 1 adapt --model '%s' --cases '%s' "
                        "--where dataset=tgt --where split=train --out '%s' --batch-size 4 "
                        "--seed 5 2>&1", cli, unadapted, csv, out);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) printf("\n  %s\n", buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "adapt: "));
    CU_ASSERT_PTR_NOT_NULL(meta_of(out, "dakd.adabn"));
    snprintf(out, sizeof out, "%s/cli_images.safetensors", dir);
    rc = dk_test_sh(buf, sizeof buf, "cd '%s' && '%s' adapt --model '%s' t06_img.nii.gz "
                    "t07_img.nii.gz --out '%s' --batches 5 2>&1", dir, cli, unadapted, out);
    CU_ASSERT_EQUAL(rc, 0);
    const char *rec = meta_of(out, "dakd.adabn");
    CU_ASSERT(rec && strstr(rec, "\"patches\":40") && strstr(rec, "2 image files"));
    /* usage errors (1) and refusals (1: bad argument) */
    CU_ASSERT_EQUAL(dk_test_sh(buf, sizeof buf, "'%s' adapt --model '%s' x.nii.gz 2>&1", cli,
                               unadapted), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--out"));
    CU_ASSERT_EQUAL(dk_test_sh(buf, sizeof buf, "'%s' adapt --model '%s' --where a=b --out "
                               "'%s' x.nii.gz 2>&1", cli, unadapted, out), 1);
    CU_ASSERT_EQUAL(dk_test_sh(buf, sizeof buf, "'%s' adapt --model '%s' --cases '%s' --out "
                               "'%s' 2>&1", cli, unadapted, csv, unadapted), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "overwrite"));
    CU_ASSERT_EQUAL(dk_test_sh(buf, sizeof buf, "'%s' adapt --model /nonexistent.safetensors "
                               "--cases '%s' --out '%s/x.safetensors' 2>&1", cli, csv, dir), 2);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("train.adapt", suite_init, NULL);
    if (!s ||
        !CU_add_test(s, "dk_adabn and dk_adapt_run equal the trainer's target_bn",
                     test_library_equals_trainer) ||
        !CU_add_test(s, "a target_bn run hands on adapted statistics", test_best_is_adapted) ||
        !CU_add_test(s, "bad input is refused, nothing written", test_bad_input) ||
        !CU_add_test(s, "dakd adapt through the binary", test_cli)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
