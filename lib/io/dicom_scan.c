/*
 * The DICOM files of a folder (or one file) as a dk_dcm_set: listed by name, checked
 * (dicom_check.c) and parsed by GDCM in a child process (dicom_isolate.c), so a file on
 * which GDCM aborts is passed over (a folder) or reported (one file) instead of ending the
 * caller. Files passed over are kept, with the reason, in the set's `skipped` list.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom_internal.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void dk_dcm_set_free(dk_dcm_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        if (s->files) dk_itk_dcm_clear(&s->files[i]);
        free(s->paths[i]);
    }
    free(s->paths);
    free(s->files);
    free(s->skipped);
    memset(s, 0, sizeof *s);
}

/* The regular files directly in `dir`, sorted by name, as malloc'd paths. */
static dk_status list_dir(char ***out, int *n, const char *dir) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return dk_fail(DK_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
    char **paths = NULL;
    int cap = 0, k = 0;
    dk_status st = DK_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        char **grown = k == cap ? realloc(paths, sizeof *paths * (size_t)(cap = cap * 2 + 16))
                                : paths;
        if (!p || !grown) {
            free(p);
            if (grown) paths = grown;
            st = dk_fail(DK_ERR_NOMEM, "%s: out of memory listing the folder", dir);
            break;
        }
        paths = grown;
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) paths[k++] = p;
        else free(p);
    }
    closedir(d);
    if (st != DK_OK) {
        for (int i = 0; i < k; i++) free(paths[i]);
        free(paths);
        return st;
    }
    if (k) qsort(paths, (size_t)k, sizeof *paths, cmp_str);
    *out = paths;
    *n = k;
    return DK_OK;
}

/* ---------------------------------------------------------------- parsing in a child */

/* The scan of s->files[0..n-1] as a dk_dcm_job. */
typedef struct {
    dk_dcm_set *s;
    char *parsed;   /* (n) 1 when the parent holds the file's header */
    int keep_going; /* a folder: pass bad files over; one file: stop at its failure */
} scan_job;

/* In the child: structure check, then GDCM. flag = 1 for a damaged DICOM file. */
static dk_status scan_work(void *arg, int i, int *flag) {
    dk_dcm_file *f = &((scan_job *)arg)->s->files[i];
    dk_status st = dk_dcm_check_structure(f->path, flag);
    if (st != DK_OK) return st;
    st = dk_itk_dcm_scan(f);
    *flag = st != DK_OK; /* it passed the structure check: a DICOM file GDCM cannot read */
    /* in a child this marks its own copy (scan_take marks the parent's); in the fuzzers'
     * in-process mode (dk_dcm_set_in_process) it is the mark */
    if (st == DK_OK) ((scan_job *)arg)->parsed[i] = 1;
    return st;
}

static dk_status scan_send(void *arg, int i, int fd) {
    const dk_dcm_file *f = &((scan_job *)arg)->s->files[i];
    dk_status st = dk_dcm_put(fd, f, sizeof *f);
    return st == DK_OK ? dk_dcm_put(fd, f->frames, sizeof *f->frames * (size_t)f->nframes)
                       : st;
}

static dk_status scan_take(void *arg, int i, int fd) {
    scan_job *j = arg;
    dk_dcm_file *f = &j->s->files[i];
    const char *path = f->path;
    dk_status st = dk_dcm_get(fd, f, sizeof *f);
    f->path = path;
    f->frames = NULL;
    if (st != DK_OK) return st;
    f->frames = calloc((size_t)f->nframes, sizeof *f->frames); /* nframes >= 1 */
    if (!f->frames)
        return dk_fail(DK_ERR_NOMEM, "%s: NumberOfFrames = %d: out of memory", path, f->nframes);
    st = dk_dcm_get(fd, f->frames, sizeof *f->frames * (size_t)f->nframes);
    j->parsed[i] = st == DK_OK;
    return st;
}

/* A file passed over: listed with the message just recorded; an unreadable one also logged. */
static dk_status add_skipped(dk_dcm_set *s, const char *path, int unreadable) {
    dk_dicom_skipped *grown = realloc(s->skipped, sizeof *grown * (size_t)(s->nskipped + 1));
    if (!grown) return dk_fail(DK_ERR_NOMEM, "%s: out of memory", path);
    s->skipped = grown;
    dk_dicom_skipped *k = &grown[s->nskipped++];
    snprintf(k->path, sizeof k->path, "%s", path);
    snprintf(k->reason, sizeof k->reason, "%s", dk_last_error());
    k->unreadable = unreadable;
    if (unreadable) dk_log(DK_LOG_WARN, "DICOM file passed over: %s", k->reason);
    return DK_OK;
}

static int scan_failed(void *arg, int i, dk_status st, int flag) {
    scan_job *j = arg;
    (void)st;
    return j->keep_going && add_skipped(j->s, j->s->files[i].path, flag) == DK_OK;
}

static const char *scan_path(void *arg, int i) { return ((scan_job *)arg)->s->files[i].path; }

/* Parse s->files[0..n-1] (paths set) in a child process. */
static dk_status scan_isolated(dk_dcm_set *s, char *parsed, int keep_going) {
    scan_job j = {s, parsed, keep_going};
    dk_dcm_job job = {s->n, &j, scan_work, scan_send, scan_take, scan_failed, scan_path,
                      "parsing the header"};
    return dk_dcm_run_isolated(&job);
}

/* ---------------------------------------------------------------- sets */

static dk_status no_image(const dk_dcm_file *f) {
    return dk_fail(DK_ERR_FORMAT, "%s: no image (Rows/Columns absent: %s object)", f->path,
                   f->modality[0] ? f->modality : "non-image");
}

/* Keep the files that were parsed and hold an image; list the others as skipped. */
static dk_status keep_images(dk_dcm_set *s, const char *parsed) {
    int kept = 0;
    dk_status st = DK_OK;
    for (int i = 0; i < s->n; i++) {
        dk_dcm_file f = s->files[i];
        int split = parsed[i] && f.has_pixels ? dk_dcm_demosaic(&f) == DK_OK : 1;
        if (parsed[i] && f.has_pixels && split) {
            s->paths[kept] = s->paths[i];
            s->files[kept++] = f;
            continue;
        }
        if (parsed[i] && st == DK_OK) { /* the message is the mosaic's, or made here */
            if (split) no_image(&f);
            st = add_skipped(s, f.path, !split);
        }
        dk_itk_dcm_clear(&f);
        free(s->paths[i]);
    }
    s->n = kept;
    return st;
}

dk_status dk_dcm_set_from_dir(dk_dcm_set *s, const char *dir) {
    memset(s, 0, sizeof *s);
    char **paths;
    int n;
    dk_status st = list_dir(&paths, &n, dir);
    if (st != DK_OK) return st;
    s->paths = paths;
    s->n = n;
    s->files = calloc((size_t)(n ? n : 1), sizeof *s->files);
    char *parsed = calloc((size_t)(n ? n : 1), 1);
    if (!s->files || !parsed) {
        free(parsed);
        dk_dcm_set_free(s);
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory for %d file headers", dir, n);
    }
    for (int i = 0; i < n; i++) s->files[i].path = paths[i];
    st = scan_isolated(s, parsed, 1);
    if (st == DK_OK) st = keep_images(s, parsed);
    free(parsed);
    if (st != DK_OK) dk_dcm_set_free(s);
    else dk_clear_error(); /* files passed over are listed, not an error */
    return st;
}

dk_status dk_dcm_set_from_file(dk_dcm_set *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->paths = malloc(sizeof *s->paths);
    s->files = calloc(1, sizeof *s->files);
    if (s->paths) s->paths[0] = strdup(path);
    if (!s->paths || !s->files || !s->paths[0]) {
        if (s->paths) s->n = 1;
        dk_dcm_set_free(s);
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory", path);
    }
    s->n = 1;
    s->files[0].path = s->paths[0];
    char parsed = 0;
    dk_status st = scan_isolated(s, &parsed, 0);
    if (st == DK_OK && !s->files[0].has_pixels) st = no_image(&s->files[0]);
    if (st == DK_OK) st = dk_dcm_demosaic(&s->files[0]);
    if (st != DK_OK) dk_dcm_set_free(s);
    return st;
}
