/* dakd cases — a case list (CSV) from a dataset's folders, every row checked first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dakd/eval.h"

static const char *cases_help =
    "usage: dakd cases DATASET_DIR --out CASES.csv [options]\n"
    "       dakd cases --images DIR [--labels DIR] --out CASES.csv [options]\n\n"
    "Write the case list that train, distill, predict, eval and run read, from the folders\n"
    "you have, after reading every file of every case:\n"
    "  nnU-Net v2 raw dataset  DIR/imagesTr/CASE_0000.nii.gz (one file per channel, _0000,\n"
    "                          _0001, ...), DIR/labelsTr/CASE.nii.gz, optional DIR/imagesTs\n"
    "                          (unlabelled; DIR/labelsTs when present); dataset.json gives\n"
    "                          channel_names, labels (the classes) and file_ending\n"
    "  Decathlon task          DIR/dataset.json with \"training\": [{\"image\", \"label\"}],\n"
    "                          \"test\": [...], \"labels\", \"modality\"\n"
    "  DICOM studies           DIR/<case>/ one image series per sub-folder (--labels DIR of\n"
    "                          label files named <case>, <case>_label, _seg or _gt)\n"
    "  plain folders           --images DIR [--labels DIR], paired by name as dakd eval pairs:\n"
    "                          an image's id drops _0000 (any 4 digits) or _image, a label's\n"
    "                          _label, _seg or _gt; same name first, then name and id, then\n"
    "                          ids. Without --labels every row is unlabelled (a target domain).\n"
    "The layout is found from DATASET_DIR (dataset.json with \"training\": Decathlon;\n"
    "imagesTr/: nnU-Net; else DICOM) unless --layout names it; the rule used is printed.\n\n"
    "Columns: case, image, then image_1, image_2, ... when a case has several channel files\n"
    "(CASE_0000, CASE_0001, ...: stacked as channels in that order; a Decathlon 4-D image's\n"
    "volumes are its channels), label (when any case has one; empty for unlabelled cases),\n"
    "domain and split (nnU-Net and Decathlon rows get split train / test unless told\n"
    "otherwise).\n"
    "Paths are relative to the CSV's folder when the files lie below it, else absolute.\n\n"
    "Checks, all of them, one line per problem naming the file: names that fit no case\n"
    "(unmatched files, a missing channel), files that cannot be read, channel, image and\n"
    "label grids that differ, a channel count unlike dataset.json's or the first case's,\n"
    "label values that are not integers or not in 0..classes-1 (0/255 masks: map them with\n"
    "[data] label_map = 255:1). With any problem nothing is written and the exit code is\n"
    "that of the first (2 files, 3 contents, 4 unsupported).\n\n"
    "  --out CSV              the case list to write; an existing file needs --force, and it\n"
    "                         may never be one of the inputs\n"
    "  --force                replace an existing --out\n"
    "  --layout NAME          nnunet, msd, dicom or folders (default: found)\n"
    "  --images DIR           plain folder of images (the folders layout)\n"
    "  --labels DIR           their label maps (folders, DICOM)\n"
    "  --classes N            label values 0..N-1 (default: dataset.json's labels; without\n"
    "                         either, any value but 255, and the classes found are printed)\n"
    "  --domain NAME          domain column, NAME on every row\n"
    "  --domain-pattern RE    domain column from a POSIX extended regular expression over the\n"
    "                         path of a case's first image relative to DATASET_DIR (or\n"
    "                         --images; a DICOM case's folder name): its first (group), or the\n"
    "                         whole match. '^images(Tr|Ts)' gives Tr / Ts; '^(site[A-Z])_'\n"
    "                         gives siteA from siteA_001.nii.gz. A row it misses is a problem.\n"
    "  --split NAME           split column, NAME on every row\n"
    "  --split-pattern RE     split column from a pattern, as --domain-pattern\n";

typedef struct {
    dk_import_opts o;
    int force;
    int layout_bad;
} cases_args;

static int parse_flag(void *ctx, const char *k) {
    if (strcmp(k, "--force") != 0) return 0;
    ((cases_args *)ctx)->force = 1;
    return 1;
}

static int parse_value(void *ctx, const char *k, const char *v) {
    dk_import_opts *o = &((cases_args *)ctx)->o;
    if (!strcmp(k, "--out")) o->out = v;
    else if (!strcmp(k, "--images")) o->images = v;
    else if (!strcmp(k, "--labels")) o->labels = v;
    else if (!strcmp(k, "--domain")) o->domain = v;
    else if (!strcmp(k, "--domain-pattern")) o->domain_pattern = v;
    else if (!strcmp(k, "--split")) o->split = v;
    else if (!strcmp(k, "--split-pattern")) o->split_pattern = v;
    else if (!strcmp(k, "--layout")) {
        int l = dk_layout_parse(v);
        if (l < 0) return -1;
        o->layout = (dk_layout)l;
    } else if (!strcmp(k, "--classes")) {
        long long n;
        if (dk_cli_parse_ints(v, &n, 1) != 1 || n < 2 || n > 255) return -1;
        o->classes = (int)n;
    } else
        return -2;
    return 0;
}

static int check_args(const char *cmd, const cases_args *a, int n_inputs) {
    const dk_import_opts *o = &a->o;
    if (!o->out) return dk_cli_usage_error(cmd, "--out CASES.csv is required");
    if (n_inputs > 1) return dk_cli_usage_error(cmd, "one DATASET_DIR (%d given)", n_inputs);
    if (!o->images == !o->root)
        return dk_cli_usage_error(cmd, "give DATASET_DIR or --images DIR (one of them)");
    if (o->domain && o->domain_pattern)
        return dk_cli_usage_error(cmd, "--domain and --domain-pattern exclude each other");
    if (o->split && o->split_pattern)
        return dk_cli_usage_error(cmd, "--split and --split-pattern exclude each other");
    struct stat sb;
    if (!a->force && stat(o->out, &sb) == 0)
        return dk_cli_usage_error(cmd, "%s exists (--force replaces it)", o->out);
    return 0;
}

int dk_cmd_cases(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (dk_cli_is_help(argv[i])) {
            fputs(cases_help, stdout);
            return 0;
        }
    cases_args a = {0};
    const char **in = calloc((size_t)argc + 1, sizeof *in);
    if (!in) return dk_cli_report(argv[0], dk_fail(DK_ERR_NOMEM, "no memory"));
    dk_cli_options opt = {&a, parse_flag, parse_value, in, 0};
    int rc = dk_cli_parse_options(argc, argv, &opt);
    if (rc == 0 && opt.n_inputs == 1) a.o.root = in[0];
    if (rc == 0) rc = check_args(argv[0], &a, opt.n_inputs);
    if (rc == 0) {
        dk_import_result r;
        dk_status st = dk_cases_import(&r, &a.o);
        if (r.rule[0]) fprintf(stderr, "cases: %s layout: %s\n", dk_layout_name(r.layout), r.rule);
        for (int i = 0; i < r.n_problems; i++) fprintf(stderr, "  %s\n", r.problems[i]);
        if (st == DK_OK) {
            printf("cases: %s: %d cases (%d labelled, %d unlabelled), %d channel%s\n", a.o.out,
                   r.n_cases, r.n_labelled, r.n_cases - r.n_labelled, r.channels,
                   r.channels == 1 ? "" : "s");
            if (r.n_labelled)
                printf("cases: label values fit %d classes%s: [data] classes = %d\n", r.classes,
                       r.classes_found ? " (the largest value found + 1)" : "", r.classes);
        }
        rc = dk_cli_report(argv[0], st);
        dk_import_result_free(&r);
    }
    free(in);
    return rc;
}
