#include "engine/v8/code_cache_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace wasmlet::engine::v8backend {

CodeCacheWriter::CodeCacheWriter(CodeCache& cache) : cache_(cache), thread_([this] { Run(); }) {}

CodeCacheWriter::~CodeCacheWriter() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

void CodeCacheWriter::Schedule(CodeCache::Key key, Serialize serialize) {
  MutexLock lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  pending_.push_back({.key = key,
                      .serialize = std::move(serialize),
                      .give_up = now + kTierUpWait,
                      .next_try = now + kFirstTry,
                      .interval = kFirstTry / 2});
  wake_.NotifyAll();
}

bool CodeCacheWriter::Flush(std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mutex_);
  flushers_++;
  wake_.NotifyAll();
  while ((!pending_.empty() || writing_) && std::chrono::steady_clock::now() < give_up) {
    done_.WaitUntil(mutex_, give_up);
  }
  flushers_--;
  return pending_.empty() && !writing_;
}

void CodeCacheWriter::Run() {
  MutexLock lock(mutex_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    const bool hurry = flushers_ > 0;
    std::vector<Pending> due;
    auto next = std::chrono::steady_clock::time_point::max();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (hurry || it->next_try <= now) {
        due.push_back(std::move(*it));
        it = pending_.erase(it);
      } else {
        next = std::min(next, it->next_try);
        ++it;
      }
    }
    if (due.empty()) {
      if (pending_.empty()) {
        wake_.Wait(mutex_);
      } else {
        wake_.WaitUntil(mutex_, next);
      }
      continue;
    }
    writing_ = true;
    lock.Unlock();  // the engine may schedule more meanwhile
    std::vector<Pending> again;
    for (Pending& entry : due) {
      if (now > entry.give_up) continue;  // never fully optimised
      std::optional<v8::OwnedBuffer> code = entry.serialize();
      if (!code) continue;  // the module is gone
      if (code->size == 0) {
        entry.interval = std::min(entry.interval * 2, kLastInterval);
        entry.next_try = std::chrono::steady_clock::now() + entry.interval;
        again.push_back(std::move(entry));
        continue;
      }
      Status written = cache_.Store(entry.key, {code->buffer.get(), code->size});
      if (!written.ok()) spdlog::warn("code cache: {}", written.message());
    }
    lock.Lock();
    for (Pending& entry : again) pending_.push_back(std::move(entry));
    writing_ = false;
    done_.NotifyAll();
    if (hurry && !again.empty() && !stopping_) {
      wake_.WaitUntil(mutex_, std::chrono::steady_clock::now() + kFirstTry);
    }
  }
}

}  // namespace wasmlet::engine::v8backend
