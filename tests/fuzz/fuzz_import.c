/* dakd cases over a dataset folder whose dataset.json is the input: the mode byte picks a
 * Medical Segmentation Decathlon task (dataset.json's "training" and "test" lists name the
 * files) or an nnU-Net v2 raw dataset (its labels, channel_names and file_ending). Beside
 * it lie valid files: imagesTr/a.nii and labelsTr/a.nii (MSD), imagesTr/a_0000.nii,
 * labelsTr/a.nii and imagesTs/b_0000.nii (nnU-Net), a 4x3x2 image and an all-zero label.
 * When the import writes its case list, dk_cases_read must read it back with as many rows
 * as the import counted. */
#include <stdio.h>
#include <stdlib.h>

#include "dakd/data.h"
#include "dakd/eval.h"
#include "fuzz_util.h"

static unsigned char *fixture; /* a 4x3x2 uint8 NIfTI-1 file, all zero */
static size_t fixture_n;

static void make_fixture(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fixture.nii", fz_root());
    dk_volume v;
    fz_check(dk_volume_alloc(&v, 4, 3, 2, 1, 1, DK_U8) == DK_OK, "fixture alloc");
    fz_check(dk_volume_write(&v, path, NULL) == DK_OK, "fixture write");
    dk_volume_free(&v);
    FILE *f = fopen(path, "rb");
    fz_check(f != NULL, "fixture open");
    fseek(f, 0, SEEK_END);
    fixture_n = (size_t)ftell(f);
    rewind(f);
    fixture = malloc(fixture_n);
    fz_check(fixture && fread(fixture, 1, fixture_n, f) == fixture_n, "fixture read");
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    int nnunet = fz_take_mode(&data, &n, 2);
    const char *root = fz_begin();
    if (!fixture) make_fixture();
    static const char *const msd[] = {"imagesTr/a.nii", "labelsTr/a.nii", NULL};
    static const char *const nn[] = {"imagesTr/a_0000.nii", "labelsTr/a.nii",
                                     "imagesTs/b_0000.nii", NULL};
    for (const char *const *f = nnunet ? nn : msd; *f; f++) fz_write(*f, fixture, fixture_n);
    fz_write("dataset.json", data, n);
    dk_import_opts o = {nnunet ? DK_LAYOUT_NNUNET : DK_LAYOUT_MSD, root, NULL, NULL, NULL,
                        NULL, NULL, NULL, 0, fz_path("cases.csv")};
    dk_import_result r;
    dk_status st = dk_cases_import(&r, &o);
    if (st == DK_OK && r.n_problems == 0) {
        dk_case_list l;
        fz_check(dk_cases_read(&l, o.out) == DK_OK, "the written case list does not read");
        fz_check(l.n == r.n_cases, "the case list's rows differ from the cases imported");
        dk_cases_free(&l);
    }
    dk_import_result_free(&r);
    return 0;
}
