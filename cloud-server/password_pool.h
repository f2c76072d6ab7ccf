// Password checks off the loop: a fixed set of worker threads owned by this object,
// fed fairly by source (each turn takes the oldest check of the next source in
// round-robin order), so that one source flooding wrong passwords waits behind itself
// and never holds another's login back by more than about one check per worker.
// Bounded per source and in all: submit() says no instead of queueing without end.
//
// submit() and the destructor: loop thread. The check runs on a worker; its answer is
// posted to the loop with this pool's liveness token, so an answer never reaches a
// destroyed pool's owner. The destructor stops the workers and joins them (a check in
// progress finishes first: tens of milliseconds); no detached thread outlives it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"

namespace flatlink::cloud {

class PasswordCheckPool {
 public:
  using Check = std::function<bool()>;          // runs on a worker (e.g. verify_password)
  using Answer = std::function<void(bool ok)>;  // runs on the loop

  PasswordCheckPool(EventLoop& loop, uint32_t workers, uint32_t per_source, uint32_t total);
  ~PasswordCheckPool();
  PasswordCheckPool(const PasswordCheckPool&) = delete;
  PasswordCheckPool& operator=(const PasswordCheckPool&) = delete;

  // False (and nothing queued) when the source already has per_source checks waiting or
  // running, or the pool has `total`.
  bool submit(const std::string& source, Check check, Answer answer);
  size_t pending(const std::string& source) const;

 private:
  struct Job {
    Check check;
    Answer answer;
  };
  void work();

  EventLoop& loop_;
  const uint32_t per_source_;
  const uint32_t total_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // the token posted answers carry
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, std::deque<Job>> queued_;   // by source
  std::map<std::string, uint32_t> in_flight_;       // queued + running, by source
  uint32_t total_in_flight_ = 0;
  std::string last_source_;                          // round-robin position
  std::vector<std::thread> workers_;
};

}  // namespace flatlink::cloud
