/* Helpers shared by the files of lib/eval (not part of the public API). */
#ifndef DAKD_EVAL_INTERNAL_H
#define DAKD_EVAL_INTERNAL_H

#include "dakd/eval.h"

/* Case ids from file names (lib/eval/pairing.c's banner has the rule). The role of a file
 * says which suffix its id drops. */
typedef enum { DK_ROLE_IMAGE = 0, DK_ROLE_PRED, DK_ROLE_REF, DK_ROLE_MASK } dk_case_role;

/* Length of `name` without its image extension (.nii.gz, .nii, .hdr(.gz), .img(.gz), .png,
 * .mha, .mhd, .nrrd, .nhdr; any case), or 0 when it has none. */
size_t dk_case_stem_len(const char *name);
/* Length of the case id in stem[0..n): without a trailing role suffix of `role` (image
 * "_NNNN" or "_image", prediction "_pred", reference "_label", "_seg" or "_gt", mask
 * "_mask"); n when there is none or nothing would be left. */
size_t dk_case_id_len(const char *stem, size_t n, dk_case_role role);
/* The channel number of a stem[0..n) "<id>_NNNN" (nnU-Net's four-digit channel suffix),
 * or -1 when it has none. */
int dk_case_channel(const char *stem, size_t n);

/* dk_edt_sq over the voxels whose feat has any bit of `bit` set (dk_edt_sq is bit = 0xFF,
 * only = 0), so several sets coded as bits of one byte map need no separate masks. With
 * only != 0 the result is exact at the voxels whose feat has a bit of `only` set, and
 * undefined elsewhere (lines of the last pass without such a voxel are skipped). */
dk_status dk_edt_sq_bits(float *out, const uint8_t *feat, uint8_t bit, uint8_t only, int64_t nx,
                         int64_t ny, int64_t nz, const double spacing[3], void *work);

/* Voxel value → index into the requested labels (−1: not requested). Values below n_lut
 * are looked up directly; larger ones by binary search in sorted (value, index) pairs. */
typedef struct {
    int32_t *lut; /* (n_lut), n_lut >= 256 */
    int64_t n_lut;
    int64_t *sorted_val; /* (n) ascending */
    int32_t *sorted_idx; /* (n) */
    int n;
} dk_label_lut;

/* Label indices of voxels [off, off + n) of v (nc = nt = 1) into idx[0..n). Returns −1, or
 * the flat index of the first voxel that is not a non-negative integer. */
int64_t dk_label_row(int32_t *idx, const dk_volume *v, int64_t off, int64_t n,
                     const dk_label_lut *t);

/* mask row: 1 where counted (mask == NULL: all). */
void dk_mask_row(uint8_t *m, const dk_volume *mask, int64_t off, int64_t n);

/* A crop of the grid: origin (voxel) and extent per axis. */
typedef struct {
    int64_t o[3], n[3];
} dk_crop;

/* Reusable buffers of the surface computation (one evaluation, all its labels). */
typedef struct {
    uint8_t *codes;   /* (crop voxels): bit 1 = P, 2 = R, 4 = ∂P, 8 = ∂R */
    float *edt;       /* (crop voxels) */
    size_t cap;       /* voxels codes/edt hold */
    double *dist;     /* (n_bpred + n_bref) pooled distances */
    size_t dist_cap;
    int64_t *row_bp, *row_br; /* per crop row: boundary voxel offsets (prefix sums) */
    size_t row_cap;
    int32_t *rows;    /* per thread: 2 label rows of nx int32 + one mask row of nx bytes */
    void *work;       /* dk_edt_sq scratch (work_cap bytes) */
    size_t work_cap;
} dk_surface_bufs;

void dk_surface_bufs_free(dk_surface_bufs *b);

/* Boundary counts and surface distances of label k (index into the lut) inside `crop`:
 * fills m->n_bpred, n_bref and, when both sets are non-empty, hd, hd95, assd, nsd. */
dk_status dk_surface_metrics(dk_label_metrics *m, dk_surface_bufs *b, const dk_volume *pred,
                             const dk_volume *ref, const dk_volume *mask,
                             const dk_label_lut *t, int k, const dk_crop *crop, double tau);

/* The rows dk_cases_import gathers (case_import.c) before it checks and writes them
 * (case_check.c). */
typedef struct {
    char *id;
    char **images;   /* (n_images) channel files in channel order; NULL = missing; owned */
    int n_images;
    char *label;     /* or NULL; owned */
    char *origin;    /* first image relative to the folder given, for patterns; owned */
    const char *split; /* the layout's split ("train", "test") or NULL; static */
} dk_import_row;

typedef struct {
    dk_import_row *rows;
    int n, cap;
    dk_import_result *res;   /* problems go to res->problems */
    dk_status first;         /* status of the first problem (DK_OK: none) */
    int classes, channels;   /* from dataset.json (0: not given) */
    char *json;              /* dataset.json read, or NULL; owned */
} dk_import_set;

/* Keep one problem line (the text of dk_fail's message format); its status is `st`. */
void dk_import_problem(dk_import_set *s, dk_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Gather the rows of o's layout (resolved in r->layout) into s; problems are kept; a
 * return other than DK_OK stops the import (bad options, no folder, no memory). */
dk_status dk_import_gather(dk_import_set *s, const dk_import_opts *o);
void dk_import_set_free(dk_import_set *s);

#endif
