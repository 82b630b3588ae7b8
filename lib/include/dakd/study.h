/*
 * dakd/study.h — the study runner behind `dakd run STUDY.ini`.
 *
 * What it does: reads a study file (data, networks, training settings, stages), runs its
 * stages in order into one run directory, skips a stage whose key is unchanged, resumes a
 * killed training stage from its checkpoint, and records everything needed to repeat the
 * study in <run_dir>/manifest.json. What it does not: no training, prediction or metric
 * of its own — it calls the trainer (train.h), dk_predict_run / dk_eval_run / dk_eval_case
 * (eval.h) and the phantom generator (data.h).
 *
 * ============================================================ the study file
 *
 * An INI file read through inih like every dakd config (lines <= 197 characters; an unknown
 * section or key, a duplicate key or a bad value is DK_ERR_ARG "<file>:<line>: ...").
 * Relative paths are relative to the current directory, as for `dakd train`.
 *
 *   [study]     name, run_dir, seed (every stage's train.seed without seeds), seeds = 42, 7,
 *               3 (see "seeds" below), baseline = <train or adapt stage> (the table's
 *               paired comparison), threads (train.threads and
 *               dk_set_threads; 0 = all cores), jobs = 1 to 64 (stages at once, each in a
 *               child process; "jobs" below), stages = a, b, c (the order they run in;
 *               empty or absent: "phantoms" when [phantoms] exists, then every
 *               [stage.NAME] in the order its section first appears)
 *   [phantoms]  optional generated data: the stage named "phantoms" writes
 *               <run_dir>/phantoms/cases.csv (columns case,image,label,domain,split) and
 *               NIfTI cases: dims = 2|3, size = X,Y[,Z], spacing = X,Y,Z, seed, and cases
 *               per domain and split source_train, source_val, source_test, target_train,
 *               target_val, target_test. With it the [data] defaults become: cases = that
 *               CSV, domain_column = domain, source = source, target = target,
 *               split_column = split, train/val splits train/val, target_split = train,
 *               classes = 4, patch = the phantom size, [model] dims = dims.
 *   [data] [model] [train] [distill] [augment]
 *               shared defaults: any key of dk_train_config (dakd train --help) that every
 *               training stage inherits. [output] is not allowed: the runner sets run_dir.
 *   [stage.NAME] one per stage (NAME: a-z, 0-9, _; at most 31 characters; "phantoms" is
 *               reserved). kind = train | eval | report | adapt (default train).
 *     train:  mode = teacher | student | oracle | distill; teacher = <train stage>[, <more
 *             train stages>] (distill only: the first one's model becomes
 *             model.teacher_checkpoint, the others' distill.extra_teachers; a study file
 *             may not set those two keys itself); label = the row's name in
 *             the table; model_file = best | final (the file later stages use: best =
 *             best.safetensors, chosen on SOURCE validation, when it exists, else
 *             model.safetensors); seeds = this stage's own seeds (train and adapt); any
 *             "section.key = value" line is an override passed to dk_train_config_set after
 *             the shared defaults.
 *     adapt:  model = <train stage>; domain, split = the cases whose images re-estimate that
 *             stage's model's batch-norm statistics (AdaBN: dk_adapt_run with the [data]
 *             batch_size, centre_in_mask and seed of the model's stage; labels are never
 *             read); label. Writes <stage>/model.safetensors, which eval stages use as they
 *             use a train stage's model ("source only + AdaBN" beside the methods).
 *     eval:   models = train or adapt stages; domain = a value of [data] domain_column; split = a
 *             value of split_column ("" = any); use_mask = true (score inside the cases'
 *             mask / fov column) | false; overlap, gaussian, tta_flips, largest_cc, batch =
 *             the sliding-window options (dk_infer_opts). Writes per model
 *             <stage>/<model>/pred/ (dk_predict_run) and <stage>/<model>/report/
 *             (dk_eval_run: cases.csv, summary.json/.md, report.html).
 *     report: evals = eval stages (default: every eval stage before it); title. Writes
 *             <stage>/report.md, report.json, report.html: one row per train or adapt
 *             stage (Dice mean ± std and HD95 per eval set, parameters, inference ms per
 *             image, stage wall time; over seeds and paired with a seeds list or baseline,
 *             below) and the wall time of every stage.
 *   A stage's dependencies (phantoms; the teacher; an adapt stage's model; the models; the
 *   evals) must come before it in [study] stages; a cycle or an unknown stage is an error
 *   naming file and line. A [stage.NAME] that stages does not list is not run (a warning
 *   through dk_log).
 *
 * ============================================================ seeds
 *
 * [study] seeds = 42, 7, 3 (1 to 16 distinct integers; a stage's own seeds wins) makes each
 * train and adapt stage one run per seed in <run_dir>/<stage>/seed<N>/ (train.seed = N):
 * each run has its own key, stage.json, resume and skipping, as a stage has below. A run at
 * seed s uses a dependency's run at seed s, or the dependency's only run when it has one
 * seed; anything else is DK_ERR_ARG "<file>:<line>: [stage.X] at seed s: ...". Eval stages
 * score every run: <stage>/<model>/seed<N>/pred/ and report/, and record per case the Dice
 * and HD95 (stage.json "case_ids", models."<model>/seed<N>".case_dice, case_hd95). Without
 * any seeds key every stage is one run in <run_dir>/<stage>/ with the keys it always had.
 * dk_study_stage_count counts runs; dk_study_stage_name gives the stage's name for each.
 *
 * The table with a seeds list or a baseline (study_stats.c; report.md, .json, .html): per
 * model and eval set the mean over seeds of the case-mean Dice with a 95 % percentile
 * bootstrap interval over cases and seeds (dk_bootstrap_mean_ci, 10 000 resamples, fixed
 * RNG seed), the mean over seeds of the case-mean HD95, and against the baseline the paired
 * difference over cases (each case's Dice averaged over seeds first) with its 95 %
 * bootstrap interval over cases, the two-sided Wilcoxon signed-rank p (dk_wilcoxon,
 * scipy.stats.wilcoxon's defaults) and "not resolved" when the interval holds 0.
 * report.html opens with a forest plot (inline SVG) of those differences, then the table,
 * then learning curves per train stage from its runs' steps.jsonl.
 *
 * ============================================================ jobs
 *
 * [study] jobs = N > 1 runs up to N stages at once, each in a forked child process
 * (study_jobs.c): a stage starts when its dependencies have finished (a report stage when
 * every stage before it has, and no stage after it starts before it has); stages waiting
 * for a slot start in [study] stages order. A child's stdout and stderr go to
 * <stage>/run.log; `out` gets "[k/N] <stage>: running (...) — log: <path>" when it starts
 * and "[k/N] <stage>: done in X s" when it has ended. No key holds jobs and the results do
 * not depend on it (threads is what changes bits): threads = 1, jobs = 2 keeps both cores
 * of a 2-core machine busy with two single-threaded trainings. A failure stops new starts;
 * the running stages finish, then dk_study_run returns the first failure, naming the stage,
 * its log and the log's last line. For the run SIGINT and SIGTERM are caught (unless
 * ignored) and passed on to the children; once they have ended dk_study_run returns
 * DK_ERR_IO (a killed training stage resumes from its last checkpoint on the next run).
 * Each child is forked from the caller: a caller that has run an OpenMP region with more
 * than one thread must not use jobs > 1 (GNU libgomp's children hang). stop_after_steps
 * runs one stage at a time.
 *
 * Under mpirun -np N (dakd/dist.h; study_ranks.c) every rank calls dk_study_run on the same
 * study: rank 0 schedules as with jobs, one stage at a time per rank (jobs is not used), its
 * own stages in a child process; the other ranks run theirs in their own process and return
 * when rank 0 says the study is over. Results equal a serial run's with the same threads.
 * [stage.NAME] ranks = K > 1 trains that stage data-parallel over K ranks other than rank 0
 * (its key holds ranks=K); dk_study_run refuses it when the job has fewer than K + 1 ranks.
 *
 * ============================================================ keys, skipping, resuming
 *
 * key = SHA-256 (OpenSSL libcrypto) over: dakd's version string, the stage's kind and
 * options, its effective training config (every key of dk_train_config except the paths
 * the runner sets: data.cases, model.teacher_checkpoint, output.run_dir — their CONTENT is
 * hashed instead), the keys of its dependencies, and the SHA-256 of its input files (the
 * cases CSV and every image, label and mask it names, except the labels of the target rows
 * for a train stage other than the oracle and for an adapt stage: those stages never read
 * them). <run_dir>/<stage>/stage.json (key,
 * outputs, results, seconds) is written LAST, atomically. On a later run:
 *   - stage.json holds the same key, and no dependency ran in this run  → skipped
 *     ("up to date"), its recorded results are reused;
 *   - otherwise the stage runs (its old stage.json is removed first), and so does every
 *     stage that depends on it (even when its key is unchanged);
 *   - --from STAGE runs STAGE and every stage after it in [study] stages, from scratch.
 * A stage that runs starts from an empty folder (kept only for a resume, below); the runner
 * marks the folders it makes with <stage>/.dakd-stage and refuses (DK_ERR_IO) to clear a
 * non-empty folder without that mark.
 * A training stage writes <stage>/stage.key before it trains; when that key still matches
 * and <stage>/checkpoint.safetensors exists (a killed run), it resumes from the checkpoint
 * (the trainer's resume ends with the same weights as an uninterrupted run), except under
 * --from; without a checkpoint (killed before its first) it starts from an empty folder.
 * A pending dk_interrupt_request (dakd/core.h) stops the run: a training stage writes its
 * checkpoint before its next step (no stage.json), another stage finishes; no later stage
 * starts and dk_study_run returns DK_OK (the caller reads dk_interrupt_pending).
 *
 * Before anything is written, dk_study_run refuses (DK_ERR_ARG, naming both) a study whose
 * inputs — the study file, each [data] cases CSV of the shared and train stages' configs
 * and every image, label and mask it names (not the CSV the phantoms stage generates) —
 * are run_dir or <run_dir>/manifest.json or lie in a stage's folder <run_dir>/<stage>/
 * (which a rerun clears). It then holds <run_dir>/.dakd.lock (dk_dir_lock_take) until
 * dk_study_free: a second run on the same run_dir is refused naming the holder's pid. A
 * training stage's trainer locks its own <run_dir>/<stage>/ folder, never run_dir.
 *
 * <run_dir>/manifest.json is rewritten (atomically) after every stage: dakd version and
 * git commit, library versions (OpenBLAS kernel and config, ITK, nifticlib, libpng, zlib,
 * cJSON, inih, OpenSSL), the machine (uname, CPU model, cores, memory, threads), the study
 * file and its SHA-256, seed, threads, jobs, and per stage: kind, key, status (ran / up to date /
 * pending), seconds, effective config, and the SHA-256 of every input file.
 *
 * Determinism: the same study file, seed and thread count give the same model files and
 * numbers (the trainer and prediction are deterministic for a fixed thread count).
 */
#ifndef DAKD_STUDY_H
#define DAKD_STUDY_H

#include "dakd/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_study dk_study;

/* Read and check a study file. `sets` (NULL-terminated, may be NULL) are overrides
 * "section.key=value" of [study], [phantoms] or the shared sections, applied after the
 * file. On failure *out is NULL: DK_ERR_IO (unreadable), DK_ERR_ARG "<file>:<line>: ..."
 * (syntax, unknown section/key, bad value, unknown stage, cycle, order). */
dk_status dk_study_load(dk_study **out, const char *path, const char *const *sets);
void dk_study_free(dk_study *s); /* accepts NULL */

typedef struct {
    const char *from; /* run this stage and every later one from scratch; NULL = none */
    FILE *out;        /* stage lines and the final table; NULL = silent */
    int64_t stop_after_steps; /* > 0: a training stage that runs stops after this many
                               * steps, as if killed: no stage.json, and the study stops
                               * there (dk_study_run returns DK_OK). For tests of resuming. */
} dk_study_opts;

/* Run the stages (see above). DK_ERR_ARG for an unknown --from stage; otherwise the
 * status of the first stage that fails (its stage.json is not written; manifest.json
 * records the stages before it). */
dk_status dk_study_run(dk_study *s, const dk_study_opts *o);

/* After dk_study_load: the number of stages, their names (borrowed) and run_dir. */
int dk_study_stage_count(const dk_study *s);
const char *dk_study_stage_name(const dk_study *s, int i);
const char *dk_study_run_dir(const dk_study *s);
/* After dk_study_run: 1 when stage i ran in that call, 0 when it was up to date (or the
 * run stopped before it). */
int dk_study_stage_ran(const dk_study *s, int i);
/* Path of the report stage's report.html ("" when the study has no report stage). */
const char *dk_study_report_path(const dk_study *s);

/* SHA-256 of a file as 64 lower-case hex digits into hex (caller's). DK_ERR_IO naming the
 * file. Thread-safe: no shared state. */
dk_status dk_sha256_file(char hex[65], const char *path);

#ifdef __cplusplus
}
#endif
#endif
