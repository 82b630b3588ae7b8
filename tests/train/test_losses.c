/*
 * CUnit suite for the distillation losses (lib/train/loss_*.c): each loss's value against a
 * hand / numpy-computed number on tiny shapes (the numbers come from float64 numpy on the
 * same float32 inputs; KD was also checked against torch.nn.functional.kl_div with
 * log_target=True), the central finite-difference check (tests/nn/gradcheck.h) of every
 * backward, masks and ignore labels, multi-teacher averaging, the T^2 scaling of KD, the
 * MMD / CORAL sanity properties, the fixed-chunk determinism of the parallel losses (same
 * bits on repeated calls and for 1 and 2 threads), and the losses' own vectorised exp/log
 * against libm on wide logits.
 */
#include "dakd/nn.h"
#include "dakd/train.h"
#include "gradcheck.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_CLOSE(a, b, tol) CU_ASSERT_DOUBLE_EQUAL((a), (b), (tol))

static float *fbuf(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* ------------------------------------------------------------------ the gradcheck harness */

typedef enum {
    K_DICE, K_KD, K_KDC, K_KDB, K_KDBC, K_ENT, K_AT, K_HINT, K_GAP, K_SAMPLE, K_MMD, K_CORAL
} loss_kind;

/* One loss under test: variables x (and x2 / w / b), constants, workspace. */
typedef struct {
    loss_kind kind;
    int64_t n, c, s, m;
    float *x, *dx, *x2, *dx2, *w, *dw, *b, *db;
    const float *teach[2];
    float tw[2];
    int nteach, include_bg;
    dk_at_norm at_norm;
    float T;
    uint8_t *lab, *mask;
    dk_tensor fs, ft;
    int64_t *idx;
    float *work;
    double *dwork;
    double h;    /* MMD bandwidth (0: median) */
    double base; /* the loss at the unperturbed point (see lc_forward) */
    float out[8], dout[8];
} lcase;

/* The loss (grad = 0: forward only) with gradients scaled by `scale`; GAP and SAMPLE are
 * feature maps, not losses: they write out[] and use dout[] in backward. */
static double lc_eval(lcase *L, int grad, float scale) {
    float *dx = grad ? L->dx : NULL, *dx2 = grad ? L->dx2 : NULL;
    switch (L->kind) {
    case K_DICE:
        return dk_loss_dice(dx, L->x, L->lab, L->n, L->c, L->s, L->include_bg, 1e-5, scale);
    case K_KD:
        return dk_loss_kd(dx, L->x, L->teach, L->tw, L->nteach, L->mask, L->n, L->c, L->s, L->T,
                          scale);
    case K_KDC:
        return dk_loss_kd_confidence(dx, L->x, L->teach, L->tw, L->nteach, L->mask, L->n, L->c,
                                     L->s, L->T, scale);
    case K_KDB:
    case K_KDBC:
        return dk_loss_kd_balanced(dx, L->x, L->teach, L->tw, L->nteach, L->kind == K_KDBC,
                                   L->mask, L->n, L->c, L->s, L->T, scale);
    case K_ENT: return dk_loss_entropy(dx, L->x, L->mask, L->n, L->c, L->s, scale);
    case K_AT: return dk_loss_at(dx, &L->fs, &L->ft, L->mask, L->at_norm, scale, L->work);
    case K_HINT:
        return dk_loss_hint(dx, grad ? L->dw : NULL, grad && L->b ? L->db : NULL, &L->fs, &L->ft,
                            L->mask, L->w, L->b, scale, L->work);
    case K_GAP:
        if (grad) dk_feat_gap_backward(dx, L->dout, &L->fs);
        else dk_feat_gap_forward(L->out, &L->fs);
        return 0;
    case K_SAMPLE:
        if (grad) dk_feat_sample_backward(dx, L->dout, &L->fs, L->idx, L->m);
        else dk_feat_sample_forward(L->out, &L->fs, L->idx, L->m);
        return 0;
    case K_MMD: return dk_loss_mmd(dx, dx2, L->x, L->x2, L->n, L->m, L->c, L->h, scale,
                                   L->dwork);
    case K_CORAL: return dk_loss_coral(dx, dx2, L->x, L->x2, L->n, L->m, L->c, scale, L->dwork);
    }
    return 0;
}

static int is_map(const lcase *L) { return L->kind == K_GAP || L->kind == K_SAMPLE; }

/* out[0] = L - L(x0) in float: the constant offset leaves the gradient alone and keeps the
 * float rounding of an O(1) loss out of the central differences. */
static void lc_forward(void *ctx) {
    lcase *L = ctx;
    double v = lc_eval(L, 0, 1.0f);
    if (!is_map(L)) L->out[0] = (float)(v - L->base);
}

static void lc_backward(void *ctx) {
    lcase *L = ctx;
    lc_eval(L, 1, L->dout[0]);
}

static int lc_check(lcase *L, const char *label, dk_gc_var *vars, int nvars, int64_t nout) {
    L->base = 0;
    if (!is_map(L)) L->base = lc_eval(L, 0, 1.0f);
    dk_gradcheck g = {.label = label, .forward = lc_forward, .backward = lc_backward, .ctx = L,
                      .out = L->out, .dout = L->dout, .nout = nout, .vars = vars,
                      .nvars = nvars, .eps = 1e-3, .rtol = 1e-3, .atol = 1e-6};
    return dk_gradcheck_run(&g);
}

/* ------------------------------------------------------------------ shared fixtures */

/* (n=2, c=3, s=2) logits and labels with one ignored voxel. */
static const float DICE_X[12] = {1.0f, 0.2f, 0.1f, 1.5f, -0.3f, 0.0f,
                                 -0.5f, 0.3f, 0.4f, -0.2f, 2.0f, 0.6f};
static const uint8_t DICE_LAB[4] = {0, 1, 2, 255};

/* (n=1, c=3, s=2) student and two teachers. */
static const float KD_S[6] = {0.5f, -1.0f, 0.0f, 0.3f, -0.7f, 1.2f};
static const float KD_T1[6] = {1.5f, 0.2f, -0.4f, 0.1f, 0.3f, -0.8f};
static const float KD_T2[6] = {-0.2f, 0.9f, 0.8f, -0.5f, 0.1f, 0.4f};

/* AT: student (n=2, c=2, 1x2x2), teacher (2, 1, 1x2x2). */
static const float AT_FS[16] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 1.0f, -1.5f, 2.0f,
                                0.3f, -0.4f, 1.1f, 0.2f, 0.7f, 0.9f, -0.6f, 1.3f};
static const float AT_FT[8] = {2.0f, 1.0f, 1.0f, 0.5f, 0.1f, 0.8f, -1.2f, 0.4f};

/* Alignment rows: xs (3, 2), xt (4, 2). */
static const float AL_XS[6] = {1.0f, 0.5f, -0.5f, 2.0f, 0.3f, -1.0f};
static const float AL_XT[8] = {0.2f, 0.1f, 1.5f, -0.3f, -0.8f, 0.9f, 0.4f, 0.4f};

static lcase logits_case(loss_kind kind, const float *x, int64_t n, int64_t c, int64_t s) {
    lcase L = {.kind = kind, .n = n, .c = c, .s = s};
    L.x = fbuf(n * c * s);
    L.dx = fbuf(n * c * s);
    memcpy(L.x, x, (size_t)(n * c * s) * sizeof(float));
    return L;
}

static void lc_free(lcase *L) {
    free(L->x), free(L->dx), free(L->x2), free(L->dx2);
    free(L->w), free(L->dw), free(L->b), free(L->db);
    free(L->work), free(L->dwork), free(L->idx);
}

/* ------------------------------------------------------------------ masks, Dice */

static void test_labels_mask(void) {
    uint8_t lab[5] = {0, 1, 2, 255, 1}, mask[5] = {1, 0, 3, 0, 1};
    dk_labels_apply_mask(lab, mask, 5);
    const uint8_t want[5] = {0, 255, 2, 255, 1};
    CU_ASSERT_EQUAL(memcmp(lab, want, 5), 0);
    dk_labels_apply_mask(lab, NULL, 5); /* no-op */
    CU_ASSERT_EQUAL(memcmp(lab, want, 5), 0);
}

static void test_dice_value(void) {
    uint8_t lab[4];
    memcpy(lab, DICE_LAB, 4);
    /* numpy: batch Dice over the 3 counted voxels, smooth 1e-5 */
    CHECK_CLOSE(dk_loss_dice(NULL, DICE_X, lab, 2, 3, 2, 1, 1e-5, 1.0f), 0.3204839003724299,
                1e-6);
    CHECK_CLOSE(dk_loss_dice(NULL, DICE_X, lab, 2, 3, 2, 0, 1e-5, 1.0f), 0.3040998568726181,
                1e-6);
    /* a perfect one-hot prediction scores 0 (up to the exp(-40) tails and smooth) */
    float x[4] = {20.0f, -20.0f, -20.0f, 20.0f};
    uint8_t y[2] = {0, 1};
    CHECK_CLOSE(dk_loss_dice(NULL, x, y, 1, 2, 2, 1, 1e-5, 1.0f), 0.0, 1e-6);
    /* everything ignored: 0 and no gradient */
    uint8_t ign[2] = {255, 255};
    float dx[4] = {0};
    CU_ASSERT_EQUAL(dk_loss_dice(dx, x, ign, 1, 2, 2, 1, 1e-5, 1.0f), 0.0);
    CU_ASSERT(dx[0] == 0 && dx[1] == 0 && dx[2] == 0 && dx[3] == 0);
}

static void test_dice_grad(void) {
    for (int bg = 0; bg <= 1; bg++) {
        lcase L = logits_case(K_DICE, DICE_X, 2, 3, 2);
        uint8_t lab[4];
        memcpy(lab, DICE_LAB, 4);
        L.lab = lab;
        L.include_bg = bg;
        dk_gc_var v = {"logits", L.x, L.dx, 12};
        CU_ASSERT_EQUAL(lc_check(&L, bg ? "dice+bg" : "dice", &v, 1, 1), 0);
        /* the ignored voxel (sample 1, voxel 1) gets no gradient */
        CU_ASSERT(L.dx[7] == 0 && L.dx[9] == 0 && L.dx[11] == 0);
        lc_free(&L);
    }
    /* a larger random case in 3 chunks' worth of voxels, 4 classes */
    lcase L = {.kind = K_DICE, .n = 2, .c = 4, .s = 40};
    L.x = fbuf(320), L.dx = fbuf(320);
    dk_gc_fill(L.x, 320, -2, 2, 7);
    uint8_t lab[80];
    for (int i = 0; i < 80; i++) lab[i] = (uint8_t)(i % 7 == 3 ? 255 : (i * 5) % 4);
    L.lab = lab;
    dk_gc_var v = {"logits", L.x, L.dx, 320};
    CU_ASSERT_EQUAL(lc_check(&L, "dice 2x4x40", &v, 1, 1), 0);
    lc_free(&L);
}

/* ------------------------------------------------------------------ KD */

static void test_kd_value(void) {
    const float *t1[1] = {KD_T1}, *t12[2] = {KD_T1, KD_T2};
    const float w13[2] = {1.0f, 3.0f};
    const uint8_t m10[2] = {1, 0};
    /* numpy; torch kl_div(log_softmax(s/2), log_softmax(t/2), log_target=True, 'sum') * 4 / 2
     * gives the same 0.48799116536472 */
    CHECK_CLOSE(dk_loss_kd(NULL, KD_S, t1, NULL, 1, NULL, 1, 3, 2, 2.0f, 1.0f),
                0.4879911653647275, 1e-6);
    /* q = (1/4) softmax(t1/2) + (3/4) softmax(t2/2), voxel 0 only */
    CHECK_CLOSE(dk_loss_kd(NULL, KD_S, t12, w13, 2, m10, 1, 3, 2, 2.0f, 1.0f),
                0.09549032864668852, 1e-6);
    CHECK_CLOSE(dk_loss_kd(NULL, KD_S, t12, NULL, 2, NULL, 1, 3, 2, 1.0f, 1.0f),
                0.3556063933876769, 1e-6);
    /* weights are normalised: (2, 6) is (1, 3) */
    const float w26[2] = {2.0f, 6.0f};
    CHECK_CLOSE(dk_loss_kd(NULL, KD_S, t12, w26, 2, m10, 1, 3, 2, 2.0f, 1.0f),
                0.09549032864668852, 1e-6);
    /* a teacher equal to the student: 0 loss, 0 gradient; two equal teachers = one */
    const float *self[2] = {KD_S, KD_S};
    float dx[6] = {0};
    CHECK_CLOSE(dk_loss_kd(dx, KD_S, self, NULL, 2, NULL, 1, 3, 2, 3.0f, 1.0f), 0.0, 1e-12);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(dx[i], 0.0, 1e-7);
    const float *t11[2] = {KD_T1, KD_T1};
    CHECK_CLOSE(dk_loss_kd(NULL, KD_S, t11, w13, 2, NULL, 1, 3, 2, 2.0f, 1.0f),
                0.4879911653647275, 1e-6);
    /* all masked: 0 */
    const uint8_t m00[2] = {0, 0};
    CU_ASSERT_EQUAL(dk_loss_kd(NULL, KD_S, t1, NULL, 1, m00, 1, 3, 2, 2.0f, 1.0f), 0.0);
}

/* Central differences of a KD loss: one teacher at T = 4, then two teachers at weights
 * (1, 3), T = 2, with the second voxel masked out (it gets no gradient). */
static void kd_gradchecks(loss_kind kind, const char *name) {
    uint8_t m10[2] = {1, 0};
    for (int multi = 0; multi <= 1; multi++) {
        lcase L = logits_case(kind, KD_S, 1, 3, 2);
        L.teach[0] = KD_T1, L.teach[1] = KD_T2;
        L.tw[0] = 1.0f, L.tw[1] = 3.0f;
        L.nteach = multi ? 2 : 1;
        L.mask = multi ? m10 : NULL;
        L.T = multi ? 2.0f : 4.0f;
        dk_gc_var v = {"student", L.x, L.dx, 6};
        char label[96];
        snprintf(label, sizeof label, "%s %s", name, multi ? "2 teachers masked" : "T=4");
        CU_ASSERT_EQUAL(lc_check(&L, label, &v, 1, 1), 0);
        if (multi) CU_ASSERT(L.dx[1] == 0 && L.dx[3] == 0 && L.dx[5] == 0);
        lc_free(&L);
    }
}

static void test_kd_grad(void) { kd_gradchecks(K_KD, "kd"); }

/* Per-voxel confidence weights on 3 voxels of 2 classes, teachers A and B at a = (1, 0.5),
 * T = 2, checked by hand (each step in double, the entropies in nats):
 *   voxel  A        B        H_A     H_B     w_A       w_B       q_0       T^2 KL
 *   0      (2, 0)   (0, 0)   0.3653  0.6931  0.989753  0.010247  0.728691  0.434362
 *   1      (0, 0)   (0, 3)   0.6931  0.1909  0.026503  0.973497  0.190842  1.163149
 *   2      (0, 0)   (4, 0)   0.6931  0.0901  0.022222  0.977778  0.872335  0.623944
 * with w_t = a_t (1 - H_t / ln 2 + 0.01) normalised, q = w_A softmax(A / 2) + w_B softmax(B
 * / 2), the student (0, 0), (0.5, 0), (0, -1); L = the mean 0.740485. Fixed weights (2/3,
 * 1/3) give 0.140158: the uniform teacher's vote is what the confidence weights remove. */
static void test_kd_confidence(void) {
    static const float zs[6] = {0, 0.5f, 0, 0, 0, -1}; /* (c = 2, s = 3): class 0, class 1 */
    static const float ta[6] = {2, 0, 0, 0, 0, 0}, tb[6] = {0, 0, 4, 0, 3, 0};
    const float *t[2] = {ta, tb}, a[2] = {1.0f, 0.5f};
    CHECK_CLOSE(dk_loss_kd_confidence(NULL, zs, t, a, 2, NULL, 1, 2, 3, 2.0f, 1.0f),
                0.7404848784874455, 1e-6);
    CHECK_CLOSE(dk_loss_kd(NULL, zs, t, a, 2, NULL, 1, 2, 3, 2.0f, 1.0f), 0.1401581527599817,
                1e-6);
    /* voxel 1 alone (the mask): 1.163149 */
    const uint8_t m010[3] = {0, 1, 0};
    CHECK_CLOSE(dk_loss_kd_confidence(NULL, zs, t, a, 2, m010, 1, 2, 3, 2.0f, 1.0f),
                1.1631486755712963, 1e-6);
    /* one teacher: plain KD */
    CHECK_CLOSE(dk_loss_kd_confidence(NULL, zs, t, a, 1, NULL, 1, 2, 3, 2.0f, 1.0f),
                dk_loss_kd(NULL, zs, t, a, 1, NULL, 1, 2, 3, 2.0f, 1.0f), 1e-12);
    /* the gradient: the weights depend on the teachers only */
    uint8_t m10[2] = {1, 0};
    lcase L = logits_case(K_KDC, KD_S, 1, 3, 2);
    L.teach[0] = KD_T1, L.teach[1] = KD_T2;
    L.tw[0] = 1.0f, L.tw[1] = 3.0f;
    L.nteach = 2, L.mask = m10, L.T = 2.0f;
    dk_gc_var v = {"student", L.x, L.dx, 6};
    CU_ASSERT_EQUAL(lc_check(&L, "kd confidence 2 teachers masked", &v, 1, 1), 0);
    lc_free(&L);
}

/* Class-balanced KD on 5 voxels of 2 classes (one teacher predicts class 0 at voxels 0-2
 * and 4, class 1 at voxel 3; voxel 4 masked out): the loss is half the mean of the class-0
 * voxels' terms plus half the class-1 voxel's, each term being what dk_loss_kd gives for
 * that voxel alone (its mask); equal class counts give the plain loss, one class the plain
 * loss; the gradient by central differences (one and two teachers, confidence weights). */
static void test_kd_balanced(void) {
    static const float zs[10] = {0.2f, -0.1f, 0.4f, 0.3f, 0.0f, -0.3f, 0.5f, 0.1f, -0.2f, 0.3f};
    static const float zt[10] = {3.0f, 2.5f, 4.0f, -1.0f, 2.0f, -2.0f, -1.5f, -3.0f, 2.0f, 0.0f};
    const float *t[1] = {zt};
    const uint8_t m[5] = {1, 1, 1, 1, 0};
    double kl[5];
    for (int v = 0; v < 5; v++) {
        uint8_t one[5] = {0};
        one[v] = 1;
        kl[v] = dk_loss_kd(NULL, zs, t, NULL, 1, one, 1, 2, 5, 3.0f, 1.0f);
    }
    double want = 0.5 * (kl[0] + kl[1] + kl[2]) / 3 + 0.5 * kl[3];
    CHECK_CLOSE(dk_loss_kd_balanced(NULL, zs, t, NULL, 1, 0, m, 1, 2, 5, 3.0f, 1.0f), want, 1e-9);
    CU_ASSERT(fabs(want - dk_loss_kd(NULL, zs, t, NULL, 1, m, 1, 2, 5, 3.0f, 1.0f)) > 1e-3);
    /* the gradient: class 1's voxel weighs 4 / (2 * 1) = 2, class 0's 4 / (2 * 3) each */
    float gb[10] = {0}, gp[10] = {0};
    dk_loss_kd_balanced(gb, zs, t, NULL, 1, 0, m, 1, 2, 5, 3.0f, 1.0f);
    dk_loss_kd(gp, zs, t, NULL, 1, m, 1, 2, 5, 3.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        for (int v = 0; v < 3; v++) CHECK_CLOSE(gb[k * 5 + v], gp[k * 5 + v] * 4.0 / 6.0, 1e-7);
        CHECK_CLOSE(gb[k * 5 + 3], gp[k * 5 + 3] * 2.0, 1e-7);
        CU_ASSERT_EQUAL(gb[k * 5 + 4], 0.0f);
    }
    /* two voxels of each class: the plain loss */
    const uint8_t m2[5] = {1, 1, 0, 1, 1};
    static const float zt2[10] = {3, 2.5f, 4, -1, -2, -2, -1.5f, -3, 2, 0.5f};
    const float *t2[1] = {zt2};
    CHECK_CLOSE(dk_loss_kd_balanced(NULL, zs, t2, NULL, 1, 0, m2, 1, 2, 5, 3.0f, 1.0f),
                dk_loss_kd(NULL, zs, t2, NULL, 1, m2, 1, 2, 5, 3.0f, 1.0f), 1e-12);
    /* one class predicted everywhere: the plain loss */
    const uint8_t m012[5] = {1, 1, 1, 0, 0};
    CHECK_CLOSE(dk_loss_kd_balanced(NULL, zs, t, NULL, 1, 0, m012, 1, 2, 5, 3.0f, 1.0f),
                dk_loss_kd(NULL, zs, t, NULL, 1, m012, 1, 2, 5, 3.0f, 1.0f), 1e-12);
    kd_gradchecks(K_KDB, "kd balanced");
    kd_gradchecks(K_KDBC, "kd balanced confidence");
}

/* With the T^2 factor the gradient T (p - q) / V tends to ((z_s - mean z_s) - (z_t - mean
 * z_t)) / (c V) as T grows: its size does not depend on T to first order. */
static void test_kd_t2_scaling(void) {
    const int64_t n = 1, c = 4, s = 16, nv = n * s;
    float zs[64], zt[64], lim[64], g[3][64];
    dk_gc_fill(zs, 64, -1, 1, 11);
    dk_gc_fill(zt, 64, -1, 1, 12);
    for (int64_t v = 0; v < s; v++) {
        double ms = 0, mt = 0;
        for (int64_t k = 0; k < c; k++) ms += zs[k * s + v], mt += zt[k * s + v];
        for (int64_t k = 0; k < c; k++)
            lim[k * s + v] = (float)(((zs[k * s + v] - ms / c) - (zt[k * s + v] - mt / c)) /
                                     (double)(c * nv));
    }
    const float T[3] = {4.0f, 16.0f, 64.0f};
    const float *t[1] = {zt};
    double norm[3], dist[3], nlim = 0;
    for (int64_t i = 0; i < 64; i++) nlim += (double)lim[i] * lim[i];
    nlim = sqrt(nlim);
    for (int j = 0; j < 3; j++) {
        memset(g[j], 0, sizeof g[j]);
        dk_loss_kd(g[j], zs, t, NULL, 1, NULL, n, c, s, T[j], 1.0f);
        norm[j] = dist[j] = 0;
        for (int64_t i = 0; i < 64; i++) {
            norm[j] += (double)g[j][i] * g[j][i];
            dist[j] += ((double)g[j][i] - lim[i]) * ((double)g[j][i] - lim[i]);
        }
        norm[j] = sqrt(norm[j]), dist[j] = sqrt(dist[j]) / nlim;
        printf("\n      T=%g |grad| %.6g, |grad - limit| / |limit| %.3g", T[j], norm[j], dist[j]);
    }
    /* the size changes little with T (without T^2 it would fall by 16x then 4x) ... */
    CU_ASSERT(fabs(norm[1] / norm[0] - 1.0) < 0.1);
    CU_ASSERT(fabs(norm[2] / norm[1] - 1.0) < 0.02);
    /* ... and converges to the limit like 1/T */
    CU_ASSERT(dist[2] < 0.02);
    CU_ASSERT(dist[2] < dist[1] && dist[1] < dist[0]);
    /* the loss itself also tends to a T-independent value: |z_s - z_t|^2-like / (2c) */
    double l16 = dk_loss_kd(NULL, zs, t, NULL, 1, NULL, n, c, s, 16.0f, 1.0f);
    double l64 = dk_loss_kd(NULL, zs, t, NULL, 1, NULL, n, c, s, 64.0f, 1.0f);
    CU_ASSERT(fabs(l64 / l16 - 1.0) < 0.05);
}

/* The voxel losses cut their voxels into fixed chunks summed in index order: the loss and
 * the gradients are bit-identical for 1 and 2 threads, on a size that takes the threaded path. */
static void test_thread_invariance(void) {
    const int64_t n = 2, c = 4, s = 8192, ne = n * c * s;
    float *x = fbuf(ne), *t = fbuf(ne), *g1 = fbuf(ne), *g2 = fbuf(ne);
    uint8_t *lab = malloc((size_t)(n * s)), *mask = malloc((size_t)(n * s));
    dk_gc_fill(x, ne, -3, 3, 61), dk_gc_fill(t, ne, -3, 3, 62);
    for (int64_t v = 0; v < n * s; v++) {
        lab[v] = (uint8_t)(v % 13 == 0 ? 255 : (v * 7 / 5) % c);
        mask[v] = (uint8_t)(v % 11 != 0);
    }
    const float *tt[1] = {t};
    int prev = dk_get_threads();
    for (int which = 0; which < 3; which++) {
        double L[2];
        for (int k = 0; k < 2; k++) {
            float *g = k ? g2 : g1;
            memset(g, 0, (size_t)ne * sizeof(float));
            dk_set_threads(k + 1);
            L[k] = which == 0   ? dk_loss_dice(g, x, lab, n, c, s, 0, 1e-5, 1.0f)
                   : which == 1 ? dk_loss_kd(g, x, tt, NULL, 1, mask, n, c, s, 3.0f, 1.0f)
                                : dk_loss_entropy(g, x, mask, n, c, s, 1.0f);
        }
        CU_ASSERT_EQUAL(memcmp(&L[0], &L[1], sizeof L[0]), 0);
        CU_ASSERT_EQUAL(memcmp(g1, g2, (size_t)ne * sizeof(float)), 0);
        CU_ASSERT(L[0] > 0);
    }
    dk_set_threads(prev);
    free(x), free(t), free(g1), free(g2), free(lab), free(mask);
}

/* One call of loss `which` (0 CE, 1 Dice, 2 KD, 3 KD two weighted teachers + mask, 4 entropy,
 * 5 AT) on the fixed inputs, gradient into g (zeroed first). */
typedef struct {
    int64_t n, c, s;
    float *x, *t1, *t2, *fs, *ft, *work;
    uint8_t *lab, *mask;
} par_case;

static double par_call(const par_case *P, int which, float *g, int64_t ne) {
    const float *t1[1] = {P->t1}, *t12[2] = {P->t1, P->t2};
    const float w[2] = {1.0f, 3.0f};
    memset(g, 0, (size_t)ne * sizeof(float));
    switch (which) {
    case 0: return dk_loss_ce(g, P->x, P->lab, P->n, P->c, P->s, 0.5f);
    case 1: return dk_loss_dice(g, P->x, P->lab, P->n, P->c, P->s, 0, 1e-5, 0.5f);
    case 2: return dk_loss_kd(g, P->x, t1, NULL, 1, NULL, P->n, P->c, P->s, 4.0f, 0.5f);
    case 3: return dk_loss_kd(g, P->x, t12, w, 2, P->mask, P->n, P->c, P->s, 2.0f, 0.5f);
    case 4: return dk_loss_entropy(g, P->x, P->mask, P->n, P->c, P->s, 0.5f);
    default: {
        dk_tensor a = dk_tensor_view(P->fs, 4, 4, 1, 64, 64);
        dk_tensor b = dk_tensor_view(P->ft, 4, 8, 1, 64, 64);
        return dk_loss_at(g, &a, &b, NULL, DK_AT_L2, 0.5f, P->work);
    }
    }
}

/* Every parallelised loss: repeated calls give the same bits (loss and gradient), and 1 and
 * 2 threads the same value (asked to 1e-6 relative; the fixed chunks make it bit-identical). */
static void test_parallel_repeat(void) {
    par_case P = {.n = 2, .c = 4, .s = 8192};
    const int64_t ne = P.n * P.c * P.s, nf = 4 * 8 * 4096;
    P.x = fbuf(ne), P.t1 = fbuf(ne), P.t2 = fbuf(ne), P.fs = fbuf(nf), P.ft = fbuf(2 * nf);
    dk_tensor a = dk_tensor_view(P.fs, 4, 4, 1, 64, 64);
    P.work = fbuf((int64_t)dk_loss_at_work_floats(&a));
    P.lab = malloc((size_t)(P.n * P.s)), P.mask = malloc((size_t)(P.n * P.s));
    dk_gc_fill(P.x, ne, -6, 6, 71), dk_gc_fill(P.t1, ne, -6, 6, 72);
    dk_gc_fill(P.t2, ne, -6, 6, 73), dk_gc_fill(P.fs, nf, -2, 2, 74);
    dk_gc_fill(P.ft, 2 * nf, -2, 2, 75);
    for (int64_t v = 0; v < P.n * P.s; v++) {
        P.lab[v] = (uint8_t)(v % 17 == 0 ? 255 : (v * 5 / 3) % P.c);
        P.mask[v] = (uint8_t)(v % 7 != 0);
    }
    const int64_t gn = nf > ne ? nf : ne;
    float *g[3] = {fbuf(gn), fbuf(gn), fbuf(gn)};
    int prev = dk_get_threads();
    for (int which = 0; which < 6; which++) {
        const int64_t m = which == 5 ? nf : ne;
        double L[3];
        dk_set_threads(2);
        L[0] = par_call(&P, which, g[0], m);
        L[1] = par_call(&P, which, g[1], m);
        dk_set_threads(1);
        L[2] = par_call(&P, which, g[2], m);
        CU_ASSERT(isfinite(L[0]) && L[0] > 0);
        CU_ASSERT_EQUAL(memcmp(&L[0], &L[1], sizeof L[0]), 0);
        CU_ASSERT_EQUAL(memcmp(g[0], g[1], (size_t)m * sizeof(float)), 0);
        CU_ASSERT(fabs(L[2] - L[0]) <= 1e-6 * fabs(L[0]));
        CU_ASSERT_EQUAL(memcmp(g[0], g[2], (size_t)m * sizeof(float)), 0);
    }
    dk_set_threads(prev);
    free(P.x), free(P.t1), free(P.t2), free(P.fs), free(P.ft), free(P.work);
    free(P.lab), free(P.mask), free(g[0]), free(g[1]), free(g[2]);
}

/* log softmax of the c values at x (stride s) over temperature T, in double with libm. */
static void ref_log_softmax(double *lp, const float *x, int64_t c, int64_t s, double T) {
    double m = -HUGE_VAL, sum = 0;
    for (int64_t k = 0; k < c; k++) m = fmax(m, (double)x[k * s] / T);
    for (int64_t k = 0; k < c; k++) sum += exp((double)x[k * s] / T - m);
    for (int64_t k = 0; k < c; k++) lp[k] = (double)x[k * s] / T - m - log(sum);
}

/* The losses evaluate exp and log with their own vectorised polynomials: on wide logits
 * ([-40, 40], so some softmax terms underflow to e^-80 and below) CE, KD (one and two
 * teachers) and entropy match a plain libm evaluation to 1e-12 relative; NaN propagates. */
static void test_against_libm(void) {
    const int64_t n = 2, c = 5, s = 300, ne = n * c * s;
    float *x = fbuf(ne), *t1 = fbuf(ne), *t2 = fbuf(ne);
    uint8_t lab[600];
    dk_gc_fill(x, ne, -40, 40, 81), dk_gc_fill(t1, ne, -40, 40, 82);
    dk_gc_fill(t2, ne, -40, 40, 83);
    for (int64_t v = 0; v < n * s; v++) lab[v] = (uint8_t)(v * 3 % c);
    double ce = 0, kd1 = 0, kd2 = 0, ent = 0;
    const double T = 3.0;
    for (int64_t v = 0; v < n * s; v++) {
        int64_t o = (v / s) * c * s + v % s;
        double lp[5], lq1[5], lq2[5], l1[5];
        ref_log_softmax(l1, x + o, c, s, 1.0);
        ref_log_softmax(lp, x + o, c, s, T);
        ref_log_softmax(lq1, t1 + o, c, s, T);
        ref_log_softmax(lq2, t2 + o, c, s, T);
        ce -= l1[lab[v]];
        for (int k = 0; k < c; k++) {
            double q1 = exp(lq1[k]), q = 0.25 * q1 + 0.75 * exp(lq2[k]);
            kd1 += q1 * (lq1[k] - lp[k]);
            if (q > 0) kd2 += q * (log(q) - lp[k]);
            ent -= exp(l1[k]) * l1[k];
        }
    }
    const float *tt1[1] = {t1}, *tt2[2] = {t1, t2};
    const float w[2] = {1.0f, 3.0f};
    double V = (double)(n * s);
    double got[4] = {dk_loss_ce(NULL, x, lab, n, c, s, 1.0f),
                     dk_loss_kd(NULL, x, tt1, NULL, 1, NULL, n, c, s, (float)T, 1.0f),
                     dk_loss_kd(NULL, x, tt2, w, 2, NULL, n, c, s, (float)T, 1.0f),
                     dk_loss_entropy(NULL, x, NULL, n, c, s, 1.0f)};
    double want[4] = {ce / V, T * T * kd1 / V, T * T * kd2 / V, ent / V};
    for (int i = 0; i < 4; i++) {
        printf("\n      loss %d: %.17g, libm %.17g", i, got[i], want[i]);
        CU_ASSERT(fabs(got[i] - want[i]) <= 1e-12 * fabs(want[i]));
    }
    /* a NaN logit (not the labelled class, not the maximum) still gives a NaN loss */
    x[3 * s + 7] = NAN;
    CU_ASSERT(isnan(dk_loss_ce(NULL, x, lab, n, c, s, 1.0f)));
    CU_ASSERT(isnan(dk_loss_kd(NULL, x, tt1, NULL, 1, NULL, n, c, s, (float)T, 1.0f)));
    CU_ASSERT(isnan(dk_loss_kd(NULL, x, tt2, w, 2, NULL, n, c, s, (float)T, 1.0f)));
    CU_ASSERT(isnan(dk_loss_entropy(NULL, x, NULL, n, c, s, 1.0f)));
    CU_ASSERT(isnan(dk_loss_dice(NULL, x, lab, n, c, s, 0, 1e-5, 1.0f)));
    free(x), free(t1), free(t2);
}

/* ------------------------------------------------------------------ entropy */

static void test_entropy(void) {
    /* numpy: mean over both voxels, and voxel 1 alone */
    CHECK_CLOSE(dk_loss_entropy(NULL, KD_S, NULL, 1, 3, 2, 1.0f), 0.9065579724769071, 1e-6);
    const uint8_t m01[2] = {0, 1};
    CHECK_CLOSE(dk_loss_entropy(NULL, KD_S, m01, 1, 3, 2, 1.0f), 0.8187799209291313, 1e-6);
    /* uniform logits: log c, and a zero gradient (the maximum) */
    float u[8] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f, 0.3f, 0.3f, 0.3f}, du[8] = {0};
    CHECK_CLOSE(dk_loss_entropy(du, u, NULL, 2, 4, 1, 1.0f), log(4.0), 1e-9);
    for (int i = 0; i < 8; i++) CHECK_CLOSE(du[i], 0.0, 1e-8);
    for (int masked = 0; masked <= 1; masked++) {
        lcase L = {.kind = K_ENT, .n = 2, .c = 3, .s = 5};
        L.x = fbuf(30), L.dx = fbuf(30);
        dk_gc_fill(L.x, 30, -2, 2, 21);
        uint8_t mask[10] = {1, 1, 0, 1, 0, 1, 1, 1, 0, 1};
        L.mask = masked ? mask : NULL;
        dk_gc_var v = {"logits", L.x, L.dx, 30};
        CU_ASSERT_EQUAL(lc_check(&L, masked ? "entropy masked" : "entropy", &v, 1, 1), 0);
        if (masked) /* masked voxels (0, 2) and (1, 3): offsets i*15 + k*5 + j */
            CU_ASSERT(L.dx[2] == 0 && L.dx[7] == 0 && L.dx[12] == 0 && L.dx[18] == 0 &&
                      L.dx[23] == 0 && L.dx[28] == 0);
        lc_free(&L);
    }
}

/* ------------------------------------------------------------------ attention transfer */

static lcase at_case(int pooled) {
    lcase L = {.kind = K_AT};
    float *fs = fbuf(16), *ft = fbuf(32);
    memcpy(fs, AT_FS, sizeof AT_FS);
    L.x = fs, L.dx = fbuf(16);
    L.fs = dk_tensor_view(fs, 2, 2, 1, 2, 2);
    if (pooled) { /* (2, 1, 1x4x4): 0.1 i - 1 */
        for (int i = 0; i < 32; i++) ft[i] = (float)(0.1 * i - 1.0);
        L.ft = dk_tensor_view(ft, 2, 1, 1, 4, 4);
    } else {
        memcpy(ft, AT_FT, sizeof AT_FT);
        L.ft = dk_tensor_view(ft, 2, 1, 1, 2, 2);
    }
    L.x2 = ft; /* freed with the case */
    L.work = fbuf((int64_t)dk_loss_at_work_floats(&L.fs));
    return L;
}

static void test_at(void) {
    for (int pooled = 0; pooled <= 1; pooled++) {
        lcase L = at_case(pooled);
        /* numpy: A = sum_c F^2, a = A / |A| per sample, mean over samples of |a_s - a_t|^2;
         * pooled: the teacher map averaged over 2x2 blocks first */
        CHECK_CLOSE(dk_loss_at(NULL, &L.fs, &L.ft, NULL, DK_AT_L2, 1.0f, L.work),
                    pooled ? 0.4573246135619775 : 0.8337578746725915, 1e-6);
        dk_gc_var v = {"fs", L.x, L.dx, 16};
        CU_ASSERT_EQUAL(lc_check(&L, pooled ? "at pooled" : "at", &v, 1, 1), 0);
        lc_free(&L);
    }
    /* a student map proportional to the teacher's: 0 (the normalisation removes the scale) */
    float a[4] = {1.0f, 2.0f, 3.0f, 0.5f}, b[8] = {2.0f, 4.0f, 6.0f, 1.0f}, w[8];
    dk_tensor ta = dk_tensor_view(a, 1, 1, 1, 2, 2), tb = dk_tensor_view(b, 1, 2, 1, 2, 2);
    for (int i = 0; i < 4; i++) b[4 + i] = 0;
    CHECK_CLOSE(dk_loss_at(NULL, &ta, &tb, NULL, DK_AT_L2, 1.0f, w), 0.0, 1e-12);
}

/* A field-of-view mask at the student's grid: the loss equals the unmasked loss of features
 * zeroed outside the mask; features (student or teacher) outside change neither the loss nor
 * the gradient, and get no gradient; the gradient checks with the mask. */
static void test_at_masked(void) {
    static const uint8_t mask[8] = {1, 0, 1, 1, 0, 1, 1, 0}; /* (n 2, s 4) */
    for (int pooled = 0; pooled <= 1; pooled++) {
        lcase L = at_case(pooled);
        L.mask = (uint8_t *)mask;
        double masked = dk_loss_at(NULL, &L.fs, &L.ft, mask, DK_AT_L2, 1.0f, L.work);
        dk_gc_var v = {"fs", L.x, L.dx, 16};
        CU_ASSERT_EQUAL(lc_check(&L, pooled ? "at pooled masked" : "at masked", &v, 1, 1), 0);
        float g0[16], g1[16];
        memset(g0, 0, sizeof g0);
        dk_loss_at(g0, &L.fs, &L.ft, mask, DK_AT_L2, 1.0f, L.work);
        int64_t tw = L.ft.w, th = L.ft.h, f = pooled ? 2 : 1, ts = th * tw;
        for (int64_t i = 0; i < 2; i++) /* perturb both networks outside the mask */
            for (int64_t v4 = 0; v4 < 4; v4++) {
                if (mask[i * 4 + v4]) continue;
                for (int64_t k = 0; k < 2; k++) L.x[(i * 2 + k) * 4 + v4] += 3.0f;
                for (int64_t y = 0; y < th; y++)
                    for (int64_t x = 0; x < tw; x++)
                        if ((y / f) * 2 + x / f == v4) L.x2[i * ts + y * tw + x] -= 2.0f;
            }
        memset(g1, 0, sizeof g1);
        CU_ASSERT_EQUAL(dk_loss_at(g1, &L.fs, &L.ft, mask, DK_AT_L2, 1.0f, L.work), masked);
        CU_ASSERT(memcmp(g0, g1, sizeof g0) == 0);
        for (int64_t i = 0; i < 2; i++)
            for (int64_t v4 = 0; v4 < 4; v4++)
                for (int64_t k = 0; k < 2 && !mask[i * 4 + v4]; k++)
                    CU_ASSERT_EQUAL(g1[(i * 2 + k) * 4 + v4], 0.0f);
        /* and the unmasked loss of the features zeroed outside is the masked one */
        for (int64_t i = 0; i < 2; i++)
            for (int64_t v4 = 0; v4 < 4; v4++) {
                if (mask[i * 4 + v4]) continue;
                for (int64_t k = 0; k < 2; k++) L.x[(i * 2 + k) * 4 + v4] = 0;
                for (int64_t y = 0; y < th; y++)
                    for (int64_t x = 0; x < tw; x++)
                        if ((y / f) * 2 + x / f == v4) L.x2[i * ts + y * tw + x] = 0;
            }
        CHECK_CLOSE(dk_loss_at(NULL, &L.fs, &L.ft, NULL, DK_AT_L2, 1.0f, L.work), masked, 1e-12);
        CU_ASSERT(fabs(masked - (pooled ? 0.4573246135619775 : 0.8337578746725915)) > 1e-3);
        L.mask = NULL;
        lc_free(&L);
    }
}

/* at_norm = none: the raw maps A = sum_c F^2, the mean over samples of each sample's mean over
 * its counted voxels of (A_s - A_t)^2; numbers from float64 numpy
 * (((As - At)**2 * m).sum(1) / m.sum(1)).mean(). Masked features outside change nothing. */
static void test_at_none(void) {
    static const uint8_t mask[8] = {1, 0, 1, 1, 0, 1, 1, 0}; /* (n 2, s 4) */
    static const double plain[2] = {6.591012442728135, 7.039524982508463};
    static const double masked[2] = {5.666866655055683, 5.388674901418146};
    for (int pooled = 0; pooled <= 1; pooled++)
        for (int m = 0; m <= 1; m++) {
            lcase L = at_case(pooled);
            L.at_norm = DK_AT_NONE;
            L.mask = m ? (uint8_t *)mask : NULL;
            double want = m ? masked[pooled] : plain[pooled];
            double got = dk_loss_at(NULL, &L.fs, &L.ft, L.mask, DK_AT_NONE, 1.0f, L.work);
            CHECK_CLOSE(got, want, 1e-5);
            /* not the normalised loss: the maps' scale stays in it */
            CU_ASSERT(fabs(want - dk_loss_at(NULL, &L.fs, &L.ft, L.mask, DK_AT_L2, 1.0f,
                                             L.work)) > 1.0);
            char label[40];
            snprintf(label, sizeof label, "at none%s%s", pooled ? " pooled" : "",
                     m ? " masked" : "");
            dk_gc_var v = {"fs", L.x, L.dx, 16};
            CU_ASSERT_EQUAL(lc_check(&L, label, &v, 1, 1), 0);
            if (m) { /* outside the mask: no gradient, and a change there changes nothing */
                float g[16] = {0};
                dk_loss_at(g, &L.fs, &L.ft, mask, DK_AT_NONE, 1.0f, L.work);
                for (int64_t i = 0; i < 2; i++)
                    for (int64_t v4 = 0; v4 < 4; v4++)
                        for (int64_t k = 0; k < 2 && !mask[i * 4 + v4]; k++) {
                            CU_ASSERT_EQUAL(g[(i * 2 + k) * 4 + v4], 0.0f);
                            L.x[(i * 2 + k) * 4 + v4] += 3.0f;
                        }
                CU_ASSERT_EQUAL(dk_loss_at(NULL, &L.fs, &L.ft, mask, DK_AT_NONE, 1.0f, L.work),
                                got);
            }
            L.mask = NULL;
            lc_free(&L);
        }
    /* identical maps give 0; a sample whose mask counts nothing adds 0 but still counts in
     * 1/n: zero one sample's mask and the loss is half the other sample's mean */
    lcase L = at_case(0);
    const uint8_t only0[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    double l0 = dk_loss_at(NULL, &L.fs, &L.fs, NULL, DK_AT_NONE, 1.0f, L.work);
    CHECK_CLOSE(l0, 0.0, 1e-12);
    dk_tensor s0 = dk_tensor_view(L.x, 1, 2, 1, 2, 2), t0 = dk_tensor_view(L.x2, 1, 1, 1, 2, 2);
    double first = dk_loss_at(NULL, &s0, &t0, NULL, DK_AT_NONE, 1.0f, L.work);
    CHECK_CLOSE(dk_loss_at(NULL, &L.fs, &L.ft, only0, DK_AT_NONE, 1.0f, L.work), first / 2,
                1e-9);
    lc_free(&L);
}

/* dk_mask_pool: a block counts when any of its voxels does. */
static void test_mask_pool(void) {
    const uint8_t m[2 * 16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,  /* sample 0 */
                               1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* sample 1 */
    uint8_t out[8];
    dk_mask_pool(out, m, 2, 1, 4, 4, 1, 2, 2);
    const uint8_t want[8] = {0, 0, 0, 1, 1, 0, 0, 0};
    CU_ASSERT(memcmp(out, want, 8) == 0);
    dk_mask_pool(out, NULL, 2, 1, 4, 4, 1, 2, 2);
    for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(out[i], 1);
}

/* ------------------------------------------------------------------ hints */

static void test_hint(void) {
    /* fs (1, 2, 1x1x3), ft (1, 1, 1x1x3), w (1, 2), b (1); numpy: mean((w fs + b - ft)^2) */
    const float fs0[6] = {1.0f, -2.0f, 0.5f, 0.3f, 0.7f, -1.1f}, ft0[3] = {0.2f, -0.4f, 1.0f};
    for (int bias = 0; bias <= 1; bias++) {
        lcase L = {.kind = K_HINT};
        L.x = fbuf(6), L.dx = fbuf(6), L.x2 = fbuf(3);
        memcpy(L.x, fs0, sizeof fs0);
        memcpy(L.x2, ft0, sizeof ft0);
        L.w = fbuf(2), L.dw = fbuf(2);
        L.w[0] = 0.5f, L.w[1] = -1.5f;
        if (bias) L.b = fbuf(1), L.db = fbuf(1), L.b[0] = 0.25f;
        L.fs = dk_tensor_view(L.x, 1, 2, 1, 1, 3);
        L.ft = dk_tensor_view(L.x2, 1, 1, 1, 1, 3);
        L.work = fbuf((int64_t)dk_loss_hint_work_floats(&L.fs, 1));
        if (bias) { /* by hand: y = (0.3, -1.8, 2.15), squared errors 0.01, 1.96, 1.3225 */
            CHECK_CLOSE(lc_eval(&L, 0, 1.0f), 1.0975000037749616, 1e-6);
            uint8_t m101[3] = {1, 0, 1}; /* the middle voxel excluded: (0.01 + 1.3225) / 2 */
            L.mask = m101;
            CHECK_CLOSE(lc_eval(&L, 0, 1.0f), 0.66625, 1e-6);
            L.mask = NULL;
        }
        dk_gc_var v[3] = {{"fs", L.x, L.dx, 6}, {"w", L.w, L.dw, 2}, {"b", L.b, L.db, 1}};
        CU_ASSERT_EQUAL(lc_check(&L, bias ? "hint" : "hint nobias", v, bias ? 3 : 2, 1), 0);
        lc_free(&L);
    }
    /* a 3-D case, cs 3 -> ct 5 on 2x3x2 voxels, batch 2 */
    lcase L = {.kind = K_HINT};
    const int64_t s = 12, nfs = 2 * 3 * s, nft = 2 * 5 * s;
    L.x = fbuf(nfs), L.dx = fbuf(nfs), L.x2 = fbuf(nft);
    L.w = fbuf(15), L.dw = fbuf(15), L.b = fbuf(5), L.db = fbuf(5);
    dk_gc_fill(L.x, nfs, -1, 1, 31), dk_gc_fill(L.x2, nft, -1, 1, 32);
    dk_gc_fill(L.w, 15, -1, 1, 33), dk_gc_fill(L.b, 5, -0.5, 0.5, 34);
    L.fs = dk_tensor_view(L.x, 2, 3, 2, 3, 2);
    L.ft = dk_tensor_view(L.x2, 2, 5, 2, 3, 2);
    L.work = fbuf((int64_t)dk_loss_hint_work_floats(&L.fs, 5));
    dk_gc_var v[3] = {{"fs", L.x, L.dx, nfs}, {"w", L.w, L.dw, 15}, {"b", L.b, L.db, 5}};
    CU_ASSERT_EQUAL(lc_check(&L, "hint 3-D", v, 3, 1), 0);
    uint8_t m[24];
    for (int i = 0; i < 24; i++) m[i] = (uint8_t)(i % 5 != 1);
    L.mask = m; /* masked: excluded voxels get no gradient (the check compares every entry) */
    CU_ASSERT_EQUAL(lc_check(&L, "hint 3-D masked", v, 3, 1), 0);
    L.mask = NULL;
    lc_free(&L);
}

/* ------------------------------------------------------------------ feature extraction */

static void test_feat_gap(void) {
    lcase L = {.kind = K_GAP};
    L.x = fbuf(2 * 3 * 4), L.dx = fbuf(24);
    dk_gc_fill(L.x, 24, -1, 1, 41);
    L.fs = dk_tensor_view(L.x, 2, 3, 1, 2, 2);
    dk_feat_gap_forward(L.out, &L.fs);
    for (int r = 0; r < 6; r++)
        CHECK_CLOSE(L.out[r], (L.x[4 * r] + L.x[4 * r + 1] + L.x[4 * r + 2] + L.x[4 * r + 3]) / 4,
                    1e-6);
    dk_gc_var v = {"in", L.x, L.dx, 24};
    CU_ASSERT_EQUAL(lc_check(&L, "gap", &v, 1, 6), 0);
    lc_free(&L);
}

static void test_feat_sample(void) {
    lcase L = {.kind = K_SAMPLE, .m = 4};
    L.x = fbuf(2 * 2 * 3), L.dx = fbuf(12);
    for (int i = 0; i < 12; i++) L.x[i] = (float)i;
    L.fs = dk_tensor_view(L.x, 2, 2, 1, 1, 3); /* n 2, c 2, s 3: 6 positions */
    L.idx = calloc(6, sizeof(int64_t));
    dk_rng r;
    dk_rng_seed(&r, 5);
    dk_feat_sample_draw(L.idx, 6, &L.fs, NULL, &r); /* all 6: a permutation */
    int seen[6] = {0};
    for (int i = 0; i < 6; i++) seen[L.idx[i]]++;
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(seen[i], 1);
    dk_feat_sample_draw(L.idx, 4, &L.fs, NULL, &r);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) CU_ASSERT(L.idx[i] != L.idx[j]);
    dk_feat_sample_forward(L.out, &L.fs, L.idx, 4);
    for (int i = 0; i < 4; i++) { /* position p = sample*3 + voxel: channel k at 6 sample + 3k */
        int64_t p = L.idx[i], o = (p / 3) * 6 + p % 3;
        CU_ASSERT_EQUAL(L.out[2 * i], (float)o);
        CU_ASSERT_EQUAL(L.out[2 * i + 1], (float)(o + 3));
    }
    dk_gc_var v = {"in", L.x, L.dx, 12};
    CU_ASSERT_EQUAL(lc_check(&L, "sample", &v, 1, 8), 0);
    lc_free(&L);
}

/* With a mask the draw picks only counted positions, distinct, every one of them when m = K,
 * uniformly (each of 4 counted positions about m / K of 4000 draws of 2). */
static void test_feat_sample_masked(void) {
    float x[12] = {0};
    dk_tensor in = dk_tensor_view(x, 2, 2, 1, 1, 3);
    const uint8_t mask[6] = {0, 1, 1, 0, 1, 1};
    int64_t idx[4];
    int hits[6] = {0};
    dk_rng r;
    dk_rng_seed(&r, 9);
    dk_feat_sample_draw(idx, 4, &in, mask, &r);
    CU_ASSERT(idx[0] == 1 && idx[1] == 2 && idx[2] == 4 && idx[3] == 5);
    for (int k = 0; k < 4000; k++) {
        dk_feat_sample_draw(idx, 2, &in, mask, &r);
        CU_ASSERT(idx[0] < idx[1] && mask[idx[0]] && mask[idx[1]]);
        hits[idx[0]]++, hits[idx[1]]++;
    }
    CU_ASSERT(hits[0] == 0 && hits[3] == 0);
    for (int p = 0; p < 6; p++)
        if (mask[p]) CU_ASSERT(abs(hits[p] - 2000) < 150);
}

/* ------------------------------------------------------------------ MMD and CORAL */

static lcase align_case(loss_kind kind, const float *xs, const float *xt, int64_t ns,
                        int64_t nt, int64_t dim) {
    lcase L = {.kind = kind, .n = ns, .m = nt, .c = dim};
    L.x = fbuf(ns * dim), L.dx = fbuf(ns * dim), L.x2 = fbuf(nt * dim), L.dx2 = fbuf(nt * dim);
    memcpy(L.x, xs, (size_t)(ns * dim) * sizeof(float));
    memcpy(L.x2, xt, (size_t)(nt * dim) * sizeof(float));
    size_t nw = kind == K_MMD ? dk_loss_mmd_work_doubles(ns, nt) : dk_loss_coral_work_doubles(dim);
    L.dwork = calloc(nw, sizeof(double));
    return L;
}

static double align_eval(loss_kind kind, const float *xs, const float *xt, int64_t ns,
                         int64_t nt, int64_t dim) {
    lcase L = align_case(kind, xs, xt, ns, nt, dim);
    double v = lc_eval(&L, 0, 1.0f);
    lc_free(&L);
    return v;
}

static void test_mmd(void) {
    /* numpy (h = median pairwise squared distance of the 7 pooled rows) */
    CHECK_CLOSE(align_eval(K_MMD, AL_XS, AL_XT, 3, 4, 2), -0.14118141405637086, 1e-6);
    /* X = Y: the unbiased estimate is 2 (mean_{i != j} k - 1) / n exactly (numpy -0.4227) */
    CHECK_CLOSE(align_eval(K_MMD, AL_XS, AL_XS, 3, 3, 2), -0.42267023513267976, 1e-6);
    /* two samples of one distribution ~ 0; the same shifted by 1.5 per dimension: large */
    enum { NS = 24, D = 4 };
    float a[NS * D], b[NS * D], sh[NS * D];
    dk_rng r;
    dk_rng_seed(&r, 77);
    for (int i = 0; i < NS * D; i++) {
        a[i] = (float)dk_rng_normal(&r);
        b[i] = (float)dk_rng_normal(&r);
        sh[i] = b[i] + 1.5f;
    }
    double same = align_eval(K_MMD, a, b, NS, NS, D), shifted = align_eval(K_MMD, a, sh, NS, NS, D);
    printf("\n      MMD^2 same distribution %.4g, shifted %.4g", same, shifted);
    CU_ASSERT(fabs(same) < 0.03);
    CU_ASSERT(shifted > 0.2);
    CU_ASSERT(shifted > 10 * fabs(same));
    /* a fixed bandwidth equal to the median (numpy 1.9299999547004703) gives the same value */
    lcase L = align_case(K_MMD, AL_XS, AL_XT, 3, 4, 2);
    L.h = 1.9299999547004703;
    CHECK_CLOSE(lc_eval(&L, 0, 1.0f), -0.14118141405637086, 1e-6);
    /* gradients with the bandwidth held constant (with the median heuristic a perturbation of
     * the median pair's rows moves h, which the backward ignores by design) */
    dk_gc_var v[2] = {{"xs", L.x, L.dx, 6}, {"xt", L.x2, L.dx2, 8}};
    CU_ASSERT_EQUAL(lc_check(&L, "mmd", v, 2, 1), 0);
    lc_free(&L);
    L = align_case(K_MMD, a, sh, 6, 5, D);
    L.h = 3.0;
    dk_gc_var v2[2] = {{"xs", L.x, L.dx, 6 * D}, {"xt", L.x2, L.dx2, 5 * D}};
    CU_ASSERT_EQUAL(lc_check(&L, "mmd 6/5x4", v2, 2, 1), 0);
    lc_free(&L);
}

static void test_coral(void) {
    /* numpy: np.cov (unbiased) of each set, |Cs - Ct|_F^2 / (4 d^2) with d = 2 */
    CHECK_CLOSE(align_eval(K_CORAL, AL_XS, AL_XT, 3, 4, 2), 0.2580230922951311, 1e-6);
    /* same covariance (a shifted copy) = 0, with a zero gradient */
    float sh[6];
    for (int i = 0; i < 6; i++) sh[i] = AL_XS[i] + 3.0f;
    lcase L = align_case(K_CORAL, AL_XS, sh, 3, 3, 2);
    CHECK_CLOSE(lc_eval(&L, 1, 1.0f), 0.0, 1e-10);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(L.dx[i], 0.0, 1e-6);
    lc_free(&L);
    L = align_case(K_CORAL, AL_XS, AL_XT, 3, 4, 2);
    dk_gc_var v[2] = {{"xs", L.x, L.dx, 6}, {"xt", L.x2, L.dx2, 8}};
    CU_ASSERT_EQUAL(lc_check(&L, "coral", v, 2, 1), 0);
    lc_free(&L);
    /* wider: 5 rows vs 6 rows of dim 4 */
    float xs[20], xt[24];
    dk_gc_fill(xs, 20, -1, 1, 51), dk_gc_fill(xt, 24, -2, 2, 52);
    L = align_case(K_CORAL, xs, xt, 5, 6, 4);
    dk_gc_var w[2] = {{"xs", L.x, L.dx, 20}, {"xt", L.x2, L.dx2, 24}};
    CU_ASSERT_EQUAL(lc_check(&L, "coral 5/6x4", w, 2, 1), 0);
    lc_free(&L);
}

/* ------------------------------------------------------------------ main */

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("train.losses", NULL, NULL);
    if (!s || !CU_add_test(s, "labels masked by a FOV", test_labels_mask) ||
        !CU_add_test(s, "Dice value", test_dice_value) ||
        !CU_add_test(s, "gradcheck Dice", test_dice_grad) ||
        !CU_add_test(s, "KD value, multi-teacher, mask", test_kd_value) ||
        !CU_add_test(s, "gradcheck KD", test_kd_grad) ||
        !CU_add_test(s, "KD with confidence weights: by hand, gradcheck", test_kd_confidence) ||
        !CU_add_test(s, "KD T^2 scaling", test_kd_t2_scaling) ||
        !CU_add_test(s, "class-balanced KD: by voxel, gradient, gradcheck", test_kd_balanced) ||
        !CU_add_test(s, "entropy value and gradcheck", test_entropy) ||
        !CU_add_test(s, "same bits on 1 and 2 threads", test_thread_invariance) ||
        !CU_add_test(s, "parallel losses repeat; 1 and 2 threads agree", test_parallel_repeat) ||
        !CU_add_test(s, "losses against libm exp/log on wide logits", test_against_libm) ||
        !CU_add_test(s, "attention transfer", test_at) ||
        !CU_add_test(s, "attention transfer inside a mask", test_at_masked) ||
        !CU_add_test(s, "attention transfer unnormalised (at_norm = none)", test_at_none) ||
        !CU_add_test(s, "masks pooled onto a coarser grid", test_mask_pool) ||
        !CU_add_test(s, "hints (1x1 adapter)", test_hint) ||
        !CU_add_test(s, "global average pooling", test_feat_gap) ||
        !CU_add_test(s, "sampled voxel features", test_feat_sample) ||
        !CU_add_test(s, "sampled voxel features inside a mask", test_feat_sample_masked) ||
        !CU_add_test(s, "MMD", test_mmd) || !CU_add_test(s, "CORAL", test_coral)) {
        CU_cleanup_registry();
        return 1;
    }
    return dk_test_run();
}
