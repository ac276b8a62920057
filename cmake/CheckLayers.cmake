# The layers of src/, lowest first, and what each may include. Run as a script on every build
# (the check_layers target): an include that goes the wrong way fails the build with its file
# and line, before anything is compiled.
#
#   common       status, text, addresses, the HTTP client
#   wasm         reading and preparing modules             -> common
#   image        OCI images                                -> common, wasm
#   engine       the Engine interface and V8               -> common, wasm
#   abi          Proxy-Wasm host side                      -> common, wasm, engine
#   components   state stores                              -> common
#   server       the function server                       -> all of the above but image
#   shim         the containerd shim                       -> common, wasm, image
#   cli          the wasmlet command                       -> everything
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "run with -DSOURCE_DIR=<repository>/src")
endif()
set(allowed_common common)
set(allowed_wasm common wasm)
set(allowed_image common wasm image)
set(allowed_engine common wasm engine)
set(allowed_abi common wasm engine abi)
set(allowed_components common components)
set(allowed_server common wasm engine abi components server)
set(allowed_shim common wasm image shim)
set(allowed_cli common wasm image engine abi components server cli)
set(layers common wasm image engine abi components server shim cli)

set(violations "")
foreach(layer IN LISTS layers)
  file(GLOB_RECURSE files "${SOURCE_DIR}/${layer}/*.h" "${SOURCE_DIR}/${layer}/*.cc")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "^#include \"[a-z_]+/")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include \"([a-z_]+)/.*" "\\1" target "${line}")
      if(NOT target IN_LIST allowed_${layer} AND target IN_LIST layers)
        file(RELATIVE_PATH where "${SOURCE_DIR}" "${file}")
        string(APPEND violations "\n  src/${where}: ${line} (${layer} may include: ${allowed_${layer}})")
      endif()
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "includes against the layering of cmake/CheckLayers.cmake:${violations}")
endif()
