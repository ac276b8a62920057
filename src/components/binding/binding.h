// Output bindings (Layotto's and Dapr's InvokeBinding): a named component that takes an
// operation, data and metadata and answers data and metadata. Each type lives in its own folder
// and is created by its config "type" name (CreateBinding); a type wasmlet does not have is
// kUnimplemented, naming it. Every call is thread-safe, and may block for the binding's timeout.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

struct BindingRequest {
  std::string operation;
  std::string data;
  std::map<std::string, std::string> metadata;
};

struct BindingResponse {
  std::string data;
  std::map<std::string, std::string> metadata;
};

class BindingComponent {
 public:
  virtual ~BindingComponent() = default;
  // The operations the binding takes, for messages.
  virtual std::vector<std::string> Operations() const = 0;
  // InvalidArgument for an operation it does not take, naming the ones it does.
  virtual Result<BindingResponse> Invoke(const BindingRequest& request) = 0;
};

// "http" (Dapr's HTTP output binding), with metadata "url" and "timeoutMs".
Result<std::unique_ptr<BindingComponent>> CreateBinding(const StoreConfig& config);

}  // namespace wasmlet::components
