/*
 * MetaImage (.mha/.mhd) and NRRD (.nrrd/.nhdr) for the ITK bridge (itk_bridge.h), through
 * ITK's MetaImageIO and NrrdImageIO. Channels are planar in a dk_volume and interleaved in
 * the files. A write goes to a temporary folder beside the output whose files are then
 * moved into place one by one, the header last, so that a reader never finds a header
 * without its data.
 */
#include "itk_bridge_internal.h"

#include <dirent.h>
#include <strings.h>
#include <sys/stat.h>

#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include <itkMetaImageIO.h>
#include <itkNrrdImageIO.h>

namespace {

bool ends_with(const std::string &s, const char *suffix) {
    size_t k = std::strlen(suffix);
    if (s.size() < k) return false;
    for (size_t i = 0; i < k; i++)
        if (std::tolower((unsigned char)s[s.size() - k + i]) != suffix[i]) return false;
    return true;
}

itk::ImageIOBase::Pointer io_for(const std::string &path) {
    if (ends_with(path, ".mha") || ends_with(path, ".mhd"))
        return itk::MetaImageIO::New().GetPointer();
    return itk::NrrdImageIO::New().GetPointer();
}

/* The first 40 bytes of a header line for a message, unprintable ones as '?'. */
std::string shown(const std::string &line) {
    std::string s = line.substr(0, 40);
    for (char &c : s)
        if (!std::isprint((unsigned char)c)) c = '?';
    return s;
}

/* Four MetaIO failures on hostile headers, checked before ITK reads one. MetaIO reads NDims
 * as a number and then loops over that many values for every field that depends on it: a
 * negative or huge NDims makes it spin for hours (a fuzzed 152-byte .mha), so every NDims
 * line must give 1..10, MetaIO's own maximum. And it splits the ElementDataFile value into
 * words by its length but measures them with strlen: a NUL byte in it makes it read past
 * its buffer; no header line may hold one. A '%' in ElementDataFile makes it a file pattern
 * that MetaIO formats with the file's text as the format ("%999999999d" spun, "%n" writes):
 * dakd refuses patterns (its size check could not bound them either). A field name goes to
 * a 255-byte buffer by strcpy (glibc's fortify aborts): names (the text before '=', or a
 * whole line without one) must be shorter, and so must the values MetaObject copies the
 * same way (Comment, ObjectType, ObjectSubType, Name: 255 bytes abort, measured; a long value
 * of the other fields, up to 5 000 bytes tried, ends as MetaIO's own read error). A line
 * without '=' is refused: MetaIO reads its word as a key and the value after the next '=',
 * on a later line ("NDims" over "Offset = -2 3.5 0" is NDims -2, which spun). Blank lines
 * pass. The header ends with the ElementDataFile line;
 * keys are matched as MetaIO does, trimmed, here without case. */
dk_status check_meta_header(const char *path) {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    size_t seen = 0; /* a header is a few hundred bytes: 1 MiB without its end is not one */
    while (seen < (1u << 20) && std::getline(in, line)) {
        seen += line.size() + 1;
        if (line.find('\0') != std::string::npos)
            return dk_fail(DK_ERR_FORMAT, "%s: header line '%s' holds a NUL byte", path,
                           shown(line).c_str());
        size_t eq = line.find('=');
        if ((eq == std::string::npos ? line.size() : eq) >= 255)
            return dk_fail(DK_ERR_FORMAT, "%s: header line '%s...' has a field name of 255 "
                           "bytes or more", path, shown(line).c_str());
        if (eq == std::string::npos) {
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue; /* blank */
            return dk_fail(DK_ERR_FORMAT, "%s: header line '%s' has no '=' (MetaIO would take "
                           "its value from the next line's '=')", path, shown(line).c_str());
        }
        std::string key = line.substr(0, eq);
        key.erase(key.find_last_not_of(" \t") + 1); /* npos + 1 = 0: all blank */
        key.erase(0, key.find_first_not_of(" \t"));
        if (strcasecmp(key.c_str(), "ElementDataFile") == 0) {
            if (line.find('%', eq) == std::string::npos) break;
            return dk_fail(DK_ERR_FORMAT, "%s: header field ElementDataFile '%.60s' is a file "
                           "pattern (a '%%' in it), which dakd does not read: write the slices "
                           "into one data file", path, line.c_str() + eq + 1);
        }
        const char *val = line.c_str() + eq + 1;
        while (*val == ' ' || *val == '\t') val++;
        static const char *const copied[] = {"Comment", "ObjectType", "ObjectSubType", "Name"};
        for (const char *c : copied)
            if (strcasecmp(key.c_str(), c) == 0 && strlen(val) >= 255)
                return dk_fail(DK_ERR_FORMAT, "%s: header field %s has a value of 255 bytes or "
                               "more ('%.40s...')", path, c, shown(val).c_str());
        if (strcasecmp(key.c_str(), "NDims") != 0) continue;
        char *end = nullptr;
        double nd = std::strtod(val, &end);
        if (end == val || !(nd >= 1 && nd < 11))
            return dk_fail(DK_ERR_FORMAT, "%s: header field NDims '%.40s' is not a number of "
                           "dimensions from 1 to 10", path, val);
    }
    return DK_OK;
}

/* A NRRD failure on hostile headers, checked before ITK reads one. ITK's NRRD reader (teem)
 * formats its error messages into a stack buffer of about 1 KiB with vsprintf, quoting the
 * line it could not parse: a malformed field line of ~950 bytes or more overflows it
 * (glibc's fortify aborts; found by fuzz_metaimage with a "kinds:" line running into binary
 * data). Header lines up to the blank line that ends the header must therefore be shorter
 * than 512 bytes, except comments ("#...", skipped by teem) and key/value pairs
 * ("key:=value" whose key has no ": "), which it stores without quoting them; real
 * headers' field lines are a few hundred bytes at most ("space directions" of 4 axes). */
dk_status check_nrrd_header(const char *path) {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    size_t seen = 0;
    while (seen < (1u << 20) && std::getline(in, line)) {
        seen += line.size() + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break; /* the end of the header */
        if (line.size() < 512 || line[0] == '#') continue;
        size_t kv = line.find(":=");
        if (kv != std::string::npos && line.rfind(": ", kv) == std::string::npos) continue;
        return dk_fail(DK_ERR_FORMAT, "%s: header line '%s...' is %zu bytes long: NRRD field "
                       "lines must be shorter than 512 bytes (ITK's NRRD reader overflows on "
                       "long malformed ones)", path, shown(line).c_str(), line.size());
    }
    return DK_OK;
}

dk_dtype dtype_of(itk::IOComponentEnum c) {
    using C = itk::IOComponentEnum;
    switch (c) {
    case C::UCHAR: return DK_U8;
    case C::CHAR: return DK_I8;
    case C::USHORT: return DK_U16;
    case C::SHORT: return DK_I16;
    case C::UINT: return DK_U32;
    case C::INT: return DK_I32;
    case C::ULONG:
    case C::ULONGLONG: return DK_U64;
    case C::LONG:
    case C::LONGLONG: return DK_I64;
    case C::FLOAT: return DK_F32;
    case C::DOUBLE: return DK_F64;
    default: return DK_DT_UNKNOWN;
    }
}

itk::IOComponentEnum component_of(dk_dtype t) {
    using C = itk::IOComponentEnum;
    switch (t) {
    case DK_U8: return C::UCHAR;
    case DK_I8: return C::CHAR;
    case DK_U16: return C::USHORT;
    case DK_I16: return C::SHORT;
    case DK_U32: return C::UINT;
    case DK_I32: return C::INT;
    case DK_U64: return C::ULONGLONG;
    case DK_I64: return C::LONGLONG;
    case DK_F32: return C::FLOAT;
    case DK_F64: return C::DOUBLE;
    default: return C::UNKNOWNCOMPONENTTYPE;
    }
}

/* Geometry and grid of the image the IO object describes. */
dk_status header_from_io(dk_volume *v, itk::ImageIOBase *io, const char *path) {
    unsigned nd = io->GetNumberOfDimensions();
    if (nd < 2 || nd > 4)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: %u dimensions (dakd reads 2-D to 4-D)", path, nd);
    int64_t n[4] = {1, 1, 1, 1};
    for (unsigned i = 0; i < nd; i++) n[i] = (int64_t)io->GetDimensions(i);
    dk_dtype t = dtype_of(io->GetComponentType());
    if (t == DK_DT_UNKNOWN)
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: component type %s is not supported", path,
                       itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType()).c_str());
    v->nx = n[0], v->ny = n[1], v->nz = n[2], v->nt = n[3];
    v->nc = (int64_t)io->GetNumberOfComponents();
    v->ndim = nd == 2 ? 2 : 3;
    v->dtype = t;
    dk_geometry_identity(&v->geom);
    for (unsigned c = 0; c < nd && c < 3; c++) {
        v->geom.spacing[c] = io->GetSpacing(c);
        v->geom.origin[c] = io->GetOrigin(c);
        std::vector<double> d = io->GetDirection(c);
        for (unsigned r = 0; r < 3; r++) v->geom.direction[r][c] = r < d.size() ? d[r] : 0.0;
        /* a zero axis in a NRRD's space directions comes back as spacing 0, direction NaN */
        double sum = v->geom.spacing[c] + v->geom.origin[c];
        for (unsigned r = 0; r < 3; r++) sum += v->geom.direction[r][c];
        if (!std::isfinite(sum) || v->geom.spacing[c] == 0)
            return dk_fail(DK_ERR_FORMAT, "%s: axis %u: spacing %g, origin %g, direction (%g, %g, "
                           "%g): the header gives no finite, non-zero step", path, c + 1,
                           v->geom.spacing[c], v->geom.origin[c], v->geom.direction[0][c],
                           v->geom.direction[1][c], v->geom.direction[2][c]);
    }
    if (nd == 4) v->meta.dt = io->GetSpacing(3);
    v->meta.xyz_units = 2; /* NIFTI_UNITS_MM */
    v->meta.qform_code = v->meta.sform_code = 1;
    return DK_OK;
}

/* Where an image's voxels are and how they are stored, from its header. */
struct data_place {
    std::string file;   /* the file holding them (the header itself when attached) */
    bool many = false;  /* spread over several files (a list or a pattern): not checked */
    bool deflate = false;
    bool unbounded = false; /* an encoding whose size says nothing (bzip2, ASCII) */
    uint64_t skip = 0;  /* bytes before them in that file (attached: the header's) */
};

std::string lower(std::string s) {
    for (char &c : s) c = (char)std::tolower((unsigned char)c);
    return s;
}

/* A data file named in the header at `path`: relative to the header's folder. */
std::string beside(const char *path, const std::string &name) {
    const char *slash = std::strrchr(path, '/');
    if (name.empty() || name[0] == '/' || !slash) return name;
    return std::string(path, (size_t)(slash - path + 1)) + name;
}

/* NRRD (.nrrd attached, .nhdr detached): the header's own fields, read up to the blank line
 * that ends it ("data file", "encoding", "byte skip"; ITK does not report them). */
data_place nrrd_place(const char *path) {
    data_place d;
    d.file = path;
    std::ifstream f(path, std::ios::binary);
    std::string line, enc = "raw";
    uint64_t at = 0;
    long long skip = 0;
    bool detached = false;
    while (std::getline(f, line)) {
        at += line.size() + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        size_t c = line.find(": ");
        if (line[0] == '#' || c == std::string::npos) continue;
        std::string k = lower(line.substr(0, c)), v = line.substr(c + 2);
        if (k == "data file" || k == "datafile") {
            detached = true;
            d.many = v.rfind("LIST", 0) == 0 || v.find('%') != std::string::npos;
            d.file = beside(path, v);
        } else if (k == "encoding") {
            enc = lower(v);
        } else if (k == "byte skip" || k == "byteskip") {
            skip = std::atoll(v.c_str());
        }
    }
    d.deflate = enc == "gzip" || enc == "gz";
    d.unbounded = !d.deflate && enc != "raw";
    d.skip = detached ? (skip > 0 ? (uint64_t)skip : 0) : at;
    return d;
}

/* MetaImage: LOCAL data follow the header in the same file; else ElementDataFile names the
 * file (LIST and patterns name several). */
data_place meta_place(MetaImage *mi, const char *path) {
    data_place d;
    const char *df = mi->ElementDataFileName();
    d.deflate = mi->CompressedData();
    if (strcasecmp(df, "LOCAL") == 0) {
        d.file = path;
        return d;
    }
    d.many = strncasecmp(df, "LIST", 4) == 0 || std::strchr(df, '%') != nullptr;
    d.file = beside(path, df);
    if (!d.deflate && mi->HeaderSize() > 0) d.skip = (uint64_t)mi->HeaderSize();
    return d;
}

/* The data an image's header claims (`nbytes`: DimSize x ElementType, sizes x type) must fit
 * the file that holds them: uncompressed, after the bytes it skips; deflated, within what
 * its size can inflate to. A detached data file is named with its header. Checked before
 * anything is allocated. (A LOCAL MetaImage is bounded by its whole file, as before: its
 * header's length is not known here.) */
dk_status check_data_size(itk::ImageIOBase *io, const char *path, uint64_t nbytes) {
    auto *mio = dynamic_cast<itk::MetaImageIO *>(io);
    MetaImage *mi = mio ? mio->GetMetaImagePointer() : nullptr;
    data_place d = mi ? meta_place(mi, path) : nrrd_place(path);
    if (d.many || d.unbounded) return DK_OK; /* the volume size limit only */
    const bool own = d.file == path;
    struct stat sb;
    if (stat(d.file.c_str(), &sb) != 0)
        return dk_fail(DK_ERR_IO, "%s: its data file %s cannot be opened: %s", path,
                       d.file.c_str(), std::strerror(errno));
    uint64_t size = (uint64_t)sb.st_size, have = 0;
    if (mi && own) have = d.deflate ? dk_inflate_bound(size) : size;
    else if (size > d.skip) have = d.deflate ? dk_inflate_bound(size - d.skip) : size - d.skip;
    if (nbytes <= have) return DK_OK;
    const char *fields = mi ? "DimSize and ElementType" : "sizes and type";
    if (own)
        return dk_fail(DK_ERR_FORMAT, "%s: header fields %s need %llu bytes of data, more "
                       "than the %llu-byte file %s", path, fields, (unsigned long long)nbytes,
                       (unsigned long long)size, d.deflate ? "can inflate to (deflate expands "
                       "at most 1032:1)" : "holds");
    return dk_fail(DK_ERR_FORMAT, "%s: header fields %s need %llu bytes of data, more than "
                   "its %llu-byte data file %s %s", path, fields, (unsigned long long)nbytes,
                   (unsigned long long)size, d.file.c_str(), d.deflate ? "can inflate to "
                   "(deflate expands at most 1032:1)" : d.skip ? "holds after its byte skip"
                   : "holds");
}

/* Interleaved components (file) <-> planar channels (dk_volume). */
void deinterleave(void *planar, const void *inter, int64_t npix, int64_t nc, size_t es) {
    const char *src = (const char *)inter;
    char *dst = (char *)planar;
    for (int64_t p = 0; p < npix; p++)
        for (int64_t c = 0; c < nc; c++)
            std::memcpy(dst + ((size_t)(c * npix + p)) * es, src + ((size_t)(p * nc + c)) * es, es);
}

void interleave(void *inter, const void *planar, int64_t npix, int64_t nc, size_t es) {
    const char *src = (const char *)planar;
    char *dst = (char *)inter;
    for (int64_t p = 0; p < npix; p++)
        for (int64_t c = 0; c < nc; c++)
            std::memcpy(dst + ((size_t)(p * nc + c)) * es, src + ((size_t)(c * npix + p)) * es, es);
}

/* Configure `io` to write `v`. */
void describe_for_write(itk::ImageIOBase *io, const dk_volume *v) {
    unsigned nd = v->nt > 1 ? 4 : (v->nz > 1 || v->ndim == 3) ? 3 : 2;
    io->SetNumberOfDimensions(nd);
    int64_t n[4] = {v->nx, v->ny, v->nz, v->nt};
    itk::ImageIORegion region(nd);
    for (unsigned c = 0; c < nd; c++) {
        io->SetDimensions(c, (itk::SizeValueType)n[c]);
        region.SetSize(c, (itk::SizeValueType)n[c]);
        region.SetIndex(c, 0);
        io->SetSpacing(c, c < 3 ? v->geom.spacing[c] : (v->meta.dt > 0 ? v->meta.dt : 1.0));
        io->SetOrigin(c, c < 3 ? v->geom.origin[c] : 0.0);
        std::vector<double> d(nd, 0.0);
        for (unsigned r = 0; r < nd; r++)
            d[r] = (c < 3 && r < 3) ? v->geom.direction[r][c] : (r == c ? 1.0 : 0.0);
        io->SetDirection(c, d);
    }
    io->SetIORegion(region);
    io->SetComponentType(component_of(v->dtype));
    io->SetNumberOfComponents((unsigned)v->nc);
    io->SetPixelType(v->nc > 1 ? itk::IOPixelEnum::VECTOR : itk::IOPixelEnum::SCALAR);
}

/* Move every file of `tmpdir` into `dir`, the header (`base`) last so that it appears
 * only when its data file is in place. */
dk_status commit_tree(const std::string &tmpdir, const std::string &dir, const std::string &base) {
    std::vector<std::string> names;
    if (DIR *d = opendir(tmpdir.c_str())) {
        while (struct dirent *e = readdir(d))
            if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..") && base != e->d_name)
                names.push_back(e->d_name);
        closedir(d);
    }
    names.push_back(base);
    for (const std::string &nm : names) {
        dk_status st = dk_commit_file((tmpdir + "/" + nm).c_str(), (dir + nm).c_str());
        if (st != DK_OK) return st;
    }
    return DK_OK;
}

} // namespace

extern "C" dk_status dk_itk_image_read(dk_volume *v, const char *path, int header_only) {
    dk_itk::quiet();
    std::memset(v, 0, sizeof *v);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot open: %s", path, std::strerror(errno));
    void *inter = nullptr;
    try {
        itk::ImageIOBase::Pointer io = io_for(path);
        if (!io->CanReadFile(path))
            return dk_fail(DK_ERR_FORMAT, "%s: not a readable %s file", path, io->GetNameOfClass());
        io->SetFileName(path);
        dk_status ok = dynamic_cast<itk::MetaImageIO *>(io.GetPointer())
                           ? check_meta_header(path)
                           : check_nrrd_header(path);
        if (ok != DK_OK) return ok;
        io->ReadImageInformation();
        dk_status st = header_from_io(v, io, path);
        const int64_t n[5] = {v->nx, v->ny, v->nz, v->nt, v->nc};
        /* ITK reads into the buffer given, so the header's size is checked before it */
        if (st == DK_OK && !header_only)
            st = dk_volume_check_size(path, "header sizes and components", n, v->dtype);
        if (st == DK_OK && !header_only)
            st = check_data_size(
                io, path, (uint64_t)(n[0] * n[1] * n[2] * n[3] * n[4]) * dk_dtype_size(v->dtype));
        if (st != DK_OK || header_only) {
            if (st != DK_OK) std::memset(v, 0, sizeof *v);
            return st;
        }
        size_t es = dk_dtype_size(v->dtype);
        int64_t npix = v->nx * v->ny * v->nz * v->nt;
        v->data = dk_alloc_aligned((size_t)(npix * v->nc), es);
        inter = v->nc > 1 ? dk_alloc_aligned((size_t)(npix * v->nc), es) : v->data;
        if (!v->data || !inter) throw std::bad_alloc();
        itk::ImageIORegion region(io->GetNumberOfDimensions()); /* MetaImageIO reads only it */
        for (unsigned c = 0; c < io->GetNumberOfDimensions(); c++) {
            region.SetIndex(c, 0);
            region.SetSize(c, io->GetDimensions(c));
        }
        io->SetIORegion(region);
        io->Read(inter);
        if (v->nc > 1) deinterleave(v->data, inter, npix, v->nc, es);
        if (inter != v->data) dk_free(inter);
        inter = nullptr;
        st = dk_volume_check_int64(v, path);
        if (st != DK_OK) dk_volume_free(v);
        return st;
    } catch (...) {
        if (inter != v->data) dk_free(inter);
        dk_volume_free(v);
        return dk_itk::fail_from_exception(path, "cannot read image");
    }
}

extern "C" dk_status dk_itk_image_write(const dk_volume *v, const char *path, int gzip_level) {
    dk_itk::quiet();
    char tmp[4200];
    dk_status st = dk_tmp_path_for(tmp, sizeof tmp, path);
    if (st != DK_OK) return st;
    std::string p(path), tmpdir(tmp);
    size_t slash = p.rfind('/');
    std::string dir = slash == std::string::npos ? std::string() : p.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
    if (mkdir(tmp, 0700) != 0)
        return dk_fail(DK_ERR_IO, "%s: cannot create temporary folder %s: %s", path, tmp,
                       std::strerror(errno));
    void *inter = nullptr;
    try {
        itk::ImageIOBase::Pointer io = io_for(path);
        describe_for_write(io, v);
        io->SetUseCompression(gzip_level > 0);
        io->SetFileName(tmpdir + "/" + base);
        size_t es = dk_dtype_size(v->dtype);
        int64_t npix = v->nx * v->ny * v->nz * v->nt;
        inter = v->nc > 1 ? dk_alloc_aligned((size_t)(npix * v->nc), es) : v->data;
        if (!inter) throw std::bad_alloc();
        if (v->nc > 1) interleave(inter, v->data, npix, v->nc, es);
        io->Write(inter);
        if (inter != v->data) dk_free(inter);
        inter = nullptr;
        st = commit_tree(tmpdir, dir, base);
    } catch (...) {
        if (inter != v->data) dk_free(inter);
        st = dk_itk::fail_from_exception(path, "cannot write image");
    }
    dk_discard_tree(tmpdir.c_str());
    return st;
}
