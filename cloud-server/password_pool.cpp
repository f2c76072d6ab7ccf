// The fair worker pool for password checks (cloud-server/password_pool.h).
#include "cloud-server/password_pool.h"

namespace flatlink::cloud {

PasswordCheckPool::PasswordCheckPool(EventLoop& loop, uint32_t workers, uint32_t per_source, uint32_t total)
    : loop_(loop), per_source_(per_source), total_(total) {
  workers_.reserve(workers);
  for (uint32_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

PasswordCheckPool::~PasswordCheckPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queued_.clear();
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
  alive_.reset();  // answers already posted find no pool and do nothing
}

bool PasswordCheckPool::submit(const std::string& source, Check check, Answer answer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    uint32_t& mine = in_flight_[source];
    if (mine >= per_source_ || total_in_flight_ >= total_) {
      if (mine == 0) in_flight_.erase(source);
      return false;
    }
    ++mine;
    ++total_in_flight_;
    queued_[source].push_back(Job{std::move(check), std::move(answer)});
  }
  wake_.notify_one();
  return true;
}

size_t PasswordCheckPool::pending(const std::string& source) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_flight_.find(source);
  return it == in_flight_.end() ? 0 : it->second;
}

void PasswordCheckPool::work() {
  for (;;) {
    Job job;
    std::string source;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
      if (stopping_) return;
      // The next source after the last one served, in key order (round-robin).
      auto it = queued_.upper_bound(last_source_);
      if (it == queued_.end()) it = queued_.begin();
      source = it->first;
      last_source_ = source;
      job = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) queued_.erase(it);
    }
    const bool ok = job.check();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = in_flight_.find(source); it != in_flight_.end() && --it->second == 0) in_flight_.erase(it);
      --total_in_flight_;
    }
    loop_.post(std::weak_ptr<const void>(alive_), [answer = std::move(job.answer), ok] { answer(ok); });
  }
}

}  // namespace flatlink::cloud
