# CMake toolchain file for wasmlet guest modules: C and C++ to wasm32-wasi with Debian's
# clang-19, wasi-libc and libc++ (packages clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
# libc++-19-dev-wasm32 libc++abi-19-dev-wasm32).
#
#   cmake -S my-function -B build -DCMAKE_TOOLCHAIN_FILE=<wasmlet>/sdk/cmake/wasm32-wasi.cmake
#   add_executable(my_function my_function.cc ${WASMLET_SDK_SOURCES})   # gives my_function.wasm
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER clang-19)
set(CMAKE_CXX_COMPILER clang++-19)
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_CXX_COMPILER_TARGET wasm32-wasi)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
# Plugins are reactors: _initialize runs static constructors (where contexts register).
set(CMAKE_C_FLAGS_INIT "-mexec-model=reactor")
set(CMAKE_CXX_FLAGS_INIT "-mexec-model=reactor -fno-exceptions")

get_filename_component(WASMLET_SDK_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(WASMLET_SDK_SOURCES "${WASMLET_SDK_DIR}/src/sdk.cc")
include_directories("${WASMLET_SDK_DIR}/include")
