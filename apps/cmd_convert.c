/* dakd convert IN OUT — between NIfTI (.nii, .nii.gz, .hdr/.img) and PNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dakd/volume.h"

static const char *convert_help =
    "usage: dakd convert [--nifti-version 1|2] [--gzip-level 1-9] IN OUT\n\n"
    "Read IN and write OUT, the format chosen by OUT's extension (.nii, .nii.gz, .hdr,\n"
    ".png). Voxels, data type, geometry and NIfTI header fields are kept. PNG holds one\n"
    "2-D image of 1-4 channels with 8- or 16-bit integer samples; a volume that does not\n"
    "fit (nz > 1, several time points, non-integer values) is refused and nothing is\n"
    "written. The output appears complete or not at all.\n\n"
    "  --nifti-version N  write NIfTI-1 or NIfTI-2 (default: as read, else 1)\n"
    "  --gzip-level N     compression level for .gz outputs (default 6)\n";

static int parse_level(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int dk_cmd_convert(int argc, char **argv) {
    dk_write_opts opts = {0, 0};
    const char *paths[2];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dk_cli_is_help(a)) {
            fputs(convert_help, stdout);
            return 0;
        }
        if (strcmp(a, "--nifti-version") == 0 || strcmp(a, "--gzip-level") == 0) {
            int is_ver = a[2] == 'n';
            int *dst = is_ver ? &opts.nifti_version : &opts.gzip_level;
            if (i + 1 == argc || parse_level(argv[i + 1], 1, is_ver ? 2 : 9, dst))
                return dk_cli_usage_error("convert", "%s needs %s", a, is_ver ? "1 or 2" : "1-9");
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            return dk_cli_usage_error("convert", "unknown option '%s'", a);
        } else if (n < 2) {
            paths[n++] = a;
        } else {
            return dk_cli_usage_error("convert", "too many arguments ('%s')", a);
        }
    }
    if (n != 2) return dk_cli_usage_error("convert", "needs IN and OUT");
    dk_volume v;
    dk_status st = dk_volume_read(&v, paths[0]);
    if (st == DK_OK) st = dk_volume_write(&v, paths[1], &opts);
    dk_volume_free(&v);
    if (st == DK_OK) printf("%s -> %s\n", paths[0], paths[1]);
    return dk_cli_report("convert", st);
}
