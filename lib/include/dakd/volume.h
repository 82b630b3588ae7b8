/*
 * dakd/volume.h — one scan or label map with its geometry, read from and written to disk.
 *
 * What it does: the dk_volume struct; allocation; geometry in ONE convention (below) with
 * exact conversion to and from the NIfTI affine; NIfTI-1/NIfTI-2/Analyze read and write
 * through nifticlib (`.nii`, `.nii.gz`, `.hdr/.img`, `.hdr.gz/.img.gz`); PNG read and write
 * through libpng; DICOM series, multi-frame files and DICOM SEG read, and MetaImage
 * (`.mha`, `.mhd`) and NRRD (`.nrrd`, `.nhdr`) read and write, through ITK + GDCM (only
 * when built with DAKD_WITH_ITK; otherwise they fail with DK_ERR_UNSUPPORTED "built without
 * ITK"); summaries for `dakd info`.
 * What it does not: no resampling, reorientation or intensity work (that is dakd/data.h),
 * nothing about networks.
 *
 * Layout. `data` holds nx*ny*nz*nt*nc elements of the scalar type `dtype`, x fastest:
 *     (C, T, Z, Y, X)      element (x, y, z, t, c) at ((c*nt + t)*nz + z)*ny*nx + y*nx + x
 * This is NIfTI's own order (dim[1..5] = x, y, z, t, u), so a NIfTI image maps onto it
 * without transposing. Colour (PNG RGB/RGBA, NIfTI RGB24/RGBA32) is stored PLANAR as
 * nc = 3 or 4 channels of uint8 (uint16 for 16-bit PNG), converted from/to the
 * interleaved file layout;
 * `color` remembers it so a writer can restore the file's colour type.
 *
 * Geometry convention (as ITK and DICOM): physical coordinates are LPS millimetres
 * (+x = patient Left, +y = Posterior, +z = Superior). `direction` is a 3x3 matrix whose
 * COLUMN j is the unit LPS direction of index axis j (i, j, k); `spacing[j]` > 0 is the
 * step along it in mm; `origin` is the LPS position of voxel (0,0,0)'s centre:
 *     p_lps = origin + direction * diag(spacing) * (i, j, k)^T
 * NIfTI stores RAS: A_ras = diag(-1,-1,1,1) * A_lps, done exactly by sign flips.
 *
 * NIfTI geometry rule on read (as nibabel, ITK and ITK-SNAP): the sform when
 * sform_code > 0, else the qform when qform_code > 0, else NIfTI's "method 1",
 * diag(pixdim) with origin 0 (nibabel differs only here: it builds an Analyze-style affine).
 * Analyze 7.5 files (no NIfTI magic) follow SPM and nibabel: radiological, RAS
 * diag(-dx, dy, dz), origin at SPM's originator field when set, else the grid centre.
 * Spacing is the column norm of the 3x3 part; direction the normalised columns.
 * scl_slope/scl_inter are applied on read when slope is finite and non-zero and
 * (slope, inter) != (1, 0): the data become DK_F32 (DK_F64 when stored as float64 or as a
 * 32/64-bit integer), and the written file then stores those floats with slope 1.
 *
 * DICOM rules (dk_dicom_read, details by the functions below). Images are ordered along
 * the slice normal n = row x column direction (ImageOrientationPatient), by the position
 * p.n of ImagePositionPatient; direction columns are (row, column, n), spacing (column
 * spacing, row spacing of PixelSpacing, the step between positions), origin the first
 * position. Several images at one position make a 4-D series: nt = images per position,
 * time ordered by TemporalPositionIdentifier, AcquisitionNumber, then InstanceNumber.
 * Refused with DK_ERR_FORMAT, never stacked: mixed orientations, positions whose steps
 * differ by more than 1% (a missing slice), unequal image counts per position; a sheared
 * grid (gantry tilt) is DK_ERR_UNSUPPORTED. Rescale slope/intercept are applied per image
 * (per frame in enhanced multi-frame files) in floating point. Data type: when every
 * slope is 1 and every intercept an integer, an integer type: the stored one if all
 * rescaled values fit it, else int16, else int32 (CT stored uint16 with intercept -1024
 * gives int16); otherwise float32 (float64 for 32-bit storage). A Siemens mosaic (ImageType
 * MOSAIC, NumberOfImagesInMosaic in the CSA image header) is split into its slices as
 * dcm2niix does (tiles of an m x m grid, m = ceil(sqrt(count)); positions along the CSA
 * SliceNormalVector from the first tile's corrected position); one that cannot be split
 * that way is refused with DK_ERR_UNSUPPORTED saying why.
 *
 * Ownership: a dk_volume owns `data` (freed by dk_volume_free). Every function that fills
 * a dk_volume* output leaves it zeroed on failure.
 */
#ifndef DAKD_VOLUME_H
#define DAKD_VOLUME_H

#include "dakd/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    DK_DT_UNKNOWN = 0,
    DK_U8,
    DK_I8,
    DK_U16,
    DK_I16,
    DK_U32,
    DK_I32,
    DK_U64,
    DK_I64,
    DK_F32,
    DK_F64
} dk_dtype;

/* Bytes per element (0 for DK_DT_UNKNOWN), "uint8"-style name, is-integer test. */
size_t dk_dtype_size(dk_dtype t);
const char *dk_dtype_name(dk_dtype t);
int dk_dtype_is_integer(dk_dtype t);

typedef enum { DK_COLOR_NONE = 0, DK_COLOR_RGB = 3, DK_COLOR_RGBA = 4 } dk_color;

typedef struct {
    double spacing[3];      /* mm along index axes i, j, k; > 0 */
    double origin[3];       /* LPS mm of voxel (0,0,0) */
    double direction[3][3]; /* direction[r][c]: row r = LPS component, column c = index axis */
} dk_geometry;

/* NIfTI header fields that are not geometry, kept so a read → write round trip preserves
 * them. A volume made in memory has them zeroed except where dk_volume_alloc sets
 * defaults (xyz mm, sform/qform code 1 = scanner anatomical). */
typedef struct {
    int qform_code, sform_code;
    int intent_code;
    double intent_p1, intent_p2, intent_p3;
    char intent_name[16];
    char descrip[80];
    char aux_file[24];
    double cal_min, cal_max;
    double toffset;
    double dt;             /* pixdim[4]: time step */
    double du;             /* pixdim[5] */
    int xyz_units, time_units; /* NIFTI_UNITS_* */
    int freq_dim, phase_dim, slice_dim;
    int slice_code;
    int64_t slice_start, slice_end;
    double slice_duration;
    int nifti_version;     /* 1 or 2 as read (0 = Analyze or not from NIfTI) */
    /* The transforms of a NIfTI-1/2 file as read, so that a read → write round trip keeps
     * both codes (0 included) and both transforms, also when the qform differs from the
     * sform (the geometry follows the sform). Written back only while `geom` is still the
     * geometry read (its RAS affine equals xform_geom): a resampled or reoriented volume
     * gets qform = sform = its geometry, codes 0 made 1. xforms_kept = 0: not from NIfTI. */
    int xforms_kept;
    double qform[4][4];     /* RAS affine of the qform (quaternion, qoffset, pixdim, qfac) */
    double xform_geom[4][4]; /* RAS affine of `geom` as read */
} dk_nifti_meta;

typedef struct {
    int64_t nx, ny, nz; /* spatial extent, each >= 1 */
    int64_t nt;         /* time points / volumes (NIfTI dim[4]), >= 1 */
    int64_t nc;         /* channels: NIfTI dim[5] components, or 3/4 for colour, >= 1 */
    int ndim;           /* spatial dimensionality as read: 2 for PNG and nz == 1 images */
    dk_dtype dtype;
    dk_color color;
    void *data;         /* (C, T, Z, Y, X) elements of dtype; owned */
    dk_geometry geom;
    dk_nifti_meta meta;
} dk_volume;

/* ---- allocation */

/* Allocate a zero-filled volume with identity geometry (unit spacing, origin 0) and
 * nc = 1. DK_ERR_ARG for dims < 1 or a voxel count that overflows, DK_ERR_NOMEM. */
dk_status dk_volume_alloc(dk_volume *v, int64_t nx, int64_t ny, int64_t nz, int64_t nt,
                          int64_t nc, dk_dtype dtype);
/* Free data and zero the struct; accepts NULL. */
void dk_volume_free(dk_volume *v);
/* Element count nx*ny*nz*nt*nc and byte size. */
int64_t dk_volume_numel(const dk_volume *v);
size_t dk_volume_nbytes(const dk_volume *v);
/* Value of element `i` (flat index) converted to double. */
double dk_volume_get(const dk_volume *v, int64_t i);
/* Store `x` at flat index `i`, converted to the volume's dtype (rounded and clamped for
 * integer types). */
void dk_volume_set(dk_volume *v, int64_t i, double x);

/* ---- what a file may make dakd allocate
 *
 * Readers take a volume's size from the file's header and check it BEFORE they allocate:
 *  - against the volume size limit: nx*ny*nz*nt*nc elements times the element size of the
 *    dk_volume they would fill (after unpacking, expansion and scaling), at most
 *    dk_volume_limit() bytes, else DK_ERR_UNSUPPORTED naming the file, the header fields
 *    and the limit. The default, DK_VOLUME_LIMIT_DEFAULT = 8 GiB, holds a 1024 x 1024 x
 *    1024 float32 volume (4 GiB) twice over. The environment variable
 *    DAKD_MAX_VOLUME_BYTES sets another limit for every reader of the process (a byte
 *    count: "17179869184", or with a binary suffix "16G", "16GiB", "512M"; K, M, G, T are
 *    powers of 1024); dk_volume_set_limit overrides both. Volumes made in memory
 *    (dk_volume_alloc) are not limited.
 *  - against the file: uncompressed data must be in the file (NIfTI's size check); a
 *    deflate stream (PNG's IDAT, .nii.gz) cannot inflate to more than dk_inflate_bound of
 *    the file's size, so a 100-byte file cannot claim a gigabyte (DK_ERR_FORMAT).
 * 64-bit integer data (NIfTI int64/uint64, MetaImage/NRRD long) are refused when a value
 * lies beyond +-2^53 (DK_ERR_UNSUPPORTED naming the first such voxel): dakd computes in
 * double (labels, statistics, scaling, preprocessing), which holds exactly the integers up
 * to 2^53; beyond it two labels would merge or wrap. */
#define DK_VOLUME_LIMIT_DEFAULT ((uint64_t)8 << 30)
#define DK_VOLUME_MAX_EXACT_INT ((int64_t)1 << 53)

/* The limit in force (dk_volume_set_limit, else DAKD_MAX_VOLUME_BYTES, else the default)
 * into *bytes. DK_ERR_ARG "DAKD_MAX_VOLUME_BYTES = '<text>': ..." when the variable is set
 * but is not a byte count >= 1 (*bytes then holds the default). */
dk_status dk_volume_limit(uint64_t *bytes);
/* Set the limit for the whole process (bytes >= 1; 0 returns to the environment / the
 * default). Set it before threads start reading files. */
void dk_volume_set_limit(uint64_t bytes);
/* DK_OK when a volume of n[0]*...*n[4] elements (nx, ny, nz, nt, nc) of `t` fits the limit.
 * Otherwise a message "<path>: header field(s) <fields> = ... " and DK_ERR_FORMAT for an
 * extent < 1 or a product that overflows, DK_ERR_UNSUPPORTED over the limit (or the status
 * of dk_volume_limit). `fields` names the header fields in the file's own terms
 * ("dim[1..5]", "IHDR width x height"). */
dk_status dk_volume_check_size(const char *path, const char *fields, const int64_t n[5],
                               dk_dtype t);
/* The most bytes a deflate (zlib, gzip) stream stored in `compressed` bytes can inflate
 * to: deflate's largest ratio is 1032:1 (a 258-byte match coded in 2 bits), plus a margin
 * for the stream's first bytes and for concatenated gzip members. */
uint64_t dk_inflate_bound(uint64_t compressed);
/* For a DK_I64 / DK_U64 volume: DK_OK when every value lies within +-2^53, else
 * DK_ERR_UNSUPPORTED naming `path`, the first such voxel (x, y, z, t, c) and its value.
 * Other dtypes: DK_OK. */
dk_status dk_volume_check_int64(const dk_volume *v, const char *path);

/* ---- geometry */

void dk_geometry_identity(dk_geometry *g);
/* 4x4 affine index → RAS mm (NIfTI's convention), row-major m[r][c]. Exact sign flips. */
void dk_geometry_to_nifti_affine(const dk_geometry *g, double m[4][4]);
/* From a NIfTI RAS affine. A column of zero norm (degenerate) gets spacing 1 and the
 * matching unit axis. Direction and spacing are chosen so that converting back gives
 * the same affine bit for bit whenever such a pair exists (nearly always). */
void dk_geometry_from_nifti_affine(dk_geometry *g, const double m[4][4]);
/* Three-letter orientation code of the index axes, ITK-SNAP/nibabel style in RAS terms
 * ("RAS", "LPS", "LAS", ...): the letter is the direction toward which each index axis
 * points most; '?' for an axis whose direction is not finite. Writes 4 bytes including the
 * terminator. */
void dk_geometry_orientation_code(const dk_geometry *g, char code[4]);
/* 1 if the two grids agree within `tol` mm / relative. */
int dk_geometry_equal(const dk_geometry *a, const dk_geometry *b, double tol);

/* ---- reading and writing (dispatch on the file name) */

/* Read any supported file: .nii .nii.gz .hdr .img (.gz) → NIfTI/Analyze; .png → PNG;
 * .mha .mhd .nrrd .nhdr → ITK; a directory → the DICOM series in it; a .dcm file or any
 * file with "DICM" at byte 128 → that DICOM file alone (a multi-frame file gives its
 * volume; a SEG gives its label map on the series it references, found next to it, see
 * dk_dicom_seg_read). Same as dk_volume_read_opts(v, path, NULL).
 * Reads exactly the file named (never a sibling with another extension). Errors name the
 * file and the field: DK_ERR_IO (missing, unreadable, truncated), DK_ERR_FORMAT (bad
 * header, dims, vox_offset, datatype, CRC), DK_ERR_UNSUPPORTED (e.g. complex data). */
dk_status dk_volume_read(dk_volume *v, const char *path);

/* Which DICOM series of a directory to read. */
typedef struct {
    const char *series_uid; /* SeriesInstanceUID to read, or NULL */
    int series_index;       /* index in dk_dicom_list_series order; -1 = unset */
} dk_read_opts;

/* dk_volume_read with options (NULL = none). A directory holding several series needs
 * series_uid or series_index: without them DK_ERR_ARG with a message listing the series. */
dk_status dk_volume_read_opts(dk_volume *v, const char *path, const dk_read_opts *opts);
/* 1 when dk_volume_read would read `path` as DICOM (a folder, a .dcm name, or "DICM" at
 * byte 128), else 0. Nothing is parsed. */
int dk_volume_is_dicom(const char *path);

/* Read only the header: every field of `v` set, `data` NULL. For NIfTI/Analyze it does
 * not need the image file (.img) to exist. */
dk_status dk_volume_read_header(dk_volume *v, const char *path);

typedef struct {
    int nifti_version;  /* 1 or 2; 0 = the version the volume was read as, else 1 */
    int gzip_level;     /* 1..9 for .gz outputs; 0 = default (6) */
} dk_write_opts;

/* Write by extension (.nii, .nii.gz, .hdr [+ .img], .png, .mha, .mhd [+ .raw], .nrrd,
 * .nhdr [+ .raw]). The file appears complete or not at all: data go to a temporary name in
 * the same directory, are flushed and fsynced, then renamed (a detached header last). opts may be NULL. DK_ERR_IO for unwritable paths, DK_ERR_UNSUPPORTED
 * when the format cannot hold the volume (PNG: nz, nt > 1, float data, ...). */
dk_status dk_volume_write(const dk_volume *v, const char *path, const dk_write_opts *opts);

/* Format-specific entry points (dk_volume_read/write dispatch to them). */
dk_status dk_nifti_read(dk_volume *v, const char *path, int header_only);
dk_status dk_nifti_write(const dk_volume *v, const char *path, const dk_write_opts *opts);
dk_status dk_png_read(dk_volume *v, const char *path);
dk_status dk_png_write(const dk_volume *v, const char *path);

/* MetaImage / NRRD through ITK (2-D to 4-D, components become planar channels; NRRD
 * spaces are converted to LPS by ITK). Written uncompressed unless opts->gzip_level > 0. */
dk_status dk_itk_read(dk_volume *v, const char *path, int header_only);
dk_status dk_itk_write(const dk_volume *v, const char *path, const dk_write_opts *opts);

/* ---- DICOM (through ITK + GDCM) */

/* One image series of a directory. */
typedef struct {
    char uid[65];           /* SeriesInstanceUID ("" when the files have none) */
    char modality[17];      /* e.g. "CT", "MR", "SEG" */
    char description[65];   /* SeriesDescription */
    int64_t nx, ny, nz, nt; /* grid it reads as; nt = 0 when it is not a regular grid
                             * (reading it reports why) */
    int nfiles;
    char first_file[4096];  /* first file of the series in name order */
} dk_dicom_series;

/* A file of a DICOM folder that was passed over, and why. */
typedef struct {
    char path[4096];
    char reason[1024];      /* the reader's message (it names the file) */
    int unreadable;         /* 1: a DICOM image file dakd cannot read (cut short, corrupt,
                             * crashing the parser, or a mosaic it cannot lay out); 0: not
                             * DICOM, or DICOM without an image */
} dk_dicom_skipped;

/* List the image series among the files directly in `dir` (not recursive), in the order
 * of their first file by name. Files that are not DICOM, hold no pixel data or cannot be
 * read (cut short, corrupt, or crashing GDCM, which parses in a child process) are passed over:
 * listed in *skipped when it is not NULL (malloc'd, *nskipped entries, may be 0; the
 * caller frees it with free()). *out is malloc'd: the caller frees it with free(). *n may
 * be 0. DK_ERR_IO when the directory cannot be read. */
dk_status dk_dicom_list_series(dk_dicom_series **out, int *n, dk_dicom_skipped **skipped,
                               int *nskipped, const char *dir);

/* Read a DICOM directory (one series, chosen by opts when several) or one file (opts
 * ignored) into `v` by the DICOM rules above. nc = 1 (colour DICOM is DK_ERR_UNSUPPORTED).
 * In a directory, unreadable files are passed over as dk_dicom_list_series says, each
 * logged as a DK_LOG_WARN message naming it (a missing slice is then still refused). GDCM runs in
 * a child process: a file on which it aborts is DK_ERR_FORMAT naming the file, never an
 * abort of the caller. Errors: DK_ERR_IO no images in the directory / unknown series;
 * DK_ERR_ARG ambiguous or unknown series choice; DK_ERR_FORMAT not DICOM, truncated,
 * corrupt, mixed orientations, missing slices. Nothing is kept on failure. */
dk_status dk_dicom_read(dk_volume *v, const char *path, const dk_read_opts *opts);

/* Read the DICOM SEG `seg_path` into a label map on the grid of the series it references
 * (ReferencedSeriesSequence). `series_dir` holds that series; NULL = look for it next to
 * the SEG: its folder, that folder's sub-folders and its sibling folders. Each frame is
 * placed on the series slice at the same position along the normal (or, without a
 * position, the slice whose SOPInstanceUID it references). Label value = SegmentNumber;
 * where segments overlap the HIGHEST segment number wins (as a 3D Slicer label-map
 * export, where later segments are painted over earlier ones). FRACTIONAL segmentations
 * are thresholded at half of MaximumFractionalValue. Output uint8 (int16 beyond 255
 * segments), nt = 1. Errors: DK_ERR_IO referenced series not found (naming its UID and
 * where dakd looked); DK_ERR_FORMAT not a SEG, or a frame that matches no slice. */
dk_status dk_dicom_seg_read(dk_volume *labels, const char *seg_path, const char *series_dir);

/* ---- label names and colours
 *
 * An optional labels file names the label values and gives them colours, for the DICOM SEG
 * that `dakd predict` writes and for the eval reports. Its format is 3D Slicer's colour
 * table (a .ctbl or .txt file Slicer saves from its Colors module, as its own
 * GenericAnatomyColors.txt), one label a line:
 *     # comment
 *     value name R G B A
 * value an integer 0..65535, name one word (Slicer writes spaces as '_'; kept as written),
 * R G B A integers 0..255 (A, the opacity, may be left out; it is read and not used);
 * '#' lines and blank lines are skipped. Value 0 (background) may be listed and is not a
 * segment. Without a file, or for a value the file does not list, the name is "label N" and
 * the colour comes from a fixed table of 12 (dk_labels_get). */
typedef struct {
    int value;
    char name[64];
    unsigned char rgb[3];
} dk_label_info;

typedef struct {
    dk_label_info *items; /* (n) in file order; owned */
    int n;
} dk_label_table;

/* Read `path` into *t. Values above `max_value` (e.g. the model's classes - 1; 65535 when
 * any label may appear) are refused, as are duplicate values, malformed lines and names
 * longer than 63 bytes: DK_ERR_FORMAT "<path>:<line>: ..." naming the value or field.
 * DK_ERR_IO when the file cannot be read. *t is zeroed on failure. */
dk_status dk_labels_read(dk_label_table *t, const char *path, int max_value);
void dk_labels_free(dk_label_table *t); /* accepts NULL and a zeroed table */
/* The name and colour of `value`: t's entry (t may be NULL), else "label <value>" and the
 * fixed colour of that value. */
dk_label_info dk_labels_get(const dk_label_table *t, int value);

/* Write `labels` (integer values 0..nsegments on the grid of the DICOM series `source`, a
 * folder holding one series or one DICOM file, as dk_volume_read read it) as a DICOM SEG
 * file at `path` (Segmentation IOD, BINARY, explicit VR little endian, written with GDCM in
 * a child process). One segment per value 1..nsegments, named and coloured by
 * dk_labels_get(names, value) (RecommendedDisplayCIELabValue from the sRGB colour, D65 white
 * as dcmqi and 3D Slicer convert); SegmentAlgorithmType AUTOMATIC, SegmentAlgorithmName
 * "dakd"; category and type are the generic code SCT 85756007 "Tissue" (3D Slicer's default
 * for a new segment): the labels file carries no anatomy codes. A segment no voxel holds is
 * kept in the segment list (numbers and names stay those of the model) with no frame.
 * Frames: one per (segment, slice) holding at least one voxel of it, each with its
 * ImagePositionPatient, its segment number and its source image (SourceImageSequence:
 * SOP class, instance and, in a multi-frame source, frame number); a map with no
 * foreground at all gets one empty frame of segment 1 (NumberOfFrames must be at least 1).
 * Patient, study and frame-of-reference attributes are copied from the source; new SOP
 * instance and series UIDs come from GDCM's UID generator. The file appears complete or not
 * at all. Reading it back with dk_dicom_seg_read gives `labels` again, voxel for voxel.
 * Errors: DK_ERR_ARG labels not on the source's grid or holding a value outside
 * 0..nsegments; DK_ERR_UNSUPPORTED a 4-D series or a mosaic; the errors of dk_dicom_read
 * for the source; DK_ERR_IO when the file cannot be written. */
dk_status dk_dicom_seg_write(const char *path, const dk_volume *labels, const char *source,
                             int nsegments, const dk_label_table *names);

/* ---- summaries */

typedef struct {
    double min, max, mean; /* over all elements; NaNs excluded and counted */
    int64_t n_nan;
    int64_t n_labels;      /* integer volumes: number of distinct values (else 0), counted
                            * exactly (64-bit values are not rounded through double) */
    int64_t labels[64];    /* the first 64 distinct values, ascending */
    int64_t label_counts[64];
    int labels_truncated; /* 1 if more than 64 distinct values, or a uint64 value beyond
                           * INT64_MAX (no label: the table stops there) */
} dk_volume_stats;

void dk_volume_compute_stats(const dk_volume *v, dk_volume_stats *s);


#ifdef __cplusplus
}
#endif
#endif
