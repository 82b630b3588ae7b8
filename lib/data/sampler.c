/* Training batches: patches drawn from preprocessed cases with nnU-Net-style foreground
 * oversampling, padded where they leave the image (rules in dakd/data.h). */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ batches */

dk_status dk_batch_alloc(dk_batch *b, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) {
    memset(b, 0, sizeof *b);
    dk_status st = dk_tensor_alloc(&b->image, n, c, d, h, w);
    if (st != DK_OK) return st;
    size_t vox = (size_t)(n * d * h * w);
    b->label = malloc(vox);
    b->mask = malloc(vox);
    b->case_index = calloc((size_t)n, sizeof *b->case_index);
    b->start = calloc((size_t)n, sizeof *b->start);
    b->is_fg = calloc((size_t)n, sizeof *b->is_fg);
    b->work = dk_alloc_aligned(dk__augment_work_floats(c, d, h, w), sizeof(float));
    if (b->label && b->mask && b->case_index && b->start && b->is_fg && b->work) {
        memset(b->label, 255, vox);
        memset(b->mask, 0, vox);
        return DK_OK;
    }
    dk_batch_free(b);
    return dk_fail(DK_ERR_NOMEM, "batch (%lld, %lld, %lld, %lld, %lld): out of memory",
                   (long long)n, (long long)c, (long long)d, (long long)h, (long long)w);
}

void dk_batch_free(dk_batch *b) {
    if (!b) return;
    dk_tensor_free(&b->image);
    free(b->label);
    free(b->mask);
    free(b->case_index);
    free(b->start);
    free(b->is_fg);
    dk_free(b->work);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ the sampler */

void dk_sampler_defaults(dk_sampler_opts *o) {
    memset(o, 0, sizeof *o);
    o->patch[0] = 1;
    o->patch[1] = o->patch[2] = 256;
    o->fg_fraction = 1.0 / 3.0;
    o->classes = 2;
}

void dk_sampler_free(dk_sampler *s) {
    if (!s) return;
    if (s->fg)
        for (int i = 0; i < s->n_cases; i++) free(s->fg[i]);
    free(s->fg);
    free(s->fg_start);
    free(s->mask_count);
    memset(s, 0, sizeof *s);
}

/* Counting sort of a case's foreground voxels by class into fg (NULL when none). */
static dk_status index_foreground(int64_t **fg, int64_t start[256], const dk_case_data *c,
                                  int classes) {
    memset(start, 0, 256 * sizeof *start);
    *fg = NULL;
    if (!c->label.data) return DK_OK;
    const uint8_t *l = c->label.data;
    int64_t n = dk_volume_numel(&c->label), count[256] = {0};
    for (int64_t i = 0; i < n; i++) count[l[i]]++;
    int64_t total = 0;
    for (int k = 1; k < classes; k++) {
        start[k] = total;
        total += count[k];
    }
    start[classes] = total;
    if (total == 0) return DK_OK;
    *fg = malloc((size_t)total * sizeof **fg);
    if (!*fg) return dk_fail(DK_ERR_NOMEM, "%s: foreground index (%lld voxels)", c->id,
                             (long long)total);
    int64_t pos[256];
    memcpy(pos, start, sizeof pos);
    for (int64_t i = 0; i < n; i++)
        if (l[i] >= 1 && l[i] < classes) (*fg)[pos[l[i]]++] = i;
    return DK_OK;
}

static dk_status check_opts(const dk_case_data *cases, int n_cases, const dk_sampler_opts *o) {
    if (n_cases < 1) return dk_fail(DK_ERR_ARG, "sampler: no cases");
    for (int a = 0; a < 3; a++)
        if (o->patch[a] < 1)
            return dk_fail(DK_ERR_ARG, "sampler: patch size[%d] = %lld", a, (long long)o->patch[a]);
    if (o->classes < 1 || o->classes > 255)
        return dk_fail(DK_ERR_ARG, "sampler: classes = %d outside 1..255", o->classes);
    if (!(o->fg_fraction >= 0 && o->fg_fraction <= 1))
        return dk_fail(DK_ERR_ARG, "sampler: fg_fraction = %g outside [0, 1]", o->fg_fraction);
    for (int i = 0; i < n_cases; i++) {
        const dk_case_data *c = &cases[i];
        if (c->image.dtype != DK_F32 || c->image.nt != 1 || c->image.nc != cases[0].image.nc)
            return dk_fail(DK_ERR_ARG, "sampler: case '%s' is not float32 with %lld channels",
                           c->id, (long long)cases[0].image.nc);
        const dk_volume *aux[2] = {&c->label, &c->mask};
        for (int k = 0; k < 2; k++)
            if (aux[k]->data && (aux[k]->dtype != DK_U8 || aux[k]->nx != c->image.nx ||
                                 aux[k]->ny != c->image.ny || aux[k]->nz != c->image.nz))
                return dk_fail(DK_ERR_ARG, "sampler: case '%s': %s is not uint8 on the image "
                               "grid", c->id, k ? "mask" : "label");
    }
    return DK_OK;
}

dk_status dk_sampler_init(dk_sampler *s, const dk_case_data *cases, int n_cases,
                          const dk_sampler_opts *o) {
    memset(s, 0, sizeof *s);
    dk_sampler_opts defaults;
    if (!o) dk_sampler_defaults(&defaults), o = &defaults;
    dk_status st = check_opts(cases, n_cases, o);
    if (st != DK_OK) return st;
    s->cases = cases;
    s->n_cases = n_cases;
    s->channels = cases[0].image.nc;
    s->opts = *o;
    s->fg = calloc((size_t)n_cases, sizeof *s->fg);
    s->fg_start = calloc((size_t)n_cases, sizeof *s->fg_start);
    s->mask_count = calloc((size_t)n_cases, sizeof *s->mask_count);
    if (!s->fg || !s->fg_start || !s->mask_count)
        st = dk_fail(DK_ERR_NOMEM, "sampler: out of memory");
    for (int i = 0; i < n_cases && st == DK_OK; i++) {
        const uint8_t *m = cases[i].mask.data;
        for (int64_t k = 0; m && k < dk_volume_numel(&cases[i].mask); k++)
            s->mask_count[i] += m[k] != 0;
        st = index_foreground(&s->fg[i], s->fg_start[i], &cases[i], o->classes);
    }
    if (st != DK_OK) dk_sampler_free(s);
    return st;
}

/* ------------------------------------------------------------------ drawing */

/* Centre on a foreground voxel: a class uniformly among the present ones, then a voxel.
 * Returns 0 (no draw) when the case has no foreground. */
static int centre_on_foreground(int64_t *idx, const dk_sampler *s, int ci, dk_rng *rng) {
    const int64_t *st = s->fg_start[ci];
    int present[256], n_present = 0;
    for (int k = 1; k < s->opts.classes; k++)
        if (st[k + 1] > st[k]) present[n_present++] = k;
    if (n_present == 0) return 0;
    int k = present[dk_rng_below(rng, (uint64_t)n_present)];
    *idx = s->fg[ci][st[k] + (int64_t)dk_rng_below(rng, (uint64_t)(st[k + 1] - st[k]))];
    return 1;
}

/* A mask voxel uniformly: rejection first (cheap for a large mask), then the k-th mask
 * voxel by a scan. Both are uniform over the mask, so their mixture is too. */
static int64_t centre_in_mask(const dk_case_data *c, int64_t count, dk_rng *rng) {
    const uint8_t *m = c->mask.data;
    uint64_t n = (uint64_t)dk_volume_numel(&c->mask);
    for (int t = 0; t < 64; t++) {
        uint64_t i = dk_rng_below(rng, n);
        if (m[i]) return (int64_t)i;
    }
    uint64_t k = dk_rng_below(rng, (uint64_t)count);
    for (uint64_t i = 0; i < n; i++)
        if (m[i] && k-- == 0) return (int64_t)i;
    return -1; /* unreachable while count is right */
}

/* Choose the start (z, y, x) of one patch; returns 1 if centred on foreground. */
static int pick_start(int64_t start[3], const dk_sampler *s, int ci, int want_fg, dk_rng *rng) {
    const dk_case_data *c = &s->cases[ci];
    const int64_t dims[3] = {c->image.nz, c->image.ny, c->image.nx};
    const int64_t *P = s->opts.patch;
    int64_t idx = -1;
    int fg = want_fg && centre_on_foreground(&idx, s, ci, rng);
    if (!fg && s->opts.centre_in_mask && s->mask_count[ci] > 0)
        idx = centre_in_mask(c, s->mask_count[ci], rng);
    if (idx >= 0) {
        int64_t cz = idx / (dims[1] * dims[2]), cy = idx / dims[2] % dims[1], cx = idx % dims[2];
        start[0] = cz - P[0] / 2, start[1] = cy - P[1] / 2, start[2] = cx - P[2] / 2;
        return fg;
    }
    for (int a = 0; a < 3; a++) {
        int64_t lo = dims[a] < P[a] ? dims[a] - P[a] : 0, hi = dims[a] < P[a] ? 0 : dims[a] - P[a];
        start[a] = lo + (int64_t)dk_rng_below(rng, (uint64_t)(hi - lo + 1));
    }
    return 0;
}

/* Copy one row of w voxels starting at source column sx (may be out of range); fill
 * outside with `pad`. src == NULL fills the whole row with `fill_in`. */
static void row_span(int64_t *x0, int64_t *x1, int64_t sx, int64_t w, int64_t W) {
    *x0 = sx < 0 ? (-sx < w ? -sx : w) : 0;
    *x1 = W - sx < w ? W - sx : w;
    if (*x1 < *x0) *x1 = *x0;
}

static void copy_row_u8(uint8_t *dst, const uint8_t *src, int64_t sx, int64_t w, int64_t W,
                        uint8_t pad, uint8_t fill_in) {
    int64_t x0, x1;
    row_span(&x0, &x1, sx, w, W);
    memset(dst, pad, (size_t)x0);
    if (src) memcpy(dst + x0, src + sx + x0, (size_t)(x1 - x0));
    else memset(dst + x0, fill_in, (size_t)(x1 - x0));
    memset(dst + x1, pad, (size_t)(w - x1));
}

static void copy_row_f32(float *dst, const float *src, int64_t sx, int64_t w, int64_t W) {
    int64_t x0, x1;
    row_span(&x0, &x1, sx, w, W);
    memset(dst, 0, (size_t)x0 * sizeof *dst);
    memcpy(dst + x0, src + sx + x0, (size_t)(x1 - x0) * sizeof *dst);
    memset(dst + x1, 0, (size_t)(w - x1) * sizeof *dst);
}

static void copy_patch(dk_batch *b, int64_t j, const dk_case_data *c, const int64_t st[3]) {
    const int64_t d = b->image.d, h = b->image.h, w = b->image.w;
    const int64_t Z = c->image.nz, Y = c->image.ny, X = c->image.nx;
    const float *img = c->image.data;
    const uint8_t *lab = c->label.data, *msk = c->mask.data;
    for (int64_t z = 0; z < d; z++)
        for (int64_t y = 0; y < h; y++) {
            int64_t sz = st[0] + z, sy = st[1] + y, row = (sz * Y + sy) * X;
            int inside = sz >= 0 && sz < Z && sy >= 0 && sy < Y;
            int64_t o = ((j * d + z) * h + y) * w;
            for (int64_t ch = 0; ch < b->image.c; ch++) {
                float *dst = dk_tensor_at(&b->image, j, ch, z, y, 0);
                if (inside) copy_row_f32(dst, img + ch * Z * Y * X + row, st[2], w, X);
                else memset(dst, 0, (size_t)w * sizeof *dst);
            }
            if (!inside) {
                memset(b->label + o, 255, (size_t)w);
                memset(b->mask + o, 0, (size_t)w);
                continue;
            }
            copy_row_u8(b->label + o, lab ? lab + row : NULL, st[2], w, X, 255, 255);
            copy_row_u8(b->mask + o, msk ? msk + row : NULL, st[2], w, X, 0, 1);
        }
}

void dk_sampler_fill(dk_batch *b, const dk_sampler *s, dk_rng *rng) {
    const dk_tensor *t = &b->image;
    DK_ASSERT(t->c == s->channels && t->d == s->opts.patch[0] && t->h == s->opts.patch[1] &&
              t->w == s->opts.patch[2]);
    double want = (double)t->n * s->opts.fg_fraction, whole = floor(want);
    int64_t k_fg = (int64_t)whole + (dk_rng_uniform_double(rng) < want - whole);
    for (int64_t j = 0; j < t->n; j++) {
        int ci = (int)dk_rng_below(rng, (uint64_t)s->n_cases);
        b->case_index[j] = ci;
        b->is_fg[j] = pick_start(b->start[j], s, ci, j >= t->n - k_fg, rng);
        copy_patch(b, j, &s->cases[ci], b->start[j]);
    }
}

void dk_sampler_step(dk_batch *b, const dk_sampler *s, const dk_augment_opts *aug,
                     const dk_rng *base, int64_t epoch, int64_t step) {
    dk_rng e = dk_rng_split(base, (uint64_t)epoch);
    dk_rng r = dk_rng_split(&e, (uint64_t)step);
    dk_sampler_fill(b, s, &r);
    if (aug) dk_augment_batch(b, aug, &r);
}
