/* The study runner's shared structs (lib/study): parsed file, stages, run state. */
#ifndef DAKD_STUDY_INTERNAL_H
#define DAKD_STUDY_INTERNAL_H

#include "dakd/eval.h"
#include "dakd/study.h"
#include "dakd/train.h"

#include <cJSON.h>

enum {
    STUDY_PATH_MAX = 1024,
    STUDY_NAME_MAX = 32,
    STUDY_MAX_STAGES = 64,  /* [stage.NAME] sections a study runs */
    STUDY_MAX_SEEDS = 16,   /* seeds of one stage */
    STUDY_MAX_RUNS = 512,   /* stages after each seeded stage became one run per seed */
    STUDY_MAX_DEPS = STUDY_MAX_RUNS
};

typedef enum {
    STAGE_TRAIN = 0,
    STAGE_EVAL = 1,
    STAGE_REPORT = 2,
    STAGE_ADAPT = 3,
    STAGE_PHANTOMS = 4
} stage_kind;
/* "train", "eval", "report", "adapt", "phantoms": the one spelling of each (study_parse.c). */
const char *dk__study_kind_name(int kind);
typedef enum { FILE_BEST = 0, FILE_FINAL = 1 } model_file_kind;

/* One "section.key=value" assignment and the line it came from (0 = --set). */
typedef struct {
    char *text;
    int line;
} study_set;

/* The typed fields of a [stage.NAME] section (table in study_parse.c, section "stage"). */
typedef struct {
    int kind;             /* stage_kind (train, eval, report) */
    int mode;             /* dk_trainer_mode order: teacher, student, oracle, distill */
    char teacher[512];    /* distill: comma-separated train stages, the first one's model the
                           * teacher_checkpoint, the others' the extra_teachers */
    char model[STUDY_NAME_MAX]; /* adapt: the train stage whose model it adapts */
    char label[128];
    int model_file;       /* model_file_kind */
    char models[512];     /* eval: comma-separated train stages */
    char domain[64], split[64]; /* eval, adapt: the cases */
    int use_mask;
    double overlap;
    int gaussian, tta_flips, largest_cc, batch;
    int distance_unit;    /* eval: dk_distance_unit of its reports and of the table's HD95 */
    char evals[512];      /* report: comma-separated eval stages */
    char title[128];
    char seeds[256];      /* train, adapt: this stage's seeds (default: [study] seeds) */
    int ranks;            /* train under mpirun: data-parallel over this many ranks */
} stage_fields;

typedef struct {
    char name[STUDY_NAME_MAX];
    char dir[STUDY_NAME_MAX + 32]; /* its folder under run_dir: name, or name/seedN when the
                                    * study or the stage has a seeds list */
    int64_t seed;         /* train.seed of this run (a train or adapt stage) */
    int seeded;           /* one of the runs of a seeds list (dir is name/seedN) */
    stage_fields f;
    int defined;          /* a [stage.NAME] section exists (or the built-in phantoms) */
    int line;             /* first line of its section (its first key) */
    int teacher_line, models_line, evals_line, model_line, seeds_line;
    study_set *sets;      /* overrides of dk_train_config, in file order */
    int nsets;
    int deps[STUDY_MAX_DEPS];
    int ndeps;
    /* run state */
    char key[65];
    int ran;              /* ran in this call */
    double seconds;       /* wall time of the run that produced its outputs */
    cJSON *record;        /* stage.json of the current outputs (owned), or NULL */
    cJSON *inputs;        /* {path: sha256} of its input files (owned), or NULL */
    char *config_text;    /* the keyed text (effective config and options), owned */
} study_stage;

/* The [study] and [phantoms] sections (table in study_parse.c). */
typedef struct {
    char name[64];
    char run_dir[512];
    int64_t seed;
    int threads;
    int jobs;             /* stages run at once, each in a child process (study_jobs.c) */
    char stages[1024];
    char seeds[256];      /* "42, 7, 3": every train and adapt stage once per seed */
    char baseline[STUDY_NAME_MAX]; /* the stage every row is compared with, paired */
    char compare[1024];   /* "a - b, c - d": more paired differences for the report */
    int dims;
    char size[64], spacing[64];
    int64_t ph_seed;
    int n_split[6];       /* source train/val/test, target train/val/test */
} study_settings;

struct dk_study {
    char *path;
    char file_sha[65];
    study_settings set;
    int has_phantoms;
    int64_t ph_size[3];   /* x, y, z (z = 1 for 2-D) */
    double ph_spacing[3];
    study_set *shared;    /* [data] [model] [train] [distill] [augment] lines, then --set */
    int nshared;
    study_stage *stages;  /* in run order */
    int nstages;          /* runs: a seeded stage is one entry per seed, consecutive */
    int stages_line, seeds_line, baseline_line, compare_line;
    cJSON *hash_cache;    /* {path: sha256} for this process */
    dk_dir_lock lock;     /* <run_dir>/.dakd.lock, from the first dk_study_run to the free */
    char report_path[STUDY_PATH_MAX];
    struct dk_progress *progress; /* the stages' reporter while dk_study_run runs, else NULL */
};

/* study_parse.c: the first run of the stage called name, or -1 */
int dk__study_find(const dk_study *s, const char *name);
/* Split a comma list into names (blanks trimmed); returns the count or -1 if more than max. */
int dk__study_split_list(char names[][STUDY_NAME_MAX], int max, const char *list);
/* [study] compare = "a - b, c - d" into a[i], b[i]; the count, or -1 when an item is not two
 * names joined by " - " or there are more than max (the text of the bad item in bad). */
enum { STUDY_MAX_COMPARE = 32 };
int dk__study_compare_list(char a[][STUDY_NAME_MAX], char b[][STUDY_NAME_MAX], int max,
                           const char *list, char *bad, size_t nbad);

/* study_seeds.c: after the stages are ordered and their dependencies checked, make every
 * train and adapt stage one run per seed and point each dependency at the run of the same
 * seed (or the dependency's single run); an impossible pairing is DK_ERR_ARG naming file
 * and line. Also checks [study] baseline. */
dk_status dk__study_expand_seeds(dk_study *s);
/* The run that stage st depends on under the stage name `name` (-1 if none). */
int dk__study_dep(const dk_study *s, const study_stage *st, const char *name);

/* study_stages.c: the effective training config of a train stage (or, stage NULL, the
 * shared one that eval stages read), validated. */
dk_status dk__study_train_config(dk_train_config *c, const dk_study *s, const study_stage *st);
/* Path of <run_dir>/<stage>/<name> into buf. */
void dk__study_path(char *buf, size_t n, const dk_study *s, const char *stage,
                    const char *name);
/* The model file a train stage hands on (best or final; an adapt stage: its model). */
void dk__study_model_file(char *buf, size_t n, const dk_study *s, const study_stage *st);
/* Stage bodies: fill st->record's "result" object (created by the caller). */
dk_status dk__study_run_phantoms(dk_study *s, study_stage *st, cJSON *result);
dk_status dk__study_run_train(dk_study *s, study_stage *st, cJSON *result, int resume,
                              int64_t stop_after, int *stopped);
dk_status dk__study_run_eval(dk_study *s, study_stage *st, cJSON *result);
/* study_adapt.c */
dk_status dk__study_run_adapt(dk_study *s, study_stage *st, cJSON *result);

/* study_stats.c: one cell of the study table (a model on one eval set), over its seeds */
typedef struct {
    int ok;               /* every run of the model was scored there, per case */
    int n_seeds, n_cases;
    int64_t seeds[STUDY_MAX_SEEDS];
    double seed_dice[STUDY_MAX_SEEDS]; /* case-mean Dice of each seed */
    double dice, lo, hi;  /* mean over seeds of the case-mean Dice, 95 % bootstrap interval */
    double hd95;          /* mean over seeds of the case-mean HD95 (NaN when none) */
    int has_diff;         /* a baseline is set, is not this model, and was scored there */
    double diff, diff_lo, diff_hi, p; /* paired over cases, case Dice averaged over seeds */
    int resolved;         /* the interval of diff excludes 0 */
    /* the difference at each seed on its own: case-mean Dice at seed diff_seed[k] minus the
     * other model's at the same seed (a single-seed model against each seed of the other) */
    int n_seed_diff;
    int64_t diff_seed[STUDY_MAX_SEEDS];
    double seed_diff[STUDY_MAX_SEEDS];
    int seeds_agree; /* every per-seed difference has diff's sign (0 is neither sign) */
} study_cell;
void dk__study_cell(study_cell *out, const dk_study *s, const study_stage *e, const char *name);
/* The cell of model `name` with its paired difference to model `base` (not the baseline). */
void dk__study_cell_vs(study_cell *out, const dk_study *s, const study_stage *e, const char *name,
                       const char *base);
/* 1 when the table carries intervals (a seeds list or a baseline), 0: the single-seed table */
int dk__study_has_stats(const dk_study *s);

/* study_report.c: the report stage; of a row (t: the first run of a train or adapt stage),
 * its parameters, inference ms per image on the first eval set, wall time over its runs;
 * the list of eval sets as Markdown */
dk_status dk__study_run_report(dk_study *s, study_stage *st, cJSON *result, FILE *out);
double dk__study_params(const study_stage *t);
double dk__study_ms(const dk_study *s, const study_stage *r, const study_stage *t);
double dk__study_seconds(const dk_study *s, const study_stage *t);
void dk__study_eval_sets_md(dk_sbuf *b, const dk_study *s, const study_stage *r);
/* The unit suffix of eval stage e's HD95 column: " (voxels)" under distance_unit = voxels,
 * else "" (the method text says mm). */
const char *dk__study_hd_unit(const study_stage *e);
/* The HD95 unit of report stage r's method text: "mm", "voxels" or both. */
const char *dk__study_hd_units(const dk_study *s, const study_stage *r);

/* study_table.c: the table with intervals (when dk__study_has_stats) */
void dk__study_table_md(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                        int n);
void dk__study_table_html(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                          int n);
void dk__study_cell_json(cJSON *o, const dk_study *s, const study_stage *e, const char *name);
/* [study] compare's pairs on report stage r's eval sets (nothing when compare is empty) */
void dk__study_compare_md(dk_sbuf *b, const dk_study *s, const study_stage *r);
void dk__study_compare_html(dk_sbuf *b, const dk_study *s, const study_stage *r);
void dk__study_compare_json(cJSON *j, const dk_study *s, const study_stage *r);

/* study_plots.c: inline SVG: a forest plot per eval set (rows with a paired difference),
 * learning curves per train stage from steps.jsonl */
void dk__study_forest_svg(dk_sbuf *b, const dk_study *s, const study_stage *r, const int *rows,
                          int n);
void dk__study_curves_html(dk_sbuf *b, const dk_study *s, const int *rows, int n);

/* study_run.c: the steps of one stage, shared by the one-at-a-time loop and study_jobs.c.
 * check: its key (its dependencies must be finished) and whether it must run (forced:
 * --from; a dependency ran; no stage.json of that key); when not, its recorded stage.json
 * becomes st->record and the "up to date" line is printed to o->out. prepare: clear (or,
 * for a resume, keep) its folder and write its marker and stage.key. execute: the body,
 * then stage.json last (st->record, st->seconds, st->ran); *stopped: stop_after_steps hit,
 * no stage.json. finish: after a stage finished, failed or was up to date: the report's
 * path and manifest.json; returns rc, else the manifest's status. */
dk_status dk__study_check(dk_study *s, study_stage *st, int forced, const dk_study_opts *o,
                          int *must_run);
dk_status dk__study_prepare(dk_study *s, study_stage *st, int forced, int *resume);
dk_status dk__study_execute(dk_study *s, study_stage *st, int resume, const dk_study_opts *o,
                            int *stopped);
dk_status dk__study_finish(dk_study *s, const study_stage *st, dk_status rc);
/* Its stage.json when that holds st->key, else NULL; adopt: make it st->record (owned) and
 * take st->seconds from it. */
cJSON *dk__study_recorded(const dk_study *s, const study_stage *st);
void dk__study_adopt(study_stage *st, cJSON *rec);
/* "[k/N]" of a stage, and its "running (...)" (with " — log: PATH" when log is not NULL)
 * and "done in X s" lines ("interrupted (its checkpoint remains)" when it has no record);
 * out NULL prints nothing. */
void dk__study_tag(char tag[32], const dk_study *s, const study_stage *st);
void dk__study_print_running(FILE *out, const dk_study *s, const study_stage *st, int resume,
                             const char *log);
void dk__study_print_done(FILE *out, const dk_study *s, const study_stage *st);

/* study_jobs.c: the stages with [study] jobs > 1 child processes (from: --from's stage or
 * -1). Returns the first failure (naming the stage and its log) after every running child
 * has ended. */
dk_status dk__study_run_jobs(dk_study *s, const dk_study_opts *o, int from);

/* study_jobs.c: stage st run where it was sent (a forked child, or a worker rank with its
 * output in the stage's log): the study's thread count, dk__study_execute unless rc (a
 * failure before it) is set, then the error line the scheduler's ended() reads as the
 * log's last line. Returns the stage's status. */
dk_status dk__study_execute_logged(dk_study *s, study_stage *st, int resume, dk_status rc,
                                   int *stopped);

/* study_ranks.c: a study over MPI ranks (rank 0 schedules in study_jobs.c; the others
 * serve). ranks_of: the ranks stage st trains on (1 unless `ranks` > 1 under mpirun);
 * ranks_check: DK_ERR_ARG when a stage needs more ranks than the job has besides rank 0;
 * ranks_send: give `stage` to world rank dest (group `ranks`, n of them, when n > 1);
 * ranks_done: 1 and a worker's answer when one waits (never blocks); ranks_stop: end every
 * worker; serve: a worker's loop, until rank 0 says stop; a failure it returns (a message
 * lost, or a failure inside a `ranks = K` stage's group) must abort the job. */
int dk__study_ranks_of(const study_stage *st);
dk_status dk__study_ranks_check(const dk_study *s);
dk_status dk__study_ranks_send(const dk_study *s, int dest, int stage, int resume,
                               const int *ranks, int n);
int dk__study_ranks_done(int *rank, int *stage, int *code, int *stopped);
void dk__study_ranks_stop(void);
dk_status dk__study_serve(dk_study *s);

/* study_guard.c: DK_ERR_ARG when a file the study reads (the study file, a cases CSV and
 * the files it names) is run_dir or manifest.json or lies in a stage's folder, naming both */
dk_status dk__study_check_outputs(const dk_study *s);

/* study_manifest.c */
dk_status dk__study_hash_cached(char hex[65], dk_study *s, const char *path);
dk_status dk__study_sha256_text(char hex[65], const char *text, size_t n);
dk_status dk__study_write_manifest(dk_study *s);
/* Read a JSON file; NULL when missing or invalid (no message). */
cJSON *dk__study_read_json(const char *path);

#endif
