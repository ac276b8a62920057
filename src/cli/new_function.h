// `wasmlet new NAME`: a function project that builds with the guest SDK outside this
// repository, so that a new user starts from something that builds and answers.
#pragma once

#include <ostream>
#include <string>

#include "common/status.h"

namespace wasmlet::cli {

// The SDK folder (holding cmake/wasm32-wasi.cmake, include/ and src/): `flag` when given, else
// <prefix>/share/wasmlet/sdk beside an installed binary, else the sdk/ of the source tree this
// binary was built from.
Result<std::string> FindSdk(const std::string& flag);

// Writes NAME/CMakeLists.txt, NAME/NAME.cc (or NAME.c for lang "c") and NAME/README.md in the
// current directory. NAME is also the function's id. Refuses a NAME that exists already.
Status NewFunction(const std::string& name, const std::string& lang, const std::string& sdk_dir,
                   std::ostream& out);

}  // namespace wasmlet::cli
