/*
 * DICOM for the ITK bridge (itk_bridge.h): headers, pixels and the SEG pixel buffer.
 *
 * DICOM goes straight to GDCM (the library under ITK's GDCMImageIO): headers with
 * gdcm::Reader (selected attributes only), pixels with gdcm::ImageReader, one decode per file,
 * rescaled here with each frame's own slope/intercept. ITK's ImageSeriesReader +
 * GDCMImageIO parse every file twice more and build a metadata dictionary per file: on the
 * 150-file GE series that alone took ~3x dcm2niix's whole conversion (see
 * tests/bench/bench_dicom_load.c).
 */
#include "itk_bridge_internal.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <gdcmImageReader.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmStringFilter.h>
#include <gdcmTransferSyntax.h>

namespace {

/* ------------------------------------------------------------------ header parsing */

/* The attributes dakd reads (scan_top, scan_frames): gdcm::Reader::ReadSelectedTags loads
 * only these and stops after the last, skipping the values of everything else (on the GE
 * series, with its large private groups, a quarter faster than reading up to PixelData). */
const std::set<gdcm::Tag> &wanted_tags() {
    static const std::set<gdcm::Tag> tags = [] {
        const uint32_t t[] = {0x00080008, 0x00080016, 0x00080018, 0x00080060, 0x0008103E,
                              0x00081115, 0x00190010, 0x0019100A, 0x00290010, 0x00290011,
                              0x00291010, 0x00291110,
                              0x00180050, 0x00180088, 0x0020000E, 0x00200012, 0x00200013,
                              0x00200032, 0x00200037, 0x00200052, 0x00200100, 0x00280002,
                              0x00280008, 0x00280010, 0x00280011, 0x00280030, 0x00280100,
                              0x00280101, 0x00280103, 0x00281052, 0x00281053, 0x00620001,
                              0x00620002, 0x0062000E, 0x52009229, 0x52009230};
        std::set<gdcm::Tag> s;
        for (uint32_t x : t) s.insert(gdcm::Tag((uint16_t)(x >> 16), (uint16_t)(x & 0xffff)));
        return s;
    }();
    return tags;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    size_t a = s.find_first_not_of(' ');
    return a == std::string::npos ? std::string() : s.substr(a);
}

std::string get_str(const gdcm::StringFilter &sf, const gdcm::DataSet &ds, uint16_t g,
                    uint16_t e) {
    const gdcm::Tag t(g, e);
    if (!ds.FindDataElement(t)) return std::string();
    const gdcm::DataElement &de = ds.GetDataElement(t);
    if (de.IsEmpty()) return std::string();
    return trimmed(sf.ToString(de));
}

void copy_str(char *dst, size_t n, const std::string &s) {
    std::snprintf(dst, n, "%s", s.c_str());
}

/* Parse up to n backslash-separated numbers; returns how many were read. */
int get_nums(const gdcm::StringFilter &sf, const gdcm::DataSet &ds, uint16_t g, uint16_t e,
             double *out, int n) {
    std::string s = get_str(sf, ds, g, e);
    const char *p = s.c_str();
    int k = 0;
    while (k < n && *p) {
        char *end;
        double x = std::strtod(p, &end);
        if (end == p) break;
        out[k++] = x;
        p = end;
        while (*p == ' ') p++;
        if (*p == '\\') p++;
    }
    return k;
}

long get_long(const gdcm::StringFilter &sf, const gdcm::DataSet &ds, uint16_t g, uint16_t e,
              long dflt) {
    double x;
    return get_nums(sf, ds, g, e, &x, 1) == 1 ? (long)x : dflt;
}

/* The first item of sequence (g,e) in ds, or NULL. */
const gdcm::DataSet *first_item(const gdcm::DataSet &ds, uint16_t g, uint16_t e) {
    const gdcm::Tag t(g, e);
    if (!ds.FindDataElement(t)) return nullptr;
    gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds.GetDataElement(t).GetValueAsSQ();
    if (!sq || sq->GetNumberOfItems() < 1) return nullptr;
    return &sq->GetItem(1).GetNestedDataSet();
}

/* A Part 10 file ("DICM" at 128) whose meta does not name the deflated transfer syntax:
 * GDCM's ReadSelectedTags asserts on deflated and on some meta-less files, so those are
 * read with ReadUpToTag instead. */
bool plain_part10(const char *path) {
    char head[1024] = {0};
    FILE *fp = std::fopen(path, "rb");
    size_t n = fp ? std::fread(head, 1, sizeof head - 1, fp) : 0;
    if (fp) std::fclose(fp);
    if (n < 132 || std::memcmp(head + 128, "DICM", 4)) return false;
    for (size_t i = 132; i + 22 <= n; i++)
        if (!std::memcmp(head + i, "1.2.840.10008.1.2.1.99", 22)) return false;
    return true;
}

/* Apply the attributes of one functional-group item (shared or per-frame) to a frame. */
void apply_group(dk_dcm_frame *fr, dk_dcm_file *f, const gdcm::StringFilter &sf,
                 const gdcm::DataSet &grp) {
    if (const gdcm::DataSet *d = first_item(grp, 0x0020, 0x9113))
        fr->has_ipp = get_nums(sf, *d, 0x0020, 0x0032, fr->ipp, 3) == 3 || fr->has_ipp;
    if (const gdcm::DataSet *d = first_item(grp, 0x0020, 0x9116))
        fr->has_iop = get_nums(sf, *d, 0x0020, 0x0037, fr->iop, 6) == 6 || fr->has_iop;
    if (const gdcm::DataSet *d = first_item(grp, 0x0028, 0x9110)) {
        get_nums(sf, *d, 0x0028, 0x0030, f->spacing, 2);
        get_nums(sf, *d, 0x0018, 0x0050, &f->thickness, 1);
        get_nums(sf, *d, 0x0018, 0x0088, &f->between, 1);
    }
    if (const gdcm::DataSet *d = first_item(grp, 0x0028, 0x9145)) {
        get_nums(sf, *d, 0x0028, 0x1053, &fr->slope, 1);
        get_nums(sf, *d, 0x0028, 0x1052, &fr->intercept, 1);
    }
    if (const gdcm::DataSet *d = first_item(grp, 0x0062, 0x000A))
        fr->segment = (int)get_long(sf, *d, 0x0062, 0x000B, fr->segment);
    if (const gdcm::DataSet *d = first_item(grp, 0x0008, 0x9124))
        if (const gdcm::DataSet *s = first_item(*d, 0x0008, 0x2112))
            copy_str(fr->ref_sop, sizeof fr->ref_sop, get_str(sf, *s, 0x0008, 0x1155));
}

/* The value bytes of private element (g, 0xXXee) whose creator (g, 0x00XX) is `creator`,
 * or an empty string. */
std::string private_bytes(const gdcm::DataSet &ds, uint16_t g, uint8_t ee, const char *creator) {
    for (uint16_t block = 0x10; block <= 0x11; block++) {
        const gdcm::Tag ct(g, block), vt(g, (uint16_t)(block << 8 | ee));
        if (!ds.FindDataElement(ct) || !ds.FindDataElement(vt)) continue;
        const gdcm::ByteValue *c = ds.GetDataElement(ct).GetByteValue();
        const gdcm::ByteValue *v = ds.GetDataElement(vt).GetByteValue();
        if (c && v && trimmed(std::string(c->GetPointer(), c->GetLength())) == creator)
            return std::string(v->GetPointer(), v->GetLength());
    }
    return std::string();
}

/* Siemens mosaic: image count and slice normal from the CSA image header (0029,xx10),
 * the count from (0019,xx0A) when the CSA header does not give it. */
void scan_mosaic(dk_dcm_file *f, const gdcm::StringFilter &sf, const gdcm::DataSet &ds) {
    if (get_str(sf, ds, 0x0008, 0x0008).find("MOSAIC") == std::string::npos) return;
    std::string csa = private_bytes(ds, 0x0029, 0x10, "SIEMENS CSA HEADER");
    const unsigned char *b = (const unsigned char *)csa.data();
    double n = 0;
    if (dk_dcm_csa_values(&n, 1, b, csa.size(), "NumberOfImagesInMosaic") == 1 && n >= 1 &&
        n <= 65535)
        f->mosaic_images = (int)n;
    f->has_slice_normal =
        dk_dcm_csa_values(f->slice_normal, 3, b, csa.size(), "SliceNormalVector") == 3;
    std::string mr = private_bytes(ds, 0x0019, 0x0A, "SIEMENS MR HEADER");
    if (!f->mosaic_images && mr.size() == 2)
        f->mosaic_images = (unsigned char)mr[0] | (unsigned char)mr[1] << 8;
}

/* Top-level attributes shared by every frame. */
void scan_top(dk_dcm_file *f, const gdcm::StringFilter &sf, const gdcm::DataSet &ds) {
    copy_str(f->series_uid, sizeof f->series_uid, get_str(sf, ds, 0x0020, 0x000E));
    copy_str(f->sop_uid, sizeof f->sop_uid, get_str(sf, ds, 0x0008, 0x0018));
    copy_str(f->sop_class, sizeof f->sop_class, get_str(sf, ds, 0x0008, 0x0016));
    copy_str(f->modality, sizeof f->modality, get_str(sf, ds, 0x0008, 0x0060));
    copy_str(f->description, sizeof f->description, get_str(sf, ds, 0x0008, 0x103E));
    copy_str(f->frame_of_ref, sizeof f->frame_of_ref, get_str(sf, ds, 0x0020, 0x0052));
    f->rows = (int)get_long(sf, ds, 0x0028, 0x0010, 0);
    f->cols = (int)get_long(sf, ds, 0x0028, 0x0011, 0);
    f->samples = (int)get_long(sf, ds, 0x0028, 0x0002, 1);
    f->bits_alloc = (int)get_long(sf, ds, 0x0028, 0x0100, 0);
    f->bits_stored = (int)get_long(sf, ds, 0x0028, 0x0101, f->bits_alloc);
    f->pixel_rep = (int)get_long(sf, ds, 0x0028, 0x0103, 0);
    f->nframes = (int)get_long(sf, ds, 0x0028, 0x0008, 1);
    if (f->nframes < 1) f->nframes = 1;
    get_nums(sf, ds, 0x0028, 0x0030, f->spacing, 2);
    get_nums(sf, ds, 0x0018, 0x0050, &f->thickness, 1);
    get_nums(sf, ds, 0x0018, 0x0088, &f->between, 1);
    f->instance = get_long(sf, ds, 0x0020, 0x0013, -1);
    f->acquisition = get_long(sf, ds, 0x0020, 0x0012, -1);
    f->temporal = get_long(sf, ds, 0x0020, 0x0100, -1);
    scan_mosaic(f, sf, ds);
    f->is_seg = std::strcmp(f->sop_class, "1.2.840.10008.5.1.4.1.1.66.4") == 0;
    if (!f->is_seg) return;
    f->seg_fractional = get_str(sf, ds, 0x0062, 0x0001) == "FRACTIONAL";
    f->seg_max_fraction = (int)get_long(sf, ds, 0x0062, 0x000E, 255);
    const gdcm::Tag segs(0x0062, 0x0002);
    if (ds.FindDataElement(segs)) {
        gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds.GetDataElement(segs).GetValueAsSQ();
        for (gdcm::SequenceOfItems::SizeType i = 1; sq && i <= sq->GetNumberOfItems(); i++) {
            long num = get_long(sf, sq->GetItem(i).GetNestedDataSet(), 0x0062, 0x0004, 0);
            f->seg_nsegments++;
            if (num > f->seg_max_number) f->seg_max_number = (int)num;
        }
    }
    if (const gdcm::DataSet *d = first_item(ds, 0x0008, 0x1115))
        copy_str(f->ref_series_uid, sizeof f->ref_series_uid, get_str(sf, *d, 0x0020, 0x000E));
}

/* Per-frame values: top level, then the shared functional groups, then each frame's own. */
void scan_frames(dk_dcm_file *f, const gdcm::StringFilter &sf, const gdcm::DataSet &ds) {
    dk_dcm_frame base;
    std::memset(&base, 0, sizeof base);
    base.slope = 1.0;
    base.has_ipp = get_nums(sf, ds, 0x0020, 0x0032, base.ipp, 3) == 3;
    base.has_iop = get_nums(sf, ds, 0x0020, 0x0037, base.iop, 6) == 6;
    get_nums(sf, ds, 0x0028, 0x1053, &base.slope, 1);
    get_nums(sf, ds, 0x0028, 0x1052, &base.intercept, 1);
    if (const gdcm::DataSet *shared = first_item(ds, 0x5200, 0x9229))
        apply_group(&base, f, sf, *shared);
    for (int i = 0; i < f->nframes; i++) f->frames[i] = base;
    const gdcm::Tag per(0x5200, 0x9230);
    if (!ds.FindDataElement(per)) return;
    gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds.GetDataElement(per).GetValueAsSQ();
    if (!sq) return;
    gdcm::SequenceOfItems::SizeType n = sq->GetNumberOfItems();
    for (gdcm::SequenceOfItems::SizeType i = 1; i <= n && (int)i <= f->nframes; i++)
        apply_group(&f->frames[i - 1], f, sf, sq->GetItem(i).GetNestedDataSet());
}

/* ------------------------------------------------------------------ pixel reading */

/* Stored value k of a decoded GDCM buffer as double. */
double stored_value(const char *buf, gdcm::PixelFormat::ScalarType t, size_t k) {
    switch (t) {
    case gdcm::PixelFormat::UINT8: return (double)((const uint8_t *)buf)[k];
    case gdcm::PixelFormat::INT8: return (double)((const int8_t *)buf)[k];
    case gdcm::PixelFormat::UINT16: return (double)((const uint16_t *)buf)[k];
    case gdcm::PixelFormat::INT16: return (double)((const int16_t *)buf)[k];
    case gdcm::PixelFormat::UINT32: return (double)((const uint32_t *)buf)[k];
    case gdcm::PixelFormat::INT32: return (double)((const int32_t *)buf)[k];
    case gdcm::PixelFormat::FLOAT32: return (double)((const float *)buf)[k];
    case gdcm::PixelFormat::FLOAT64: return ((const double *)buf)[k];
    default: return 0.0;
    }
}

bool scalar_supported(gdcm::PixelFormat::ScalarType t) {
    using P = gdcm::PixelFormat;
    return t == P::UINT8 || t == P::INT8 || t == P::UINT16 || t == P::INT16 || t == P::UINT32 ||
           t == P::INT32 || t == P::FLOAT32 || t == P::FLOAT64;
}

/* Stored integer value of `bits` bits in an element of `alloc` bits: sign-extended when
 * signed, high bits masked when not (DICOM PS3.5 8.1.1; as GDCM and pydicom). */
template <class U>
double stored_bits(U raw, int bits, bool sgn) {
    const int alloc = (int)(8 * sizeof(U));
    if (bits <= 0 || bits >= alloc) {
        if (!sgn) return (double)raw;
        using S = typename std::make_signed<U>::type;
        return (double)(S)raw;
    }
    uint64_t v = (uint64_t)raw & ((1ull << bits) - 1);
    if (sgn && (v >> (bits - 1))) return (double)(int64_t)(v | ~((1ull << bits) - 1));
    return (double)v;
}

/* Fast path for uncompressed little-endian files whose PixelData is the last element:
 * read the pixel bytes at the end of the file without a second header parse. Returns
 * false (nothing stored) when the file is not laid out that way; GDCM then decodes it. */
template <class T>
bool read_native_t(T *base, const dk_dcm_file *f, const int64_t *slot) {
    int bytes = f->bits_alloc / 8;
    if (!f->native_le || f->samples != 1 || (bytes != 1 && bytes != 2 && bytes != 4) ||
        f->bits_alloc % 8)
        return false;
    size_t plane = (size_t)f->rows * (size_t)f->cols, need = plane * f->nframes * bytes;
    size_t hdr = f->explicit_vr ? 12 : 8;
    FILE *fp = std::fopen(f->path, "rb");
    if (!fp) return false;
    std::vector<unsigned char> raw;
    bool ok = false;
    if (std::fseek(fp, 0, SEEK_END) == 0) {
        long size = std::ftell(fp);
        for (size_t len = need; !ok && len <= need + 1; len++) { /* odd lengths are padded */
            unsigned char h[12];
            if (size < (long)(len + hdr) || std::fseek(fp, size - (long)(len + hdr), SEEK_SET) ||
                std::fread(h, 1, hdr, fp) != hdr)
                continue;
            uint32_t l = (uint32_t)h[hdr - 4] | (uint32_t)h[hdr - 3] << 8 |
                         (uint32_t)h[hdr - 2] << 16 | (uint32_t)h[hdr - 1] << 24;
            if (h[0] != 0xe0 || h[1] != 0x7f || h[2] != 0x10 || h[3] != 0x00 || l != len)
                continue;
            raw.resize(need);
            ok = std::fread(raw.data(), 1, need, fp) == need;
        }
    }
    std::fclose(fp);
    if (!ok) return false;
    bool sgn = f->pixel_rep == 1;
    for (int k = 0; k < f->nframes; k++) {
        if (slot[k] < 0) continue;
        const double s = f->frames[k].slope, b = f->frames[k].intercept;
        T *dst = base + (size_t)slot[k] * plane;
        const unsigned char *src = raw.data() + (size_t)k * plane * bytes;
        for (size_t j = 0; j < plane; j++) {
            const unsigned char *q = src + j * bytes;
            double x = bytes == 1   ? stored_bits<uint8_t>(q[0], f->bits_stored, sgn)
                       : bytes == 2 ? stored_bits<uint16_t>((uint16_t)(q[0] | q[1] << 8),
                                                            f->bits_stored, sgn)
                                    : stored_bits<uint32_t>((uint32_t)q[0] | (uint32_t)q[1] << 8 |
                                                                (uint32_t)q[2] << 16 |
                                                                (uint32_t)q[3] << 24,
                                                            f->bits_stored, sgn);
            dst[j] = (T)(x * s + b);
        }
    }
    return true;
}

/* Decode f->path with GDCM (its codecs: RLE, JPEG, JPEG-LS, JPEG 2000, deflate) and
 * store frame k, rescaled with that frame's slope and intercept, at image slot slot[k]. */
template <class T>
dk_status decode_t(T *base, const dk_dcm_file *f, const int64_t *slot) {
    gdcm::ImageReader reader;
    reader.SetFileName(f->path);
    if (!reader.Read())
        return dk_fail(DK_ERR_FORMAT, "%s: cannot read the pixel data (file cut short or "
                       "corrupt)", f->path);
    const gdcm::Image &img = reader.GetImage();
    gdcm::PixelFormat pf = img.GetPixelFormat();
    gdcm::PixelFormat::ScalarType t = pf.GetScalarType();
    if (!scalar_supported(t) || pf.GetSamplesPerPixel() != 1)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: pixel format %s with %d samples per pixel is not "
                       "supported", f->path, pf.GetScalarTypeAsString(),
                       (int)pf.GetSamplesPerPixel());
    size_t plane = (size_t)f->rows * (size_t)f->cols, need = plane * (size_t)f->nframes;
    size_t len = img.GetBufferLength();
    if (img.GetDimension(0) != (unsigned)f->cols || img.GetDimension(1) != (unsigned)f->rows ||
        len < need * pf.GetPixelSize())
        return dk_fail(DK_ERR_FORMAT, "%s: PixelData decodes to %zu bytes, %zu expected for "
                       "Columns x Rows x NumberOfFrames = %d x %d x %d", f->path, len,
                       need * pf.GetPixelSize(), f->cols, f->rows, f->nframes);
    std::vector<char> buf(len);
    if (!img.GetBuffer(buf.data()))
        return dk_fail(DK_ERR_FORMAT, "%s: cannot decode the pixel data (transfer syntax %s)",
                       f->path, gdcm::TransferSyntax::GetTSString(img.GetTransferSyntax()));
    for (int k = 0; k < f->nframes; k++) {
        if (slot[k] < 0) continue;
        const double s = f->frames[k].slope, b = f->frames[k].intercept;
        T *dst = base + (size_t)slot[k] * plane;
        for (size_t j = 0; j < plane; j++)
            dst[j] = (T)(stored_value(buf.data(), t, (size_t)k * plane + j) * s + b);
    }
    return DK_OK;
}

} // namespace

extern "C" dk_status dk_itk_dcm_scan(dk_dcm_file *f) {
    dk_itk::quiet();
    const char *path = f->path;
    std::memset(f, 0, sizeof *f);
    f->path = path;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, std::strerror(errno));
    try {
        gdcm::Reader reader;
        reader.SetFileName(path);
        bool ok = plain_part10(path) ? reader.ReadSelectedTags(wanted_tags())
                                     : reader.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010));
        if (!ok)
            return dk_fail(DK_ERR_FORMAT, "%s: not a DICOM file (or its header is cut short)",
                           path);
        const gdcm::DataSet &ds = reader.GetFile().GetDataSet();
        gdcm::StringFilter sf;
        sf.SetFile(reader.GetFile());
        scan_top(f, sf, ds);
        const gdcm::TransferSyntax &ts = reader.GetFile().GetHeader().GetDataSetTransferSyntax();
        f->native_le = ts == gdcm::TransferSyntax::ImplicitVRLittleEndian ||
                       ts == gdcm::TransferSyntax::ExplicitVRLittleEndian;
        f->explicit_vr = ts.IsExplicit();
        f->has_pixels = f->rows > 0 && f->cols > 0;
        if ((off_t)f->nframes > sb.st_size) { /* every frame takes at least a byte */
            long nframes = f->nframes;
            dk_itk_dcm_clear(f);
            return dk_fail(DK_ERR_FORMAT, "%s: NumberOfFrames = %ld exceeds the file's %lld "
                           "bytes", path, nframes, (long long)sb.st_size);
        }
        f->frames = (dk_dcm_frame *)std::calloc((size_t)f->nframes, sizeof *f->frames);
        if (!f->frames) {
            dk_itk_dcm_clear(f);
            return dk_fail(DK_ERR_NOMEM, "%s: NumberOfFrames = %d: out of memory", path,
                           f->nframes);
        }
        scan_frames(f, sf, ds);
        return DK_OK;
    } catch (...) {
        dk_itk_dcm_clear(f);
        return dk_itk::fail_from_exception(path, "cannot parse DICOM header");
    }
}

extern "C" void dk_itk_dcm_clear(dk_dcm_file *f) {
    if (!f) return;
    const char *path = f->path;
    std::free(f->frames);
    std::memset(f, 0, sizeof *f);
    f->path = path;
}

extern "C" dk_status dk_itk_dcm_read_pixels(void *base, int use_double, const dk_dcm_file *f,
                                            const int64_t *slot) {
    dk_itk::quiet();
    try {
        bool done = use_double ? read_native_t((double *)base, f, slot)
                               : read_native_t((float *)base, f, slot);
        if (done) return DK_OK;
        return use_double ? decode_t((double *)base, f, slot) : decode_t((float *)base, f, slot);
    } catch (...) {
        return dk_itk::fail_from_exception(f->path, "cannot decode pixel data");
    }
}

extern "C" dk_status dk_itk_dcm_read_seg_pixels(unsigned char **buf, size_t *nbytes,
                                                const char *path) {
    dk_itk::quiet();
    *buf = nullptr;
    *nbytes = 0;
    try {
        gdcm::ImageReader reader;
        reader.SetFileName(path);
        if (!reader.Read())
            return dk_fail(DK_ERR_FORMAT, "%s: cannot read the SEG pixel data", path);
        const gdcm::Image &img = reader.GetImage();
        size_t len = img.GetBufferLength();
        unsigned char *b = (unsigned char *)std::malloc(len ? len : 1);
        if (!b) return dk_fail(DK_ERR_NOMEM, "%s: SEG pixel data of %zu bytes", path, len);
        if (!img.GetBuffer((char *)b)) {
            std::free(b);
            return dk_fail(DK_ERR_FORMAT, "%s: cannot decode the SEG pixel data", path);
        }
        *buf = b;
        *nbytes = len;
        return DK_OK;
    } catch (...) {
        return dk_itk::fail_from_exception(path, "cannot read the SEG pixel data");
    }
}
