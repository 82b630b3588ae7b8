/* dakd eval — score predictions against references and write the report folder, or compare
 * two earlier evaluations (dk_eval_run). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dakd/eval.h"

static const char *eval_help =
    "usage: dakd eval --pred DIR (--ref DIR | --cases CSV [--where column=value]...)\n"
    "                 [--subset pred] [--mask DIR] [--image DIR] [--labels 1,2,...]\n"
    "                 [--nsd-tol MM] [--distance-unit mm|voxels] [--overlap-only]\n"
    "                 [--title T] [--label-names FILE]\n"
    "                 --out DIR\n"
    "       dakd eval --compare RUN_A RUN_B [--title T] --out DIR\n\n"
    "Score every prediction against its reference (Dice, IoU, precision, recall,\n"
    "specificity, volume similarity, HD, HD95, ASSD, NSD; the convention is written in every\n"
    "report) and write into --out: cases.csv (one row per case and label), summary.json,\n"
    "summary.md and report.html (one self-contained page: summary, box plots, a sortable\n"
    "case table, overlays).\n\n"
    "Pairing. A file's case id is its name without the extension (.nii.gz .nii .hdr .png\n"
    ".mha .mhd .nrrd .nhdr) and without a role suffix: \"_pred\" for a prediction, \"_label\",\n"
    "\"_seg\" or \"_gt\" for a reference, \"_mask\" for a mask, \"_0000\" (any 4 digits) or\n"
    "\"_image\" for an image. A reference pairs with the prediction of the same name, else of\n"
    "the same id: case_label.nii.gz with case.nii.gz, as 'dakd predict' names it. In --ref,\n"
    "a case's image beside its reference (case_image next to case_label, as 'dakd phantom'\n"
    "writes them) is passed over; \"*_probs.*\" files in --pred are skipped. Unmatched files\n"
    "are an error that lists them (exit 2); prediction and reference must share a grid\n"
    "(exit 3 otherwise).\n\n"
    "Label values. When the references hold non-zero values no prediction holds, or the\n"
    "reverse (a 0/255 mask against predicted classes 1..3), the run says so on stderr and\n"
    "in every report (notes), naming the values.\n\n"
    "  --pred DIR        predicted label maps\n"
    "  --ref DIR         reference label maps\n"
    "  --cases CSV       references from a case list instead: the label file of each row,\n"
    "                    named by its case column (a row without a label is an error);\n"
    "                    its spacing column, when it has one, gives each case's voxel size\n"
    "                    (prediction, reference, mask) in place of the files' own\n"
    "  --where c=v       only the rows whose column c equals v; repeat to combine (all\n"
    "                    must hold, e.g. --where site=a --where split=test)\n"
    "  --subset pred     score only the references that have a prediction; the others are\n"
    "                    listed (stderr and the reports' notes) instead of being an error\n"
    "  --mask DIR        count only voxels inside these masks (nonzero = counted)\n"
    "  --image DIR       images under the overlays (default: the reference labels in grey)\n"
    "  --labels L,...    labels to score (default: every non-zero label in any reference)\n"
    "  --label-names FILE  names for the labels in summary.md, report.html, summary.json: a\n"
    "                    3D Slicer colour table (\"value name R G B A\" lines, # comments),\n"
    "                    the file 'dakd predict --label-names' takes\n"
    "  --nsd-tol MM      tolerance of the normalised surface Dice (default 1 mm; in voxels\n"
    "                    with --distance-unit voxels)\n"
    "  --distance-unit U mm (default: distances and volumes from the files' spacing) or\n"
    "                    voxels (every spacing taken as 1: distances in voxel steps, volumes\n"
    "                    in voxels, and the reports say so) for data whose voxel size is\n"
    "                    unknown (identity affines)\n"

    "  --overlap-only    skip the surface metrics (HD, HD95, ASSD, NSD are NaN)\n"
    "  --title T         report title\n"
    "  --compare A B     paired comparison of two earlier eval folders (their cases.csv),\n"
    "                    or of a study's models (RUN_DIR/EVAL_STAGE/MODEL: each case\n"
    "                    averaged over the model's seeds): differences B - A per label and\n"
    "                    metric, mean with its 95 % bootstrap interval, median and the\n"
    "                    Wilcoxon signed-rank p; writes compare.csv/.json/.md/.html\n"
    "  --out DIR         output folder, written whole or not at all; an existing folder is\n"
    "                    replaced only if it is empty or an earlier dakd eval output, and\n"
    "                    never when it is or holds an input (--pred, --ref, --cases, ...)\n";

enum { MAX_LABELS = 256 };

/* The value of option argv[*i] (advancing *i), or NULL after a usage message. */
static const char *value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        dk_cli_usage_error("eval", "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_labels(const char *s, int *labels) {
    long long v[MAX_LABELS];
    int n = dk_cli_parse_ints(s, v, MAX_LABELS);
    for (int k = 0; k < n; k++) {
        if (v[k] < 1 || v[k] > 65535) return -1;
        labels[k] = (int)v[k];
    }
    return n;
}

/* --where c=v appended to where[*n] (NULL-terminated: argc + 1 slots); 0 or -1. */
static int parse_where(const char *v, const char **where, int *n) {
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) return -1;
    where[(*n)++] = v;
    return 0;
}

/* --distance-unit: one of dk_distance_unit_names into o; 0 or -1. */
static int parse_unit(const char *v, dk_eval_opts *o) {
    for (int u = 0; dk_distance_unit_names[u]; u++)
        if (!strcmp(v, dk_distance_unit_names[u])) {
            o->metric.unit = (dk_distance_unit)u;
            return 0;
        }
    return -1;
}

/* Parse the options into o (its --where filters into where: argc + 1 slots); 0 ok, 1 usage
 * error reported, 2 help printed. */
static int parse(int argc, char **argv, dk_eval_opts *o, int *labels, const char **where) {
    int n_where = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (dk_cli_is_help(a)) {
            fputs(eval_help, stdout);
            return 2;
        }
        if (!strcmp(a, "--overlap-only")) {
            o->metric.surface = 0;
            continue;
        }
        if (!strcmp(a, "--label-names")) {
            if (!(o->label_names = value(argc, argv, &i))) return 1;
            continue;
        }
        if (!strcmp(a, "--compare")) {
            if (i + 2 >= argc) return dk_cli_usage_error("eval", "--compare needs RUN_A RUN_B");
            o->compare_a = argv[++i];
            o->compare_b = argv[++i];
            continue;
        }
        static const char *const opts[] = {"--pred", "--ref",   "--mask",  "--image",
                                           "--labels", "--nsd-tol", "--title", "--out",
                                           "--cases", "--where",   "--subset",
                                           "--distance-unit"};
        int k = 0;
        while (k < 12 && strcmp(a, opts[k])) k++;
        if (k == 12) return dk_cli_usage_error("eval", "unknown option '%s'", a);
        if (!(v = value(argc, argv, &i))) return 1;
        const char **dst[] = {&o->pred_dir, &o->ref_dir, &o->mask_dir, &o->image_dir, NULL,
                              NULL, &o->title, &o->out_dir, &o->cases_csv, NULL, NULL, NULL};
        if (dst[k]) *dst[k] = v;
        else if (k == 9 && parse_where(v, where, &n_where))
            return dk_cli_usage_error("eval", "--where: '%s' is not column=value", v);
        else if (k == 10 && strcmp(v, "pred") && strcmp(v, "all"))
            return dk_cli_usage_error("eval", "--subset: '%s' is not pred (or all)", v);
        else if (k == 10) o->subset_pred = strcmp(v, "pred") == 0;
        else if (k == 11 && parse_unit(v, o))
            return dk_cli_usage_error("eval", "--distance-unit: '%s' is not mm or voxels", v);
        else if (k == 4 && (o->n_labels = parse_labels(v, labels)) < 1)
            return dk_cli_usage_error("eval", "--labels: '%s' is not a list of labels 1..65535",
                                      v);
        else if (k == 5) {
            char *end;
            o->metric.nsd_tol_mm = strtod(v, &end);
            if (end == v || *end || !isfinite(o->metric.nsd_tol_mm) || o->metric.nsd_tol_mm < 0)
                return dk_cli_usage_error("eval", "--nsd-tol: '%s' is not a distance >= 0 mm", v);
        }
        if (k == 4) o->labels = labels;
    }
    o->where = n_where ? where : NULL;
    return 0;
}

/* The checks between the options, then the run; the exit code. */
static int run(const dk_eval_opts *o) {
    if (!o->out_dir) return dk_cli_usage_error("eval", "--out DIR is required");
    int cmp = o->compare_a != NULL;
    if (cmp && (o->pred_dir || o->ref_dir || o->cases_csv || o->mask_dir || o->image_dir ||
                o->labels || o->where || o->subset_pred))
        return dk_cli_usage_error("eval", "--compare takes no --pred/--ref/--cases/--where/"
                                  "--subset/--mask/--image/--labels");
    if (!cmp && (!o->pred_dir || !o->ref_dir == !o->cases_csv))
        return dk_cli_usage_error("eval", "--pred DIR and one of --ref DIR or --cases CSV are "
                                  "required");
    if (o->where && !o->cases_csv) return dk_cli_usage_error("eval", "--where needs --cases");
    dk_status st = dk_eval_run(o);
    if (st == DK_OK) fprintf(stderr, "dakd eval: wrote %s\n", o->out_dir);
    return dk_cli_report("eval", st);
}

int dk_cmd_eval(int argc, char **argv) {
    dk_eval_opts o;
    memset(&o, 0, sizeof o);
    dk_metric_defaults(&o.metric);
    int labels[MAX_LABELS];
    const char **where = calloc((size_t)argc + 1, sizeof *where);
    if (!where) return dk_cli_report("eval", dk_fail(DK_ERR_NOMEM, "no memory"));
    int rc = parse(argc, argv, &o, labels, where);
    rc = rc == 2 ? 0 : rc ? dk_cli_exit_code(DK_ERR_ARG) : run(&o);
    free(where);
    return rc;
}
