/* The trainer suites' shared fixture: phantom cases on disk with their CSV rows, and tiny
 * configs (tests/train/test_trainer.c, test_trainer_errors.c). */
#ifndef DK_TRAINER_FIXTURE_H
#define DK_TRAINER_FIXTURE_H

#include <stdio.h>

#include "dakd/train.h"

/* A 2-D nx x nx phantom of `domain` (0 source, 1 target) from `seed`, written as
 * <dir>/<name>_img.nii.gz and <name>_lab.nii.gz, and its row "name,image,label,dataset,split"
 * (label empty when !with_label; dataset "src"/"tgt") in csv. bad_label puts the value 7 in
 * one label voxel. 0 on success. */
int dk_fx_write_case(FILE *csv, const char *dir, const char *name, int nx, int domain,
                     uint64_t seed, const char *split, int with_label, int bad_label);

/* Make <dk_test_tmpdir()>/<name> (its path into dir, n bytes) and open <dir>/cases.csv (its
 * path into csv, n bytes) for writing, with the header of dk_fx_write_case's rows ("case,
 * image,label,dataset,split"). NULL on failure. */
FILE *dk_fx_open_cases(char *dir, char *csv, size_t n, const char *name);

/* Defaults, then each of `sets` ("section.key=value", NULL-terminated), then data.cases =
 * csv, output.run_dir = <dir>/<run>, train.epochs, train.steps_per_epoch and
 * model.teacher_checkpoint = teacher. 0 on success; prints the error otherwise. */
int dk_fx_config(dk_train_config *c, const char *const *sets, const char *csv, const char *dir,
                 const char *run, int epochs, int steps, const char *teacher);

#endif
