/*
 * The rows of dk_cases_import (dakd/eval.h), gathered from a dataset's layout: nnU-Net v2 raw
 * folders, a Medical Segmentation Decathlon task, two plain folders paired by pairing.c's
 * rule, or a folder of DICOM studies. Names that fit no case become problems; nothing here
 * reads a voxel (case_check.c does).
 */
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void dk_import_problem(dk_import_set *s, dk_status st, const char *fmt, ...) {
    dk_import_result *r = s->res;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **p = realloc(r->problems, (size_t)(r->n_problems + 1) * sizeof *p);
    if (p) r->problems = p;
    if (p && (p[r->n_problems] = strdup(line))) r->n_problems++;
    if (s->first == DK_OK) s->first = st;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* A new row named id[0..n) with `channels` empty channel slots; NULL when out of memory. */
static dk_import_row *add_row(dk_import_set *s, const char *id, size_t n, int channels) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        dk_import_row *r = realloc(s->rows, (size_t)cap * sizeof *r);
        if (!r) return NULL;
        s->rows = r, s->cap = cap;
    }
    dk_import_row *r = &s->rows[s->n];
    memset(r, 0, sizeof *r);
    r->id = strndup(id, n);
    r->images = calloc((size_t)channels, sizeof *r->images);
    if (!r->id || !r->images) {
        free(r->id), free(r->images);
        return NULL;
    }
    r->n_images = channels;
    s->n++;
    return r;
}

static dk_import_row *find_row(dk_import_set *s, const char *id) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->rows[i].id, id) == 0) return &s->rows[i];
    return NULL;
}

/* Put file e of an image listing into its row: files "<id>_XXXX" of one id are the channels
 * of one case; any other file is a case of one channel. `origin_dir` prefixes the origin.
 * `ending` (nnU-Net's file_ending) asks for CASE_XXXX<ending> names, NULL for any. */
static dk_status place_image(dk_import_set *s, const dk_listing_entry *e, const char *origin_dir,
                             const char *split, const char *ending) {
    int ch = dk_case_channel(e->stem, strlen(e->stem));
    size_t n = strlen(e->name), ne = ending ? strlen(ending) : 0;
    if (ending && (ch < 0 || n < ne || strcmp(e->name + n - ne, ending) != 0)) {
        dk_import_problem(s, DK_ERR_IO, "%s: not named CASE_XXXX%s (XXXX = the channel, 0000 "
                          "for the first)", e->path, ending);
        return DK_OK;
    }
    dk_import_row *r = find_row(s, e->id);
    if (!r && !(r = add_row(s, e->id, strlen(e->id), 1))) return dk_fail(DK_ERR_NOMEM, "%s", e->path);
    int k = ch < 0 ? 0 : ch;
    if (k >= r->n_images) {
        char **im = realloc(r->images, (size_t)(k + 1) * sizeof *im);
        if (!im) return dk_fail(DK_ERR_NOMEM, "%s", e->path);
        for (int j = r->n_images; j <= k; j++) im[j] = NULL;
        r->images = im, r->n_images = k + 1;
    }
    if (r->images[k]) {
        dk_import_problem(s, DK_ERR_IO, "%s: a second image file of case '%s' channel %04d",
                          e->path, e->id, k);
        return DK_OK;
    }
    r->split = split;
    if (!(r->images[k] = strdup(e->path))) return dk_fail(DK_ERR_NOMEM, "%s", e->path);
    if (k == 0 || !r->origin) {
        free(r->origin);
        r->origin = origin_dir ? join(origin_dir, e->name) : strdup(e->name);
        if (!r->origin) return dk_fail(DK_ERR_NOMEM, "%s", e->path);
    }
    return DK_OK;
}

/* Every channel slot of rows [from, s->n) filled, else a problem per missing channel. */
static void check_channels(dk_import_set *s, int from, const char *dir) {
    for (int i = from; i < s->n; i++) {
        dk_import_row *r = &s->rows[i];
        int want = s->channels > r->n_images ? s->channels : r->n_images;
        for (int k = 0; k < want; k++)
            if (k >= r->n_images || !r->images[k])
                dk_import_problem(s, DK_ERR_IO, "%s: case '%s' has no file for channel %04d "
                                  "(%s_%04d)", dir, r->id, k, r->id, k);
    }
}

/* 1 when the file's stem carries a label's suffix (_label, _seg, _gt). */
static int is_label_name(const dk_listing_entry *e) {
    size_t n = strlen(e->stem);
    return dk_case_id_len(e->stem, n, DK_ROLE_REF) != n;
}

/* The rows of an image folder; `mixed`: it holds the labels too, which are passed over. */
static dk_status read_images(dk_import_set *s, const char *dir, const char *origin_dir,
                             const char *split, const char *ending, int mixed) {
    dk_listing l = {0};
    dk_status st = dk_listing_read(&l, dir, "images", DK_ROLE_IMAGE);
    for (int i = 0; st == DK_OK && i < l.n; i++)
        if (!mixed || !is_label_name(&l.e[i]))
            st = place_image(s, &l.e[i], origin_dir, split, ending);
    dk_listing_free(&l);
    return st;
}

/* Pair rows [from, s->n) with the label files of `dir` by pairing.c's rule; unmatched files
 * on either side are problems when `all` (a folder of labels for every image). `mixed`: the
 * folder holds the images too (a phantom folder), so only names with a label's suffix count. */
static dk_status pair_labels(dk_import_set *s, int from, const char *dir, int all, int mixed) {
    dk_listing img = {0}, lab = {0};
    int *pair = NULL, *used = NULL, kept = 0;
    dk_status st = dk_listing_read(&lab, dir, "labels", DK_ROLE_REF);
    for (int i = 0; st == DK_OK && mixed && i < lab.n; i++) /* only the labels of a mixed folder */
        if (is_label_name(&lab.e[i])) lab.e[kept++] = lab.e[i];
        else free(lab.e[i].name), free(lab.e[i].path), free(lab.e[i].stem), free(lab.e[i].id);
    if (st == DK_OK && mixed) lab.n = kept;
    for (int i = from; st == DK_OK && i < s->n; i++) {
        const char *p = s->rows[i].images[0] ? s->rows[i].images[0] : s->rows[i].id;
        const char *name = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
        size_t n = dk_case_stem_len(name);
        st = dk_listing_add(&img, name, p, n ? n : strlen(name), DK_ROLE_IMAGE);
    }
    if (st == DK_OK && (!(pair = malloc((size_t)lab.n * sizeof *pair)) ||
                        !(used = calloc((size_t)img.n + 1, sizeof *used))))
        st = dk_fail(DK_ERR_NOMEM, "%s: pairing", dir);
    if (st == DK_OK) dk_listing_pair(pair, used, &img, &lab);
    for (int i = 0; st == DK_OK && i < lab.n; i++) {
        if (pair[i] < 0)
            dk_import_problem(s, DK_ERR_IO, "%s: label without an image (no image of case '%s')",
                              lab.e[i].path, lab.e[i].id);
        else if (!(s->rows[from + pair[i]].label = strdup(lab.e[i].path)))
            st = dk_fail(DK_ERR_NOMEM, "%s", lab.e[i].path);
    }
    for (int j = 0; st == DK_OK && all && j < img.n; j++)
        if (!used[j])
            dk_import_problem(s, DK_ERR_IO, "%s: image without a label in %s", img.e[j].path,
                              dir);
    free(pair), free(used);
    dk_listing_free(&img), dk_listing_free(&lab);
    return st;
}

/* nnU-Net's label file of each row: <dir>/<id><ending>, exactly. */
static dk_status nnunet_labels(dk_import_set *s, int from, const char *dir, const char *ending) {
    dk_listing lab = {0};
    dk_status st = dk_listing_read(&lab, dir, "labels", DK_ROLE_REF);
    int *used = calloc((size_t)lab.n + 1, sizeof *used);
    if (st == DK_OK && !used) st = dk_fail(DK_ERR_NOMEM, "%s", dir);
    for (int i = from; st == DK_OK && i < s->n; i++) {
        dk_import_row *r = &s->rows[i];
        int j = dk_listing_find(&lab, r->id, NULL, 0);
        if (j < 0) {
            dk_import_problem(s, DK_ERR_IO, "%s: case '%s' has no label %s/%s%s",
                              r->images[0] ? r->images[0] : dir, r->id, dir, r->id, ending);
            continue;
        }
        used[j] = 1;
        if (!(r->label = strdup(lab.e[j].path))) st = dk_fail(DK_ERR_NOMEM, "%s", dir);
    }
    for (int j = 0; st == DK_OK && j < lab.n; j++)
        if (!used[j])
            dk_import_problem(s, DK_ERR_IO, "%s: label without an image (no %s_0000%s)",
                              lab.e[j].path, lab.e[j].stem, ending);
    free(used);
    dk_listing_free(&lab);
    return st;
}

/* ---------------------------------------------------------------- dataset.json */

/* `top` raised to the JSON number v when v is a label value (an integer 0..65535); others
 * (a fuzzed 1e76, -3, 2.5) are no label and are left to the label check of the files. */
static int raise_to(int top, const cJSON *v) {
    if (!cJSON_IsNumber(v)) return top;
    double d = v->valuedouble;
    return d >= 0 && d < 65536 && d == (int)d && (int)d > top ? (int)d : top;
}

/* The largest label value among a labels object's values (nnU-Net: "name": value or
 * [values]) or keys (MSD: "value": "name"), + 1; 0 when there is none. */
static int classes_of(const cJSON *labels, int keys) {
    int top = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, labels) {
        if (keys) {
            char *end;
            long v = strtol(e->string, &end, 10);
            if (end != e->string && !*end && v > top && v < 65536) top = (int)v;
            continue;
        }
        const cJSON *list = cJSON_IsArray(e) ? e : NULL, *v;
        cJSON_ArrayForEach(v, list) top = raise_to(top, v); /* a region: its values */
        if (!list) top = raise_to(top, e);
    }
    return top + 1;
}

static dk_status read_json(cJSON **out, dk_import_set *s, const char *root) {
    *out = NULL;
    if (!(s->json = join(root, "dataset.json"))) return dk_fail(DK_ERR_NOMEM, "%s", root);
    char *text = NULL;
    dk_status st = dk_read_file(&text, NULL, s->json);
    if (st != DK_OK) return st;
    *out = cJSON_Parse(text);
    free(text);
    if (!*out || !cJSON_IsObject(*out))
        return dk_fail(DK_ERR_FORMAT, "%s: not a JSON object", s->json);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(*out, "channel_names");
    if (!ch) ch = cJSON_GetObjectItemCaseSensitive(*out, "modality");
    s->channels = cJSON_GetArraySize(ch);
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(*out, "labels");
    s->classes = cJSON_IsObject(lab) ? classes_of(lab, cJSON_GetArraySize(lab) > 0 &&
                                                           cJSON_IsString(lab->child))
                                     : 0;
    return DK_OK;
}

/* ---------------------------------------------------------------- layouts */

static dk_status gather_nnunet(dk_import_set *s, const char *root) {
    cJSON *j = NULL;
    dk_status st = read_json(&j, s, root);
    const cJSON *fe = j ? cJSON_GetObjectItemCaseSensitive(j, "file_ending") : NULL;
    char ending[32] = ".nii.gz";
    if (cJSON_IsString(fe)) snprintf(ending, sizeof ending, "%s", fe->valuestring);
    cJSON_Delete(j);
    snprintf(s->res->rule, sizeof s->res->rule,
             "nnU-Net: imagesTr/CASE_XXXX%s (XXXX = channel, %d per case) with labelsTr/CASE%s; "
             "imagesTs unlabelled (labelsTs when present)", ending, s->channels, ending);
    static const char *const sub[][2] = {{"imagesTr", "labelsTr"}, {"imagesTs", "labelsTs"}};
    for (int t = 0; st == DK_OK && t < 2; t++) {
        char *im = join(root, sub[t][0]), *lb = join(root, sub[t][1]);
        int from = s->n;
        if (!im || !lb) st = dk_fail(DK_ERR_NOMEM, "%s", root);
        else if (t == 0 || is_dir(im))
            st = read_images(s, im, sub[t][0], t ? "test" : "train", ending, 0);
        if (st == DK_OK) check_channels(s, from, im);
        if (st == DK_OK && (t == 0 || is_dir(lb))) st = nnunet_labels(s, from, lb, ending);
        free(im), free(lb);
    }
    return st;
}

/* An MSD path ("./imagesTr/x.nii.gz") as a path below root, and the row named by its stem. */
static dk_status msd_row(dk_import_set *s, const char *root, const char *img, const char *lab,
                         const char *split) {
    while (img[0] == '.' && img[1] == '/') img += 2;
    const char *name = strrchr(img, '/') ? strrchr(img, '/') + 1 : img;
    size_t n = dk_case_stem_len(name);
    dk_import_row *r = add_row(s, name, n ? n : strlen(name), 1);
    if (!r) return dk_fail(DK_ERR_NOMEM, "%s", s->json);
    r->split = split;
    r->images[0] = join(root, img);
    r->origin = strdup(img);
    if (lab) {
        while (lab[0] == '.' && lab[1] == '/') lab += 2;
        r->label = join(root, lab);
    }
    if (!r->images[0] || !r->origin || (lab && !r->label))
        return dk_fail(DK_ERR_NOMEM, "%s", s->json);
    return DK_OK;
}

static dk_status gather_msd(dk_import_set *s, const char *root) {
    cJSON *j = NULL;
    dk_status st = read_json(&j, s, root);
    const cJSON *tr = j ? cJSON_GetObjectItemCaseSensitive(j, "training") : NULL, *e;
    const cJSON *ts = j ? cJSON_GetObjectItemCaseSensitive(j, "test") : NULL;
    if (st == DK_OK && !cJSON_IsArray(tr))
        st = dk_fail(DK_ERR_FORMAT, "%s: \"training\" is not a list", s->json);
    const cJSON *tr_ok = st == DK_OK ? tr : NULL, *ts_ok = cJSON_IsArray(ts) ? ts : NULL;
    int k = 0;
    cJSON_ArrayForEach(e, tr_ok) {
        const cJSON *im = cJSON_GetObjectItemCaseSensitive(e, "image");
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(e, "label");
        if (st == DK_OK && (!cJSON_IsString(im) || (lb && !cJSON_IsString(lb))))
            dk_import_problem(s, DK_ERR_FORMAT, "%s: training[%d]: \"image\" and \"label\" "
                              "must be paths", s->json, k);
        else if (st == DK_OK)
            st = msd_row(s, root, im->valuestring, lb ? lb->valuestring : NULL, "train");
        k++;
    }
    k = 0;
    if (st != DK_OK) ts_ok = NULL;
    cJSON_ArrayForEach(e, ts_ok) {
        const cJSON *im = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, "image");
        if (!cJSON_IsString(im))
            dk_import_problem(s, DK_ERR_FORMAT, "%s: test[%d] is not a path", s->json, k);
        else if (st == DK_OK)
            st = msd_row(s, root, im->valuestring, NULL, "test");
        k++;
    }
    cJSON_Delete(j);
    snprintf(s->res->rule, sizeof s->res->rule, "Decathlon: the \"training\" (image, label) and "
             "\"test\" lists of %s; the case id is the image's name", s->json ? s->json : root);
    return st;
}

static dk_status gather_folders(dk_import_set *s, const dk_import_opts *o) {
    int mixed = o->labels && dk_same_file(o->images, o->labels);
    dk_status st = read_images(s, o->images, NULL, NULL, NULL, mixed);
    if (st == DK_OK) check_channels(s, 0, o->images);
    if (st == DK_OK && o->labels) st = pair_labels(s, 0, o->labels, 1, mixed);
    snprintf(s->res->rule, sizeof s->res->rule,
             "%s: a case's id is its name without the extension and _0000 (any 4 digits: the "
             "channel) or _image%s", o->images,
             o->labels ? "; a label's without _label, _seg or _gt; same name first, then "
                         "name with id, then id with id (as dakd eval pairs)"
                       : "; no labels");
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sub-folders of `dir`, sorted (*n of them; free each and the array). */
static dk_status subfolders(char ***out, int *n, const char *dir) {
    *out = NULL, *n = 0;
    DIR *d = opendir(dir);
    if (!d) return dk_fail(DK_ERR_IO, "%s: cannot open the folder", dir);
    dk_status st = DK_OK;
    struct dirent *de;
    while (st == DK_OK && (de = readdir(d))) {
        char *p = de->d_name[0] == '.' ? NULL : join(dir, de->d_name);
        if (!p || !is_dir(p)) {
            free(p);
            continue;
        }
        char **v = realloc(*out, (size_t)(*n + 1) * sizeof *v);
        if (!v) free(p), st = dk_fail(DK_ERR_NOMEM, "%s", dir);
        else (*out = v)[(*n)++] = p;
    }
    closedir(d);
    if (*n) qsort(*out, (size_t)*n, sizeof **out, cmp_str);
    return st;
}

static dk_status gather_dicom(dk_import_set *s, const dk_import_opts *o) {
    char **dirs = NULL;
    int nd = 0;
    dk_status st = subfolders(&dirs, &nd, o->root);
    for (int i = 0; st == DK_OK && i < nd; i++) {
        dk_dicom_series *ser = NULL;
        dk_dicom_skipped *sk = NULL;
        int ns = 0, nsk = 0;
        st = dk_dicom_list_series(&ser, &ns, &sk, &nsk, dirs[i]);
        for (int k = 0; st == DK_OK && k < nsk; k++)
            if (sk[k].unreadable) dk_import_problem(s, DK_ERR_FORMAT, "%s", sk[k].reason);
        const char *name = strrchr(dirs[i], '/') + 1;
        if (st == DK_OK && ns > 1)
            dk_import_problem(s, DK_ERR_FORMAT, "%s: %d image series (one series per case "
                              "folder; the first two: '%s', '%s')", dirs[i], ns,
                              ser[0].description, ser[1].description);
        else if (st == DK_OK && ns == 1) {
            dk_import_row *r = add_row(s, name, strlen(name), 1);
            if (!r || !(r->images[0] = strdup(dirs[i])) || !(r->origin = strdup(name)))
                st = dk_fail(DK_ERR_NOMEM, "%s", dirs[i]);
        }
        free(ser), free(sk);
    }
    for (int i = 0; i < nd; i++) free(dirs[i]);
    free(dirs);
    if (st == DK_OK && o->labels) st = pair_labels(s, 0, o->labels, 1, 0);
    snprintf(s->res->rule, sizeof s->res->rule, "DICOM: each folder of %s with one image series "
             "is a case named by the folder%s", o->root,
             o->labels ? "; labels paired by id (name without _label, _seg or _gt)" : "");
    return st;
}

dk_status dk_import_gather(dk_import_set *s, const dk_import_opts *o) {
    dk_layout l = o->layout;
    if (l == DK_LAYOUT_AUTO && o->images) l = DK_LAYOUT_FOLDERS;
    if (l == DK_LAYOUT_AUTO && o->root) {
        char *j = join(o->root, "dataset.json"), *tr = join(o->root, "imagesTr"), *text = NULL;
        if (!j || !tr) l = DK_LAYOUT_DICOM;
        else if (dk_read_file(&text, NULL, j) == DK_OK && strstr(text, "\"training\""))
            l = DK_LAYOUT_MSD; /* a Decathlon task has imagesTr too */
        else l = is_dir(tr) ? DK_LAYOUT_NNUNET : DK_LAYOUT_DICOM;
        free(j), free(tr), free(text);
    }
    s->res->layout = l;
    int folders = l == DK_LAYOUT_FOLDERS;
    if (folders ? !o->images || o->root : !o->root || o->images || (o->labels && l != DK_LAYOUT_DICOM))
        return dk_fail(DK_ERR_ARG, "the %s layout reads %s", dk_layout_name(l),
                       folders ? "an images folder and an optional labels folder"
                       : l == DK_LAYOUT_DICOM ? "a folder of study folders and an optional "
                                                "labels folder"
                                              : "one dataset folder");
    if (!is_dir(folders ? o->images : o->root))
        return dk_fail(DK_ERR_IO, "%s: no such folder", folders ? o->images : o->root);
    dk_status st = l == DK_LAYOUT_NNUNET ? gather_nnunet(s, o->root)
                   : l == DK_LAYOUT_MSD  ? gather_msd(s, o->root)
                   : folders             ? gather_folders(s, o)
                                         : gather_dicom(s, o);
    if (st == DK_OK && s->n == 0 && s->res->n_problems == 0)
        st = dk_fail(DK_ERR_IO, "%s: no case found (%s layout)", folders ? o->images : o->root,
                     dk_layout_name(l));
    return st;
}

void dk_import_set_free(dk_import_set *s) {
    for (int i = 0; i < s->n; i++) {
        dk_import_row *r = &s->rows[i];
        for (int k = 0; k < r->n_images; k++) free(r->images[k]);
        free(r->images), free(r->label), free(r->origin), free(r->id);
    }
    free(s->rows);
    free(s->json);
    memset(s, 0, sizeof *s);
}
