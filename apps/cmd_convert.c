/* dakd convert IN OUT — NIfTI, PNG, MHA/MHD, NRRD; DICOM series, files and SEG as input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dakd/volume.h"

static const char *convert_help =
    "usage: dakd convert [--nifti-version 1|2] [--gzip-level 1-9] [--series UID|INDEX]\n"
    "                    [--seg SEG.dcm] IN OUT\n\n"
    "Read IN and write OUT, the format chosen by OUT's extension (.nii, .nii.gz, .hdr,\n"
    ".png, .mha, .mhd, .nrrd, .nhdr). IN may also be a DICOM file or a folder holding a\n"
    "DICOM series (several series: pick one with --series). Voxels, data type, geometry\n"
    "and NIfTI header fields are kept; DICOM is stacked along the slice normal with its\n"
    "rescale applied (see README). PNG holds one 2-D image of 1-4 channels with 8- or\n"
    "16-bit integer samples; a volume that does not fit (nz > 1, several time points,\n"
    "non-integer values) is refused and nothing is written. The output appears complete\n"
    "or not at all, and never replaces IN or the SEG file (same path, link or inode: exit 1).\n\n"
    "  --nifti-version N  write NIfTI-1 or NIfTI-2 (default: as read, else 1)\n"
    "  --gzip-level N     compression level for .gz outputs (default 6); MHA/NRRD are\n"
    "                     compressed only when this is given\n"
    "  --series UID|N     the DICOM series of IN (SeriesInstanceUID or index from\n"
    "                     'dakd info IN')\n"
    "  --seg SEG.dcm      write the label map of this DICOM SEG on the grid of the series\n"
    "                     in IN (label = segment number; where segments overlap the\n"
    "                     highest number wins)\n";

static int parse_level(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int dk_cmd_convert(int argc, char **argv) {
    dk_write_opts opts = {0, 0};
    dk_read_opts ro = {NULL, -1};
    const char *paths[2], *seg = NULL;
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
        } else if (strcmp(a, "--series") == 0) {
            if (i + 1 == argc || dk_cli_parse_series(argv[++i], &ro))
                return dk_cli_usage_error("convert", "--series needs a SeriesInstanceUID or index");
        } else if (strcmp(a, "--seg") == 0) {
            if (i + 1 == argc) return dk_cli_usage_error("convert", "--seg needs a SEG file");
            seg = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return dk_cli_usage_error("convert", "unknown option '%s'", a);
        } else if (n < 2) {
            paths[n++] = a;
        } else {
            return dk_cli_usage_error("convert", "too many arguments ('%s')", a);
        }
    }
    if (n != 2) return dk_cli_usage_error("convert", "needs IN and OUT");
    const char *ins[2] = {paths[0], seg};
    int same = dk_same_file_any(paths[1], ins, 2);
    if (same >= 0)
        return dk_cli_report("convert", dk_fail(DK_ERR_ARG, "OUT %s is the %s %s: convert never "
                                                "writes over what it reads; choose another OUT",
                                                paths[1], same ? "SEG file" : "input", ins[same]));
    dk_volume v;
    dk_status st = seg ? dk_dicom_seg_read(&v, seg, paths[0])
                       : dk_volume_read_opts(&v, paths[0], &ro);
    if (st == DK_OK) st = dk_volume_write(&v, paths[1], &opts);
    dk_volume_free(&v);
    if (st == DK_OK) printf("%s -> %s\n", paths[0], paths[1]);
    int rc = dk_cli_report("convert", st);
    struct stat sb;
    /* a folder of several series: the library names them; say which option picks one */
    if (st == DK_ERR_ARG && !seg && !ro.series_uid && ro.series_index < 0 &&
        stat(paths[0], &sb) == 0 && S_ISDIR(sb.st_mode))
        fprintf(stderr, "(pick one with --series UID|INDEX)\n");
    return rc;
}
