/*
 * The ITK/GDCM bridge (see itk_bridge.h), the project's only C++ code, in four files:
 * itk_dicom.cxx (DICOM headers, pixels and SEG through GDCM), itk_seg_write.cxx (DICOM SEG
 * written through GDCM), itk_image.cxx (MetaImage and NRRD through ITK's ImageIO classes)
 * and this one, with what they share (itk_bridge_internal.h).
 *
 * Rules kept by all three: no C++ exception leaves them (each entry point catches everything
 * and records a dk_fail message naming the file); ITK's and GDCM's own warnings and error
 * prints are switched off once, so the library stays silent.
 */
#include "itk_bridge_internal.h"

#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include <gdcmTrace.h>
#include <itkMacro.h>
#include <itkObject.h>

namespace {

/* An ITK/GDCM exception text on one line. */
std::string one_line(std::string s) {
    for (char &c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

} // namespace

namespace dk_itk {

void quiet() {
    static std::once_flag once;
    std::call_once(once, [] {
        itk::Object::GlobalWarningDisplayOff();
        gdcm::Trace::SetWarning(false);
        gdcm::Trace::SetDebug(false);
        gdcm::Trace::SetError(false);
    });
}

dk_status fail_from_exception(const char *path, const char *doing) {
    try {
        throw;
    } catch (const itk::ExceptionObject &e) {
        return dk_fail(DK_ERR_FORMAT, "%s: %s: %s", path, doing,
                       one_line(e.GetDescription()).c_str());
    } catch (const std::bad_alloc &) {
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory while %s", path, doing);
    } catch (const std::exception &e) {
        return dk_fail(DK_ERR_FORMAT, "%s: %s: %s", path, doing, one_line(e.what()).c_str());
    } catch (...) {
        return dk_fail(DK_ERR_INTERNAL, "%s: %s: unknown C++ exception", path, doing);
    }
}

} // namespace dk_itk

/* ====================================================================== C entry points */

extern "C" dk_status dk_itk_require(const char *path) {
    (void)path;
    return DK_OK;
}
