/*
 * The two transforms of a NIfTI file across a read → write round trip. dakd's geometry
 * follows the sform (dakd/volume.h), so a file whose qform differs from its sform (a
 * scanner qform beside a registration's sform, or a qform_code 0 beside an sform) would
 * lose its qform when written from the geometry alone. The reader keeps the qform and both
 * codes in dk_nifti_meta; the writer puts them back as long as the geometry is still the
 * one read, and otherwise (a resampled or reoriented volume) writes qform = sform = the
 * geometry, as for a volume made in memory.
 */
#include <math.h>
#include <string.h>

#include "nifti_internal.h"

void dk_nifti_keep_xforms(dk_nifti_meta *m, const nifti_image *nim, const dk_geometry *g) {
    m->xforms_kept = 1;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) m->qform[r][c] = nim->qto_xyz.m[r][c];
    dk_geometry_to_nifti_affine(g, m->xform_geom);
}

/* The geometry is still the one read: affines equal up to float32 rounding of a header. */
static int same_affine(const double a[4][4], const double b[4][4]) {
    double scale = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) scale = fmax(scale, fabs(a[r][c]));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            if (fabs(a[r][c] - b[r][c]) > 1e-6 * (scale + 1)) return 0;
    return 1;
}

void dk_nifti_put_xforms(nifti_image *nim, const dk_nifti_meta *m, const dk_geometry *g) {
    double now[4][4];
    dk_geometry_to_nifti_affine(g, now);
    if (!m->xforms_kept || !same_affine((const double(*)[4])now, m->xform_geom)) return;
    nim->qform_code = m->qform_code;
    nim->sform_code = m->sform_code;
    if (m->qform_code <= 0) return; /* no qform: its fields stay those of the geometry */
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) nim->qto_xyz.m[r][c] = m->qform[r][c];
    double dx, dy, dz; /* the qform's own pixdim: it may differ from the sform's columns */
    nifti_dmat44_to_quatern(nim->qto_xyz, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d,
                            &nim->qoffset_x, &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz,
                            &nim->qfac);
    nim->dx = nim->pixdim[1] = dx;
    nim->dy = nim->pixdim[2] = dy;
    nim->dz = nim->pixdim[3] = dz;
}
