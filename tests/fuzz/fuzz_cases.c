/* A case list (`[data] cases`): the input as cases.csv through dk_cases_read, beside three
 * files its rows may name (img.nii.gz, lab.nii.gz, mask.png; empty: only their existence
 * is checked) in the image, image_1, ..., label and mask columns; every case has its
 * channel files, the first being `image`, and a spacing of three finite values > 0 or
 * none; then every column filtered on the first case's value, as the trainer picks its
 * domains and splits. */
#include <math.h>
#include <stdlib.h>

#include "dakd/data.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    static const char *const files[] = {"img.nii.gz", "lab.nii.gz", "mask.png"};
    for (int i = 0; i < 3; i++) fz_write(files[i], "", 0);
    const char *path = fz_write("cases.csv", data, n);
    dk_case_list l;
    if (dk_cases_read(&l, path) != DK_OK) return 0;
    for (int i = 0; i < l.n; i++) {
        const dk_case *c = &l.cases[i];
        fz_check(c->n_images >= 1 && c->n_images <= DK_CASE_IMAGES_MAX && c->images &&
                 c->image == c->images[0], "a case without its channel files");
        for (int k = 0; k < c->n_images; k++) fz_check(c->images[k] != NULL, "a NULL channel");
        int given = c->spacing[0] > 0; /* a spacing is all three > 0 and finite, or none */
        for (int a = 0; a < 3; a++)
            fz_check(given ? c->spacing[a] > 0 && isfinite(c->spacing[a]) : c->spacing[a] == 0,
                     "a spacing that is not three finite values > 0");
    }
    for (int k = 0; k < l.n_columns && l.n > 0; k++) {
        const char *col = l.columns[k];
        fz_check(dk_cases_column(&l, col) >= 0, "a column of the list is not found");
        dk_case_list sub;
        if (dk_cases_filter(&sub, &l, col, dk_cases_get(&l, 0, col)) == DK_OK)
            fz_check(sub.n >= 1, "the first case does not pass its own filter");
        dk_cases_free(&sub);
    }
    dk_cases_free(&l);
    return 0;
}
