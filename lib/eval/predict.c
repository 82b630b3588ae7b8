/*
 * A prediction run (dk_predict_run, dakd/eval.h): the model and the preprocessing it was
 * trained with, read from its metadata; the inputs (image paths and/or a filtered case
 * list) checked before anything is written; per case read → preprocess → sliding window →
 * probabilities back on the input grid → labels → atomic writes.
 *
 * The model's preprocessing and patch ("dakd.data.*", written by the trainer's model export)
 * are read by dk_prep_meta_read (dakd/data.h): the option schema says which keys and how.
 * A model with mask_extent > 0 scales each image by its mask's extent, so the mask is read
 * whenever it is > 0.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dakd/data.h"
#include "dakd/eval.h"
#include "eval_internal.h"

enum { ID_MAX = 128, PATH_MAX_ = 4096 };

typedef struct {
    dk_prep_opts prep;
    int64_t patch[3]; /* d, h, w */
    int classes;
} model_info;

typedef struct {
    char id[ID_MAX];
    const char *images[DK_CASE_IMAGES_MAX]; /* the channel files, borrowed from the options or
                                             * the case list */
    int n_images;
    const char *image, *mask; /* images[0] and the mask (or NULL), borrowed likewise */
    const char *origin;       /* the path, or `where`, for messages */
    char where[ID_MAX + 32];  /* "<csv>:<line>" of a case-list row */
    int png;                  /* write the labels as PNG (a 2-D PNG input) */
    int grouped;              /* bare CASE_NNNN files: the case's other channels join it */
    const double *spacing;    /* the case-list row's `spacing` (x, y, z; all 0: none), or
                               * NULL; borrowed */
} pred_input;

/* ================================================================ model metadata */

static dk_status parse_prep(model_info *mi, const cJSON *m, const char *path) {
    dk_data_opts d;
    dk_status st = dk_prep_meta_read(&d, m, path);
    if (st != DK_OK) return st;
    mi->prep = d.prep;
    for (int a = 0; a < 3; a++) mi->patch[a] = d.patch[a];
    mi->classes = d.prep.classes;
    return DK_OK;
}

/* The network and its preprocessing; the metadata must agree with the network. */
static dk_status open_model(dk_unet **net, model_info *mi, const char *path) {
    char *mj = NULL;
    dk_status st = dk_unet_open(net, path, &mj);
    if (st != DK_OK) return st;
    cJSON *m = cJSON_Parse(mj);
    free(mj);
    st = m ? parse_prep(mi, m, path)
           : dk_fail(DK_ERR_FORMAT, "%s: __metadata__ is not valid JSON", path);
    cJSON_Delete(m);
    const dk_unet_config *g = dk_unet_get_config(*net);
    if (st == DK_OK && mi->classes != g->classes)
        st = dk_fail(DK_ERR_FORMAT, "%s: dakd.data.classes = %d but the network has %d classes",
                     path, mi->classes, g->classes);
    if (st != DK_OK) {
        dk_unet_free(*net);
        *net = NULL;
    }
    return st;
}

/* ================================================================ inputs */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    if (k > n) return 0;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)s[n - k + i]) != suffix[i]) return 0;
    return 1;
}

/* Case id of an image path: the file (or DICOM folder) name without its image extension
 * (dk_case_stem_len's, or .dcm) and then without an image's role suffix, "_0000" (any four
 * digits: nnU-Net's channel) or "_image" (dk_case_id_len), as dk_eval_run pairs files. */
static int id_from_path(char *id, const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    snprintf(id, ID_MAX, "%.*s", (int)(n - b), path + b);
    size_t stem = dk_case_stem_len(id);
    if (!stem && ends_with(id, ".dcm") && strlen(id) > 4) stem = strlen(id) - 4;
    int ch = stem ? dk_case_channel(id, stem) : -1;
    if (stem) id[dk_case_id_len(id, stem, DK_ROLE_IMAGE)] = '\0';
    return ch;
}

/* Bare path `path` of channel `ch` (-1: none) into the inputs out[0..*n): a new input, or
 * the channel slot of the input of the same id when both have a channel suffix. */
static dk_status add_path(pred_input *out, int *n, const char *path) {
    pred_input *p = &out[*n];
    int ch = id_from_path(p->id, path);
    for (int j = 0; ch >= 0 && j < *n; j++) {
        pred_input *q = &out[j];
        if (strcmp(q->id, p->id) != 0 || !q->grouped) continue;
        if (ch >= DK_CASE_IMAGES_MAX || q->images[ch])
            return dk_fail(DK_ERR_ARG, "%s: channel %04d of case '%s' %s", path, ch, p->id,
                           ch < DK_CASE_IMAGES_MAX ? "is also given as another file"
                                                   : "is beyond the channels dakd reads");
        q->images[ch] = path;
        if (ch + 1 > q->n_images) q->n_images = ch + 1;
        return DK_OK;
    }
    memset(p->images, 0, sizeof p->images);
    if (ch >= DK_CASE_IMAGES_MAX)
        return dk_fail(DK_ERR_ARG, "%s: channel %04d is beyond the channels dakd reads", path, ch);
    p->images[ch >= 0 ? ch : 0] = p->origin = path;
    p->n_images = ch >= 0 ? ch + 1 : 1;
    p->grouped = ch >= 0;
    (*n)++;
    return DK_OK;
}

/* Every channel of a group of files CASE_NNNN present, the first named in messages. */
static dk_status check_groups(pred_input *in, int n) {
    for (int i = 0; i < n; i++) {
        pred_input *p = &in[i];
        for (int k = 0; k < p->n_images; k++)
            if (!p->images[k]) {
                int j = k + 1;
                while (!p->images[j]) j++;
                return dk_fail(DK_ERR_ARG, "%s: case '%s' has files for channels up to %04d "
                               "but none for channel %04d (files CASE_NNNN of one case are "
                               "its channels, 0000 first)", p->images[j], p->id,
                               p->n_images - 1, k);
            }
        p->image = p->origin = p->images[0];
    }
    return DK_OK;
}

static dk_status check_id(const pred_input *in) {
    const char *id = in->id;
    if (!id[0] || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
        return dk_fail(DK_ERR_ARG, "%s: case id '%s' cannot name an output file", in->origin, id);
    return DK_OK;
}

/* Gather the inputs: the image paths `inputs` (NULL-terminated, or NULL) first, then the
 * rows of `use` (NULL: none), named "<csv>:<line>" in messages. */
static dk_status gather(pred_input **out, int *n, const char *const *inputs,
                        const dk_case_list *use) {
    int np = 0;
    while (inputs && inputs[np])
        np++;
    *n = np + (use ? use->n : 0);
    *out = calloc((size_t)(*n ? *n : 1), sizeof **out);
    if (!*out) return dk_fail(DK_ERR_NOMEM, "predict: no memory for %d inputs", *n);
    int k = 0;
    for (int i = 0; i < np; i++) {
        dk_status st = add_path(*out, &k, inputs[i]);
        if (st != DK_OK) return st;
    }
    dk_status st = check_groups(*out, k);
    if (st != DK_OK) return st;
    *n = k + (use ? use->n : 0);
    for (int i = 0; use && i < use->n; i++) {
        pred_input *p = &(*out)[k + i];
        const dk_case *c = &use->cases[i];
        snprintf(p->id, ID_MAX, "%s", c->id);
        for (int j = 0; j < c->n_images; j++) p->images[j] = c->images[j];
        p->n_images = c->n_images;
        p->image = c->image;
        p->mask = c->mask;
        p->spacing = c->spacing;
        snprintf(p->where, sizeof p->where, "%.*s:%d", ID_MAX - 1, use->path, c->line);
        p->origin = p->where;
    }
    return DK_OK;
}

/* The rows of o's case list that pass its filters (dk_cases_where) into *sel; *use = sel,
 * or NULL without a list. Images given besides the list may leave it no row. */
static dk_status read_list(dk_case_list *sel, const dk_case_list **use, const dk_predict_opts *o) {
    *use = NULL;
    if (!o->cases_csv) return DK_OK;
    dk_case_list list = {0};
    dk_status st = dk_cases_read(&list, o->cases_csv);
    if (st == DK_OK) st = dk_cases_where(sel, &list, o->where, !o->inputs);
    dk_cases_free(&list);
    if (st == DK_OK) *use = sel;
    return st;
}

/* Channels dk_channels_select makes from nc channels (-1 when it would refuse). */
static int64_t prepared_channels(const dk_prep_opts *p, int64_t nc) {
    if (p->channels == DK_CHANNELS_ONE) return p->channel_index < nc ? 1 : -1;
    if (p->channels == DK_CHANNELS_LUMINANCE) return nc >= 3 ? 1 : -1;
    return nc;
}

/* The input's headers readable and on one grid, its channels what the model takes. */
static dk_status check_channels(pred_input *in, const model_info *mi, const dk_unet_config *g,
                                const char *model) {
    dk_volume h;
    dk_status st = dk_case_image_header(&h, in->images, in->n_images, mi->prep.grid_tol);
    if (st != DK_OK) return st;
    int64_t nc = h.nc, c = prepared_channels(&mi->prep, nc);
    in->png = ends_with(in->image, ".png") && h.nz == 1;
    dk_volume_free(&h);
    if (c == g->in_channels) return DK_OK;
    char how[48], files[64] = "";
    const dk_prep_opts *p = &mi->prep;
    if (p->channels == DK_CHANNELS_ONE)
        snprintf(how, sizeof how, "one (index %d)", p->channel_index);
    else
        snprintf(how, sizeof how, "%s", p->channels == DK_CHANNELS_ALL ? "all" : "luminance");
    if (in->n_images > 1) snprintf(files, sizeof files, " from %d files", in->n_images);
    return c < 0 ? dk_fail(DK_ERR_FORMAT, "%s: %lld channels%s cannot give the model's "
                           "channels = %s (%s)", in->image, (long long)nc, files, how, model)
                 : dk_fail(DK_ERR_FORMAT, "%s: %lld channels%s, but the model %s takes %d "
                           "(channels = %s)", in->image, (long long)nc, files, model,
                           g->in_channels, how);
}

/* Before anything is written: headers readable, channels fit, ids unique and usable, a
 * mask for every image when the model scales by it. */
static dk_status preflight(pred_input *in, int n, const model_info *mi, const dk_unet_config *g,
                           const char *model, int dicom_seg) {
    for (int i = 0; i < n; i++) {
        dk_status st = check_id(&in[i]);
        if (st == DK_OK && dicom_seg && !dk_volume_is_dicom(in[i].image))
            st = dk_fail(DK_ERR_ARG, "%s: not DICOM (a folder of one series or a DICOM file): "
                         "a DICOM SEG output references the DICOM images it segments",
                         in[i].image);
        for (int j = 0; st == DK_OK && j < i; j++)
            if (strcmp(in[j].id, in[i].id) == 0)
                st = dk_fail(DK_ERR_ARG,
                             "%s: case id '%s' is also the id of %s: both would write the "
                             "same output (an image's id is its file name without the "
                             "extension and a trailing _0000-style channel or _image; "
                             "given as bare files, CASE_0000, CASE_0001, ... are the "
                             "channels of one case)",
                             in[i].origin, in[i].id, in[j].origin);
        if (st == DK_OK && mi->prep.mask_extent > 0 && !in[i].mask)
            st = dk_fail(DK_ERR_ARG, "%s: the model %s scales each image by its mask's extent "
                         "(dakd.data.mask_extent = %g) but this image has no mask: give it "
                         "in a case list with a mask column", in[i].image, model,
                         mi->prep.mask_extent);
        if (st != DK_OK) return st;
        if ((st = check_channels(&in[i], mi, g, model)) != DK_OK) return st;
    }
    return DK_OK;
}

/* Input k of check_outputs' list, named for a message. */
static void input_name(char *buf, size_t n, const pred_input *in, int k) {
    const int per = 1 + DK_CASE_IMAGES_MAX;
    if (k < 2) snprintf(buf, n, "%s", k ? "the case list" : "the model");
    else snprintf(buf, n, "the %s of %s", (k - 2) % per ? "image" : "mask",
                  in[(k - 2) / per].origin);
}

/* No output (the folder, each case's labels and probabilities) may be an input (the model,
 * the case list, an image or a mask): refused before anything is written, naming both. */
static dk_status check_outputs(const dk_predict_opts *o, const pred_input *in, int n) {
    const int per = 1 + DK_CASE_IMAGES_MAX; /* the mask, then the image files */
    int m = 2 + per * n;
    const char **ins = calloc((size_t)m, sizeof *ins);
    if (!ins) return dk_fail(DK_ERR_NOMEM, "predict: no memory for %d inputs", n);
    ins[0] = o->model, ins[1] = o->cases_csv;
    for (int i = 0; i < n; i++) {
        ins[2 + per * i] = in[i].mask;
        for (int k = 0; k < in[i].n_images; k++) ins[3 + per * i + k] = in[i].images[k];
    }
    char p[PATH_MAX_ + ID_MAX + 32], what[ID_MAX + 64];
    snprintf(p, sizeof p, "%s", o->out_dir);
    int k = dk_same_file_any(p, ins, m);
    for (int i = 0; i < 3 * n && k < 0; i++) {
        if ((i % 3 == 1 && !o->write_probs) || (i % 3 == 2 && !o->dicom_seg)) continue;
        const pred_input *c = &in[i / 3];
        snprintf(p, sizeof p, "%s/%s%s", o->out_dir, c->id,
                 i % 3 == 2 ? ".seg.dcm" : i % 3 ? "_probs.nii.gz" : c->png ? ".png" : ".nii.gz");
        k = dk_same_file_any(p, ins, m);
    }
    dk_status st = DK_OK;
    if (k >= 0) {
        input_name(what, sizeof what, in, k);
        st = dk_fail(DK_ERR_ARG, "predict would write %s, which is %s (%s); choose another "
                     "output folder", p, what, ins[k]);
    }
    free(ins);
    return st;
}

/* Make out_dir (and its parents) and check that a file can be created in it. */
static dk_status prepare_out_dir(const char *dir) {
    if (strlen(dir) >= PATH_MAX_) return dk_fail(DK_ERR_ARG, "%s: output folder name too long", dir);
    dk_status st = dk_mkdirs(dir);
    if (st != DK_OK) return st;
    char probe[PATH_MAX_ + 64], tmp[PATH_MAX_ + 128];
    snprintf(probe, sizeof probe, "%s/.dakd_predict_probe", dir);
    st = dk_tmp_path_for(tmp, sizeof tmp, probe);
    if (st != DK_OK) return st;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return dk_fail(DK_ERR_IO, "%s: output folder not writable: %s", dir, strerror(errno));
    close(fd);
    unlink(tmp);
    return DK_OK;
}

/* ================================================================ one case */

/* Probabilities (K, prepared grid) → (K, input grid) by linear resampling onto the input's
 * size (the grid rule keeps the extent, so the sample positions are the input's voxel
 * centres). *probs is replaced. */
static dk_status probs_to_input_grid(float **probs, const dk_volume *prepared,
                                     const dk_volume *input, int K) {
    dk_volume pv = {0}, back = {0};
    pv.nx = prepared->nx, pv.ny = prepared->ny, pv.nz = prepared->nz;
    pv.nt = 1, pv.nc = K, pv.ndim = prepared->ndim, pv.dtype = DK_F32;
    pv.geom = prepared->geom;
    pv.data = *probs;
    dk_resample_target t;
    memset(&t, 0, sizeof t);
    t.size[0] = input->nx, t.size[1] = input->ny, t.size[2] = input->nz;
    dk_status st = dk_resample(&back, &pv, &t, DK_INTERP_LINEAR);
    if (st != DK_OK) return st;
    dk_free(*probs);
    *probs = back.data; /* allocated by dk_volume_alloc: freed with dk_free */
    return DK_OK;
}

/* A volume on the input's grid and geometry around `data` (borrowed). The NIfTI header
 * fields are the input's, except cal_min/cal_max (its display window, meaningless for
 * labels or probabilities) which are cleared. */
static dk_volume output_volume(const dk_volume *in, void *data, dk_dtype dt, int64_t nc) {
    dk_volume v = {0};
    v.nx = in->nx, v.ny = in->ny, v.nz = in->nz, v.nt = 1, v.nc = nc;
    v.ndim = in->ndim, v.dtype = dt, v.data = data;
    v.geom = in->geom;
    v.meta = in->meta;
    v.meta.cal_min = v.meta.cal_max = 0;
    return v;
}

typedef struct {
    dk_unet *net;
    const model_info *mi;
    const dk_predict_opts *o;
    dk_infer_opts io; /* with the model's patch where the options leave 0 */
    const dk_label_table *names; /* the SEG's segment names (NULL: none) */
} run_ctx;

/* Preprocessed image → labels (and probabilities) on the input grid; *ms gets the time. */
static dk_status infer_case(uint8_t *labels, float **probs, const run_ctx *r, const dk_volume *img,
                            const dk_case_data *cd, double *ms) {
    int K = r->mi->classes;
    int64_t nv = img->nx * img->ny * img->nz;
    int64_t pv = cd->image.nx * cd->image.ny * cd->image.nz;
    double t0 = dk_time_now();
    *probs = dk_alloc_aligned((size_t)(K * pv), sizeof(float));
    if (!*probs) return dk_fail(DK_ERR_NOMEM, "%s: no memory for the probabilities", cd->id);
    dk_status st = dk_infer_probs(*probs, r->net, &cd->image, &r->io);
    /* the model resampled (target spacing or size, mask extent): back onto the input grid */
    if (st == DK_OK && (cd->image.nx != img->nx || cd->image.ny != img->ny ||
                        cd->image.nz != img->nz))
        st = probs_to_input_grid(probs, &cd->image, img, K);
    if (st != DK_OK) return st;
    dk_infer_argmax(labels, *probs, K, nv);
    if (r->io.largest_cc) st = dk_keep_largest_cc(labels, img->nx, img->ny, img->nz, K);
    *ms = 1e3 * (dk_time_now() - t0);
    return st;
}

static dk_status write_outputs(const run_ctx *r, const pred_input *in, const dk_volume *img,
                               uint8_t *labels, float *probs, char *out_path, size_t n) {
    snprintf(out_path, n, "%s/%s.%s", r->o->out_dir, in->id, in->png ? "png" : "nii.gz");
    dk_volume lv = output_volume(img, labels, DK_U8, 1);
    dk_status st = dk_volume_write(&lv, out_path, NULL);
    char pp[PATH_MAX_ + ID_MAX + 32];
    if (st == DK_OK && r->o->dicom_seg) {
        snprintf(pp, sizeof pp, "%s/%s.seg.dcm", r->o->out_dir, in->id);
        st = dk_dicom_seg_write(pp, &lv, in->image, r->mi->classes - 1, r->names);
    }
    if (st != DK_OK || !r->o->write_probs) return st;
    snprintf(pp, sizeof pp, "%s/%s_probs.nii.gz", r->o->out_dir, in->id);
    dk_volume pvol = output_volume(img, probs, DK_F32, r->mi->classes);
    return dk_volume_write(&pvol, pp, NULL);
}

/* Input `in` read into *img and preprocessed by the model's options into *cd, without a
 * label; its mask is read when the model uses one (statistics inside it, or its extent).
 * A case list's `spacing` reaches the preprocessing only: *img keeps the file's header, on
 * which the outputs are written. */
static dk_status read_prepared(dk_volume *img, dk_case_data *cd, const model_info *mi,
                               const pred_input *in) {
    dk_volume msk = {0};
    int use_mask = in->mask && (mi->prep.norm_in_mask || mi->prep.mask_extent > 0);
    dk_status st = dk_case_image_read(img, in->images, in->n_images, mi->prep.grid_tol);
    if (st == DK_OK && use_mask) st = dk_volume_read(&msk, in->mask);
    dk_volume as_listed = *img; /* borrows img's voxels */
    if (in->spacing) dk_case_spacing_apply(&as_listed, in->spacing);
    if (in->spacing) dk_case_spacing_apply(&msk, in->spacing);
    if (st == DK_OK)
        st = dk_case_prepare(cd, &as_listed, NULL, use_mask ? &msk : NULL, &mi->prep, in->id);
    dk_volume_free(&msk);
    return st;
}

static dk_status predict_one(const run_ctx *r, const pred_input *in, double *ms) {
    dk_volume img = {0};
    dk_case_data cd;
    memset(&cd, 0, sizeof cd);
    uint8_t *labels = NULL;
    float *probs = NULL;
    dk_status st = read_prepared(&img, &cd, r->mi, in);
    if (st != DK_OK) goto out;
    if (!(labels = malloc((size_t)(img.nx * img.ny * img.nz)))) {
        st = dk_fail(DK_ERR_NOMEM, "%s: no memory for the labels", in->image);
        goto out;
    }
    if ((st = infer_case(labels, &probs, r, &img, &cd, ms)) != DK_OK) {
        st = dk_error_context(st, "%s", in->image);
        goto out;
    }
    char path[PATH_MAX_ + ID_MAX + 32];
    if ((st = write_outputs(r, in, &img, labels, probs, path, sizeof path)) != DK_OK) goto out;
    dk_log(DK_LOG_INFO, "%s: %lldx%lldx%lld -> %s  %.1f ms", in->id, (long long)img.nx,
           (long long)img.ny, (long long)img.nz, path, *ms);
out:
    dk_volume_free(&img);
    dk_case_data_free(&cd);
    free(labels);
    dk_free(probs);
    return st;
}

/* ================================================================ the run */

dk_status dk_predict_run(const dk_predict_opts *o) {
    if (o->ms_per_image) *o->ms_per_image = 0;
    if (!o->model || !o->out_dir || (!o->inputs && !o->cases_csv))
        return dk_fail(DK_ERR_ARG, "predict: a model, an output folder and inputs (image paths "
                                   "or a cases CSV) are needed");
    dk_unet *net = NULL;
    model_info mi;
    dk_case_list sel = {0};
    const dk_case_list *use = NULL;
    dk_label_table names = {0};
    pred_input *in = NULL;
    double *ms = NULL;
    int n = 0;
    dk_status st = open_model(&net, &mi, o->model);
    if (st == DK_OK && o->label_names) st = dk_labels_read(&names, o->label_names, mi.classes - 1);
    if (st == DK_OK) st = read_list(&sel, &use, o);
    if (st != DK_OK) goto out;
    if ((st = gather(&in, &n, o->inputs, use)) != DK_OK) goto out;
    if (n == 0) { /* with a case list, dk_cases_where has refused an empty selection */
        st = dk_fail(DK_ERR_ARG, "predict: no input images");
        goto out;
    }
    if ((st = preflight(in, n, &mi, dk_unet_get_config(net), o->model, o->dicom_seg)) != DK_OK)
        goto out;
    if ((st = check_outputs(o, in, n)) != DK_OK) goto out;
    if ((st = prepare_out_dir(o->out_dir)) != DK_OK) goto out;
    run_ctx r = {net, &mi, o, o->infer, &names};
    for (int a = 0; a < 3; a++)
        if (r.io.patch[a] <= 0) r.io.patch[a] = mi.patch[a];
    if (!(ms = calloc((size_t)n, sizeof *ms))) {
        st = dk_fail(DK_ERR_NOMEM, "predict: no memory");
        goto out;
    }
    dk_progress pg; /* the cases; one case's window batches nest inside (infer.c) */
    dk_progress_begin(&pg, "predict", n);
    for (int i = 0; i < n && st == DK_OK; i++) {
        dk_progress_item(&pg, "%s", in[i].id);
        st = predict_one(&r, &in[i], &ms[i]);
        dk_progress_step(&pg, 1);
    }
    dk_progress_end(&pg);
    if (st == DK_OK && o->ms_per_image) *o->ms_per_image = n ? dk_median(ms, n) : 0;
out:
    dk_unet_free(net);
    dk_cases_free(&sel);
    dk_labels_free(&names);
    free(in);
    free(ms);
    return st;
}

/* ================================================================ a model's images */

dk_status dk_predict_inputs_read(dk_predict_inputs *out, const char *model,
                                 const char *const *inputs, const dk_case_list *list) {
    memset(out, 0, sizeof *out);
    model_info mi;
    pred_input *in = NULL;
    int n = 0;
    dk_status st = open_model(&out->net, &mi, model);
    if (st == DK_OK) st = gather(&in, &n, inputs, list);
    if (st == DK_OK && n == 0)
        st = dk_fail(DK_ERR_ARG, "%s: no input images", list ? list->path : model);
    if (st == DK_OK) st = preflight(in, n, &mi, dk_unet_get_config(out->net), model, 0);
    if (st == DK_OK && !(out->cases = calloc((size_t)n, sizeof *out->cases)))
        st = dk_fail(DK_ERR_NOMEM, "%s: no memory for %d cases", model, n);
    for (int i = 0; i < n && st == DK_OK; i++) {
        dk_volume img = {0};
        st = read_prepared(&img, &out->cases[i], &mi, &in[i]);
        dk_volume_free(&img);
        out->n = st == DK_OK ? i + 1 : i;
    }
    for (int a = 0; a < 3; a++) out->patch[a] = mi.patch[a];
    out->classes = mi.classes;
    free(in);
    if (st != DK_OK) dk_predict_inputs_free(out);
    return st;
}

void dk_predict_inputs_free(dk_predict_inputs *p) {
    if (!p) return;
    dk_unet_free(p->net);
    for (int i = 0; p->cases && i < p->n; i++) dk_case_data_free(&p->cases[i]);
    free(p->cases);
    memset(p, 0, sizeof *p);
}
