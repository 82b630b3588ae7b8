/*
 * Shared between nifti_read.c and nifti_write.c (not a public header): how a file name
 * maps onto the header file and the image file, and how NIfTI datatype codes map onto
 * dk_dtype.
 */
#ifndef DAKD_NIFTI_INTERNAL_H
#define DAKD_NIFTI_INTERNAL_H

#include <nifti2_io.h>

#include "dakd/volume.h"

enum { DK_NIFTI_PATH_MAX = 4096 };

/* The files behind one name. A single file (.nii, .nii.gz) has hdr == img; a pair is
 * .hdr + .img (or .hdr.gz + .img.gz), named by either member. Both members of a pair share
 * the compression of the name given, so x.hdr never pulls in x.img.gz. */
typedef struct {
    char hdr[DK_NIFTI_PATH_MAX];
    char img[DK_NIFTI_PATH_MAX];
    int pair; /* 1 for .hdr/.img */
    int gz;   /* 1 if the files are gzip-compressed */
} dk_nifti_files;

/* Fill `f` from `path` by its extension (case-insensitive). DK_ERR_ARG naming the path
 * for an extension that is not .nii, .nii.gz, .hdr, .hdr.gz, .img or .img.gz, or a path
 * too long. */
dk_status dk_nifti_files_of(dk_nifti_files *f, const char *path);

/* The dk_dtype a NIfTI datatype code is stored as (RGB24/RGBA32 → DK_U8 with
 * *channels = 3/4, else *channels = 1); DK_DT_UNKNOWN for codes dakd does not read. */
dk_dtype dk_nifti_dtype_of(int datatype, int *channels);

/* nifti_xform.c: remember the file's qform and codes in m (reader, once g is the geometry
 * read and m->*_code are set), and put them back into nim (writer, after the geometry and
 * metadata are set) while g is still that geometry. */
void dk_nifti_keep_xforms(dk_nifti_meta *m, const nifti_image *nim, const dk_geometry *g);
void dk_nifti_put_xforms(nifti_image *nim, const dk_nifti_meta *m, const dk_geometry *g);

/* nifti_gz.c: fill out[0..cap) with the first cap uncompressed bytes of the gzip file `path`
 * by inflating it whole with libdeflate. 1 when done; 0, with nothing recorded and out's
 * contents undefined, when the caller must read the file with zlib's stream instead (a file
 * that is damaged, cut, not gzip, holds more than cap bytes in the member where cap ends,
 * or is over 1 GiB compressed): that read then gives the result and any error. */
int dk_nifti_gz_inflate(void *out, size_t cap, const char *path);

#endif
