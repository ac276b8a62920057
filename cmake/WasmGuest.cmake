# Builds WebAssembly guest modules from C/C++ sources in this repository with clang-19
# (--target=wasm32-wasi, Debian's wasi-libc).
#
#   wasmlet_add_guest(NAME SOURCES a.c [b.cc ...]
#                     [SDK]                          # C++ with the guest SDK (sdk/), as a reactor
#                     [MODE command|reactor|bare]   # bare: no libc, no entry point
#                     [EXPORTS f g ...]              # extra exported symbols
#                     [FLAGS ...])                   # extra compiler/linker flags
#
# Produces ${CMAKE_CURRENT_BINARY_DIR}/NAME.wasm and a target guest_NAME built by default; the
# target wasmlet_guests builds them all.
#
# A guest is plain WebAssembly, the same in every build tree whatever its sanitizers. With
# -DWASMLET_GUESTS_FROM=<another build tree> (scripts/sanitize.sh passes build/ after building
# its guests there) a tree copies each module from the same place in that tree instead of
# compiling it again: about 2 minutes of CI's two sanitizer builds.
set(WASMLET_GUESTS_FROM "" CACHE PATH "A build tree whose guest modules this tree copies instead of compiling")
if(NOT TARGET wasmlet_guests)
  add_custom_target(wasmlet_guests)
endif()
find_program(WASMLET_GUEST_CC NAMES clang-19 DOC "clang that targets wasm32-wasi")
find_program(WASMLET_GUEST_CXX NAMES clang++-19 DOC "clang++ that targets wasm32-wasi")
if(NOT WASMLET_GUEST_CC OR NOT WASMLET_GUEST_CXX)
  message(FATAL_ERROR "clang-19 not found: run scripts/setup.sh (it installs clang-19, lld-19, "
                      "wasi-libc and libclang-rt-19-dev-wasm32)")
endif()

function(wasmlet_add_guest name)
  cmake_parse_arguments(G "SDK" "MODE" "SOURCES;EXPORTS;FLAGS" ${ARGN})
  if(NOT G_MODE)
    set(G_MODE reactor)
  endif()
  set(flags --target=wasm32-wasi -O2 -Wall -Wextra -Wno-unused-parameter -Werror -I${PROJECT_SOURCE_DIR}/sdk/include)
  if(G_MODE STREQUAL "bare")
    list(APPEND flags -nostdlib -Wl,--no-entry)
  elseif(G_MODE STREQUAL "reactor")
    list(APPEND flags -mexec-model=reactor)
  endif()
  foreach(sym IN LISTS G_EXPORTS)
    list(APPEND flags "-Wl,--export=${sym}")
  endforeach()
  set(compiler ${WASMLET_GUEST_CC})
  set(sources)
  foreach(src IN LISTS G_SOURCES)
    list(APPEND sources ${CMAKE_CURRENT_SOURCE_DIR}/${src})
  endforeach()
  if(G_SDK)
    set(compiler ${WASMLET_GUEST_CXX})
    list(APPEND flags -std=c++20 -fno-exceptions)
    list(APPEND sources ${PROJECT_SOURCE_DIR}/sdk/src/sdk.cc)
    file(GLOB sdk_headers ${PROJECT_SOURCE_DIR}/sdk/include/wasmlet/*.h)
  endif()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}.wasm)
  if(WASMLET_GUESTS_FROM)
    file(RELATIVE_PATH here ${PROJECT_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR})
    set(built ${WASMLET_GUESTS_FROM}/${here}/${name}.wasm)
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E copy ${built} ${out}
      DEPENDS ${built} ${sources} ${sdk_headers}
      COMMENT "Copying guest module ${name}.wasm from ${WASMLET_GUESTS_FROM}"
      VERBATIM)
  else()
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${compiler} ${flags} ${G_FLAGS} -o ${out} ${sources}
      DEPENDS ${sources} ${sdk_headers}
      COMMENT "Building guest module ${name}.wasm"
      VERBATIM)
  endif()
  add_custom_target(guest_${name} ALL DEPENDS ${out})
  add_dependencies(wasmlet_guests guest_${name})
endfunction()
