/*
 * A label map as a DICOM SEG over the series it was computed on (dk_dicom_seg_write,
 * dakd/volume.h). The source series is planned exactly as dk_dicom_read plans it, so slice z
 * of the label map is slice z of the plan; this file decides the segments, frames and bits,
 * and itk_seg_write.cxx writes them with GDCM, in a child process as every GDCM call of dakd.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dicom_internal.h"

/* sRGB 0..255 → CIE L*a*b* (D65 reference white, as dcmqi and 3D Slicer convert) → the
 * unsigned 16-bit values of PS3.3 C.10.7.1.1: L* 0..100 and a*, b* -128..127 onto 0..65535. */
static void rgb_to_dicom_lab(unsigned short out[3], const unsigned char rgb[3]) {
    double lin[3], xyz[3], f[3];
    for (int k = 0; k < 3; k++) {
        double c = rgb[k] / 255.0;
        lin[k] = c > 0.04045 ? pow((c + 0.055) / 1.055, 2.4) : c / 12.92;
    }
    static const double m[3][3] = {
        {0.4124, 0.3576, 0.1805}, {0.2126, 0.7152, 0.0722}, {0.0193, 0.1192, 0.9505}};
    static const double white[3] = {0.95047, 1.0, 1.08883};
    for (int r = 0; r < 3; r++) {
        xyz[r] = m[r][0] * lin[0] + m[r][1] * lin[1] + m[r][2] * lin[2];
        double t = xyz[r] / white[r];
        f[r] = t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0;
    }
    double lab[3] = {116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])};
    double scaled[3] = {lab[0] * 65535.0 / 100.0, (lab[1] + 128.0) * 65535.0 / 255.0,
                        (lab[2] + 128.0) * 65535.0 / 255.0};
    for (int k = 0; k < 3; k++)
        out[k] = (unsigned short)fmin(65535.0, fmax(0.0, floor(scaled[k] + 0.5)));
}

/* The source series planned as dk_dicom_read plans it (a folder: its one series; a file:
 * that file's frames). */
static dk_status plan_source(dk_dcm_plan *p, dk_dcm_set *s, const char *source) {
    struct stat sb;
    memset(p, 0, sizeof *p);
    memset(s, 0, sizeof *s);
    if (stat(source, &sb) != 0) return dk_fail(DK_ERR_IO, "%s: cannot open", source);
    int is_dir = S_ISDIR(sb.st_mode), one = 0;
    dk_status st = is_dir ? dk_dcm_set_from_dir(s, source) : dk_dcm_set_from_file(s, source);
    if (st != DK_OK) return st;
    if (!is_dir && s->files[0].is_seg)
        return dk_fail(DK_ERR_ARG, "%s: is a DICOM SEG itself, not an image series", source);
    return is_dir ? dk_dcm_plan_series(p, s, NULL, source)
                  : dk_dcm_plan_make(p, s, &one, 1, source);
}

/* The label map must lie on the plan's grid, hold values 0..nseg, and the series be one a
 * SEG can reference frame by frame. */
static dk_status check_labels(const dk_dcm_plan *p, const dk_dcm_set *s, const dk_volume *v,
                              int nseg, const char *source) {
    if (p->nt > 1)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "%s: a 4-D series (%lld time points): a SEG of it "
                       "is not supported",
                       source, (long long)p->nt);
    if (s->files[p->slices[0].file].mosaic_rows > 0)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "%s: a Siemens mosaic: a SEG cannot reference its "
                       "slices one by one",
                       source);
    if (v->nx != p->nx || v->ny != p->ny || v->nz != p->nz || v->nt != 1 || v->nc != 1)
        return dk_fail(DK_ERR_ARG,
                       "%s: labels of %lldx%lldx%lld are not on the series' grid "
                       "%lldx%lldx%lld",
                       source, (long long)v->nx, (long long)v->ny, (long long)v->nz,
                       (long long)p->nx, (long long)p->ny, (long long)p->nz);
    int64_t n = v->nx * v->ny * v->nz;
    for (int64_t i = 0; i < n; i++) {
        double x = dk_volume_get(v, i);
        if (x < 0 || x > nseg || x != floor(x))
            return dk_fail(DK_ERR_ARG, "%s: voxel %lld holds %g, not a label 0..%d", source,
                           (long long)i, x, nseg);
    }
    return DK_OK;
}

/* Every slice's source image reference and position. */
static dk_status source_slices(dk_seg_source **out, const dk_dcm_plan *p, const dk_dcm_set *s) {
    *out = calloc((size_t)p->nz, sizeof **out);
    if (!*out)
        return dk_fail(DK_ERR_NOMEM, "%s: no memory for %lld slices", p->what, (long long)p->nz);
    const dk_geometry *g = &p->geom;
    for (int64_t z = 0; z < p->nz; z++) {
        const dk_dcm_file *f = &s->files[p->slices[z].file];
        const dk_dcm_frame *fr = &f->frames[p->slices[z].frame];
        dk_seg_source *o = &(*out)[z];
        snprintf(o->sop_class, sizeof o->sop_class, "%s", f->sop_class);
        snprintf(o->sop_uid, sizeof o->sop_uid, "%s", f->sop_uid);
        o->frame_number = f->nframes > 1 ? p->slices[z].frame + 1 : 0;
        for (int r = 0; r < 3; r++)
            o->ipp[r] = fr->has_ipp ? fr->ipp[r]
                                    : g->origin[r] + (double)z * g->spacing[2] * g->direction[r][2];
    }
    return DK_OK;
}

typedef struct {
    int *segment, *slice; /* (n) */
    int n;
    unsigned char *bits; /* (nbytes) */
    size_t nbytes;
} seg_frames;

static void frames_free(seg_frames *fr) {
    free(fr->segment), free(fr->slice), free(fr->bits);
    memset(fr, 0, sizeof *fr);
}

/* One frame per (segment, slice) holding the segment, segment-major; an empty map gets one
 * empty frame of segment 1. */
static dk_status make_frames(seg_frames *fr, const dk_volume *v, int nseg) {
    memset(fr, 0, sizeof *fr);
    int64_t plane = v->nx * v->ny, nz = v->nz;
    unsigned char *has = calloc((size_t)(nseg + 1) * (size_t)nz, 1);
    if (!has) return dk_fail(DK_ERR_NOMEM, "SEG: no memory for %d segments", nseg);
    for (int64_t z = 0; z < nz; z++)
        for (int64_t j = 0; j < plane; j++)
            has[(int64_t)dk_volume_get(v, z * plane + j) * nz + z] = 1;
    for (int64_t k = nz; k < (nseg + 1) * nz; k++)
        fr->n += has[k];
    int empty = fr->n == 0;
    if (empty) has[nz] = 1, fr->n = 1;
    fr->nbytes = (size_t)(((int64_t)fr->n * plane + 7) / 8);
    fr->segment = malloc((size_t)fr->n * sizeof *fr->segment);
    fr->slice = malloc((size_t)fr->n * sizeof *fr->slice);
    fr->bits = calloc(fr->nbytes ? fr->nbytes : 1, 1);
    if (!fr->segment || !fr->slice || !fr->bits) {
        free(has);
        frames_free(fr);
        return dk_fail(DK_ERR_NOMEM, "SEG: no memory for %d frames", fr->n);
    }
    int k = 0;
    for (int sg = 1; sg <= nseg; sg++)
        for (int64_t z = 0; z < nz; z++) {
            if (!has[sg * nz + z]) continue;
            fr->segment[k] = sg, fr->slice[k] = (int)z;
            for (int64_t j = 0; j < plane && !empty; j++) {
                int64_t bit = (int64_t)k * plane + j;
                if (dk_volume_get(v, z * plane + j) == sg) fr->bits[bit >> 3] |= 1u << (bit & 7);
            }
            k++;
        }
    free(has);
    return DK_OK;
}

static dk_status write_work(void *arg, int i, int *flag) {
    (void)i, (void)flag;
    return dk_itk_dcm_write_seg(arg);
}

static const char *write_path(void *arg, int i) {
    (void)i;
    return ((const dk_seg_spec *)arg)->path;
}

/* The spec around the plan, the segments and the frames; written to `tmp` in a child. */
static dk_status write_spec(const char *tmp, const dk_dcm_plan *p, const dk_dcm_set *s,
                            const dk_seg_source *slices, const dk_seg_segment *segs, int nseg,
                            const seg_frames *fr) {
    const dk_geometry *g = &p->geom;
    dk_seg_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.path = tmp;
    sp.source_file = s->files[p->slices[0].file].path;
    sp.series_uid = s->files[p->slices[0].file].series_uid;
    sp.rows = (int)p->ny, sp.cols = (int)p->nx;
    sp.spacing[0] = g->spacing[1], sp.spacing[1] = g->spacing[0];
    sp.thickness = g->spacing[2];
    for (int r = 0; r < 3; r++)
        sp.iop[r] = g->direction[r][0], sp.iop[3 + r] = g->direction[r][1];
    sp.slices = slices, sp.nslices = (int)p->nz;
    sp.segments = segs, sp.nsegments = nseg;
    sp.frame_segment = fr->segment, sp.frame_slice = fr->slice, sp.nframes = fr->n;
    sp.bits = fr->bits, sp.nbytes = fr->nbytes;
    dk_dcm_job job = {1, &sp, write_work, NULL, NULL, NULL, write_path, "writing the SEG"};
    return dk_dcm_run_isolated(&job);
}

dk_status dk_dicom_seg_write(const char *path, const dk_volume *labels, const char *source,
                             int nsegments, const dk_label_table *names) {
    dk_dcm_set s;
    dk_dcm_plan p;
    dk_seg_source *slices = NULL;
    dk_seg_segment *segs = NULL;
    seg_frames fr = {0};
    char tmp[4200];
    dk_status st = dk_itk_require(path);
    if (st != DK_OK) return st;
    if (nsegments < 1 || nsegments > 65535)
        return dk_fail(DK_ERR_ARG, "%s: %d segments (1..65535)", path, nsegments);
    if ((st = plan_source(&p, &s, source)) != DK_OK) goto out;
    if ((st = check_labels(&p, &s, labels, nsegments, source)) != DK_OK) goto out;
    if ((st = source_slices(&slices, &p, &s)) != DK_OK) goto out;
    if (!(segs = calloc((size_t)nsegments, sizeof *segs))) {
        st = dk_fail(DK_ERR_NOMEM, "%s: no memory for %d segments", path, nsegments);
        goto out;
    }
    for (int k = 0; k < nsegments; k++) {
        dk_label_info li = dk_labels_get(names, k + 1);
        segs[k].number = k + 1;
        snprintf(segs[k].label, sizeof segs[k].label, "%s", li.name);
        rgb_to_dicom_lab(segs[k].lab, li.rgb);
    }
    if ((st = make_frames(&fr, labels, nsegments)) != DK_OK) goto out;
    if ((st = dk_tmp_path_for(tmp, sizeof tmp, path)) != DK_OK) goto out;
    st = write_spec(tmp, &p, &s, slices, segs, nsegments, &fr);
    if (st == DK_OK)
        st = dk_commit_file(tmp, path);
    else
        unlink(tmp);
out:
    frames_free(&fr);
    free(segs);
    free(slices);
    dk_dcm_plan_free(&p);
    dk_dcm_set_free(&s);
    return st;
}
