/*
 * Shared between dicom.c (series: scan, group, order, geometry, pixels) and dicom_seg.c
 * (DICOM SEG onto a series grid). Private to lib/io.
 */
#ifndef DAKD_DICOM_INTERNAL_H
#define DAKD_DICOM_INTERNAL_H

#include "itk_bridge.h"

/* The parsed DICOM files of a folder (or one file). */
typedef struct {
    char **paths;       /* (n) owned */
    dk_dcm_file *files; /* (n) owned; files[i].path == paths[i] */
    int n;
} dk_dcm_set;

/* One image (a frame of a file) of a series. */
typedef struct {
    int file, frame;    /* index into the set, frame within the file */
    double pos;         /* ImagePositionPatient . normal, mm */
} dk_dcm_slice;

/* A series laid out on a grid: slice order[t * nz + z] sits at (z, t). */
typedef struct {
    const char *what;   /* borrowed: the folder or file named in messages */
    int64_t nx, ny, nz, nt;
    dk_geometry geom;
    dk_dcm_slice *slices; /* (nz * nt) owned, in (t, z) order: t-major */
    int *files;         /* indices into the set of the series' files; owned */
    int nfiles;
} dk_dcm_plan;

/* Parse every regular file directly in `dir` (sorted by name); files that are not DICOM
 * or hold no pixels are dropped. DK_ERR_IO when the folder cannot be read. */
dk_status dk_dcm_set_from_dir(dk_dcm_set *s, const char *dir);
/* Parse one file; its failure is the error. */
dk_status dk_dcm_set_from_file(dk_dcm_set *s, const char *path);
void dk_dcm_set_free(dk_dcm_set *s);

/* Check that every element of a Part 10 file ("DICM" at byte 128) fits in the file, so a
 * truncated file is reported instead of reaching GDCM's assertions; a file without that
 * header must be a bare little-endian dataset filling the file. DK_ERR_FORMAT naming the
 * file (and the byte where it breaks), DK_ERR_IO when it cannot be read. *cut_short (may be
 * NULL) is 1 when the file is a Part 10 file whose elements run past its end — a DICOM
 * file cut short rather than a file that is not DICOM — and 0 otherwise. */
dk_status dk_dcm_check_structure(const char *path, int *cut_short);

/* Group the files by SeriesInstanceUID in order of first appearance: *groups receives
 * (*ngroups) malloc'd arrays of file indices, counts in *sizes (all malloc'd; free with
 * dk_dcm_groups_free). */
dk_status dk_dcm_group(const dk_dcm_set *s, int ***groups, int **sizes, int *ngroups);
void dk_dcm_groups_free(int **groups, int *sizes, int ngroups);

/* Order the images of files[idx[0..n-1]] on a grid (the DICOM rules of dakd/volume.h). */
dk_status dk_dcm_plan_make(dk_dcm_plan *p, const dk_dcm_set *s, const int *idx, int n,
                           const char *what);
void dk_dcm_plan_free(dk_dcm_plan *p);

/* Choose and plan one series of a folder (opts as dk_read_opts; NULL = must be unique). */
dk_status dk_dcm_plan_series(dk_dcm_plan *p, const dk_dcm_set *s, const dk_read_opts *opts,
                             const char *dir);

#endif
