#include "shim/mounts.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace wasmlet::shim {

namespace {

struct Flag {
  bool clear;
  unsigned long bits;
};

const std::map<std::string, Flag>& FlagTable() {
  static const std::map<std::string, Flag> table = {
      {"async", {true, MS_SYNCHRONOUS}},
      {"atime", {true, MS_NOATIME}},
      {"bind", {false, MS_BIND}},
      {"defaults", {false, 0}},
      {"dev", {true, MS_NODEV}},
      {"diratime", {true, MS_NODIRATIME}},
      {"dirsync", {false, MS_DIRSYNC}},
      {"exec", {true, MS_NOEXEC}},
      {"mand", {false, MS_MANDLOCK}},
      {"noatime", {false, MS_NOATIME}},
      {"nodev", {false, MS_NODEV}},
      {"nodiratime", {false, MS_NODIRATIME}},
      {"noexec", {false, MS_NOEXEC}},
      {"nomand", {true, MS_MANDLOCK}},
      {"norelatime", {true, MS_RELATIME}},
      {"nostrictatime", {true, MS_STRICTATIME}},
      {"nosuid", {false, MS_NOSUID}},
      {"rbind", {false, MS_BIND | MS_REC}},
      {"relatime", {false, MS_RELATIME}},
      {"remount", {false, MS_REMOUNT}},
      {"ro", {false, MS_RDONLY}},
      {"rw", {true, MS_RDONLY}},
      {"strictatime", {false, MS_STRICTATIME}},
      {"suid", {true, MS_NOSUID}},
      {"sync", {false, MS_SYNCHRONOUS}},
  };
  return table;
}

const std::map<std::string, unsigned long>& PropagationTable() {
  static const std::map<std::string, unsigned long> table = {
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  return table;
}

std::string Describe(const MountSpec& m) { return m.type + " mount of '" + m.source + "'"; }

}  // namespace

MountFlags ParseMountOptions(const std::vector<std::string>& options) {
  MountFlags out;
  for (const std::string& option : options) {
    if (auto it = FlagTable().find(option); it != FlagTable().end()) {
      if (it->second.clear) {
        out.flags &= ~it->second.bits;
      } else {
        out.flags |= it->second.bits;
      }
    } else if (auto p = PropagationTable().find(option); p != PropagationTable().end()) {
      out.propagation |= p->second;
    } else {
      if (!out.data.empty()) out.data += ',';
      out.data += option;
    }
  }
  return out;
}

Status MountAll(const std::vector<MountSpec>& mounts, const std::string& target) {
  for (const MountSpec& m : mounts) {
    const MountFlags f = ParseMountOptions(m.options);
    const bool bind = (f.flags & MS_BIND) != 0;
    // A read-only bind mount takes two calls: the bind, then a read-only remount of it.
    const unsigned long first = bind ? (f.flags & ~MS_RDONLY) : f.flags;
    if (mount(m.source.c_str(), target.c_str(), m.type.c_str(), first,
              f.data.empty() ? nullptr : f.data.c_str()) != 0) {
      const std::string error = std::strerror(errno);
      (void)UnmountAll(target);
      return Internal("cannot mount the container's rootfs (" + Describe(m) + " on " + target +
                      "): " + error);
    }
    if (bind && (f.flags & MS_RDONLY) &&
        mount("", target.c_str(), "", (f.flags & ~MS_REC) | MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
      const std::string error = std::strerror(errno);
      (void)UnmountAll(target);
      return Internal("cannot make the bind mount of '" + m.source + "' read-only: " + error);
    }
    if (f.propagation && mount("", target.c_str(), "", f.propagation, nullptr) != 0) {
      const std::string error = std::strerror(errno);
      (void)UnmountAll(target);
      return Internal("cannot set the propagation of " + target + ": " + error);
    }
  }
  return Status::Ok();
}

Status UnmountAll(const std::string& target) {
  // Mounts stack: keep unmounting until nothing is left on the target.
  for (int i = 0; i < 64 && IsMountPoint(target); ++i) {
    if (umount2(target.c_str(), 0) == 0) continue;
    if (errno == EBUSY && umount2(target.c_str(), MNT_DETACH) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return Status::Ok();
    return Internal("cannot unmount " + target + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

bool IsMountPoint(const std::string& target) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    // id parent major:minor root mount-point ...; spaces in paths are escaped as \040.
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    std::string unescaped;
    for (size_t i = 0; i < mount_point.size(); ++i) {
      if (mount_point[i] == '\\' && i + 3 < mount_point.size()) {
        unescaped += static_cast<char>(std::stoi(mount_point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        unescaped += mount_point[i];
      }
    }
    if (unescaped == target) return true;
  }
  return false;
}

}  // namespace wasmlet::shim
