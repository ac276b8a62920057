# The layers of src/, lowest first, and what each may include. Run as a script on every build
# (the check_layers target): an include that goes the wrong way fails the build with its file
# and line, before anything is compiled.
#
#   common       status, text, addresses, the HTTP client
#   wasm         reading and preparing modules             -> common
#   image        OCI images                                -> common, wasm
#   engine       the Engine interface and V8               -> common, wasm
#   abi          Proxy-Wasm host side                      -> common, wasm, engine
#   components   state stores and the other components     -> common
#   server       the function server, in rooms (below)     -> all of the above but image
#   shim         the containerd shim                       -> common, wasm, image
#   cli          the wasmlet command                       -> everything
#
# src/server/ is checked room by room (its second path segment), lowest first:
#
#   server/config      the config file's model and parsing
#   server/runtime     event loops, metrics, the log ring
#   server/ingress     the HTTP listener                        -> runtime
#   server/outbound    upstreams, gRPC client, outbound calls   -> config, runtime
#   server/functions   pools, the registry, loading modules     -> config, runtime
#   server/services    host services, invoker, subscriptions    -> config, runtime, functions
#   server/proxy       proxy listeners                          -> config, runtime, ingress,
#                                                                  outbound, functions
#   server/admin       admin API and dashboard                  -> config, runtime, ingress,
#                                                                  functions
#   server/api         the runtime API for applications         -> config, runtime, ingress,
#                                                                  functions, services
#   server (top)       server.h/.cc: the wiring                 -> every room
#
# Each may also include its own files and the layers below server. An include is any
# `#include "x/..."` line, with or without spaces around the `#` and `include`.
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

set(rooms config runtime ingress outbound functions services proxy admin api)
set(allowed_server/config config)
set(allowed_server/runtime runtime)
set(allowed_server/ingress runtime ingress)
set(allowed_server/outbound config runtime outbound)
set(allowed_server/functions config runtime functions)
set(allowed_server/services config runtime functions services)
set(allowed_server/proxy config runtime ingress outbound functions proxy)
set(allowed_server/admin config runtime ingress functions admin)
set(allowed_server/api config runtime ingress functions services api)
set(allowed_server/top ${rooms} top)

set(include_line "^[ \t]*#[ \t]*include[ \t]*\"[a-z_]+/")
set(violations "")
macro(violation file line rule)
  file(RELATIVE_PATH where "${SOURCE_DIR}" "${file}")
  string(REPLACE ";" ", " readable "${rule}")
  string(APPEND violations "\n  src/${where}: ${line} (${readable})")
endmacro()

foreach(layer IN LISTS layers)
  file(GLOB_RECURSE files "${SOURCE_DIR}/${layer}/*.h" "${SOURCE_DIR}/${layer}/*.cc")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "${include_line}")
    # The room of a file under server/: its folder there, or "top" for server/*.{h,cc}.
    set(room "")
    if(layer STREQUAL "server")
      file(RELATIVE_PATH inside "${SOURCE_DIR}/server" "${file}")
      if(inside MATCHES "^([a-z_]+)/")
        set(room "${CMAKE_MATCH_1}")
      else()
        set(room top)
      endif()
      if(NOT DEFINED allowed_server/${room})
        violation("${file}" "in no room" "server/${room}/ is not a room of cmake/CheckLayers.cmake: add it there")
      endif()
    endif()
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([a-z_]+)/.*" "\\1" target "${line}")
      if(NOT target IN_LIST allowed_${layer} AND target IN_LIST layers)
        violation("${file}" "${line}" "${layer} may include: ${allowed_${layer}}")
      elseif(room AND target STREQUAL "server")
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"server/([a-z_]+)[/.].*" "\\1" to "${line}")
        if(NOT to IN_LIST rooms)
          set(to top)
        endif()
        if(NOT to IN_LIST allowed_server/${room})
          violation("${file}" "${line}" "server/${room} may include: ${allowed_server/${room}}")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "includes against the layering of cmake/CheckLayers.cmake:${violations}")
endif()
