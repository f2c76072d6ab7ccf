// The store's worker thread.
#include "cloud-server/store/worker.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

#include "common/log.h"

namespace flatlink::cloud::store {
namespace {
constexpr int kNice = 10;  // the worker thread's nice value, relative to none
int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Worker::Worker(const config::StoreConfig& config, EventLoop& loop) : config_(config), loop_(loop) {
  thread_ = std::thread([this] { main(); });
}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool Worker::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (jobs_.size() >= config_.queue_max || stopping_) {
      ++dropped_;
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

size_t Worker::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

std::string Worker::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

void Worker::note_error(const std::string& what) {
  LOG_WARN("store") << "a store call failed: " << what;
  std::lock_guard<std::mutex> lock(mutex_);
  last_error_ = what;
}

Database* Worker::database() {
  if (db_ && db_->connection().reconnect()) return db_.get();
  if (db_) {
    LOG_WARN("store") << "the " << config_.engine << " database went away; trying again";
    db_.reset();
    connected_ = false;
  }
  const int64_t now = mono_ms();
  if (now < retry_at_ms_) return nullptr;
  try {
    auto db = open_database(config_);
    db->migrate();
    db_ = std::move(db);
    connected_ = true;
    backoff_ms_ = 200;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!last_error_.empty()) LOG_INFO("store") << "the " << config_.engine << " database is back";
    last_error_.clear();
    return db_.get();
  } catch (const StoreError& e) {
    retry_at_ms_ = now + backoff_ms_;
    std::lock_guard<std::mutex> lock(mutex_);
    if (last_error_ != e.what()) {
      LOG_ERROR("store") << "cannot use the " << config_.engine << " database: " << e.what() << "; trying again";
    }
    last_error_ = e.what();
    backoff_ms_ = std::min<uint32_t>(backoff_ms_ * 2, 5000);
    return nullptr;
  }
}

void Worker::main() {
  // Below the event loop: when both want the CPU (a status flood and its history batches),
  // the loop's routing goes first and the writes wait in their bounded buffer.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kNice) != 0) {
    LOG_WARN("store") << "cannot lower the store worker's priority; it competes with the event loop";
  }
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Database* db = nullptr;
    {
      bool stopping, failed;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping = stopping_;
        failed = !last_error_.empty();
      }
      // Stopping, the calls still queued (the history's last values) get a database that
      // works, or one not opened yet (a stop right after the start); one that failed is not
      // waited for.
      if (!stopping || db_ || !failed) db = database();
    }
    try {
      job(db);
    } catch (const StoreError& e) {
      // The call failed (the server went away mid-call, a constraint): the job saw its error
      // if it caught it; otherwise it is logged here and the connection checked next time.
      LOG_WARN("store") << "a store call failed: " << e.what();
    }
  }
}

}  // namespace flatlink::cloud::store
