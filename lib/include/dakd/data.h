/*
 * dakd/data.h — data made or changed before it reaches a network.
 *
 * What it does: the two-domain phantom generator (the embedded demo data); case lists
 * read from CSV; preprocessing of one case into float32 (channel choice, intensity
 * normalisation, resampling, label and mask checks); a patch sampler with foreground
 * oversampling that fills training batches; augmentation of those batches. Everything
 * random takes a dk_rng, so one seed gives the same batches.
 * What it does not do: file formats (dakd/volume.h reads the files), networks
 * (dakd/nn.h), reorientation (volumes keep the grid they were read on), threads.
 *
 * Flow: dk_cases_read → dk_case_load (per case, once) → dk_sampler_init over the loaded
 * cases → per step dk_sampler_step (draw + augment into a caller-owned dk_batch).
 *
 * Layouts. A preprocessed image is a dk_volume of DK_F32 with nt = 1: (C, 1, Z, Y, X),
 * which is the tensor layout (c, d, h, w) with d = Z, h = Y, w = X. Labels and masks are
 * DK_U8 volumes (1, 1, Z, Y, X) on the same grid. A batch is image (n, c, d, h, w) float32,
 * label (n, d, h, w) uint8 and mask (n, d, h, w) uint8. 2-D is d = Z = 1 throughout.
 *
 * Label convention: values 0..classes-1 are classes (0 = background); 255 means "ignore"
 * (no loss, no metric): it marks padding, unlabelled cases and any voxel a label file
 * marks so. Masks are {0, 1}: 1 = a real voxel inside the region of interest (the FOV).
 *
 * Ownership: every struct a function here fills owns its buffers; each has a _free that
 * accepts NULL and leaves it zeroed. The sampler borrows its cases. dk_sampler_fill and
 * dk_sampler_step only read the sampler, so threads may fill their own batches from one
 * sampler, each with its own dk_rng.
 * Failures: loading and preprocessing return a dk_status with one message naming the file
 * (and line and column for CSV) and leave their outputs zeroed. Sampling and augmentation
 * cannot fail: a batch of the wrong shape is a programmer error (DK_ASSERT).
 */
#ifndef DAKD_DATA_H
#define DAKD_DATA_H

#include "dakd/core.h"
#include "dakd/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A synthetic scan with a known label map: a body ellipsoid (label 0 background inside
 * it), an "organ" (label 1, a wobbly ellipsoid), two "kidneys" (label 2) and a curved
 * "vessel" tube (label 3). The domain sets how the labels look:
 *   domain 0 (source): organ 0.75, kidney 0.55, vessel 0.95, body 0.35, background 0;
 *   multiplicative bias field 1 + 0.10 (d . u) (u the position in [-1, 1]^3, d a random
 *   direction in [-1, 1]^3 per case), Gaussian noise sd 0.02;
 *   domain 1 (target): a scanner-like shift, contrast compressed in the same tissue order
 *   (organ 0.62, kidney 0.55, vessel 0.90, body 0.42, background 0.03), bias slope 0.20,
 *   noise sd 0.035.
 * Shapes differ per case through `rng`; the same seed gives the same case. */
typedef struct {
    int64_t nx, ny, nz;  /* grid; nz = 1 makes a 2-D slice phantom */
    double spacing[3];   /* mm; 0 = 1 mm */
    int domain;          /* 0 source, 1 target */
} dk_phantom_opts;

/* Fill `image` (float32, nc = 1) and `label` (uint8) on the same LPS grid (axial,
 * origin at the grid centre). Both are allocated here and owned by the caller.
 * DK_ERR_ARG for bad sizes or domain, DK_ERR_NOMEM. */
dk_status dk_phantom_generate(dk_volume *image, dk_volume *label, const dk_phantom_opts *opts,
                              dk_rng *rng);

/* ================================================================ case lists (CSV)
 *
 * A case list is a CSV file whose header row names the columns. Required: `case` (a
 * unique id) and `image`; optional: `label` and `mask` (or `fov`, the same meaning; `mask`
 * wins when both exist). A case of several image files (nnU-Net's CASE_0000, CASE_0001, ...
 * one modality each) has them in `image` (channel 0) and `image_1`, `image_2`, ... (the
 * channel number in decimal, as many as DK_CASE_IMAGES_MAX - 1, every number from 1 up to the
 * highest present once, every field non-empty); dk_case_image_read stacks them. Every other
 * column (dataset, split, label_2nd, ...) is kept as a string. Fields follow RFC 4180: separated by commas, optionally quoted with "..." where
 * "" stands for one quote and commas and line breaks may appear inside; CRLF or LF line
 * ends; a UTF-8 byte-order mark is skipped; blank lines are skipped; nothing is trimmed.
 * Paths are relative to the CSV file's folder unless absolute.
 *
 * Checked up front, each failure naming "<csv>:<line>: column '<name>' (<k>)": a missing
 * required column (line 1), a row with a different number of fields (DK_ERR_FORMAT), an
 * empty image path (DK_ERR_FORMAT), an image/label/mask file that does not exist
 * (DK_ERR_IO, with the resolved path), a duplicate case id (DK_ERR_FORMAT, naming the
 * line of the first one), an unterminated quote. An empty label or mask field means
 * "none" (an unlabelled target case).
 * Optional `spacing`: the voxel size along x, y, z in mm as three positive numbers joined by
 * 'x' ("0.625x0.625x3.6"; no blanks, so it needs no quoting), replacing the voxel size of
 * the case's files as read (every image channel, the label and the mask; origin and
 * direction kept, as ITK's ChangeInformation or SimpleITK's SetSpacing): for data whose
 * headers carry no real voxel size. Empty = the files' own spacing. A field that is not
 * three finite numbers > 0 is DK_ERR_FORMAT "<csv>:<line>: case '<id>': column 'spacing'
 * (<k>): ...".
 * dakd cases (dk_cases_import, dakd/eval.h) writes such lists from nnU-Net, Decathlon, DICOM
 * or plain folders; the README's "Your own data" describes the format for users.
 */

enum { DK_CASE_IMAGES_MAX = 16 };

typedef struct {
    char *id;       /* the `case` field; owned by the list */
    char *image;    /* channel 0's resolved path: the same pointer as images[0] */
    char **images;  /* (n_images) resolved paths of `image`, `image_1`, ...; owned */
    int n_images;   /* >= 1 */
    char *label;    /* resolved path, or NULL when the column is absent or the field empty */
    char *mask;     /* resolved path, or NULL likewise */
    char **fields;  /* (n_columns) every raw field of the row, as written; owned */
    int line;       /* line of the CSV where the row starts (1 = header) */
    double spacing[3]; /* the `spacing` field (x, y, z mm), or all 0: the files' own */
} dk_case;

typedef struct {
    char *path;       /* the CSV file as given; owned */
    int n_columns;
    char **columns;   /* (n_columns) header names; owned */
    int n;            /* number of cases; may be 0 after filtering */
    dk_case *cases;   /* (n); owned */
} dk_case_list;

/* Read and check a case list. On failure `list` is zeroed and nothing is kept.
 * DK_ERR_IO (unreadable CSV, missing file), DK_ERR_FORMAT (see above), DK_ERR_NOMEM. */
dk_status dk_cases_read(dk_case_list *list, const char *csv_path);

/* Free everything and zero the struct; accepts NULL and a zeroed struct. */
void dk_cases_free(dk_case_list *list);

/* Index of a column by name (exact match), or -1. */
int dk_cases_column(const dk_case_list *list, const char *name);

/* The raw field of `column` for case `i` (borrowed), or NULL when there is no such column
 * (i must be in 0..n-1). */
const char *dk_cases_get(const dk_case_list *list, int i, const char *column);

/* Copy into `out` the cases of `in` whose `column` equals `value` exactly, in order. Call
 * it twice for "dataset == drive and split == train" (in and out must differ). `out` is
 * a new list the caller frees; it may hold 0 cases. DK_ERR_ARG naming the CSV and the
 * column when the column does not exist, DK_ERR_NOMEM. */
dk_status dk_cases_filter(dk_case_list *out, const dk_case_list *in, const char *column,
                          const char *value);

/* Copy into `out` the cases of `in` that pass every filter of `where` ("column=value" each,
 * NULL-terminated; NULL or empty: every case), in order: the filters combine with AND, as
 * `--where dataset=drive --where split=train` (in and out must differ). `out` is a new list
 * the caller frees. DK_ERR_ARG naming the CSV and the filter for one without '=' or with
 * an empty column name, naming the column when it does not exist, and, with need_one,
 * naming the CSV and every filter when no case passes ("<csv>: no case has dataset = drive
 * and split = train"; "<csv>: the case list is empty" without filters); DK_ERR_NOMEM.
 * `out` is zeroed on failure; without need_one it may hold 0 cases. */
dk_status dk_cases_where(dk_case_list *out, const dk_case_list *in, const char *const *where,
                         int need_one);

/* The filters of `where` as the reports and messages write them, "c = v and c2 = v2" (""
 * for none), into buf (n bytes, truncated to fit); returns buf. */
const char *dk_cases_where_text(char *buf, size_t n, const char *const *where);

/* Give `v` a case's `spacing` (dk_case.spacing) when it has one (spacing[0] > 0): its
 * voxel size becomes spacing; origin, direction, header fields and data are kept. Nothing
 * happens for all 0 (the file's own). */
void dk_case_spacing_apply(dk_volume *v, const double spacing[3]);

/* ================================================================ a case's image
 *
 * A case's image is one file or several (one per channel, on one grid). Each file gives
 * its nc channels; a file of nt > 1 volumes of one channel (a 4-D NIfTI, as the Medical
 * Segmentation Decathlon stores its modalities) gives nt channels; nt > 1 with nc > 1 is
 * refused (DK_ERR_UNSUPPORTED). The channels are stacked in file order. */

/* Read `paths[0..n)` into `out`: (C, 1, Z, Y, X) on the first file's grid and geometry.
 * One file keeps its dtype (only a 4-D one is relabelled); several are converted to
 * DK_F32 unscaled. Each further file must lie on the first one's grid (dk_grid_match with
 * `grid_tol`, naming both files). `out` is zeroed on failure. */
dk_status dk_case_image_read(dk_volume *out, const char *const *paths, int n, double grid_tol);

/* The same checks from the headers only: `out` gets the first file's header with nc = the
 * stacked channel count, nt = 1 and data NULL. */
dk_status dk_case_image_header(dk_volume *out, const char *const *paths, int n,
                               double grid_tol);

/* ================================================================ preprocessing
 *
 * One case goes: read → channel choice → intensity normalisation (on the original grid,
 * statistics optionally inside the mask) → resampling (image linear, label and mask
 * nearest) → label check. Each step is also callable alone on volumes.
 */

typedef enum {
    DK_CHANNELS_ALL = 0,   /* keep every channel (RGB fundus → 3 channels) */
    DK_CHANNELS_ONE,       /* one channel by index (green = 1 in RGB fundus images) */
    DK_CHANNELS_LUMINANCE  /* ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B (nc >= 3) */
} dk_channel_mode;

/* Channel choice into a new DK_F32 volume `out` (C', 1, Z, Y, X) on the same grid, values
 * converted unscaled (uint8 255 stays 255.0). `in` may have any dtype; nt must be 1.
 * `index` is used by DK_CHANNELS_ONE. `name` (the file, for messages) may be NULL.
 * DK_ERR_ARG for an index out of range or luminance of fewer than 3 channels,
 * DK_ERR_UNSUPPORTED for nt > 1, DK_ERR_NOMEM. `out` is zeroed on failure. */
dk_status dk_channels_select(dk_volume *out, const dk_volume *in, dk_channel_mode mode,
                             int index, const char *name);

typedef enum {
    DK_INTENSITY_NONE = 0,
    /* Per channel x' = (x - mean) / max(std, 1e-8), population std over the voxels (inside
     * the mask when one is given). */
    DK_INTENSITY_ZSCORE,
    /* Per channel: clip to the [lo_pct, hi_pct] percentiles (numpy's "linear" rule over
     * the voxels, inside the mask when given), then z-score with the mean and std of the
     * clipped values (the same voxels). nnU-Net's CT scheme uses 0.5 / 99.5 over the
     * foreground of the training set; this is its per-case form. */
    DK_INTENSITY_PERCENTILE_ZSCORE,
    /* CT window: x' = clamp((x - (level - width/2)) / width, 0, 1). No statistics. */
    DK_INTENSITY_CT_WINDOW
} dk_intensity_kind;

typedef struct {
    dk_intensity_kind kind;
    double lo_pct, hi_pct;  /* percentiles in [0, 100], lo < hi (default 0.5, 99.5) */
    double level, width;    /* CT window in the image's units (default 40, 400: soft tissue) */
    int zero_outside_mask;  /* with a mask: voxels outside it become 0 after z-scoring, as
                             * nnU-Net's use_mask_for_norm (default 1) */
} dk_norm_opts;

void dk_norm_defaults(dk_norm_opts *o); /* z-score, 0.5/99.5, 40/400, zero_outside_mask 1 */

/* Normalise the DK_F32 volume `img` (C, 1, Z, Y, X) in place, each channel alone.
 * `mask` (uint8 (Z, Y, X), 1 = inside) may be NULL: statistics then use every voxel. A mask
 * with no voxel inside falls back to every voxel. DK_ERR_ARG for a non-float32 volume or
 * bad options; DK_ERR_NUMERIC (naming `name`) for a NaN/Inf in the statistics; DK_ERR_NOMEM
 * for the percentile work buffer. */
dk_status dk_normalize(dk_volume *img, const uint8_t *mask, const dk_norm_opts *o,
                       const char *name);

/* Target grid of a resampling, per index axis (x, y, z): spacing[a] > 0 asks for that
 * spacing, else size[a] > 0 asks for that many voxels, else the axis is kept. */
typedef struct {
    double spacing[3]; /* mm */
    int64_t size[3];
} dk_resample_target;

typedef enum { DK_INTERP_LINEAR = 0, DK_INTERP_NEAREST } dk_interp;

/* The grid rule: the physical extent (outer voxel edges) and the direction are kept.
 * For a target size n' along an axis of n voxels at spacing s: s' = n·s / n'. For a target
 * spacing t: n' = max(1, round(n·s / t)) and then s' = n·s / n' (within half a voxel of t,
 * exactly t when t divides the extent). The origin moves so the first edge stays put:
 * origin' = origin + direction · ((s' - s) / 2) along each axis. Output voxel i' samples the
 * input at continuous index u = (i' + 0.5)·s'/s - 0.5 (pixel centres, as torch's
 * align_corners=False), clamped to [0, n-1] at the borders. So n' = n is an exact copy and
 * a 2x downsample of a linear ramp gives the means of voxel pairs.
 * Linear: trilinear in double, DK_F32 in and out. Nearest: index round(u) (halves go up),
 * any dtype, values copied bit for bit, so a label map keeps its label set (thin
 * structures can vanish when downsampling: resample labels as little as possible).
 * `out` is allocated here (same nc, nt = 1, meta copied) and zeroed on failure.
 * DK_ERR_ARG for nt > 1, linear on a non-float32 volume, a bad target; DK_ERR_NOMEM. */
dk_status dk_resample(dk_volume *out, const dk_volume *in, const dk_resample_target *target,
                      dk_interp interp);

/* The size and spacing dk_resample would produce (no allocation). */
void dk_resample_grid(const dk_volume *in, const dk_resample_target *target, int64_t n_out[3],
                      double spacing_out[3]);

/* Check that the label map `label` (any dtype, nc = nt = 1) holds only 0..classes-1 or
 * `ignore` (255 in dakd; pass -1 to forbid it) and write it as DK_U8 into `out` (allocated
 * here, same grid). A value outside → DK_ERR_FORMAT "<name>: label value V found in N
 * voxels (allowed 0..K-1, 255 = ignore)", naming the smallest bad value and how many other
 * bad values there are, then the values the file holds with their voxel counts and the
 * two fixes ([data] classes, [data] label_map); a non-integer value likewise. `out` is
 * zeroed on failure. */
dk_status dk_label_check(dk_volume *out, const dk_volume *label, int classes, int ignore,
                         const char *name);

/* A label-value map, [data] label_map: "FROM:TO[,FROM:TO]..." (blanks allowed around each
 * part), e.g. "255:1" for binary masks saved as 0/255, or "128:1,255:2". A voxel whose value
 * is a FROM becomes its TO before the label check; other values are kept. FROM is an
 * integer 0..65535 given once; TO is a class 0..classes-1 or 255 (ignore). An empty text is
 * no map. Naming 255 (as FROM or TO) also says what 255 means, so "255:255" keeps it as
 * the ignore label on purpose (see dk_case_prepare). */
enum { DK_LABEL_MAP_MAX = 16, DK_LABEL_MAP_TEXT = 160 };

typedef struct {
    int n;
    int from[DK_LABEL_MAP_MAX], to[DK_LABEL_MAP_MAX];
} dk_label_map;

/* Parse `text` (NULL or "" = no map) for `classes` classes into m. DK_ERR_ARG
 * "[data] label_map = '<text>': <what is wrong>"; m is zeroed then. */
dk_status dk_label_map_parse(dk_label_map *m, const char *text, int classes);

/* dk_label_check after mapping each value through `map` (NULL or n = 0: none); messages
 * name the values as the file holds them. */
dk_status dk_label_check_map(dk_volume *out, const dk_volume *label, int classes, int ignore,
                             const dk_label_map *map, const char *name);

/* A mask as DK_U8 {0, 1}: any non-zero value of the single-channel `in` becomes 1. */
dk_status dk_mask_from_volume(dk_volume *out, const dk_volume *in, const char *name);

/* 1 if the two volumes lie on the same grid: equal nx, ny, nz and dk_geometry_equal(tol).
 * Otherwise 0 and a DK_ERR_FORMAT message naming both files and what differs. */
int dk_grid_match(const dk_volume *a, const char *name_a, const dk_volume *b,
                  const char *name_b, double tol);

typedef struct {
    dk_channel_mode channels;
    int channel_index;        /* for DK_CHANNELS_ONE */
    dk_norm_opts norm;
    int norm_in_mask;         /* statistics inside the case's mask when it has one (default 1) */
    dk_resample_target target;/* all zero = keep the grid (default) */
    /* > 0: resample so the bounding box of the case's mask spans this many voxels along
     * its longest axis, one scale factor f for every axis with more than one voxel
     * (n' = max(1, round(n·f)), the dk_resample grid rule). Retinal fundus studies bring
     * every image to one field-of-view diameter this way, whatever the camera's
     * resolution. Needs a mask; replaces `target` (default 0 = off). */
    double mask_extent;
    int classes;              /* label classes including background (default 2) */
    double grid_tol;          /* image/label/mask grid tolerance, mm and relative (1e-3) */
    char label_map[DK_LABEL_MAP_TEXT]; /* dk_label_map's text applied to label files
                                        * before the label check (default "": none) */
} dk_prep_opts;

void dk_prep_defaults(dk_prep_opts *o); /* the option schema's (dk_data_defaults) */

/* One preprocessed case: everything owned. */
typedef struct {
    char id[128];     /* the case id (truncated if longer) */
    dk_volume image;  /* DK_F32 (C, 1, Z, Y, X) */
    dk_volume label;  /* DK_U8 (1, 1, Z, Y, X), or data == NULL when the case has no label */
    dk_volume mask;   /* DK_U8 {0,1} on the same grid, or data == NULL */
} dk_case_data;

/* Read case `i` of `list` (its image files through dk_case_image_read), give the image,
 * label and mask the case's `spacing` when it has one (dk_case_spacing_apply), and
 * preprocess them by `o` (NULL = defaults). The label and mask
 * must lie on the image's grid (dk_grid_match, naming both files). The label file's values
 * go through o->label_map, then dk_label_check_map. A label map with ignore voxels (255)
 * but no foreground, while label_map does not name 255, is refused (DK_ERR_FORMAT naming
 * the file, its values and the fix label_map = 255:1): a binary mask saved as 0/255 would
 * otherwise train a background-only model. On failure `out` is zeroed; errors come from
 * the reader or the steps above. */
dk_status dk_case_load(dk_case_data *out, const dk_case_list *list, int i,
                       const dk_prep_opts *o);

/* Preprocess volumes already in memory (the label and mask may be NULL). The inputs are
 * not changed; `out` gets new volumes. Names are for messages. */
dk_status dk_case_prepare(dk_case_data *out, const dk_volume *image, const dk_volume *label,
                          const dk_volume *mask, const dk_prep_opts *o, const char *id);

void dk_case_data_free(dk_case_data *c); /* accepts NULL */

/* ================================================================ batches and sampling
 *
 * The sampler borrows preprocessed cases (which must outlive it) and draws patches:
 * a case uniformly at random, then a patch start. Foreground oversampling as nnU-Net: in a
 * batch of n, k = floor(n·f) + Bernoulli(frac(n·f)) patches (the LAST k) are centred on a
 * foreground voxel (label 1..classes-1): a class chosen uniformly among those present in
 * the case, then one of its voxels uniformly; so the expected fraction is exactly f.
 * Other patches start uniformly over the positions where the patch lies inside the image
 * (or the image inside the patch, per axis, when the image is smaller); cases without
 * label or without foreground get such patches too. With centre_in_mask, those patches of
 * a case with a non-empty mask are centred on a voxel of the mask, uniformly (64 rejection
 * tries, then the k-th mask voxel by a scan, so small masks cost more but stay exact).
 * A centred patch spans [c - P/2, c - P/2 + P) (integer division).
 * Where a patch leaves the image: image 0, label 255 (ignore), mask 0. An unlabelled case
 * gives label 255 everywhere; a case without mask gives mask 1 on every real voxel.
 */

typedef struct {
    dk_tensor image;     /* (n, c, d, h, w) float32; owned */
    uint8_t *label;      /* (n, d, h, w); owned */
    uint8_t *mask;       /* (n, d, h, w); owned */
    int *case_index;     /* (n) the case each patch came from */
    int64_t (*start)[3]; /* (n) patch start (z, y, x) in the case's voxels; may be < 0 */
    int *is_fg;          /* (n) 1 if the patch was centred on foreground */
    float *work;         /* one patch's workspace for spatial augmentation and blur; owned */
} dk_batch;

/* Allocate a zeroed batch (and its augmentation workspace, about (c + 4) floats a patch
 * voxel). DK_ERR_ARG on bad dims, DK_ERR_NOMEM; zeroed on failure. */
dk_status dk_batch_alloc(dk_batch *b, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w);
void dk_batch_free(dk_batch *b); /* accepts NULL */

typedef struct {
    int64_t patch[3];     /* (d, h, w); d = 1 for 2-D */
    double fg_fraction;   /* default 1/3 (nnU-Net) */
    int classes;          /* labels 1..classes-1 are foreground (default 2) */
    int centre_in_mask;   /* non-foreground patches centred inside the mask (default 0) */
} dk_sampler_opts;

void dk_sampler_defaults(dk_sampler_opts *o); /* patch 1x256x256, 1/3, 2 classes, 0 */

typedef struct {
    const dk_case_data *cases; /* (n_cases) borrowed */
    int n_cases;
    int64_t channels;          /* of every case's image */
    dk_sampler_opts opts;
    int64_t **fg;              /* (n_cases) per case: foreground voxel indices sorted by
                                * class; owned */
    int64_t (*fg_start)[256];  /* (n_cases) offsets of each class in fg[i]; class k spans
                                * [fg_start[i][k], fg_start[i][k+1]) */
    int64_t *mask_count;       /* (n_cases) voxels inside each case's mask (0: none) */
} dk_sampler;

/* Index the cases' foreground (one pass over each label). All cases must have the same
 * channel count and label values < classes or 255 (as dk_label_check guarantees).
 * DK_ERR_ARG for no cases, mismatched channels, a patch dim < 1, classes outside 1..255,
 * fg_fraction outside [0, 1]; DK_ERR_NOMEM. Zeroed on failure. */
dk_status dk_sampler_init(dk_sampler *s, const dk_case_data *cases, int n_cases,
                          const dk_sampler_opts *o);
void dk_sampler_free(dk_sampler *s); /* accepts NULL */

/* Fill every patch of `b` (its n, and d, h, w equal to the patch size, c to the channels:
 * asserted) from `rng`. Overwrites b entirely. */
void dk_sampler_fill(dk_batch *b, const dk_sampler *s, dk_rng *rng);

/* ================================================================ augmentation
 *
 * Per patch, each transform fires with its probability; spatial ones move image, label and
 * mask together, intensity ones change the image only (padding included). Order: the
 * spatial map (rotation, zoom, deformation), flips, rot90, scale, shift, gamma, noise, blur.
 * Defaults follow nnU-Net's 2-D/3-D trainer where it has the transform, except that the
 * spatial map and blur default to probability 0: a probability of 0 draws no random number,
 * so configs without them augment exactly as before they existed.
 *
 * The spatial map (dk_augment_spatial, batchgenerators' SpatialTransform): output voxel p =
 * (z, y, x) reads the patch at q = c + s·R·(p - c + u(p)), c = ((d-1)/2, (h-1)/2, (w-1)/2)
 * the patch centre, s the zoom, R the rotation, u the deformation; distances are voxels.
 *   - rotation: R = Rd(a0)·Rh(a1)·Rw(a2), Rd turning the (h, w) plane as
 *     (y, x) <- (cos·y + sin·x, -sin·y + cos·x), so +90° is dk_augment_rot90's k = 1; Rh and
 *     Rw turn (d, w) and (d, h) alike. Entries within 1e-12 of 0 or ±1 are snapped, so
 *     quarter turns land on the grid exactly.
 *   - zoom s ~ nnU-Net's draw (below 1 half the time when the range allows, else at or
 *     above 1); s > 1 reads a larger region: structures shrink (zoom out).
 *   - deformation (elastic): per axis u_a = alpha · G_sigma * U(-1, 1), fresh noise per
 *     voxel smoothed by a Gaussian of sigma voxels (zero outside the patch, radius
 *     round(4 sigma)), as batchgenerators' elastic_deform_coordinates.
 * In-plane mode (2-D patches always; 3-D ones per [augment] in_plane_only, "auto": when
 * max(h, w) > 3·d, nnU-Net's rule for thick-slice patches): one 2-D map (rotation a0 only,
 * zoom and deformation in (h, w)) applied to every slice alike; slices are never mixed.
 * Sampling: the image (trilinear, bilinear in-plane) reads 0 outside the patch; the label
 * and mask take per-value linear weights and keep the heaviest value (nnU-Net's order-1
 * label interpolation: one-hot, linear, argmax; smoother than nearest neighbour and never a
 * value that is not in the patch), ties to the lower corner (z, y, x). The part of a cell
 * outside the patch is one more candidate value, 255 (ignore) for the label and 0 for the
 * mask, as the sampler pads: what lies there is unknown, not background; so a mask equal
 * to a binary label maps as that label. The identity map leaves the patch untouched.
 * Blur (dk_augment_blur): a separable Gaussian, radius round(4 sigma), mirrored at the
 * borders (scipy's "reflect"), so a constant image stays constant; label and mask untouched.
 */

/* Whether 3-D patches get the in-plane map and blur; names "auto", "true", "false". */
typedef enum { DK_IN_PLANE_AUTO = 0, DK_IN_PLANE_TRUE, DK_IN_PLANE_FALSE } dk_in_plane_mode;

typedef struct {
    double p_flip[3];              /* per axis (d, h, w); 0.5 each (d only when d > 1) */
    double p_rot90;                /* k·90° in the (h, w) plane, k uniform in 1..3; 0.5.
                                    * Patches with h != w only get k = 2 */
    double p_scale, scale_lo, scale_hi; /* x·s per channel; 0.15, [0.75, 1.25] */
    double p_shift, shift_lo, shift_hi; /* x + t per channel; 0.15, [-0.1, 0.1] */
    double p_gamma, gamma_lo, gamma_hi; /* 0.3, [0.7, 1.5]; see dk_augment_gamma */
    int gamma_retain_stats;        /* restore mean and std after gamma; 1 */
    double p_noise, noise_var_hi;  /* N(0, σ²), σ² ~ U(0, var_hi) per patch; 0.1, 0.1 */
    /* the spatial map (see above); every probability 0 by default */
    double p_rot, rot_deg, rot_deg_2d; /* 0; angle ~ U(-a, a) per axis: a = 30° (3-D map),
                                        * 180° (the in-plane angle of a 2-D map) */
    double p_zoom, zoom_lo, zoom_hi;   /* 0, [0.7, 1.4] */
    double p_elastic;                  /* 0 (nnU-Net v2 has it off) */
    double elastic_alpha_lo, elastic_alpha_hi, elastic_sigma_lo, elastic_sigma_hi;
                                       /* [0, 200], [9, 13] voxels (nnU-Net v1's 2-D values;
                                        * its 3-D ones were alpha [0, 900]) */
    dk_in_plane_mode in_plane_only;    /* auto */
    double p_blur, blur_sigma_lo, blur_sigma_hi; /* 0, [0.5, 1] voxels, a sigma per channel */
} dk_augment_opts;

void dk_augment_defaults(dk_augment_opts *o); /* the option schema's (dk_data_defaults) */

/* Augment every patch of `b` in place. Draws from `rng` in patch order. */
void dk_augment_batch(dk_batch *b, const dk_augment_opts *o, dk_rng *rng);

/* The single transforms on patch `i` of `b` (tests and custom pipelines use them). */
void dk_augment_flip(dk_batch *b, int64_t i, int axis);  /* axis 0 = d, 1 = h, 2 = w */
void dk_augment_rot90(dk_batch *b, int64_t i, int k);    /* k quarter turns, (h, w) plane;
                                                          * k odd needs h == w */
/* Gamma as nnU-Net (retain range): per channel x' = lo + r·((x - lo)/r)^γ with lo, r the
 * channel's minimum and range (r + 1e-7); with retain_stats the result is then shifted
 * and scaled back to the channel's former mean and std. */
void dk_augment_gamma(dk_batch *b, int64_t i, double gamma, int retain_stats);

/* One spatial map (see the banner above); the identity (angles 0, zoom 1, alpha 0)
 * changes nothing. */
typedef struct {
    double angle[3];     /* radians: angle[0] turns the (h, w) plane, [1] (d, w), [2] (d, h) */
    double zoom;         /* s > 0 */
    double alpha, sigma; /* deformation u = alpha · G_sigma * U(-1, 1); alpha 0: none */
    int in_plane;        /* 1: the 2-D map on every slice (angle[1], angle[2] unused) */
} dk_spatial_map;

/* Apply `m` to image (every channel), label and mask of patch i, in place; the
 * deformation's noise is drawn from `rng` (not touched when alpha = 0; may then be NULL).
 * Needs b->work (dk_batch_alloc). */
void dk_augment_spatial(dk_batch *b, int64_t i, const dk_spatial_map *m, dk_rng *rng);

/* Gaussian blur of channel c of patch i, sigma[a] voxels along axis a (d, h, w; 0 or an
 * axis of extent 1: not blurred), in place; each sigma in [0, DK_BLUR_SIGMA_MAX]. */
enum { DK_BLUR_SIGMA_MAX = 32 };
void dk_augment_blur(dk_batch *b, int64_t i, int64_t c, const double sigma[3]);

/* ================================================================ Fourier domain adaptation
 *
 * FDA (Yang & Soatto, "FDA: Fourier Domain Adaptation for Semantic Segmentation", CVPR 2020,
 * their FDA_source_to_target_np): per channel, the source image's amplitude spectrum inside
 * a centred low-frequency band is replaced by the target image's, its phase is kept:
 *   F_s = FFT(x_s),  F_t = FFT(x_t),  A = |F|,  P = arg F_s
 *   F'(k) = A_t(k) exp(i P(k)) for k in the band, F_s(k) elsewhere;   x' = Re IFFT(F')
 * The band: every frequency k = (k_d, k_h, k_w) (signed, as numpy.fft.fftfreq * n) with
 * |k_a| <= b on each axis, b = floor(min(h, w) * beta) in 2-D (d = 1) and
 * floor(min(d, h, w) * beta) in 3-D: the square (cube) of side 2b + 1 around the zero
 * frequency that the reference mutates after fftshift. beta = 0 is the identity (no band;
 * the reference would still swap the mean, k = 0); beta > 0 small enough that b = 0 swaps
 * the mean only. A coefficient of the source with |F_s| = 0 gets phase 0 (numpy.angle(0)).
 * Transforms are FFTW3 single precision (fftwf r2c / c2r; the spectrum is Hermitian, so
 * the half spectrum holds it all), planned once per patch shape with FFTW_ESTIMATE, which
 * picks the same algorithm every run (FFTW_MEASURE times candidates and may not), so the
 * same inputs give the same bits. Labels and masks are not touched.
 */

typedef struct dk_fda dk_fda; /* FFTW plans and spectra for one (d, h, w); owned */

/* Plans for patches of (d, h, w) (d = 1 for 2-D; each >= 1). DK_ERR_ARG for a side < 1,
 * DK_ERR_NOMEM; *out NULL on failure. Plans are made under a lock (FFTW's planner is not
 * thread-safe); one dk_fda is used by one thread at a time. */
dk_status dk_fda_create(dk_fda **out, int64_t d, int64_t h, int64_t w);
void dk_fda_free(dk_fda *f); /* accepts NULL */

/* Swap the low-frequency amplitudes of src (c, d, h, w) for tgt's (c, d, h, w), channel by
 * channel, in place on src; beta in [0, 0.5] (asserted). tgt is read only. */
void dk_fda_apply(dk_fda *f, float *src, const float *tgt, int64_t c, double beta);

/* ================================================================ the option schema
 *
 * ONE table (lib/data/prep_schema.c, dk_prep_schema) owns every option of preprocessing,
 * of the training patch and of augmentation: its config key, type, bounds, default, help,
 * and how a model file records it. Nothing else spells them:
 *   - dk_data_defaults (and dk_prep_defaults, dk_norm_defaults, dk_augment_defaults, which
 *     read it) take the defaults from the table;
 *   - the training config (dakd/train.h) composes its [data] preprocessing and [augment]
 *     keys from the rows of each group (DK_PREP_INTENSITY, ...);
 *   - an exported model carries the options as "dakd.data.<key>" strings in its
 *     safetensors __metadata__: dk_prep_meta_write for the trainer, dk_prep_meta_read for
 *     prediction, both walking the table, so prediction prepares images as training did.
 *
 * Adding an option: add its member to dk_prep_opts (or dk_augment_opts) and ONE row to the
 * table. Its group places the key in the config beside the options of its kind; a metadata
 * key makes models record it, and then give the row DK_PREP_META_OPTIONAL: the key is
 * written after the required ones (models written before keep their bytes) and a model
 * without it reads back the default (as models from before mask_extent do).
 *
 * Metadata values: doubles "%.17g" (they read back exactly), ints and booleans "%d" (0/1),
 * enums by name; consecutive rows with the same metadata key make one value "a,b,c"
 * (spacing and size "x,y,z", patch "d,h,w"). Keys are written in table order, the required
 * ones first: dakd.data.channels, channel_index, norm, norm_lo_pct, norm_hi_pct, ct_level,
 * ct_width, zero_outside_mask, norm_in_mask, spacing, size, patch, classes, mask_extent.
 */

/* Everything the schema describes: the preprocessing, the training patch (prediction's
 * default window) and the augmentation. prep.grid_tol is not an option (1e-3). */
typedef struct {
    dk_prep_opts prep;
    int64_t patch[3];     /* (d, h, w) */
    dk_augment_opts aug;
} dk_data_opts;

/* Every option at its default, prep.grid_tol 1e-3, padding zeroed. */
void dk_data_defaults(dk_data_opts *o);

typedef enum {
    DK_PREP_META_ONLY = 0, /* recorded in models, no config key (prep.target.size) */
    DK_PREP_INTENSITY,     /* [data] channel choice and normalisation */
    DK_PREP_GRID,          /* [data] target spacing, mask extent */
    DK_PREP_PATCH,         /* [data] patch_d, patch_h, patch_w */
    DK_PREP_CLASSES,       /* [data] classes */
    DK_PREP_AUGMENT,       /* [augment] */
    DK_PREP_LABELS         /* [data] label_map, after classes */
} dk_prep_group;

enum { DK_PREP_META_OPTIONAL = 1 };

/* A row: `cfg` is a config field whose offset is into dk_data_opts (section and key NULL for
 * DK_PREP_META_ONLY rows); `meta` the metadata key without "dakd.data." (NULL: not
 * recorded); flags DK_PREP_META_OPTIONAL or 0. Within a group, rows are in config order. */
typedef struct {
    dk_cfg_field cfg;
    dk_prep_group group;
    const char *meta;
    int flags;
} dk_prep_field;

/* The table; *n receives its length. */
const dk_prep_field *dk_prep_schema(size_t *n);

/* The option names of the enums ("all", "percentile_zscore", ...; "?" out of range). */
const char *dk_channel_mode_name(dk_channel_mode m);
const char *dk_intensity_name(dk_intensity_kind k);

enum { DK_PREP_META_MAX = 16, DK_PREP_META_VALUE = 80 };

/* The "dakd.data.*" metadata of a model: kv is "key", "value", ..., NULL (as dk_unet_save
 * takes it), pointing into key and value of the same struct (so do not copy it). */
typedef struct {
    const char *kv[2 * DK_PREP_META_MAX + 1];
    int n; /* pairs */
    char key[DK_PREP_META_MAX][48];
    char value[DK_PREP_META_MAX][DK_PREP_META_VALUE];
} dk_prep_meta;

/* The metadata of o's prep and patch (o->aug is not recorded). Cannot fail. */
void dk_prep_meta_write(dk_prep_meta *m, const dk_data_opts *o);

/* Read a model's metadata (the parsed __metadata__ object) into o: prep and patch from the
 * keys, aug and everything else at the defaults. DK_ERR_FORMAT naming `path` and the key
 * for a missing required key, or a value that is not of its row's type and within its
 * bounds (an unknown enum name, "1.5" for an int, three values where one is expected); o is
 * zeroed then. */
dk_status dk_prep_meta_read(dk_data_opts *o, const struct cJSON *meta, const char *path);

/* ================================================================ the stream
 *
 * The batch of (epoch, step) is drawn from dk_rng_split(dk_rng_split(base, epoch), step):
 * it depends on nothing else, so a run resumed at any step draws what it would have drawn.
 */

/* Sample and (when aug != NULL) augment the batch of (epoch, step). `base` is not advanced. */
void dk_sampler_step(dk_batch *b, const dk_sampler *s, const dk_augment_opts *aug,
                     const dk_rng *base, int64_t epoch, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
