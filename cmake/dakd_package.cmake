# libdakd as an installable library: the shared library beside the static one, the public
# headers, dakd.pc and a CMake package. Included by the top-level CMakeLists.txt after the
# `dakd` (static) target and its dependencies are defined.
#
#   cmake --install build --prefix P   installs
#     P/lib/libdakd.so.0.1.0 (+ libdakd.so.0, libdakd.so)  ITK, OpenBLAS, ... linked privately
#     P/lib/libdakd.a                                       needs dakd.pc's Libs.private
#     P/include/dakd/*.h                                    no dependency's header needed
#     P/lib/pkgconfig/dakd.pc, P/lib/cmake/dakd/            pkg-config and find_package(dakd)
#     P/bin/dakd                                            the command-line tool
#
# The shared library is the static archive linked whole, so every source and dependency a
# module adds to `dakd` reaches it without a second list. What it exports is the set of
# functions declared in lib/include/dakd/*.h (a version script made from them at build time,
# cmake/dakd_exports.cmake): helpers shared inside a module (private headers, dk__*) and
# everything the ITK bridge instantiates stay inside.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The archive's objects go into the shared library, so they are position independent. No
# semantic interposition: calls inside the library may be inlined as in a non-PIC build
# (nothing may replace a dk_ function from outside it).
set_target_properties(dakd PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME dakd_static)
target_compile_options(dakd PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-fno-semantic-interposition>)
target_include_directories(dakd INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

file(GLOB DAKD_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/lib/include/dakd/*.h)
set(DAKD_EXPORTS_MAP ${PROJECT_BINARY_DIR}/generated/dakd.map)
add_custom_command(OUTPUT ${DAKD_EXPORTS_MAP}
  COMMAND ${CMAKE_COMMAND} -DOUT=${DAKD_EXPORTS_MAP}
          -DHEADER_DIR=${PROJECT_SOURCE_DIR}/lib/include/dakd
          -P ${PROJECT_SOURCE_DIR}/cmake/dakd_exports.cmake
  DEPENDS ${DAKD_PUBLIC_HEADERS} ${PROJECT_SOURCE_DIR}/cmake/dakd_exports.cmake
  COMMENT "Export list of libdakd.so from the public headers" VERBATIM)

# Its one source is the export list, so the list is made before the link; the code comes
# from the archive.
add_library(dakd_shared SHARED ${DAKD_EXPORTS_MAP})
set_target_properties(dakd_shared PROPERTIES OUTPUT_NAME dakd EXPORT_NAME dakd
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS ${DAKD_EXPORTS_MAP}
  # keeps the OpenBLAS variant it was linked with (openblas-pthread's own folder)
  INSTALL_RPATH_USE_LINK_PATH ON)
# The ITK bridge is C++: link with the C++ driver so libstdc++ comes along (with clang's
# sanitizers in a fuzz build, clang links, as for the command-line tool).
if(DAKD_WITH_ITK AND NOT DAKD_FUZZ)
  set_target_properties(dakd_shared PROPERTIES LINKER_LANGUAGE CXX)
else()
  set_target_properties(dakd_shared PROPERTIES LINKER_LANGUAGE C)
endif()
target_link_libraries(dakd_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,dakd>")
target_link_options(dakd_shared PRIVATE "-Wl,--version-script=${DAKD_EXPORTS_MAP}")
if(NOT DAKD_FUZZ) # clang's sanitizers leave their runtime's symbols to the executable
  target_link_options(dakd_shared PRIVATE -Wl,--no-undefined)
endif()
target_include_directories(dakd_shared INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/lib/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(dakd_cli PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

# ---- dakd.pc: the shared library needs only -ldakd; a static link adds what libdakd.a
# uses. Dependencies with a pkg-config file go in Requires.private, the others (nifticlib,
# ITK and its GDCM: full paths of the libraries ITK's package names) in Libs.private.
set(DAKD_PC_REQUIRES_PRIVATE "libpng zlib openblas inih libcjson libcrypto fftw3f libprotobuf-c")
string(APPEND DAKD_PC_REQUIRES_PRIVATE " libdeflate")
set(DAKD_PC_LIBS_PRIVATE "-lnifti2 -lznz ${OpenMP_C_FLAGS} -lm")
if(DAKD_WITH_ITK)
  # every library file behind ${ITK_LIBRARIES}, their own dependencies included
  set(_queue ${ITK_LIBRARIES})
  set(_seen)
  set(_files)
  while(_queue)
    list(POP_FRONT _queue _item)
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" _item "${_item}")
    if(_item IN_LIST _seen)
      continue()
    endif()
    list(APPEND _seen "${_item}")
    if(TARGET ${_item})
      get_target_property(_configs ${_item} IMPORTED_CONFIGURATIONS)
      if(_configs)
        list(GET _configs 0 _config)
        get_target_property(_loc ${_item} IMPORTED_LOCATION_${_config})
        if(_loc)
          list(APPEND _files "${_loc}")
        endif()
      endif()
      get_target_property(_deps ${_item} INTERFACE_LINK_LIBRARIES)
      if(_deps)
        list(APPEND _queue ${_deps})
      endif()
    elseif(_item MATCHES "^(/|-)")
      list(APPEND _files "${_item}")
    elseif(_item)
      list(APPEND _files "-l${_item}")
    endif()
  endwhile()
  list(REMOVE_DUPLICATES _files)
  list(JOIN _files " " _itk_libs)
  string(APPEND DAKD_PC_LIBS_PRIVATE " ${_itk_libs} -lstdc++")
endif()
if(DAKD_WITH_MPI)
  list(JOIN MPI_C_LIBRARIES " " _mpi_libs)
  string(APPEND DAKD_PC_LIBS_PRIVATE " ${_mpi_libs}")
endif()
file(RELATIVE_PATH DAKD_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" DAKD_PC_TO_PREFIX "${DAKD_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/dakd.pc.in ${PROJECT_BINARY_DIR}/generated/dakd.pc
               @ONLY)

# ---- the CMake package: dakd::dakd (shared); dakd::dakd_static with COMPONENTS static,
# which finds the static library's dependencies (ITK among them) only when asked.
set(DAKD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/dakd)
set(DAKD_ITK_COMPONENTS ${ITK_MODULES_REQUESTED})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dakdConfig.cmake.in
  ${PROJECT_BINARY_DIR}/generated/dakdConfig.cmake INSTALL_DESTINATION ${DAKD_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/generated/dakdConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)

install(TARGETS dakd_shared EXPORT dakdTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS dakd EXPORT dakdStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS dakd_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${DAKD_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dakd)
install(FILES ${PROJECT_BINARY_DIR}/generated/dakd.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(EXPORT dakdTargets NAMESPACE dakd:: DESTINATION ${DAKD_CMAKE_DIR})
install(EXPORT dakdStaticTargets NAMESPACE dakd:: DESTINATION ${DAKD_CMAKE_DIR})
install(FILES ${PROJECT_BINARY_DIR}/generated/dakdConfig.cmake
              ${PROJECT_BINARY_DIR}/generated/dakdConfigVersion.cmake
        DESTINATION ${DAKD_CMAKE_DIR})
