# CMake toolchain file for wasmlet guest modules: C and C++ to wasm32-wasi with Debian's
# clang-19, wasi-libc and libc++ (packages clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
# libc++-19-dev-wasm32 libc++abi-19-dev-wasm32).
#
#   cmake -S my-function -B build -DCMAKE_TOOLCHAIN_FILE=<wasmlet>/sdk/cmake/wasm32-wasi.cmake \
#         -DCMAKE_BUILD_TYPE=Release
#   add_executable(my_function my_function.cc ${WASMLET_SDK_SOURCES})   # gives my_function.wasm
#
# Release and MinSizeRel builds strip the module (debug info, the name section): what a
# deployment does not need.
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER clang-19)
set(CMAKE_CXX_COMPILER clang++-19)
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_CXX_COMPILER_TARGET wasm32-wasi)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
# Platform/WASI.cmake: the .wasm suffix.
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
set(CMAKE_CXX_FLAGS_INIT "-fno-exceptions")
# Plugins are reactors: _initialize runs static constructors (where contexts register). It is
# a link option; clang-19 refuses it on a compile step.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-mexec-model=reactor")
set(CMAKE_EXE_LINKER_FLAGS_RELEASE_INIT "-Wl,--strip-all")
set(CMAKE_EXE_LINKER_FLAGS_MINSIZEREL_INIT "-Wl,--strip-all")

get_filename_component(WASMLET_SDK_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(WASMLET_SDK_SOURCES "${WASMLET_SDK_DIR}/src/sdk.cc")
include_directories("${WASMLET_SDK_DIR}/include")
