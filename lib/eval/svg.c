/*
 * SVG box plots for report.html: one plot per metric, one box per label.
 *
 * Box = q1..q3 (numpy "linear" percentiles, as the summaries), a line at the median;
 * whiskers reach the furthest values within 1.5·IQR of the box (Tukey's rule); values
 * beyond them are drawn as dots. The y axis spans the finite values, widened to "nice"
 * tick steps (1, 2, 2.5 or 5 times a power of ten), with grid lines and tick labels.
 */
#include "report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PLOT_H = 230, MARGIN_L = 56, MARGIN_R = 12, MARGIN_T = 30, MARGIN_B = 40, BOX_W = 64,
       PLOT_W_MAX = 900, BOX_W_MIN = 20, CHAR_W = 6 };

/* The layout of one plot: with many groups the boxes narrow (down to BOX_W_MIN) so the plot
 * stays within PLOT_W_MAX; names wider than a box are written upright below it (rotated by
 * 90 degrees, so none overlaps a neighbour or leaves the plot), which makes the plot taller
 * by `drop` pixels. */
typedef struct {
    double box_w;
    int upright, drop;
} layout;

static layout plan_layout(const char *const *names, int n_groups) {
    layout l = {BOX_W, 0, 0};
    int avail = PLOT_W_MAX - MARGIN_L - MARGIN_R - 16;
    if (n_groups * BOX_W > avail)
        l.box_w = n_groups * BOX_W_MIN > avail ? BOX_W_MIN : (double)avail / n_groups;
    size_t longest = 0;
    for (int g = 0; g < n_groups; g++)
        if (strlen(names[g]) > longest) longest = strlen(names[g]);
    if ((double)longest * CHAR_W > l.box_w) l.upright = 1, l.drop = CHAR_W * (int)longest;
    return l;
}

/* A tick step of 1, 2, 2.5 or 5 × 10^k giving about 5 intervals over `range`. */
static double nice_step(double range) {
    double raw = range / 5.0, p = pow(10.0, floor(log10(raw))), f = raw / p;
    double m = f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 2.5 ? 2.5 : f <= 5.0 ? 5.0 : 10.0;
    return m * p;
}

/* Decimals needed to print multiples of `step` exactly enough (0.25 → 2). */
static int step_decimals(double step) {
    int d = 0;
    while (d < 8 && fabs(step * pow(10.0, d) - round(step * pow(10.0, d))) > 1e-9 * pow(10.0, d))
        d++;
    return d;
}

typedef struct {
    double lo, hi;   /* axis range */
    double y0, y1;   /* pixel rows of lo and hi */
} axis;

static double ypix(const axis *a, double v) {
    return a->y0 + (v - a->lo) / (a->hi - a->lo) * (a->y1 - a->y0);
}

/* Range of the finite values; [0, 1] when there are none. Equal ends are widened. */
static void value_range(const double *const *values, const int *counts, int n_groups,
                        double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int g = 0; g < n_groups; g++)
        for (int i = 0; i < counts[g]; i++)
            if (isfinite(values[g][i])) {
                if (values[g][i] < *lo) *lo = values[g][i];
                if (values[g][i] > *hi) *hi = values[g][i];
            }
    if (*lo > *hi) *lo = 0.0, *hi = 1.0;
    if (*hi - *lo < 1e-12 * (fabs(*lo) + 1.0)) {
        double pad = fabs(*lo) > 0 ? 0.1 * fabs(*lo) : 0.5;
        *lo -= pad;
        *hi += pad;
    }
}

static void draw_axis(dk_sbuf *b, axis *a, int width, const double *const *values,
                      const int *counts, int n_groups) {
    double lo, hi;
    value_range(values, counts, n_groups, &lo, &hi);
    double step = nice_step(hi - lo);
    a->lo = floor(lo / step + 1e-9) * step;
    a->hi = ceil(hi / step - 1e-9) * step;
    if (a->hi <= a->lo) a->hi = a->lo + step;
    a->y0 = PLOT_H - MARGIN_B;
    a->y1 = MARGIN_T;
    int dec = step_decimals(step);
    for (int t = 0;; t++) {
        double v = a->lo + t * step;
        if (v > a->hi + 1e-9 * step) break;
        double y = ypix(a, v);
        dk_sb_printf(b, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#e3e3e3'/>",
                     MARGIN_L, y, width - MARGIN_R, y);
        dk_sb_printf(b, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#333'/>",
                     MARGIN_L - 4, y, MARGIN_L, y);
        dk_sb_printf(b, "<text x='%d' y='%.1f' text-anchor='end' dominant-baseline='middle'>"
                        "%.*f</text>", MARGIN_L - 7, y, dec, fabs(v) < 1e-12 * step ? 0.0 : v);
    }
    dk_sb_printf(b, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#333'/>", MARGIN_L,
                 MARGIN_T, MARGIN_L, PLOT_H - MARGIN_B);
    dk_sb_printf(b, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#333'/>", MARGIN_L,
                 PLOT_H - MARGIN_B, width - MARGIN_R, PLOT_H - MARGIN_B);
}

/* One box at centre x for the sorted finite values s[0..n-1]. */
static void draw_box(dk_sbuf *b, const axis *a, const layout *l, double cx, const char *name,
                     const double *s, int n) {
    int ny = PLOT_H - MARGIN_B + (l->upright ? 12 : 30);
    int ty = PLOT_H - MARGIN_B + (l->upright ? 24 : 16);
    dk_sb_printf(b, "<text x='%.1f' y='%d' text-anchor='middle' class='n'>%s%d</text>", cx, ny,
                 l->box_w < 40 ? "" : "n=", n);
    if (l->upright)
        dk_sb_printf(b, "<text x='%.1f' y='%d' text-anchor='end' transform='rotate(-90 %.1f %d)'>",
                     cx + 4, ty, cx + 4, ty);
    else
        dk_sb_printf(b, "<text x='%.1f' y='%d' text-anchor='middle'>", cx, ty);
    dk_sb_html(b, name);
    dk_sb_puts(b, "</text>");
    if (n == 0) return;
    double q1 = dk_percentile_sorted(s, n, 25), med = dk_percentile_sorted(s, n, 50);
    double q3 = dk_percentile_sorted(s, n, 75), iqr = q3 - q1;
    double wlo = q1, whi = q3;
    for (int i = 0; i < n; i++) {
        if (s[i] >= q1 - 1.5 * iqr && s[i] < wlo) wlo = s[i];
        if (s[i] <= q3 + 1.5 * iqr && s[i] > whi) whi = s[i];
    }
    double hw = l->box_w * 0.3;
    dk_sb_printf(b, "<g><title>");
    dk_sb_html(b, name);
    dk_sb_printf(b, ": median %.4g, IQR %.4g–%.4g, n=%d</title>", med, q1, q3, n);
    dk_sb_printf(b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#1f4e79'/>", cx,
                 ypix(a, wlo), cx, ypix(a, q1));
    dk_sb_printf(b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#1f4e79'/>", cx,
                 ypix(a, q3), cx, ypix(a, whi));
    for (int w = 0; w < 2; w++) {
        double y = ypix(a, w ? whi : wlo);
        dk_sb_printf(b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#1f4e79'/>",
                     cx - hw / 2, y, cx + hw / 2, y);
    }
    double top = ypix(a, q3), bot = ypix(a, q1);
    dk_sb_printf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#cfe2f3' "
                    "stroke='#1f4e79'/>", cx - hw, top, 2 * hw, bot - top > 0.5 ? bot - top : 0.5);
    dk_sb_printf(b, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#c0392b' "
                    "stroke-width='2'/></g>", cx - hw, ypix(a, med), cx + hw, ypix(a, med));
    for (int i = 0; i < n; i++)
        if (s[i] < wlo || s[i] > whi)
            dk_sb_printf(b, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='none' "
                            "stroke='#333'><title>%.6g</title></circle>", cx, ypix(a, s[i]),
                         s[i]);
}

void dk_svg_boxplot(dk_sbuf *b, const char *metric, const char *const *group_names,
                    const double *const *values, const int *counts, int n_groups) {
    layout l = plan_layout(group_names, n_groups);
    int width = MARGIN_L + MARGIN_R + (int)(l.box_w * (n_groups > 2 ? n_groups : 2)) + 16;
    int height = PLOT_H + l.drop;
    dk_sb_printf(b, "<svg xmlns='http://www.w3.org/2000/svg' class='box' width='%d' "
                    "height='%d' viewBox='0 0 %d %d' role='img'><text x='%d' y='18' "
                    "class='t'>", width, height, width, height, MARGIN_L);
    dk_sb_html(b, metric);
    dk_sb_puts(b, "</text>");
    axis a;
    draw_axis(b, &a, width, values, counts, n_groups);
    double *s = NULL;
    int cap = 0;
    for (int g = 0; g < n_groups; g++) {
        if (counts[g] > cap) {
            free(s);
            cap = counts[g];
            s = malloc((size_t)cap * sizeof *s);
            if (!s) {
                b->oom = 1;
                return;
            }
        }
        int n = 0;
        for (int i = 0; i < counts[g]; i++)
            if (isfinite(values[g][i])) s[n++] = values[g][i];
        dk_sort_doubles(s, n);
        draw_box(b, &a, &l, MARGIN_L + 8 + l.box_w * (g + 0.5), group_names[g], s, n);
    }
    free(s);
    dk_sb_puts(b, "</svg>\n");
}
