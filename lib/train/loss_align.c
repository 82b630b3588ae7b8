/*
 * Domain alignment between source rows xs (ns, dim) and target rows xt (nt, dim): MMD^2 with
 * a multi-bandwidth Gaussian kernel and Deep CORAL (formulas in dakd/train.h).
 *
 * MMD^2 as a sum over unordered pairs i < j of the pooled rows z (ns + nt of them):
 *   L = sum_{i<j} w_ij k(D_ij),  D_ij = |z_i - z_j|^2,
 *   w_ij = 2/(ns(ns-1)) (both source), 2/(nt(nt-1)) (both target), -2/(ns nt) (one of each)
 *   dL/dz_i += w_ij k'(D_ij) 2 (z_i - z_j),  dL/dz_j -= the same,
 *   k'(D) = -(1/5) sum_f exp(-D/(f h)) / (f h),  the bandwidth h held constant.
 */
#include "dakd/train.h"

#include <math.h>
#include <string.h>

static const double MMD_FACTORS[] = {0.25, 0.5, 1.0, 2.0, 4.0};
enum { MMD_NK = (int)(sizeof MMD_FACTORS / sizeof MMD_FACTORS[0]) };

size_t dk_loss_mmd_work_doubles(int64_t ns, int64_t nt) {
    const int64_t n = ns + nt;
    return (size_t)(n * n + n * (n - 1) / 2);
}

static const float *row_of(const float *xs, const float *xt, int64_t ns, int64_t dim,
                           int64_t r) {
    return r < ns ? xs + r * dim : xt + (r - ns) * dim;
}

/* D (n, n) = pairwise squared distances; returns the median over i < j (sorted in tri). */
static double mmd_distances(double *D, double *tri, const float *xs, const float *xt,
                            int64_t ns, int64_t nt, int64_t dim) {
    const int64_t n = ns + nt;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        D[i * n + i] = 0;
        const float *a = row_of(xs, xt, ns, dim, i);
        for (int64_t j = i + 1; j < n; j++) {
            const float *b = row_of(xs, xt, ns, dim, j);
            double d2 = 0;
            for (int64_t k = 0; k < dim; k++) {
                double diff = (double)a[k] - (double)b[k];
                d2 += diff * diff;
            }
            D[i * n + j] = D[j * n + i] = tri[m++] = d2;
        }
    }
    double med = dk_median(tri, m);
    return med > 0 ? med : 1.0;
}

/* w_ij of the unbiased estimator for rows i < j. */
static double mmd_weight(int64_t i, int64_t j, int64_t ns, int64_t nt) {
    if (j < ns) return 2.0 / ((double)ns * (double)(ns - 1));
    if (i >= ns) return 2.0 / ((double)nt * (double)(nt - 1));
    return -2.0 / ((double)ns * (double)nt);
}

static float *grad_row(float *dxs, float *dxt, int64_t ns, int64_t dim, int64_t r) {
    float *base = r < ns ? dxs : dxt;
    return base ? base + (r < ns ? r : r - ns) * dim : NULL;
}

double dk_loss_mmd(float *dxs, float *dxt, const float *xs, const float *xt, int64_t ns,
                   int64_t nt, int64_t dim, double bandwidth, float scale, double *work) {
    DK_ASSERT(xs && xt && work && ns >= 2 && nt >= 2 && dim >= 1);
    const int64_t n = ns + nt;
    double *D = work, *tri = work + n * n;
    const double med = mmd_distances(D, tri, xs, xt, ns, nt, dim);
    const double h = bandwidth > 0 ? bandwidth : med;
    double loss = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            double w = mmd_weight(i, j, ns, nt), k = 0, dk = 0;
            for (int f = 0; f < MMD_NK; f++) {
                double bw = MMD_FACTORS[f] * h, e = exp(-D[i * n + j] / bw);
                k += e;
                dk -= e / bw;
            }
            loss += w * k / MMD_NK;
            float *gi = grad_row(dxs, dxt, ns, dim, i), *gj = grad_row(dxs, dxt, ns, dim, j);
            if (!gi && !gj) continue;
            const float *a = row_of(xs, xt, ns, dim, i), *b = row_of(xs, xt, ns, dim, j);
            double c = (double)scale * w * dk / MMD_NK * 2.0;
            for (int64_t e = 0; e < dim; e++) {
                float g = (float)(c * ((double)a[e] - (double)b[e]));
                if (gi) gi[e] += g;
                if (gj) gj[e] -= g;
            }
        }
    return loss;
}

/* ------------------------------------------------------------------ CORAL */

size_t dk_loss_coral_work_doubles(int64_t dim) { return (size_t)(2 * dim * dim + 2 * dim); }

/* mean (dim) and C (dim, dim) = the unbiased covariance of x (rows, dim). */
static void covariance(double *C, double *mean, const float *x, int64_t rows, int64_t dim) {
    for (int64_t a = 0; a < dim; a++) {
        double sum = 0;
        for (int64_t r = 0; r < rows; r++)
            sum += x[r * dim + a];
        mean[a] = sum / (double)rows;
    }
    memset(C, 0, (size_t)(dim * dim) * sizeof *C);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t a = 0; a < dim; a++) {
            double ca = (double)x[r * dim + a] - mean[a];
            for (int64_t b = 0; b < dim; b++)
                C[a * dim + b] += ca * ((double)x[r * dim + b] - mean[b]);
        }
    for (int64_t e = 0; e < dim * dim; e++)
        C[e] /= (double)(rows - 1);
}

/* dx (rows, dim) += g * (x - 1 mean) Delta, Delta (dim, dim) symmetric. */
static void coral_grad(float *dx, const float *x, const double *mean, const double *delta,
                       int64_t rows, int64_t dim, double g) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < dim; b++) {
            double sum = 0;
            for (int64_t a = 0; a < dim; a++)
                sum += ((double)x[r * dim + a] - mean[a]) * delta[a * dim + b];
            dx[r * dim + b] += (float)(g * sum);
        }
}

double dk_loss_coral(float *dxs, float *dxt, const float *xs, const float *xt, int64_t ns,
                     int64_t nt, int64_t dim, float scale, double *work) {
    DK_ASSERT(xs && xt && work && ns >= 2 && nt >= 2 && dim >= 1);
    double *Cs = work, *Ct = work + dim * dim, *ms = Ct + dim * dim, *mt = ms + dim;
    covariance(Cs, ms, xs, ns, dim);
    covariance(Ct, mt, xt, nt, dim);
    double sum = 0;
    for (int64_t e = 0; e < dim * dim; e++) {
        Cs[e] -= Ct[e]; /* Delta = C_s - C_t */
        sum += Cs[e] * Cs[e];
    }
    const double d2 = (double)dim * (double)dim;
    if (dxs) coral_grad(dxs, xs, ms, Cs, ns, dim, (double)scale / (d2 * (double)(ns - 1)));
    if (dxt) coral_grad(dxt, xt, mt, Cs, nt, dim, -(double)scale / (d2 * (double)(nt - 1)));
    return sum / (4.0 * d2);
}
