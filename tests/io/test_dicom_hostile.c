/* Malformed DICOM never ends the process: files on which Debian's GDCM asserts (SIGABRT,
 * exit 134 from `dakd info FILE` before dakd parsed in a child process) become DK_ERR_FORMAT
 * naming the file, and a folder holding them still loads its series and lists them.
 *
 * The bad files are made here from good ones by a one-byte patch each, found by mutating
 * those files and keeping what made the release `dakd info` abort:
 *   pixel_tag.dcm  pydicom's MR_small_jp2klossless.dcm, PixelData's element number 0010 made
 *                  007f: an OW of undefined length that is not PixelData; GDCM asserts
 *                  `VRField == VR::UN' while decoding; refused first (the fuzzers found
 *                  the same assertion from a SEG whose sequence's VR became OW)
 *   meta_vr.dcm    the same file, a file-meta VR "UI" made "AI": GDCM asserts "Should not
 *                  happen" in ReadExplicitDataElement; dakd's check refuses it first
 *   item_len.dcm   a TotalSegmentator J2K slice whose item length (92) inside a sequence of
 *                  100 bytes made 151: GDCM asserts `is.good()' in ReadCompat; refused first
 * and, found by the fuzzers (tests/fuzz), an invalid VR in an explicit VR dataset:
 *   seg_vr.dcm     dcmqi's 23x38x3 SEG, the VR "SH" of (0008,0100) in an item made "S\x82":
 *                  GDCM asserts `TagField != Tag(0xfffe,0xe0dd)'
 *   dfl_vr.dcm     pydicom's deflated image_dfl.dcm, Modality's VR "CS" made "CQ" inside the
 *                  deflated dataset (a fuzzed variant made GDCM allocate 1 GB for 20 s)
 *   dfl_cut.dcm    the same file cut 100 bytes short: its dataset does not inflate
 *   seg_iop.dcm    dcmqi's SEG, its shared ImageOrientationPatient's tag made (0020,0034):
 *                  GDCM asserts `b1 && cosines.size() == 6' while decoding
 * The child-process runner itself is checked with a job whose item aborts. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dakd/volume.h"
#include "dicom_internal.h"
#include "test_util.h"

#define PYDICOM_FILES "/usr/lib/python3/dist-packages/pydicom/data/test_files"
#define J2K_SLICE                                                                              \
    "conformance/totalsegmentator/tests/reference_files/example_ct_dicom/"                    \
    "CT.1.3.12.2.1107.5.1.4.60064.30000022120808113428000016573"

/* ---------------------------------------------------------------- the runner */

typedef struct {
    int taken[6], failed[6], flag[6];
    char msg[6][1024];
} runner_log;

static dk_status r_work(void *arg, int i, int *flag) {
    (void)arg;
    if (i == 2) abort(); /* as GDCM's assertions do */
    if (i == 4) {
        *flag = 7;
        return dk_fail(DK_ERR_FORMAT, "item4: bad");
    }
    return DK_OK;
}

static dk_status r_send(void *arg, int i, int fd) {
    (void)arg;
    int sq = i * i;
    return dk_dcm_put(fd, &sq, sizeof sq);
}

static dk_status r_take(void *arg, int i, int fd) {
    runner_log *l = arg;
    int sq = -1;
    dk_status st = dk_dcm_get(fd, &sq, sizeof sq);
    l->taken[i] = sq == i * i ? 1 : -1;
    return st;
}

static int r_failed(void *arg, int i, dk_status st, int flag) {
    runner_log *l = arg;
    l->failed[i] = st;
    l->flag[i] = flag;
    snprintf(l->msg[i], sizeof l->msg[i], "%s", dk_last_error());
    return 1;
}

static const char *r_path(void *arg, int i) {
    static const char *names[] = {"item0", "item1", "item2", "item3", "item4", "item5"};
    (void)arg;
    return names[i];
}

static void test_runner(void) {
    runner_log l;
    memset(&l, 0, sizeof l);
    dk_dcm_job job = {6, &l, r_work, r_send, r_take, r_failed, r_path, "testing"};
    CU_ASSERT_EQUAL(dk_dcm_run_isolated(&job), DK_OK);
    const int want_taken[6] = {1, 1, 0, 1, 0, 1};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(l.taken[i], want_taken[i]);
    /* the abort: the item's path, how the child died; the items after it still done */
    CU_ASSERT(l.failed[2] == DK_ERR_FORMAT && l.flag[2] == 1);
    printf("\n    %s", l.msg[2]);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.msg[2], "item2: the DICOM parser (GDCM) crashed while "
                                            "testing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.msg[2], strsignal(SIGABRT)));
    /* a failure reported by the child: its status, message and flag as it recorded them */
    CU_ASSERT(l.failed[4] == DK_ERR_FORMAT && l.flag[4] == 7);
    CU_ASSERT_STRING_EQUAL(l.msg[4], "item4: bad");
    /* without `failed` the job stops at the first failure */
    memset(&l, 0, sizeof l);
    job.failed = NULL;
    CU_ASSERT_EQUAL(dk_dcm_run_isolated(&job), DK_ERR_FORMAT);
    CU_ASSERT(l.taken[1] == 1 && l.taken[3] == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "item2: the DICOM parser (GDCM) crashed"));
}

/* ---------------------------------------------------------------- real files */

/* Copy `src` to `dst` with byte `off` changed from `from` to `to`; 0 (and a skip) when the
 * source is missing or is not the file the patch was made for. */
static int patch_copy(const char *src, const char *dst, long off, int from, int to) {
    FILE *f = fopen(src, "rb");
    unsigned char *b = NULL;
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > off && fseek(f, 0, SEEK_SET) == 0)
        b = malloc((size_t)n);
    int ok = b && fread(b, 1, (size_t)n, f) == (size_t)n && b[off] == from;
    if (f) fclose(f);
    FILE *o = ok ? fopen(dst, "wb") : NULL;
    if (o) {
        b[off] = (unsigned char)to;
        ok = fwrite(b, 1, (size_t)n, o) == (size_t)n;
        fclose(o);
    }
    free(b);
    if (!ok || !o) dk_test_skip(dst, "its source file is missing or not the expected version");
    return ok && o;
}

/* Copy pydicom's deflated image_dfl.dcm to `dst` with its dataset (from byte 334) inflated,
 * byte `off` of it changed from `from` to `to` (off < 0: unchanged), deflated again, and
 * `cut` bytes dropped from the end; 0 when the source is not the expected file. */
static int deflated_copy(const char *dst, long off, int from, int to, long cut) {
    enum { META = 334, INFLATED = 262682 };
    char *src = NULL;
    size_t n = 0;
    static unsigned char d[INFLATED], z[INFLATED + 1024];
    uLongf zn = sizeof z;
    z_stream s;
    memset(&s, 0, sizeof s);
    int ok = dk_read_file(&src, &n, dk_test_path(PYDICOM_FILES, "image_dfl.dcm")) == DK_OK &&
             n > META && inflateInit2(&s, -MAX_WBITS) == Z_OK;
    if (ok) {
        s.next_in = (Bytef *)src + META, s.avail_in = (uInt)(n - META);
        s.next_out = d, s.avail_out = sizeof d;
        ok = inflate(&s, Z_FINISH) == Z_STREAM_END && s.total_out == INFLATED &&
             (off < 0 || d[off] == from);
        inflateEnd(&s);
    }
    if (ok && off >= 0) d[off] = (unsigned char)to;
    memset(&s, 0, sizeof s);
    ok = ok && deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    if (ok) {
        s.next_in = d, s.avail_in = INFLATED, s.next_out = z, s.avail_out = (uInt)zn;
        ok = deflate(&s, Z_FINISH) == Z_STREAM_END && (long)s.total_out > cut;
        zn = s.total_out - (uLong)cut;
        deflateEnd(&s);
    }
    FILE *o = ok ? fopen(dst, "wb") : NULL;
    ok = o && fwrite(src, 1, META, o) == META && fwrite(z, 1, zn, o) == zn;
    if (o) ok &= fclose(o) == 0;
    free(src);
    return ok;
}

static const char *dir;
static char pixel_tag[4200], meta_vr[4200], item_len[4200], delim_len[4200];
static char seg_vr[4200], dfl_vr[4200], dfl_cut[4200], seg_iop[4200];
static int have_files, have_vr_files;

static void make_files(void) {
    const char *mr = dk_test_path(PYDICOM_FILES, "MR_small_jp2klossless.dcm");
    snprintf(pixel_tag, sizeof pixel_tag, "%s/pixel_tag.dcm", dir);
    snprintf(meta_vr, sizeof meta_vr, "%s/meta_vr.dcm", dir);
    snprintf(item_len, sizeof item_len, "%s/item_len.dcm", dir);
    snprintf(delim_len, sizeof delim_len, "%s/delim_len.dcm", dir);
    const char *shared = dk_test_shared_data();
    have_files = patch_copy(mr, pixel_tag, 1522, 0x10, 0x7f) &
                 patch_copy(mr, meta_vr, 250, 'U', 'A') &
                 /* the pixel data's sequence delimiter claiming 1.4 GB (found by fuzz_dicom:
                  * GDCM allocated it) */
                 patch_copy(mr, delim_len, 5869, 0x00, 0x54) &
                 (shared && patch_copy(dk_test_path(shared, J2K_SLICE), item_len, 1224, 0x5c,
                                       0x97));
    snprintf(seg_vr, sizeof seg_vr, "%s/seg_vr.dcm", dir);
    snprintf(dfl_vr, sizeof dfl_vr, "%s/dfl_vr.dcm", dir);
    snprintf(dfl_cut, sizeof dfl_cut, "%s/dfl_cut.dcm", dir);
    snprintf(seg_iop, sizeof seg_iop, "%s/seg_iop.dcm", dir);
    const char *seg = "conformance/dcmqi/data/segmentations/23x38x3/seg/label.seg";
    have_vr_files = shared && patch_copy(dk_test_path(shared, seg), seg_vr, 2955, 'H', 0x82) &&
                    deflated_copy(dfl_vr, 115, 'S', 'Q', 0) &&
                    deflated_copy(dfl_cut, -1, 0, 0, 100) &&
                    patch_copy(dk_test_path(shared, seg), seg_iop, 2408, 0x37, 0x34);
    if (!have_vr_files) dk_test_skip("invalid VRs", "a source file is missing or not as expected");
}

/* dk_volume_read and `dakd info` on the file: DK_ERR_FORMAT naming it, exit 3, no abort. */
static void refused(const char *path, const char *needle) {
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, path), DK_ERR_FORMAT);
    printf("\n    %s", dk_last_error());
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), needle));
    char log[4096];
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log, "'%s' info '%s'", dk_test_cli(), path), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, needle));
}

static void test_files(void) {
    if (!have_files) return;
    refused(pixel_tag, "an element of undefined length that is neither a sequence nor the "
                       "pixel data");
    refused(meta_vr, "the file meta group holds an element without a valid VR");
    refused(item_len, "an element runs past the end of the sequence or item holding it");
    refused(delim_len, "an item or sequence delimiter claims more bytes than the file holds");
}

static void test_vr_files(void) {
    if (!have_vr_files) return;
    refused(seg_vr, "an element without a valid VR in an explicit VR dataset");
    refused(dfl_vr, "an element without a valid VR in an explicit VR dataset");
    refused(dfl_cut, "its deflated dataset does not inflate");
    refused(seg_iop, "frame 1: ImageOrientationPatient missing");
    /* a deflated dataset inflating beyond the volume size limit (262682 bytes here) */
    dk_volume_set_limit(200000);
    dk_volume v;
    CU_ASSERT_EQUAL(dk_volume_read(&v, dk_test_path(PYDICOM_FILES, "image_dfl.dcm")),
                    DK_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(dk_last_error(), "beyond the volume size limit"));
    dk_volume_set_limit(0);
    /* the file they were made from reads */
    CU_ASSERT_EQUAL(dk_volume_read(&v, dk_test_path(PYDICOM_FILES, "image_dfl.dcm")), DK_OK);
    dk_volume_free(&v);
}

static int warnings;
static void count_warnings(dk_log_level level, const char *msg, void *user) {
    (void)user;
    warnings += level == DK_LOG_WARN && strstr(msg, "DICOM file passed over");
}

/* The three bad files in a folder with the 3-slice CT series: they are passed over and
 * listed, and the CT series loads. */
static void test_folder(void) {
    const char *shared = dk_test_shared_data();
    if (!have_files || !shared) return;
    const char *d = dk_test_path(dir, "series");
    CU_ASSERT_EQUAL_FATAL(dk_test_sh(NULL, 0, "mkdir -p '%s' && cp '%s'/*.dcm '%s' '%s' '%s' '%s'",
                                     d, dk_test_path(shared, "conformance/dcmqi/data/"
                                                             "segmentations/ct-3slice"),
                                     pixel_tag, meta_vr, item_len, d), 0);
    dk_log_set_sink(count_warnings, NULL, DK_LOG_INFO);
    dk_volume v;
    dk_read_opts ct = {NULL, 0};
    CU_ASSERT_EQUAL(dk_volume_read_opts(&v, d, &ct), DK_OK);
    CU_ASSERT(v.nx == 512 && v.nz == 3);
    CU_ASSERT_EQUAL(warnings, 3);
    dk_volume_free(&v);
    dk_log_set_sink(NULL, NULL, DK_LOG_INFO);
    char log[8192];
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log, "'%s' info --series 0 '%s'", dk_test_cli(), d),
                    0);
    printf("\n%s", log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "1 DICOM series"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "3 files passed over"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "dims        512 x 512 x 3"));
    CU_ASSERT(strstr(log, "unreadable: ") && strstr(log, "item_len.dcm: corrupt") &&
              strstr(log, "meta_vr.dcm: corrupt") && strstr(log, "pixel_tag.dcm: corrupt"));
    CU_ASSERT_EQUAL(dk_test_sh(log, sizeof log, "'%s' info --json '%s'", dk_test_cli(), d), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"unreadable\":\ttrue"));
}

/* The fuzzers' in-process mode (dk_dcm_set_in_process) reads what the child reads: the same
 * series from the folder of test_folder, the same files passed over with the same reasons,
 * the same SEG label map; so the fuzzers exercise the product's own logic. */
static void test_in_process(void) {
    const char *shared = dk_test_shared_data();
    if (!have_files || !shared) return;
    const char *d = dk_test_path(dir, "series");
    const char *tiny = dk_test_path(shared, "conformance/dcmqi/data/segmentations/23x38x3");
    const char *seg = dk_test_path(tiny, "seg/label.seg"), *img = dk_test_path(tiny, "image");
    dk_read_opts ct = {NULL, 0};
    dk_volume vol[2], lab[2];
    dk_dicom_series *ser[2];
    dk_dicom_skipped *skip[2];
    int nser[2], nskip[2];
    for (int k = 0; k < 2; k++) {
        dk_dcm_set_in_process(k);
        dk_status a = dk_volume_read_opts(&vol[k], d, &ct);
        dk_status b = dk_dicom_seg_read(&lab[k], seg, img);
        dk_status c = dk_dicom_list_series(&ser[k], &nser[k], &skip[k], &nskip[k], d);
        dk_dcm_set_in_process(0);
        CU_ASSERT_FATAL(a == DK_OK && b == DK_OK && c == DK_OK);
    }
    for (int k = 0; k < 2; k++) {
        const dk_volume *x = k ? lab : vol;
        const size_t n = dk_volume_nbytes(&x[0]);
        CU_ASSERT(n > 0 && n == dk_volume_nbytes(&x[1]));
        CU_ASSERT(x[0].dtype == x[1].dtype && dk_geometry_equal(&x[0].geom, &x[1].geom, 0));
        CU_ASSERT(n == dk_volume_nbytes(&x[1]) && memcmp(x[0].data, x[1].data, n) == 0);
    }
    CU_ASSERT(nser[0] == 1 && nser[1] == 1 && nskip[0] == 3 && nskip[1] == 3);
    for (int i = 0; i < nser[0] && nser[0] == nser[1]; i++) {
        CU_ASSERT_STRING_EQUAL(ser[0][i].uid, ser[1][i].uid);
        CU_ASSERT(ser[0][i].nz == ser[1][i].nz && ser[0][i].nfiles == ser[1][i].nfiles);
    }
    for (int i = 0; i < nskip[0] && nskip[0] == nskip[1]; i++)
        CU_ASSERT_STRING_EQUAL(skip[0][i].reason, skip[1][i].reason);
    for (int k = 0; k < 2; k++) {
        dk_volume_free(&vol[k]);
        dk_volume_free(&lab[k]);
        free(ser[k]);
        free(skip[k]);
    }
}

int main(void) {
    dir = dk_test_tmpdir();
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("malformed DICOM", NULL, NULL);
    CU_add_test(s, "a child that aborts becomes an error naming the item", test_runner);
    CU_add_test(s, "make the bad files", make_files);
    CU_add_test(s, "files on which GDCM aborts: an error, exit 3", test_files);
    CU_add_test(s, "what the fuzzers found: an error, exit 3", test_vr_files);
    CU_add_test(s, "a folder with them: its series load, they are listed", test_folder);
    CU_add_test(s, "the fuzzers' in-process mode reads what the child reads", test_in_process);
    return dk_test_run();
}
