/*
 * What the libFuzzer harnesses of tests/fuzz share. Each harness feeds one reader of a
 * user's file the way the command-line tool reaches it: the input bytes are written to a
 * file with the name the reader needs (a .nii.gz, a .hdr/.img pair, a folder of two DICOM
 * files) in a private temporary folder, then read through the public entry point, and what
 * was read is used as `dakd info` uses it.
 *
 * Inputs of the harnesses that make two files, or choose among file kinds, start with a
 * small prefix (fz_take_mode, fz_split): byte 0 picks the kind, bytes 1-2 (little-endian)
 * give the length of the first file; tests/fuzz/make_corpus.sh writes the seeds so.
 *
 * A failure of the harness's own environment (no temporary folder, a full disk) aborts:
 * it is not a finding, but it must not pass silently either.
 */
#ifndef DAKD_FUZZ_UTIL_H
#define DAKD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dakd/train.h"
#include "dakd/volume.h"

/* The input's leading mode byte modulo `modes` (0 for an empty input); advances past it. */
int fz_take_mode(const uint8_t **data, size_t *n, int modes);

/* Split the input at the 16-bit little-endian length that starts it (clamped to what is
 * there): *a gets that many bytes, *b the rest. */
void fz_split(const uint8_t *data, size_t n, const uint8_t **a, size_t *na, const uint8_t **b,
              size_t *nb);

/* Start an input: once per process, silence dakd's log and use one thread; then empty the
 * work folder. Returns the work folder (a fresh, empty directory). */
const char *fz_begin(void);

/* The process's own temporary folder (the parent of the work folder), for fixtures that
 * stay from one input to the next. */
const char *fz_root(void);

/* Split the input as fz_split says and write the parts to <work folder>/<first> and
 * <second>; returns the first's path. */
const char *fz_write_pair(const char *first, const char *second, const uint8_t *data, size_t n);

/* dk_volume_read_header, then dk_volume_read of `path`, each volume read used
 * (fz_use_volume) and freed. */
void fz_read_volume(const char *path);

/* Write n bytes to <work folder>/<name> (name may hold sub-folders, made on demand);
 * returns the path (a static buffer per call site is not needed: the string lives until
 * the next fz_begin). */
const char *fz_write(const char *name, const void *data, size_t n);

/* The path <work folder>/<name> without writing anything (valid until the next fz_begin). */
const char *fz_path(const char *name);

/* Use a volume as `dakd info` does: label statistics, the NIfTI affine, the orientation
 * code, and every voxel through dk_volume_get (so a buffer shorter than its header says is
 * an AddressSanitizer report). */
void fz_use_volume(const dk_volume *v);

/* The DICOM harnesses: GDCM's work in this process (dk_dcm_set_in_process), so that an
 * abort or a memory error in it, which dakd turns into an error naming the file, reaches
 * the fuzzer, and dakd's code that runs there counts as coverage; DAKD_FUZZ_DICOM_CHILD=1
 * keeps the product's child process instead. */
void fz_dicom_setup(void);

/* The effective config's reload identity (dakd/core.h, dk_cfg_write): write `c` as the
 * trainer writes <run_dir>/config.ini, load that file into a defaulted config, and compare
 * every field of the table as it is written (doubles in their shortest exact form); abort
 * naming the first field that differs, or when the written file does not load. */
void fz_config_round_trip(const dk_train_config *c);

/* Abort with a message when `ok` is false (the fuzzer then saves the input). */
void fz_check(int ok, const char *what);

#endif
