/*
 * CUnit tests for the case list's `spacing` column (lib/data/cases.c, dk_case_load): the
 * voxel size it gives replaces the files' (every channel, the label, the mask) before the
 * resampling sees it, and a field that is not three numbers > 0 is refused naming the line,
 * the column and the case.
 */
#include "dakd/data.h"
#include "test_data.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>

static const char *scratch(const char *name) { return dk_test_path(dk_test_tmpdir(), name); }

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(scratch(name), "wb");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A NIfTI of 8 x 6 x 2 at 1 mm, origin (3, 4, 5): voxel i holds f(i). */
static void write_volume(const char *name, dk_dtype dt, int (*f)(int)) {
    dk_volume v;
    CU_ASSERT_FATAL(dk_volume_alloc(&v, 8, 6, 2, 1, 1, dt) == DK_OK);
    for (int i = 0; i < 96; i++) {
        if (dt == DK_U8) ((uint8_t *)v.data)[i] = (uint8_t)f(i);
        else ((float *)v.data)[i] = (float)f(i);
    }
    v.geom.origin[0] = 3, v.geom.origin[1] = 4, v.geom.origin[2] = 5;
    CU_ASSERT_FATAL(dk_volume_write(&v, scratch(name), NULL) == DK_OK);
    dk_volume_free(&v);
}

static int ramp(int i) { return i; }
static int half(int i) { return i % 8 >= 4; }
static int all(int i) { return (void)i, 1; }

static void make_files(void) {
    write_volume("sp_img.nii.gz", DK_F32, ramp);
    write_volume("sp_img1.nii.gz", DK_F32, ramp);
    write_volume("sp_lab.nii.gz", DK_U8, half);
    write_volume("sp_mask.nii.gz", DK_U8, all);
}

/* "0.5x0.5x2" halves x and y and doubles z; with [data] spacing 1 x 1 x 2 mm the case then
 * has 4 x 3 x 2 voxels, where the file's own 1 mm gives 8 x 6 x 1; label and mask follow;
 * origin and direction are the file's (moved by the grid rule only); a filtered list keeps
 * the spacing. */
static void test_spacing_column(void) {
    make_files();
    write_text("sp.csv", "case,image,image_1,label,mask,spacing,site\n"
                         "a,sp_img.nii.gz,sp_img1.nii.gz,sp_lab.nii.gz,sp_mask.nii.gz,0.5x0.5x2,x\n"
                         "b,sp_img.nii.gz,sp_img1.nii.gz,sp_lab.nii.gz,sp_mask.nii.gz,,y\n"
                         "c,sp_img.nii.gz,sp_img1.nii.gz,,,1e0x1.5E+0x+3,x\n");
    dk_case_list l, x;
    CU_ASSERT_FATAL(dk_cases_read(&l, scratch("sp.csv")) == DK_OK);
    const double *a = l.cases[0].spacing, *b = l.cases[1].spacing, *c = l.cases[2].spacing;
    CU_ASSERT(a[0] == 0.5 && a[1] == 0.5 && a[2] == 2);
    CU_ASSERT(b[0] == 0 && b[1] == 0 && b[2] == 0);
    CU_ASSERT(c[0] == 1 && c[1] == 1.5 && c[2] == 3);
    CU_ASSERT_FATAL(dk_cases_filter(&x, &l, "site", "x") == DK_OK);
    CU_ASSERT(x.n == 2 && x.cases[1].spacing[1] == 1.5);
    dk_cases_free(&x);
    dk_prep_opts o;
    dk_prep_defaults(&o);
    o.target.spacing[0] = 1, o.target.spacing[1] = 1, o.target.spacing[2] = 2;
    dk_case_data d;
    CU_ASSERT_FATAL(dk_case_load(&d, &l, 0, &o) == DK_OK);
    CU_ASSERT(d.image.nx == 4 && d.image.ny == 3 && d.image.nz == 2 && d.image.nc == 2);
    CU_ASSERT(d.label.nx == 4 && d.label.ny == 3 && d.label.nz == 2);
    CU_ASSERT(d.mask.nx == 4 && d.mask.ny == 3 && d.mask.nz == 2);
    CU_ASSERT(d.image.geom.spacing[0] == 1 && d.image.geom.spacing[2] == 2);
    /* the first edge stays put: origin + (s' - s) / 2 along x with s = 0.5, s' = 1 */
    CU_ASSERT_DOUBLE_EQUAL(d.image.geom.origin[0], 3.25, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(d.image.geom.origin[2], 5.0, 1e-12);
    dk_case_data_free(&d);
    CU_ASSERT_FATAL(dk_case_load(&d, &l, 1, &o) == DK_OK);
    CU_ASSERT(d.image.nx == 8 && d.image.ny == 6 && d.image.nz == 1 && d.label.nz == 1);
    dk_case_data_free(&d);
    dk_cases_free(&l);
}

/* Each bad field is refused with the CSV's line, the column and its number, the case. */
static void test_spacing_refused(void) {
    make_files();
    static const char *const bad[] = {
        "1x1",     "1x1x1x1", "axbxc",    "0x1x1",   "-1x1x1", "nanx1x1", "1x1xinf",
        " 1x1x1",  "1x1x1mm", "\"1,1,1\"", "1e999x1x1", "1xx1", "0x1p3x1x1", "1x1x0.0",
        "x1x1x1",  "1x1x",    ".x1x1",    "1e-400x1x1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "case,image,spacing\nc1,sp_img.nii.gz,1x1x1\n"
                 "c2,sp_img.nii.gz,%s\n", bad[i]);
        write_text("spbad.csv", text);
        dk_case_list l;
        CU_ASSERT_EQUAL(dk_cases_read(&l, scratch("spbad.csv")), DK_ERR_FORMAT);
        CU_ASSERT_EQUAL(l.n, 0);
        const char *e = dk_last_error();
        int ok = strstr(e, "spbad.csv:3: case 'c2': column 'spacing' (3)") != NULL;
        CU_ASSERT(ok);
        if (!ok) printf("\n    %s: %s\n", bad[i], e);
    }
}

void add_spacing_tests(void) {
    CU_pSuite s = CU_add_suite("data_spacing", NULL, NULL);
    CU_add_test(s, "a spacing column replaces the files' voxel size", test_spacing_column);
    CU_add_test(s, "bad spacing fields refused by line, column and case", test_spacing_refused);
}
