// Password checks off the loop: a fixed set of worker threads owned by this object,
// fed fairly by source (each turn takes the oldest check of the next source in
// round-robin order), so that one source flooding wrong passwords waits behind itself.
// With more than one worker, one source runs on at most workers - 1 of them at a time:
// a worker is always free for the next source, whose check starts at once instead of
// after one of the flood's (bench/frontdoor.mjs, docs/benchmarks.md).
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
  // The queue of the next source after last_source_ that may start a check, or end.
  std::map<std::string, std::deque<Job>>::iterator next_runnable();

  EventLoop& loop_;
  const uint32_t per_source_;
  const uint32_t total_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // the token posted answers carry
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, std::deque<Job>> queued_;   // by source
  std::map<std::string, uint32_t> in_flight_;       // queued + running, by source
  std::map<std::string, uint32_t> running_;         // running, by source
  uint32_t max_running_per_source_ = 1;             // workers - 1 (at least 1)
  uint32_t total_in_flight_ = 0;
  std::string last_source_;                          // round-robin position
  std::vector<std::thread> workers_;
};

}  // namespace flatlink::cloud
