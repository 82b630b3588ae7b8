#include "trainer_fixture.h"

#include "dakd/data.h"
#include "test_util.h"

#include <sys/stat.h>

FILE *dk_fx_open_cases(char *dir, char *csv, size_t n, const char *name) {
    snprintf(dir, n, "%s/%s", dk_test_tmpdir(), name);
    mkdir(dir, 0777);
    snprintf(csv, n, "%s/cases.csv", dir);
    FILE *f = fopen(csv, "w");
    if (f) fprintf(f, "case,image,label,dataset,split\n");
    return f;
}

int dk_fx_write_case(FILE *csv, const char *dir, const char *name, int nx, int domain,
                     uint64_t seed, const char *split, int with_label, int bad_label) {
    dk_volume img = {0}, lab = {0};
    dk_phantom_opts po = {nx, nx, 1, {1, 1, 1}, domain};
    dk_rng r;
    dk_rng_seed(&r, seed);
    if (dk_phantom_generate(&img, &lab, &po, &r) != DK_OK) return -1;
    if (bad_label) ((uint8_t *)lab.data)[100] = 7;
    char ip[1200], lp[1200];
    snprintf(ip, sizeof ip, "%s/%s_img.nii.gz", dir, name);
    snprintf(lp, sizeof lp, "%s/%s_lab.nii.gz", dir, name);
    int rc = dk_volume_write(&img, ip, NULL) != DK_OK || dk_volume_write(&lab, lp, NULL) != DK_OK;
    fprintf(csv, "%s,%s_img.nii.gz,%s%s,%s,%s\n", name, name, with_label ? name : "",
            with_label ? "_lab.nii.gz" : "", domain ? "tgt" : "src", split);
    dk_volume_free(&img);
    dk_volume_free(&lab);
    return rc ? -1 : 0;
}

static int setf(dk_train_config *c, const char *key, const char *fmt1, const char *fmt2,
                long v) {
    char buf[1400];
    if (fmt2) snprintf(buf, sizeof buf, "%s=%s/%s", key, fmt1, fmt2);
    else if (fmt1) snprintf(buf, sizeof buf, "%s=%s", key, fmt1);
    else snprintf(buf, sizeof buf, "%s=%ld", key, v);
    return dk_train_config_set(c, buf) != DK_OK;
}

int dk_fx_config(dk_train_config *c, const char *const *sets, const char *csv, const char *dir,
                 const char *run, int epochs, int steps, const char *teacher) {
    dk_train_config_defaults(c);
    int bad = 0;
    for (int i = 0; sets[i]; i++) bad |= dk_train_config_set(c, sets[i]) != DK_OK;
    bad |= setf(c, "data.cases", csv, NULL, 0);
    bad |= setf(c, "output.run_dir", dir, run, 0);
    bad |= setf(c, "train.epochs", NULL, NULL, epochs);
    bad |= setf(c, "train.steps_per_epoch", NULL, NULL, steps);
    bad |= setf(c, "model.teacher_checkpoint", teacher, NULL, 0);
    if (bad) printf("\n  config: %s\n", dk_last_error());
    return bad;
}
