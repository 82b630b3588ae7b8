/* `dakd eval --compare A B`: dk_eval_run with compare_a / compare_b reads the cases.csv of
 * two earlier evaluations back. Mode 0: a/cases.csv and b/cases.csv are the two files of
 * the split input. Mode 1: a/cases.csv is the first file and b is a study eval stage's model
 * folder whose seed1/report/cases.csv is the first file and seed2/report/cases.csv the
 * second (the seeds averaged row by row, refused when their rows differ). The output folder
 * is written whole or not at all: compare.csv and the three other files on success,
 * nothing on an error. */
#include <string.h>
#include <sys/stat.h>

#include "dakd/eval.h"
#include "fuzz_util.h"

static int exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fz_begin();
    int mode = fz_take_mode(&data, &n, 2);
    const uint8_t *a, *b;
    size_t na, nb;
    fz_split(data, n, &a, &na, &b, &nb);
    fz_write("a/cases.csv", a, na);
    if (mode == 0) {
        fz_write("b/cases.csv", b, nb);
    } else {
        fz_write("b/seed1/report/cases.csv", a, na);
        fz_write("b/seed2/report/cases.csv", b, nb);
    }
    dk_eval_opts o;
    memset(&o, 0, sizeof o);
    o.compare_a = fz_path("a");
    o.compare_b = fz_path("b");
    o.out_dir = fz_path("out");
    o.title = "fuzz";
    dk_status st = dk_eval_run(&o);
    static const char *const files[] = {"out/compare.csv", "out/compare.json",
                                        "out/compare.md", "out/compare.html"};
    for (int k = 0; k < 4; k++)
        fz_check(exists(fz_path(files[k])) == (st == DK_OK),
                 st == DK_OK ? "a comparison that succeeded without all its files"
                             : "a comparison that failed left output behind");
    if (st != DK_OK) fz_check(!exists(fz_path("out")), "a failed comparison left its folder");
    return 0;
}
