/*
 * Before a study writes anything: no file it reads lies where the runner writes. Inputs:
 * the study file, and each [data] cases CSV of the shared and the train stages' configs
 * with every image, label and mask it names (not the one the phantoms stage generates).
 * Outputs: run_dir itself, <run_dir>/manifest.json, and each stage's folder
 * <run_dir>/<stage>/, which the runner clears when the stage runs again.
 */
#include "study_internal.h"

#include "dakd/data.h"

#include <stdio.h>
#include <string.h>

/* DK_ERR_ARG when `in` (the input `what`) is an output of the run or lies in a stage's
 * folder. */
static dk_status check_input(const dk_study *s, const char *in, const char *what) {
    const char *run = s->set.run_dir;
    char p[STUDY_PATH_MAX];
    snprintf(p, sizeof p, "%s/manifest.json", run);
    const char *outs[2] = {run, p};
    int k = dk_same_file_any(in, outs, 2);
    if (k >= 0)
        return dk_fail(DK_ERR_ARG, "%s: [study] run_dir = %s: the run would write %s, which is "
                       "%s %s; choose another run_dir", s->path, run, outs[k], what, in);
    for (int i = 0; i < s->nstages; i++) {
        dk__study_path(p, sizeof p, s, s->stages[i].name, NULL);
        if (dk_path_within(in, p))
            return dk_fail(DK_ERR_ARG, "%s: [study] run_dir = %s: %s %s lies in %s, the folder "
                           "of stage %s, which the run clears and rewrites; choose another "
                           "run_dir or move the file", s->path, run, what, in, p,
                           s->stages[i].name);
    }
    return DK_OK;
}

/* The CSV and the files it names; a CSV that cannot be read yet is left to the stage that
 * reads it (its error names the line). */
static dk_status check_cases(const dk_study *s, const char *csv) {
    dk_status st = check_input(s, csv, "[data] cases");
    dk_case_list cl = {0};
    if (st != DK_OK || dk_cases_read(&cl, csv) != DK_OK) return st;
    for (int i = 0; i < cl.n && st == DK_OK; i++) {
        const char *files[3] = {cl.cases[i].image, cl.cases[i].label, cl.cases[i].mask};
        static const char *const what[3] = {"the image of a case in", "the label of a case in",
                                            "the mask of a case in"};
        for (int f = 0; f < 3 && st == DK_OK; f++) {
            char w[STUDY_PATH_MAX + 64];
            snprintf(w, sizeof w, "%s %s:%d", what[f], csv, cl.cases[i].line);
            if (files[f]) st = check_input(s, files[f], w);
        }
    }
    dk_cases_free(&cl);
    return st;
}

dk_status dk__study_check_outputs(const dk_study *s) {
    dk_status st = check_input(s, s->path, "the study file");
    char made[STUDY_PATH_MAX], seen[STUDY_MAX_STAGES + 1][STUDY_PATH_MAX];
    int nseen = 0;
    dk__study_path(made, sizeof made, s, "phantoms", "cases.csv");
    /* the shared config (eval stages read its cases), then each train stage's */
    for (int i = -1; i < s->nstages && st == DK_OK; i++) {
        const study_stage *g = i < 0 ? NULL : &s->stages[i];
        if (g && g->f.kind != STAGE_TRAIN) continue;
        dk_train_config c;
        if (dk__study_train_config(&c, s, g) != DK_OK) continue; /* the stage reports it */
        int dup = s->has_phantoms && strcmp(c.cases, made) == 0;
        for (int j = 0; j < nseen && !dup; j++) dup = strcmp(seen[j], c.cases) == 0;
        if (dup) continue;
        if (nseen < STUDY_MAX_STAGES + 1) snprintf(seen[nseen++], STUDY_PATH_MAX, "%s", c.cases);
        st = check_cases(s, c.cases);
    }
    if (st == DK_OK) dk_clear_error(); /* a config that failed here fails again later */
    return st;
}
