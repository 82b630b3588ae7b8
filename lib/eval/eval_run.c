/*
 * dk_eval_run: pair the files of the prediction and reference folders by case id, evaluate
 * every case, and write the report folder whole or not at all.
 *
 * Case ids. An image file's id is its name without the extension (.nii.gz, .nii, .hdr,
 * .img, .png, .mha, .mhd, .nrrd, .nhdr; any letter case). A prediction matches the
 * reference of the same id, else the one its id names without a trailing "_pred"; files
 * named "*_probs.*" in the prediction folder (probability maps of dakd predict) and an
 * ".img" beside its ".hdr" are not cases. Masks may end in "_mask", images in "_0000" or
 * "_image". Hidden files and other extensions are ignored. Two files giving one id, a
 * prediction without a reference or a reference without a prediction are refused, with
 * the names listed.
 *
 * The output folder. Files go to a temporary sibling folder ("<parent>/.<name>.<pid>.<n>.tmp")
 * which is renamed to out_dir at the end; on any failure it is removed and out_dir is as it
 * was. A folder written by dakd eval carries the marker file ".dakd-eval"; an existing
 * out_dir is replaced only when it has that marker (moved aside, the new one renamed in, the
 * old one removed) or is empty; any other existing path is refused before work starts.
 */
#include "report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER ".dakd-eval"

static const char *const exts[] = {".nii.gz", ".nii", ".hdr", ".img", ".png",
                                   ".mha",    ".mhd", ".nrrd", ".nhdr"};

typedef struct {
    char *name, *path, *id; /* owned */
} entry;

typedef struct {
    entry *e;
    int n;
} listing;

static void listing_free(listing *l) {
    for (int i = 0; i < l->n; i++) free(l->e[i].name), free(l->e[i].path), free(l->e[i].id);
    free(l->e);
    l->e = NULL;
    l->n = 0;
}

/* Length of `name` without its image extension, or 0 when it has none. */
static size_t stem_len(const char *name) {
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof exts / sizeof exts[0]; k++) {
        size_t e = strlen(exts[k]);
        if (n > e && strcasecmp(name + n - e, exts[k]) == 0) return n - e;
    }
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n > k && strncmp(s + n - k, suffix, k) == 0;
}

/* Whether `name` in `dir` is a case file of the folder (see the banner). */
static int is_case_file(const char *dir, const char *name, int is_pred) {
    size_t n = stem_len(name);
    if (name[0] == '.' || n == 0) return 0;
    if (is_pred && ends_with(name, n, "_probs")) return 0;
    if (strcasecmp(name + n, ".img") == 0) { /* the data half of an Analyze pair */
        char hdr[4096];
        snprintf(hdr, sizeof hdr, "%s/%.*s.hdr", dir, (int)n, name);
        if (access(hdr, F_OK) == 0) return 0;
    }
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static dk_status add_entry(listing *l, int *cap, const char *dir, const char *name) {
    if (l->n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        entry *e = realloc(l->e, (size_t)nc * sizeof *e);
        if (!e) return dk_fail(DK_ERR_NOMEM, "%s: listing", dir);
        l->e = e;
        *cap = nc;
    }
    entry *e = &l->e[l->n];
    size_t plen = strlen(dir) + strlen(name) + 2;
    e->name = strdup(name);
    e->path = malloc(plen);
    e->id = strndup(name, stem_len(name));
    l->n++;
    if (!e->name || !e->path || !e->id) return dk_fail(DK_ERR_NOMEM, "%s: listing", dir);
    snprintf(e->path, plen, "%s/%s", dir, name);
    return DK_OK;
}

/* The case files of `dir`, sorted by name. */
static dk_status list_dir(listing *l, const char *dir, const char *what, int is_pred) {
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d) return dk_fail(DK_ERR_IO, "%s (%s): cannot open folder: %s", dir, what,
                           strerror(errno));
    int cap = 0;
    dk_status st = DK_OK;
    struct dirent *de;
    while (st == DK_OK && (de = readdir(d)))
        if (is_case_file(dir, de->d_name, is_pred)) st = add_entry(l, &cap, dir, de->d_name);
    closedir(d);
    if (st == DK_OK && l->n == 0)
        st = dk_fail(DK_ERR_IO, "%s (%s): no image files (.nii.gz .nii .hdr .png .mha .mhd "
                     ".nrrd .nhdr)", dir, what);
    if (st != DK_OK) listing_free(l);
    else qsort(l->e, (size_t)l->n, sizeof *l->e, cmp_name);
    return st;
}

/* Index in l of the entry with id `id` (or id + one of the suffixes), or -1. */
static int find_id(const listing *l, const char *id, const char *const *suffixes, int ns) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].id, id) == 0) return i;
    size_t n = strlen(id);
    for (int s = 0; s < ns; s++)
        for (int i = 0; i < l->n; i++) {
            size_t k = strlen(l->e[i].id);
            if (k == n + strlen(suffixes[s]) && strncmp(l->e[i].id, id, n) == 0 &&
                strcmp(l->e[i].id + n, suffixes[s]) == 0)
                return i;
        }
    return -1;
}

/* Two files of one folder giving one id. */
static dk_status check_unique(const listing *l, const char *dir) {
    for (int i = 0; i < l->n; i++)
        for (int j = i + 1; j < l->n; j++)
            if (strcmp(l->e[i].id, l->e[j].id) == 0)
                return dk_fail(DK_ERR_ARG, "%s: %s and %s give the same case id '%s'", dir,
                               l->e[i].name, l->e[j].name, l->e[i].id);
    return DK_OK;
}

/* Append a name to a bounded list message. */
static void list_name(dk_sbuf *b, int *count, const char *name) {
    if (*count < 20) dk_sb_printf(b, "%s%s", *count ? ", " : "", name);
    else if (*count == 20) dk_sb_puts(b, ", ...");
    (*count)++;
}

/* pair[i] = index in `pred` of reference i's prediction. */
static dk_status pair_files(int *pair, const listing *pred, const listing *ref,
                            const dk_eval_opts *o) {
    static const char *const pred_sfx[] = {"_pred"};
    dk_status st = check_unique(pred, o->pred_dir);
    if (st == DK_OK) st = check_unique(ref, o->ref_dir);
    if (st != DK_OK) return st;
    int *used = calloc((size_t)pred->n, sizeof *used);
    if (!used) return dk_fail(DK_ERR_NOMEM, "pairing %d files", pred->n);
    for (int i = 0; i < ref->n; i++) {
        pair[i] = find_id(pred, ref->e[i].id, pred_sfx, 1);
        if (pair[i] >= 0 && used[pair[i]]++) pair[i] = -1; /* "x" and "x_pred" both: unique */
    }
    dk_sbuf m = {0};
    int n_pred = 0, n_ref = 0;
    dk_sb_puts(&m, "predictions without a reference: ");
    for (int j = 0; j < pred->n; j++)
        if (!used[j]) list_name(&m, &n_pred, pred->e[j].name);
    dk_sb_printf(&m, "%s; references without a prediction: ", n_pred ? "" : "none");
    for (int i = 0; i < ref->n; i++)
        if (pair[i] < 0) list_name(&m, &n_ref, ref->e[i].name);
    if (n_pred || n_ref)
        st = dk_fail(DK_ERR_IO, "%s vs %s: %d unmatched files: %s%s", o->pred_dir, o->ref_dir,
                     n_pred + n_ref, m.s ? m.s : "", n_ref ? "" : "none");
    dk_sb_free(&m);
    free(used);
    return st;
}

/* ---------------------------------------------------------------- labels */

/* Add the non-zero values of a reference to the set (bitmap of 0..65535). */
static dk_status scan_labels(uint8_t *seen, const dk_volume *v, const char *id,
                             const char *path) {
    int64_t n = v->nx * v->ny * v->nz;
    if (v->nc != 1 || v->nt != 1)
        return dk_fail(DK_ERR_FORMAT, "case %s: %s: a label map has one channel and one time "
                       "point (nc=%lld nt=%lld)", id, path, (long long)v->nc, (long long)v->nt);
    for (int64_t i = 0; i < n; i++) {
        double x = dk_volume_get(v, i);
        if (x == 0) continue;
        if (!(x == floor(x)) || x < 0)
            return dk_fail(DK_ERR_FORMAT, "case %s: %s: voxel %lld holds %g, not a label (a "
                           "non-negative integer)", id, path, (long long)i, x);
        if (x > 65535)
            return dk_fail(DK_ERR_UNSUPPORTED, "case %s: %s: label %g above 65535", id, path, x);
        seen[(int)x] = 1;
    }
    return DK_OK;
}

static dk_status read_case_file(dk_volume *v, const char *id, const char *path) {
    dk_status st = dk_volume_read(v, path);
    return st == DK_OK ? DK_OK : dk_error_context(st, "case %s", id);
}

/* Every non-zero label present in any reference, ascending. */
static dk_status find_labels(int **labels, int *n, const dk_rep_run *r) {
    uint8_t *seen = calloc(65536, 1);
    if (!seen) return dk_fail(DK_ERR_NOMEM, "label set");
    dk_status st = DK_OK;
    for (int i = 0; i < r->n_cases && st == DK_OK; i++) {
        dk_volume v;
        st = read_case_file(&v, r->cases[i].id, r->cases[i].ref);
        if (st == DK_OK) st = scan_labels(seen, &v, r->cases[i].id, r->cases[i].ref);
        dk_volume_free(&v);
    }
    *n = 0;
    for (int l = 1; l < 65536; l++) *n += seen[l];
    if (st == DK_OK && *n == 0)
        st = dk_fail(DK_ERR_ARG, "%s: no reference holds a non-zero label; name the labels to "
                     "score", r->opts->ref_dir);
    if (st == DK_OK && !(*labels = malloc((size_t)*n * sizeof **labels)))
        st = dk_fail(DK_ERR_NOMEM, "label list");
    if (st == DK_OK)
        for (int l = 1, k = 0; l < 65536; l++)
            if (seen[l]) (*labels)[k++] = l;
    free(seen);
    return st;
}

/* ---------------------------------------------------------------- cases */

static void cases_free(dk_rep_case *c, int n) {
    for (int i = 0; c && i < n; i++) {
        free(c[i].id), free(c[i].pred), free(c[i].ref), free(c[i].mask), free(c[i].image);
        free(c[i].m), free(c[i].overlay_b64);
    }
    free(c);
}

void dk_eval_results_free(dk_eval_results *r) {
    if (!r) return;
    for (int i = 0; r->ids && i < r->n_cases; i++) free(r->ids[i]);
    free(r->ids), free(r->labels), free(r->m);
    memset(r, 0, sizeof *r);
}

/* A copy of the evaluated cases' ids and metrics into out (zeroed). */
static dk_status keep_results(dk_eval_results *out, const dk_rep_run *r) {
    int nc = r->n_cases, nl = r->n_labels;
    out->ids = calloc((size_t)nc, sizeof *out->ids);
    out->labels = malloc((size_t)nl * sizeof *out->labels);
    out->m = malloc((size_t)nc * (size_t)nl * sizeof *out->m);
    if (!out->ids || !out->labels || !out->m)
        return dk_fail(DK_ERR_NOMEM, "results of %d cases", nc);
    out->n_cases = nc, out->n_labels = nl;
    memcpy(out->labels, r->labels, (size_t)nl * sizeof *out->labels);
    for (int i = 0; i < nc; i++) {
        if (!(out->ids[i] = strdup(r->cases[i].id)))
            return dk_fail(DK_ERR_NOMEM, "results of %d cases", nc);
        memcpy(out->m + (size_t)i * nl, r->cases[i].m, (size_t)nl * sizeof *out->m);
    }
    return DK_OK;
}

/* The optional file of case `id` in the listing (NULL listing: none). */
static dk_status optional_file(char **out, const listing *l, const char *dir, const char *id,
                               const char *const *sfx, int ns, const char *what) {
    *out = NULL;
    if (!l) return DK_OK;
    int j = find_id(l, id, sfx, ns);
    if (j < 0) return dk_fail(DK_ERR_IO, "case %s: no %s for it in %s", id, what, dir);
    if (!(*out = strdup(l->e[j].path))) return dk_fail(DK_ERR_NOMEM, "case list");
    return DK_OK;
}

/* Build r->cases from the folders. */
static dk_status make_cases(dk_rep_run *r, const listing *pred, const listing *ref,
                            const listing *mask, const listing *image) {
    static const char *const mask_sfx[] = {"_mask"}, *const image_sfx[] = {"_0000", "_image"};
    const dk_eval_opts *o = r->opts;
    int *pair = malloc((size_t)ref->n * sizeof *pair);
    r->cases = calloc((size_t)ref->n, sizeof *r->cases);
    if (!pair || !r->cases) {
        free(pair);
        return dk_fail(DK_ERR_NOMEM, "case list of %d", ref->n);
    }
    dk_status st = pair_files(pair, pred, ref, o);
    for (int i = 0; st == DK_OK && i < ref->n; i++) {
        dk_rep_case *c = &r->cases[i];
        r->n_cases = i + 1;
        c->id = strdup(ref->e[i].id);
        c->ref = strdup(ref->e[i].path);
        c->pred = strdup(pred->e[pair[i]].path);
        if (!c->id || !c->ref || !c->pred) st = dk_fail(DK_ERR_NOMEM, "case list");
        if (st == DK_OK)
            st = optional_file(&c->mask, mask, o->mask_dir, c->id, mask_sfx, 1, "mask");
        if (st == DK_OK)
            st = optional_file(&c->image, image, o->image_dir, c->id, image_sfx, 2, "image");
    }
    free(pair);
    return st;
}

/* Read the case's files, evaluate it and draw its overlay. */
static dk_status eval_one(dk_rep_case *c, const dk_rep_run *r) {
    dk_volume pred = {0}, ref = {0}, mask = {0}, image = {0};
    dk_status st = read_case_file(&ref, c->id, c->ref);
    if (st == DK_OK) st = read_case_file(&pred, c->id, c->pred);
    if (st == DK_OK && c->mask) st = read_case_file(&mask, c->id, c->mask);
    if (st == DK_OK && c->image) st = read_case_file(&image, c->id, c->image);
    if (st == DK_OK && !(c->m = calloc((size_t)r->n_labels, sizeof *c->m)))
        st = dk_fail(DK_ERR_NOMEM, "case %s: metrics", c->id);
    if (st == DK_OK) {
        st = dk_eval_case(c->m, &pred, c->pred, &ref, c->ref, c->mask ? &mask : NULL,
                          r->labels, r->n_labels, &r->opts->metric);
        if (st != DK_OK) st = dk_error_context(st, "case %s", c->id);
    }
    if (st == DK_OK)
        st = dk_rep_overlay(c, &pred, &ref, c->image ? &image : NULL, r->labels, r->n_labels);
    dk_volume_free(&pred), dk_volume_free(&ref), dk_volume_free(&mask), dk_volume_free(&image);
    return st;
}

/* ---------------------------------------------------------------- the output folder */

/* 0 = absent, 1 = empty folder, 2 = dakd eval output, -1 = anything else. */
static int out_state(const char *out) {
    struct stat sb;
    if (stat(out, &sb) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode)) return -1;
    char p[4096];
    snprintf(p, sizeof p, "%s/" MARKER, out);
    if (access(p, F_OK) == 0) return 2;
    DIR *d = opendir(out);
    int empty = d != NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = 0;
    if (d) closedir(d);
    return empty ? 1 : -1;
}

static dk_status check_out(const char *out) {
    if (!out || !*out) return dk_fail(DK_ERR_ARG, "an output folder (out_dir) is required");
    if (out_state(out) < 0)
        return dk_fail(DK_ERR_ARG, "%s: exists and is not a dakd eval output folder (no %s "
                       "marker); refusing to replace it", out, MARKER);
    return DK_OK;
}

static dk_status make_tmp_dir(char *tmp, size_t n, const char *out) {
    char base[4096];
    snprintf(base, sizeof base, "%s", out);
    for (size_t k = strlen(base); k > 1 && base[k - 1] == '/'; k--) base[k - 1] = '\0';
    dk_status st = dk_tmp_path_for(tmp, n, base);
    if (st != DK_OK) return st;
    if (mkdir(tmp, 0755) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot create the temporary folder %s: %s", out, tmp,
                       strerror(errno));
    char p[4200];
    snprintf(p, sizeof p, "%s/" MARKER, tmp);
    dk_sbuf b = {0};
    dk_sb_puts(&b, "A dakd eval output folder: the next dakd eval writing here replaces it "
                   "whole.\n");
    st = dk_sb_write_file(&b, p);
    dk_sb_free(&b);
    if (st != DK_OK) dk_discard_tree(tmp);
    return st;
}

/* Move the finished temporary folder to `out` (see the banner). */
static dk_status commit_dir(const char *tmp, const char *out) {
    int state = out_state(out);
    if (state < 0) return check_out(out);
    char old[4096] = "";
    if (state == 1 && rmdir(out) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot replace the empty folder: %s", out,
                       strerror(errno));
    if (state == 2) {
        dk_status st = dk_tmp_path_for(old, sizeof old, tmp);
        if (st != DK_OK) return st;
        if (rename(out, old) != 0)
            return dk_fail(DK_ERR_IO, "%s: cannot move the previous report aside: %s", out,
                           strerror(errno));
    }
    if (rename(tmp, out) != 0) {
        int e = errno;
        if (old[0] && rename(old, out) != 0) dk_log(DK_LOG_ERROR, "%s: left at %s", out, old);
        return dk_fail(DK_ERR_IO, "%s: cannot rename from %s: %s", out, tmp, strerror(e));
    }
    if (old[0]) dk_discard_tree(old);
    return DK_OK;
}

/* ---------------------------------------------------------------- the run */

static dk_status evaluate(const dk_eval_opts *o, const char *dir) {
    dk_rep_run r = {o, o->title ? o->title : "dakd evaluation", NULL, 0, o->labels,
                    o->n_labels, o->labels != NULL};
    listing pred = {0}, ref = {0}, mask = {0}, image = {0};
    int *found = NULL;
    dk_status st = list_dir(&pred, o->pred_dir, "predictions", 1);
    if (st == DK_OK) st = list_dir(&ref, o->ref_dir, "references", 0);
    if (st == DK_OK && o->mask_dir) st = list_dir(&mask, o->mask_dir, "masks", 0);
    if (st == DK_OK && o->image_dir) st = list_dir(&image, o->image_dir, "images", 0);
    if (st == DK_OK)
        st = make_cases(&r, &pred, &ref, o->mask_dir ? &mask : NULL,
                        o->image_dir ? &image : NULL);
    if (st == DK_OK && !o->labels) {
        st = find_labels(&found, &r.n_labels, &r);
        r.labels = found;
    }
    for (int i = 0; st == DK_OK && i < r.n_cases; i++) {
        dk_log(DK_LOG_INFO, "eval: %d/%d %s", i + 1, r.n_cases, r.cases[i].id);
        st = eval_one(&r.cases[i], &r);
    }
    if (st == DK_OK) st = dk_rep_write_csv(&r, dir);
    if (st == DK_OK) st = dk_rep_write_json(&r, dir);
    if (st == DK_OK) st = dk_rep_write_md(&r, dir);
    if (st == DK_OK) st = dk_rep_write_html(&r, dir);
    if (st == DK_OK && o->results) st = keep_results(o->results, &r);
    cases_free(r.cases, r.n_cases);
    free(found);
    listing_free(&pred), listing_free(&ref), listing_free(&mask), listing_free(&image);
    return st;
}

/* The output folder is replaced whole: it may neither be nor hold an input folder. */
static dk_status check_inputs_kept(const dk_eval_opts *o) {
    const char *in[6] = {o->pred_dir, o->ref_dir, o->mask_dir, o->image_dir, o->compare_a,
                         o->compare_b};
    static const char *const what[6] = {"the prediction folder", "the reference folder",
                                        "the mask folder", "the image folder",
                                        "one of the runs compared",
                                        "one of the runs compared"};
    for (int k = 0; k < 6; k++)
        if (in[k] && (dk_same_file(o->out_dir, in[k]) || dk_path_within(in[k], o->out_dir)))
            return dk_fail(DK_ERR_ARG, "the output folder %s, replaced whole, %s %s %s; choose "
                           "another folder", o->out_dir,
                           dk_same_file(o->out_dir, in[k]) ? "is" : "holds", what[k], in[k]);
    return DK_OK;
}

static dk_status check_opts(const dk_eval_opts *o) {
    int cmp = o->compare_a || o->compare_b;
    if (cmp && !(o->compare_a && o->compare_b))
        return dk_fail(DK_ERR_ARG, "a comparison needs two earlier eval output folders "
                       "(compare_a, compare_b)");
    if (!cmp && (!o->pred_dir || !o->ref_dir))
        return dk_fail(DK_ERR_ARG, "the prediction and reference folders (pred_dir, ref_dir) "
                       "are required");
    if (!cmp && !(isfinite(o->metric.nsd_tol_mm) && o->metric.nsd_tol_mm >= 0))
        return dk_fail(DK_ERR_ARG, "NSD tolerance (nsd_tol_mm) %g is not a distance >= 0 mm",
                       o->metric.nsd_tol_mm);
    if (o->labels && o->n_labels < 1)
        return dk_fail(DK_ERR_ARG, "the list of labels to score is empty");
    for (int k = 0; o->labels && k < o->n_labels; k++) {
        if (o->labels[k] < 1)
            return dk_fail(DK_ERR_ARG, "labels to score: %d is not a label (1 or more)",
                           o->labels[k]);
        for (int j = 0; j < k; j++)
            if (o->labels[j] == o->labels[k])
                return dk_fail(DK_ERR_ARG, "labels to score: %d given twice", o->labels[k]);
    }
    if (!o->out_dir || !*o->out_dir) return check_out(o->out_dir);
    dk_status st = check_inputs_kept(o);
    return st != DK_OK ? st : check_out(o->out_dir);
}

dk_status dk_eval_run(const dk_eval_opts *o) {
    if (o->results) memset(o->results, 0, sizeof *o->results);
    dk_status st = check_opts(o);
    if (st != DK_OK) return st;
    char tmp[4096];
    st = make_tmp_dir(tmp, sizeof tmp, o->out_dir);
    if (st != DK_OK) return st;
    if (o->compare_a)
        st = dk_rep_compare(o->compare_a, o->compare_b, tmp,
                            o->title ? o->title : "dakd comparison");
    else
        st = evaluate(o, tmp);
    if (st == DK_OK) st = commit_dir(tmp, o->out_dir);
    if (st != DK_OK) dk_discard_tree(tmp);
    if (st != DK_OK) dk_eval_results_free(o->results);
    return st;
}
