# Finds V8 as shipped by Debian's libnode-dev (Node 18, V8 10.2): in the system, or in the
# private prefix scripts/setup.sh unpacks it into (libnode-dev conflicts with the Node.js
# package on some machines, so it is not always installed).
# Defines the imported target wasmlet::v8.
set(WASMLET_V8_PREFIX "${PROJECT_SOURCE_DIR}/build/_v8/root" CACHE PATH
    "Where scripts/setup.sh unpacked libnode108 and libnode-dev")

find_path(V8_INCLUDE_DIR v8.h
  PATHS "${WASMLET_V8_PREFIX}/usr/include/node" /usr/include/node
  NO_DEFAULT_PATH)
find_library(V8_LIBRARY NAMES libnode.so.108 node
  PATHS "${WASMLET_V8_PREFIX}/usr/lib/x86_64-linux-gnu" /usr/lib/x86_64-linux-gnu
  NO_DEFAULT_PATH)
if(NOT V8_INCLUDE_DIR OR NOT V8_LIBRARY)
  message(FATAL_ERROR
    "V8 not found (looked in ${WASMLET_V8_PREFIX} and /usr). Run scripts/setup.sh, which "
    "unpacks Debian's libnode108 and libnode-dev, or install libnode-dev.")
endif()
get_filename_component(V8_LIBRARY_DIR "${V8_LIBRARY}" DIRECTORY)
message(STATUS "V8: ${V8_LIBRARY} (headers in ${V8_INCLUDE_DIR})")

add_library(wasmlet_v8 INTERFACE)
add_library(wasmlet::v8 ALIAS wasmlet_v8)
target_include_directories(wasmlet_v8 SYSTEM INTERFACE "${V8_INCLUDE_DIR}")
target_link_libraries(wasmlet_v8 INTERFACE "${V8_LIBRARY}")
# The private prefix is not on the loader's path: record it in the binaries.
# Binaries in the build tree find libnode where setup.sh unpacked it; installed ones through
# their INSTALL_RPATH (cmake/Install.cmake). A build RPATH CMake knows of is one it can replace
# at install time.
list(APPEND CMAKE_BUILD_RPATH "${V8_LIBRARY_DIR}")
