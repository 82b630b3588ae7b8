/* The dakd command line end to end: help, version, phantom → info → convert, refusals and
 * bad input with their exit codes, and no partial output after a failure. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dakd/volume.h"
#include "test_util.h"

static char out[1 << 16];
static const char *dir; /* scratch folder of this run */

static int dakd(const char *args) { return dk_test_sh(out, sizeof out, "%s %s", dk_test_cli(), args); }

/* Count files in `d` whose names contain ".tmp" (leftovers of a failed atomic write). */
static int leftover_temps(const char *d) {
    DIR *dp = opendir(d);
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        if (strstr(e->d_name, ".tmp")) n++;
    if (dp) closedir(dp);
    return n;
}

static int setup(void) {
    dir = dk_test_path(dk_test_tmpdir(), "cli");
    return dk_test_sh(NULL, 0, "mkdir -p %s && %s phantom --out %s --size 32,28,12 --cases 1 "
                      "--seed 3 >/dev/null && %s phantom --out %s/2d --size 40,36 --cases 1 "
                      "--png >/dev/null", dir, dk_test_cli(), dir, dk_test_cli(), dir);
}

static void test_help_version(void) {
    CU_ASSERT_EQUAL(dakd("--help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "convert"));
    CU_ASSERT_EQUAL(dakd("--version"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dakd "));
    const char *cmds[] = {"info", "convert", "phantom", "train", "distill"};
    for (int i = 0; i < 5; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CU_ASSERT_EQUAL(dakd(a), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: dakd"));
    }
    CU_ASSERT_EQUAL(dakd("frobnicate"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown command"));
    CU_ASSERT_EQUAL(dakd(""), 1);
    CU_ASSERT_EQUAL(dakd("convert onlyone.nii"), 1);
    CU_ASSERT_EQUAL(dakd("info --bogus x.nii"), 1);
}

/* --out a/b/c with a/b missing: the folders are made, as the help says. */
static void test_phantom_makes_parents(void) {
    char a[4096], p[4096];
    snprintf(a, sizeof a, "phantom --out %s/new/deeper --size 12,10 --cases 1 --png", dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    snprintf(p, sizeof p, "%s/new/deeper/source_000_image.png", dir);
    CU_ASSERT_EQUAL(access(p, R_OK), 0);
}

static void test_info_text_and_json(void) {
    char a[4096];
    snprintf(a, sizeof a, "info %s/source_000_label.nii.gz", dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "32 x 28 x 12"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "uint8"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "orientation LPS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "labels"));
    snprintf(a, sizeof a, "info --json %s/source_000_image.nii.gz", dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"datatype\":\t\"float32\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"affine_ras\""));
}

/* 1 when s holds a negative zero: "-0" followed by neither a digit nor a '.'. */
static int has_negative_zero(const char *s) {
    for (const char *p = strstr(s, "-0"); p; p = strstr(p + 1, "-0"))
        if (p[2] != '.' && !isdigit((unsigned char)p[2])) return 1;
    return 0;
}

/* A NIfTI whose RAS affine is the identity (the commonest header) has the LPS origin -0, -0,
 * 0 and directions with -0 in them: info prints and writes 0, never -0. */
static void test_info_no_negative_zero(void) {
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 4, 4, 2, 1, 1, DK_U8), DK_OK);
    v.geom.origin[0] = v.geom.origin[1] = -0.0;
    v.geom.direction[0][0] = v.geom.direction[1][1] = -1.0;
    const char *p = dk_test_path(dir, "ras_identity.nii.gz");
    CU_ASSERT_EQUAL_FATAL(dk_volume_write(&v, p, NULL), DK_OK);
    dk_volume_free(&v);
    static const char *const form[] = {"info", "info --json"};
    static const char *const origin[] = {"origin      0 0 0 (LPS mm)",
                                         "\"origin_lps\":\t[0, 0, 0]"};
    for (int i = 0; i < 2; i++) {
        char a[4096];
        snprintf(a, sizeof a, "%s %s", form[i], p);
        CU_ASSERT_EQUAL(dakd(a), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, origin[i]));
        CU_ASSERT(!has_negative_zero(out));
    }
}

static void test_convert_round_trip(void) {
    char a[4096];
    snprintf(a, sizeof a, "convert %s/2d/source_000_label.png %s/2d/l.nii", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    snprintf(a, sizeof a, "convert %s/2d/l.nii %s/2d/l2.png", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    /* PNG -> NIfTI -> PNG keeps the pixels: compare the label summaries */
    static char first[sizeof out];
    snprintf(a, sizeof a, "info %s/2d/source_000_label.png | grep labels", dir);
    dakd(a);
    snprintf(first, sizeof first, "%s", out);
    snprintf(a, sizeof a, "info %s/2d/l2.png | grep labels", dir);
    dakd(a);
    CU_ASSERT_STRING_EQUAL(first, out);
    snprintf(a, sizeof a, "convert --nifti-version 2 %s/source_000_image.nii.gz %s/img2.nii",
             dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
}

static void test_convert_refusals(void) {
    char a[4096];
    /* a 3-D volume does not fit a PNG: exit 4 (unsupported), the reason, no output */
    snprintf(a, sizeof a, "convert %s/source_000_label.nii.gz %s/refused.png", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "refused.png"));
    CU_ASSERT(!dk_test_exists(dk_test_path(dir, "refused.png")));
    CU_ASSERT_EQUAL(leftover_temps(dir), 0);
    /* unwritable output: a path under a regular file, exit 2 (I/O) */
    snprintf(a, sizeof a, "convert %s/source_000_label.nii.gz %s/source_000_label.nii.gz/x.nii",
             dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "x.nii"));
    /* missing input: exit 2, named */
    snprintf(a, sizeof a, "info %s/missing.nii.gz", dir);
    CU_ASSERT_EQUAL(dakd(a), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "missing.nii.gz"));
    snprintf(a, sizeof a, "convert %s/source_000_label.nii.gz %s/out.xyz", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 4);
}

static void test_truncated_input(void) {
    char a[4096];
    /* cut a compressed NIfTI in half: non-zero exit, file named, nothing written */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "head -c 2000 %s/source_000_image.nii.gz > "
                                     "%s/cut.nii.gz", dir, dir), 0);
    snprintf(a, sizeof a, "convert %s/cut.nii.gz %s/from_cut.nii", dir, dir);
    int rc = dakd(a);
    CU_ASSERT(rc == 2 || rc == 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cut.nii.gz"));
    CU_ASSERT(!dk_test_exists(dk_test_path(dir, "from_cut.nii")));
    /* a PNG cut short */
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "head -c 100 %s/2d/source_000_image.png > "
                                     "%s/cut.png", dir, dir), 0);
    snprintf(a, sizeof a, "info %s/cut.png", dir);
    rc = dakd(a);
    CU_ASSERT(rc == 2 || rc == 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cut.png"));
}

/* --threads before or after the command, or as --threads=N; bad values are usage errors */
static void test_threads_anywhere(void) {
    char a[4096];
    CU_ASSERT_EQUAL(dakd("--threads 1 --version"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "threads 1"));
    CU_ASSERT_EQUAL(dakd("--version --threads=3"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "threads 3"));
    snprintf(a, sizeof a, "info %s/source_000_label.nii.gz --threads 1", dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "32 x 28 x 12"));
    snprintf(a, sizeof a, "info --threads=2 %s/source_000_label.nii.gz", dir);
    CU_ASSERT_EQUAL(dakd(a), 0);
    snprintf(a, sizeof a, "info %s/source_000_label.nii.gz --threads", dir);
    CU_ASSERT_EQUAL(dakd(a), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--threads"));
    snprintf(a, sizeof a, "info %s/source_000_label.nii.gz --threads 0", dir);
    CU_ASSERT_EQUAL(dakd(a), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1..1024"));
    CU_ASSERT_EQUAL(dakd("--threads 2 --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "X,Y,Z"));
    CU_ASSERT_EQUAL(dakd("--bogus info"), 1);
}

/* info on a folder where nothing can be read, or a missing file: non-zero, named; the
 * readable paths are still described */
static void test_info_nothing_read(void) {
    char a[4096];
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p %s/nodicom && echo text > "
                                     "%s/nodicom/notes.txt", dir, dir), 0);
    snprintf(a, sizeof a, "info %s/nodicom", dir);
    CU_ASSERT_EQUAL(dakd(a), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nodicom: no DICOM series"));
    snprintf(a, sizeof a, "info %s/source_000_label.nii.gz %s/nodicom", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "32 x 28 x 12"));
    snprintf(a, sizeof a, "info --json %s/nodicom", dir);
    CU_ASSERT_EQUAL(dakd(a), 2);
}

/* Training on 0/255 label maps stops before the first step naming the file, its values and
 * the fix; with [data] label_map = 255:1 it trains. */
static void test_train_0_255(void) {
    char p[4096], a[8192];
    dk_volume v;
    snprintf(p, sizeof p, "%s/2d/source_000_label.png", dir);
    CU_ASSERT_EQUAL_FATAL(dk_volume_read(&v, p), DK_OK);
    for (int64_t i = 0; i < dk_volume_numel(&v); i++)
        dk_volume_set(&v, i, dk_volume_get(&v, i) != 0 ? 255 : 0);
    snprintf(p, sizeof p, "%s/2d/mask255.png", dir);
    CU_ASSERT_EQUAL_FATAL(dk_volume_write(&v, p, NULL), DK_OK);
    dk_volume_free(&v);
    CU_ASSERT_EQUAL_FATAL(
        dk_test_sh(NULL, 0,
                   "cd %s/2d && printf 'case,image,label\nc0,source_000_image.png,mask255.png\n' "
                   "> cases255.csv && printf '[data]\ncases = %s/2d/cases255.csv\n"
                   "domain_column =\nsplit_column =\npatch_h = 16\npatch_w = 16\n"
                   "batch_size = 2\n[model]\nteacher_base = 4\nteacher_levels = 2\n"
                   "student_base = 2\nstudent_levels = 2\n[train]\nepochs = 1\n"
                   "steps_per_epoch = 1\nvalidate_every = 0\ncheckpoint_every = 0\n' "
                   "> train255.ini", dir, dir),
        0);
    snprintf(a, sizeof a, "train %s/2d/train255.ini --set output.run_dir=%s/2d/run255", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mask255.png: the label map holds 0 ("));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "255 ("));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "label_map = 255:1"));
    CU_ASSERT(!dk_test_exists(dk_test_path(dir, "2d/run255/model.safetensors")));
    snprintf(a, sizeof a, "train %s/2d/train255.ini --set data.label_map=255:1 --set "
             "output.run_dir=%s/2d/run255", dir, dir);
    int rc = dakd(a);
    if (rc) printf("\n    %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(dk_test_exists(dk_test_path(dir, "2d/run255/model.safetensors")));
    snprintf(a, sizeof a, "train %s/2d/train255.ini --set data.label_map=255:7 --set "
             "output.run_dir=%s/2d/run255b", dir, dir);
    CU_ASSERT_EQUAL(dakd(a), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "label_map = '255:7'"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("cli", setup, NULL);
    CU_add_test(s, "help, version, usage errors", test_help_version);
    CU_add_test(s, "phantom makes missing parent folders", test_phantom_makes_parents);
    CU_add_test(s, "info text and JSON", test_info_text_and_json);
    CU_add_test(s, "info prints no -0", test_info_no_negative_zero);
    CU_add_test(s, "convert PNG <-> NIfTI", test_convert_round_trip);
    CU_add_test(s, "convert refusals and exit codes", test_convert_refusals);
    CU_add_test(s, "truncated inputs", test_truncated_input);
    CU_add_test(s, "--threads before or after the command", test_threads_anywhere);
    CU_add_test(s, "info exits non-zero when nothing was read", test_info_nothing_read);
    CU_add_test(s, "train refuses 0/255 labels; label_map fixes it", test_train_0_255);
    return dk_test_run();
}
