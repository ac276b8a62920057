// Mounting a task's rootfs. containerd hands a v2 shim the mounts of the container's snapshot
// (overlay, or a bind mount for the native snapshotter) and mounts nothing itself: the shim
// mounts them on <bundle>/rootfs at Create and unmounts them at Delete.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace wasmlet::shim {

struct MountSpec {
  std::string type;
  std::string source;
  std::vector<std::string> options;  // as mount(8) takes them: "ro", "rbind", "lowerdir=..."
};

struct MountFlags {
  unsigned long flags = 0;        // MS_* for the mount itself
  unsigned long propagation = 0;  // MS_PRIVATE, MS_SLAVE, ... applied afterwards
  std::string data;               // the filesystem's own options, comma-separated
};

// Splits mount(8) options into the kernel's flags and the filesystem's data string.
MountFlags ParseMountOptions(const std::vector<std::string>& options);

// Mounts each of `mounts` on `target`, in order. On failure, what was mounted is undone.
Status MountAll(const std::vector<MountSpec>& mounts, const std::string& target);

// Unmounts everything stacked on `target` (lazily when something still holds it).
Status UnmountAll(const std::string& target);

// True when something is mounted on `target` (per /proc/self/mountinfo).
bool IsMountPoint(const std::string& target);

}  // namespace wasmlet::shim
