/* The ITK bridge when dakd is built without ITK (-DDAKD_WITH_ITK=OFF): every entry point
 * fails with DK_ERR_UNSUPPORTED naming the file, so DICOM, MetaImage and NRRD requests
 * get a clear answer instead of a link error. Built with ITK, the itk_*.cxx files define them. */
#include "itk_bridge.h"

#include <string.h>

#ifndef DAKD_WITH_ITK

static dk_status no_itk(const char *path) {
    return dk_fail(DK_ERR_UNSUPPORTED,
                   "%s: dakd was built without ITK (DICOM, MetaImage and NRRD need "
                   "-DDAKD_WITH_ITK=ON)",
                   path);
}

dk_status dk_itk_require(const char *path) { return no_itk(path); }

dk_status dk_itk_dcm_scan(dk_dcm_file *f) { return no_itk(f->path); }

void dk_itk_dcm_clear(dk_dcm_file *f) { (void)f; }

dk_status dk_itk_dcm_read_pixels(void *base, int use_double, const dk_dcm_file *f,
                                 const int64_t *slot) {
    (void)base, (void)use_double, (void)slot;
    return no_itk(f->path);
}

dk_status dk_itk_dcm_read_seg_pixels(unsigned char **buf, size_t *nbytes, const char *path) {
    *buf = NULL;
    *nbytes = 0;
    return no_itk(path);
}

dk_status dk_itk_dcm_write_seg(const dk_seg_spec *s) { return no_itk(s->path); }

dk_status dk_itk_image_read(dk_volume *v, const char *path, int header_only) {
    (void)header_only;
    memset(v, 0, sizeof *v);
    return no_itk(path);
}

dk_status dk_itk_image_write(const dk_volume *v, const char *path, int gzip_level) {
    (void)v, (void)gzip_level;
    return no_itk(path);
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int dk_itk_stub_unused;
#endif
