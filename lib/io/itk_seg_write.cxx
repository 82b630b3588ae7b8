/*
 * A DICOM SEG written with GDCM (dk_itk_dcm_write_seg, itk_bridge.h): the dataset is built
 * from GDCM data elements and gdcm::Attribute values, nested sequences from gdcm::Item, the
 * file (meta header, explicit VR little endian encoding) by gdcm::Writer. What goes in it
 * — segments, frames, their bits — is decided by dicom_seg_write.c.
 *
 * Modules (PS3.3 A.51, Segmentation IOD): Patient, General Study, General Series +
 * Segmentation Series (Modality SEG), Frame of Reference, General and Enhanced General
 * Equipment, General Image, Image Pixel + Segmentation Image (BINARY, 1 bit), Multi-frame
 * Functional Groups (shared: PixelMeasures, PlaneOrientation; per frame: DerivationImage,
 * FrameContent, PlanePosition, SegmentIdentification), Multi-frame Dimension (segment
 * number, then position), Common Instance Reference, SOP Common.
 */
#include "itk_bridge_internal.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include <gdcmAttribute.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmUIDGenerator.h>
#include <gdcmWriter.h>

namespace {

const char seg_class[] = "1.2.840.10008.5.1.4.1.1.66.4";

/* A string element of the given VR, padded to even length (UI with NUL, text with space). */
void put(gdcm::DataSet &ds, uint16_t g, uint16_t e, gdcm::VR vr, std::string v) {
    if (v.size() % 2) v += vr == gdcm::VR::UI ? '\0' : ' ';
    gdcm::DataElement de(gdcm::Tag(g, e));
    de.SetVR(vr);
    de.SetByteValue(v.data(), (uint32_t)v.size());
    ds.Replace(de);
}

/* Decimal strings (DS) of n numbers, each within the 16 bytes DS allows. */
std::string ds_values(const double *x, int n) {
    std::string s;
    for (int i = 0; i < n; i++) {
        char b[32];
        std::snprintf(b, sizeof b, "%.10g", x[i]);
        s += (i ? "\\" : "") + std::string(b);
    }
    return s;
}

/* Sequence (g, e) holding `items`, each of undefined length. */
void put_seq(gdcm::DataSet &ds, uint16_t g, uint16_t e, const std::vector<gdcm::DataSet> &items) {
    gdcm::SmartPointer<gdcm::SequenceOfItems> sq = new gdcm::SequenceOfItems;
    sq->SetLengthToUndefined();
    for (const gdcm::DataSet &d : items) {
        gdcm::Item it;
        it.SetVLToUndefined();
        it.SetNestedDataSet(d);
        sq->AddItem(it);
    }
    gdcm::DataElement de(gdcm::Tag(g, e));
    de.SetVR(gdcm::VR::SQ);
    de.SetValue(*sq);
    de.SetVLToUndefined();
    ds.Replace(de);
}

void put_seq1(gdcm::DataSet &ds, uint16_t g, uint16_t e, const gdcm::DataSet &item) {
    put_seq(ds, g, e, std::vector<gdcm::DataSet>(1, item));
}

/* A Code Sequence Macro item. */
gdcm::DataSet code(const char *value, const char *scheme, const char *meaning) {
    gdcm::DataSet d;
    put(d, 0x0008, 0x0100, gdcm::VR::SH, value);
    put(d, 0x0008, 0x0102, gdcm::VR::SH, scheme);
    put(d, 0x0008, 0x0104, gdcm::VR::LO, meaning);
    return d;
}

/* The binary value of (G, E), typed by GDCM's dictionary (an element of VM 1). */
template <uint16_t G, uint16_t E, class T> void put_num(gdcm::DataSet &ds, T v) {
    gdcm::Attribute<G, E> a;
    a.SetValue(v);
    ds.Replace(a.GetAsDataElement());
}

/* n binary values of (G, E), an element of VM 1-n. */
template <uint16_t G, uint16_t E, class T> void put_nums(gdcm::DataSet &ds, const T *v, int n) {
    gdcm::Attribute<G, E> a;
    a.SetValues(v, (unsigned)n, true);
    ds.Replace(a.GetAsDataElement());
}

/* Patient, study and frame-of-reference attributes copied from the source; type 1 ones
 * missing there (study, frame of reference) get new UIDs, type 2 ones an empty value. */
void copy_source(gdcm::DataSet &ds, const gdcm::DataSet &src, gdcm::UIDGenerator &uid) {
    static const struct {
        uint16_t g, e;
        gdcm::VR::VRType vr;
        int type; /* 1, 2 or 3 (PS3.3) */
    } keep[] = {{0x0008, 0x0005, gdcm::VR::CS, 3}, {0x0010, 0x0010, gdcm::VR::PN, 2},
                {0x0010, 0x0020, gdcm::VR::LO, 2}, {0x0010, 0x0030, gdcm::VR::DA, 2},
                {0x0010, 0x0040, gdcm::VR::CS, 2}, {0x0010, 0x1010, gdcm::VR::AS, 3},
                {0x0020, 0x000D, gdcm::VR::UI, 1}, {0x0008, 0x0020, gdcm::VR::DA, 2},
                {0x0008, 0x0030, gdcm::VR::TM, 2}, {0x0008, 0x0090, gdcm::VR::PN, 2},
                {0x0020, 0x0010, gdcm::VR::SH, 2}, {0x0008, 0x0050, gdcm::VR::SH, 2},
                {0x0008, 0x1030, gdcm::VR::LO, 3}, {0x0020, 0x0052, gdcm::VR::UI, 1},
                {0x0020, 0x1040, gdcm::VR::LO, 2}, {0x0018, 0x0015, gdcm::VR::CS, 3}};
    for (const auto &k : keep) {
        const gdcm::Tag t(k.g, k.e);
        const gdcm::ByteValue *bv =
            src.FindDataElement(t) ? src.GetDataElement(t).GetByteValue() : nullptr;
        std::string v = bv ? std::string(bv->GetPointer(), bv->GetLength()) : std::string();
        while (!v.empty() && (v.back() == ' ' || v.back() == '\0'))
            v.pop_back();
        if (v.empty() && k.type == 1) v = uid.Generate();
        if (!v.empty() || k.type == 2) put(ds, k.g, k.e, k.vr, v);
    }
}

/* Series, equipment, image, pixel description and the segment list. */
void put_header(gdcm::DataSet &ds, const dk_seg_spec *s, gdcm::UIDGenerator &uid) {
    char date[16], tod[16];
    std::time_t now = std::time(nullptr);
    std::tm tmv;
    localtime_r(&now, &tmv);
    std::strftime(date, sizeof date, "%Y%m%d", &tmv);
    std::strftime(tod, sizeof tod, "%H%M%S", &tmv);
    put(ds, 0x0008, 0x0016, gdcm::VR::UI, seg_class);
    put(ds, 0x0008, 0x0018, gdcm::VR::UI, uid.Generate());
    put(ds, 0x0020, 0x000E, gdcm::VR::UI, uid.Generate());
    put(ds, 0x0008, 0x0060, gdcm::VR::CS, "SEG");
    put(ds, 0x0008, 0x103E, gdcm::VR::LO, "dakd segmentation");
    put(ds, 0x0020, 0x0011, gdcm::VR::IS, "300");
    put(ds, 0x0020, 0x0013, gdcm::VR::IS, "1");
    for (uint16_t e : {0x0012, 0x0021, 0x0023})
        put(ds, 0x0008, e, gdcm::VR::DA, date);
    for (uint16_t e : {0x0013, 0x0031, 0x0033})
        put(ds, 0x0008, e, gdcm::VR::TM, tod);
    put(ds, 0x0008, 0x0070, gdcm::VR::LO, "dakd");
    put(ds, 0x0008, 0x1090, gdcm::VR::LO, "dakd");
    put(ds, 0x0018, 0x1000, gdcm::VR::LO, "1");
    put(ds, 0x0018, 0x1020, gdcm::VR::LO, dk_version_string());
    put(ds, 0x0008, 0x0008, gdcm::VR::CS, "DERIVED\\PRIMARY");
    put(ds, 0x0070, 0x0080, gdcm::VR::CS, "DAKD");
    put(ds, 0x0070, 0x0081, gdcm::VR::LO, "automatic segmentation by dakd");
    put(ds, 0x0070, 0x0084, gdcm::VR::PN, "");
    put(ds, 0x0028, 0x0004, gdcm::VR::CS, "MONOCHROME2");
    put(ds, 0x0028, 0x2110, gdcm::VR::CS, "00");
    put(ds, 0x0062, 0x0001, gdcm::VR::CS, "BINARY");
    put_num<0x0028, 0x0002>(ds, (uint16_t)1);
    put_num<0x0028, 0x0010>(ds, (uint16_t)s->rows);
    put_num<0x0028, 0x0011>(ds, (uint16_t)s->cols);
    put_num<0x0028, 0x0100>(ds, (uint16_t)1);
    put_num<0x0028, 0x0101>(ds, (uint16_t)1);
    put_num<0x0028, 0x0102>(ds, (uint16_t)0);
    put_num<0x0028, 0x0103>(ds, (uint16_t)0);
    put(ds, 0x0028, 0x0008, gdcm::VR::IS, std::to_string(s->nframes));
    std::vector<gdcm::DataSet> segs;
    for (int k = 0; k < s->nsegments; k++) {
        const dk_seg_segment &g = s->segments[k];
        gdcm::DataSet d;
        put_num<0x0062, 0x0004>(d, (uint16_t)g.number);
        put(d, 0x0062, 0x0005, gdcm::VR::LO, g.label);
        put(d, 0x0062, 0x0008, gdcm::VR::CS, "AUTOMATIC");
        put(d, 0x0062, 0x0009, gdcm::VR::LO, "dakd");
        put_seq1(d, 0x0062, 0x0003, code("85756007", "SCT", "Tissue"));
        put_seq1(d, 0x0062, 0x000F, code("85756007", "SCT", "Tissue"));
        gdcm::Attribute<0x0062, 0x000d> lab;
        lab.SetValues(g.lab, 3);
        d.Replace(lab.GetAsDataElement());
        segs.push_back(d);
    }
    put_seq(ds, 0x0062, 0x0002, segs);
}

/* Shared groups, the dimensions, the source series and one functional group per frame. */
void put_frames(gdcm::DataSet &ds, const dk_seg_spec *s, gdcm::UIDGenerator &uid) {
    gdcm::DataSet shared, pm, po;
    put(pm, 0x0028, 0x0030, gdcm::VR::DS, ds_values(s->spacing, 2));
    put(pm, 0x0018, 0x0050, gdcm::VR::DS, ds_values(&s->thickness, 1));
    put(pm, 0x0018, 0x0088, gdcm::VR::DS, ds_values(&s->thickness, 1));
    put(po, 0x0020, 0x0037, gdcm::VR::DS, ds_values(s->iop, 6));
    put_seq1(shared, 0x0028, 0x9110, pm);
    put_seq1(shared, 0x0020, 0x9116, po);
    put_seq1(ds, 0x5200, 0x9229, shared);
    std::string dim_uid = uid.Generate();
    gdcm::DataSet org, dseg, dpos;
    put(org, 0x0020, 0x9164, gdcm::VR::UI, dim_uid);
    put_seq1(ds, 0x0020, 0x9221, org);
    const uint16_t ptr[2][4] = {{0x0062, 0x000B, 0x0062, 0x000A}, {0x0020, 0x0032, 0x0020, 0x9113}};
    const char *names[2] = {"ReferencedSegmentNumber", "ImagePositionPatient"};
    std::vector<gdcm::DataSet> dims;
    for (int k = 0; k < 2; k++) {
        gdcm::DataSet d;
        put(d, 0x0020, 0x9164, gdcm::VR::UI, dim_uid);
        put_num<0x0020, 0x9165>(d, gdcm::Tag(ptr[k][0], ptr[k][1]));
        put_num<0x0020, 0x9167>(d, gdcm::Tag(ptr[k][2], ptr[k][3]));
        put(d, 0x0020, 0x9421, gdcm::VR::LO, names[k]);
        dims.push_back(d);
    }
    put_seq(ds, 0x0020, 0x9222, dims);
    std::vector<gdcm::DataSet> inst;
    for (int z = 0; z < s->nslices; z++) {
        if (z && !std::strcmp(s->slices[z].sop_uid, s->slices[z - 1].sop_uid)) continue;
        gdcm::DataSet d;
        put(d, 0x0008, 0x1150, gdcm::VR::UI, s->slices[z].sop_class);
        put(d, 0x0008, 0x1155, gdcm::VR::UI, s->slices[z].sop_uid);
        inst.push_back(d);
    }
    gdcm::DataSet ser;
    put(ser, 0x0020, 0x000E, gdcm::VR::UI, s->series_uid);
    put_seq(ser, 0x0008, 0x114A, inst);
    put_seq1(ds, 0x0008, 0x1115, ser);
    std::vector<gdcm::DataSet> per;
    for (int k = 0; k < s->nframes; k++) {
        const dk_seg_source &src = s->slices[s->frame_slice[k]];
        gdcm::DataSet f, der, img, content, pos, sid;
        put(img, 0x0008, 0x1150, gdcm::VR::UI, src.sop_class);
        put(img, 0x0008, 0x1155, gdcm::VR::UI, src.sop_uid);
        if (src.frame_number > 0)
            put(img, 0x0008, 0x1160, gdcm::VR::IS, std::to_string(src.frame_number));
        put_seq1(img, 0x0040, 0xA170,
                 code("121322", "DCM", "Source image for image processing operation"));
        put_seq1(der, 0x0008, 0x2112, img);
        put_seq1(der, 0x0008, 0x9215, code("113076", "DCM", "Segmentation"));
        put_seq1(f, 0x0008, 0x9124, der);
        const uint32_t idx[2] = {(uint32_t)s->frame_segment[k], (uint32_t)s->frame_slice[k] + 1};
        put_nums<0x0020, 0x9157>(content, idx, 2);
        put_seq1(f, 0x0020, 0x9111, content);
        put(pos, 0x0020, 0x0032, gdcm::VR::DS, ds_values(src.ipp, 3));
        put_seq1(f, 0x0020, 0x9113, pos);
        const uint16_t num = (uint16_t)s->frame_segment[k];
        put_nums<0x0062, 0x000b>(sid, &num, 1);
        put_seq1(f, 0x0062, 0x000A, sid);
        per.push_back(f);
    }
    put_seq(ds, 0x5200, 0x9230, per);
}

} // namespace

extern "C" dk_status dk_itk_dcm_write_seg(const dk_seg_spec *s) {
    dk_itk::quiet();
    try {
        gdcm::Reader r;
        r.SetFileName(s->source_file);
        if (!r.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010), std::set<gdcm::Tag>()))
            return dk_fail(DK_ERR_FORMAT, "%s: cannot read the DICOM header", s->source_file);
        gdcm::UIDGenerator uid;
        gdcm::Writer w;
        gdcm::DataSet &ds = w.GetFile().GetDataSet();
        copy_source(ds, r.GetFile().GetDataSet(), uid);
        put_header(ds, s, uid);
        put_frames(ds, s, uid);
        std::vector<char> px(s->bits, s->bits + s->nbytes);
        if (px.size() % 2) px.push_back(0);
        gdcm::DataElement pd(gdcm::Tag(0x7fe0, 0x0010));
        pd.SetVR(gdcm::VR::OB);
        pd.SetByteValue(px.data(), (uint32_t)px.size());
        ds.Replace(pd);
        w.GetFile().GetHeader().SetDataSetTransferSyntax(
            gdcm::TransferSyntax::ExplicitVRLittleEndian);
        w.SetFileName(s->path);
        if (!w.Write()) return dk_fail(DK_ERR_IO, "%s: cannot write the DICOM SEG", s->path);
        return DK_OK;
    } catch (...) {
        return dk_itk::fail_from_exception(s->path, "cannot write the DICOM SEG");
    }
}
