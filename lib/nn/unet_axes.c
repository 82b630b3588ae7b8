/*
 * Anisotropic U-Nets: the per-level pool strides and kernels of dk_unet_config read with
 * their defaults, checked, planned the way nnU-Net plans them, and spelled as text.
 *
 * The planner follows get_pool_and_conv_props of nnU-Net v1/v2 (nnunet/experiment_planning/
 * common_utils.py; nnunetv2/experiment_planning/experiment_planners/network_topology.py) with
 * min_feature_map_size 4, except that the level count is given (a patch that allows fewer
 * pools is refused, not given fewer levels), an axis is pooled only while its extent is even
 * (dakd does not pad the patch: the plan always divides it), and the bottleneck's kernel
 * follows the rule of every other level (nnU-Net gives it 3x3x3).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet_internal.h"

enum { MIN_EXTENT = 4 }; /* nnU-Net's min_feature_map_size: no pool below 4 voxels */

static const char axis_name[3] = {'d', 'h', 'w'};

int dk_unet_pool_at(const dk_unet_config *c, int l, int a) {
    DK_ASSERT(c && l >= 0 && l < DK_UNET_MAX_LEVELS && a >= 0 && a < 3);
    if (a == 0 && c->dims == 2) return 1;
    return c->pool[l][a] ? c->pool[l][a] : 2;
}

int dk_unet_kernel_at(const dk_unet_config *c, int l, int a) {
    DK_ASSERT(c && l >= 0 && l < DK_UNET_MAX_LEVELS && a >= 0 && a < 3);
    if (a == 0 && c->dims == 2) return 1;
    return c->kernel[l][a] ? c->kernel[l][a] : 3;
}

/* Both read levels past DK_UNET_MAX_LEVELS (a config dk_unet_create will refuse) as 2 and 3:
 * a config check can run before the network is built. */
void dk_unet_multiple(const dk_unet_config *c, int64_t mult[3]) {
    DK_ASSERT(c);
    for (int a = 0; a < 3; a++) {
        mult[a] = 1;
        for (int l = 0; l < c->levels - 1; l++)
            mult[a] *= l < DK_UNET_MAX_LEVELS     ? dk_unet_pool_at(c, l, a)
                       : a > 0 || c->dims != 2 ? 2
                                               : 1;
    }
}

int dk_unet_is_isotropic(const dk_unet_config *c) {
    DK_ASSERT(c);
    for (int a = c->dims == 2 ? 1 : 0; a < 3; a++)
        for (int l = 0; l < c->levels && l < DK_UNET_MAX_LEVELS; l++)
            if ((l < c->levels - 1 && dk_unet_pool_at(c, l, a) != 2) ||
                dk_unet_kernel_at(c, l, a) != 3)
                return 0;
    return 1;
}

/* One entry of pool or kernel: 0, or one of the two values allowed (1 or big), and 0 or 1
 * along d in 2-D; rows from `rows` on must be 0. */
static dk_status check_entry(const dk_unet_config *c, const char *what, int l, int a, int v,
                             int big, int rows) {
    if (l >= rows && v != 0)
        return dk_fail(DK_ERR_ARG, "unet config: %s[%d][%c] = %d past the %d %s (must be 0)",
                       what, l, axis_name[a], v, rows, big == 2 ? "pools" : "levels");
    if (v != 0 && v != 1 && v != big)
        return dk_fail(DK_ERR_ARG, "unet config: %s[%d][%c] = %d, must be 1 or %d (0 = %d)",
                       what, l, axis_name[a], v, big, big);
    if (c->dims == 2 && a == 0 && v > 1)
        return dk_fail(DK_ERR_ARG, "unet config: %s[%d][d] = %d in a 2-D network (must be 0 or "
                       "1)", what, l, v);
    return DK_OK;
}

dk_status unet_check_axes(const dk_unet_config *c) {
    for (int l = 0; l < DK_UNET_MAX_LEVELS; l++)
        for (int a = 0; a < 3; a++) {
            dk_status st = check_entry(c, "pool", l, a, c->pool[l][a], 2, c->levels - 1);
            if (st == DK_OK) st = check_entry(c, "kernel", l, a, c->kernel[l][a], 3, c->levels);
            if (st != DK_OK) return st;
        }
    return DK_OK;
}

/* ---------------------------------------------------------------- the nnU-Net plan */

/* The axes one more pool may halve (ok[a] = 1), their count; 0 when none may. */
static int pool_axes(int ok[3], const int64_t sz[3], const double sp[3], int a0) {
    double finest = INFINITY;
    for (int a = 0; a < 3; a++) {
        ok[a] = a >= a0 && sz[a] >= 2 * MIN_EXTENT && sz[a] % 2 == 0;
        if (ok[a] && sp[a] < finest) finest = sp[a];
    }
    int n = 0, last = 0;
    for (int a = 0; a < 3; a++) {
        ok[a] = ok[a] && sp[a] / finest < 2.0;
        if (ok[a]) n++, last = a;
    }
    /* nnU-Net: one axis alone is pooled only from 3 x the minimum on */
    if (n == 1 && sz[last] < 3 * MIN_EXTENT) ok[last] = 0, n = 0;
    return n;
}

/* Level kernel: 3 on the axes within 2x of the finest spacing, and on those that had 3 at an
 * earlier level (nnU-Net: "once they are 3 they remain 3"), 1 elsewhere. */
static void level_kernel(int k[3], int had3[3], const double sp[3], int a0) {
    double finest = INFINITY;
    for (int a = a0; a < 3; a++)
        if (sp[a] < finest) finest = sp[a];
    for (int a = 0; a < 3; a++) {
        if (a >= a0 && sp[a] / finest < 2.0) had3[a] = 1;
        k[a] = had3[a] ? 3 : 1;
    }
}

dk_status dk_unet_plan_anisotropic(dk_unet_config *c, const int64_t patch[3],
                                   const double spacing[3]) {
    DK_ASSERT(c && patch);
    if ((c->dims != 2 && c->dims != 3) || c->levels < 2 || c->levels > DK_UNET_MAX_LEVELS)
        return dk_fail(DK_ERR_ARG, "unet plan: dims = %d, levels = %d: must be 2 or 3, and "
                       "2..%d", c->dims, c->levels, DK_UNET_MAX_LEVELS);
    int a0 = c->dims == 2 ? 1 : 0, L = c->levels;
    int64_t sz[3];
    double sp[3], sp0[3];
    for (int a = 0; a < 3; a++) {
        sz[a] = a < a0 ? 1 : patch[a];
        sp0[a] = sp[a] = spacing && a >= a0 ? spacing[a] : 1.0;
        if (sz[a] < 1 || !(sp[a] > 0 && isfinite(sp[a])))
            return dk_fail(DK_ERR_ARG, "unet plan: patch %c = %lld, spacing %c = %g: must be "
                           ">= 1 and > 0", axis_name[a], (long long)sz[a], axis_name[a], sp[a]);
    }
    int pool[DK_UNET_MAX_LEVELS][3] = {{0}}, kern[DK_UNET_MAX_LEVELS][3] = {{0}}, had3[3] = {0};
    for (int l = 0; l < L; l++) {
        level_kernel(kern[l], had3, sp, a0);
        if (l == L - 1) break;
        int ok[3];
        if (pool_axes(ok, sz, sp, a0) == 0)
            return dk_fail(DK_ERR_ARG, "unet plan: the patch %lldx%lldx%lld (spacing %g x %g x "
                           "%g) allows %d pools (an axis is pooled while it is even, >= %d "
                           "voxels and within 2x of the finest spacing); levels = %d needs %d",
                           (long long)patch[0], (long long)patch[1], (long long)patch[2],
                           sp0[0], sp0[1], sp0[2], l, 2 * MIN_EXTENT, L, L - 1);
        for (int a = 0; a < 3; a++) {
            pool[l][a] = ok[a] ? 2 : 1;
            if (ok[a]) sz[a] /= 2, sp[a] *= 2;
        }
    }
    memcpy(c->pool, pool, sizeof pool);
    memcpy(c->kernel, kern, sizeof kern);
    return DK_OK;
}

/* ---------------------------------------------------------------- text */

dk_status dk_unet_axes_parse(int v[DK_UNET_MAX_LEVELS][3], int *count, const char *text) {
    DK_ASSERT(v && count && text);
    int out[DK_UNET_MAX_LEVELS][3] = {{0}}, n = 0;
    const char *p = text;
    for (;;) {
        if (n == DK_UNET_MAX_LEVELS) goto bad;
        for (int a = 0; a < 3; a++) {
            char *end;
            while (isspace((unsigned char)*p)) p++;
            long x = strtol(p, &end, 10);
            if (end == p || x < -1000 || x > 1000) goto bad;
            out[n][a] = (int)x;
            for (p = end; isspace((unsigned char)*p);) p++;
            if (a < 2 && *p++ != ',') goto bad;
        }
        n++;
        if (*p == '\0') break;
        if (*p++ != ';') goto bad;
    }
    memcpy(v, out, sizeof out);
    *count = n;
    return DK_OK;
bad:
    return dk_fail(DK_ERR_ARG, "'%s' is not 1 to %d triples d,h,w of integers separated by ';' "
                   "(e.g. '1,2,2; 2,2,2')", text, DK_UNET_MAX_LEVELS);
}

void dk_unet_axes_format(char *buf, size_t size, const int *v, int n) {
    DK_ASSERT(buf && size > 0);
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l < n && k < size; l++) {
        const int *t = v + 3 * l;
        int r = snprintf(buf + k, size - k, "%s%d,%d,%d", l ? ";" : "", t[0], t[1], t[2]);
        if (r < 0) break;
        k += (size_t)r;
    }
}
