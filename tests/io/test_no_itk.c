/* Built with -DDAKD_WITH_ITK=OFF: DICOM, MetaImage and NRRD requests fail cleanly with
 * DK_ERR_UNSUPPORTED "built without ITK", naming the path; nothing is written. */
#include <string.h>

#include "dakd/volume.h"
#include "test_util.h"

static void expect_no_itk(dk_status st, const char *path) {
    CU_ASSERT_EQUAL(st, DK_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "built without ITK"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), path));
}

static void test_entry_points(void) {
    const char *dir = dk_test_tmpdir();
    dk_volume v;
    expect_no_itk(dk_volume_read(&v, dir), dir); /* a folder = a DICOM series */
    CU_ASSERT_PTR_NULL(v.data);
    dk_dicom_series *s = NULL;
    int n = -1;
    expect_no_itk(dk_dicom_list_series(&s, &n, NULL, NULL, dir), dir);
    CU_ASSERT(s == NULL && n == 0);
    const char *seg = dk_test_path(dir, "x.dcm");
    expect_no_itk(dk_dicom_seg_read(&v, seg, dir), seg);
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 2, 2, 2, 1, 1, DK_U8), DK_OK);
    const char *out = dk_test_path(dir, "x.nrrd");
    expect_no_itk(dk_volume_write(&v, out, NULL), out);
    CU_ASSERT(!dk_test_exists(out));
    dk_volume_free(&v);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("built without ITK", NULL, NULL);
    CU_add_test(s, "DICOM/MHA/NRRD entry points refuse", test_entry_points);
    return dk_test_run();
}
