/*
 * DICOM SEG to a label map on the grid of the series it references (rules in
 * dakd/volume.h, dk_dicom_seg_read): find the series, place each frame on the slice at its
 * position, label = segment number, the highest segment number wins where segments overlap.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom_internal.h"

/* The group of `s` holding series `uid` ("" = the only series that is not a SEG). */
static int find_group(const dk_dcm_set *s, int **groups, int ng, const char *uid) {
    int found = -1, candidates = 0;
    for (int g = 0; g < ng; g++) {
        const dk_dcm_file *f = &s->files[groups[g][0]];
        if (uid[0] && !strcmp(f->series_uid, uid)) return g;
        if (!uid[0] && !f->is_seg) found = g, candidates++;
    }
    return candidates == 1 ? found : -1;
}

/* Plan the referenced series if `dir` holds it; 1 when found, 0 when not, -1 on error
 * (status in *st). */
static int plan_in_dir(dk_dcm_plan *p, dk_dcm_set *s, const char *dir, const char *uid,
                       dk_status *st) {
    memset(s, 0, sizeof *s);
    if (dk_dcm_set_from_dir(s, dir) != DK_OK) return 0;
    int **groups, *sizes, ng, rc = 0;
    if ((*st = dk_dcm_group(s, &groups, &sizes, &ng)) != DK_OK) {
        dk_dcm_set_free(s);
        return -1;
    }
    int g = find_group(s, groups, ng, uid);
    if (g >= 0) rc = (*st = dk_dcm_plan_make(p, s, groups[g], sizes[g], dir)) == DK_OK ? 1 : -1;
    dk_dcm_groups_free(groups, sizes, ng);
    if (rc != 1) dk_dcm_set_free(s);
    return rc;
}

/* The folders to search next to the SEG: its own, its sub-folders, its siblings. */
static int search_next_to(dk_dcm_plan *p, dk_dcm_set *s, const char *seg_path, const char *uid,
                          char *looked, size_t nlooked, dk_status *st) {
    char dir[4096], parent[4104];
    const char *slash = strrchr(seg_path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - seg_path) : 1, slash ? seg_path : ".");
    snprintf(parent, sizeof parent, "%s/..", dir);
    snprintf(looked, nlooked, "%s, its sub-folders and %s/*", dir, parent);
    int rc = plan_in_dir(p, s, dir, uid, st);
    const char *roots[2] = {dir, parent};
    for (int r = 0; r < 2 && rc == 0; r++) {
        DIR *d = opendir(roots[r]);
        for (struct dirent *e; d && rc == 0 && (e = readdir(d)) != NULL;) {
            char sub[8300];
            struct stat sb;
            if (e->d_name[0] == '.') continue;
            snprintf(sub, sizeof sub, "%s/%s", roots[r], e->d_name);
            if (stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) rc = plan_in_dir(p, s, sub, uid, st);
        }
        if (d) closedir(d);
    }
    return rc;
}

/* The series slice (t = 0) a SEG frame belongs to, or -1. */
static int64_t slice_of(const dk_dcm_plan *p, const dk_dcm_set *s, const dk_dcm_frame *fr) {
    if (fr->has_ipp) {
        const dk_geometry *g = &p->geom;
        double pos = 0, tol = fmax(0.01, 0.25 * g->spacing[2]);
        for (int r = 0; r < 3; r++) pos += fr->ipp[r] * g->direction[r][2];
        for (int64_t z = 0; z < p->nz; z++)
            if (fabs(p->slices[z].pos - pos) <= tol) return z;
        return -1;
    }
    for (int64_t z = 0; fr->ref_sop[0] && z < p->nz; z++)
        if (!strcmp(s->files[p->slices[z].file].sop_uid, fr->ref_sop)) return z;
    return -1;
}

/* The frame must lie on the series' in-plane grid: same row/column directions and the
 * same in-plane offset (within half a pixel). */
static dk_status check_in_plane(const dk_dcm_plan *p, const dk_dcm_frame *fr, const char *seg,
                                int frame) {
    const dk_geometry *g = &p->geom;
    if (fr->has_iop)
        for (int c = 0; c < 2; c++)
            for (int r = 0; r < 3; r++)
                if (fabs(fr->iop[3 * c + r] - g->direction[r][c]) > 1e-3)
                    return dk_fail(DK_ERR_UNSUPPORTED, "%s: frame %d: orientation differs from "
                                   "the referenced series", seg, frame + 1);
    if (!fr->has_ipp) return DK_OK;
    for (int c = 0; c < 2; c++) {
        double off = 0;
        for (int r = 0; r < 3; r++) off += (fr->ipp[r] - g->origin[r]) * g->direction[r][c];
        if (fabs(off) > 0.5 * g->spacing[c])
            return dk_fail(DK_ERR_UNSUPPORTED, "%s: frame %d: in-plane offset %.3g mm from the "
                           "series grid (cropped SEG frames are not supported)", seg, frame + 1,
                           off);
    }
    return DK_OK;
}

/* Paint every frame onto the label map: highest segment number wins. */
static dk_status paint(dk_volume *lab, const dk_dcm_plan *p, const dk_dcm_set *series,
                       const dk_dcm_file *f, const unsigned char *buf, size_t nbytes) {
    int64_t plane = p->nx * p->ny;
    size_t need = f->bits_alloc == 1 ? (size_t)((plane * f->nframes + 7) / 8)
                                     : (size_t)(plane * f->nframes);
    if (nbytes < need)
        return dk_fail(DK_ERR_FORMAT, "%s: PixelData holds %zu bytes, %zu needed for %d frames",
                       f->path, nbytes, need, f->nframes);
    double cut = f->seg_fractional ? 0.5 * f->seg_max_fraction : 0.5;
    for (int k = 0; k < f->nframes; k++) {
        const dk_dcm_frame *fr = &f->frames[k];
        int64_t z = slice_of(p, series, fr);
        dk_status st = check_in_plane(p, fr, f->path, k);
        if (st != DK_OK) return st;
        if (fr->segment < 1)
            return dk_fail(DK_ERR_FORMAT, "%s: frame %d: no ReferencedSegmentNumber", f->path,
                           k + 1);
        if (z < 0)
            return dk_fail(DK_ERR_FORMAT, "%s: frame %d (segment %d) matches no slice of the "
                           "referenced series in %s", f->path, k + 1, fr->segment, p->what);
        for (int64_t j = 0; j < plane; j++) {
            int64_t bit = (int64_t)k * plane + j;
            double val = f->bits_alloc == 1 ? (buf[bit >> 3] >> (bit & 7)) & 1 : buf[bit];
            if (val < cut) continue;
            int64_t at = z * plane + j;
            if (dk_volume_get(lab, at) < fr->segment) dk_volume_set(lab, at, fr->segment);
        }
    }
    return DK_OK;
}

/* Check what is needed of the SEG itself. */
static dk_status check_seg(const dk_dcm_file *f) {
    if (!f->is_seg)
        return dk_fail(DK_ERR_FORMAT, "%s: not a DICOM SEG (SOPClassUID \"%s\", expected "
                       "1.2.840.10008.5.1.4.1.1.66.4)", f->path, f->sop_class);
    if (f->bits_alloc != 1 && f->bits_alloc != 8)
        return dk_fail(DK_ERR_FORMAT, "%s: BitsAllocated = %d (a SEG has 1 or 8)", f->path,
                       f->bits_alloc);
    /* GDCM's decoder asserts (ComputeZSpacingFromIPP) unless the functional groups give
     * every frame one and the same orientation */
    for (int k = 0; k < f->nframes; k++) {
        int same = f->frames[k].has_iop;
        for (int i = 0; i < 6 && same; i++) same = f->frames[k].iop[i] == f->frames[0].iop[i];
        if (!same)
            return dk_fail(DK_ERR_FORMAT, "%s: frame %d: ImageOrientationPatient %s (a SEG's "
                           "frames share one orientation)", f->path, k + 1,
                           f->frames[k].has_iop ? "differs from frame 1's" : "missing");
    }
    return DK_OK;
}

/* The SEG's decoded pixel buffer, decoded by GDCM in a child process (dicom_isolate.c). */
typedef struct {
    const char *path;
    unsigned char *buf; /* (nbytes) malloc'd: in the child by the decoder, in the parent by
                         * seg_take */
    size_t nbytes;
} seg_job;

static dk_status seg_work(void *arg, int i, int *flag) {
    seg_job *j = arg;
    (void)i, (void)flag;
    return dk_itk_dcm_read_seg_pixels(&j->buf, &j->nbytes, j->path);
}

static dk_status seg_send(void *arg, int i, int fd) {
    const seg_job *j = arg;
    (void)i;
    dk_status st = dk_dcm_put(fd, &j->nbytes, sizeof j->nbytes);
    return st == DK_OK ? dk_dcm_put(fd, j->buf, j->nbytes) : st;
}

static dk_status seg_take(void *arg, int i, int fd) {
    seg_job *j = arg;
    (void)i;
    dk_status st = dk_dcm_get(fd, &j->nbytes, sizeof j->nbytes);
    if (st != DK_OK) return st;
    j->buf = malloc(j->nbytes ? j->nbytes : 1);
    if (!j->buf)
        return dk_fail(DK_ERR_NOMEM, "%s: SEG pixel data of %zu bytes", j->path, j->nbytes);
    return dk_dcm_get(fd, j->buf, j->nbytes);
}

static const char *seg_path(void *arg, int i) {
    (void)i;
    return ((seg_job *)arg)->path;
}

static dk_status read_seg_pixels(unsigned char **buf, size_t *nbytes, const char *path) {
    seg_job j = {path, NULL, 0};
    dk_dcm_job job = {1, &j, seg_work, seg_send, seg_take, NULL, seg_path,
                      "decoding the SEG pixel data"};
    dk_status st = dk_dcm_run_isolated(&job);
    if (st != DK_OK) free(j.buf), j.buf = NULL;
    *buf = j.buf, *nbytes = j.nbytes;
    return st;
}

static dk_status seg_onto(dk_volume *lab, const dk_dcm_file *f, const dk_dcm_plan *p,
                          const dk_dcm_set *series) {
    if (p->nt > 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: the referenced series in %s is 4-D (%lld time "
                       "points)", f->path, p->what, (long long)p->nt);
    if (f->rows != p->ny || f->cols != p->nx)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: SEG frames are %d x %d but the series in %s is "
                       "%lld x %lld", f->path, f->cols, f->rows, p->what, (long long)p->nx,
                       (long long)p->ny);
    unsigned char *buf;
    size_t nbytes;
    dk_status st = read_seg_pixels(&buf, &nbytes, f->path);
    if (st != DK_OK) return st;
    int maxnum = f->seg_max_number;
    for (int k = 0; k < f->nframes; k++) maxnum = f->frames[k].segment > maxnum
                                                      ? f->frames[k].segment : maxnum;
    st = dk_volume_alloc(lab, p->nx, p->ny, p->nz, 1, 1, maxnum > 255 ? DK_I16 : DK_U8);
    if (st == DK_OK) st = paint(lab, p, series, f, buf, nbytes);
    free(buf);
    if (st != DK_OK) return st;
    lab->geom = p->geom;
    lab->ndim = 3;
    snprintf(lab->meta.descrip, sizeof lab->meta.descrip, "DICOM SEG %d segments",
             f->seg_nsegments);
    return DK_OK;
}

dk_status dk_dicom_seg_read(dk_volume *labels, const char *seg_path, const char *series_dir) {
    memset(labels, 0, sizeof *labels);
    dk_dcm_set seg, series;
    dk_dcm_plan p;
    memset(&series, 0, sizeof series);
    memset(&p, 0, sizeof p);
    dk_status st = dk_itk_require(seg_path);
    if (st != DK_OK) return st;
    st = dk_dcm_set_from_file(&seg, seg_path);
    if (st != DK_OK) return st;
    const dk_dcm_file *f = &seg.files[0];
    char looked[8400];
    int rc = 0;
    if ((st = check_seg(f)) != DK_OK) goto out;
    if (series_dir) {
        snprintf(looked, sizeof looked, "%s", series_dir);
        rc = plan_in_dir(&p, &series, series_dir, f->ref_series_uid, &st);
    } else {
        rc = search_next_to(&p, &series, seg_path, f->ref_series_uid, looked, sizeof looked,
                            &st);
    }
    if (rc < 0) goto out;
    if (rc == 0) {
        st = dk_fail(DK_ERR_IO, "%s: a DICOM SEG of %d segments; it references series %s, "
                     "not found in %s; pass the folder of that series", seg_path,
                     f->seg_nsegments,
                     f->ref_series_uid[0] ? f->ref_series_uid : "(no ReferencedSeriesSequence)",
                     looked);
        goto out;
    }
    st = seg_onto(labels, f, &p, &series);
out:
    dk_dcm_plan_free(&p);
    dk_dcm_set_free(&series);
    dk_dcm_set_free(&seg);
    if (st != DK_OK) dk_volume_free(labels);
    return st;
}
