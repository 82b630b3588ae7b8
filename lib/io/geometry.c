/* Geometry in LPS (see dakd/volume.h) and its exact conversion to and from NIfTI's RAS
 * affine. RAS = diag(-1,-1,1) * LPS: a sign flip of the first two rows, which is exact. */
#include "dakd/volume.h"

#include <math.h>
#include <string.h>

void dk_geometry_identity(dk_geometry *g) {
    memset(g, 0, sizeof *g);
    for (int i = 0; i < 3; i++) {
        g->spacing[i] = 1.0;
        g->direction[i][i] = 1.0;
    }
}

static double ras_sign(int row) { return row < 2 ? -1.0 : 1.0; }

void dk_geometry_to_nifti_affine(const dk_geometry *g, double m[4][4]) {
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++) /* + 0.0 turns -0 into 0 */
            m[r][c] = ras_sign(r) * (g->direction[r][c] * g->spacing[c]) + 0.0;
        m[r][3] = ras_sign(r) * g->origin[r] + 0.0;
    }
    m[3][0] = m[3][1] = m[3][2] = 0.0;
    m[3][3] = 1.0;
}

/* The direction component d such that d * s == a exactly, searched among the doubles
 * next to a / s (the correctly rounded quotient is within one or two ulps of one). */
static double exact_factor(double a, double s) {
    double d = a / s;
    if (d * s == a) return d;
    double lo = d, hi = d;
    for (int k = 0; k < 4; k++) {
        lo = nextafter(lo, -INFINITY);
        hi = nextafter(hi, INFINITY);
        if (lo * s == a) return lo;
        if (hi * s == a) return hi;
    }
    return d;
}

/* 1 if every entry of the column has an exact factor for spacing s; fills dir. */
static int exact_column(double dir[3], const double lps[3], double s) {
    int ok = 1;
    for (int r = 0; r < 3; r++) {
        dir[r] = exact_factor(lps[r], s);
        ok &= dir[r] * s == lps[r];
    }
    return ok;
}

/* Spacing and direction of one column. sqrt(|a|^2) does not always admit direction values
 * whose products give the column back exactly; a spacing a few ulps away nearly always
 * does (all but ~0.2% of random float32 columns), and then the round trip is exact. */
static void split_column(double *spacing, double dir[3], const double lps[3], double s) {
    double up = s, down = s;
    if (exact_column(dir, lps, s)) {
        *spacing = s;
        return;
    }
    for (int k = 0; k < 32; k++) {
        up = nextafter(up, INFINITY);
        down = nextafter(down, 0);
        if (exact_column(dir, lps, up)) {
            *spacing = up;
            return;
        }
        if (exact_column(dir, lps, down)) {
            *spacing = down;
            return;
        }
    }
    *spacing = s;
    exact_column(dir, lps, s);
}

void dk_geometry_from_nifti_affine(dk_geometry *g, const double m[4][4]) {
    for (int c = 0; c < 3; c++) {
        double lps[3], norm2 = 0, dir[3];
        for (int r = 0; r < 3; r++) {
            lps[r] = ras_sign(r) * m[r][c];
            norm2 += lps[r] * lps[r];
        }
        double s = sqrt(norm2);
        if (!(s > 0) || !isfinite(s)) { /* degenerate column: unit step along the axis */
            g->spacing[c] = 1.0;
            for (int r = 0; r < 3; r++) g->direction[r][c] = r == c ? 1.0 : 0.0;
            continue;
        }
        split_column(&g->spacing[c], dir, lps, s);
        for (int r = 0; r < 3; r++) g->direction[r][c] = dir[r];
    }
    for (int r = 0; r < 3; r++) g->origin[r] = ras_sign(r) * m[r][3];
}

void dk_geometry_orientation_code(const dk_geometry *g, char code[4]) {
    static const char pos[3] = {'L', 'P', 'S'}, neg[3] = {'R', 'A', 'I'};
    int used[3] = {0, 0, 0};
    for (int c = 0; c < 3; c++) {
        /* the LPS component of largest magnitude not yet taken by an earlier axis */
        int best = -1;
        double bv = -1;
        for (int r = 0; r < 3; r++) {
            double a = fabs(g->direction[r][c]);
            if (!used[r] && (a > bv || best < 0)) bv = a, best = r; /* a NaN still takes one */
        }
        used[best] = 1;
        const double d = g->direction[best][c];
        code[c] = isfinite(bv) ? (d >= 0 ? pos[best] : neg[best]) : '?';
    }
    code[3] = '\0';
}

int dk_geometry_equal(const dk_geometry *a, const dk_geometry *b, double tol) {
    for (int i = 0; i < 3; i++) {
        double rs = fabs(a->spacing[i] - b->spacing[i]);
        if (rs > tol * fmax(1.0, fabs(a->spacing[i]))) return 0;
        if (fabs(a->origin[i] - b->origin[i]) > tol * fmax(1.0, fabs(a->origin[i]))) return 0;
        for (int j = 0; j < 3; j++)
            if (fabs(a->direction[i][j] - b->direction[i][j]) > tol) return 0;
    }
    return 1;
}
