// Task events (/tasks/create, /tasks/start, /tasks/exit, /tasks/delete) go to containerd through
// its ttrpc Events service (TTRPC_ADDRESS), in order, from one thread, so a slow containerd
// never holds up a task call.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"

namespace wasmlet::shim {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Publish(const std::string& topic, const google::protobuf::Message& event) = 0;
};

class EventForwarder : public EventSink {
 public:
  EventForwarder(std::string ttrpc_address, std::string ns);
  ~EventForwarder() override;

  void Publish(const std::string& topic, const google::protobuf::Message& event) override EXCLUDES(mutex_);
  // Waits until every published event was delivered (or given up on), at most `timeout`.
  void Flush(std::chrono::milliseconds timeout) EXCLUDES(mutex_);

 private:
  void Run() EXCLUDES(mutex_);

  const std::string address_;
  const std::string namespace_;
  Mutex mutex_;
  CondVar changed_;
  std::deque<std::string> queue_ GUARDED_BY(mutex_);  // serialised ForwardRequests
  bool sending_ GUARDED_BY(mutex_) = false;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace wasmlet::shim
