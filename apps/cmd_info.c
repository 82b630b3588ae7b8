/* dakd info FILE... — dims, spacing, datatype, affine, orientation, value range, labels. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dakd/volume.h"

static const char *info_help =
    "usage: dakd info [--json] [--header-only] [--series UID|INDEX] FILE|DICOM_DIR...\n\n"
    "Describe each volume: grid (nx ny nz, time points, channels), data type, spacing (mm),\n"
    "origin and direction (LPS, as ITK), the NIfTI affine (RAS), the orientation code,\n"
    "the value range and, for integer images, the label values with voxel counts.\n"
    "A folder of DICOM files lists its series (index, SeriesInstanceUID, modality,\n"
    "description, size) and the files passed over (not DICOM, no image, or unreadable: cut\n"
    "short, corrupt, or crashing the DICOM parser), and, when it holds one series or\n"
    "--series picks one, describes it too. A folder without any DICOM series, or a file\n"
    "that cannot be read, is an error (exit 2 or 3, the other paths still described).\n\n"
    "  --json            one JSON object per file on stdout (an array when several files)\n"
    "  --header-only     do not read voxels (works for a .hdr without its .img)\n"
    "  --series UID|N    the DICOM series to describe (SeriesInstanceUID or list index)\n\n"
    "Limits: a file whose header describes a volume (voxels x channels x bytes) over 8 GiB\n"
    "is refused before anything is allocated (exit 4); DAKD_MAX_VOLUME_BYTES sets another\n"
    "limit (bytes, or 16G, 512M, ...). A header that claims more data than its file can\n"
    "hold (PNG, .nii.gz: more than deflate's 1032:1) is a format error (exit 3). 64-bit\n"
    "integer voxels beyond +-2^53 are refused (exit 4): labels would merge in double.\n";

static void print_text(const char *path, const dk_volume *v, const dk_volume_stats *s) {
    double m[4][4];
    char code[4];
    dk_geometry_to_nifti_affine(&v->geom, m);
    dk_geometry_orientation_code(&v->geom, code);
    const dk_geometry *g = &v->geom;
    printf("%s\n", path);
    printf("  dims        %lld x %lld x %lld  (%dD)   time points %lld   channels %lld%s\n",
           (long long)v->nx, (long long)v->ny, (long long)v->nz, v->ndim, (long long)v->nt,
           (long long)v->nc,
           v->color == DK_COLOR_RGB ? " (RGB)" : v->color == DK_COLOR_RGBA ? " (RGBA)" : "");
    printf("  datatype    %s\n", dk_dtype_name(v->dtype));
    printf("  spacing     %g %g %g mm\n", g->spacing[0], g->spacing[1], g->spacing[2]);
    /* + 0.0 prints -0 (a sign flip of 0 between RAS and LPS) as 0 */
    printf("  origin      %g %g %g (LPS mm)\n", g->origin[0] + 0.0, g->origin[1] + 0.0,
           g->origin[2] + 0.0);
    printf("  direction   [");
    for (int r = 0; r < 3; r++)
        printf("%g %g %g%s", g->direction[r][0] + 0.0, g->direction[r][1] + 0.0,
               g->direction[r][2] + 0.0, r < 2 ? "; " : "");
    printf("] (LPS, columns = i j k)\n");
    printf("  orientation %s\n", code);
    for (int r = 0; r < 4; r++)
        printf("  %s [%12.6g %12.6g %12.6g %12.6g]\n", r ? "           " : "affine (RAS)",
               m[r][0] + 0.0, m[r][1] + 0.0, m[r][2] + 0.0, m[r][3] + 0.0);
    if (v->meta.nifti_version)
        printf("  nifti       version %d  sform_code %d  qform_code %d\n", v->meta.nifti_version,
               v->meta.sform_code, v->meta.qform_code);
    if (v->meta.descrip[0]) printf("  description \"%s\"\n", v->meta.descrip);
    if (!s) return;
    printf("  values      min %g  max %g  mean %g", s->min, s->max, s->mean);
    if (s->n_nan) printf("  NaN %lld", (long long)s->n_nan);
    printf("\n");
    if (!dk_dtype_is_integer(v->dtype)) return;
    if (s->labels_truncated) { /* an intensity image, not a label map */
        printf("  labels      more than 64 distinct values (not a label map)\n");
        return;
    }
    printf("  labels      %lld distinct:", (long long)s->n_labels);
    int shown = (int)(s->n_labels < 64 ? s->n_labels : 64);
    for (int i = 0; i < shown; i++)
        printf(" %lld(%lld)", (long long)s->labels[i], (long long)s->label_counts[i]);
    printf("\n");
}

static cJSON *number_array(const double *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) /* + 0.0: no -0 */
        cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i] + 0.0));
    return a;
}

/* JSON has no NaN: a missing statistic is null. */
static void add_number_or_null(cJSON *o, const char *key, double x) {
    if (isfinite(x)) cJSON_AddNumberToObject(o, key, x);
    else cJSON_AddNullToObject(o, key);
}

static cJSON *to_json(const char *path, const dk_volume *v, const dk_volume_stats *s) {
    cJSON *o = cJSON_CreateObject();
    double m[4][4];
    char code[4];
    dk_geometry_to_nifti_affine(&v->geom, m);
    dk_geometry_orientation_code(&v->geom, code);
    cJSON_AddStringToObject(o, "path", path);
    double dims[5] = {(double)v->nx, (double)v->ny, (double)v->nz, (double)v->nt, (double)v->nc};
    cJSON_AddItemToObject(o, "dims", number_array(dims, 5));
    cJSON_AddNumberToObject(o, "ndim", v->ndim);
    cJSON_AddStringToObject(o, "datatype", dk_dtype_name(v->dtype));
    cJSON_AddStringToObject(o, "color", v->color == DK_COLOR_RGB    ? "RGB"
                                        : v->color == DK_COLOR_RGBA ? "RGBA"
                                                                    : "none");
    cJSON_AddItemToObject(o, "spacing", number_array(v->geom.spacing, 3));
    cJSON_AddItemToObject(o, "origin_lps", number_array(v->geom.origin, 3));
    cJSON *dir = cJSON_AddArrayToObject(o, "direction_lps");
    cJSON *aff = cJSON_AddArrayToObject(o, "affine_ras");
    for (int r = 0; r < 4; r++) {
        if (r < 3) cJSON_AddItemToArray(dir, number_array(v->geom.direction[r], 3));
        cJSON_AddItemToArray(aff, number_array(m[r], 4));
    }
    cJSON_AddStringToObject(o, "orientation", code);
    cJSON_AddNumberToObject(o, "nifti_version", v->meta.nifti_version);
    if (!s) return o;
    add_number_or_null(o, "min", s->min);
    add_number_or_null(o, "max", s->max);
    add_number_or_null(o, "mean", s->mean);
    cJSON_AddNumberToObject(o, "nan_count", (double)s->n_nan);
    if (dk_dtype_is_integer(v->dtype)) {
        cJSON *labels = cJSON_AddArrayToObject(o, "labels");
        int shown = (int)(s->n_labels < 64 ? s->n_labels : 64);
        for (int i = 0; i < shown; i++) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddNumberToObject(l, "value", (double)s->labels[i]);
            cJSON_AddNumberToObject(l, "voxels", (double)s->label_counts[i]);
            cJSON_AddItemToArray(labels, l);
        }
        cJSON_AddBoolToObject(o, "labels_truncated", s->labels_truncated);
    }
    return o;
}

/* The files of a DICOM folder that were passed over, each with the reader's reason. */
static void list_skipped(const dk_dicom_skipped *sk, int n, cJSON *o) {
    cJSON *arr = o && n ? cJSON_AddArrayToObject(o, "skipped") : NULL;
    if (!o && n) printf("  %d file%s passed over:\n", n, n == 1 ? "" : "s");
    for (int k = 0; k < n; k++) {
        if (!o) {
            printf("    %s%s\n", sk[k].unreadable ? "unreadable: " : "", sk[k].reason);
            continue;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", sk[k].path);
        cJSON_AddStringToObject(e, "reason", sk[k].reason);
        cJSON_AddBoolToObject(e, "unreadable", sk[k].unreadable);
        cJSON_AddItemToArray(arr, e);
    }
}

/* A DICOM folder: print (or add to `o`) its series and the files passed over; 1 when one
 * of the series should be read. */
static int list_series(const char *dir, const dk_read_opts *ro, cJSON *o, dk_status *st) {
    dk_dicom_series *ser = NULL;
    dk_dicom_skipped *skipped = NULL;
    int n = 0, nskipped = 0;
    *st = dk_dicom_list_series(&ser, &n, &skipped, &nskipped, dir);
    if (*st != DK_OK) return 0;
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "series") : NULL;
    if (!o) printf("%s\n  %d DICOM series\n", dir, n);
    for (int k = 0; k < n; k++) {
        const dk_dicom_series *d = &ser[k];
        if (!o) {
            printf("  [%d] %s  %s  \"%s\"  %lldx%lldx%lld", k, d->uid[0] ? d->uid : "(no UID)",
                   d->modality, d->description, (long long)d->nx, (long long)d->ny,
                   (long long)d->nz);
            if (d->nt != 1) printf(d->nt ? " x %lld time points" : " (not a regular grid)",
                                   (long long)d->nt);
            printf("  %d files\n", d->nfiles);
            continue;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", k);
        cJSON_AddStringToObject(e, "uid", d->uid);
        cJSON_AddStringToObject(e, "modality", d->modality);
        cJSON_AddStringToObject(e, "description", d->description);
        double dims[4] = {(double)d->nx, (double)d->ny, (double)d->nz, (double)d->nt};
        cJSON_AddItemToObject(e, "dims", number_array(dims, 4));
        cJSON_AddNumberToObject(e, "files", d->nfiles);
        cJSON_AddItemToArray(arr, e);
    }
    list_skipped(skipped, nskipped, o);
    free(ser);
    free(skipped);
    if (n == 0) /* nothing could be read: an error, not an empty listing */
        *st = dk_fail(DK_ERR_IO, "%s: no DICOM series in the folder (%d file%s passed over)",
                      dir, nskipped, nskipped == 1 ? "" : "s");
    return n == 1 || ro->series_uid || ro->series_index >= 0;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Describe one path (file or DICOM folder); DK_OK or the failure's status. */
static dk_status info_one(const char *path, int json, int header_only, const dk_read_opts *ro,
                          cJSON *all) {
    dk_status st = DK_OK;
    cJSON *o = json && is_dir(path) ? cJSON_CreateObject() : NULL;
    if (is_dir(path) && !list_series(path, ro, o, &st)) {
        if (o && st == DK_OK) {
            cJSON_AddStringToObject(o, "path", path);
            cJSON_AddItemToArray(all, o);
        } else {
            cJSON_Delete(o);
        }
        return st;
    }
    dk_volume v;
    st = header_only ? dk_volume_read_header(&v, path) : dk_volume_read_opts(&v, path, ro);
    if (st != DK_OK) {
        cJSON_Delete(o);
        return st;
    }
    dk_volume_stats s;
    if (!header_only) dk_volume_compute_stats(&v, &s);
    if (json) {
        cJSON *d = to_json(path, &v, header_only ? NULL : &s);
        if (o) cJSON_AddItemToObject(d, "series", cJSON_DetachItemFromObject(o, "series"));
        if (o && cJSON_GetObjectItem(o, "skipped"))
            cJSON_AddItemToObject(d, "skipped", cJSON_DetachItemFromObject(o, "skipped"));
        cJSON_Delete(o);
        cJSON_AddItemToArray(all, d);
    } else {
        print_text(path, &v, header_only ? NULL : &s);
    }
    dk_volume_free(&v);
    return DK_OK;
}

int dk_cmd_info(int argc, char **argv) {
    int json = 0, header_only = 0, first = 1;
    dk_read_opts ro = {NULL, -1};
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (dk_cli_is_help(argv[first])) {
            fputs(info_help, stdout);
            return 0;
        }
        if (strcmp(argv[first], "--json") == 0) json = 1;
        else if (strcmp(argv[first], "--header-only") == 0) header_only = 1;
        else if (strcmp(argv[first], "--series") == 0) {
            if (first + 1 == argc || dk_cli_parse_series(argv[++first], &ro))
                return dk_cli_usage_error("info", "--series needs a SeriesInstanceUID or index");
        } else return dk_cli_usage_error("info", "unknown option '%s'", argv[first]);
    }
    if (first == argc) return dk_cli_usage_error("info", "no input file");
    dk_status worst = DK_OK;
    cJSON *all = cJSON_CreateArray();
    for (int i = first; i < argc; i++) {
        dk_status st = info_one(argv[i], json, header_only, &ro, all);
        if (st != DK_OK) {
            dk_cli_report("info", st);
            if (worst == DK_OK) worst = st;
        }
    }
    if (json) {
        cJSON *out = argc - first == 1 && cJSON_GetArraySize(all) == 1
                         ? cJSON_DetachItemFromArray(all, 0)
                         : cJSON_Duplicate(all, 1);
        char *text = cJSON_Print(out);
        if (text) printf("%s\n", text);
        free(text);
        cJSON_Delete(out);
    }
    cJSON_Delete(all);
    return dk_cli_exit_code(worst);
}
