/* dakd eval: pairing, cases.csv / summary.json / summary.md / report.html on generated 2-D
 * PNG and 3-D NIfTI cases with known overlaps, refusals that leave --out untouched, the
 * paired comparison against scipy.stats.wilcoxon, the command line, and the page rendered
 * by headless Chromium. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dakd/eval.h"
#include "test_util.h"

static char out[1 << 16];
static const char *root; /* scratch folder of this suite */

/* ---------------------------------------------------------------- fixtures */

static char *path_of(const char *dir, const char *name) {
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, 4096, "%s/%s/%s", root, dir, name);
    return b;
}

static void mkdirs(const char *rel) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s", root, rel);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "%s", cmd), 0);
}

/* Fill the box [x0,x1)×[y0,y1)×[z0,z1) of v with `label`. */
static void box(dk_volume *v, int64_t x0, int64_t x1, int64_t y0, int64_t y1, int64_t z0,
                int64_t z1, double label) {
    for (int64_t z = z0; z < z1; z++)
        for (int64_t y = y0; y < y1; y++)
            for (int64_t x = x0; x < x1; x++)
                dk_volume_set(v, (z * v->ny + y) * v->nx + x, label);
}

static void write_vol(dk_volume *v, const char *dir, const char *name) {
    CU_ASSERT_EQUAL_FATAL(dk_volume_write(v, path_of(dir, name), NULL), DK_OK);
    dk_volume_free(v);
}

/* 2-D cases in d2/{pred,ref}: "a" (label 1 square shifted by 2 px: Dice 0.8), "b" (exact,
 * labels 1 and 2, prediction named b_pred.png), "c" (empty prediction: flagged). */
static void make_2d(void) {
    mkdirs("d2/pred");
    mkdirs("d2/ref");
    dk_volume v;
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    box(&v, 5, 15, 5, 15, 0, 1, 1);
    write_vol(&v, "d2/ref", "a.png");
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    box(&v, 7, 17, 5, 15, 0, 1, 1);
    write_vol(&v, "d2/pred", "a.png");
    for (int s = 0; s < 2; s++) {
        dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
        box(&v, 4, 12, 4, 20, 0, 1, 1);
        box(&v, 18, 26, 10, 28, 0, 1, 2);
        write_vol(&v, s ? "d2/pred" : "d2/ref", s ? "b_pred.png" : "b.png");
    }
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    box(&v, 10, 20, 10, 20, 0, 1, 1);
    write_vol(&v, "d2/ref", "c.png");
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    write_vol(&v, "d2/pred", "c.png");
}

/* 3-D NIfTI cases in d3/{pred,ref,img}: a 12³ cube and a smaller label-2 block, the
 * prediction's cube shifted by `shift` voxels along x; images are a gradient plus the
 * labels' brightness. Spacing 1 × 1 × 2 mm. */
static void make_3d(const char *sub, int n_cases, const double *shifts) {
    char d[256];
    for (int i = 0; i < n_cases; i++) {
        char name[64];
        snprintf(name, sizeof name, "p%d.nii.gz", i);
        for (int kind = 0; kind < 3; kind++) {
            dk_volume v;
            dk_volume_alloc(&v, 40, 36, 16, 1, 1, kind == 2 ? DK_F32 : DK_U8);
            v.geom.spacing[2] = 2.0;
            if (kind == 2)
                for (int64_t k = 0; k < dk_volume_numel(&v); k++)
                    dk_volume_set(&v, k, 100.0 + 2.0 * (double)(k % 40) + (double)(k % 7));
            int64_t s = kind == 0 ? (int64_t)shifts[i] : 0;
            double l1 = kind == 2 ? 400.0 : 1.0, l2 = kind == 2 ? 700.0 : 2.0;
            box(&v, 8 + s, 20 + s, 10, 22, 2, 14, l1);
            if (kind != 0 || i % 2 == 0) box(&v, 26, 32, 4, 10, 4 + i % 3, 9, l2);
            snprintf(d, sizeof d, "%s/%s", sub, kind == 0 ? "pred" : kind == 1 ? "ref" : "img");
            mkdirs(d);
            write_vol(&v, d, name);
        }
    }
}

static int setup(void) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/report", dk_test_tmpdir());
    root = buf;
    if (dk_test_sh(NULL, 0, "rm -rf %s && mkdir -p %s", root, root) != 0) return 1;
    return 0;
}

static char *slurp(const char *p) { return dk_test_slurp(p); }

static int count_str(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Entries of `dir` whose name contains `part`. */
static int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, part)) n++;
    if (d) closedir(d);
    return n;
}

static dk_eval_opts opts_for(const char *sub, const char *outname) {
    static char bufs[4][3][4096];
    static int slot;
    char (*b)[4096] = bufs[slot++ & 3];
    snprintf(b[0], 4096, "%s/%s/pred", root, sub);
    snprintf(b[1], 4096, "%s/%s/ref", root, sub);
    snprintf(b[2], 4096, "%s/%s", root, outname);
    dk_eval_opts o;
    memset(&o, 0, sizeof o);
    dk_metric_defaults(&o.metric);
    o.pred_dir = b[0], o.ref_dir = b[1], o.out_dir = b[2];
    return o;
}

/* The cases.csv cell of (case, label, column); NAN when absent, *found = 0. */
static double csv_cell(const char *csv, const char *case_id, int label, const char *col,
                       int *found) {
    *found = 0;
    const char *nl = strchr(csv, '\n');
    int ci = -1, k = 0;
    for (const char *p = csv; p < nl; k++) {
        const char *e = p + strcspn(p, ",\n");
        if ((size_t)(e - p) == strlen(col) && !strncmp(p, col, (size_t)(e - p))) ci = k;
        p = *e == ',' ? e + 1 : e;
    }
    for (const char *line = nl + 1; ci >= 0 && *line; line = strchr(line, '\n') + 1) {
        char id[256];
        int lab;
        if (sscanf(line, "%255[^,],%d", id, &lab) == 2 && !strcmp(id, case_id) && lab == label) {
            const char *p = line;
            for (int j = 0; j < ci; j++) p = strchr(p, ',') + 1;
            *found = 1;
            return strncmp(p, "nan", 3) == 0 ? NAN : strtod(p, NULL);
        }
        if (!strchr(line, '\n')) break;
    }
    return NAN;
}

/* ---------------------------------------------------------------- a 2-D run */

static void test_run_2d(void) {
    make_2d();
    dk_eval_opts o = opts_for("d2", "out2");
    dk_eval_results res;
    o.title = "2-D <check> & escape";
    o.results = &res;
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *csv = slurp(path_of("out2", "cases.csv"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    int f;
    /* the per-case metrics handed back are the report's, in its order */
    CU_ASSERT_EQUAL_FATAL(res.n_cases, 3);
    CU_ASSERT_EQUAL_FATAL(res.n_labels, 2);
    CU_ASSERT(res.labels[0] == 1 && res.labels[1] == 2);
    CU_ASSERT_STRING_EQUAL(res.ids[0], "a");
    CU_ASSERT_STRING_EQUAL(res.ids[2], "c");
    CU_ASSERT_EQUAL(res.m[0].dice, csv_cell(csv, "a", 1, "dice", &f));
    CU_ASSERT_EQUAL(res.m[0].tp, 80);
    CU_ASSERT(res.m[2 * 2 + 0].flagged && isnan(res.m[2 * 2 + 0].hd95));
    dk_eval_results_free(&res);
    CU_ASSERT(res.n_cases == 0 && res.m == NULL);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "dice", &f), 0.8, 1e-15);
    CU_ASSERT(f);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "tp", &f), 80, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "fp", &f), 20, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "b", 2, "dice", &f), 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 2, "dice", &f), 1.0, 0); /* both empty */
    CU_ASSERT(isnan(csv_cell(csv, "c", 1, "hd95", &f)) && f);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "c", 1, "flagged", &f), 1, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "c", 1, "dice", &f), 0, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "case,label,tp,fp,fn,tn,n_pred,n_ref,n_bpred,n_bref,"));
    CU_ASSERT_EQUAL(count_str(csv, "\n"), 1 + 3 * 2); /* header + 3 cases × labels 1, 2 */
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",nan,"));
    free(csv);

    char *js = slurp(path_of("out2", "summary.json"));
    cJSON *j = cJSON_Parse(js);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *s1 = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "summary"), "1");
    cJSON *dice = cJSON_GetObjectItem(s1, "dice"), *hd = cJSON_GetObjectItem(s1, "hd");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(dice, "n")->valueint, 3);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(dice, "flagged")->valueint, 1);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(dice, "mean")->valuedouble, 1.8 / 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(dice, "median")->valuedouble, 0.8, 1e-12);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(hd, "n")->valueint, 2);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(hd, "nan")->valueint, 1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(j, "labels")), 2);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(j, "flagged")), 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j,
                           "flagged"), 0), "case")->valuestring, "c");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "hd95_definition")->valuestring,
                           DK_EVAL_HD95_NAME);
    CU_ASSERT_PTR_NOT_NULL(strstr(cJSON_GetObjectItem(j, "convention")->valuestring,
                                  "Dice = 2TP/(2TP+FP+FN)"));
    cJSON_Delete(j);
    free(js);

    char *md = slurp(path_of("out2", "summary.md"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| label | dice | iou | hd95 (mm) |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "n=3, flagged=1"));
    free(md);

    char *html = slurp(path_of("out2", "report.html"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Dice = 2TP/(2TP+FP+FN)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "pooled (MedPy): 95th percentile, numpy linear"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<svg"));
    CU_ASSERT_EQUAL(count_str(html, "data:image/png;base64,"), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "2-D &lt;check&gt; &amp; escape"));
    CU_ASSERT_PTR_NULL(strstr(html, "<check>"));
    free(html);
    CU_ASSERT_EQUAL(count_entries(root, ".tmp"), 0);
}

/* Masks ("_mask" names) count only their voxels; "*_probs.*" predictions and other files
 * are not cases. */
static void test_mask_and_skipped_files(void) {
    mkdirs("d2m/mask");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "cp -r %s/d2/pred %s/d2/ref %s/d2m/ && echo x > "
                                     "%s/d2m/pred/a_probs.nii.gz && echo x > %s/d2m/ref/notes.txt",
                                     root, root, root, root, root), 0);
    const char *ids[3] = {"a_mask.png", "b_mask.png", "c.png"};
    for (int i = 0; i < 3; i++) {
        dk_volume v;
        dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
        box(&v, 0, 16, 0, 32, 0, 1, 1); /* the left half */
        write_vol(&v, "d2m/mask", ids[i]);
    }
    dk_eval_opts o = opts_for("d2m", "outm");
    char mask[4096];
    snprintf(mask, sizeof mask, "%s/d2m/mask", root);
    o.mask_dir = mask;
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *csv = slurp(path_of("outm", "cases.csv"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    int f;
    /* a: reference x 5..14, prediction x 7..16, mask x < 16: TP 80, FP 10, FN 20 */
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "tp", &f), 80, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "fp", &f), 10, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "tn", &f), 16 * 32 - 110, 0);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "a", 1, "dice", &f), 160.0 / 190.0, 1e-15);
    CU_ASSERT_EQUAL(count_str(csv, "\n"), 1 + 3 * 2);
    free(csv);
    char *js = slurp(path_of("outm", "summary.json"));
    CU_ASSERT(js && strstr(js, "d2m/mask"));
    free(js);
}

/* ---------------------------------------------------------------- a 3-D run with images */

static void test_run_3d(void) {
    const double shifts[6] = {0, 1, 2, 3, 1, 4};
    make_3d("d3", 6, shifts);
    dk_eval_opts o = opts_for("d3", "out3");
    char img[4096];
    snprintf(img, sizeof img, "%s/d3/img", root);
    o.image_dir = img;
    o.title = "3-D phantom cubes";
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *csv = slurp(path_of("out3", "cases.csv"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    int f;
    /* 12³ cube shifted by 2 along x: TP = 10·12·12, Dice = 2·10/24 */
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "p2", 1, "dice", &f), 20.0 / 24.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "p2", 1, "vol_ref_mm3", &f), 12.0 * 12 * 12 * 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(csv_cell(csv, "p1", 2, "flagged", &f), 1, 0); /* no label 2 */
    free(csv);
    char *html = slurp(path_of("out3", "report.html"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_EQUAL(count_str(html, "data:image/png;base64,"), 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "slice z="));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "windowed to its 1st–99th"));
    free(html);
}

/* ---------------------------------------------------------------- refusals */

/* A failing run: non-zero status, a message holding every word of `want`, out2 unchanged
 * (the report of test_run_2d), no temporary folder left. */
static void expect_refusal(dk_eval_opts *o, const char *const *want, int n_want) {
    char *before = slurp(path_of("out2", "summary.json"));
    dk_eval_results res;
    memset(&res, 0xff, sizeof res);
    o->out_dir = dk_test_path(root, "out2");
    o->results = &res;
    dk_status st = dk_eval_run(o);
    CU_ASSERT_NOT_EQUAL(st, DK_OK);
    CU_ASSERT(res.n_cases == 0 && res.ids == NULL && res.m == NULL); /* nothing handed back */
    o->results = NULL;
    for (int i = 0; i < n_want; i++) {
        int ok = strstr(dk_last_error(), want[i]) != NULL;
        CU_ASSERT(ok);
        if (!ok) printf("\n    message '%s' lacks '%s'\n", dk_last_error(), want[i]);
    }
    char *after = slurp(path_of("out2", "summary.json"));
    CU_ASSERT(before && after && strcmp(before, after) == 0);
    free(before), free(after);
    CU_ASSERT_EQUAL(count_entries(root, ".tmp"), 0);
}

static void test_refusals(void) {
    dk_volume v;
    /* unmatched files on both sides */
    mkdirs("bad1/pred");
    mkdirs("bad1/ref");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "cp %s/d2/pred/* %s/bad1/pred/ && cp %s/d2/ref/* "
                                     "%s/bad1/ref/", root, root, root, root), 0);
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    write_vol(&v, "bad1/pred", "extra_pred_only.png");
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    write_vol(&v, "bad1/ref", "lonely_ref.png");
    dk_eval_opts o = opts_for("bad1", "x");
    const char *w1[] = {"extra_pred_only.png", "lonely_ref.png", "without a reference",
                        "without a prediction"};
    expect_refusal(&o, w1, 4);

    /* mismatched grids: the case is named */
    mkdirs("bad2/pred");
    mkdirs("bad2/ref");
    dk_volume_alloc(&v, 32, 32, 1, 1, 1, DK_U8);
    box(&v, 3, 9, 3, 9, 0, 1, 1);
    write_vol(&v, "bad2/ref", "gridcase.png");
    dk_volume_alloc(&v, 30, 32, 1, 1, 1, DK_U8);
    write_vol(&v, "bad2/pred", "gridcase.png");
    o = opts_for("bad2", "x");
    const char *w2[] = {"gridcase"};
    expect_refusal(&o, w2, 1);

    /* non-integer labels, found while collecting the labels and by the metrics */
    mkdirs("bad3/pred");
    mkdirs("bad3/ref");
    dk_volume_alloc(&v, 16, 16, 4, 1, 1, DK_F32);
    box(&v, 3, 9, 3, 9, 1, 3, 1.5);
    write_vol(&v, "bad3/ref", "halfcase.nii.gz");
    dk_volume_alloc(&v, 16, 16, 4, 1, 1, DK_U8);
    write_vol(&v, "bad3/pred", "halfcase.nii.gz");
    o = opts_for("bad3", "x");
    const char *w3[] = {"halfcase", "halfcase.nii.gz"};
    expect_refusal(&o, w3, 2);
    static const int one[] = {1};
    o = opts_for("bad3", "x");
    o.labels = one, o.n_labels = 1;
    expect_refusal(&o, w3, 2);

    /* an unreadable file */
    mkdirs("bad4/pred");
    mkdirs("bad4/ref");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "cp %s/d2/pred/* %s/bad4/pred/ && cp %s/d2/ref/* "
                                     "%s/bad4/ref/ && head -c 60 %s/d2/ref/a.png > "
                                     "%s/bad4/ref/broken.png && cp %s/bad4/pred/a.png "
                                     "%s/bad4/pred/broken.png", root, root, root, root, root,
                                     root, root, root), 0);
    o = opts_for("bad4", "x");
    const char *w4[] = {"broken", "broken.png"};
    expect_refusal(&o, w4, 2);

    /* --out that is not a dakd eval folder is refused before any work, and left alone */
    mkdirs("notours");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "echo keep > %s/notours/file.txt", root), 0);
    o = opts_for("d2", "notours");
    CU_ASSERT_EQUAL(dk_eval_run(&o), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "not a dakd eval output"));
    CU_ASSERT(dk_test_exists(path_of("notours", "file.txt")));
    CU_ASSERT(!dk_test_exists(path_of("notours", "cases.csv")));

    /* a previous dakd eval folder is replaced whole; an empty folder is used */
    o = opts_for("d2", "out2");
    o.title = "replaced";
    CU_ASSERT_EQUAL(dk_eval_run(&o), DK_OK);
    char *md = slurp(path_of("out2", "summary.md"));
    CU_ASSERT(md && strstr(md, "# replaced"));
    free(md);
    mkdirs("empty_out");
    o = opts_for("d2", "empty_out");
    CU_ASSERT_EQUAL(dk_eval_run(&o), DK_OK);
    CU_ASSERT(dk_test_exists(path_of("empty_out", "report.html")));
    CU_ASSERT_EQUAL(count_entries(root, ".tmp"), 0);
}

/* ---------------------------------------------------------------- --compare */

/* Hand-made cases.csv files for runs A and B with chosen values: 14 cases of label 1 and
 * 3; dice differences distinct and non-zero (scipy: exact p), hd95 differences with zeros
 * and a NaN pair (normal approximation). */
static void write_run_csv(const char *run, int which) {
    mkdirs(run);
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    FILE *f = fopen(path_of(run, "cases.csv"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "case,label,tp,fp,fn,tn,n_pred,n_ref,n_bpred,n_bref");
    for (int j = 0; j < nc; j++) fprintf(f, ",%s", cols[j].name);
    fprintf(f, ",flagged\n");
    for (int i = 0; i < 14; i++)
        for (int lab = 1; lab <= 3; lab += 2) {
            fprintf(f, "case%02d,%d,1,1,1,1,1,1,1,1", i, lab);
            for (int j = 0; j < nc; j++) {
                double x = 0.5 + 0.01 * i + 0.001 * lab + 0.1 * j;
                if (which) {
                    if (!strcmp(cols[j].name, "dice")) x += 0.003 * (i + 1) * (i % 3 ? 1 : -1.3);
                    else if (!strcmp(cols[j].name, "hd95")) x += (i % 4 == 0) ? 0 : 0.25 * (i % 5);
                    else x += 0.01 * (i % 2 ? 1 : -1) * (i % 7);
                }
                if (!strcmp(cols[j].name, "hd95") && i == 5 && which) x = NAN;
                if (isnan(x)) fprintf(f, ",nan");
                else fprintf(f, ",%.17g", x);
            }
            fprintf(f, ",0\n");
        }
    fclose(f);
}

static const char *wilcoxon_py =
    "import csv, math, sys, numpy as np\n"
    "from scipy.stats import wilcoxon\n"
    "def rows(p): return {(r['case'], r['label']): r for r in csv.DictReader(open(p))}\n"
    "a, b = rows(sys.argv[1]), rows(sys.argv[2])\n"
    "for lab in ('1', '3'):\n"
    "  for m in ('dice', 'hd95', 'iou'):\n"
    "    d = [float(b[k][m]) - float(a[k][m]) for k in a if k[1] == lab]\n"
    "    d = [x for x in d if not math.isnan(x)]\n"
    "    print(lab, m, repr(float(np.mean(d))), repr(float(np.median(d))),\n"
    "          repr(float(wilcoxon(d).pvalue)))\n";

/* The compare.csv row of (label, metric): n_pairs, n, n_nan, mean_a, mean_b, mean_diff,
 * mean_diff_ci_lo, mean_diff_ci_hi, median_diff, wilcoxon_w, wilcoxon_n, p_value into v. */
static int compare_fields(const char *csv, int label, const char *metric, double v[12]) {
    if (!strstr(csv, "mean_diff,mean_diff_ci_lo,mean_diff_ci_hi,median_diff,wilcoxon_w,"
                     "wilcoxon_n,p_value,"))
        return 0;
    char key[64];
    snprintf(key, sizeof key, "\n%d,%s,", label, metric);
    const char *r = strstr(csv, key);
    if (!r) return 0;
    r += strlen(key);
    for (int k = 0; k < 12; k++) {
        v[k] = strncmp(r, "nan", 3) ? strtod(r, NULL) : NAN;
        r = strchr(r, ',') + 1;
    }
    return 1;
}

/* The compare.csv row of (label, metric): mean_diff, median_diff, p. */
static int compare_row(const char *csv, int label, const char *metric, double *mean,
                       double *median, double *p) {
    double v[12];
    if (!compare_fields(csv, label, metric, v)) return 0;
    *mean = v[5], *median = v[8], *p = v[11];
    return 1;
}

static void test_compare(void) {
    write_run_csv("runA", 0);
    write_run_csv("runB", 1);
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/runA", root);
    snprintf(b, sizeof b, "%s/runB", root);
    dk_eval_opts o;
    memset(&o, 0, sizeof o);
    o.compare_a = a, o.compare_b = b;
    o.out_dir = dk_test_path(root, "cmp");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *csv = slurp(path_of("cmp", "compare.csv"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    for (const char *n = "compare.json\0compare.md\0compare.html\0"; *n; n += strlen(n) + 1)
        CU_ASSERT(dk_test_exists(path_of("cmp", n)));
    double mean, median, p;
    /* dice, label 1: differences 0.003 (i+1) · (±1.3) as written */
    CU_ASSERT_FATAL(compare_row(csv, 1, "dice", &mean, &median, &p));
    double sum = 0;
    for (int i = 0; i < 14; i++) {
        double x = 0.5 + 0.01 * i + 0.001 + 0.0;
        sum += (x + 0.003 * (i + 1) * (i % 3 ? 1 : -1.3)) - x;
    }
    CU_ASSERT_DOUBLE_EQUAL(mean, sum / 14, 1e-12);
    if (dk_test_sh(NULL, 0, "/usr/bin/python3 -c 'import scipy.stats'") != 0) {
        dk_test_skip("compare vs scipy", "/usr/bin/python3 has no scipy");
        free(csv);
        return;
    }
    char script[4200];
    snprintf(script, sizeof script, "%s/wilcoxon.py", root);
    FILE *f = fopen(script, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(wilcoxon_py, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(out, sizeof out, "/usr/bin/python3 -W ignore %s "
                                     "%s/cases.csv %s/cases.csv", script, a, b), 0);
    int checked = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        int lab;
        char m[32];
        double pm, pmed, pp;
        if (sscanf(line, "%d %31s %lf %lf %lf", &lab, m, &pm, &pmed, &pp) != 5) continue;
        CU_ASSERT_FATAL(compare_row(csv, lab, m, &mean, &median, &p));
        CU_ASSERT_DOUBLE_EQUAL(mean, pm, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(median, pmed, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(p, pp, 1e-9);
        if (fabs(p - pp) > 1e-9) printf("\n    %d %s: p %.17g, scipy %.17g\n", lab, m, p, pp);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, 6);
    free(csv);

    /* --out may not be one of the runs compared */
    o.out_dir = b;
    CU_ASSERT_EQUAL(dk_eval_run(&o), DK_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "is one of the runs compared"));
    CU_ASSERT(dk_test_exists(path_of("runB", "cases.csv")));
    /* unpaired rows are refused, naming them */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "sed -i '/^case03,3,/d' %s/cases.csv", b), 0);
    o.out_dir = dk_test_path(root, "cmp2");
    CU_ASSERT_NOT_EQUAL(dk_eval_run(&o), DK_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "case03 label 3"));
    CU_ASSERT(!dk_test_exists(dk_test_path(root, "cmp2")));
    /* a label that is no label value (too large for an int: once a float-to-int overflow)
     * is refused naming the file, line and value */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "sed -i 's/^case04,3,/case04,1e76,/' "
                                     "%s/cases.csv", b), 0);
    o.out_dir = dk_test_path(root, "cmp3");
    CU_ASSERT_EQUAL(dk_eval_run(&o), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "cases.csv:10: label 1e76"));
    CU_ASSERT(!dk_test_exists(dk_test_path(root, "cmp3")));
}

/* Two real runs compared: the differences are those of their cases.csv. */
static void test_compare_real_runs(void) {
    const double s1[6] = {1, 2, 3, 0, 1, 2}, s2[6] = {0, 1, 1, 2, 3, 3};
    make_3d("c1", 6, s1);
    make_3d("c2", 6, s2);
    dk_eval_opts o = opts_for("c1", "runC1");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    o = opts_for("c2", "runC2");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    memset(&o, 0, sizeof o);
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/runC1", root);
    snprintf(b, sizeof b, "%s/runC2", root);
    o.compare_a = a, o.compare_b = b, o.out_dir = dk_test_path(root, "cmpC");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *ca = slurp(path_of("runC1", "cases.csv")), *cb = slurp(path_of("runC2", "cases.csv"));
    char *cc = slurp(path_of("cmpC", "compare.csv"));
    CU_ASSERT_FATAL(ca && cb && cc);
    double sum = 0, mean, median, p;
    int f;
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "p%d", i);
        sum += csv_cell(cb, id, 1, "dice", &f) - csv_cell(ca, id, 1, "dice", &f);
    }
    CU_ASSERT_FATAL(compare_row(cc, 1, "dice", &mean, &median, &p));
    CU_ASSERT_DOUBLE_EQUAL(mean, sum / 6, 1e-12);
    CU_ASSERT(p > 0 && p <= 1);
    free(ca), free(cb), free(cc);
}

/* A side given as a study eval stage's model folder: its seed<N>/report/cases.csv averaged
 * row by row. Seeds A and B average to (A + B) / 2, so against B every difference is half of
 * B − A's: the mean halves and the signed ranks, hence p, stay. The interval is the
 * bootstrap of those differences; seeds with different rows are refused, naming the seed. */
static void test_compare_seeds(void) {
    write_run_csv("model/seed1/report", 0);
    write_run_csv("model/seed22/report", 1);
    write_run_csv("model/seedless", 0); /* not a seed folder: ignored */
    mkdirs("model/seed3x/report");      /* nor this */
    write_run_csv("runB2", 1);          /* runB as test_compare wrote it, before its edit */
    char m[4096], b[4096];
    snprintf(m, sizeof m, "%s/model", root);
    snprintf(b, sizeof b, "%s/runB2", root);
    dk_eval_opts o;
    memset(&o, 0, sizeof o);
    o.compare_a = m, o.compare_b = b, o.out_dir = dk_test_path(root, "cmpS");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *cs = slurp(path_of("cmpS", "compare.csv")), *ab = slurp(path_of("cmp", "compare.csv"));
    char *js = slurp(path_of("cmpS", "compare.json"));
    CU_ASSERT_FATAL(cs && ab && js);
    double vs[12], vab[12];
    CU_ASSERT_FATAL(compare_fields(cs, 1, "dice", vs));
    CU_ASSERT_FATAL(compare_fields(ab, 1, "dice", vab));
    CU_ASSERT_DOUBLE_EQUAL(vs[5], vab[5] / 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(vs[8], vab[8] / 2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(vs[11], vab[11], 1e-12);
    CU_ASSERT(vs[6] < vs[5] && vs[5] < vs[7]); /* the interval holds the mean */
    /* the interval is dk_bootstrap_mean_ci of the differences (half of those written), in
     * case order */
    double d[14], lo, hi;
    for (int i = 0; i < 14; i++) d[i] = 0.5 * 0.003 * (i + 1) * (i % 3 ? 1 : -1.3);
    dk_bootstrap_mean_ci(&lo, &hi, d, 1, 14, DK_BOOT_RESAMPLES, 0.95, DK_BOOT_SEED);
    CU_ASSERT_DOUBLE_EQUAL(vs[6], lo, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(vs[7], hi, 1e-9);
    CU_ASSERT(strstr(js, "\"runs_averaged_a\":\t2") || strstr(js, "\"runs_averaged_a\": 2") ||
              strstr(js, "\"runs_averaged_a\":2"));
    free(cs), free(ab), free(js);

    /* a seed with a row the others lack is refused, naming that seed's folder */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "sed -i '/^case07,1,/d' %s/model/seed22/report/"
                                     "cases.csv", root), 0);
    o.out_dir = dk_test_path(root, "cmpS2");
    CU_ASSERT_NOT_EQUAL(dk_eval_run(&o), DK_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "case07 label 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "seed22/report"));
    CU_ASSERT(!dk_test_exists(dk_test_path(root, "cmpS2")));
    /* a folder that is neither kind is named */
    mkdirs("empty_model");
    snprintf(m, sizeof m, "%s/empty_model", root);
    o.out_dir = dk_test_path(root, "cmpS3");
    CU_ASSERT_NOT_EQUAL(dk_eval_run(&o), DK_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "empty_model: no cases.csv"));
}

/* ---------------------------------------------------------------- the command line */

/* 24 labels named by a labels file (one left out, one needing HTML escapes): the reports
 * name them, the box plots stay within 900 px with the long names upright; a bad line of
 * the file is refused naming FILE:LINE. */
static void test_many_labels(void) {
    mkdirs("many/pred");
    mkdirs("many/ref");
    for (int c = 0; c < 2; c++)
        for (int side = 0; side < 2; side++) {
            dk_volume v;
            dk_volume_alloc(&v, 96, 40, 1, 1, 1, DK_U8);
            for (int l = 1; l <= 24; l++) box(&v, 4 * l - 4 + (side && l % 3 == c), 4 * l - 1,
                                              4, 36 - 4 * side * (l % 2), 0, 1, l);
            char name[16];
            snprintf(name, sizeof name, "c%d.png", c);
            write_vol(&v, side ? "many/pred" : "many/ref", name);
        }
    FILE *f = fopen(path_of("many", "names.txt"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "# 3D Slicer colour table\n0 background 0 0 0 0\n");
    for (int l = 1; l < 24; l++)
        fprintf(f, "%d %s 10 20 %d 255\n", l, l == 5 ? "a<b" : "structure_with_a_long_name", l);
    fclose(f);
    dk_eval_opts o = opts_for("many", "many_out");
    o.label_names = path_of("many", "names.txt");
    CU_ASSERT_EQUAL_FATAL(dk_eval_run(&o), DK_OK);
    char *md = slurp(path_of("many_out", "summary.md"));
    char *html = slurp(path_of("many_out", "report.html"));
    char *js = slurp(path_of("many_out", "summary.json"));
    CU_ASSERT_FATAL(md && html && js);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "\n| 1 structure_with_a_long_name |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "\n| 24 |"));
    CU_ASSERT_EQUAL(count_str(md, "structure_with_a_long_name |"), 22);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<td class='s'>5 a&lt;b</td>"));
    CU_ASSERT_PTR_NULL(strstr(html, "a<b"));
    CU_ASSERT(count_str(html, "rotate(-90") >= 24);
    int widest = 0;
    for (const char *p = html; (p = strstr(p, "class='box' width='")); p++)
        widest = atoi(p + 19) > widest ? atoi(p + 19) : widest;
    CU_ASSERT(widest > 0 && widest <= 900);
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"label_names\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"5\":\t\"a<b\""));
    free(md), free(html), free(js);
    f = fopen(path_of("many", "names.txt"), "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "7 again 1 2 3 4\n");
    fclose(f);
    o = opts_for("many", "many_bad");
    o.label_names = path_of("many", "names.txt");
    CU_ASSERT_EQUAL(dk_eval_run(&o), DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "names.txt:26: value 7 is listed twice"));
    CU_ASSERT_EQUAL(count_entries(root, "many_bad"), 0);
}

static int dakd(const char *fmt, const char *a1, const char *a2) {
    char args[8192];
    snprintf(args, sizeof args, fmt, a1, a2);
    return dk_test_sh(out, sizeof out, "%s eval %s", dk_test_cli(), args);
}

static void test_cli(void) {
    CU_ASSERT_EQUAL(dakd("--help", "", ""), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: dakd eval"));
    CU_ASSERT_EQUAL(dakd("", "", ""), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--out"));
    CU_ASSERT_EQUAL(dakd("--out %s/cli_x", root, ""), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--pred DIR and one of --ref DIR or --cases CSV"));
    CU_ASSERT_EQUAL(dakd("--pred", "", ""), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--pred needs a value"));
    CU_ASSERT_EQUAL(dakd("--bogus", "", ""), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown option '--bogus'"));
    CU_ASSERT_EQUAL(dakd("--labels 0,x --pred a --ref b --out c", "", ""), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--labels"));
    CU_ASSERT_EQUAL(dakd("--nsd-tol -1 --pred a --ref b --out c", "", ""), 1);
    CU_ASSERT_EQUAL(dakd("--compare onlyone", "", ""), 1);
    CU_ASSERT_EQUAL(dakd("--pred %s/d2/pred --ref %s/d2/ref --out /nonexistent/dir/x", root,
                         root), 2);
    CU_ASSERT_EQUAL(dakd("--pred %s/bad1/pred --ref %s/bad1/ref --out cli_never", root, root), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lonely_ref.png"));
    CU_ASSERT(!dk_test_exists("cli_never"));
    char a[4096];
    snprintf(a, sizeof a, "--pred %s/d2/pred --ref %s/d2/ref --labels 1 --nsd-tol 2 "
             "--out %s/cli_ok", root, root, root);
    CU_ASSERT_EQUAL(dk_test_sh(out, sizeof out, "%s eval %s", dk_test_cli(), a), 0);
    char *js = slurp(path_of("cli_ok", "summary.json"));
    CU_ASSERT(js && strstr(js, "\"nsd_tolerance_mm\":\t2") &&
              strstr(js, "given (the labels option)"));
    free(js);
    CU_ASSERT_EQUAL(dakd("--compare %s/out2 %s/cli_ok --out cmp_never --pred x", root, root), 1);
}

/* ---------------------------------------------------------------- headless Chromium */

/* Rows of the case table in DOM text `d` whose k-th data-v value is in order (ascending, or
 * descending when desc) with NaN only after every number; returns the row count, -1 when
 * out of order. */
static int rows_sorted(const char *d, int k, int desc) {
    const char *p = strstr(d, "id=\"cases\"");
    p = p ? strstr(p, "<tbody>") : NULL;
    const char *end = p ? strstr(p, "</tbody>") : NULL;
    int n = 0, seen_nan = 0;
    double prev = desc ? INFINITY : -INFINITY;
    while (p && (p = strstr(p + 1, "<tr")) && p < end) {
        const char *q = p;
        for (int j = 0; j <= k && q; j++) q = strstr(q + 1, "data-v=\"");
        if (!q) return -1;
        q += 8;
        double x = strncmp(q, "nan", 3) ? strtod(q, NULL) : NAN;
        if (isnan(x)) seen_nan = 1;
        else if (seen_nan || (desc ? x > prev : x < prev)) return -1;
        else prev = x;
        n++;
    }
    return n;
}

static void test_chromium(void) {
    if (dk_test_sh(NULL, 0, "command -v chromium") != 0) {
        dk_test_skip("chromium", "no chromium on PATH");
        return;
    }
    const char *html = path_of("out3", "report.html"), *png = dk_test_path(root, "shot.png");
    /* the flags keep chromium from touching the user profile and the network; the profile
     * is the suite's own, so runs side by side (two build folders) do not share its lock */
    char flags[2400];
    snprintf(flags, sizeof flags, "--headless=new --no-sandbox --disable-gpu --no-first-run "
             "--disable-extensions --user-data-dir=%s", dk_test_path(root, "chromium-profile"));
    /* the DOM after the page's script ran on stdout, the browser's log (console messages
     * and uncaught exceptions included) on stderr */
    const char *dom = dk_test_path(root, "dom.html"), *log = dk_test_path(root, "chromium.log");
    int rc = dk_test_sh(NULL, 0, "timeout 120 chromium %s --enable-logging=stderr --v=0 "
                        "--dump-dom file://%s > %s 2> %s", flags, html, dom, log);
    CU_ASSERT_EQUAL(rc, 0);
    char *d = slurp(dom), *l = slurp(log);
    CU_ASSERT_FATAL(d && l);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "<body data-report-ready=\"1\">"));
    CU_ASSERT_PTR_NULL(strstr(d, "aria-sort=\"")); /* not sorted before a click */
    CU_ASSERT_PTR_NULL(strstr(l, "Uncaught"));
    CU_ASSERT_PTR_NULL(strstr(l, "CONSOLE"));
    if (!strstr(d, "data-report-ready")) printf("\n    chromium log: %.3000s\n", l);
    free(d), free(l);
    /* report.html#sort=hd95 / #sort=-hd95: rows ordered by hd95, NaN last both ways */
    for (int desc = 0; desc < 2; desc++) {
        rc = dk_test_sh(NULL, 0, "timeout 120 chromium %s --dump-dom 'file://%s#sort=%shd95' "
                        "> %s 2>/dev/null", flags, html, desc ? "-" : "", dom);
        CU_ASSERT_EQUAL(rc, 0);
        d = slurp(dom);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_PTR_NOT_NULL(strstr(d, desc ? "aria-sort=\"descending\"" :
                                              "aria-sort=\"ascending\""));
        CU_ASSERT(rows_sorted(d, 8, desc) == 12); /* hd95 is the 9th data-v of a row */
        free(d);
    }
    rc = dk_test_sh(out, sizeof out, "timeout 120 chromium %s --hide-scrollbars "
                    "--window-size=1280,2000 --screenshot=%s file://%s", flags, png, html);
    CU_ASSERT_EQUAL(rc, 0);
    struct stat sb;
    CU_ASSERT(stat(png, &sb) == 0 && sb.st_size > 20000);
    dk_volume v;
    if (dk_volume_read(&v, png) == DK_OK) { /* not one flat colour */
        double lo = 1e9, hi = -1e9;
        for (int64_t i = 0; i < v.nx * v.ny; i++) {
            double x = dk_volume_get(&v, i);
            lo = x < lo ? x : lo, hi = x > hi ? x : hi;
        }
        CU_ASSERT(v.nx == 1280 && hi - lo > 100);
        dk_volume_free(&v);
    } else {
        CU_FAIL("screenshot unreadable");
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("report", setup, NULL);
    CU_add_test(s, "2-D run: cases.csv, summary.json/.md, report.html", test_run_2d);
    CU_add_test(s, "masks; files that are not cases", test_mask_and_skipped_files);
    CU_add_test(s, "3-D run with images: overlays", test_run_3d);
    CU_add_test(s, "refusals leave --out untouched", test_refusals);
    CU_add_test(s, "--compare against scipy.stats.wilcoxon", test_compare);
    CU_add_test(s, "--compare of two real runs", test_compare_real_runs);
    CU_add_test(s, "--compare of a study model folder: its seeds averaged", test_compare_seeds);
    CU_add_test(s, "command line", test_cli);
    CU_add_test(s, "24 named labels stay readable", test_many_labels);
    CU_add_test(s, "headless Chromium renders report.html", test_chromium);
    return dk_test_run();
}
