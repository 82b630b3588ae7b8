/* nibabel as the oracle for the NIfTI reader: every NIfTI-1/2 and Analyze file shipped in
 * nibabel's test data (found by globbing, so the test follows the package) and the mricron
 * templates must load with nibabel's shape, voxels (get_fdata(), within float32 rounding)
 * and affine (within 1e-5 relative); and files dakd writes must read in nibabel with the
 * affine dakd meant. nibabel runs under /usr/bin/python3 through tests/tools/nib_dump.py.
 *
 * Two places where the rules need stating:
 *  - Analyze 7.5 (no orientation fields): dakd follows SPM and nibabel (x flipped, origin
 *    at SPM's originator or the grid centre), so the affines are compared. NIfTI with both
 *    qform_code and sform_code 0: dakd uses NIfTI's method 1, diag(pixdim) with origin 0
 *    (as nifticlib and ITK); nibabel builds the Analyze-style affine there, and a NOTE line
 *    prints it.
 *  - CIFTI-2 (row_major.dconn.nii, NIfTI-2 dims 1..4 = 1, dim[5..6] = 10): nibabel's
 *    Cifti2Image has shape (10, 10) and no affine; dakd maps dims 5..7 onto x, y, z. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dakd/volume.h"
#include "test_util.h"

#define PY "/usr/bin/python3"

typedef struct {
    char kind[64];
    int ndim;
    int64_t shape[8];
    int qcode, scode;
    double zooms[3];
    int has_affine;
    double affine[16];
    int64_t nvox;
    double *vox; /* (nvox) get_fdata() in x-fastest order; full mode only */
} nib_view;

static char script[4096];
static char nib_data_dir[4096];

/* Run nib_dump.py in `mode` ("header" or "full") on `path`. 0 on success. */
static int nib_dump(nib_view *nv, const char *mode, const char *path) {
    static int counter;
    memset(nv, 0, sizeof *nv);
    char prefix[4200], out[4096], txt[4300], bin[4300];
    snprintf(prefix, sizeof prefix, "%s/nib_%d", dk_test_tmpdir(), counter++);
    int rc = dk_test_sh(out, sizeof out, PY " '%s' %s '%s' '%s'", script, mode, path, prefix);
    if (rc != 0) {
        printf("\n    nib_dump %s failed (%d): %s\n", path, rc, out);
        return -1;
    }
    snprintf(txt, sizeof txt, "%s.txt", prefix);
    FILE *f = fopen(txt, "r");
    if (!f) return -1;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        if (!strncmp(line, "kind ", 5)) sscanf(line + 5, "%63s", nv->kind);
        if (!strncmp(line, "shape ", 6))
            for (p = line + 6; nv->ndim < 8; p = end) {
                long long n = strtoll(p, &end, 10);
                if (end == p) break;
                nv->shape[nv->ndim++] = n;
            }
        if (!strncmp(line, "codes ", 6)) sscanf(line + 6, "%d %d", &nv->qcode, &nv->scode);
        if (!strncmp(line, "zooms ", 6))
            sscanf(line + 6, "%lf %lf %lf", &nv->zooms[0], &nv->zooms[1], &nv->zooms[2]);
        if (!strncmp(line, "affine ", 7) && strncmp(line + 7, "none", 4)) {
            nv->has_affine = 1;
            p = line + 7;
            for (int i = 0; i < 16; i++, p = end)
                nv->affine[i] = strtod(p, &end);
        }
        if (!strncmp(line, "nvox ", 5)) nv->nvox = strtoll(line + 5, NULL, 10);
    }
    fclose(f);
    if (strcmp(mode, "full")) return 0;
    snprintf(bin, sizeof bin, "%s.bin", prefix);
    f = fopen(bin, "rb");
    nv->vox = malloc((size_t)nv->nvox * sizeof(double) + 1);
    size_t got = f && nv->vox ? fread(nv->vox, sizeof(double), (size_t)nv->nvox, f) : 0;
    if (f) fclose(f);
    remove(bin);
    return got == (size_t)nv->nvox ? 0 : -1;
}

static int shape_matches(const dk_volume *v, const nib_view *nv) {
    int64_t s[5] = {1, 1, 1, 1, 1};
    for (int i = 0; i < nv->ndim; i++) {
        if (i >= 5 && nv->shape[i] != 1) return 0;
        if (i < 5) s[i] = nv->shape[i];
    }
    return s[0] == v->nx && s[1] == v->ny && s[2] == v->nz && s[3] == v->nt && s[4] == v->nc;
}

/* The RAS affine nibabel should agree with: its own when the file has a qform or sform,
 * and for Analyze files (codes -1: SPM's radiological rule, which dakd follows too);
 * for NIfTI with both codes 0, dakd's stated rule, diag(pixdim) with origin 0. */
static int affine_matches(const dk_volume *v, const nib_view *nv, double rel, const char *name) {
    double m[4][4], want[16] = {0};
    dk_geometry_to_nifti_affine(&v->geom, m);
    int by_codes = nv->has_affine && (nv->qcode != 0 || nv->scode != 0);
    if (by_codes) {
        memcpy(want, nv->affine, sizeof want);
    } else {
        for (int i = 0; i < 3; i++)
            want[i * 4 + i] = nv->zooms[i];
        want[15] = 1;
        if (nv->has_affine)
            printf("\n    NOTE %s: no qform/sform; dakd uses diag(pixdim), nibabel's affine "
                   "rows are [%g %g %g %g] [%g %g %g %g] [%g %g %g %g]",
                   name, nv->affine[0], nv->affine[1], nv->affine[2], nv->affine[3], nv->affine[4],
                   nv->affine[5], nv->affine[6], nv->affine[7], nv->affine[8], nv->affine[9],
                   nv->affine[10], nv->affine[11]);
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            if (fabs(m[r][c] - want[r * 4 + c]) > rel * fmax(1.0, fabs(want[r * 4 + c]))) {
                printf("\n    %s: affine[%d][%d] = %.9g, nibabel %.9g", name, r, c, m[r][c],
                       want[r * 4 + c]);
                return 0;
            }
    return 1;
}

/* Voxels within float32 rounding of get_fdata() (integers: exactly); NaN matches NaN. */
static int voxels_match(const dk_volume *v, const nib_view *nv, const char *name) {
    if (nv->nvox != dk_volume_numel(v)) return 0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < nv->nvox; i++) {
        double a = dk_volume_get(v, i), b = nv->vox[i];
        if (isnan(a) && isnan(b)) continue;
        if (!(fabs(a - b) <= 2.5e-7 * fabs(b))) {
            if (first < 0) first = i;
            bad++;
        }
    }
    if (bad)
        printf("\n    %s: %lld voxels differ, first #%lld: dakd %.9g, nibabel %.9g", name,
               (long long)bad, (long long)first, dk_volume_get(v, first), nv->vox[first]);
    return bad == 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The .img of a .hdr(.gz) name, or "" for other names. */
static void image_of(char *img, size_t n, const char *path) {
    img[0] = '\0';
    const char *ext = ends_with(path, ".hdr")      ? ".hdr"
                      : ends_with(path, ".hdr.gz") ? ".hdr.gz"
                                                   : NULL;
    if (!ext) return;
    snprintf(img, n, "%.*simg%s", (int)(strlen(path) - strlen(ext) + 1), path, ext + 4);
}

/* Load `path` in dakd and nibabel and compare. A .hdr without its .img is compared
 * header-only, and the full read must fail naming the missing .img. */
static void compare_file(const char *path) {
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char img[4096];
    image_of(img, sizeof img, path);
    int header_only = img[0] && !dk_test_exists(img);
    dk_volume v;
    nib_view nv;
    dk_status st = dk_nifti_read(&v, path, header_only);
    if (st != DK_OK) printf("\n    %s: %s", name, dk_last_error());
    CU_ASSERT_EQUAL_FATAL(st, DK_OK);
    CU_ASSERT_EQUAL_FATAL(nib_dump(&nv, header_only ? "header" : "full", path), 0);
    CU_ASSERT(shape_matches(&v, &nv));
    if (nv.has_affine || nv.qcode < 0) CU_ASSERT(affine_matches(&v, &nv, 1e-5, name));
    if (header_only) {
        dk_volume w;
        CU_ASSERT_EQUAL(dk_nifti_read(&w, path, 0), DK_ERR_IO);
        CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), img));
    } else {
        CU_ASSERT(voxels_match(&v, &nv, name));
    }
    printf("\n    %-28s %-17s %lldx%lldx%lldx%lldx%lld %s%s", name, nv.kind, (long long)v.nx,
           (long long)v.ny, (long long)v.nz, (long long)v.nt, (long long)v.nc,
           dk_dtype_name(v.dtype), header_only ? " (header only: no .img shipped)" : "");
    free(nv.vox);
    dk_volume_free(&v);
}

static void test_nibabel_test_data(void) {
    static const char *patterns[] = {"*.nii", "*.nii.gz", "*.hdr", "*.hdr.gz", "*.img", "*.img.gz"};
    int n = 0;
    for (size_t k = 0; k < sizeof patterns / sizeof patterns[0]; k++) {
        glob_t g;
        char pat[4200];
        snprintf(pat, sizeof pat, "%s/%s", nib_data_dir, patterns[k]);
        if (glob(pat, 0, NULL, &g) != 0) continue;
        for (size_t i = 0; i < g.gl_pathc; i++, n++)
            compare_file(g.gl_pathv[i]);
        globfree(&g);
    }
    printf("\n    %d files compared\n", n);
    CU_ASSERT(n >= 11); /* nibabel 5.0 ships 11 such files */
}

static void test_mricron_templates(void) {
    static const char *files[] = {"/usr/share/mricron/templates/ch2.nii.gz",
                                  "/usr/share/mricron/templates/aal.nii.gz"};
    for (int i = 0; i < 2; i++) {
        if (!dk_test_exists(files[i])) {
            dk_test_skip(files[i], "not installed (Debian package mricron-data)");
            continue;
        }
        compare_file(files[i]);
    }
    printf("\n");
}

/* An oblique, anisotropic volume written by dakd reads in nibabel with the affine dakd
 * reads back (the stored sform) and within float32 of the one it meant (NIfTI-1). */
static void test_dakd_written(void) {
    static const struct {
        const char *name;
        int version;
    } outs[] = {{"oracle_v1.nii", 1},
                {"oracle_v2.nii.gz", 2},
                {"oracle_pair.hdr", 1},
                {"oracle_v2_pair.hdr.gz", 2}};
    dk_volume v;
    CU_ASSERT_EQUAL_FATAL(dk_volume_alloc(&v, 6, 5, 4, 1, 1, DK_F32), DK_OK);
    for (int64_t i = 0; i < dk_volume_numel(&v); i++)
        dk_volume_set(&v, i, sin((double)i) * 100);
    const double c = cos(0.4), s = sin(0.4);
    const double dir[3][3] = {{c, 0, s}, {0, 1, 0}, {-s, 0, c}};
    memcpy(v.geom.direction, dir, sizeof dir);
    v.geom.spacing[0] = 0.9, v.geom.spacing[1] = 1.1, v.geom.spacing[2] = 3.3;
    v.geom.origin[0] = 12.5, v.geom.origin[1] = -7.25, v.geom.origin[2] = 40.0;
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
        const char *p = dk_test_path(dk_test_tmpdir(), outs[k].name);
        dk_write_opts o = {outs[k].version, 0};
        CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, p, &o), DK_OK);
        dk_volume back;
        nib_view nv;
        CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&back, p, 0), DK_OK);
        CU_ASSERT_EQUAL_FATAL(nib_dump(&nv, "full", p), 0);
        CU_ASSERT_STRING_EQUAL(nv.kind, outs[k].version == 2
                                            ? (strstr(p, ".hdr") ? "Nifti2Pair" : "Nifti2Image")
                                            : (strstr(p, ".hdr") ? "Nifti1Pair" : "Nifti1Image"));
        CU_ASSERT(shape_matches(&back, &nv));
        CU_ASSERT(voxels_match(&back, &nv, outs[k].name));
        CU_ASSERT(affine_matches(&back, &nv, 1e-12, outs[k].name));
        CU_ASSERT(affine_matches(&v, &nv, outs[k].version == 1 ? 1e-6 : 1e-12, outs[k].name));
        free(nv.vox);
        dk_volume_free(&back);
    }
    dk_volume_free(&v);
}

/* A file whose qform differs from its sform (or has one code 0) keeps both codes and both
 * transforms through dakd's read → write, NIfTI-1 and -2, as nibabel sees them; once the
 * geometry changes, qform and sform are both the new geometry. */
static void test_qform_kept(void) {
    static const char *cases[] = {"differ", "noq", "nos"};
    static const char *outs[] = {"xf_out.nii", "xf_out2.nii.gz"};
    char tool[4200], log[8192];
    snprintf(tool, sizeof tool, PY " '%s/tests/tools/nib_xforms.py'", dk_test_source_dir());
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *in = dk_test_path(dk_test_tmpdir(), "xf_in.nii");
        CU_ASSERT_EQUAL_FATAL(dk_test_sh(log, sizeof log, "%s make '%s' %s", tool, in, cases[k]),
                              0);
        dk_volume v;
        CU_ASSERT_EQUAL_FATAL(dk_nifti_read(&v, in, 0), DK_OK);
        for (int version = 1; version <= 2; version++) {
            const char *out = dk_test_path(dk_test_tmpdir(), outs[version - 1]);
            dk_write_opts o = {version, 0};
            CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, out, &o), DK_OK);
            int rc = dk_test_sh(log, sizeof log, "%s same '%s' '%s'", tool, in, out);
            if (rc) printf("\n    %s, NIfTI-%d:\n%s", cases[k], version, log);
            CU_ASSERT_EQUAL(rc, 0);
        }
        v.geom.origin[0] += 1.5; /* a changed grid: its qform is its geometry */
        const char *moved = dk_test_path(dk_test_tmpdir(), "xf_moved.nii");
        CU_ASSERT_EQUAL_FATAL(dk_nifti_write(&v, moved, NULL), DK_OK);
        int rc = dk_test_sh(log, sizeof log, "%s agree '%s'", tool, moved);
        if (rc) printf("\n    %s moved:\n%s", cases[k], log);
        CU_ASSERT_EQUAL(rc, 0);
        dk_volume_free(&v);
    }
}

int main(void) {
    char out[4096];
    if (dk_test_sh(out, sizeof out,
                   PY " -c 'import nibabel, os; print(os.path.join("
                      "os.path.dirname(nibabel.__file__), \"tests\", \"data\"))'") != 0) {
        printf("SKIP test_nifti_oracle: nibabel is not importable by " PY ": %s\n", out);
        return 77;
    }
    out[strcspn(out, "\n")] = '\0';
    snprintf(nib_data_dir, sizeof nib_data_dir, "%s", out);
    snprintf(script, sizeof script, "%s/tests/tools/nib_dump.py", dk_test_source_dir());
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("nifti vs nibabel", NULL, NULL);
    CU_add_test(s, "nibabel's test data", test_nibabel_test_data);
    CU_add_test(s, "mricron templates", test_mricron_templates);
    CU_add_test(s, "files dakd writes, read by nibabel", test_dakd_written);
    CU_add_test(s, "a qform unlike the sform is kept, codes too", test_qform_kept);
    return dk_test_run();
}
