/*
 * itk_bridge.h — private C interface to the C++ files that talk to ITK and GDCM
 * (itk_bridge.cxx, itk_dicom.cxx, itk_seg_write.cxx, itk_image.cxx). Not installed, not part
 * of the public API.
 *
 * What it does: parse DICOM headers (including multi-frame functional groups and the
 * DICOM SEG attributes dakd needs) into plain structs with GDCM; decode a file's pixels
 * with GDCM's codecs and place its frames, rescaled per frame; hand back the decoded
 * bit/byte buffer of a SEG; read and write
 * MetaImage (.mha/.mhd) and NRRD (.nrrd/.nhdr) volumes.
 * What it does not: no ordering, grouping or geometry decisions — lib/io/dicom.c makes
 * those from the parsed headers.
 *
 * Every function catches every C++ exception and turns it into dk_fail(...) naming the
 * file; nothing prints (ITK and GDCM warnings are switched off). Built without ITK
 * (DAKD_WITH_ITK off), every function returns DK_ERR_UNSUPPORTED "built without ITK".
 */
#ifndef DAKD_ITK_BRIDGE_H
#define DAKD_ITK_BRIDGE_H

#include "dakd/volume.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry and rescale of one frame (a single-frame file has one). */
typedef struct {
    int has_ipp, has_iop;
    double ipp[3];          /* ImagePositionPatient, LPS mm of pixel (0,0)'s centre */
    double iop[6];          /* ImageOrientationPatient: row direction, then column direction */
    double slope, intercept; /* RescaleSlope/Intercept (1, 0 when absent) */
    int segment;            /* SEG: ReferencedSegmentNumber of the frame (0 = none) */
    char ref_sop[65];       /* SEG: ReferencedSOPInstanceUID of the source image ("" = none) */
} dk_dcm_frame;

/* The header of one DICOM file as dakd needs it. */
typedef struct {
    const char *path;       /* borrowed: set by the caller before dk_itk_dcm_scan */
    char series_uid[65], sop_uid[65], sop_class[65], modality[17], description[65];
    char frame_of_ref[65];
    int rows, cols, samples, bits_alloc, bits_stored, pixel_rep;
    int nframes;            /* NumberOfFrames (1 when absent) */
    int has_pixels;         /* Rows and Columns present */
    int native_le;          /* uncompressed little-endian transfer syntax (implicit/explicit) */
    int explicit_vr;        /* explicit VR transfer syntax */
    double spacing[2];      /* PixelSpacing: between rows (y), between columns (x); 0 = absent */
    double thickness;       /* SliceThickness (0 = absent) */
    double between;         /* SpacingBetweenSlices (0 = absent) */
    long instance, acquisition, temporal; /* InstanceNumber, AcquisitionNumber,
                                           * TemporalPositionIdentifier; -1 when absent */
    /* DICOM SEG only */
    int is_seg;
    int seg_fractional;     /* SegmentationType FRACTIONAL (else BINARY) */
    int seg_max_fraction;   /* MaximumFractionalValue (FRACTIONAL) */
    int seg_nsegments;      /* items in SegmentSequence */
    int seg_max_number;     /* largest SegmentNumber */
    char ref_series_uid[65]; /* ReferencedSeriesSequence[0].SeriesInstanceUID */
    /* Siemens mosaic (ImageType MOSAIC): the slices of one acquisition tiled in one image */
    int mosaic_images;      /* CSA NumberOfImagesInMosaic, else (0019,100A); 0 = no mosaic */
    int has_slice_normal;
    double slice_normal[3]; /* CSA SliceNormalVector: the direction the tiles step along */
    int mosaic_rows, mosaic_cols; /* the stored image once dk_dcm_demosaic split it (rows,
                                   * cols, nframes are then the tiles'); 0 = not split */
    dk_dcm_frame *frames;   /* (nframes) owned; free with dk_itk_dcm_clear */
} dk_dcm_file;

/* DK_OK when dakd was built with ITK, else DK_ERR_UNSUPPORTED naming `path`. */
dk_status dk_itk_require(const char *path);

/* Parse the header of f->path (pixel data not read). DK_ERR_IO when the file cannot be
 * opened, DK_ERR_FORMAT when it is not DICOM or is cut inside the header. On failure f
 * keeps only `path`. */
dk_status dk_itk_dcm_scan(dk_dcm_file *f);
/* Free f->frames and zero everything but `path`. Accepts NULL. */
void dk_itk_dcm_clear(dk_dcm_file *f);

/* Decode the pixels of f (scanned by dk_itk_dcm_scan) and store frame k, rescaled with
 * f->frames[k].slope/intercept in double precision, as rows*cols floats (doubles when
 * use_double) at image slot slot[k] of `base` (slot < 0 = skip the frame). */
dk_status dk_itk_dcm_read_pixels(void *base, int use_double, const dk_dcm_file *f,
                                 const int64_t *slot);

/* The decoded pixel buffer of a SEG (BitsAllocated 1: packed bits, LSB first, frames
 * contiguous in the bit stream; 8: one byte a pixel). *buf is malloc'd (caller frees). */
dk_status dk_itk_dcm_read_seg_pixels(unsigned char **buf, size_t *nbytes, const char *path);

/* What dk_itk_dcm_write_seg writes (lib/io/dicom_seg_write.c fills it). */
typedef struct {
    char sop_class[65], sop_uid[65]; /* of the source image */
    int frame_number;                /* ReferencedFrameNumber in a multi-frame source; 0 none */
    double ipp[3];                   /* ImagePositionPatient of the slice */
} dk_seg_source;

typedef struct {
    int number;                      /* SegmentNumber */
    char label[64];                  /* SegmentLabel */
    unsigned short lab[3];           /* RecommendedDisplayCIELabValue (PS3.3 C.10.7.1.1) */
} dk_seg_segment;

typedef struct {
    const char *path;                /* the file to write */
    const char *source_file;         /* a file of the source series: patient, study, frame of
                                      * reference attributes are copied from it */
    const char *series_uid;          /* the source series (ReferencedSeriesSequence) */
    int rows, cols;
    double spacing[2];               /* PixelSpacing: between rows, between columns (mm) */
    double thickness;                /* SliceThickness and SpacingBetweenSlices (mm) */
    double iop[6];                   /* ImageOrientationPatient */
    const dk_seg_source *slices;     /* (nslices) every image of the source, slice order */
    int nslices;
    const dk_seg_segment *segments;  /* (nsegments) */
    int nsegments;
    const int *frame_segment, *frame_slice; /* (nframes) segment number and slice index */
    int nframes;
    const unsigned char *bits;       /* (nbytes) the frames' pixels, 1 bit each, LSB first,
                                      * frames contiguous in the bit stream */
    size_t nbytes;
} dk_seg_spec;

/* Write the DICOM SEG described by `s` to s->path with GDCM (gdcm::Writer, explicit VR little
 * endian). DK_ERR_IO naming the path when it cannot be written, DK_ERR_FORMAT when the
 * source file cannot be read. */
dk_status dk_itk_dcm_write_seg(const dk_seg_spec *s);

/* Numbers of element `name` of a Siemens CSA2 header ("SV10", the bytes of (0029,xx10)):
 * up to `max` values into out; returns how many (0 when absent, not CSA2, or malformed;
 * every offset is checked against n). Plain C (lib/io/dicom_mosaic.c), used by the scan. */
int dk_dcm_csa_values(double *out, int max, const unsigned char *b, size_t n,
                      const char *name);

/* MetaImage and NRRD through ITK's MetaImageIO / NrrdImageIO. 2-D to 4-D images with one
 * or more components; header_only leaves data NULL. */
dk_status dk_itk_image_read(dk_volume *v, const char *path, int header_only);
/* Write to `path` exactly (.mha, .mhd + .raw, .nrrd, .nhdr + .raw); compress when
 * gzip_level > 0. Files appear complete or not at all. */
dk_status dk_itk_image_write(const dk_volume *v, const char *path, int gzip_level);

#ifdef __cplusplus
}
#endif
#endif
