// What one plugin may make the host hold on its behalf. A guest's own linear memory is capped
// by its `mem` setting; these cap what lives outside it: shared data, shared queues, metrics it
// defines, the header maps and body buffers it writes. Past a limit the host call is refused
// with INTERNAL_FAILURE (the code every SDK can represent; the ABI has no "resource exhausted")
// and the log names the plugin and the limit.
#pragma once

#include <cstdint>

namespace wasmlet::abi {

struct HostLimits {
  uint64_t shared_data_bytes = 16 << 20;  // per VM id: keys and values of proxy_set_shared_data
  uint64_t queue_entries = 10000;         // per VM id: items waiting in its shared queues
  uint64_t queue_bytes = 16 << 20;        // per VM id: bytes of those items
  uint64_t metrics = 1000;                // per VM id: names it defined with proxy_define_metric
  uint64_t header_count = 256;            // per header map
  uint64_t header_bytes = 16 << 10;       // one header's name plus value
  uint64_t buffer_bytes = 16 << 20;       // a body buffer after proxy_set_buffer_bytes
  uint64_t property_bytes = 1 << 20;      // per instance: values kept by proxy_set_property
};

// What one VM id holds now, against HostLimits.
struct HostUsage {
  uint64_t shared_data_bytes = 0;
  uint64_t queue_entries = 0;
  uint64_t queue_bytes = 0;
  uint64_t metrics = 0;
  uint64_t refusals = 0;  // host calls refused at a limit
};

}  // namespace wasmlet::abi
