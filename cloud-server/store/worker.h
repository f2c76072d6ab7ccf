// The running cloud's way to the store: one worker thread owns the database connection and
// runs the calls queued for it in order; their results are posted back to the event loop.
// Nothing here blocks the loop, and the thread runs at nice 10: when the CPU is short (a
// status flood and its history writes) the loop's routing goes first. While the database cannot be reached the worker tries again
// with a backoff (0.2 s doubling to 5 s) and hands each call a null Database, so that the
// caller answers "unavailable" at once; the queue is bounded (store.queue_max): a call beyond
// it is refused and counted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cloud-server/store/store.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud::store {

class Worker {
 public:
  // Runs on the worker thread; `db` is null while the database cannot be reached.
  using Job = std::function<void(Database* db)>;

  Worker(const config::StoreConfig& config, EventLoop& loop);
  // Runs what is queued, then joins. Once stopping, a call gets the database if it works or
  // was not tried yet (a stop right after the start), a null one if it had failed.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues a job; false (not queued, counted in dropped()) when queue_max jobs wait.
  bool submit(Job job);
  // Runs `job` on the worker and `done` with its result on the loop thread. A job that
  // throws StoreError (the database failed mid-call) is run again with a null database.
  template <class T>
  bool call(std::function<T(Database* db)> job, std::function<void(T)> done) {
    return submit([this, job = std::move(job), done = std::move(done)](Database* db) mutable {
      std::optional<T> out;
      try {
        out.emplace(job(db));
      } catch (const StoreError& e) {
        note_error(e.what());
        out.emplace(job(nullptr));
      }
      T result = std::move(*out);
      loop_.post([done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
    });
  }

  bool connected() const { return connected_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  size_t queued() const;
  // The last error the database gave ("" while it works); never holds a password.
  std::string last_error() const;
  void note_error(const std::string& what);

 private:
  void main();
  Database* database();  // opens (or reopens) the database when due; null if it cannot

  const config::StoreConfig config_;
  EventLoop& loop_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::string last_error_;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> dropped_{0};
  std::unique_ptr<Database> db_;  // worker thread only
  int64_t retry_at_ms_ = 0;       // worker thread only
  uint32_t backoff_ms_ = 200;     // worker thread only
  std::thread thread_;
};

}  // namespace flatlink::cloud::store
