/* Two-domain phantoms: organ-like shapes with known labels (see dakd/data.h).
 * Shapes are implicit functions in normalised coordinates u in [-1, 1] per axis, so the
 * same case looks alike at any grid size. */
#include "data_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const double TWO_PI = 6.283185307179586;

enum { LBL_BG = 0, LBL_ORGAN = 1, LBL_KIDNEY = 2, LBL_VESSEL = 3, N_TISSUE = 5 };

typedef struct {
    double organ_c[3], organ_r[3], organ_phase[3];
    double kidney_c[2][3], kidney_r[3];
    double vessel_amp[2], vessel_freq, vessel_phase, vessel_radius;
    double bias_dir[3];
} shapes;

typedef struct {
    double tissue[N_TISSUE]; /* background, organ, kidney, vessel, body */
    double bias, noise, blur_vox;
} appearance;

/* The target is a scanner-like shift of the same tissues: contrast compressed but in the same
 * order (organ > kidney > body: the organ/kidney gap 0.20 -> 0.07, organ/body 0.40 -> 0.20),
 * a background offset, a stronger bias field and more noise. A source-trained network loses
 * about 0.3 foreground Dice there. The order is kept on purpose: swapping two tissues' contrast
 * is an inversion that no method working from intensities can undo. */
static const appearance domains[2] = {
    {{0.0, 0.75, 0.55, 0.95, 0.35}, 0.10, 0.02, 0.0},
    {{0.03, 0.62, 0.55, 0.90, 0.42}, 0.20, 0.035, 0.0},
};

static double uni(dk_rng *r, double lo, double hi) {
    return lo + (hi - lo) * dk_rng_uniform_double(r);
}

static void draw_shapes(shapes *s, dk_rng *r, int is2d) {
    for (int a = 0; a < 3; a++) {
        s->organ_c[a] = uni(r, -0.25, -0.05);
        s->organ_r[a] = uni(r, 0.28, 0.38);
        s->organ_phase[a] = uni(r, 0, TWO_PI);
        s->kidney_r[a] = uni(r, 0.10, 0.14);
        s->bias_dir[a] = uni(r, -1, 1);
    }
    for (int k = 0; k < 2; k++) {
        s->kidney_c[k][0] = k ? uni(r, 0.30, 0.45) : uni(r, 0.05, 0.2);
        s->kidney_c[k][1] = k ? uni(r, 0.25, 0.4) : uni(r, 0.35, 0.5);
        s->kidney_c[k][2] = uni(r, -0.2, 0.2);
    }
    s->vessel_amp[0] = uni(r, 0.05, 0.15);
    s->vessel_amp[1] = uni(r, 0.05, 0.15);
    s->vessel_freq = uni(r, 2.0, 4.0);
    s->vessel_phase = uni(r, 0, TWO_PI);
    s->vessel_radius = uni(r, 0.035, 0.06);
    if (is2d) s->organ_c[2] = s->kidney_c[0][2] = s->kidney_c[1][2] = 0;
}

static double ellipsoid(const double u[3], const double c[3], const double rad[3]) {
    double q = 0;
    for (int a = 0; a < 3; a++) q += (u[a] - c[a]) * (u[a] - c[a]) / (rad[a] * rad[a]);
    return q;
}

/* Label at normalised position u; tissue index 4 = body without a structure. */
static int classify(const shapes *s, const double u[3], int is2d) {
    static const double body_r[3] = {0.92, 0.78, 0.95};
    static const double origin[3] = {0, 0, 0};
    if (ellipsoid(u, origin, body_r) > 1) return LBL_BG;
    /* vessel: a tube along the slowest axis (z in 3-D, y in 2-D) that wanders across it */
    int along = is2d ? 1 : 2;
    double t = u[along];
    double vx = -0.1 + s->vessel_amp[0] * sin(s->vessel_freq * t + s->vessel_phase);
    double vy = 0.05 + s->vessel_amp[1] * cos(0.7 * s->vessel_freq * t + s->vessel_phase);
    double dx = u[0] - vx, dy = is2d ? 0 : u[1] - vy;
    if (dx * dx + dy * dy < s->vessel_radius * s->vessel_radius) return LBL_VESSEL;
    double wobble = 0.12 * sin(3 * u[0] + s->organ_phase[0]) * sin(2 * u[1] + s->organ_phase[1]) *
                    cos(2 * u[2] + s->organ_phase[2]);
    if (ellipsoid(u, s->organ_c, s->organ_r) + wobble < 1) return LBL_ORGAN;
    for (int k = 0; k < 2; k++)
        if (ellipsoid(u, s->kidney_c[k], s->kidney_r) < 1) return LBL_KIDNEY;
    return 4;
}

static void set_grid(dk_volume *v, const dk_phantom_opts *o) {
    for (int a = 0; a < 3; a++) {
        double sp = o->spacing[a] > 0 ? o->spacing[a] : 1.0;
        int64_t n = a == 0 ? v->nx : a == 1 ? v->ny : v->nz;
        v->geom.spacing[a] = sp;
        v->geom.origin[a] = -0.5 * (double)(n - 1) * sp;
    }
}

static void render(const dk_phantom_opts *o, const shapes *s, const appearance *ap, float *img,
                   uint8_t *lab) {
    const int64_t n[3] = {o->nx, o->ny, o->nz};
    int is2d = o->nz == 1;
    int64_t i = 0;
    for (int64_t z = 0; z < n[2]; z++)
        for (int64_t y = 0; y < n[1]; y++)
            for (int64_t x = 0; x < n[0]; x++, i++) {
                double u[3] = {2.0 * (x + 0.5) / n[0] - 1, 2.0 * (y + 0.5) / n[1] - 1,
                               is2d ? 0 : 2.0 * (z + 0.5) / n[2] - 1};
                int t = classify(s, u, is2d);
                lab[i] = (uint8_t)(t == 4 ? LBL_BG : t);
                double b = 1 + ap->bias * (s->bias_dir[0] * u[0] + s->bias_dir[1] * u[1] +
                                           s->bias_dir[2] * u[2]);
                img[i] = (float)(ap->tissue[t] * b);
            }
}

dk_status dk_phantom_generate(dk_volume *image, dk_volume *label, const dk_phantom_opts *o,
                              dk_rng *rng) {
    memset(image, 0, sizeof *image);
    memset(label, 0, sizeof *label);
    if (o->nx < 8 || o->ny < 8 || o->nz < 1 || o->nx > 4096 || o->ny > 4096 || o->nz > 4096)
        return dk_fail(DK_ERR_ARG, "phantom: size %lldx%lldx%lld outside 8..4096 (nz >= 1)",
                       (long long)o->nx, (long long)o->ny, (long long)o->nz);
    if (o->domain != 0 && o->domain != 1)
        return dk_fail(DK_ERR_ARG, "phantom: domain %d (must be 0 source or 1 target)", o->domain);
    dk_status st = dk_volume_alloc(image, o->nx, o->ny, o->nz, 1, 1, DK_F32);
    if (st == DK_OK) st = dk_volume_alloc(label, o->nx, o->ny, o->nz, 1, 1, DK_U8);
    size_t nline = dk__gauss_work_floats(o->nx + o->ny + o->nz);
    float *line = st == DK_OK ? dk_alloc_aligned(nline, 4) : NULL;
    if (st == DK_OK && !line) st = dk_fail(DK_ERR_NOMEM, "phantom: out of memory");
    if (st != DK_OK) goto out;
    shapes s;
    draw_shapes(&s, rng, o->nz == 1);
    const appearance *ap = &domains[o->domain];
    render(o, &s, ap, image->data, label->data);
    if (ap->blur_vox > 0) /* edges clamped; axes (z, y, x) */
        for (int a = 0; a < 3; a++)
            dk__gauss_axis(image->data, o->nz, o->ny, o->nx, a, ap->blur_vox, DK_EDGE_CLAMP, line);
    float *img = image->data;
    for (int64_t i = 0; i < dk_volume_numel(image); i++)
        img[i] += (float)(ap->noise * dk_rng_normal(rng));
    set_grid(image, o);
    set_grid(label, o);
    snprintf(image->meta.descrip, sizeof image->meta.descrip, "dakd phantom, domain %d",
             o->domain);
    snprintf(label->meta.descrip, sizeof label->meta.descrip,
             "dakd phantom labels: 1 organ, 2 kidney, 3 vessel");
out:
    dk_free(line);
    if (st != DK_OK) {
        dk_volume_free(image);
        dk_volume_free(label);
    }
    return st;
}
