// The fair worker pool for password checks (cloud-server/password_pool.h).
#include "cloud-server/password_pool.h"

namespace flatlink::cloud {

PasswordCheckPool::PasswordCheckPool(EventLoop& loop, uint32_t workers, uint32_t per_source, uint32_t total)
    : loop_(loop), per_source_(per_source), total_(total), max_running_per_source_(workers > 1 ? workers - 1 : 1) {
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

std::map<std::string, std::deque<PasswordCheckPool::Job>>::iterator PasswordCheckPool::next_runnable() {
  // Round-robin from the source after the last one served, skipping sources that already
  // hold their share of the workers.
  const auto may_run = [this](const std::string& source) {
    auto it = running_.find(source);
    return it == running_.end() || it->second < max_running_per_source_;
  };
  for (auto it = queued_.upper_bound(last_source_); it != queued_.end(); ++it) {
    if (may_run(it->first)) return it;
  }
  for (auto it = queued_.begin(); it != queued_.end() && it->first <= last_source_; ++it) {
    if (may_run(it->first)) return it;
  }
  return queued_.end();
}

void PasswordCheckPool::work() {
  for (;;) {
    Job job;
    std::string source;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      std::map<std::string, std::deque<Job>>::iterator it;
      wake_.wait(lock, [&] { return stopping_ || (it = next_runnable()) != queued_.end(); });
      if (stopping_) return;
      source = it->first;
      ++running_[source];
      last_source_ = source;
      job = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) queued_.erase(it);
    }
    const bool ok = job.check();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = in_flight_.find(source); it != in_flight_.end() && --it->second == 0) in_flight_.erase(it);
      if (auto it = running_.find(source); it != running_.end() && --it->second == 0) running_.erase(it);
      --total_in_flight_;
    }
    wake_.notify_all();  // a source held at its share may run again
    loop_.post(std::weak_ptr<const void>(alive_), [answer = std::move(job.answer), ok] { answer(ok); });
  }
}

}  // namespace flatlink::cloud
