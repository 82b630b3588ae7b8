/*
 * dakd/core.h — status codes and errors, assertions, logging and progress, the arena
 * allocator, float32 tensors, the seeded RNG and the monotonic timer.
 *
 * What it does not do: no I/O on data files, no threads of its own.
 *
 * Errors. A library function that can fail on bad data or environment returns a
 * dk_status (DK_OK = 0). The function that DETECTS the failure records one message with
 * dk_fail(), naming the file and the field; callers pass the status up unchanged.
 * dk_last_error() returns the message of the most recent failure on the calling thread
 * (thread-local, overwritten by the next dk_fail). The library never exits and never prints
 * on its own; it logs through the callback set with dk_log_set_sink().
 *
 * Three rules keep one owner per message:
 *  - A caller that knows what the detector cannot (which case-list line and case, which
 *    study file and stage, which model file) adds it IN FRONT with dk_error_context(); the
 *    detector's text stays whole and the status passes through. Formatting dk_last_error()
 *    into a new dk_fail() is never done: it copies the message and can cut it.
 *  - Decisions branch on the returned status, or on a result the detector returns for that
 *    purpose (e.g. dk_dcm_check_structure's `damaged`), never on the message text.
 *  - Messages name config keys ("[train] epochs", "model.teacher_checkpoint"), option
 *    fields and files, never command-line flags: the library does not know how it was
 *    called. apps/ adds the flag where it wants to say it.
 *
 * Programmer errors (inconsistent shapes between internal calls) are DK_ASSERT: it prints
 * file:line and the expression to stderr and aborts.
 */
#ifndef DAKD_CORE_H
#define DAKD_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status and errors */

typedef enum {
    DK_OK = 0,
    DK_ERR_ARG = 1,     /* bad argument or option from the caller / user */
    DK_ERR_IO = 2,      /* file missing, unreadable, unwritable, short read/write */
    DK_ERR_FORMAT = 3,  /* file read but its content is invalid (header, CRC, dims) */
    DK_ERR_UNSUPPORTED = 4, /* valid input that this build / function cannot handle */
    DK_ERR_NOMEM = 5,   /* allocation of a data-sized buffer failed */
    DK_ERR_NUMERIC = 6, /* NaN/Inf where a finite number is required */
    DK_ERR_INTERNAL = 7 /* a library that dakd calls failed without a reason */
} dk_status;

/* Record a failure message (printf format) for the calling thread and return `st`, so a
 * detecting function can write `return dk_fail(DK_ERR_FORMAT, "%s: dim[1]=%d", p, n);`.
 * The message should name the file and the field. Never returns DK_OK for st != DK_OK. */
dk_status dk_fail(dk_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Put what the caller knows in front of the thread's message, keeping the detector's text:
 *   st = dk_case_load(...);                       "cut.nii.gz: file cut short ..."
 *   return dk_error_context(st, "%s:%d: case '%s'", csv, line, id);
 *                                                 "cases.csv:7: case 's05': cut.nii.gz: ..."
 * The result is "<context>: <message>" (the context alone when there was no message); a
 * message that no longer fits loses its end, never the context. Returns `st` (so the status
 * is the detector's), DK_ERR_INTERNAL for DK_OK as dk_fail does. */
dk_status dk_error_context(dk_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last message recorded on this thread ("" if none). Borrowed; valid until the next
 * dk_fail or dk_error_context on this thread. For showing to a person, never for deciding. */
const char *dk_last_error(void);

/* A short constant name for a status ("format error", ...). */
const char *dk_status_name(dk_status st);

/* Clear the thread's message (tests use it). */
void dk_clear_error(void);

void dk_assert_fail(const char *expr, const char *file, int line);
#define DK_ASSERT(cond) ((cond) ? (void)0 : dk_assert_fail(#cond, __FILE__, __LINE__))

/* ---------------------------------------------------------------- version */

/* "dakd 0.1.0 (commit abcdef123456)". Static string. */
const char *dk_version_string(void);

/* ---------------------------------------------------------------- logging */

typedef enum { DK_LOG_DEBUG = 0, DK_LOG_INFO = 1, DK_LOG_WARN = 2, DK_LOG_ERROR = 3 } dk_log_level;

/* A sink receives one formatted message (no trailing newline). `user` is passed through. */
typedef void (*dk_log_fn)(dk_log_level level, const char *msg, void *user);

/* Install a sink (NULL = discard all messages, the library default) and the lowest level
 * that reaches it. Not thread-safe against concurrent dk_log calls; set it at start-up. */
void dk_log_set_sink(dk_log_fn fn, void *user, dk_log_level min_level);

/* A ready-made sink writing "[level] msg\n" to the FILE* passed as `user` (stderr if NULL). */
void dk_log_stderr_sink(dk_log_level level, const char *msg, void *user);

void dk_log(dk_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- timer */

/* Seconds on a monotonic clock (CLOCK_MONOTONIC); only differences are meaningful. */
double dk_time_now(void);

/* ---------------------------------------------------------------- order statistics */

/* Sort ascending in place. NaN compares equal to everything, so leave NaN out first. */
void dk_sort_doubles(double *v, int64_t n);
/* The median of n >= 1 values (sorted in place; the mean of the two middle values for an
 * even count). */
double dk_median(double *v, int64_t n);

/* The k-th smallest (0-based, 0 <= k < n) of v[0..n) by Hoare selection, O(n) on average;
 * v is reordered so that v[k] holds it and nothing right of k is smaller. No NaN. */
double dk_select_double(double *v, int64_t n, int64_t k);
float dk_select_float(float *v, int64_t n, int64_t k);

/* Percentile p in [0, 100] of n >= 1 values, numpy's default "linear" rule: the virtual
 * index (n − 1)·p/100 falls between the order statistics a and b with weight g.
 *
 * dk_percentile_sorted (of sorted values) and dk_percentile_select (by selection; v is
 * reordered) interpolate as numpy's _lerp does, to the last bit: a + (b − a)·g when
 * g < 0.5, b − (b − a)(1 − g) otherwise. Reports, box plots and HD95 use these.
 *
 * dk_percentile (floats, by selection into `work`: n floats, caller-allocated, overwritten;
 * vals is not) interpolates as a + g·(b − a) for every g, which can differ from numpy in
 * the last bit. Intensity normalisation and the overlays' grey windows have always used
 * this form; it stays so that prepared images (and so models) do not move by an ulp. */
double dk_percentile_sorted(const double *sorted, int64_t n, double p);
double dk_percentile_select(double *v, int64_t n, double p);
double dk_percentile(const float *vals, int64_t n, double p, float *work);

/* ---------------------------------------------------------------- progress */

/* Progress of long loops: the library reports, the application draws. A loop opens a
 * reporter over `total` units, advances it and closes it; a reporter opened while another is
 * open nests inside it (a study's stage around the trainer's steps, a prediction's cases
 * around one case's window batches), so the open ones form a chain from the outermost to the
 * innermost. Every change is handed to the sink the application installs
 * (dk_progress_set_sink); with none, reporters only count. The sink decides what to draw and
 * how often: dakd's command line redraws one bar line on a terminal and writes a plain line
 * now and then in a log (apps/term.c). dk_log (above) tells the sink to clear its bar before
 * a message and to draw it again after, so a log line never lands behind a bar.
 *
 * Reporters live in the caller's memory (usually its stack), are opened and closed in LIFO
 * order and are driven by the thread that runs the loop, outside parallel regions: the chain
 * is process-wide and not locked. A child process made by fork() inherits the chain. */
typedef struct dk_progress {
    const char *label;          /* what the loop does: "train", "predict"; borrowed */
    char item[96];              /* what it works on now ("stage 3/7 teacher", "epoch 2/5",
                                 * a case id); "" = nothing named */
    int64_t total;              /* units of work; 0 = unknown */
    int64_t done;               /* units finished */
    double t_start;             /* dk_time_now() when opened */
    struct dk_progress *parent; /* the reporter this one is nested in; NULL for the outermost */
} dk_progress;

typedef enum {
    DK_PROGRESS_BEGIN, /* p was opened (it is the innermost) */
    DK_PROGRESS_STEP,  /* p->done moved */
    DK_PROGRESS_ITEM,  /* p->item changed: a milestone (the next stage, epoch or case) */
    DK_PROGRESS_END,   /* p is being closed; during the call it is still in the chain */
    DK_PROGRESS_HIDE,  /* something else is about to be written to the terminal: clear the bar
                        * (p: the innermost open reporter) */
    DK_PROGRESS_SHOW   /* that was written: draw the bar again (p: the innermost) */
} dk_progress_event;

/* A sink: called for every event, on the reporting thread; p is valid during the call only.
 * HIDE and SHOW come in pairs and only while a reporter is open. */
typedef void (*dk_progress_fn)(dk_progress_event ev, const dk_progress *p, void *user);

/* Install a sink (NULL: none, the library default). Set it at start-up, before any reporter
 * is open. */
void dk_progress_set_sink(dk_progress_fn fn, void *user);
/* Open p (caller's memory, overwritten) over `total` units (0 = unknown), innermost now. */
void dk_progress_begin(dk_progress *p, const char *label, int64_t total);
/* Advance p by n units. */
void dk_progress_step(dk_progress *p, int64_t n);
/* Name what p works on now (printf format, cut at 95 bytes); a milestone for the sink. */
void dk_progress_item(dk_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Close p, the innermost open reporter. */
void dk_progress_end(dk_progress *p);
/* The innermost open reporter, NULL when none is open. */
const dk_progress *dk_progress_current(void);
/* Around a write to the terminal that does not go through dk_log (a command's own lines on
 * stdout while a reporter is open): HIDE before, SHOW after. Nothing happens without a sink
 * or an open reporter. */
void dk_progress_hide(void);
void dk_progress_show(void);
/* Format `s` seconds as H:MM:SS or M:SS into buf (at least 16 bytes). */
void dk_format_duration(char *buf, size_t n, double s);

/* ---------------------------------------------------------------- arena */

/* A bump allocator over one block: allocations are 64-byte aligned, freed all at once by
 * dk_arena_reset / dk_arena_free. Used for activations and workspaces whose sizes are
 * known when a model is built. */
typedef struct {
    unsigned char *base; /* owned, 64-byte aligned */
    size_t capacity;     /* bytes */
    size_t used;         /* bytes */
    size_t high_water;   /* largest `used` seen */
} dk_arena;

/* Allocate the block. DK_ERR_NOMEM if it cannot. */
dk_status dk_arena_init(dk_arena *a, size_t capacity);
/* Bump-allocate `bytes` (rounded up to 64); NULL if the arena is full (no message: the
 * caller sized the arena, so running out is a programmer error it should assert on). */
void *dk_arena_alloc(dk_arena *a, size_t bytes);
/* Zeroed variant of dk_arena_alloc. */
void *dk_arena_calloc(dk_arena *a, size_t bytes);
/* Position markers to free everything allocated after a mark. */
size_t dk_arena_mark(const dk_arena *a);
void dk_arena_release(dk_arena *a, size_t mark);
void dk_arena_reset(dk_arena *a);
/* Free the block; accepts NULL and a zeroed struct. */
void dk_arena_free(dk_arena *a);

/* 64-byte aligned heap allocation (free with dk_free); NULL on failure or overflow of
 * count*size. */
void *dk_alloc_aligned(size_t count, size_t size);
void dk_free(void *p);
/* dk_alloc_aligned for a large buffer that is filled at once (a volume read from disk):
 * from 2 MiB up it is backed by transparent huge pages where the kernel allows it, so
 * its first touch costs one page fault per 2 MiB instead of one per 4 KiB (64 MiB: 290 ms
 * against 6 ms on a KVM guest, where each fault is slow). Free with dk_free. */
void *dk_alloc_large(size_t count, size_t size);

/* ---------------------------------------------------------------- tensors */

/* float32, contiguous NCDHW, W fastest; a 2-D image has d = 1. */
typedef struct {
    float *data; /* (n, c, d, h, w); owned if `owned`, else borrowed (arena or caller) */
    int64_t n, c, d, h, w;
    int owned;
} dk_tensor;

/* Elements in a tensor of that shape; 0 if any dim is < 0 or the product overflows. */
int64_t dk_tensor_numel(const dk_tensor *t);
/* Allocate an owned, zeroed tensor. DK_ERR_ARG on bad dims, DK_ERR_NOMEM. */
dk_status dk_tensor_alloc(dk_tensor *t, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w);
/* Describe a borrowed buffer. */
dk_tensor dk_tensor_view(float *data, int64_t n, int64_t c, int64_t d, int64_t h, int64_t w);
/* Place a tensor in an arena; DK_ERR_NOMEM if it does not fit. */
dk_status dk_tensor_arena(dk_tensor *t, dk_arena *a, int64_t n, int64_t c, int64_t d,
                          int64_t h, int64_t w);
/* Free an owned tensor's data and zero the struct; accepts NULL and borrowed tensors. */
void dk_tensor_free(dk_tensor *t);
/* Pointer to element (n, c, z, y, x). */
static inline float *dk_tensor_at(const dk_tensor *t, int64_t n, int64_t c, int64_t z,
                                  int64_t y, int64_t x) {
    return t->data + ((((n * t->c + c) * t->d + z) * t->h + y) * t->w + x);
}
int dk_tensor_same_shape(const dk_tensor *a, const dk_tensor *b);

/* ---------------------------------------------------------------- atomic output */

/* Every writer (volumes, checkpoints, configs, reports) makes its file appear complete or
 * not at all: write to dk_tmp_path_for(path) — "<dir>/.<base>.<pid>.<n>.tmp" in the same
 * folder, so the rename cannot cross file systems — then dk_commit_file fsyncs it, renames
 * it over `path` and fsyncs the folder. On failure dk_commit_file removes the temporary
 * file; a writer that fails earlier removes it itself. DK_ERR_ARG when the name does not
 * fit in n bytes, DK_ERR_IO naming the final path. */
dk_status dk_tmp_path_for(char *buf, size_t n, const char *path);
dk_status dk_commit_file(const char *tmp_path, const char *final_path);

/* 1 when a and b name one file or folder: the same path text, or both exist with the same
 * device and inode (another name, a hard link, a symbolic link, "./x" for "x"); else 0.
 * Commands check every output against their inputs with it before writing anything. */
int dk_same_file(const char *a, const char *b);
/* The first of in[0..n) (NULL entries skipped) that is the same file as `out` in the sense of
 * dk_same_file, or -1: one stat of `out` and one per input, so a command checks each of its
 * outputs against all its inputs in one call. */
int dk_same_file_any(const char *out, const char *const *in, int n);
/* 1 when `path` is the folder `dir` or lies below it once both are resolved (realpath:
 * symbolic links, "..", "./"); 0 when not, or when either does not exist (nothing can be
 * below a folder that does not exist). For outputs that replace or clear a whole folder. */
int dk_path_within(const char *path, const char *dir);

/* Make `path` and its missing parents (as mkdir -p; mode 0777 before the umask). DK_ERR_IO
 * naming the folder that could not be made, DK_ERR_ARG for a path over 4095 bytes. */
dk_status dk_mkdirs(const char *path);

/* Remove `path` and, when it is a folder, everything below it (as rm -rf: links are removed,
 * never followed); an absent path is fine. DK_ERR_IO naming the entry that could not be
 * removed (a path over 4095 bytes is one). */
dk_status dk_remove_tree(const char *path);
/* The same for cleaning up after a failure: records no message, so the caller's stays, and
 * logs a warning naming what could not be removed. */
void dk_discard_tree(const char *path);

/* Read a whole file into a new NUL-terminated buffer (*buf, caller frees; *len bytes without
 * the NUL; len may be NULL). DK_ERR_IO naming the file and the system's reason, DK_ERR_NOMEM.
 * On failure *buf is NULL. */
dk_status dk_read_file(char **buf, size_t *len, const char *path);

/* ---------------------------------------------------------------- long runs */

/* The lock on an output folder that one long run writes (a training run folder, a study's
 * run_dir), so that a second process cannot write into it at the same time: flock(2) on
 * <dir>/.dakd.lock (made if missing, never removed), holding the holder's pid for messages.
 * The kernel drops the lock when its holder dies, so a lock left by a killed run never
 * blocks: the next run takes it over, logging the dead holder's pid. `dir` must exist.
 * DK_ERR_IO "<dir>: in use by another dakd process (pid N, ...)" when a live process (this
 * one included, through another dk_dir_lock) holds it. On a file system without flock the
 * run goes on unlocked with a warning (l->fd stays -1). Release with dk_dir_lock_release
 * (NULL and a lock not held are fine); a forked child that releases its inherited copy
 * leaves the lock to its parent. */
typedef struct {
    int fd;   /* the open lock file, -1 when not held */
    long pid; /* the process that took it */
} dk_dir_lock;
dk_status dk_dir_lock_take(dk_dir_lock *l, const char *dir);
void dk_dir_lock_release(dk_dir_lock *l);

/* A request to stop at the next safe point, made by a signal handler (async-signal-safe)
 * and read by long loops: the trainer checks it before every step (it then writes its
 * checkpoint and returns, see dakd/train.h), the study runner between stages. Pending holds
 * the signal number (0: none). The library installs no handler: apps do (dakd train,
 * distill and run on SIGINT and SIGTERM). */
void dk_interrupt_request(int signo);
int dk_interrupt_pending(void);
void dk_interrupt_clear(void);

/* JSON files (cJSON values): pretty-printed with a final newline, written atomically (above).
 * dk_json_add_number adds key: x, or key: null when x is NaN or infinite (JSON has no NaN). */
struct cJSON;
dk_status dk_json_write_file(const struct cJSON *j, const char *path);
void dk_json_add_number(struct cJSON *o, const char *key, double x);

/* ---------------------------------------------------------------- text */

/* A growable NUL-terminated text for reports and tables, written to a file once at the end.
 * A zeroed struct is empty. An allocation failure sets `oom` and later appends do nothing,
 * so a writer checks once (dk_sb_write_file refuses an incomplete text). */
typedef struct {
    char *s;      /* NUL-terminated text, owned (NULL until the first append) */
    size_t len, cap;
    int oom;      /* an append failed: the text is incomplete */
} dk_sbuf;

/* Free the text and zero the struct; accepts NULL. */
void dk_sb_free(dk_sbuf *b);
void dk_sb_putn(dk_sbuf *b, const char *s, size_t n);
void dk_sb_puts(dk_sbuf *b, const char *s);
void dk_sb_printf(dk_sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Text with & < > " ' escaped for HTML (element content and quoted attributes). */
void dk_sb_html(dk_sbuf *b, const char *s);
/* A number that reads back to the same double (%.17g), "nan" / "inf" / "-inf" otherwise. */
void dk_sb_num(dk_sbuf *b, double x);
/* Standard base64 (RFC 4648, with '=' padding) of n bytes. */
void dk_sb_base64(dk_sbuf *b, const unsigned char *p, size_t n);
/* Write the text to `path` atomically (dk_tmp_path_for + dk_commit_file). DK_ERR_NOMEM when
 * `oom` is set, DK_ERR_IO naming the file. */
dk_status dk_sb_write_file(const dk_sbuf *b, const char *path);

/* ---------------------------------------------------------------- configs */

/* Configs are INI files read into a plain struct through ONE table of fields per struct
 * (section, key, type, offset, bounds, default, help), as redis does: defaults, loading,
 * --set overrides, writing the effective config and the help text all walk the same table,
 * so each default is written once. inih does the INI syntax.
 *
 * Storage: INT, BOOL and ENUM are `int` members (an ENUM holds the index of its name in
 * enum_names, so a C enum whose values are 0, 1, ... in the same order can be the member);
 * INT64 is int64_t, DOUBLE double, FLOAT float; STRING is a fixed char array INSIDE the
 * struct of `size` bytes (no heap, nothing to free; a longer value is an error).
 * Values: numbers in C syntax (strtoll base 10 / strtod), finite, within [min, max]
 * inclusive (INT must be an integer); BOOL is true/false/yes/no/on/off/1/0 (any case);
 * ENUM is one of enum_names exactly; STRING is stripped of surrounding blanks (as inih
 * does) and may not hold a newline, nor a ';' at its start or after a blank (inih would
 * read it as a comment, so it could not be written back: "key=;x" is refused, naming
 * file:line and the key, rather than read back empty), and "key = value" must fit in one line of
 * 197 characters whatever the array's size (so every value set can be written back).
 * Files: "[section]" headers and "key = value" lines, ';' or '#' comment lines, ';' inline
 * comments after a blank; lines of at most 197 characters (inih's buffer; a longer one is
 * an error rather than silently cut). An indented line continues the value of the key above
 * it: allowed for DK_CFG_LIST fields (its entries join the list), an error naming the line
 * for any other. An unknown section or key, a bad value, a duplicate
 * key (the same key twice in one file is an error, not last-wins) and a syntax error fail
 * with DK_ERR_ARG "<file>:<line>: ..." naming [section] key (and the allowed range or
 * names); an unreadable file is DK_ERR_IO.
 * Not thread-safe against another thread using the same struct. */
typedef enum {
    DK_CFG_INT = 0, /* int */
    DK_CFG_INT64,   /* int64_t */
    DK_CFG_DOUBLE,  /* double */
    DK_CFG_FLOAT,   /* float (range-checked, then rounded to float) */
    DK_CFG_BOOL,    /* int 0/1 */
    DK_CFG_STRING,  /* char[size] */
    DK_CFG_ENUM,    /* int index into enum_names */
    DK_CFG_LIST     /* char[size]: comma-separated names; kept as "a, b, c" (blanks around
                     * each entry and empty entries dropped). Not bound to one line: in a
                     * file the value may go on over the indented lines that follow its key
                     * (Python configparser's continuation lines), each joined to it as
                     * another entry, and dk_cfg_write breaks a long one so */
} dk_cfg_type;

typedef struct {
    const char *section;            /* without brackets */
    const char *key;
    dk_cfg_type type;
    size_t offset;                  /* offsetof the member in the struct */
    size_t size;                    /* STRING: sizeof the char array (with its NUL); else 0 */
    double min, max;                /* numbers: inclusive bounds; ignored otherwise */
    const char *def;                /* the default, as it would be written in the file */
    const char *const *enum_names;  /* ENUM: NULL-terminated names; else NULL */
    const char *help;               /* one line, written as a comment and by --help */
} dk_cfg_field;

/* A comma-separated list of finite numbers ("1, 0.5,2"; blanks around each allowed) into
 * v[0..max): the count, or -1 when an entry is empty or not a number or there are more than
 * max. An empty or blank text is 0 numbers. For list-valued STRING fields. */
int dk_parse_numbers(double *v, int max, const char *text);

/* Set every field of `obj` from its default string. A default that does not parse or lies
 * outside its bounds is a programmer error (DK_ASSERT). Members not in the table are left
 * alone. */
void dk_cfg_defaults(void *obj, const dk_cfg_field *t, size_t n);

/* Read the INI file at `path` into `obj`: keys in the file overwrite their fields, the
 * others keep their values (call dk_cfg_defaults first). On failure the fields set by lines
 * before the failing one keep their new values (load into a copy to avoid that). */
dk_status dk_cfg_load(void *obj, const dk_cfg_field *t, size_t n, const char *path);

/* Parse the INI text `text` as dk_cfg_load parses a file; `name` stands for the file in
 * messages. */
dk_status dk_cfg_load_string(void *obj, const dk_cfg_field *t, size_t n, const char *text,
                             const char *name);

/* One override "section.key=value" (the CLI's --set; blanks around the parts are stripped),
 * with the checks of dk_cfg_load. DK_ERR_ARG "override '<arg>': ..." for a missing '=' or
 * '.', "override: ..." for an unknown key (with "did you mean section.key?" when one is
 * close) or a bad value; `obj` is unchanged then. */
dk_status dk_cfg_set(void *obj, const dk_cfg_field *t, size_t n, const char *assignment);

/* The field [section] key of table t (n fields), or NULL. */
const dk_cfg_field *dk_cfg_find(const dk_cfg_field *t, size_t n, const char *section,
                                const char *key);

/* Set [section] key = value as a file's line would, with messages starting with `where`
 * (e.g. "FILE:LINE", or "override" as dk_cfg_set): an unknown key or a bad value is
 * DK_ERR_ARG and leaves `obj` unchanged (the checks of dk_cfg_load). */
dk_status dk_cfg_assign(void *obj, const dk_cfg_field *t, size_t n, const char *section,
                        const char *key, const char *value, const char *where);

/* A continuation line's `value` (dk_ini_source.continued) for [section] key: `joined` (size
 * n) gets the field's current value of `obj` with `value` as more entries. DK_ERR_ARG naming
 * `where` and the key when f is NULL or not a DK_CFG_LIST (only lists go on over lines). */
dk_status dk_cfg_continue(char *joined, size_t n, const void *obj, const dk_cfg_field *f,
                          const char *section, const char *key, const char *value,
                          const char *where);

/* Format field `f` of `obj` as it is written in a file (doubles with the fewest digits that
 * read back to the same value) into buf (size bufn; truncated if too small). */
void dk_cfg_format(char *buf, size_t bufn, const void *obj, const dk_cfg_field *f);

/* Write every field of `obj` as an INI file at `path` (atomically: temporary file, fsync,
 * rename), grouped under its [section] in table order, each key preceded by a comment with
 * its help, type, range and default. Loading the file into a defaulted struct gives the same
 * field values. DK_ERR_IO when the file cannot be written. */
dk_status dk_cfg_write(const void *obj, const dk_cfg_field *t, size_t n, const char *path);

/* Print the table for --help: one line per key "  section.key  type  range  default" and
 * its help text below. Prints to `out` only. */
void dk_cfg_print_help(const dk_cfg_field *t, size_t n, FILE *out);

/* The INI syntax through inih, for dk_cfg_load and other readers with their own handler:
 * lines from an open FILE or from a text, counted in `line` so that a handler can name
 * "<name>:<line>" (Debian's inih passes no line number). A line longer than inih's buffer
 * allows (197 characters; it would be split and misread) is refused. */
typedef struct {
    const char *name;  /* the file, in messages (borrowed) */
    FILE *file;        /* read from this open file, or, when NULL, */
    const char *text;  /* from this text (borrowed; advanced past each line read) */
    int line;          /* 1-based number of the line last read; 0 before the first */
    int continued;     /* that line starts with a blank: inih hands its text to the handler
                        * as more of the previous key's value (a continuation line) */
    dk_status st;      /* DK_OK; a failure (the handler's too) stops the reading */
} dk_ini_source;

/* Called for every "key = value" of the current line (src->line). Returns 1 to go on; on a
 * failure it records the message, stores its status in the source's `st` and returns 0. */
typedef int (*dk_ini_handler)(void *user, const char *section, const char *key,
                              const char *value);

/* Parse every line of `src` (name, file or text set, line 0, st DK_OK), calling on_key. The
 * failure on the earliest line wins: a syntax error is DK_ERR_ARG "<name>:<line>: syntax
 * error (expected [section] or key = value)", an overlong line DK_ERR_ARG "<name>:<line>:
 * line longer than 197 characters", else the handler's; DK_ERR_NOMEM / DK_ERR_INTERNAL when
 * inih fails otherwise. Reading errors of the FILE are the caller's to check (ferror). */
dk_status dk_ini_parse(dk_ini_source *src, dk_ini_handler on_key, void *user);

/* ---------------------------------------------------------------- RNG */

/* xoshiro256** seeded through splitmix64: fast, 2^256 period, and a state of four
 * words that a checkpoint can store. One seed drives every random choice in dakd. */
typedef struct {
    uint64_t s[4];
} dk_rng;

void dk_rng_seed(dk_rng *r, uint64_t seed);
uint64_t dk_rng_u64(dk_rng *r);
/* Uniform in [0, 1) with 24 (float) / 53 (double) random bits. */
float dk_rng_uniform(dk_rng *r);
double dk_rng_uniform_double(dk_rng *r);
/* Uniform integer in [0, n), unbiased (n > 0). */
uint64_t dk_rng_below(dk_rng *r, uint64_t n);
/* Standard normal (Box–Muller on doubles, no cached second value so the state alone
 * determines the stream). */
double dk_rng_normal(dk_rng *r);
/* Derive an independent stream (e.g. per worker or per epoch) from this one's state and
 * an index, without advancing `r`. */
dk_rng dk_rng_split(const dk_rng *r, uint64_t index);

#ifdef __cplusplus
}
#endif
#endif
