/*
 * dice — Dice per label between a predicted and a reference label map, with dakd as a
 * library.
 *
 *   dice PREDICTION REFERENCE
 *
 * Reads both files with dk_volume_read (NIfTI, or any format dakd reads), scores every
 * non-zero label of the reference with dk_eval_case — the function behind `dakd eval`, under
 * the metric convention stated in <dakd/eval.h> — and prints one line per label:
 *
 *   label 1  dice 0.912345  tp 1234  fp 56  fn 78
 *
 * Overlap metrics only here (opts.surface = 0); set it to 1 for HD, HD95, ASSD and NSD.
 */
#include <stdio.h>
#include <stdlib.h>

#include <dakd/eval.h>
#include <dakd/volume.h>

enum { MAX_LABEL = 65535 };

/* The non-zero labels present in `ref`, ascending, into labels[]; returns their count. */
static int labels_present(int *labels, const dk_volume *ref) {
    static unsigned char seen[MAX_LABEL + 1];
    for (int64_t i = 0; i < dk_volume_numel(ref); i++) {
        double v = dk_volume_get(ref, i);
        if (v >= 1 && v <= MAX_LABEL) seen[(int)v] = 1;
    }
    int n = 0;
    for (int l = 1; l <= MAX_LABEL; l++)
        if (seen[l]) labels[n++] = l;
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: dice PREDICTION REFERENCE\n");
        return 2;
    }
    dk_volume pred = {0}, ref = {0};
    int *labels = malloc(sizeof(int) * MAX_LABEL);
    dk_label_metrics *m = malloc(sizeof *m * MAX_LABEL);
    int rc = 1;
    if (!labels || !m) {
        fprintf(stderr, "dice: out of memory\n");
        goto out;
    }
    /* A library call returns a dk_status; dk_last_error() holds its message. */
    if (dk_volume_read(&pred, argv[1]) != DK_OK || dk_volume_read(&ref, argv[2]) != DK_OK) {
        fprintf(stderr, "dice: %s\n", dk_last_error());
        goto out;
    }
    int n = labels_present(labels, &ref);
    dk_metric_opts opts;
    dk_metric_defaults(&opts);
    opts.surface = 0;
    /* Refuses different grids and non-integer voxels, naming the file. */
    if (dk_eval_case(m, &pred, argv[1], &ref, argv[2], NULL, labels, n, &opts) != DK_OK) {
        fprintf(stderr, "dice: %s\n", dk_last_error());
        goto out;
    }
    for (int k = 0; k < n; k++)
        printf("label %d  dice %.6f  tp %lld  fp %lld  fn %lld\n", m[k].label, m[k].dice,
               (long long)m[k].tp, (long long)m[k].fp, (long long)m[k].fn);
    rc = 0;
out:
    dk_volume_free(&pred);
    dk_volume_free(&ref);
    free(labels);
    free(m);
    return rc;
}
