/* Distillation-step overhead (trainer issue: "everything beyond teacher forward + student
 * forward/backward adds <= 15 %"). Writes 2-D phantoms (128^2; 4 source, 4 target cases) as
 * NIfTI with a cases CSV in a scratch folder, saves a randomly initialised teacher (base 16,
 * 4 levels), then runs the trainer in distill mode (student base 8, 4 levels, batch 8) with
 * the full method on: KD, AT, MMD alignment, entropy, dynamic weights, EMA, clipping, hints.
 * The step breakdown is the trainer's own (dk_trainer_get_stats), averaged over the steps:
 *   overhead = (step - data - teacher fwd - student fwd - student bwd) / (teacher fwd +
 *              student fwd + student bwd)
 * counts the losses, the EMA student's forward, clipping, both optimiser updates and the
 * EMA update as overhead (conservative); data preparation (batch sampling, augmentation)
 * is reported separately, and the overhead including it too.
 *   bench_distill [--steps N] [--threads T] [--dir DIR]
 * (defaults 20, 1, $TMPDIR/dakd_bench_distill, overwritten by each run). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dakd/data.h"
#include "dakd/nn.h"
#include "dakd/train.h"

static char dir[900], csv[1000], teacher[1000];

static int write_cases(void) {
    snprintf(csv, sizeof csv, "%s/cases.csv", dir);
    FILE *f = fopen(csv, "w");
    if (!f) return -1;
    fprintf(f, "case,image,label,dataset\n");
    int rc = 0;
    for (int i = 0; i < 8 && rc == 0; i++) {
        dk_volume img = {0}, lab = {0};
        dk_phantom_opts po = {128, 128, 1, {1, 1, 1}, i >= 4};
        dk_rng r;
        dk_rng_seed(&r, 500 + (uint64_t)i);
        char ip[1100], lp[1100];
        snprintf(ip, sizeof ip, "%s/c%d_img.nii.gz", dir, i);
        snprintf(lp, sizeof lp, "%s/c%d_lab.nii.gz", dir, i);
        rc = dk_phantom_generate(&img, &lab, &po, &r) != DK_OK ||
             dk_volume_write(&img, ip, NULL) != DK_OK || dk_volume_write(&lab, lp, NULL) != DK_OK;
        if (i < 4) fprintf(f, "c%d,c%d_img.nii.gz,c%d_lab.nii.gz,src\n", i, i, i);
        else fprintf(f, "c%d,c%d_img.nii.gz,,tgt\n", i, i);
        dk_volume_free(&img);
        dk_volume_free(&lab);
    }
    fclose(f);
    return rc ? -1 : 0;
}

/* A teacher file of the [model] teacher_* shape (random weights: timing only). */
static int write_teacher(const dk_train_config *c) {
    dk_unet *m = NULL;
    dk_rng r;
    dk_rng_seed(&r, 9);
    snprintf(teacher, sizeof teacher, "%s/teacher.safetensors", dir);
    int rc = dk_unet_create(&m, &c->teacher, 0, &r) != DK_OK ||
             dk_unet_save(m, teacher, NULL) != DK_OK;
    dk_unet_free(m);
    return rc ? -1 : 0;
}

/* One formatted --set assignment; 1 on failure. */
static int setf(dk_train_config *c, const char *fmt, ...) {
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return dk_train_config_set(c, buf) != DK_OK;
}

static int configure(dk_train_config *c, int steps, int threads) {
    const char *sets[] = {
        "data.domain_column=dataset", "data.source=src", "data.target=tgt", "data.split_column=",
        "data.patch_h=128", "data.patch_w=128", "data.batch_size=8", "data.classes=4",
        "model.teacher_base=16", "model.teacher_levels=4", "model.student_base=8",
        "model.student_levels=4", "train.lr=0.01", "train.momentum=0.9", "train.clip_norm=1",
        "train.validate_every=0", "train.checkpoint_every=0", "distill.align=mmd",
        "distill.lambda_align=0.1", "distill.align_tap=bottleneck", "distill.lambda_at=1",
        "distill.lambda_ent=0.01", "distill.dynamic_weights=true", "distill.ema=true",
        "distill.lambda_hint=0.5", "distill.hint_tap=bottleneck", NULL};
    int bad = 0;
    dk_train_config_defaults(c);
    for (int i = 0; sets[i]; i++) bad |= dk_train_config_set(c, sets[i]) != DK_OK;
    bad |= setf(c, "data.cases=%s", csv) | setf(c, "output.run_dir=%s/run", dir);
    bad |= setf(c, "train.steps_per_epoch=%d", steps) | setf(c, "train.epochs=1");
    bad |= setf(c, "train.threads=%d", threads);
    return bad || dk_train_config_validate(c) != DK_OK ? -1 : 0;
}

static void report(const dk_trainer_stats *s, int threads) {
    double k = 1000.0 / (double)s->steps;
    double nets = s->sec_teacher + s->sec_student_fwd + s->sec_student_bwd;
    double rest = s->sec_step - s->sec_data - nets - s->sec_ema - s->sec_loss;
    double over = s->sec_step - s->sec_data - nets;
    printf("distill step, 2-D 8 x 128^2, teacher base 16 / student base 8 (4 levels), "
           "%d thread(s), mean of %lld steps\n\n", threads, (long long)s->steps);
    printf("| part | ms/step |\n|---|---|\n");
    printf("| teacher fwd | %.1f |\n| student fwd | %.1f |\n| student bwd | %.1f |\n",
           s->sec_teacher * k, s->sec_student_fwd * k, s->sec_student_bwd * k);
    printf("| EMA student fwd (overhead) | %.1f |\n", s->sec_ema * k);
    printf("| losses (KD, sup, AT, hint, MMD, entropy, dyn. weights) | %.1f |\n",
           s->sec_loss * k);
    printf("| clipping + optimisers (student, adapter) + EMA update | %.1f |\n", rest * k);
    printf("| data (sampling + augmentation) | %.1f |\n| total step | %.1f |\n\n",
           s->sec_data * k, s->sec_step * k);
    printf("overhead beyond teacher fwd + student fwd/bwd: %.1f %% without data, %.1f %% with "
           "data\n", 100 * over / nets, 100 * (over + s->sec_data) / nets);
}

int main(int argc, char **argv) {
    dk_blas_restart_if_needed(argv);
    int steps = 20, threads = 1;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/dakd_bench_distill", tmp && *tmp ? tmp : "/tmp");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) snprintf(dir, sizeof dir, "%s", argv[i + 1]);
    }
    if (steps < 1 || steps > 10000) steps = 20;
    if (threads < 1) threads = 1;
    mkdir(dir, 0777);
    dk_train_config c;
    dk_trainer *t = NULL;
    dk_trainer_opts o = {DK_TRAINER_DISTILL, 0, 0, NULL};
    dk_status st = write_cases() == 0 && configure(&c, steps, threads) == 0 &&
                           write_teacher(&c) == 0
                       ? DK_OK
                       : DK_ERR_IO;
    if (st == DK_OK && setf(&c, "model.teacher_checkpoint=%s", teacher))
        st = DK_ERR_ARG;
    if (st == DK_OK) st = dk_trainer_create(&t, &c, &o);
    if (st == DK_OK) st = dk_trainer_run(t);
    if (st != DK_OK) {
        fprintf(stderr, "bench_distill: %s\n", dk_last_error());
        dk_trainer_free(t);
        return 1;
    }
    report(dk_trainer_get_stats(t), threads);
    dk_trainer_free(t);
    return 0;
}
