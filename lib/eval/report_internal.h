/*
 * The evaluation report's private parts, shared by eval_run.c (pairing, the run, the output
 * folder), report.c (cases.csv, summary.json, summary.md, report.html, the comparison
 * files), svg.c (box plots) and overlay.c (overlay PNGs inlined as data URIs).
 *
 * Text is assembled in a dk_sbuf (dakd/core.h) and written once at the end.
 */
#ifndef DAKD_REPORT_INTERNAL_H
#define DAKD_REPORT_INTERNAL_H

#include "dakd/eval.h"
#include "eval_internal.h"

/* One evaluated case. */
typedef struct {
    char *id;                         /* case id (owned) */
    char *pred, *ref, *mask, *image;  /* paths (owned; mask and image may be NULL) */
    dk_label_metrics *m;              /* (n_labels) in the run's label order (owned) */
    char *overlay_b64;                /* base64 PNG of the overlay (owned, may be NULL) */
    int overlay_w, overlay_h;         /* its size in pixels */
    int64_t overlay_z;                /* slice shown (0 for 2-D) */
    int overlay_3d;                   /* the case is a 3-D volume */
    int64_t overlay_disagree;         /* FP + FN pixels of that slice, over the labels */
    double spacing[3];                /* a case list's voxel size for its files (x, y, z),
                                       * or all 0: the files' own */
} dk_rep_case;

enum { DK_REP_NOTES_MAX = 4 };

/* Everything the writers need. */
typedef struct {
    const dk_eval_opts *opts;
    const char *title;
    dk_rep_case *cases;
    int n_cases;
    const int *labels;
    int n_labels;
    int labels_given;                 /* 1: --labels; 0: found in the references */
    char *notes[DK_REP_NOTES_MAX];    /* what the reader must know: cases skipped, label
                                       * values one side never uses (owned) */
    int n_notes;
    const dk_label_table *names;      /* the labels file's names, or NULL */
} dk_rep_run;

/* Label k of the run as the reports show it: "3 spleen" when the labels file names it,
 * else "3" (buf of n bytes, returned). */
const char *dk_rep_label_text(char *buf, size_t n, const dk_rep_run *r, int k);
/* The labels file's name of label k, or NULL. */
const char *dk_rep_label_name(const dk_rep_run *r, int k);

/* Keep a note for every report (summary.json "notes", summary.md, report.html) and log it
 * as a warning. DK_ERR_NOMEM, or DK_OK. */
dk_status dk_rep_note(dk_rep_run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Where the references came from, for the reports: the folder, or "<csv>" / "<csv> where
 * column = value and column2 = value2", every filter (buf of n bytes). */
const char *dk_rep_ref_source(char *buf, size_t n, const dk_eval_opts *o);

/* The files of one folder with an image extension, sorted by name. */
typedef struct {
    char *name, *path; /* file name and path (owned) */
    char *stem, *id;   /* name without extension; stem without the role suffix (owned) */
} dk_listing_entry;

typedef struct {
    dk_listing_entry *e;
    int n, cap;
} dk_listing;

/* List the case files of `dir` (`what` names it in messages): DK_ERR_IO when it cannot be
 * opened or holds none. */
dk_status dk_listing_read(dk_listing *l, const char *dir, const char *what, dk_case_role role);
/* Append one entry whose stem is name[0..stem_n). */
dk_status dk_listing_add(dk_listing *l, const char *name, const char *path, size_t stem_n,
                         dk_case_role role);
/* Index of the entry whose stem is `id` (or id + one of the suffixes), or -1. */
int dk_listing_find(const dk_listing *l, const char *id, const char *const *suffixes, int ns);
void dk_listing_free(dk_listing *l); /* accepts a zeroed listing */
/* The pairing rule (pairing.c's banner) of the files of `pred` (predictions, or the images of
 * dakd cases: any listing whose ids drop its role's suffix) with those of `ref`: pair[i] =
 * the index in pred of reference i's file, or -1; used (pred->n, zeroed by the caller) marks
 * the files of pred that paired. */
void dk_listing_pair(int *pair, int *used, const dk_listing *pred, const dk_listing *ref);

/* r->cases (and n_cases) from the options: predictions paired with references (a folder or
 * a case list) by the rule of pairing.c, with their masks and images. Unmatched files are
 * an error naming them (DK_ERR_IO), except references without a prediction under
 * subset_pred, which are passed over and named in a note. */
dk_status dk_rep_make_cases(dk_rep_run *r);

/* Append the convention text printed in every report (a summary of eval.h's banner), its
 * units those of u. */
void dk_rep_convention(dk_sbuf *b, dk_distance_unit u);
/* The run's unit as the reports spell it: "mm" or "voxels". */
const char *dk_rep_unit(const dk_rep_run *r);
/* Column c's name in the run's unit (dk_metric_column_name). */
const char *dk_rep_col_name(const dk_rep_run *r, const dk_metric_column *c);

/* "<dir>/<name>" into buf; DK_ERR_ARG when it does not fit. */
dk_status dk_rep_join(char *buf, size_t n, const char *dir, const char *name);
/* The column of dk_metric_columns() called `name`, or NULL. */
const dk_metric_column *dk_rep_find_column(const char *name);

/* The writers: each makes one file in `dir` (atomically). */
dk_status dk_rep_write_csv(const dk_rep_run *r, const char *dir);
dk_status dk_rep_write_json(const dk_rep_run *r, const char *dir);
dk_status dk_rep_write_md(const dk_rep_run *r, const char *dir);
dk_status dk_rep_write_html(const dk_rep_run *r, const char *dir);

/* Values of metric column `col` for label index k over the cases (out: n_cases doubles);
 * returns the number of cases flagged for that label. */
int dk_rep_values(const dk_rep_run *r, int k, const dk_metric_column *col, double *out);

/* An SVG box plot of one metric with one box per group (label): median, IQR box, whiskers
 * to the furthest values within 1.5·IQR of the box (Tukey), the values beyond as dots,
 * NaN left out. values[g] holds counts[g] doubles. */
void dk_svg_boxplot(dk_sbuf *b, const char *metric, const char *const *group_names,
                    const double *const *values, const int *counts, int n_groups);

/* The overlay of one case: the slice with the most disagreement (FP + FN over `labels`;
 * 2-D: the image), background = `image` (mean of its channels, windowed to its 1st–99th
 * percentile) or, without one, the reference labels in grey; the reference contour green,
 * the prediction contour magenta; scaled so that the long side is at most 384 pixels.
 * Fills c->overlay_*; the volumes are those given to dk_eval_case. DK_ERR_ARG when the
 * image's grid differs from the reference's (message naming the case and the file). */
dk_status dk_rep_overlay(dk_rep_case *c, const dk_volume *pred, const dk_volume *ref,
                         const dk_volume *image, const int *labels, int n_labels);

/* The comparison of two earlier runs (dakd eval --compare). */
dk_status dk_rep_compare(const char *run_a, const char *run_b, const char *dir,
                         const char *title);

#endif
