// The V8 backend of the engine interface. Only files in this folder include V8 headers.
#pragma once

#include <memory>

#include "engine/engine.h"

namespace wasmlet::engine::v8backend {

Result<std::unique_ptr<Engine>> CreateV8Engine(Clock& clock, const EngineOptions& options);

}  // namespace wasmlet::engine::v8backend
