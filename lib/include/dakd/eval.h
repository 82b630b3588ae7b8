/*
 * dakd/eval.h — segmentation metrics under one stated convention, exact distance
 * transforms, evaluation reports, and sliding-window inference.
 *
 * What it does: per-label overlap and surface metrics between a predicted and a reference
 * label map on one grid (optionally inside a mask), in millimetres with anisotropic
 * spacing; summaries over cases; CSV / JSON / Markdown / HTML reports; paired comparison of
 * two runs (Wilcoxon signed-rank); sliding-window prediction with Gaussian blending.
 * What it does not: no resampling (prediction and reference must share a grid; a
 * mismatch is refused), no training.
 *
 * ============================================================ THE CONVENTION (one, stated)
 *
 * Voxel sets. For label l: P = {pred == l}, R = {ref == l}, both intersected with the mask
 * when one is given (voxels outside the mask do not exist for any metric, TN included).
 * TP = |P∩R|, FP = |P\R|, FN = |R\P|, TN = |counted voxels| − TP − FP − FN.
 *   Dice = 2TP / (2TP + FP + FN)        IoU = TP / (TP + FP + FN)
 *   precision = TP / (TP + FP)          recall (sensitivity) = TP / (TP + FN)
 *   specificity = TN / (TN + FP)
 *   volumes = |P|·v, |R|·v with v = spacing_x·spacing_y·spacing_z (mm³)
 *   volume similarity = 1 − | |P| − |R| | / (|P| + |R|)
 *
 * Boundaries. ∂S = voxels of S with at least one face neighbour (6-connectivity in 3-D,
 * 4 in 2-D, i.e. along the image's axes) NOT in S; a neighbour outside the image (or
 * outside the mask) counts as not in S, so S's voxels on the image edge are boundary
 * voxels (as MedPy / scipy binary_erosion with border_value 0).
 * Distances are Euclidean in mm between voxel CENTRES, computed by an exact separable
 * squared Euclidean distance transform (Felzenszwalb–Huttenlocher lower envelope of
 * parabolas, one pass per axis, with the axis' spacing) — never brute force.
 *   d(a, ∂B) = min over b in ∂B of ||a − b||  for a in ∂A, and symmetrically.
 *   D = the POOLED multiset {d(a,∂R) : a in ∂P} ∪ {d(b,∂P) : b in ∂R}
 *   HD   = max D  (= max of the two directed Hausdorff distances)
 *   HD95 = 95th percentile of the pooled D, numpy's default "linear" interpolation
 *          (MedPy's hd95); NOT MONAI's max of the two directed percentiles, NOT
 *          plastimatch's boundary mean.  DK_EVAL_HD95_NAME names it in every report.
 *   ASSD = mean of the pooled D = (Σ_{∂P} d + Σ_{∂R} d) / (|∂P| + |∂R|)
 *          (Heimann et al. 2009; MedPy's assd is the mean of the two directed means).
 *   NSD(τ) = (|{a in ∂P : d(a,∂R) ≤ τ}| + |{b in ∂R : d(b,∂P) ≤ τ}|) / (|∂P| + |∂R|)
 *          (normalised surface Dice of Nikolov et al. 2021, counting boundary voxels).
 *
 * Empty masks (the same in the docs and every report header):
 *   both P and R empty   → Dice = IoU = precision = recall = volume similarity = 1,
 *                          HD = HD95 = ASSD = 0, NSD = 1; not flagged.
 *   exactly one empty    → Dice = IoU = 0, and the ratio with a zero denominator NaN:
 *                          P empty, R not: precision = NaN (0/0), recall = 0;
 *                          R empty, P not: precision = 0, recall = NaN;
 *                          volume similarity = 0; HD = HD95 = ASSD = NSD = NaN;
 *                          the case is FLAGGED for that label.
 *   specificity with TN + FP = 0 (the label fills every counted voxel) = NaN.
 * Summaries over cases count NaN values out of n but report them: every summary row has
 * n (finite values), flagged (cases flagged for that label), and the statistics over the
 * n finite values. Dice of a flagged case is 0 and therefore IS in Dice's mean.
 * Summary statistics: mean; std with ddof = 1 (sample std; 0 when n = 1); median, q1, q3
 * (numpy "linear" percentiles; IQR = q3 − q1); min; max.
 *
 * Units. Distances and volumes are in mm from the files' spacing, unless the run asks for
 * voxels (dk_metric_opts.unit = DK_UNIT_VOXELS; `dakd eval --distance-unit voxels`, an eval
 * stage's distance_unit = voxels): then every spacing is taken as 1, so distances are
 * Euclidean in voxel steps on the index grid, NSD's τ is in voxels, volumes are voxel
 * counts, and every report says "voxels" (the two volume columns are vol_pred_voxels and
 * vol_ref_voxels). For data whose voxel size is unknown (an identity affine that may mean
 * nothing), a number in "mm" would claim what the header cannot back.
 */
#ifndef DAKD_EVAL_H
#define DAKD_EVAL_H

#include "dakd/core.h"
#include "dakd/data.h"
#include "dakd/nn.h"
#include "dakd/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DK_EVAL_HD95_NAME "pooled (MedPy): 95th percentile, numpy linear, of both directions' boundary distances together"

/* ======================================================================== distance transform */

/* Exact squared Euclidean distance transform with anisotropic spacing:
 *   out[v] = min over u with feat[u] != 0 of  Σ_axis (spacing_axis · (v_axis − u_axis))²
 * over the nx·ny·nz grid (x fastest), in mm². Voxels with feat != 0 get 0. With no feature
 * voxel at all every out[v] = +INFINITY. Separable (one lower-envelope pass per axis,
 * Felzenszwalb & Huttenlocher 2012), O(N) per pass; float32 output (exact for integer
 * squared distances below 2^24 mm² with unit spacing; the accumulation is in double per
 * line). Parallel over lines with the OpenMP pool; results do not depend on the thread
 * count. work: dk_edt_work_bytes(nx, ny, nz) bytes of caller scratch (or NULL: allocated);
 * the size depends on dk_get_threads(): query it again after dk_set_threads. */
size_t dk_edt_work_bytes(int64_t nx, int64_t ny, int64_t nz);
dk_status dk_edt_sq(float *out, const uint8_t *feat, int64_t nx, int64_t ny, int64_t nz,
                    const double spacing[3], void *work);

/* ======================================================================== metrics */

typedef struct {
    int label;
    int64_t tp, fp, fn, tn;       /* voxel counts (inside the mask when one is given) */
    int64_t n_pred, n_ref;        /* |P|, |R| */
    int64_t n_bpred, n_bref;      /* boundary voxels |∂P|, |∂R| */
    double vol_pred_mm3, vol_ref_mm3; /* in voxels under DK_UNIT_VOXELS (= n_pred, n_ref) */
    double dice, iou, precision, recall, specificity, vol_sim;
    double hd, hd95, assd, nsd;   /* mm or voxels (nsd a fraction); NaN per the convention */
    int flagged;                  /* exactly one of P, R empty */
    int both_empty;
} dk_label_metrics;

/* The unit of distances and volumes (the banner's "Units"). */
typedef enum { DK_UNIT_MM = 0, DK_UNIT_VOXELS } dk_distance_unit;

/* Their spellings in enum order, NULL-terminated ("mm", "voxels"): config tables and
 * reports read them from here. */
extern const char *const dk_distance_unit_names[];

typedef struct {
    double nsd_tol_mm; /* τ for NSD, in the run's unit (default 1.0: 1 mm, or 1 voxel) */
    int surface;       /* compute HD, HD95, ASSD, NSD (default 1; 0 = overlap only, faster:
                        * distances NaN and n_bpred = n_bref = 0) */
    dk_distance_unit unit; /* DK_UNIT_MM (default) or DK_UNIT_VOXELS: every spacing taken
                            * as 1 */
} dk_metric_opts;

void dk_metric_defaults(dk_metric_opts *o);

/* Metrics for `n_labels` labels between pred and ref (integer-valued label maps of any
 * integer dtype, or float holding integers; nc = nt = 1; the same nx, ny, nz and
 * geometry within 1e-4 relative). mask: NULL, or the same grid, nonzero = counted.
 * out[k] is for labels[k]. Errors (DK_ERR_ARG / DK_ERR_FORMAT, message naming pred_name /
 * ref_name and the field): different grids, multi-channel input, a voxel value that is not
 * a non-negative integer (DK_ERR_FORMAT naming the file and the first such voxel), a
 * negative or repeated entry of labels (DK_ERR_ARG). Surface distances are computed inside
 * the bounding box of P ∪ R grown by one voxel (exact: every boundary voxel lies in it), so
 * the memory is 4 bytes per voxel of that box plus one byte per voxel for the sets and
 * their boundaries, plus 8 bytes per boundary voxel. Boundary counts (n_bpred, n_bref) are
 * filled for flagged labels too. Distances come from a float32 transform (relative error
 * ~1e-7); NSD counts d <= τ·(1 + 1e-6) so that a distance equal to τ is not lost to that
 * rounding. Parallel with the OpenMP pool; results do not depend on the thread count. */
dk_status dk_eval_case(dk_label_metrics *out, const dk_volume *pred, const char *pred_name,
                       const dk_volume *ref, const char *ref_name, const dk_volume *mask,
                       const int *labels, int n_labels, const dk_metric_opts *o);

/* The metric columns, in report order, as (name, offset into dk_label_metrics of a double,
 * "higher is better" flag). Reports, summaries and comparisons iterate this table. */
typedef struct {
    const char *name;   /* "dice", "iou", "precision", "recall", "specificity", "vol_sim",
                           "hd", "hd95", "assd", "nsd", "vol_pred_mm3", "vol_ref_mm3" */
    size_t offset;
    int higher_better;
} dk_metric_column;

const dk_metric_column *dk_metric_columns(int *n);

/* A column's name in a run of unit u: its table name, but vol_pred_voxels and
 * vol_ref_voxels for the volumes under DK_UNIT_VOXELS (cases.csv, summary.json, reports). */
const char *dk_metric_column_name(const dk_metric_column *c, dk_distance_unit u);

/* Summary of one metric over cases: NaN values are left out of n (and counted in nan). */
typedef struct {
    int n, nan, flagged;
    double mean, std, median, q1, q3, min, max;
} dk_metric_summary;

/* values (count) may contain NaN; flagged is passed through. */
void dk_metric_summarize(dk_metric_summary *s, const double *values, int count, int flagged);

/* Wilcoxon signed-rank test on paired differences d (NaN pairs dropped, zero differences
 * dropped as scipy's zero_method="wilcox"), two-sided. Statistic W = min(W+, W−) (scipy's).
 * p-value as scipy 1.10's method="auto": exact (distribution of W+ by enumeration) when the
 * number of non-NaN differences is <= 50 and none is zero — with ties too, where scipy
 * evaluates the exact distribution at the integer part of W+ (half ranks truncated);
 * otherwise (more than 50, or any zero) the normal approximation over the non-zero
 * differences with tie correction and no continuity correction. n_used gets the pairs used
 * (non-NaN, non-zero); w = p = NaN when n_used = 0 (scipy raises there). */
void dk_wilcoxon(const double *d, int count, double *w, double *p, int *n_used);

/* 95 % (or any `level`) percentile bootstrap interval of a mean over seeds and cases.
 * x: (n_seeds, n_cases) row-major, every value finite. Each of `resamples` draws picks
 * n_seeds seed rows and n_cases case columns with replacement (one case draw shared by the
 * drawn seeds: the cases are the same images under every seed) and takes the mean of the
 * n_seeds x n_cases drawn values; lo and hi are the (1 - level)/2 and (1 + level)/2
 * percentiles of those means, linearly interpolated (numpy's default). With n_seeds = 1 it
 * is the ordinary bootstrap over cases of a mean (the paired difference). Draws come from
 * a dk_rng seeded with `seed`, so the interval repeats bit for bit. Writes NaN to both
 * when n_seeds or n_cases is 0. */
void dk_bootstrap_mean_ci(double *lo, double *hi, const double *x, int n_seeds, int n_cases,
                          int resamples, double level, uint64_t seed);

/* The resamples and seed of every interval dakd reports (the study table, eval --compare):
 * fixed, so a table repeats bit for bit. */
enum { DK_BOOT_RESAMPLES = 10000 };
#define DK_BOOT_SEED UINT64_C(20240607)

/* ======================================================================== evaluation run */

/* The per-case metrics of an evaluation run, for a caller that computes with them (the
 * study runner's table) instead of reading cases.csv back. The numbers are those of the
 * report, bit for bit. */
typedef struct {
    int n_cases, n_labels;
    char **ids;          /* (n_cases) case ids, in report order (reference names sorted) */
    int *labels;         /* (n_labels) the labels evaluated, in report order */
    dk_label_metrics *m; /* (n_cases * n_labels): case i, labels[k] at m[i * n_labels + k] */
} dk_eval_results;

void dk_eval_results_free(dk_eval_results *r); /* frees and zeroes; accepts NULL */

typedef struct {
    const char *pred_dir, *ref_dir, *mask_dir, *image_dir; /* mask_dir, image_dir optional */
    const int *labels;   /* NULL: every non-zero label present in any reference */
    int n_labels;
    dk_metric_opts metric;
    const char *out_dir;             /* written whole or not at all (temp dir, rename); it
                                      * may not be, nor hold, an input folder (DK_ERR_ARG
                                      * naming both, before anything is written) */
    const char *compare_a, *compare_b; /* two earlier eval out_dirs for --compare, or NULL */
    const char *title;               /* report title (NULL: "dakd evaluation") */
    dk_eval_results *results;        /* out, or NULL: the per-case metrics when the run
                                      * succeeds (the caller frees them with
                                      * dk_eval_results_free); zeroed otherwise and for
                                      * --compare */
    /* References from a case list instead of ref_dir (exactly one of the two): the `label`
     * file of each row, the case named by its `case` column; only the rows that pass every
     * filter of `where` (dk_cases_where, dakd/data.h: "column=value" each, combined with
     * AND). A selected row without a label is DK_ERR_FORMAT naming its line. */
    const char *cases_csv;
    const char *const *where; /* NULL-terminated "column=value" filters, or NULL = all rows */
    int subset_pred; /* score only the references that have a prediction; the others are
                      * passed over and named in the report's notes (default 0: they are
                      * unmatched files, an error) */
    const char *label_names; /* labels file (dk_labels_read, dakd/volume.h) naming the labels
                              * in summary.md, report.html and summary.json ("label_names");
                              * NULL = numbers only. cases.csv keeps the numbers. */
    const char *spacing_csv; /* a case list whose `spacing` column (dakd/data.h) gives the
                              * voxel size of each case's files, matched by case id: its
                              * prediction, reference, mask and image are scored with it
                              * (dk_case_spacing_apply), and a note says so. NULL: the
                              * spacing column of cases_csv, when it has one. */
} dk_eval_opts;

/* Pair the files of pred_dir with the references of ref_dir or cases_csv (and mask_dir,
 * image_dir) by case id, evaluate every case, and write into out_dir: cases.csv (one row
 * per case and label), summary.json, summary.md, report.html (self-contained: overlay PNGs
 * inlined as data URIs, SVG box plots, a table sortable by any column), each carrying the
 * convention, the HD95 definition and the run's notes. With o->results, the same per-case
 * metrics are handed back in memory.
 *  - Case ids: a file's name without its image extension (.nii.gz, .nii, .png, .mha,
 *    .nrrd, ...) and without a role suffix: "_pred" for a prediction; "_label", "_seg" or
 *    "_gt" for a reference; "_mask" for a mask; "_0000" (any 4 digits) or "_image" for an
 *    image. A reference pairs with the prediction of the same name first, then of the same
 *    id (case_label.nii.gz with case.nii.gz, as dakd predict names it); each file pairs
 *    once. Files named "*_probs.*" in pred_dir are not cases; in ref_dir, the image of a
 *    case whose reference is there too (case_image beside case_label) is passed over.
 *  - Unmatched files (a prediction without a reference, a reference without a prediction
 *    unless subset_pred) are DK_ERR_IO naming them; two files of one folder with one id
 *    (x.nii and x.nii.gz) likewise.
 *  - Notes (logged as warnings and written in every report): the references skipped by
 *    subset_pred; label values the references hold that no prediction holds, or the
 *    reverse (a 0/255 reference against predictions 1..3 is scored as it is, not silently).
 * Errors: DK_ERR_ARG (options; an output folder that is or holds an input), DK_ERR_IO
 * (folders, files, pairing), DK_ERR_FORMAT (files that are no label maps, grids that
 * differ, no non-zero label in any reference). */
dk_status dk_eval_run(const dk_eval_opts *o);

/* ======================================================================== inference */

typedef struct {
    int64_t patch[3];   /* d, h, w (d = 1 for 2-D); 0 = the model's training patch in
                         * dk_predict_run, the image rounded up in dk_infer_probs */
    double overlap;     /* fraction of the patch shared by neighbouring windows (0.5) */
    int gaussian;       /* Gaussian importance weighting, sigma = patch/8 (nnU-Net) (1) */
    int tta_flips;      /* average over all axis flips (2-D: 4, 3-D: 8 passes) (0) */
    int largest_cc;     /* keep the largest connected component of each label (0;
                         * dk_predict_run applies it, dk_infer_probs ignores it) */
    int batch;          /* windows per forward pass (4) */
} dk_infer_opts;

void dk_infer_defaults(dk_infer_opts *o);

/* Sliding-window class probabilities for one preprocessed image (C, 1, Z, Y, X float32 as
 * dk_case_prepare makes it) with a model in inference mode: probs (classes, Z, Y, X)
 * float32, caller-allocated.
 *  - Windows: patch (d, h, w); a 0 entry here means the image's size along that axis
 *    rounded up to the network's multiple along that axis, dk_unet_multiple (2^(levels-1)
 *    when isotropic; the product of the pool strides along it, e.g. 4 x 16 x 16 for
 *    1x2x2 pools first) (dk_predict_run puts the model's training patch there first). A 2-D
 *    network takes d = 1 and runs slice by slice over a volume. Every entry > 1 must be a
 *    multiple of that axis' multiple (DK_ERR_ARG otherwise).
 *  - An axis shorter than the patch is padded symmetrically (nnU-Net's pad_nd_image: the
 *    smaller half before) with 0, the normalised background, and cropped back after.
 *  - Window starts per axis: dk_infer_window_starts (nnU-Net's rule).
 *  - Each window's softmax probabilities (the full-resolution "logits" head; deep
 *    supervision heads are not used) are multiplied by the importance map
 *    (dk_infer_gaussian, or 1 everywhere with gaussian = 0) and summed; the sum is
 *    divided voxel-wise by the summed map, so probabilities sum to 1 per voxel.
 *  - tta_flips: each window is also run flipped along every combination of the network's
 *    spatial axes (2-D: h, w; 3-D: d, h, w), each output flipped back; the window's
 *    prediction is the mean over the 4 (8) combinations (nnU-Net's mirroring).
 *  - Windows (x flips) go through dk_unet_forward `batch` at a time (the last batches are
 *    evened out: ceil(items / ceil(items / batch)) per forward).
 * The network is (re)planned for the window batch and keeps that plan. Errors: DK_ERR_ARG
 * (image not float32, channels != in_channels, bad patch/overlap/batch), DK_ERR_NOMEM. */
dk_status dk_infer_probs(float *probs, dk_unet *net, const dk_volume *image,
                         const dk_infer_opts *o);

/* nnU-Net's window starts along one axis of `size` voxels (size >= patch >= 1):
 * step target = patch·(1 − overlap), n = ceil((size − patch) / target) + 1 windows,
 * starts round(i·(size − patch)/(n − 1)) for i < n (round half to even as numpy; one
 * window at 0 when size == patch), so the first window starts at 0 and the last ends flush
 * with the image. patch == 1 gives every index (a 2-D network over slices).
 * Writes at most `max` starts and returns n (call with max = 0 to count). */
int64_t dk_infer_window_starts(int64_t *starts, int64_t max, int64_t size, int64_t patch,
                               double overlap);

/* Importance map over a patch (d, h, w), w fastest: prod over axes of
 * exp(−(i − c)² / (2σ²)) with σ = patch/8 and c = (patch − 1)/2, the patch's exact centre
 * (MONAI's; nnU-Net centres at patch//2, half a voxel off for even sizes, which would make
 * flipped predictions disagree), so its maximum is 1 at the centre (for even sizes the
 * central voxels share the largest value and the map is scaled so that is 1); values that
 * are 0 in float become the smallest non-zero value (nnU-Net) so no voxel gets no weight.
 * An axis of size 1 has weight 1. */
void dk_infer_gaussian(float *map, const int64_t patch[3]);

/* Argmax of probs (classes, nvox) into labels (nvox); ties go to the lower class. */
void dk_infer_argmax(uint8_t *labels, const float *probs, int classes, int64_t nvox);
/* Keep, for each label 1..classes-1, only its largest face-connected component (6-connected
 * in 3-D, 4 in 2-D); other voxels of that label become 0 (background is not filtered).
 * Equal sizes: the component met first in x-fastest order wins. Union-find, O(N).
 * labels (nz, ny, nx); DK_ERR_NOMEM for the 4-byte-per-voxel work buffer. */
dk_status dk_keep_largest_cc(uint8_t *labels, int64_t nx, int64_t ny, int64_t nz, int classes);

/* A whole prediction run (what `dakd predict` and the study runner call). The model file is
 * a dakd model checkpoint (dk_unet_save by the trainer): its metadata carries the network
 * config and the preprocessing it was trained with ("dakd.data.*": channels, norm, target
 * spacing, patch), so prediction preprocesses exactly as training did. Inputs: explicit
 * image paths, or a cases CSV filtered by column = value (both may be given). For each
 * input, writes out_dir/<case id>.nii.gz (or .png when the input is a 2-D PNG) holding
 * uint8 labels on the input's exact grid and geometry, and with write_probs also
 * out_dir/<case id>_probs.nii.gz (float32, one component per class). Every output file is
 * written atomically; an error names the input file and stops the run.
 *  - Case ids: the CSV's `case` column; for paths, the file (or DICOM folder) name without
 *    its image extension and then without a trailing "_0000" (underscore and any four
 *    digits: nnU-Net's channel suffix) or "_image", so case_0000.nii.gz and
 *    case_image.nii.gz both give case.nii.gz, which dk_eval_run pairs with case.nii.gz or
 *    case_label.nii.gz. Ids must be unique (two inputs with one id are refused naming
 *    both) and usable as file names.
 *  - A case list gives the rows that pass every filter of `where` (AND); a list left with
 *    no row is DK_ERR_ARG naming the CSV and the filters, unless image paths come with it.
 *  - Preprocessing: dk_case_prepare with the model's dakd.data.* options; the CSV's mask
 *    (when there is one and norm_in_mask is set) bounds the normalisation statistics, as in
 *    training. A model without dakd.data.* keys is refused (DK_ERR_FORMAT naming the key).
 *    A model with dakd.data.mask_extent > 0 scales each image by its mask's extent, so
 *    every input needs a mask (DK_ERR_ARG naming the image otherwise).
 *  - When the model resamples (target spacing or size, or mask extent), the class
 *    PROBABILITIES are resampled back linearly onto the input grid (dk_resample to the
 *    input's size, whose grid rule puts the samples at the input's voxel centres) and the
 *    argmax is taken there (as nnU-Net), then the optional largest-component filter.
 *  - A case list's `spacing` (dakd/data.h) replaces the voxel size of the image and mask
 *    for the preprocessing only, as training read them.
 *  - Outputs carry the input's grid, geometry and NIfTI header fields bit for bit (the
 *    file's, not a case list's spacing), except cal_min/cal_max (the image's display
 *    window), which are cleared.
 *  - Before anything is written: the model is read, every input's header is read and its
 *    channel count checked against the model, ids are checked, no output (out_dir, a
 *    case's labels or probabilities) may be an input (the model, the case list, an image
 *    or a mask: same path or inode; DK_ERR_ARG naming both), out_dir is made and probed
 *    for writing. A later failure (a damaged file) leaves the earlier cases' outputs,
 *    each complete.
 *  - One dk_log INFO line per case: "<id>: XxYxZ -> <output>  <ms> ms".
 *  - ms_per_image: median over cases of the time from the preprocessed image to the label
 *    map on the input grid (sliding window, TTA, resampling back, argmax, largest
 *    component); reading, preprocessing and writing are not included.
 * Errors: DK_ERR_ARG (options, ids, patch, a missing mask), DK_ERR_IO (model, image,
 * out_dir), DK_ERR_FORMAT (model metadata, files, an image's channels that do not fit the
 * model), DK_ERR_UNSUPPORTED (nt > 1), DK_ERR_NOMEM. */
typedef struct {
    const char *model;                 /* model .safetensors */
    const char *const *inputs;         /* NULL-terminated image paths, or NULL */
    const char *cases_csv;             /* or NULL */
    const char *const *where;          /* NULL-terminated "column=value" filters of its rows,
                                        * all must hold (dk_cases_where, dakd/data.h), e.g.
                                        * {"site=a", "split=test", NULL}; NULL = all rows */
    const char *out_dir;               /* created if missing */
    dk_infer_opts infer;
    int write_probs;
    double *ms_per_image;              /* out, may be NULL: median inference ms per image */
    int dicom_seg;                     /* also out_dir/<case id>.seg.dcm: the labels as a DICOM
                                        * SEG of the input series (dk_dicom_seg_write); every
                                        * input must then be DICOM (DK_ERR_ARG otherwise) */
    const char *label_names;           /* labels file naming the SEG's segments (format:
                                        * dk_labels_read, values 0..classes-1); NULL = none */
} dk_predict_opts;

dk_status dk_predict_run(const dk_predict_opts *o);

/* ======================================================================== a model's images
 *
 * The images a prediction run would segment, read and prepared exactly as dk_predict_run
 * prepares them, but not predicted: for runs over a model's own inputs (dakd adapt
 * re-estimates the model's batch-norm statistics on them, dakd/train.h). */
typedef struct {
    dk_unet *net;        /* the model (dk_unet_open: frozen); owned */
    int64_t patch[3];    /* its training patch (d, h, w), dakd.data.patch */
    int classes;         /* dakd.data.classes */
    dk_case_data *cases; /* (n) preprocessed images (and masks, when read); no labels; owned */
    int n;
} dk_predict_inputs;

/* Open `model` as dk_predict_run does, gather the image paths `inputs` (NULL-terminated, or
 * NULL) and then the rows of `list` (already filtered; NULL = none), check them as
 * dk_predict_run does before it writes anything (usable, unique ids; a mask for every image
 * of a mask_extent model; channel counts), then read and preprocess each with the model's
 * dakd.data.* options. A row's mask is read when the model uses one (norm_in_mask or
 * mask_extent > 0); labels are never read. On failure *out is zeroed: DK_ERR_ARG (no input,
 * the checks above) and the errors of dk_predict_run's reading. */
dk_status dk_predict_inputs_read(dk_predict_inputs *out, const char *model,
                                 const char *const *inputs, const dk_case_list *list);
void dk_predict_inputs_free(dk_predict_inputs *p); /* accepts NULL; zeroes it */

/* ======================================================================== case lists from folders
 *
 * dk_cases_import (dakd cases) writes a case list (the CSV of dakd/data.h) from the folders
 * people have, after checking every row:
 *  - DK_LAYOUT_NNUNET, an nnU-Net v2 raw dataset: root/imagesTr/CASE_XXXX<ending> (XXXX the
 *    channel, 0000 ...) with root/labelsTr/CASE<ending>, optional root/imagesTs (and
 *    root/labelsTs); dataset.json gives channel_names (or modality), labels (classes = the
 *    largest value + 1) and file_ending (default .nii.gz). Rows of imagesTr have split
 *    "train", of imagesTs "test".
 *  - DK_LAYOUT_MSD, a Medical Segmentation Decathlon task: dataset.json's "training"
 *    ({"image", "label"} paths relative to root) and "test" (image paths), "labels" ("0":
 *    "background", ...) and "modality"; splits "train" and "test". A 4-D image's volumes are
 *    its modalities (read as channels, dakd/data.h "a case's image").
 *  - DK_LAYOUT_FOLDERS, two plain folders (`images`, `labels`; labels may be NULL: every row
 *    unlabelled), paired by the rule of dakd eval (lib/eval/pairing.c): an image's id is its
 *    name without the extension and "_0000" (any four digits) or "_image", a label's without
 *    "_label", "_seg" or "_gt"; equal stems pair first, then stem with id, then ids. Images
 *    whose names differ only in the four digits are the channels of one case.
 *  - DK_LAYOUT_DICOM: every sub-folder of root holding DICOM is one case (its id the folder
 *    name) of exactly one image series; labels (any volume format) come from the folder
 *    `labels` paired by id as above.
 * DK_LAYOUT_AUTO picks MSD when root/dataset.json has "training", nnU-Net when root/imagesTr
 * exists, DICOM otherwise; `images` alone means folders.
 *
 * Columns: case, image (channel 0's file), image_1, image_2, ... when a case has several
 * channel files, then label when any row has one (empty for unlabelled rows), then
 * domain and split when known. A value comes from `domain` / `split` (every row), or from a
 * POSIX extended regular expression matched against the row's origin, the path of its first
 * image file relative to the folder given (root, or `images`; a DICOM case's folder name):
 * the first parenthesised group, or the whole match without one (domain_pattern
 * "^images(Tr|Ts)" gives Tr / Ts, "(site[A-Z])_" gives siteA ...). Paths in the CSV are
 * relative to its folder when the file lies below it, absolute otherwise.
 *
 * Checks, each failure one problem line naming the file: names that fit no case (a channel
 * missing, an image without label, a label without image, a name without the channel
 * suffix in nnU-Net), files that cannot be read, channels or image and label on different
 * grids, a channel count that differs from dataset.json's or from the first case's, label values that are not integers or not in
 * 0..classes-1 (classes from dataset.json or opts; without either, 255 is refused and the
 * largest value found + 1 is reported), a pattern that does not match. Every row is checked
 * and every problem kept; with any problem nothing is written.
 */
typedef enum {
    DK_LAYOUT_AUTO = 0,
    DK_LAYOUT_NNUNET,
    DK_LAYOUT_MSD,
    DK_LAYOUT_FOLDERS,
    DK_LAYOUT_DICOM
} dk_layout;

typedef struct {
    dk_layout layout;
    const char *root;           /* dataset folder (nnU-Net, MSD) or folder of DICOM studies */
    const char *images, *labels;/* plain folders; labels may be NULL; DICOM: labels only */
    const char *domain, *split; /* one value for every row, or NULL */
    const char *domain_pattern, *split_pattern; /* regular expressions (above), or NULL */
    int classes;                /* > 0: label values 0..classes-1; 0: dataset.json's */
    const char *out;            /* the CSV to write; never one of the inputs */
} dk_import_opts;

typedef struct {
    dk_layout layout;           /* the layout read */
    int n_cases, n_labelled;
    int channels;               /* image channels per case (files stacked, 4-D read as channels) */
    int classes;                /* as checked; from the values found when none was given */
    int classes_found;          /* 1: classes is the largest label value + 1 */
    char rule[512];             /* how files were matched into cases, for the user */
    char **problems;            /* (n_problems) one line each; owned */
    int n_problems;
} dk_import_result;

/* Read the folders of `o`, check every row and write o->out (atomically) when there was no
 * problem. `r` is filled either way (problems listed). Returns DK_OK; or the status of the
 * first problem (DK_ERR_IO unmatched or unreadable files, DK_ERR_FORMAT invalid content,
 * DK_ERR_UNSUPPORTED) with the message "<n> problems in <what>; nothing written"; DK_ERR_ARG
 * for bad options (a layout that does not fit, a bad pattern, out being an input, no case),
 * DK_ERR_IO for an unwritable out, DK_ERR_NOMEM. */
dk_status dk_cases_import(dk_import_result *r, const dk_import_opts *o);
void dk_import_result_free(dk_import_result *r); /* accepts NULL; zeroes it */
/* "nnunet", "msd", "folders", "dicom", "auto"; dk_layout_parse: -1 for an unknown name. */
const char *dk_layout_name(dk_layout l);
int dk_layout_parse(const char *name);

#ifdef __cplusplus
}
#endif

#endif
