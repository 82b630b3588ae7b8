/*
 * Commands that chain: `dakd predict` names its outputs by case id (image suffixes _0000 and
 * _image dropped) and `dakd eval` pairs them with references named case_label, case_seg,
 * case_gt or case, from a folder or a case list (--cases, --where), with --subset pred;
 * label values that one side never uses are named; predict --patch is X,Y,Z. On phantoms
 * written by `dakd phantom` and a small random 3-D model, with no renaming or links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/eval.h"
#include "predict_fixture.h"
#include "test_util.h"

/* A shell step of a test's own setup, which must succeed. */
#define SH_OK(...) CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, __VA_ARGS__), 0)

static char dir[4096], model[4200], phant[4200];

static char *file_of(const char *sub, const char *name) {
    static char bufs[4][4400];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, 4400, "%s/%s/%s", dir, sub, name);
    return b;
}

/* Phantoms (2 per domain, 32x28x12) and a random 3-D model of 4 classes. */
static int setup(void) {
    snprintf(dir, sizeof dir, "%s", dk_test_path(dk_test_tmpdir(), "chain"));
    snprintf(phant, sizeof phant, "%s/phantoms", dir);
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    if (dk_test_dakd("phantom --out %s --size 32,28,12 --cases 2 --seed 5", phant)) return -1;
    return dk_test_random_model(model, "8,16,16");
}

static const char *const ids[] = {"source_000", "source_001", "target_000", "target_001"};

/* predict on the bare phantom image paths, eval against the phantom folder itself */
static void test_predict_then_eval(void) {
    int rc = dk_test_dakd("predict --model %s --out %s/pred %s/source_000_image.nii.gz "
                  "%s/source_001_image.nii.gz %s/target_000_image.nii.gz "
                  "%s/target_001_image.nii.gz",
                  model, dir, phant, phant, phant, phant);
    dk_test_expect(rc, 0, NULL);
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.nii.gz", ids[i]);
        CU_ASSERT(dk_test_exists(file_of("pred", name)));
    }
    /* the references are the folder's *_label files; its *_image files are passed over */
    rc = dk_test_dakd("eval --pred %s/pred --ref %s --image %s --out %s/rep", dir, phant, phant,
                      dir);
    dk_test_expect(rc, 0, NULL);
    char *csv = dk_test_slurp(file_of("rep", "cases.csv"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    for (int i = 0; i < 4; i++) {
        char row[64];
        snprintf(row, sizeof row, "\n%s,1,", ids[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(csv, row));
    }
    CU_ASSERT_PTR_NULL(strstr(csv, "_image"));
    CU_ASSERT_PTR_NULL(strstr(csv, "_label"));
    free(csv);
    char *html = dk_test_slurp(file_of("rep", "report.html"));
    CU_ASSERT(html && strstr(html, "data:image/png;base64,")); /* overlays over the images */
    free(html);
}

/* nnU-Net's _0000 and a plain name give one id: refused up front, naming both */
static void test_predict_ids(void) {
    SH_OK("mkdir -p %s/nn && cp %s/source_000_image.nii.gz %s/nn/case_0000.nii.gz && cp "
          "%s/source_001_image.nii.gz %s/nn/case.nii.gz",
          dir, phant, dir, phant, dir);
    int rc =
        dk_test_dakd("predict --model %s --out %s/nnpred %s/nn/case_0000.nii.gz", model, dir, dir);
    dk_test_expect(rc, 0, NULL);
    CU_ASSERT(dk_test_exists(file_of("nnpred", "case.nii.gz")));
    rc =
        dk_test_dakd("predict --model %s --out %s/nnpred2 %s/nn/case_0000.nii.gz %s/nn/case.nii.gz",
                     model, dir, dir, dir);
    dk_test_expect(rc, 1,
                   (const char *[]){"case_0000.nii.gz", "/nn/case.nii.gz", "case id 'case'", NULL});
    CU_ASSERT(!dk_test_exists(file_of("nnpred2", "case.nii.gz")));
}

/* dir/<name>: a case list of the four phantoms whose split is train, test, train, test, with
 * a domain column (source, source, target, target) when `domain` is set; its path into csv. */
static void write_cases(char *csv, size_t n, const char *name, int domain) {
    snprintf(csv, n, "%s/%s", dir, name);
    FILE *f = fopen(csv, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "case,image,label,%ssplit\n", domain ? "domain," : "");
    for (int i = 0; i < 4; i++)
        fprintf(f, "%s,phantoms/%s_image.nii.gz,phantoms/%s_label.nii.gz,%s%s\n", ids[i], ids[i],
                ids[i], domain ? (i < 2 ? "source," : "target,") : "", i % 2 ? "test" : "train");
    fclose(f);
}

/* A case list gives the references (split column filtered); --subset pred skips and names
 * the cases without a prediction; without it they are an error (exit 2) naming them. */
static void test_eval_cases_subset(void) {
    char csv[4400];
    write_cases(csv, sizeof csv, "cases.csv", 0);
    int rc = dk_test_dakd("eval --pred %s/pred --cases %s --where split=test --out %s/rep_csv", dir,
                          csv, dir);
    dk_test_expect(rc, 0, NULL);
    char *js = dk_test_slurp(file_of("rep_csv", "summary.json"));
    CU_ASSERT(js && strstr(js, "\"n_cases\":\t2") && strstr(js, "where split = test"));
    free(js);
    /* only two predictions: the rest are unmatched, or skipped with --subset pred */
    SH_OK("mkdir -p %s/pred2 && cp %s/pred/source_001.nii.gz "
          "%s/pred/target_001.nii.gz %s/pred2/",
          dir, dir, dir, dir);
    rc = dk_test_dakd("eval --pred %s/pred2 --cases %s --out %s/rep_sub", dir, csv, dir);
    dk_test_expect(rc, 2,
           (const char *[]){"references without a prediction", "source_000", "target_000", NULL});
    CU_ASSERT(!dk_test_exists(file_of("rep_sub", "cases.csv")));
    rc = dk_test_dakd("eval --pred %s/pred2 --ref %s --subset pred --out %s/rep_sub", dir, phant,
                      dir);
    dk_test_expect(rc, 0,
           (const char *[]){"2 references without one skipped", "source_000_label.nii.gz",
                            "target_000_label.nii.gz", NULL});
    js = dk_test_slurp(file_of("rep_sub", "summary.json"));
    CU_ASSERT(js && strstr(js, "\"n_cases\":\t2") && strstr(js, "skipped: source_000_label"));
    free(js);
    char *md = dk_test_slurp(file_of("rep_sub", "summary.md"));
    CU_ASSERT(md && strstr(md, "**Notes**"));
    free(md);
    /* one id twice in a folder: exit 2 naming both; no non-zero label anywhere: exit 3 */
    SH_OK("mkdir -p %s/pred3 && cp %s/pred/source_001.nii.gz "
          "%s/pred3/ && gunzip -c %s/pred/source_001.nii.gz > "
          "%s/pred3/source_001.nii",
          dir, dir, dir, dir, dir);
    rc = dk_test_dakd("eval --pred %s/pred3 --ref %s --subset pred --out %s/x", dir, phant, dir);
    dk_test_expect(rc, 2, (const char *[]){"source_001.nii and source_001.nii.gz", NULL});
    dk_volume z;
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&z, file_of("pred", "source_001.nii.gz")), DK_OK);
    memset(z.data, 0, (size_t)dk_volume_numel(&z));
    SH_OK("mkdir -p %s/ref0", dir);
    CU_ASSERT_EQUAL_FATAL(dk_volume_write(&z, file_of("ref0", "source_001_gt.nii.gz"), NULL),
                          DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_volume_write(&z, file_of("ref0", "target_001_seg.nii.gz"), NULL),
                          DK_OK);
    dk_volume_free(&z);
    rc = dk_test_dakd("eval --pred %s/pred2 --ref %s/ref0 --subset pred --out %s/x", dir, dir, dir);
    dk_test_expect(rc, 3, (const char *[]){"no reference holds a non-zero label", NULL});
    /* bad options: exit 1 */
    dk_test_expect(
        dk_test_dakd("eval --pred %s/pred --ref %s --cases %s --out %s/x", dir, phant, csv, dir), 1,
        (const char *[]){"one of --ref DIR or --cases CSV", NULL});
    dk_test_expect(
        dk_test_dakd("eval --pred %s/pred --ref %s --where split=test --out %s/x", dir, phant, dir),
        1, (const char *[]){"--where needs --cases", NULL});
    dk_test_expect(
        dk_test_dakd("eval --pred %s/pred --ref %s --subset some --out %s/x", dir, phant, dir), 1,
        (const char *[]){"--subset", NULL});
    dk_test_expect(
        dk_test_dakd("eval --pred %s/pred --cases %s --where split=none --out %s/x", dir, csv, dir),
        1, (const char *[]){"split = none", NULL});
}

/* Repeated --where filters combine with AND in predict and eval: of rows (domain, split) =
 * (source, train), (source, test), (target, train), (target, test) only target_001 passes
 * domain=target and split=test, in either order; a second filter that replaced the first
 * would keep source_001 or target_000 too. A --where without '=' is a usage error. */
static void test_where_and(void) {
    char csv[4400];
    write_cases(csv, sizeof csv, "where.csv", 1);
    static const char *const order[2] = {"--where domain=target --where split=test",
                                         "--where split=test --where domain=target"};
    for (int k = 0; k < 2; k++) {
        char out[32];
        snprintf(out, sizeof out, "pred_where%d", k);
        dk_test_expect(dk_test_dakd("predict --model %s --cases %s %s --out %s/%s", model, csv,
                                    order[k], dir, out),
                       0, NULL);
        for (int i = 0; i < 4; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s.nii.gz", ids[i]);
            CU_ASSERT_EQUAL(dk_test_exists(file_of(out, name)), i == 3);
        }
        snprintf(out, sizeof out, "rep_where%d", k); /* all four predictions, one reference */
        dk_test_expect(dk_test_dakd("eval --pred %s/pred --cases %s %s --out %s/%s", dir, csv,
                                    order[k], dir, out),
                       0, NULL);
        char *js = dk_test_slurp(file_of(out, "summary.json"));
        CU_ASSERT(js && strstr(js, "\"n_cases\":\t1,"));
        CU_ASSERT(js && strstr(js, k ? "where split = test and domain = target"
                                     : "where domain = target and split = test"));
        free(js);
        char *cases = dk_test_slurp(file_of(out, "cases.csv"));
        CU_ASSERT(cases && strstr(cases, "\ntarget_001,") && !strstr(cases, "\nsource_001,") &&
                  !strstr(cases, "\ntarget_000,"));
        free(cases);
    }
    dk_test_expect(dk_test_dakd("eval --pred %s/pred --cases %s --where domain=target "
                                "--where split=none --out %s/x",
                                dir, csv, dir),
                   1, (const char *[]){"no case has domain = target and split = none", NULL});
    dk_test_expect(dk_test_dakd("predict --model %s --cases %s --where domain=target --where split "
                                "--out %s/x",
                                model, csv, dir),
                   1, (const char *[]){"--where", NULL});
    dk_test_expect(dk_test_dakd("eval --pred %s/pred --cases %s --where domain=target --where "
                                "=test --out %s/x",
                                dir, csv, dir),
                   1, (const char *[]){"--where: '=test' is not column=value", NULL});
    CU_ASSERT(!dk_test_exists(file_of("x", "")));
}

/* The metrics of eval --pred pred --cases <csv> in unit u (the library run, results kept). */
static void eval_csv(dk_eval_results *res, const char *csv, dk_distance_unit u, const char *out) {
    static const int labels[3] = {1, 2, 3};
    dk_eval_opts o;
    memset(&o, 0, sizeof o);
    dk_metric_defaults(&o.metric);
    o.metric.unit = u;
    o.pred_dir = file_of("pred", ""), o.cases_csv = csv, o.out_dir = file_of(out, "");
    o.labels = labels, o.n_labels = 3, o.results = res;
    dk_status st = dk_eval_run(&o);
    if (st != DK_OK) printf("\n    %s\n", dk_last_error());
    CU_ASSERT_EQUAL_FATAL(st, DK_OK);
}

/* A case list's spacing column: prediction prepares with it and writes on the file's grid;
 * eval --cases scores with it (2 mm voxels: every distance twice the file's 1 mm one), and
 * distance_unit = voxels gives the file's numbers back, saying "voxels" in every report;
 * runs in mm and in voxels do not compare. */
static void test_spacing_and_units(void) {
    char csv[4400], csv_sp[4400], model2[4400];
    snprintf(csv, sizeof csv, "%s/cases.csv", dir);
    snprintf(csv_sp, sizeof csv_sp, "%s/cases_sp.csv", dir);
    snprintf(model2, sizeof model2, "%s/model_2mm.safetensors", dir);
    FILE *f = fopen(csv_sp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "case,image,label,spacing\n");
    for (int i = 0; i < 4; i++)
        fprintf(f, "%s,phantoms/%s_image.nii.gz,phantoms/%s_label.nii.gz,2x2x2\n", ids[i],
                ids[i], ids[i]);
    fclose(f);
    /* a model resampling to 2 mm: the 1 mm files halve, the listed 2 mm voxels stay */
    CU_ASSERT_EQUAL_FATAL(dk_test_random_model_at(model2, "8,16,16", "2,2,2"), 0);
    dk_case_list l;
    dk_predict_inputs pi;
    CU_ASSERT_EQUAL_FATAL(dk_cases_read(&l, csv_sp), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_predict_inputs_read(&pi, model2, NULL, &l), DK_OK);
    CU_ASSERT(pi.cases[0].image.nx == 32 && pi.cases[0].image.nz == 12);
    dk_predict_inputs_free(&pi);
    for (int i = 0; i < l.n; i++) memset(l.cases[i].spacing, 0, sizeof l.cases[i].spacing);
    CU_ASSERT_EQUAL_FATAL(dk_predict_inputs_read(&pi, model2, NULL, &l), DK_OK);
    CU_ASSERT(pi.cases[0].image.nx == 16 && pi.cases[0].image.nz == 6);
    dk_predict_inputs_free(&pi);
    dk_cases_free(&l);
    int rc = dk_test_dakd("predict --model %s --cases %s --out %s/pred_sp", model2, csv_sp, dir);
    dk_test_expect(rc, 0, NULL);
    dk_volume in, out;
    const char *img = file_of("phantoms", "target_001_image.nii.gz");
    CU_ASSERT_EQUAL_FATAL(dk_volume_read_header(&in, img), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read_header(&out, file_of("pred_sp", "target_001.nii.gz")),
                          DK_OK);
    CU_ASSERT(out.nx == in.nx && out.ny == in.ny && out.nz == in.nz);
    CU_ASSERT_EQUAL(memcmp(&out.geom, &in.geom, sizeof in.geom), 0); /* the file's, 1 mm */
    dk_volume_free(&in), dk_volume_free(&out);
    /* scored with the list's 2 mm, with the files' 1 mm, and in voxels */
    dk_eval_results a = {0}, b = {0}, v = {0};
    eval_csv(&a, csv_sp, DK_UNIT_MM, "u_sp");
    eval_csv(&b, csv, DK_UNIT_MM, "u_mm");
    eval_csv(&v, csv_sp, DK_UNIT_VOXELS, "u_vox");
    CU_ASSERT_FATAL(a.n_cases == 4 && b.n_cases == 4 && v.n_cases == 4);
    int finite = 0;
    for (int k = 0; k < 12; k++) {
        CU_ASSERT_EQUAL(a.m[k].hd95, 2 * b.m[k].hd95); /* NaN for an empty label fails too */
        CU_ASSERT_EQUAL(v.m[k].hd95, b.m[k].hd95);
        CU_ASSERT_EQUAL(a.m[k].vol_ref_mm3, 8 * b.m[k].vol_ref_mm3);
        CU_ASSERT_EQUAL(v.m[k].vol_ref_mm3, (double)v.m[k].n_ref);
        finite += b.m[k].hd95 > 0;
    }
    CU_ASSERT(finite >= 6);
    dk_eval_results_free(&a), dk_eval_results_free(&b), dk_eval_results_free(&v);
    char *js = dk_test_slurp(file_of("u_sp", "summary.json"));
    CU_ASSERT(js && strstr(js, "voxel sizes of 4 of the 4 cases from the spacing column"));
    free(js);
    /* every report says voxels; a mm run says what it always said */
    rc = dk_test_dakd("eval --pred %s/pred --cases %s --distance-unit voxels --out %s/u_cli", dir,
                      csv, dir);
    dk_test_expect(rc, 0, NULL);
    char *html = dk_test_slurp(file_of("u_cli", "report.html"));
    char *md = dk_test_slurp(file_of("u_cli", "summary.md"));
    char *cases = dk_test_slurp(file_of("u_cli", "cases.csv"));
    js = dk_test_slurp(file_of("u_cli", "summary.json"));
    CU_ASSERT_FATAL(html && md && cases && js);
    CU_ASSERT(strstr(html, "hd95 (voxels)") && !strstr(html, "(mm)") && !strstr(html, " mm"));
    CU_ASSERT(strstr(html, "Distances are Euclidean in voxels") && !strstr(html, "mm3"));
    CU_ASSERT(strstr(md, "hd95 (voxels)") && strstr(md, "NSD tolerance 1 voxels"));
    CU_ASSERT(!strstr(md, "(mm)") && !strstr(md, " mm"));
    CU_ASSERT(strstr(cases, ",vol_pred_voxels,vol_ref_voxels,") && !strstr(cases, "mm3"));
    CU_ASSERT(strstr(js, "\"distance_unit\":\t\"voxels\"") && strstr(js, "nsd_tolerance_voxels"));
    CU_ASSERT(strstr(js, "\"vol_pred_voxels\"") && !strstr(js, "_mm") && !strstr(js, " mm"));
    free(html), free(md), free(cases), free(js);
    js = dk_test_slurp(file_of("u_mm", "summary.json"));
    CU_ASSERT(js && strstr(js, "nsd_tolerance_mm") && !strstr(js, "distance_unit"));
    free(js);
    /* compare: voxels with voxels works, voxels with mm is refused */
    rc = dk_test_dakd("eval --compare %s/u_vox %s/u_cli --out %s/u_cmp", dir, dir, dir);
    dk_test_expect(rc, 0, NULL);
    char *cmp = dk_test_slurp(file_of("u_cmp", "compare.csv"));
    CU_ASSERT(cmp && strstr(cmp, ",vol_pred_voxels,") && !strstr(cmp, "mm3"));
    free(cmp);
    rc = dk_test_dakd("eval --compare %s/u_mm %s/u_cli --out %s/u_cmp2", dir, dir, dir);
    dk_test_expect(rc, 3, (const char *[]){"is in mm and", "in voxels", NULL});
    rc = dk_test_dakd("eval --pred %s/pred --cases %s --distance-unit inch --out %s/x", dir, csv,
                      dir);
    dk_test_expect(rc, 1, (const char *[]){"--distance-unit: 'inch' is not mm or voxels", NULL});
}

/* A 0/255 reference against predictions 1..3 is scored, and the values are named. */
static void test_eval_label_values(void) {
    SH_OK("mkdir -p %s/ref255", dir);
    for (int i = 0; i < 4; i++) {
        char name[64];
        dk_volume v;
        snprintf(name, sizeof name, "%s_label.nii.gz", ids[i]);
        char src[4400];
        snprintf(src, sizeof src, "%s/%s", phant, name);
        CU_ASSERT_EQUAL_FATAL(dk_volume_read(&v, src), DK_OK);
        uint8_t *l = v.data;
        for (int64_t k = 0; k < dk_volume_numel(&v); k++)
            l[k] = l[k] ? 255 : 0;
        CU_ASSERT_EQUAL_FATAL(dk_volume_write(&v, file_of("ref255", name), NULL), DK_OK);
        dk_volume_free(&v);
    }
    int rc = dk_test_dakd("eval --pred %s/pred --ref %s/ref255 --out %s/rep255", dir, dir, dir);
    dk_test_expect(rc, 0,
           (const char *[]){"no prediction holds (255)", "no reference holds (", "0/255", NULL});
    char *js = dk_test_slurp(file_of("rep255", "summary.json"));
    CU_ASSERT(js && strstr(js, "\"notes\"") && strstr(js, "no prediction holds (255)"));
    free(js);
    char *html = dk_test_slurp(file_of("rep255", "report.html"));
    CU_ASSERT(html && strstr(html, "<h2>Notes</h2>"));
    free(html);
}

/* --patch X,Y,Z: the window (d, h, w) = (Z, Y, X) of the library */
static void test_patch_axes(void) {
    int rc = dk_test_dakd("predict --model %s --out %s/patch_cli --patch 16,8,4 "
                  "%s/source_000_image.nii.gz",
                  model, dir, phant);
    dk_test_expect(rc, 0, NULL);
    const char *in[] = {NULL, NULL};
    char img[4400];
    snprintf(img, sizeof img, "%s/source_000_image.nii.gz", phant);
    in[0] = img;
    dk_volume a = {0}, b = {0}, c = {0};
    for (int order = 0; order < 2; order++) {
        dk_predict_opts o;
        memset(&o, 0, sizeof o);
        dk_infer_defaults(&o.infer);
        o.model = model, o.inputs = in;
        o.out_dir = order ? file_of("patch_dhw", "") : file_of("patch_zyx", "");
        o.infer.patch[0] = order ? 16 : 4, o.infer.patch[1] = 8, o.infer.patch[2] = order ? 4 : 16;
        CU_ASSERT_EQUAL_FATAL(dk_predict_run(&o), DK_OK);
    }
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&a, file_of("patch_cli", "source_000.nii.gz")), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&b, file_of("patch_zyx", "source_000.nii.gz")), DK_OK);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&c, file_of("patch_dhw", "source_000.nii.gz")), DK_OK);
    size_t n = (size_t)dk_volume_numel(&a);
    CU_ASSERT_EQUAL(memcmp(a.data, b.data, n), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a.data, c.data, n), 0); /* the other order differs */
    dk_volume_free(&a), dk_volume_free(&b), dk_volume_free(&c);
    dk_test_expect(
        dk_test_dakd("predict --model %s --out %s/patch_bad --patch 16,8,3 %s", model, dir, img), 1,
        (const char *[]){"x,y,z = 16,8,3", NULL});
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("eval.chain", setup, NULL);
    if (!s ||
        !CU_add_test(s, "predict on bare paths, eval the phantom folder", test_predict_then_eval) ||
        !CU_add_test(s, "predict ids: _0000 dropped, collisions refused", test_predict_ids) ||
        !CU_add_test(s, "eval --cases --where, --subset pred", test_eval_cases_subset) ||
        !CU_add_test(s, "predict and eval: repeated --where combine (AND)", test_where_and) ||
        !CU_add_test(s, "spacing column and distance_unit = voxels", test_spacing_and_units) ||
        !CU_add_test(s, "eval names label values one side never uses", test_eval_label_values) ||
        !CU_add_test(s, "predict --patch is X,Y,Z", test_patch_axes)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
