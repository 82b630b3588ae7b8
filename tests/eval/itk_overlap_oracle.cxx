// ITK as a peer for dakd's metrics (built only with DAKD_WITH_ITK; not part of the library).
//
//   itk_overlap_oracle overlap PRED REF
//       itk::LabelOverlapMeasuresImageFilter (source = PRED, target = REF); one line per
//       label found in either image: "label source target intersection dice volsim_itk
//       source_mm3 target_mm3" (%.17g; ITK's volume similarity is 2(S − T)/(S + T)).
//   itk_overlap_oracle bench PRED REF
//       the overlap filter, then per label (> 0) the boundary distances of dakd's
//       convention through itk::SignedMaurerDistanceMapImageFilter on the whole grid:
//       ∂S = voxels of S with a face neighbour outside S (image edge = outside), distance of
//       each ∂P voxel to ∂R (max(0, Maurer), in mm) and back, pooled; prints per label
//       "label dice hd hd95 assd" and "seconds T" for everything after reading.
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkLabelOverlapMeasuresImageFilter.h>
#include <itkNiftiImageIO.h>
#include <itkSignedMaurerDistanceMapImageFilter.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

using LabelImage = itk::Image<unsigned short, 3>;
using MaskImage = itk::Image<unsigned char, 3>;
using DistImage = itk::Image<float, 3>;

static LabelImage::Pointer read(const char *path) {
    auto reader = itk::ImageFileReader<LabelImage>::New();
    reader->SetImageIO(itk::NiftiImageIO::New());
    reader->SetFileName(path);
    reader->Update();
    return reader->GetOutput();
}

using Overlap = itk::LabelOverlapMeasuresImageFilter<LabelImage>;

static Overlap::Pointer overlap(LabelImage::Pointer pred, LabelImage::Pointer ref) {
    auto f = Overlap::New();
    f->SetSourceImage(pred);
    f->SetTargetImage(ref);
    f->Update();
    return f;
}

static std::vector<unsigned short> sorted_labels(Overlap *f) {
    std::vector<unsigned short> labels;
    for (const auto &kv : f->GetLabelSetMeasures()) labels.push_back(kv.first);
    std::sort(labels.begin(), labels.end());
    return labels;
}

// ∂S of {img == label} as a 0/1 image with img's geometry.
static MaskImage::Pointer boundary(LabelImage::Pointer img, unsigned short label) {
    auto size = img->GetLargestPossibleRegion().GetSize();
    long nx = (long)size[0], ny = (long)size[1], nz = (long)size[2];
    auto out = MaskImage::New();
    out->SetRegions(img->GetLargestPossibleRegion());
    out->CopyInformation(img);
    out->Allocate();
    const unsigned short *s = img->GetBufferPointer();
    unsigned char *b = out->GetBufferPointer();
    bool is2d = nz == 1;
    for (long z = 0; z < nz; z++)
        for (long y = 0; y < ny; y++)
            for (long x = 0; x < nx; x++) {
                long i = (z * ny + y) * nx + x;
                if (s[i] != label) {
                    b[i] = 0;
                    continue;
                }
                bool in = x > 0 && s[i - 1] == label && x + 1 < nx && s[i + 1] == label &&
                          y > 0 && s[i - nx] == label && y + 1 < ny && s[i + nx] == label;
                if (!is2d)
                    in = in && z > 0 && s[i - nx * ny] == label && z + 1 < nz &&
                         s[i + nx * ny] == label;
                b[i] = in ? 0 : 1;
            }
    return out;
}

static DistImage::Pointer maurer(MaskImage::Pointer feat) {
    auto f = itk::SignedMaurerDistanceMapImageFilter<MaskImage, DistImage>::New();
    f->SetInput(feat);
    f->SetBackgroundValue(0);
    f->SquaredDistanceOff();
    f->UseImageSpacingOn();
    f->InsideIsPositiveOff();
    f->Update();
    return f->GetOutput();
}

// d(a, ∂B) for a in ∂A: Maurer is ≤ 0 on ∂B itself, the distance to it elsewhere.
static void sample(std::vector<double> &pooled, MaskImage::Pointer at, DistImage::Pointer d) {
    const unsigned char *a = at->GetBufferPointer();
    const float *v = d->GetBufferPointer();
    size_t n = at->GetLargestPossibleRegion().GetNumberOfPixels();
    for (size_t i = 0; i < n; i++)
        if (a[i]) pooled.push_back(std::max(0.0, (double)v[i]));
}

static double percentile_linear(std::vector<double> &v, double p) {
    std::sort(v.begin(), v.end());
    double vi = (double)(v.size() - 1) * (p / 100.0);
    size_t k = (size_t)std::floor(vi);
    if (k + 1 >= v.size()) return v.back();
    double g = vi - (double)k, diff = v[k + 1] - v[k];
    return g >= 0.5 ? v[k + 1] - diff * (1.0 - g) : v[k] + diff * g;
}

static int run_overlap(LabelImage::Pointer pred, LabelImage::Pointer ref) {
    auto f = overlap(pred, ref);
    auto sp = ref->GetSpacing();
    double vox = sp[0] * sp[1] * sp[2];
    const Overlap::MapType all = f->GetLabelSetMeasures(); /* returned by value */
    for (unsigned short l : sorted_labels(f)) {
        const auto &m = all.at(l);
        std::printf("%u %lu %lu %lu %.17g %.17g %.17g %.17g\n", (unsigned)l, m.m_Source,
                    m.m_Target, m.m_Intersection, f->GetDiceCoefficient(l),
                    f->GetVolumeSimilarity(l), (double)m.m_Source * vox,
                    (double)m.m_Target * vox);
    }
    return 0;
}

static int run_bench(LabelImage::Pointer pred, LabelImage::Pointer ref) {
    auto t0 = std::chrono::steady_clock::now();
    auto f = overlap(pred, ref);
    for (unsigned short l : sorted_labels(f)) {
        if (l == 0) continue;
        auto bp = boundary(pred, l), br = boundary(ref, l);
        std::vector<double> pooled;
        sample(pooled, bp, maurer(br));
        sample(pooled, br, maurer(bp));
        if (pooled.empty()) continue;
        double sum = 0, mx = 0;
        for (double d : pooled) sum += d, mx = std::max(mx, d);
        double assd = sum / (double)pooled.size(), hd95 = percentile_linear(pooled, 95);
        std::printf("%u %.17g %.17g %.17g %.17g\n", (unsigned)l, f->GetDiceCoefficient(l), mx,
                    hd95, assd);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("seconds %.6f\n", s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4 || (std::strcmp(argv[1], "overlap") && std::strcmp(argv[1], "bench"))) {
        std::fprintf(stderr, "usage: %s overlap|bench PRED REF\n", argv[0]);
        return 1;
    }
    try {
        auto pred = read(argv[2]), ref = read(argv[3]);
        return std::strcmp(argv[1], "overlap") == 0 ? run_overlap(pred, ref)
                                                     : run_bench(pred, ref);
    } catch (const itk::ExceptionObject &e) {
        std::fprintf(stderr, "itk_overlap_oracle: %s\n", e.GetDescription());
        return 2;
    }
}
