/*
 * CUnit suite for the trainer's bad input and its command line (lib/train/trainer*.c,
 * apps/cmd_train.c) on small generated phantoms (2-D, 32x32, 4 classes; tiny networks):
 *  - every refusal stops before the first step or at the first bad step with a message
 *    naming the file, the case or the config key, and leaves no checkpoint or model file
 *    that is half-written or holds NaN: non-finite losses, NaN/Inf voxels, image and label
 *    grids that differ, missing or unreadable files, bad case lists, empty domains and
 *    splits, teacher checkpoints that are truncated or of another network;
 *  - the oracle says that it trained on target labels; distillation never opens a target
 *    label file; CORAL alignment logs a finite term;
 *  - `dakd train` / `dakd distill` through the binary: --set (before or after CONFIG), an
 *    unknown key, the effective config, --resume, the per-epoch line, steps.jsonl (one line
 *    per step; two runs with the same seed and threads log the same bytes once the wall-time
 *    field "sec" is removed), and what [data] batch_size counts.
 */
#include "dakd/data.h"
#include "dakd/train.h"
#include "test_util.h"
#include "trainer_fixture.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[1024], csv[1100], teacher[1100], ini[1100];
static char out[1 << 17]; /* output of the last command */

enum { NX = 32 };

/* ------------------------------------------------------------------ data */

static int write_volume(const dk_volume *v, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return dk_volume_write(v, p, NULL) == DK_OK ? 0 : -1;
}

static int write_case(FILE *f, const char *name, int domain, uint64_t seed, const char *split,
                      int with_label) {
    return dk_fx_write_case(f, dir, name, NX, domain, seed, split, with_label, 0);
}

/* 6 source train, 2 source val, 6 target train (labelled: the oracle's), 2 target test. */
static int make_data(void) {
    snprintf(dir, sizeof dir, "%s/trainer_errors", dk_test_tmpdir());
    mkdir(dir, 0777);
    snprintf(csv, sizeof csv, "%s/cases.csv", dir);
    FILE *f = fopen(csv, "w");
    if (!f) return -1;
    fprintf(f, "case,image,label,dataset,split\n");
    int rc = 0;
    for (int i = 0; i < 16 && rc == 0; i++) {
        char name[32];
        int dom = i >= 8;
        const char *split = i < 6 ? "train" : i < 8 ? "val" : i < 14 ? "train" : "test";
        snprintf(name, sizeof name, "%s%02d", dom ? "t" : "s", i);
        rc = write_case(f, name, dom, 500 + (uint64_t)i, split, 1);
    }
    fclose(f);
    return rc;
}

/* A CSV `name` in dir: the header, then the rows of cases.csv with every occurrence of
 * `from` replaced by `to` (from NULL: unchanged). Returns its path (static buffer). */
static const char *csv_variant(const char *name, const char *header, const char *from,
                               const char *to) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *in = fopen(csv, "r"), *o = fopen(path, "w");
    char line[512];
    if (in && o && fgets(line, sizeof line, in)) fputs(header ? header : line, o);
    while (in && o && fgets(line, sizeof line, in)) {
        char *p = from ? strstr(line, from) : NULL;
        if (p) {
            *p = '\0';
            fprintf(o, "%s%s%s", line, to, p + strlen(from));
        } else {
            fputs(line, o);
        }
    }
    if (in) fclose(in);
    if (o) fclose(o);
    return path;
}

/* ------------------------------------------------------------------ configs and runs */

/* The tiny-net config of every run here; 0 on success. */
static int base_config(dk_train_config *c, const char *run, int epochs, int steps) {
    static const char *const sets[] = {
        "data.domain_column=dataset", "data.source=src", "data.target=tgt", "data.patch_h=32",
        "data.patch_w=32", "data.batch_size=4", "data.classes=4", "model.teacher_base=4",
        "model.teacher_levels=3", "model.student_base=4", "model.student_levels=2",
        "train.lr=0.01", "train.momentum=0.9", "train.threads=1", "train.checkpoint_every=1",
        "data.fg_fraction=0.5", NULL};
    return dk_fx_config(c, sets, csv, dir, run, epochs, steps, teacher);
}

static void set1(dk_train_config *c, const char *fmt, const char *v) {
    char buf[1400];
    snprintf(buf, sizeof buf, fmt, v);
    dk_status st = dk_train_config_set(c, buf);
    if (st != DK_OK) printf("\n  --set %s: %s\n", buf, dk_last_error());
    CU_ASSERT_EQUAL(st, DK_OK);
}

static dk_status run(dk_trainer **t, dk_train_config *c, dk_trainer_mode mode, int resume,
                     int64_t stop) {
    dk_trainer_opts o = {mode, resume, stop};
    *t = NULL;
    dk_status st = dk_train_config_validate(c);
    if (st == DK_OK) st = dk_trainer_create(t, c, &o);
    if (st == DK_OK) st = dk_trainer_run(*t);
    return st;
}

static const char *run_file(const char *rdir, const char *name) {
    static char p[4][1300];
    static int k;
    char *b = p[k++ & 3];
    snprintf(b, sizeof p[0], "%s/%s/%s", dir, rdir, name);
    return b;
}

/* Files in the run folder that a failed run must not leave: models, checkpoints written
 * after the failure, temporaries of an atomic write. Returns how many are there. */
static int bad_leftovers(const char *rdir, int checkpoint_allowed) {
    int n = dk_test_exists(run_file(rdir, "model.safetensors"));
    if (!checkpoint_allowed) n += dk_test_exists(run_file(rdir, "checkpoint.safetensors"));
    DIR *d = opendir(run_file(rdir, ""));
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    if (d) closedir(d);
    return n;
}

/* Expect create + run to fail with `want` and every needle in the message; nothing of a
 * model or checkpoint is left in the run folder. */
static void expect_fail(dk_train_config *c, const char *rdir, dk_trainer_mode mode,
                        dk_status want, const char *const *needles) {
    dk_trainer *t = NULL;
    dk_status st = run(&t, c, mode, 0, 0);
    CU_ASSERT_EQUAL(st, want);
    if (st != want) printf("\n  status %d, want %d: %s\n", st, want, dk_last_error());
    for (int i = 0; needles[i]; i++) {
        int found = strstr(dk_last_error(), needles[i]) != NULL;
        CU_ASSERT(found);
        if (!found) printf("\n  '%s' not in: %s\n", needles[i], dk_last_error());
    }
    CU_ASSERT_EQUAL(bad_leftovers(rdir, 0), 0);
    CU_ASSERT(!dk_test_exists(run_file(rdir, "best.safetensors")));
    dk_trainer_free(t);
}

static int suite_init(void) {
    if (make_data() != 0) return 1;
    snprintf(teacher, sizeof teacher, "%s/teacher/model.safetensors", dir);
    dk_train_config c;
    if (base_config(&c, "teacher", 2, 4)) return 1;
    dk_trainer *t = NULL;
    dk_status st = run(&t, &c, DK_TRAINER_TEACHER, 0, 0);
    if (st != DK_OK) printf("\n  teacher: %s\n", dk_last_error());
    dk_trainer_free(t);
    /* the same config as an INI file for the command-line tests */
    snprintf(ini, sizeof ini, "%s/base.ini", dir);
    if (st == DK_OK) st = dk_train_config_write(&c, ini);
    return st != DK_OK;
}

/* ------------------------------------------------------------------ files */

/* The bytes of a file (malloc'd, *n its size), or NULL. */
static char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    *n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        b = malloc((size_t)*n + 1);
        if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) {
            free(b);
            b = NULL;
        }
        if (b) b[*n] = '\0';
    }
    if (f) fclose(f);
    return b;
}

/* 1 when both files exist and hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
    long na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    free(x);
    free(y);
    return same;
}

static int copy_file(const char *from, const char *to) {
    long n;
    char *b = slurp(from, &n);
    FILE *f = b ? fopen(to, "wb") : NULL;
    int ok = f && fwrite(b, 1, (size_t)n, f) == (size_t)n;
    if (f && fclose(f) != 0) ok = 0;
    free(b);
    return ok ? 0 : -1;
}

/* Lines of a text file, or -1. */
static int count_lines(const char *path) {
    long n;
    char *b = slurp(path, &n);
    if (!b) return -1;
    int k = 0;
    for (long i = 0; i < n; i++) k += b[i] == '\n';
    free(b);
    return k;
}

/* The file's lines with the wall-time field "sec" (the last one) cut out, joined; malloc'd. */
static char *without_sec(const char *path) {
    long n;
    char *b = slurp(path, &n);
    if (!b) return NULL;
    char *o = malloc((size_t)n + 1), *w = o;
    for (char *line = b; o && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *sec = strstr(line, ",\"sec\":");
        size_t keep = sec && sec < line + len ? (size_t)(sec - line) : len;
        memcpy(w, line, keep);
        w += keep;
        *w++ = '\n';
        line += len + (nl != NULL);
    }
    if (o) *w = '\0';
    free(b);
    return o;
}

/* The student network of the base config loaded from `path`; 1 when it loads and every
 * weight and buffer is finite, 0 when not, -1 when it does not load. */
static int model_finite(const char *path, const dk_train_config *c) {
    dk_unet_config nc = c->student;
    dk_rng r;
    dk_rng_seed(&r, 1);
    dk_unet *m = NULL;
    if (dk_unet_create(&m, &nc, 0, &r) != DK_OK) return -1;
    int ok = dk_unet_load(m, path, NULL) == DK_OK ? 1 : -1;
    const dk_params *p[2] = {dk_unet_params(m), dk_unet_buffers(m)};
    for (int k = 0; k < 2 && ok == 1; k++)
        for (int64_t i = 0; i < p[k]->total; i++)
            if (!isfinite(p[k]->w[i])) ok = 0;
    dk_unet_free(m);
    return ok;
}

/* ------------------------------------------------------------------ NaN / Inf */

/* A run that diverges: no normalisation layers, plain SGD at the largest allowed learning
 * rate, no clipping. It must stop at the first non-finite step naming epoch, step and term;
 * the checkpoint of the last finished epoch stays as it was saved; no model file appears. */
static void set_divergent(dk_train_config *c) {
    const char *s[] = {"model.student_norm=none", "train.lr=10", "train.clip_norm=0",
                       "train.lr_schedule=constant", "train.nesterov=false", NULL};
    for (int i = 0; s[i]; i++) CU_ASSERT_EQUAL(dk_train_config_set(c, s[i]), DK_OK);
}

/* The tensor bytes of a safetensors file (what follows its JSON header) equal another's:
 * checkpoints of the same state differ only in the header's log length, as the wall-time
 * field of steps.jsonl varies in length. */
static int same_tensors(const char *a, const char *b) {
    long na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = 0;
    if (x && y && na >= 8 && nb >= 8) {
        unsigned long long ha = 0, hb = 0;
        for (int i = 7; i >= 0; i--) {
            ha = ha * 256 + (unsigned char)x[i];
            hb = hb * 256 + (unsigned char)y[i];
        }
        long da = ha < (unsigned long long)na ? na - 8 - (long)ha : -1;
        long db = hb < (unsigned long long)nb ? nb - 8 - (long)hb : -1;
        same = da > 0 && da == db && memcmp(x + 8 + ha, y + 8 + hb, (size_t)da) == 0;
    }
    free(x);
    free(y);
    return same;
}

/* Run (or resume) the divergent student into `rdir`; the message is copied to msg. */
static dk_status divergent_run(const char *rdir, int resume, int64_t stop, char *msg, size_t n) {
    dk_train_config c;
    dk_trainer *t = NULL;
    if (base_config(&c, rdir, 10, 1)) return DK_ERR_ARG;
    set_divergent(&c);
    dk_status st = run(&t, &c, DK_TRAINER_STUDENT, resume, stop);
    snprintf(msg, n, "%s", st == DK_OK ? "" : dk_last_error());
    dk_trainer_free(t);
    return st;
}

static void test_nan_loss(void) {
    enum { SPE = 1, EPOCHS = 10 }; /* one step per epoch: the first (finite) step is saved */
    char msg[1024], again[1024];
    CU_ASSERT_EQUAL_FATAL(divergent_run("nan", 0, 0, msg, sizeof msg), DK_ERR_NUMERIC);
    printf("\n  diverging run: %s\n", msg);
    const char *need[] = {"nan", "epoch ", "step ", "non-finite terms: ", "ce",
                          "cases in the batch: ", NULL};
    for (int i = 0; need[i]; i++) {
        int found = strstr(msg, need[i]) != NULL;
        CU_ASSERT(found);
        if (!found) printf("  '%s' not in the message\n", need[i]);
    }
    const char *g = strstr(msg, "\"global_step\": ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    long gs = strtol(g + 15, NULL, 10), done_epochs = gs / SPE;
    /* every step before the bad one is logged, the bad one is not; no model file */
    CU_ASSERT_EQUAL(count_lines(run_file("nan", "steps.jsonl")), gs);
    CU_ASSERT_EQUAL(bad_leftovers("nan", 1), 0);
    /* this set-up must diverge after the first epoch, so there is a checkpoint to protect */
    CU_ASSERT_FATAL(done_epochs >= 1 && done_epochs < EPOCHS);
    CU_ASSERT_FATAL(dk_test_exists(run_file("nan", "checkpoint.safetensors")));
    /* best.safetensors, when a validation came before the failure, holds finite weights */
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "nan", EPOCHS, SPE), 0);
    set_divergent(&c);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    if (dk_test_exists(run_file("nan", "best.safetensors")))
        CU_ASSERT_EQUAL(model_finite(run_file("nan", "best.safetensors"), &c), 1);
    /* the same run stopped after its last good epoch: the checkpoint it wrote then holds the
     * tensors the failed run left */
    CU_ASSERT_EQUAL_FATAL(divergent_run("nan_ref", 0, done_epochs * SPE, again, sizeof again),
                          DK_OK);
    CU_ASSERT(same_tensors(run_file("nan", "checkpoint.safetensors"),
                           run_file("nan_ref", "checkpoint.safetensors")));
    /* that checkpoint loads: resuming from it fails at the same step, and leaves it as it
     * was, byte for byte */
    CU_ASSERT_EQUAL(copy_file(run_file("nan_ref", "checkpoint.safetensors"),
                              run_file("nan_ref", "saved.bin")), 0);
    CU_ASSERT_EQUAL(divergent_run("nan_ref", 1, 0, again, sizeof again), DK_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(again, g));
    CU_ASSERT(same_bytes(run_file("nan_ref", "checkpoint.safetensors"),
                         run_file("nan_ref", "saved.bin")));
    CU_ASSERT_EQUAL(count_lines(run_file("nan_ref", "steps.jsonl")), gs);
    CU_ASSERT_EQUAL(bad_leftovers("nan_ref", 1), 0);
}

/* An image holding NaN or Inf is refused when it is loaded, naming file and case, whatever
 * the normalisation (none and percentile clipping would pass it on silently). */
static void test_nan_image(void) {
    const char *vals[] = {"nan", "inf"};
    const char *norms[] = {"zscore", "none", "percentile_zscore", "ct_window"};
    for (int k = 0; k < 2; k++) {
        dk_volume img = {0};
        char src[1200], name[64];
        snprintf(src, sizeof src, "%s/s01_img.nii.gz", dir);
        CU_ASSERT_EQUAL_FATAL(dk_volume_read(&img, src), DK_OK);
        ((float *)img.data)[5 * NX + 7] = k ? INFINITY : NAN;
        snprintf(name, sizeof name, "%s_img.nii.gz", vals[k]);
        CU_ASSERT_EQUAL_FATAL(write_volume(&img, name), 0);
        dk_volume_free(&img);
        char csvname[32];
        snprintf(csvname, sizeof csvname, "%s.csv", vals[k]);
        const char *p = csv_variant(csvname, NULL, "s01_img.nii.gz", name);
        for (int n = 0; n < 4; n++) {
            dk_train_config c;
            CU_ASSERT_EQUAL_FATAL(base_config(&c, "nan_image", 1, 1), 0);
            set1(&c, "data.cases=%s", p);
            set1(&c, "data.norm=%s", norms[n]);
            const char *need[] = {name, "case 's01'", "1 voxels are NaN or Inf",
                                  "x 7, y 5", NULL};
            expect_fail(&c, "nan_image", DK_TRAINER_TEACHER, DK_ERR_NUMERIC, need);
        }
    }
}

/* ------------------------------------------------------------------ grids and files */

static void test_grids_differ(void) {
    dk_volume lab = {0};
    char src[1200];
    snprintf(src, sizeof src, "%s/s02_lab.nii.gz", dir);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&lab, src), DK_OK);
    /* same size, other spacing; same size, other origin */
    dk_volume v = lab;
    v.geom.spacing[0] = 2;
    CU_ASSERT_EQUAL_FATAL(write_volume(&v, "sp_lab.nii.gz"), 0);
    v = lab;
    v.geom.origin[1] += 5;
    CU_ASSERT_EQUAL_FATAL(write_volume(&v, "org_lab.nii.gz"), 0);
    /* a smaller label map (the first half of the rows) */
    dk_volume half = {0};
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&half, NX, NX / 2, 1, 1, 1, DK_U8), DK_OK);
    memcpy(half.data, lab.data, NX * NX / 2);
    half.geom = lab.geom;
    CU_ASSERT_EQUAL_FATAL(write_volume(&half, "half_lab.nii.gz"), 0);
    dk_volume_free(&half);
    dk_volume_free(&lab);
    const char *files[] = {"sp_lab.nii.gz", "org_lab.nii.gz", "half_lab.nii.gz"};
    const char *field[] = {"different spacing", "different origin", "32x16x1"};
    for (int i = 0; i < 3; i++) {
        dk_train_config c;
        CU_ASSERT_EQUAL_FATAL(base_config(&c, "grids", 1, 1), 0);
        set1(&c, "data.cases=%s", csv_variant("grid.csv", NULL, "s02_lab.nii.gz", files[i]));
        const char *need[] = {"s02_img.nii.gz", files[i], field[i], "case 's02'", NULL};
        expect_fail(&c, "grids", DK_TRAINER_TEACHER, DK_ERR_FORMAT, need);
    }
}

static void test_missing_unreadable(void) {
    dk_train_config c;
    /* listed but absent: the CSV line, the case and the file */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "files", 1, 1), 0);
    set1(&c, "data.cases=%s", csv_variant("gone.csv", NULL, "s03_img.nii.gz", "gone.nii.gz"));
    const char *gone[] = {"gone.csv:5:", "case 's03'", "gone.nii.gz", "does not exist", NULL};
    expect_fail(&c, "files", DK_TRAINER_TEACHER, DK_ERR_IO, gone);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "files", 1, 1), 0);
    set1(&c, "data.cases=%s", csv_variant("gonel.csv", NULL, "s04_lab.nii.gz", "gone_l.nii.gz"));
    const char *gonel[] = {"case 's04'", "column 'label'", "gone_l.nii.gz", NULL};
    expect_fail(&c, "files", DK_TRAINER_TEACHER, DK_ERR_IO, gonel);
    /* present but unreadable: a folder in its place, a file cut short */
    char p[1200];
    snprintf(p, sizeof p, "%s/folder.nii.gz", dir);
    mkdir(p, 0777);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "files", 1, 1), 0);
    set1(&c, "data.cases=%s", csv_variant("folder.csv", NULL, "s03_img.nii.gz", "folder.nii.gz"));
    const char *folder[] = {"folder.csv:5: case 's03'", "folder.nii.gz", NULL};
    expect_fail(&c, "files", DK_TRAINER_TEACHER, DK_ERR_IO, folder);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "head -c 2000 %s/s05_img.nii.gz > %s/cut.nii.gz",
                                     dir, dir), 0);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "files", 1, 1), 0);
    set1(&c, "data.cases=%s", csv_variant("cut.csv", NULL, "s05_img.nii.gz", "cut.nii.gz"));
    const char *cut[] = {"cut.csv:7: case 's05'", "cut.nii.gz", NULL};
    dk_trainer *t = NULL;
    dk_status st = run(&t, &c, DK_TRAINER_TEACHER, 0, 0);
    dk_trainer_free(t);
    CU_ASSERT(st == DK_ERR_IO || st == DK_ERR_FORMAT);
    for (int i = 0; cut[i]; i++) CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), cut[i]));
    CU_ASSERT_EQUAL(bad_leftovers("files", 0), 0);
    /* a label value outside 0..classes-1 names the label file and the case */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "files", 1, 1), 0);
    set1(&c, "data.classes=%s", "3");
    const char *labs[] = {"_lab.nii.gz: label value 3 found in", "case 's00'", NULL};
    expect_fail(&c, "files", DK_TRAINER_TEACHER, DK_ERR_FORMAT, labs);
}

/* The case list itself: unreadable, a required column missing, a column a key names
 * missing, a domain or split with no case. */
static void test_case_lists(void) {
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    char p[1200];
    snprintf(p, sizeof p, "%s/absent.csv", dir);
    set1(&c, "data.cases=%s", p);
    const char *absent[] = {"absent.csv", "cannot open the case list", NULL};
    expect_fail(&c, "lists", DK_TRAINER_TEACHER, DK_ERR_IO, absent);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.cases=%s", dir); /* a folder */
    const char *folder[] = {dir, "case list", NULL};
    expect_fail(&c, "lists", DK_TRAINER_TEACHER, DK_ERR_IO, folder);
    /* no image column */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.cases=%s", csv_variant("noimage.csv", "case,picture,label,dataset,split\n",
                                          NULL, NULL));
    const char *noimg[] = {"noimage.csv:1:", "missing required column 'image'", NULL};
    expect_fail(&c, "lists", DK_TRAINER_TEACHER, DK_ERR_FORMAT, noimg);
    /* the domain column the config names is not in the CSV */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.domain_column=%s", "site");
    const char *nodom[] = {"cases.csv:1:", "no column 'site'", "[data] domain_column", NULL};
    expect_fail(&c, "lists", DK_TRAINER_TEACHER, DK_ERR_ARG, nodom);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.split_column=%s", "fold");
    const char *nosplit[] = {"no column 'fold'", "[data] split_column", NULL};
    expect_fail(&c, "lists", DK_TRAINER_TEACHER, DK_ERR_ARG, nosplit);
    /* a source domain, a target domain, a validation split without cases */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.source=%s", "nowhere");
    const char *nosrc[] = {"no labelled training cases", "dataset = nowhere", NULL};
    expect_fail(&c, "lists", DK_TRAINER_TEACHER, DK_ERR_ARG, nosrc);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.target_split=%s", "none");
    const char *notgt[] = {"no target cases", "split = none", NULL};
    expect_fail(&c, "lists", DK_TRAINER_DISTILL, DK_ERR_ARG, notgt);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists", 1, 1), 0);
    set1(&c, "data.val_split=%s", "holdout");
    const char *noval[] = {"no validation cases", "split = holdout", "validate_every", NULL};
    expect_fail(&c, "lists", DK_TRAINER_STUDENT, DK_ERR_ARG, noval);
    /* ... which validate_every = 0 accepts */
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "lists_noval", 1, 1), 0);
    set1(&c, "data.val_split=%s", "holdout");
    set1(&c, "train.validate_every=%s", "0");
    dk_trainer *t = NULL;
    CU_ASSERT_EQUAL(run(&t, &c, DK_TRAINER_STUDENT, 0, 0), DK_OK);
    dk_trainer_free(t);
}

/* ------------------------------------------------------------------ teachers */

static void test_teacher_checkpoints(void) {
    char cut[1200];
    snprintf(cut, sizeof cut, "%s/teacher_cut.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "head -c 3000 %s > %s", teacher, cut), 0);
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "teachers", 1, 1), 0);
    set1(&c, "model.teacher_checkpoint=%s", cut);
    const char *need[] = {"[model] teacher_checkpoint", "teacher_cut.safetensors", "truncated",
                          NULL};
    expect_fail(&c, "teachers", DK_TRAINER_DISTILL, DK_ERR_FORMAT, need);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "teachers", 1, 1), 0);
    set1(&c, "distill.extra_teachers=%s", cut);
    const char *extra[] = {"[distill] extra_teachers", "teacher_cut.safetensors", NULL};
    expect_fail(&c, "teachers", DK_TRAINER_DISTILL, DK_ERR_FORMAT, extra);
    /* through the command line: a truncated file and a network of another shape */
    char a[4096];
    snprintf(a, sizeof a, "%s distill %s --set model.teacher_checkpoint=%s --set "
             "output.run_dir=%s/teachers", dk_test_cli(), ini, cut, dir);
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "%s", a), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "teacher_cut.safetensors"));
    snprintf(a, sizeof a, "%s distill %s --set model.teacher_base=8 --set "
             "output.run_dir=%s/teachers", dk_test_cli(), ini, dir);
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "%s", a), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "teacher/model.safetensors"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[4, 1, 3, 3]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[8, 1, 3, 3]"));
    CU_ASSERT_EQUAL(bad_leftovers("teachers", 0), 0);
    /* a teacher inside the run folder under an output's name is refused, untouched: the run
     * would replace it with the student */
    char inside[1200], keep[1200];
    snprintf(inside, sizeof inside, "%s/self_over/model.safetensors", dir);
    snprintf(keep, sizeof keep, "%s/teacher_copy.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s/self_over && cp %s %s && cp %s %s",
                                     dir, teacher, inside, teacher, keep), 0);
    snprintf(a, sizeof a, "%s distill %s --set model.teacher_checkpoint=%s --set "
             "output.run_dir=%s/self_over", dk_test_cli(), ini, inside, dir);
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "%s", a), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "which is [model] teacher_checkpoint"));
    CU_ASSERT(same_bytes(inside, keep));
    CU_ASSERT(!dk_test_exists(run_file("self_over", "config.ini")));
}

/* Extra teachers are read with their own shape: one of another width, norm and up-sampling
 * distils from the command line; one with other classes is refused, naming file and field. */
static void test_extra_teacher_shapes(void) {
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "extra", 1, 1), 0);
    char wide[1200], other[1200], a[4096];
    snprintf(wide, sizeof wide, "%s/teacher_wide.safetensors", dir);
    snprintf(other, sizeof other, "%s/teacher_classes.safetensors", dir);
    dk_unet_config g = c.teacher;
    g.dims = c.dims, g.in_channels = c.in_channels, g.classes = c.classes;
    g.base *= 2, g.norm = DK_NORM_INSTANCE, g.up = DK_UP_INTERP;
    for (int k = 0; k < 2; k++) {
        dk_unet *net = NULL;
        dk_rng r;
        dk_rng_seed(&r, 5);
        if (k) g.classes += 1;
        CU_ASSERT_EQUAL_FATAL(dk_unet_create(&net, &g, 0, &r), DK_OK);
        CU_ASSERT_EQUAL(dk_unet_save(net, k ? other : wide, NULL), DK_OK);
        dk_unet_free(net);
    }
    set1(&c, "distill.extra_teachers=%s", other);
    const char *need[] = {"[distill] extra_teachers", "teacher_classes.safetensors", "classes",
                          NULL};
    expect_fail(&c, "extra", DK_TRAINER_DISTILL, DK_ERR_ARG, need);
    snprintf(a, sizeof a, "%s distill %s --set distill.extra_teachers=%s --set "
             "distill.teacher_combine=confidence --set distill.teacher_weights=1,0.5 --set "
             "train.epochs=1 --set train.steps_per_epoch=2 --set output.run_dir=%s/extra_ok",
             dk_test_cli(), ini, wide, dir);
    int rc = dk_test_sh(out, sizeof out, "%s", a);
    if (rc != 0) printf("\n%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(dk_test_exists(run_file("extra_ok", "model.safetensors")));
}

/* Pool strides that disagree with the teacher's file or between the two networks: the
 * teacher's [model] teacher_pool reaches its loader (its up-sampling tensors have another
 * shape), and attention transfer between enc<l> grids that do not divide is refused. */
static void test_pool_strides(void) {
    dk_train_config c;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "pools", 1, 1), 0);
    set1(&c, "model.teacher_pool=%s", "1,2,1; 1,2,2");
    const char *shape[] = {"a checkpoint of the [model] teacher_* network", "up0.weight", NULL};
    expect_fail(&c, "pools", DK_TRAINER_DISTILL, DK_ERR_FORMAT, shape);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "pools", 1, 1), 0);
    set1(&c, "model.student_levels=%s", "3");
    set1(&c, "model.student_pool=%s", "1,1,2; 1,2,1");
    set1(&c, "distill.lambda_at=%s", "1");
    const char *grid[] = {"[distill] lambda_at: enc1 is 1x32x16 in the student, 1x16x16 in the "
                          "teacher", NULL};
    expect_fail(&c, "pools", DK_TRAINER_DISTILL, DK_ERR_ARG, grid);
}

/* ------------------------------------------------------------------ modes */

/* A command through the binary; its exit code, output in `out`. */
static int dakd(const char *fmt, const char *a1, const char *a2) {
    char args[4096];
    snprintf(args, sizeof args, fmt, a1, a2);
    return dk_test_sh(out, sizeof out, "%s %s", dk_test_cli(), args);
}

static void test_oracle(void) {
    char rd[1200];
    snprintf(rd, sizeof rd, "%s/oracle", dir);
    CU_ASSERT_EQUAL(dakd("train %s --oracle --set train.epochs=2 --set train.steps_per_epoch=2 "
                         "--set output.run_dir=%s", ini, rd), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "oracle run: trained on TARGET labels"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "oracle (TARGET labels) epoch 1/2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "upper bound"));
    long n;
    char *log = slurp(run_file("oracle", "steps.jsonl"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    int lines = 0;
    for (char *p = log; (p = strstr(p, "{\"mode\":\"oracle\"")); p++) lines++;
    CU_ASSERT_EQUAL(lines, 4);
    free(log);
    /* it reads target labels: without them it stops, naming a target case */
    const char *p = csv_variant("nolab_t.csv", NULL, "t08_lab.nii.gz", "");
    char args[2400];
    snprintf(args, sizeof args, "--set data.cases=%s --set output.run_dir=%s_nolab", p, rd);
    CU_ASSERT_EQUAL(dakd("train %s --oracle %s", ini, args), 0 + DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "case 't08' (domain tgt) has no label"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nolab_t.csv:10:"));
}

static void test_distill_never_reads_target_labels(void) {
    /* every target label file replaced by a label map with values outside 0..3: distill
     * runs, as it never opens them; the oracle refuses them */
    dk_volume lab = {0};
    char src[1200];
    snprintf(src, sizeof src, "%s/t08_lab.nii.gz", dir);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&lab, src), DK_OK);
    memset(lab.data, 9, (size_t)dk_volume_numel(&lab));
    CU_ASSERT_EQUAL_FATAL(write_volume(&lab, "bad_tlab.nii.gz"), 0);
    dk_volume_free(&lab);
    const char *p = csv_variant("badt.csv", NULL, "t08_lab.nii.gz", "bad_tlab.nii.gz");
    dk_train_config c;
    dk_trainer *t = NULL;
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "tlabels", 1, 2), 0);
    set1(&c, "data.cases=%s", p);
    dk_status st = run(&t, &c, DK_TRAINER_DISTILL, 0, 0);
    if (st != DK_OK) printf("\n  distill: %s\n", dk_last_error());
    CU_ASSERT_EQUAL(st, DK_OK);
    dk_trainer_free(t);
    CU_ASSERT_EQUAL_FATAL(base_config(&c, "tlabels_oracle", 1, 2), 0);
    set1(&c, "data.cases=%s", p);
    const char *need[] = {"bad_tlab.nii.gz: label value 9", "case 't08'", NULL};
    expect_fail(&c, "tlabels_oracle", DK_TRAINER_ORACLE, DK_ERR_FORMAT, need);
}

/* The "align" value of every line of steps.jsonl: count of finite values >= 0 and > 0. */
static void align_values(const char *path, int *finite, int *positive) {
    long n;
    char *b = slurp(path, &n);
    *finite = *positive = 0;
    for (char *p = b; p && (p = strstr(p, "\"align\":")); p++) {
        double v = strtod(p + 8, NULL);
        *finite += isfinite(v) && v >= 0;
        *positive += isfinite(v) && v > 0;
    }
    free(b);
}

static void test_coral(void) {
    char rd[1200];
    snprintf(rd, sizeof rd, "%s/coral", dir);
    CU_ASSERT_EQUAL(dakd("distill %s --set distill.align=coral --set distill.lambda_align=1 "
                         "--set train.epochs=2 --set train.steps_per_epoch=3 --set "
                         "output.run_dir=%s", ini, rd), 0);
    int fin, pos;
    align_values(run_file("coral", "steps.jsonl"), &fin, &pos);
    CU_ASSERT_EQUAL(fin, 6);
    CU_ASSERT_EQUAL(pos, 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "epoch 2/2"));
}

/* ------------------------------------------------------------------ command line */

static void test_cli_config(void) {
    char rd[1200], bad[1200];
    /* --set before and after CONFIG both apply (CONFIG loads first) */
    snprintf(rd, sizeof rd, "%s/cli_set", dir);
    CU_ASSERT_EQUAL(dakd("train --set train.epochs=1 %s --set train.steps_per_epoch=2 "
                         "--set output.run_dir=%s", ini, rd), 0);
    dk_train_config c, c2;
    dk_train_config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(dk_train_config_load(&c, run_file("cli_set", "config.ini")), DK_OK);
    CU_ASSERT_EQUAL(c.epochs, 1);
    CU_ASSERT_EQUAL(c.steps_per_epoch, 2);
    CU_ASSERT_EQUAL(c.batch_size, 4);
    CU_ASSERT_EQUAL(c.student.base, 4);
    CU_ASSERT_STRING_EQUAL(c.run_dir, rd);
    CU_ASSERT_EQUAL(count_lines(run_file("cli_set", "steps.jsonl")), 2);
    /* the effective config reloads to the same values: written again, the same bytes */
    CU_ASSERT_EQUAL(dk_train_config_validate(&c), DK_OK);
    char again[1300];
    snprintf(again, sizeof again, "%s/again.ini", rd);
    CU_ASSERT_EQUAL(dk_train_config_write(&c, again), DK_OK);
    CU_ASSERT(same_bytes(again, run_file("cli_set", "config.ini")));
    /* ... and the run is the one the base config and the overrides describe */
    CU_ASSERT_EQUAL_FATAL(base_config(&c2, "cli_set", 1, 2), 0);
    CU_ASSERT_EQUAL(dk_train_config_validate(&c2), DK_OK);
    CU_ASSERT_EQUAL(dk_train_config_write(&c2, again), DK_OK);
    CU_ASSERT(same_bytes(again, run_file("cli_set", "config.ini")));
    /* an unknown --set key: the usage exit code, the key named; nothing run */
    CU_ASSERT_EQUAL(dakd("train %s --set train.no_such_key=1 --set output.run_dir=%s_x", ini, rd),
                    0 + DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "train.no_such_key"));
    CU_ASSERT_EQUAL(dakd("distill %s --set distill.alpha=2 --set output.run_dir=%s_x", ini, rd),
                    0 + DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "alpha"));
    CU_ASSERT(!dk_test_exists(run_file("cli_set_x", "")));
    /* an unknown key in the file: file and line */
    snprintf(bad, sizeof bad, "%s/bad.ini", dir);
    FILE *f = fopen(bad, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "[data]\nclasses = 4\n\n[train]\nepochs = 1\nlearning_rate = 0.1\n");
    fclose(f);
    CU_ASSERT_EQUAL(dakd("train %s --set output.run_dir=%s_x", bad, rd), 0 + DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bad.ini:6"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "learning_rate"));
    CU_ASSERT_EQUAL(dakd("distill %s/none.ini --set output.run_dir=%s_x", dir, rd),
                    0 + DK_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "none.ini"));
}

/* Every loss term, T, mix, alpha, lr, gnorm and seconds in each per-epoch line. */
static int epoch_lines_complete(const char *text, int epochs) {
    const char *keys[] = {"loss ", "kd ", "sup ", "ce ", "dice ", "at ", "hint ", "align ",
                          "ent ", "T ", "mix ", "alpha ", "lr ", "gnorm ", "val_dice ", NULL};
    int good = 0;
    for (int e = 1; e <= epochs; e++) {
        char head[64];
        snprintf(head, sizeof head, "epoch %d/%d ", e, epochs);
        const char *l = strstr(text, head);
        if (!l) continue;
        const char *end = strchr(l, '\n');
        int all = end != NULL;
        for (int k = 0; keys[k] && all; k++) {
            const char *p = strstr(l, keys[k]);
            all = p && p < end && isfinite(strtod(p + strlen(keys[k]), NULL));
        }
        /* the seconds close the line: "  0.1s" */
        all = all && end - l > 3 && end[-1] == 's' && (end[-2] >= '0' && end[-2] <= '9');
        good += all;
    }
    return good;
}

static const char *jsonl_keys[] = {"\"mode\":", "\"epoch\":", "\"step\":", "\"global_step\":",
                                   "\"loss\":", "\"kd\":", "\"sup\":", "\"ce\":", "\"dice\":",
                                   "\"at\":", "\"hint\":", "\"align\":", "\"ent\":", "\"T\":",
                                   "\"mix\":", "\"alpha\":", "\"lr\":", "\"grad_norm\":",
                                   "\"ns\":", "\"nt\":", "\"sec\":", NULL};

/* Lines of steps.jsonl that hold every key. */
static int complete_jsonl_lines(const char *path) {
    long n;
    char *b = slurp(path, &n);
    int good = 0;
    for (char *line = b; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = '\0';
        int all = 1;
        for (int k = 0; jsonl_keys[k] && all; k++) all = strstr(line, jsonl_keys[k]) != NULL;
        good += all;
        line = nl + 1;
    }
    free(b);
    return good;
}

/* every optional term on: AT, FitNets hint (enc0 is on the same grid in both networks), the
 * EMA teacher, entropy; MMD alignment is on by default */
static const char *distill_args = "--set distill.lambda_at=1 --set distill.lambda_hint=0.5 "
                                  "--set distill.hint_tap=enc0 --set distill.self_distill=ema "
                                  "--set distill.lambda_ent=0.01 --set train.epochs=3 "
                                  "--set train.steps_per_epoch=3";

static void test_cli_logs_resume_determinism(void) {
    char rd[1200], args[2400];
    snprintf(rd, sizeof rd, "%s/cli_a", dir);
    snprintf(args, sizeof args, "%s --set output.run_dir=%s", distill_args, rd);
    CU_ASSERT_EQUAL_FATAL(dakd("distill %s %s", ini, args), 0);
    CU_ASSERT_EQUAL(epoch_lines_complete(out, 3), 3);
    if (epoch_lines_complete(out, 3) != 3) printf("\n%s\n", out);
    CU_ASSERT_EQUAL(count_lines(run_file("cli_a", "steps.jsonl")), 9);
    CU_ASSERT_EQUAL(complete_jsonl_lines(run_file("cli_a", "steps.jsonl")), 9);
    /* the same seed and threads: the same log bytes once "sec" is cut */
    snprintf(rd, sizeof rd, "%s/cli_b", dir);
    snprintf(args, sizeof args, "%s --set output.run_dir=%s", distill_args, rd);
    CU_ASSERT_EQUAL_FATAL(dakd("distill %s %s", ini, args), 0);
    char *la = without_sec(run_file("cli_a", "steps.jsonl"));
    char *lb = without_sec(run_file("cli_b", "steps.jsonl"));
    CU_ASSERT(la && lb && strcmp(la, lb) == 0);
    CU_ASSERT(same_bytes(run_file("cli_a", "model.safetensors"),
                         run_file("cli_b", "model.safetensors")));
    /* ... and another seed gives another log (the comparison can fail) */
    snprintf(rd, sizeof rd, "%s/cli_seed", dir);
    snprintf(args, sizeof args, "%s --set train.seed=7 --set output.run_dir=%s", distill_args,
             rd);
    CU_ASSERT_EQUAL_FATAL(dakd("distill %s %s", ini, args), 0);
    char *ls = without_sec(run_file("cli_seed", "steps.jsonl"));
    CU_ASSERT(la && ls && strcmp(la, ls) != 0);
    free(ls);
    free(lb);
    /* killed after 4 steps (epoch 2 of 3), resumed: the same model and log as run a */
    snprintf(rd, sizeof rd, "%s/cli_r", dir);
    snprintf(args, sizeof args, "%s --set output.run_dir=%s", distill_args, rd);
    CU_ASSERT_EQUAL_FATAL(dakd("distill %s %s --stop-after 4", ini, args), 0);
    CU_ASSERT(!dk_test_exists(run_file("cli_r", "model.safetensors")));
    CU_ASSERT_EQUAL_FATAL(dakd("distill %s %s --resume", ini, args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "resuming"));
    CU_ASSERT(same_bytes(run_file("cli_a", "model.safetensors"),
                         run_file("cli_r", "model.safetensors")));
    lb = without_sec(run_file("cli_r", "steps.jsonl"));
    CU_ASSERT(la && lb && strcmp(la, lb) == 0);
    free(la);
    free(lb);
    /* --resume with another seed is refused, naming the key; the run's files stay */
    CU_ASSERT_EQUAL(copy_file(run_file("cli_r", "config.ini"), run_file("cli_a", "r.ini")), 0);
    CU_ASSERT_EQUAL(dakd("distill %s %s --set train.seed=8 --resume", ini, args), 0 + DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "seed"));
    CU_ASSERT(same_bytes(run_file("cli_r", "config.ini"), run_file("cli_a", "r.ini")));
    CU_ASSERT(same_bytes(run_file("cli_a", "model.safetensors"),
                         run_file("cli_r", "model.safetensors")));
}

/* [data] batch_size counts the patches of a step in all: distill takes round(r(e) B)
 * source patches and B - that target patches (no alignment, so no clamp to [2, B-2]). */
static void test_batch_size_meaning(void) {
    char rd[1200];
    snprintf(rd, sizeof rd, "%s/batch", dir);
    CU_ASSERT_EQUAL_FATAL(dakd("distill %s --set distill.align=none --set data.batch_size=5 "
                               "--set train.epochs=2 --set train.steps_per_epoch=1 --set "
                               "distill.mix_r0=0.8 --set distill.mix_delta=0.4 --set "
                               "output.run_dir=%s", ini, rd), 0);
    long n;
    char *b = slurp(run_file("batch", "steps.jsonl"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* epoch 0: r = 0.8, 4 source + 1 target; epoch 1: r = 0.4, 2 source + 3 target */
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\"mix\":0.8,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\"ns\":4,\"nt\":1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\"mix\":0.4,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\"ns\":2,\"nt\":3,"));
    free(b);
    CU_ASSERT_EQUAL(dakd("train --help%s%s", "", ""), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "patches per step in all"));
    CU_ASSERT_PTR_NULL(strstr(out, "per step and domain"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("train.trainer_errors", suite_init, NULL);
    if (!s || !CU_add_test(s, "a diverging run stops at the first NaN step", test_nan_loss) ||
        !CU_add_test(s, "NaN/Inf voxels are refused at load", test_nan_image) ||
        !CU_add_test(s, "image and label grids that differ", test_grids_differ) ||
        !CU_add_test(s, "missing and unreadable files", test_missing_unreadable) ||
        !CU_add_test(s, "case lists, domains and splits", test_case_lists) ||
        !CU_add_test(s, "teacher checkpoints", test_teacher_checkpoints) ||
        !CU_add_test(s, "extra teachers of other shapes", test_extra_teacher_shapes) ||
        !CU_add_test(s, "pool strides of the teacher and the student", test_pool_strides) ||
        !CU_add_test(s, "the oracle says so", test_oracle) ||
        !CU_add_test(s, "distill never reads target labels",
                     test_distill_never_reads_target_labels) ||
        !CU_add_test(s, "CORAL alignment logs a finite term", test_coral) ||
        !CU_add_test(s, "CLI: --set, unknown keys, the effective config", test_cli_config) ||
        !CU_add_test(s, "CLI: logs, determinism, resume", test_cli_logs_resume_determinism) ||
        !CU_add_test(s, "batch_size counts the patches of a step", test_batch_size_meaning)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
