# CMake's platform file for CMAKE_SYSTEM_NAME WASI (CMake 3.25 ships none): executables are
# WebAssembly modules named NAME.wasm, and there are no shared libraries. The toolchain file
# puts this folder on CMAKE_MODULE_PATH; a platform file is read after the toolchain, so what
# it sets is not overwritten by CMake's defaults.
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)
