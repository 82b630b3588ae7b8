/* File-name dispatch for reading and writing volumes (the atomic-output protocol the
 * writers use is in lib/core/fileio.c). */
#include "dakd/volume.h"
#include "itk_bridge.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { FMT_UNKNOWN, FMT_NIFTI, FMT_PNG, FMT_ITK, FMT_DICOM } file_format;

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static file_format format_of(const char *path) {
    static const char *nifti_ext[] = {".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz"};
    for (size_t i = 0; i < sizeof nifti_ext / sizeof nifti_ext[0]; i++)
        if (ends_with(path, nifti_ext[i])) return FMT_NIFTI;
    if (ends_with(path, ".png")) return FMT_PNG;
    static const char *itk_ext[] = {".mha", ".mhd", ".nrrd", ".nhdr"};
    for (size_t i = 0; i < sizeof itk_ext / sizeof itk_ext[0]; i++)
        if (ends_with(path, itk_ext[i])) return FMT_ITK;
    if (ends_with(path, ".dcm")) return FMT_DICOM;
    return FMT_UNKNOWN;
}

/* What is at `path` when its name does not say: a folder (DICOM series) or a file with the
 * DICOM Part 10 magic "DICM" at byte 128. */
static file_format format_by_content(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return FMT_UNKNOWN;
    if (S_ISDIR(sb.st_mode)) return FMT_DICOM;
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    int is_dicom = f && fseek(f, 128, SEEK_SET) == 0 && fread(magic, 1, 4, f) == 4 &&
                   memcmp(magic, "DICM", 4) == 0;
    if (f) fclose(f);
    return is_dicom ? FMT_DICOM : FMT_UNKNOWN;
}

static dk_status unknown_format(const char *path) {
    return dk_fail(DK_ERR_UNSUPPORTED,
                   "%s: unknown file type (expected .nii, .nii.gz, .hdr/.img, .png, .mha, .mhd, "
                   ".nrrd, .nhdr, .dcm, a DICOM file or a folder of DICOM files)",
                   path);
}

int dk_volume_is_dicom(const char *path) {
    file_format f = format_of(path);
    return (f == FMT_UNKNOWN ? format_by_content(path) : f) == FMT_DICOM;
}

dk_status dk_volume_read(dk_volume *v, const char *path) {
    return dk_volume_read_opts(v, path, NULL);
}

dk_status dk_volume_read_opts(dk_volume *v, const char *path, const dk_read_opts *opts) {
    memset(v, 0, sizeof *v);
    file_format f = format_of(path);
    if (f == FMT_UNKNOWN) f = format_by_content(path);
    switch (f) {
    case FMT_NIFTI: return dk_nifti_read(v, path, 0);
    case FMT_PNG: return dk_png_read(v, path);
    case FMT_ITK: return dk_itk_read(v, path, 0);
    case FMT_DICOM: return dk_dicom_read(v, path, opts);
    default: return unknown_format(path);
    }
}

dk_status dk_itk_read(dk_volume *v, const char *path, int header_only) {
    return dk_itk_image_read(v, path, header_only);
}

dk_status dk_itk_write(const dk_volume *v, const char *path, const dk_write_opts *opts) {
    return dk_itk_image_write(v, path, opts ? opts->gzip_level : 0);
}

dk_status dk_volume_read_header(dk_volume *v, const char *path) {
    memset(v, 0, sizeof *v);
    file_format f = format_of(path);
    if (f == FMT_UNKNOWN) f = format_by_content(path);
    switch (f) {
    case FMT_NIFTI: return dk_nifti_read(v, path, 1);
    case FMT_ITK: return dk_itk_read(v, path, 1);
    case FMT_PNG: {
        /* PNG headers are tiny next to decoding; read fully and drop the pixels. */
        dk_status st = dk_png_read(v, path);
        if (st == DK_OK) {
            dk_free(v->data);
            v->data = NULL;
        }
        return st;
    }
    case FMT_DICOM: {
        /* DICOM pixels are read with the headers they depend on; drop them. */
        dk_status st = dk_dicom_read(v, path, NULL);
        if (st == DK_OK) {
            dk_free(v->data);
            v->data = NULL;
        }
        return st;
    }
    default: return unknown_format(path);
    }
}

dk_status dk_volume_write(const dk_volume *v, const char *path, const dk_write_opts *opts) {
    DK_ASSERT(v && v->data);
    switch (format_of(path)) {
    case FMT_NIFTI: return dk_nifti_write(v, path, opts);
    case FMT_PNG: return dk_png_write(v, path);
    case FMT_ITK: return dk_itk_write(v, path, opts);
    case FMT_DICOM:
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: dakd does not write DICOM (write .nii.gz, "
                       ".nrrd or .mha)", path);
    default: return unknown_format(path);
    }
}
