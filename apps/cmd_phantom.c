/* dakd phantom — write two-domain phantom cases (image + label map) to a folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dakd/data.h"
#include "dakd/volume.h"

static const char *phantom_help =
    "usage: dakd phantom [options] --out DIR\n\n"
    "Generate synthetic cases with known labels (1 organ, 2 kidney, 3 vessel). The source\n"
    "domain (0) and the target domain (1) differ in contrast, bias field, noise and blur;\n"
    "shapes vary per case. Writes DIR/<domain>_<NNN>_image.nii.gz and ..._label.nii.gz\n"
    "(or .png for 2-D with --png).\n\n"
    "  --out DIR        output folder (made if missing)\n"
    "  --size X,Y[,Z]   grid (default 96,96,64; Z = 1 or omitted for 2-D)\n"
    "  --spacing X,Y,Z  voxel size in mm (default 1,1,1), e.g. 1,1,2.5\n"
    "  --domain D       source, target or both (default both)\n"
    "  --cases N        cases per domain (default 2)\n"
    "  --seed S         random seed (default 1)\n"
    "  --png            write 2-D cases as PNG (image scaled to 0-255)\n";

typedef struct {
    const char *out;
    long long size[3];
    double spacing[3];
    int domains[2];
    long long cases, seed;
    int png;
} phantom_args;

static int parse_spacing(const char *s, double sp[3]) {
    char *end;
    for (int a = 0; a < 3; a++) {
        sp[a] = strtod(s, &end);
        if (end == s || !(sp[a] > 0)) return -1;
        if (a < 2 && *end != ',') return -1;
        s = end + 1;
    }
    return *end == '\0' ? 0 : -1;
}

static int parse_args(int argc, char **argv, phantom_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (strcmp(k, "--png") == 0) {
            a->png = 1;
            continue;
        }
        if (!val) return dk_cli_usage_error("phantom", "%s needs a value", k);
        if (strcmp(k, "--out") == 0) a->out = val;
        else if (strcmp(k, "--size") == 0) {
            int n = dk_cli_parse_ints(val, a->size, 3);
            ok = n >= 2;
            if (n == 2) a->size[2] = 1;
        } else if (strcmp(k, "--spacing") == 0) ok = parse_spacing(val, a->spacing) == 0;
        else if (strcmp(k, "--domain") == 0) {
            a->domains[0] = strcmp(val, "target") != 0;
            a->domains[1] = strcmp(val, "source") != 0;
            ok = !strcmp(val, "source") || !strcmp(val, "target") || !strcmp(val, "both");
        } else if (strcmp(k, "--cases") == 0) ok = dk_cli_parse_ints(val, &a->cases, 1) == 1 && a->cases > 0;
        else if (strcmp(k, "--seed") == 0) ok = dk_cli_parse_ints(val, &a->seed, 1) == 1;
        else return dk_cli_usage_error("phantom", "unknown option '%s'", k);
        if (!ok) return dk_cli_usage_error("phantom", "bad value '%s' for %s", val, k);
        i++;
    }
    if (!a->out) return dk_cli_usage_error("phantom", "--out DIR is required");
    return 0;
}

/* Scale a float image into 0..255 uint8 for PNG output. */
static dk_status to_u8(dk_volume *dst, const dk_volume *src) {
    dk_status st = dk_volume_alloc(dst, src->nx, src->ny, src->nz, 1, 1, DK_U8);
    if (st != DK_OK) return st;
    dst->geom = src->geom;
    for (int64_t i = 0; i < dk_volume_numel(src); i++)
        dk_volume_set(dst, i, 255.0 * dk_volume_get(src, i));
    return DK_OK;
}

static dk_status write_case(const phantom_args *a, int domain, long long k, dk_rng *rng) {
    dk_phantom_opts o = {a->size[0], a->size[1], a->size[2],
                         {a->spacing[0], a->spacing[1], a->spacing[2]}, domain};
    dk_volume img, lab, img8 = {0};
    dk_status st = dk_phantom_generate(&img, &lab, &o, rng);
    if (st != DK_OK) return st;
    int png = a->png && o.nz == 1;
    const char *ext = png ? "png" : "nii.gz";
    char pi[4096], pl[4096];
    const char *dname = domain ? "target" : "source";
    snprintf(pi, sizeof pi, "%s/%s_%03lld_image.%s", a->out, dname, k, ext);
    snprintf(pl, sizeof pl, "%s/%s_%03lld_label.%s", a->out, dname, k, ext);
    if (png) st = to_u8(&img8, &img);
    if (st == DK_OK) st = dk_volume_write(png ? &img8 : &img, pi, NULL);
    if (st == DK_OK) st = dk_volume_write(&lab, pl, NULL);
    if (st == DK_OK) printf("%s\n%s\n", pi, pl);
    dk_volume_free(&img);
    dk_volume_free(&lab);
    dk_volume_free(&img8);
    return st;
}

int dk_cmd_phantom(int argc, char **argv) {
    phantom_args a = {NULL, {96, 96, 64}, {1, 1, 1}, {1, 1}, 2, 1, 0};
    for (int i = 1; i < argc; i++)
        if (dk_cli_is_help(argv[i])) {
            fputs(phantom_help, stdout);
            return 0;
        }
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    dk_status st = dk_mkdirs(a.out); /* parents too, as the help says */
    if (st != DK_OK) return dk_cli_report("phantom", st);
    for (int d = 0; d < 2; d++) {
        if (!a.domains[d]) continue;
        /* one stream per (domain, case): adding cases never changes earlier ones */
        dk_rng root;
        dk_rng_seed(&root, (uint64_t)a.seed);
        for (long long k = 0; k < a.cases; k++) {
            dk_rng r = dk_rng_split(&root, (uint64_t)(d * 1000003LL + k));
            st = write_case(&a, d, k, &r);
            if (st != DK_OK) return dk_cli_report("phantom", st);
        }
    }
    return 0;
}
