/*
 * itk_bridge_internal.h — what the C++ files of the ITK bridge share (C++ only; C code uses
 * itk_bridge.h): the switch that silences ITK and GDCM, and the rule that turns the C++
 * exception in flight into a dk_status with its message. itk_bridge.cxx defines them;
 * itk_dicom.cxx reads DICOM through GDCM, itk_seg_write.cxx writes DICOM SEG through GDCM,
 * itk_image.cxx MetaImage and NRRD through ITK.
 */
#ifndef DAKD_ITK_BRIDGE_INTERNAL_H
#define DAKD_ITK_BRIDGE_INTERNAL_H

#ifndef __cplusplus
#error "itk_bridge_internal.h is C++ only; C code includes itk_bridge.h"
#endif

#include "itk_bridge.h"

namespace dk_itk {

/* Switch off ITK's and GDCM's console output (once per process; every entry point calls it
 * first, so the library stays silent). */
void quiet();

/* Called inside a catch block: record the exception in flight with dk_fail as
 * "<path>: <doing>: <exception text on one line>" and return its status: DK_ERR_NOMEM for
 * std::bad_alloc, DK_ERR_INTERNAL for an exception of unknown type, else DK_ERR_FORMAT. */
dk_status fail_from_exception(const char *path, const char *doing);

} // namespace dk_itk

#endif
