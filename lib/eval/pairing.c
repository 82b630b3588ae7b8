/*
 * Case ids from file names, one rule for dakd predict and dakd eval, and the pairing of
 * predictions with references (folders or a case list) into the cases of an evaluation.
 *
 * A file's stem is its name without the image extension (.nii.gz .nii .hdr(.gz) .img(.gz)
 * .png .mha .mhd .nrrd .nhdr; any letter case). A role suffix names what the file is of its
 * case; taking it off gives the case id:
 *   image       "_0000" (an underscore and four digits: nnU-Net's channel) or "_image"
 *   prediction  "_pred"
 *   reference   "_label", "_seg" or "_gt"
 *   mask        "_mask"
 * A stem that is only a suffix keeps it. dakd predict names its outputs by the image's id,
 * so `case_0000.nii.gz` or `case_image.nii.gz` gives `case.nii.gz`, which eval pairs with
 * `case.nii.gz`, `case_label.nii.gz`, `case_seg.nii.gz` or `case_gt.nii.gz`.
 *
 * Pairing (see dk_eval_run): a reference pairs with the prediction whose stem equals its
 * stem; failing that, whose id (stem without "_pred") equals its stem; then whose stem
 * equals its id; then whose id equals its id. Each file pairs once. The case is named by
 * the name they share. In a reference folder, a file whose stem is an image's
 * (`<x>_image`, `<x>_0000`) of a case whose reference is in the folder too (stem or id
 * `<x>`) is that image, not a reference, and is passed over (a phantom folder holds both).
 */
#include "report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const exts[] = {".nii.gz", ".nii", ".hdr.gz", ".img.gz", ".hdr", ".img",
                                   ".png",    ".mha", ".mhd",    ".nrrd",   ".nhdr"};

size_t dk_case_stem_len(const char *name) {
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof exts / sizeof exts[0]; k++) {
        size_t e = strlen(exts[k]);
        if (n > e && strcasecmp(name + n - e, exts[k]) == 0) return n - e;
    }
    return 0;
}

/* 1 when s[0..n) ends in `suffix` with something before it. */
static int has_suffix(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n > k && strncmp(s + n - k, suffix, k) == 0;
}

int dk_case_channel(const char *stem, size_t n) {
    if (n < 6 || stem[n - 5] != '_') return -1;
    int k = 0;
    for (size_t i = n - 4; i < n; i++) {
        if (stem[i] < '0' || stem[i] > '9') return -1;
        k = 10 * k + (stem[i] - '0');
    }
    return k;
}

size_t dk_case_id_len(const char *stem, size_t n, dk_case_role role) {
    static const char *const sfx[][4] = {
        [DK_ROLE_IMAGE] = {"_image", NULL},
        [DK_ROLE_PRED] = {"_pred", NULL},
        [DK_ROLE_REF] = {"_label", "_seg", "_gt", NULL},
        [DK_ROLE_MASK] = {"_mask", NULL},
    };
    if (role == DK_ROLE_IMAGE && dk_case_channel(stem, n) >= 0) return n - 5;
    for (int k = 0; sfx[role][k]; k++)
        if (has_suffix(stem, n, sfx[role][k])) return n - strlen(sfx[role][k]);
    return n;
}

/* ---------------------------------------------------------------- folder listings */

void dk_listing_free(dk_listing *l) {
    for (int i = 0; i < l->n; i++)
        free(l->e[i].name), free(l->e[i].path), free(l->e[i].stem), free(l->e[i].id);
    free(l->e);
    memset(l, 0, sizeof *l);
}

/* Whether `name` in `dir` is a case file of the folder: an image extension, not hidden, a
 * regular file; not a probability map of dakd predict in a prediction folder; not the data
 * half of an Analyze pair. */
static int is_case_file(const char *dir, const char *name, dk_case_role role) {
    size_t n = dk_case_stem_len(name);
    if (name[0] == '.' || n == 0) return 0;
    if (role == DK_ROLE_PRED && has_suffix(name, n, "_probs")) return 0;
    const char *ext = name + n;
    if (strncasecmp(ext, ".img", 4) == 0) {
        char hdr[4096];
        snprintf(hdr, sizeof hdr, "%s/%.*s.hdr%s", dir, (int)n, name, ext + 4);
        if (access(hdr, F_OK) == 0) return 0;
    }
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const dk_listing_entry *)a)->name, ((const dk_listing_entry *)b)->name);
}

dk_status dk_listing_add(dk_listing *l, const char *name, const char *path, size_t stem_n,
                         dk_case_role role) {
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 64;
        dk_listing_entry *e = realloc(l->e, (size_t)nc * sizeof *e);
        if (!e) return dk_fail(DK_ERR_NOMEM, "%s: listing", path);
        l->e = e;
        l->cap = nc;
    }
    dk_listing_entry *e = &l->e[l->n++];
    e->name = strdup(name);
    e->path = strdup(path);
    e->stem = strndup(name, stem_n);
    e->id = strndup(name, dk_case_id_len(name, stem_n, role));
    if (!e->name || !e->path || !e->stem || !e->id)
        return dk_fail(DK_ERR_NOMEM, "%s: listing", path);
    return DK_OK;
}

dk_status dk_listing_read(dk_listing *l, const char *dir, const char *what, dk_case_role role) {
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d)
        return dk_fail(DK_ERR_IO, "%s (%s): cannot open folder: %s", dir, what, strerror(errno));
    dk_status st = DK_OK;
    struct dirent *de;
    char p[8192];
    while (st == DK_OK && (de = readdir(d)))
        if (is_case_file(dir, de->d_name, role)) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            st = dk_listing_add(l, de->d_name, p, dk_case_stem_len(de->d_name), role);
        }
    closedir(d);
    if (st == DK_OK && l->n == 0)
        st = dk_fail(DK_ERR_IO,
                     "%s (%s): no image files (.nii.gz .nii .hdr .png .mha .mhd "
                     ".nrrd .nhdr)",
                     dir, what);
    if (st != DK_OK)
        dk_listing_free(l);
    else
        qsort(l->e, (size_t)l->n, sizeof *l->e, cmp_name);
    return st;
}

int dk_listing_find(const dk_listing *l, const char *id, const char *const *suffixes, int ns) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].stem, id) == 0) return i;
    size_t n = strlen(id);
    for (int s = 0; s < ns; s++)
        for (int i = 0; i < l->n; i++)
            if (strncmp(l->e[i].stem, id, n) == 0 && strcmp(l->e[i].stem + n, suffixes[s]) == 0)
                return i;
    return -1;
}

/* Two files of one folder with one stem (x.nii and x.nii.gz). */
static dk_status check_unique(const dk_listing *l, const char *dir) {
    for (int i = 0; i < l->n; i++)
        for (int j = i + 1; j < l->n; j++)
            if (strcmp(l->e[i].stem, l->e[j].stem) == 0)
                return dk_fail(DK_ERR_IO, "%s: %s and %s give the same case id '%s'", dir,
                               l->e[i].name, l->e[j].name, l->e[i].stem);
    return DK_OK;
}

/* Drop the images of a reference folder (see the banner). */
/* 1 when s is exactly the m characters of p. */
static int is_prefix_of(const char *s, const char *p, size_t m) {
    return strlen(s) == m && strncmp(s, p, m) == 0;
}

/* 1 when entry i of the reference folder is the image of another entry's case. */
static int is_image_of_ref(const dk_listing *ref, int i) {
    const char *stem = ref->e[i].stem;
    size_t n = strlen(stem), m = dk_case_id_len(stem, n, DK_ROLE_IMAGE);
    for (int j = 0; j < ref->n && m < n; j++) {
        const dk_listing_entry *o = &ref->e[j];
        if (j != i && (is_prefix_of(o->stem, stem, m) ||
                       (strcmp(o->id, o->stem) && is_prefix_of(o->id, stem, m))))
            return 1;
    }
    return 0;
}

static void drop_images(dk_listing *ref) {
    if (ref->n < 1) return;
    int k = 0, *drop = calloc((size_t)ref->n, sizeof *drop);
    if (!drop) return; /* then they stay references, and unmatched files name them */
    for (int i = 0; i < ref->n; i++)
        drop[i] = is_image_of_ref(ref, i);
    for (int i = 0; i < ref->n; i++) {
        dk_listing_entry *e = &ref->e[i];
        if (drop[i])
            free(e->name), free(e->path), free(e->stem), free(e->id);
        else
            ref->e[k++] = *e;
    }
    ref->n = k;
    free(drop);
}

/* ---------------------------------------------------------------- pairing */

/* The name a pairing round compares: 0 stem/stem, 1 id/stem, 2 stem/id, 3 id/id. */
static const char *round_name(const dk_listing_entry *e, int round, int is_pred) {
    int use_id = is_pred ? round & 1 : round >> 1;
    return use_id ? e->id : e->stem;
}

void dk_listing_pair(int *pair, int *used, const dk_listing *pred, const dk_listing *ref) {
    for (int i = 0; i < ref->n; i++)
        pair[i] = -1;
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < ref->n; i++)
            for (int j = 0; j < pred->n && pair[i] < 0; j++)
                if (!used[j] &&
                    !strcmp(round_name(&pred->e[j], round, 1), round_name(&ref->e[i], round, 0)))
                    pair[i] = j, used[j] = 1;
}

/* Predictions of case-list rows that the filter left out are not unmatched: a prediction
 * folder of every case scores one split. They are passed over (used = 2) and counted in
 * the log. */
static void pass_over_others(int *used, const dk_listing *pred, const dk_listing *others) {
    int n = 0;
    for (int j = 0; j < pred->n; j++)
        for (int k = 0; k < others->n && !used[j]; k++)
            if (!strcmp(pred->e[j].stem, others->e[k].id) ||
                !strcmp(pred->e[j].id, others->e[k].id))
                used[j] = 2, n++;
    if (n)
        dk_log(DK_LOG_INFO, "eval: %d prediction%s of cases outside the selection passed over", n,
               n == 1 ? "" : "s");
}

/* Append a name to a bounded list message. */
static void list_name(dk_sbuf *b, int *count, const char *name) {
    if (*count < 20)
        dk_sb_printf(b, "%s%s", *count ? ", " : "", name);
    else if (*count == 20)
        dk_sb_puts(b, ", ...");
    (*count)++;
}

/* Unmatched files: an error naming them, or (subset_pred) references without a prediction
 * are passed over and named in a note. */
static dk_status check_unmatched(dk_rep_run *r, const int *pair, const int *used,
                                 const dk_listing *pred, const dk_listing *ref,
                                 const char *ref_src) {
    const dk_eval_opts *o = r->opts;
    dk_sbuf m = {0}, skipped = {0};
    int n_pred = 0, n_ref = 0, n_skip = 0;
    dk_sb_puts(&m, "predictions without a reference: ");
    for (int j = 0; j < pred->n; j++)
        if (!used[j]) list_name(&m, &n_pred, pred->e[j].name);
    dk_sb_printf(&m, "%s; references without a prediction: ", n_pred ? "" : "none");
    for (int i = 0; i < ref->n; i++)
        if (pair[i] < 0)
            list_name(o->subset_pred ? &skipped : &m, o->subset_pred ? &n_skip : &n_ref,
                      ref->e[i].name);
    dk_status st = DK_OK;
    if (n_pred || n_ref)
        st = dk_fail(DK_ERR_IO, "%s vs %s: %d unmatched files: %s%s", o->pred_dir, ref_src,
                     n_pred + n_ref, m.s ? m.s : "", n_ref ? "" : "none");
    else if (n_skip == ref->n)
        st = dk_fail(DK_ERR_IO, "%s vs %s: no reference has a prediction", o->pred_dir, ref_src);
    else if (n_skip)
        st = dk_rep_note(r,
                         "scored only the cases with a prediction (subset pred): %d "
                         "reference%s without one skipped: %s",
                         n_skip, n_skip == 1 ? "" : "s", skipped.s ? skipped.s : "");
    dk_sb_free(&m);
    dk_sb_free(&skipped);
    return st;
}

/* The optional file of case `id` in the listing (NULL listing: none). */
static dk_status optional_file(char **out, const dk_listing *l, const char *dir, const char *id,
                               const char *const *sfx, int ns, const char *what) {
    *out = NULL;
    if (!l) return DK_OK;
    int j = dk_listing_find(l, id, sfx, ns);
    if (j < 0) return dk_fail(DK_ERR_IO, "case %s: no %s for it in %s", id, what, dir);
    if (!(*out = strdup(l->e[j].path))) return dk_fail(DK_ERR_NOMEM, "case list");
    return DK_OK;
}

/* r->cases from the paired files: one case per paired reference, in reference order. */
static dk_status fill_cases(dk_rep_run *r, const int *pair, const dk_listing *pred,
                            const dk_listing *ref, const dk_listing *mask,
                            const dk_listing *image) {
    static const char *const mask_sfx[] = {"_mask"}, *const image_sfx[] = {"_0000", "_image"};
    const dk_eval_opts *o = r->opts;
    if (!(r->cases = calloc((size_t)ref->n, sizeof *r->cases)))
        return dk_fail(DK_ERR_NOMEM, "case list of %d", ref->n);
    dk_status st = DK_OK;
    for (int i = 0; st == DK_OK && i < ref->n; i++) {
        if (pair[i] < 0) continue;
        const dk_listing_entry *p = &pred->e[pair[i]], *f = &ref->e[i];
        dk_rep_case *c = &r->cases[r->n_cases++];
        /* the name the round matched on */
        const char *id = !strcmp(p->stem, f->stem) || !strcmp(p->id, f->stem) ? f->stem
                         : !strcmp(p->stem, f->id)                            ? p->stem
                                                                              : p->id;
        c->id = strdup(id);
        c->ref = strdup(f->path);
        c->pred = strdup(p->path);
        if (!c->id || !c->ref || !c->pred) st = dk_fail(DK_ERR_NOMEM, "case list");
        if (st == DK_OK)
            st = optional_file(&c->mask, mask, o->mask_dir, c->id, mask_sfx, 1, "mask");
        if (st == DK_OK)
            st = optional_file(&c->image, image, o->image_dir, c->id, image_sfx, 2, "image");
    }
    return st;
}

/* The references of a case list: its filtered rows' label files, named by case id; the ids
 * of the rows the filters left out into `others`. */
static dk_status csv_refs(dk_listing *ref, dk_listing *others, const dk_eval_opts *o) {
    dk_case_list all = {0}, sel = {0};
    memset(ref, 0, sizeof *ref);
    memset(others, 0, sizeof *others);
    dk_status st = dk_cases_read(&all, o->cases_csv);
    if (st == DK_OK) st = dk_cases_where(&sel, &all, o->where, 1);
    for (int i = 0; st == DK_OK && i < sel.n; i++) {
        const dk_case *c = &sel.cases[i];
        if (!c->label)
            st = dk_fail(DK_ERR_FORMAT, "%s:%d: case %s has no label to score against",
                         o->cases_csv, c->line, c->id);
        else
            st = dk_listing_add(ref, c->id, c->label, strlen(c->id), DK_ROLE_REF);
        if (st == DK_OK) { /* a case list's id is the id as written */
            free(ref->e[ref->n - 1].id);
            if (!(ref->e[ref->n - 1].id = strdup(c->id))) st = dk_fail(DK_ERR_NOMEM, "case list");
        }
    }
    /* sel keeps all's order and lines: a row of all not next in sel was left out */
    for (int i = 0, j = 0; st == DK_OK && i < all.n; i++) {
        if (j < sel.n && sel.cases[j].line == all.cases[i].line) {
            j++;
            continue;
        }
        st = dk_listing_add(others, all.cases[i].id, all.cases[i].image, strlen(all.cases[i].id),
                            DK_ROLE_REF);
    }
    dk_cases_free(&all);
    dk_cases_free(&sel);
    if (st != DK_OK) dk_listing_free(ref), dk_listing_free(others);
    return st;
}

dk_status dk_rep_make_cases(dk_rep_run *r) {
    const dk_eval_opts *o = r->opts;
    dk_listing pred = {0}, ref = {0}, mask = {0}, image = {0}, others = {0};
    int *pair = NULL, *used = NULL;
    const char *ref_src = o->cases_csv ? o->cases_csv : o->ref_dir;
    dk_status st = dk_listing_read(&pred, o->pred_dir, "predictions", DK_ROLE_PRED);
    if (st == DK_OK)
        st = o->cases_csv ? csv_refs(&ref, &others, o)
                          : dk_listing_read(&ref, o->ref_dir, "references", DK_ROLE_REF);
    if (st == DK_OK && o->mask_dir) st = dk_listing_read(&mask, o->mask_dir, "masks", DK_ROLE_MASK);
    if (st == DK_OK && o->image_dir)
        st = dk_listing_read(&image, o->image_dir, "images", DK_ROLE_IMAGE);
    if (st == DK_OK) st = check_unique(&pred, o->pred_dir);
    if (st == DK_OK && !o->cases_csv) st = check_unique(&ref, o->ref_dir);
    if (st == DK_OK && !o->cases_csv) drop_images(&ref);
    if (st == DK_OK && (!(pair = malloc((size_t)ref.n * sizeof *pair)) ||
                        !(used = calloc((size_t)pred.n, sizeof *used))))
        st = dk_fail(DK_ERR_NOMEM, "pairing %d files", pred.n + ref.n);
    if (st == DK_OK) {
        dk_listing_pair(pair, used, &pred, &ref);
        pass_over_others(used, &pred, &others);
        st = check_unmatched(r, pair, used, &pred, &ref, ref_src);
    }
    if (st == DK_OK)
        st = fill_cases(r, pair, &pred, &ref, o->mask_dir ? &mask : NULL,
                        o->image_dir ? &image : NULL);
    free(pair);
    free(used);
    dk_listing_free(&pred), dk_listing_free(&ref), dk_listing_free(&mask);
    dk_listing_free(&image), dk_listing_free(&others);
    return st;
}
