/*
 * Shared between dicom.c (series: scan, group, order, geometry, pixels) and dicom_seg.c
 * (DICOM SEG onto a series grid). Private to lib/io.
 */
#ifndef DAKD_DICOM_INTERNAL_H
#define DAKD_DICOM_INTERNAL_H

#include "itk_bridge.h"

/* The parsed DICOM files of a folder (or one file), and the files passed over. */
typedef struct {
    char **paths;       /* (n) owned */
    dk_dcm_file *files; /* (n) owned; files[i].path == paths[i] */
    int n;
    dk_dicom_skipped *skipped; /* (nskipped) owned: files of the folder not read, and why */
    int nskipped;
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

/* Parse every regular file directly in `dir` (sorted by name), in a child process
 * (dk_dcm_run_isolated); files that are not DICOM, hold no pixels, are damaged or crash
 * GDCM are passed over and listed in s->skipped, each damaged one also logged as a
 * warning. DK_ERR_IO when the folder cannot be read. */
dk_status dk_dcm_set_from_dir(dk_dcm_set *s, const char *dir);
/* Parse one file (in a child process); its failure is the error. */
dk_status dk_dcm_set_from_file(dk_dcm_set *s, const char *path);
void dk_dcm_set_free(dk_dcm_set *s);

/* Check that every element of a Part 10 file ("DICM" at byte 128) fits in the file and in
 * the sequence or item of defined length holding it, that its VRs (in the meta group, and
 * everywhere in an explicit VR dataset) are real VRs, and that only sequences and the pixel
 * data have an undefined length (a deflated dataset is inflated and checked), so that a
 * truncated or corrupt file is reported instead of reaching GDCM's assertions; a file
 * without that header must be a bare little-endian dataset filling the file. DK_ERR_FORMAT
 * naming the file (and the byte where it breaks), DK_ERR_IO when it cannot be read.
 * *damaged (may be NULL) is 1 when the file is a Part 10 file that breaks these rules — a
 * damaged DICOM file rather than a file that is not DICOM — else 0. */
dk_status dk_dcm_check_structure(const char *path, int *damaged);

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

/* ---- Siemens mosaics (dicom_mosaic.c) */

/* Split a scanned mosaic file (mosaic_images > 1) into its tiles: rows, cols and nframes
 * become the tiles', each frame gets its slice's position, mosaic_rows/cols keep the
 * stored size. DK_OK and nothing done for other files; DK_ERR_UNSUPPORTED naming the file
 * when the layout is not a square grid or the slice normal or spacing is missing. */
dk_status dk_dcm_demosaic(dk_dcm_file *f);
/* dk_itk_dcm_read_pixels for a split mosaic: decode the stored image, place tile k at
 * image slot[k] of `base`. */
dk_status dk_dcm_mosaic_read_pixels(void *base, int use_double, const dk_dcm_file *f,
                                    const int64_t *slot);

/* ---- GDCM in a child process (dicom_isolate.c) */

/* Items 0..n-1 (files, usually) worked on in a forked child, so that an abort() or crash
 * inside GDCM ends the child, never the caller. For each item in order the child calls
 * work(arg, i, &flag) and, when it returns DK_OK, send(arg, i, fd) to write its result
 * (NULL = nothing to send); the parent then calls take(arg, i, fd) to read it (NULL =
 * nothing), which returns DK_ERR_IO only when the pipe is cut short. An item that failed
 * in the child (its status and message recorded again in the parent, with work's flag) or
 * on which the child died (DK_ERR_FORMAT naming path(arg, i), flag 1) goes to
 * failed(arg, i, status, flag): it returns 1 to go on with the next item (a fresh child
 * after a death) or 0 to stop the job with that status (failed NULL: always stop). The
 * child shares the parent's memory as it was at fork time; only the pipe and MAP_SHARED
 * memory come back. Call it from one thread of the process at a time (fork). */
typedef struct {
    int n;
    void *arg;
    dk_status (*work)(void *arg, int i, int *flag);
    dk_status (*send)(void *arg, int i, int fd);
    dk_status (*take)(void *arg, int i, int fd);
    int (*failed)(void *arg, int i, dk_status st, int flag);
    const char *(*path)(void *arg, int i);
    const char *doing; /* "parsing the header", for the message when the child dies */
} dk_dcm_job;

/* DK_OK when every item was taken or passed over by `failed`, else the status it stopped
 * with; DK_ERR_INTERNAL when no pipe or process can be made. */
dk_status dk_dcm_run_isolated(const dk_dcm_job *job);
/* For the fuzzers only (tests/fuzz): on = 1 makes dk_dcm_run_isolated call work(arg, i,
 * &flag) in the calling process, with no child, pipe, send or take, so that a crash, an
 * abort or a sanitizer report inside GDCM or the work reaches the fuzzer (in a child it
 * would become an error, as it must for a user) and the work's code counts as coverage.
 * So work must leave its result where take would put it: the child's copy of the memory
 * is then the caller's own. Default 0; the product never sets it. */
void dk_dcm_set_in_process(int on);
/* Exactly n bytes through a pipe (EINTR retried): DK_ERR_IO when it is cut short. */
dk_status dk_dcm_put(int fd, const void *p, size_t n);
dk_status dk_dcm_get(int fd, void *p, size_t n);
/* Zeroed memory a child writes into and the parent sees (MAP_SHARED); NULL on failure.
 * Free with dk_dcm_shared_free(p, bytes), which accepts NULL. */
void *dk_dcm_shared_alloc(size_t bytes);
void dk_dcm_shared_free(void *p, size_t bytes);

#endif
