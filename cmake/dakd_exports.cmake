# cmake -DOUT=dakd.map -DHEADER_DIR=lib/include/dakd -P dakd_exports.cmake
# Writes the GNU ld version script of libdakd.so: every function declared in the public
# headers (a dk_* name followed by "(" outside comments) is global, everything else local.
# static inline functions are left out (they have no symbol). A name declared but not
# defined would be ignored by the linker; the install test checks that each name is exported.
file(GLOB headers "${HEADER_DIR}/*.h")
set(names)
set(inline_names)
foreach(h IN LISTS headers)
  file(READ "${h}" text)
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " text "${text}")
  string(REGEX REPLACE "//[^\n]*" " " text "${text}")
  string(REGEX MATCHALL "dk_[A-Za-z0-9_]*[ \t\n]*\\(" found "${text}")
  foreach(f IN LISTS found)
    string(REGEX REPLACE "[ \t\n]*\\($" "" f "${f}")
    list(APPEND names "${f}")
  endforeach()
  # a static inline function is compiled into its caller, the library has no symbol of it
  string(REGEX MATCHALL "static[ \t\n]+inline[^;{(]*dk_[A-Za-z0-9_]*[ \t\n]*\\(" inl "${text}")
  foreach(f IN LISTS inl)
    string(REGEX REPLACE "^.*(dk_[A-Za-z0-9_]*)[ \t\n]*\\($" "\\1" f "${f}")
    list(APPEND inline_names "${f}")
  endforeach()
endforeach()
list(REMOVE_DUPLICATES names)
if(inline_names)
  list(REMOVE_ITEM names ${inline_names})
endif()
list(SORT names)
list(LENGTH names n)
if(n EQUAL 0)
  message(FATAL_ERROR "dakd_exports: no function found in ${HEADER_DIR}/*.h")
endif()
list(JOIN names ";\n    " body)
file(WRITE "${OUT}.tmp" "/* libdakd.so exports: the ${n} functions of lib/include/dakd/*.h */\n"
     "{\n  global:\n    ${body};\n  local:\n    *;\n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
