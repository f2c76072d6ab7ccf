// The durable outbox: in-memory index and send window on the loop thread,
// SQLite commits on a writer thread.
#include "gateway/durable_outbox.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace flatlink::gateway {
namespace {

constexpr uint64_t kReserveBlock = 100'000;
constexpr auto kRetryDelay = std::chrono::seconds(2);

uint32_t size_of(const std::string& device, const Json& state) {
  return static_cast<uint32_t>(device.size() + state.dump(-1, ' ', false, Json::error_handler_t::replace).size());
}

}  // namespace

// One change for the writer, applied in order.
struct DurableOutbox::Op {
  enum Kind { insert, remove, merge, ack, reserve, dropped, command, load };
  explicit Op(Kind k, uint64_t s = 0) : kind(k), seq(s) {}
  explicit Op(OutboxItem i) : kind(insert), item(std::move(i)) {}

  Kind kind;
  OutboxItem item;         // insert
  uint64_t seq = 0;        // remove, ack, reserve, dropped (count), load (after); merge: the older one
  uint64_t into = 0;       // merge: the newer one, which takes the older's keys it lacks
  size_t count = 0;        // load
  uint64_t head = 0;       // load: the newest seq when it was asked for
  std::string id;          // command
  int64_t ts = 0;          // command
};

DurableOutbox::DurableOutbox(EventLoop& loop, const config::OutboxConfig& config, std::string path)
    : loop_(loop), config_(config), path_(std::move(path)), store_(std::make_unique<OutboxStore>()) {
  // Startup reads happen before the loop runs: the one time the loop thread touches the disk.
  uint64_t max_seq = 0;
  if (store_->open(path_, config_.durability)) {
    auto summary = store_->summary();
    auto index = summary ? store_->load_index() : std::nullopt;
    auto first = index ? store_->load_after(0, config_.memory_items) : std::nullopt;
    auto commands = first ? store_->recent_commands(4096) : std::nullopt;
    if (commands) {
      max_seq = summary->max_seq;
      next_seq_ = std::max<uint64_t>({summary->max_seq + 1, summary->reserved_seq, 1});
      dropped_ = summary->dropped;
      for (auto& row : *index) {
        const uint32_t device = device_index(row.device);
        index_.push_back(Entry{row.seq, row.bytes, device, false});
        latest_by_device_[device] = row.seq;
        ++count_;
        bytes_ += row.bytes;
      }
      mem_.assign(first->begin(), first->end());
      if (mem_.size() < index_.size()) {
        spilled_ = true;
        mem_upto_ = mem_.empty() ? 0 : mem_.back().seq;
      }
      recent_commands_ = std::move(*commands);
      committed_upto_ = max_seq;
      LOG_INFO("outbox") << "opened " << path_ << ": " << count_ << " statuses waiting, next seq=" << next_seq_ << ", "
                         << dropped_ << " dropped so far";
    } else {
      degraded_ = true;
    }
  } else {
    degraded_ = true;
  }
  if (degraded_) {
    health_ = "outbox not durable: " + store_->error();
    LOG_ERROR("outbox") << "cannot use " << path_ << " (" << store_->error()
                        << "); keeping statuses in memory only, bounded, until the disk works again";
  }
  reserved_ = next_seq_ + kReserveBlock;
  enqueue(Op(Op::reserve, reserved_));
  writer_ = std::thread([this] { writer_main(); });
}

DurableOutbox::~DurableOutbox() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

uint32_t DurableOutbox::device_index(const std::string& device) {
  auto [it, fresh] = device_ids_.emplace(device, static_cast<uint32_t>(devices_.size()));
  if (fresh) devices_.push_back(device);
  return it->second;
}

DurableOutbox::Entry* DurableOutbox::find_entry(uint64_t seq) {
  auto it = std::lower_bound(index_.begin(), index_.end(), seq, [](const Entry& e, uint64_t s) { return e.seq < s; });
  return it != index_.end() && it->seq == seq ? &*it : nullptr;
}

void DurableOutbox::enqueue(Op op) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ops_.push_back(std::move(op));
  }
  wake_.notify_one();
}

uint64_t DurableOutbox::sendable_below() const {
  if (degraded_) return UINT64_MAX;  // nothing on disk to protect: send what there is
  if (config_.durability == config::Durability::sync) return std::min(committed_upto_ + 1, durable_reserved_);
  return durable_reserved_;
}

uint64_t DurableOutbox::append(const std::string& device, const Json& state, int64_t ts) {
  OutboxItem item{next_seq_++, device, state, ts};
  const uint32_t dev = device_index(device);
  uint32_t bytes = size_of(device, state);
  if (count_ + 1 > config_.max_items || bytes_ + bytes > config_.max_bytes) {
    make_room(item, bytes, dev);
    bytes = size_of(device, item.state);
  }
  index_.push_back(Entry{item.seq, bytes, dev, false});
  latest_by_device_[dev] = item.seq;
  ++count_;
  bytes_ += bytes;
  // Without a working disk nothing can be read back: keep everything in memory then.
  const size_t mem_limit = degraded_ ? config_.max_items : config_.memory_items;
  if (!spilled_ && mem_.size() < mem_limit) {
    mem_.push_back(item);
  } else if (!spilled_) {
    spilled_ = true;
    mem_upto_ = mem_.empty() ? acked_ : mem_.back().seq;
  }
  if (next_seq_ + kReserveBlock / 2 > reserved_) {
    reserved_ += kReserveBlock;
    enqueue(Op(Op::reserve, reserved_));
  }
  enqueue(Op(std::move(item)));
  return next_seq_ - 1;
}

// When full: first coalesce (the device's previous waiting status is folded into
// this one), then drop the oldest until there is room.
void DurableOutbox::make_room(OutboxItem& incoming, uint32_t incoming_bytes, uint32_t device) {
  auto latest = latest_by_device_.find(device);
  if (latest != latest_by_device_.end()) {
    Entry* old = find_entry(latest->second);
    if (old && !old->removed) {
      auto in_mem = std::lower_bound(mem_.begin(), mem_.end(), old->seq,
                                     [](const OutboxItem& i, uint64_t s) { return i.seq < s; });
      if (in_mem != mem_.end() && in_mem->seq == old->seq) {
        Json merged = in_mem->state;
        for (const auto& [k, v] : incoming.state.items()) merged[k] = v;
        incoming.state = std::move(merged);
        mem_.erase(in_mem);
        enqueue(Op(Op::remove, old->seq));
      } else {
        // Both on disk only: the writer folds the older row into the newer one.
        Op op(Op::merge, old->seq);
        op.into = incoming.seq;
        // Queued after the insert of `incoming`, which append() queues once room is made.
        loop_.post([this, op]() mutable { enqueue(std::move(op)); });
      }
      old->removed = true;
      --count_;
      bytes_ -= old->bytes;
    }
  }
  while ((count_ + 1 > config_.max_items || bytes_ + incoming_bytes > config_.max_bytes) && count_ > 0) drop_oldest();
}

void DurableOutbox::drop_oldest() {
  for (Entry& e : index_) {
    if (e.removed) continue;
    e.removed = true;
    --count_;
    bytes_ -= e.bytes;
    if (!mem_.empty() && mem_.front().seq == e.seq) mem_.pop_front();
    ++dropped_;
    enqueue(Op(Op::remove, e.seq));
    enqueue(Op(Op::dropped, dropped_));
    if ((dropped_ & (dropped_ - 1)) == 0) {  // 1, 2, 4, 8, ...: a flood does not flood the log
      LOG_WARN("outbox") << "full (" << config_.max_items << " statuses / " << config_.max_bytes
                         << " bytes): dropped device=" << devices_[e.device] << " seq=" << e.seq << ", " << dropped_
                         << " dropped so far";
    }
    return;
  }
}

std::vector<OutboxItem> DurableOutbox::read_after(uint64_t after, size_t max) {
  std::vector<OutboxItem> out;
  const uint64_t limit = sendable_below();
  auto it = std::upper_bound(mem_.begin(), mem_.end(), after, [](uint64_t s, const OutboxItem& i) { return s < i.seq; });
  for (; it != mem_.end() && out.size() < max && it->seq < limit; ++it) out.push_back(*it);
  const bool at_end = it == mem_.end();
  if (out.size() < max && at_end && spilled_) request_load();
  return out;
}

void DurableOutbox::request_load() {
  if (loading_ || degraded_) return;
  loading_ = true;
  const size_t room = config_.memory_items > mem_.size() ? config_.memory_items - mem_.size() : 0;
  Op op(Op::load, mem_.empty() ? std::max(mem_upto_, acked_) : mem_.back().seq);
  op.count = std::max<size_t>(room, 64);
  op.head = next_seq_ - 1;
  enqueue(std::move(op));
}

void DurableOutbox::ack(uint64_t seq) {
  if (seq <= acked_) return;
  acked_ = seq;
  while (!index_.empty() && index_.front().seq <= seq) {
    const Entry& e = index_.front();
    if (!e.removed) {
      --count_;
      bytes_ -= e.bytes;
    }
    auto latest = latest_by_device_.find(e.device);
    if (latest != latest_by_device_.end() && latest->second == e.seq) latest_by_device_.erase(latest);
    index_.pop_front();
  }
  while (!mem_.empty() && mem_.front().seq <= seq) mem_.pop_front();
  if (index_.empty()) spilled_ = false;
  enqueue(Op(Op::ack, seq));
}

std::vector<std::string> DurableOutbox::waiting_devices() const {
  std::vector<std::string> out;
  out.reserve(latest_by_device_.size());
  for (const auto& [device, seq] : latest_by_device_) out.push_back(devices_[device]);
  return out;
}

void DurableOutbox::remember_command(const std::string& id, int64_t ts) {
  Op op(Op::command);
  op.id = id;
  op.ts = ts;
  enqueue(std::move(op));
}

void DurableOutbox::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.notify_one();
  idle_.wait(lock, [this] { return ops_.empty() && !writer_busy_; });
}

// ---- writer thread ------------------------------------------------------------

void DurableOutbox::writer_main() {
  const auto interval = std::chrono::milliseconds(
      config_.durability == config::Durability::sync ? 0 : config_.commit_interval_ms);
  std::vector<Op> failed;  // a batch the disk refused, retried with the next
  bool stop = false;
  while (!stop) {
    std::vector<Op> ops;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      writer_busy_ = false;
      idle_.notify_all();
      if (failed.empty()) {
        wake_.wait(lock, [this] { return !ops_.empty() || stopping_; });
      } else {
        wake_.wait_for(lock, kRetryDelay, [this] { return stopping_; });
      }
      // Group commit: gather for up to commit_interval_ms unless enough are waiting
      // or someone waits for a read.
      if (interval.count() > 0 && !stopping_) {
        const auto deadline = std::chrono::steady_clock::now() + interval;
        wake_.wait_until(lock, deadline, [this] {
          return stopping_ || ops_.size() >= config_.commit_max_items ||
                 std::any_of(ops_.begin(), ops_.end(), [](const Op& o) { return o.kind == Op::load; });
        });
      }
      ops.swap(ops_);
      stop = stopping_;
      writer_busy_ = true;
    }
    if (!failed.empty()) {
      failed.insert(failed.end(), std::make_move_iterator(ops.begin()), std::make_move_iterator(ops.end()));
      ops.swap(failed);
      failed.clear();
    }
    if (!store_->is_open()) store_->open(path_, config_.durability);

    OutboxStore::Batch batch;
    std::vector<Op> loads;
    uint64_t committed = 0;
    uint64_t reserved = 0;
    std::vector<std::pair<uint64_t, uint64_t>> merges;
    for (auto& op : ops) {
      switch (op.kind) {
        case Op::insert:
          committed = std::max(committed, op.item.seq);
          batch.inserts.push_back(std::move(op.item));
          break;
        case Op::remove: batch.deletes.push_back(op.seq); break;
        case Op::merge: merges.emplace_back(op.seq, op.into); break;
        case Op::ack: batch.ack_upto = std::max(batch.ack_upto, op.seq); break;
        case Op::reserve:
          batch.reserve_seq = std::max(batch.reserve_seq, op.seq);
          reserved = batch.reserve_seq;
          break;
        case Op::dropped: batch.dropped = op.seq; break;
        case Op::command: batch.commands.emplace_back(op.id, op.ts); break;
        case Op::load: loads.push_back(std::move(op)); break;
      }
    }
    batch.merges = std::move(merges);
    std::string error;
    const bool ok = store_->is_open() && store_->commit(batch);
    if (!ok) {
      error = store_->error();
      // Keep the changes (not the reads) to try again; the loop keeps its bounds meanwhile.
      for (auto& item : batch.inserts) failed.push_back(Op(std::move(item)));
      for (uint64_t seq : batch.deletes) failed.push_back(Op(Op::remove, seq));
      for (auto [older, newer] : batch.merges) {
        Op op(Op::merge, older);
        op.into = newer;
        failed.push_back(std::move(op));
      }
      if (batch.ack_upto) failed.push_back(Op(Op::ack, batch.ack_upto));
      if (batch.reserve_seq) failed.push_back(Op(Op::reserve, batch.reserve_seq));
      if (batch.dropped) failed.push_back(Op(Op::dropped, *batch.dropped));
      committed = 0;
      reserved = 0;
    }
    std::vector<OutboxItem> loaded;
    uint64_t load_head = 0;
    bool load_short = false;
    for (const auto& load : loads) {
      auto items = ok ? store_->load_after(load.seq, load.count) : std::nullopt;
      if (items) {
        load_short = items->size() < load.count;
        load_head = load.head;
        loaded.insert(loaded.end(), std::make_move_iterator(items->begin()), std::make_move_iterator(items->end()));
      }
    }
    const bool answered = !loads.empty();
    if (ok && !answered && committed == 0 && reserved == 0) continue;  // nothing the loop waits for
    loop_.post([this, committed, reserved, error, loaded = std::move(loaded), load_head, load_short, answered]() mutable {
      writer_done(committed, reserved, std::move(error), std::move(loaded), answered ? load_head : 0, load_short);
    });
  }
}

void DurableOutbox::writer_done(uint64_t committed_upto, uint64_t reserved, std::string error,
                                std::vector<OutboxItem> loaded, uint64_t load_head, bool load_was_short) {
  bool more = false;
  if (!error.empty()) {
    if (!degraded_ || health_ != "outbox not durable: " + error) {
      LOG_ERROR("outbox") << "cannot write " << path_ << " (" << error
                          << "); keeping statuses in memory, bounded, and retrying";
    }
    degraded_ = true;
    health_ = "outbox not durable: " + error;
    more = true;  // memory-only: everything may be sent
  } else if (degraded_ && (committed_upto || reserved)) {
    degraded_ = false;
    health_.clear();
    LOG_INFO("outbox") << path_ << " works again; statuses are durable again";
  }
  if (committed_upto > committed_upto_) {
    committed_upto_ = committed_upto;
    more |= config_.durability == config::Durability::sync;
  }
  if (reserved > durable_reserved_) {
    durable_reserved_ = reserved;
    more = true;
  }
  if (load_head) {
    loading_ = false;
    const uint64_t last_mem = mem_.empty() ? acked_ : mem_.back().seq;
    for (auto& item : loaded) {
      if (item.seq <= last_mem) continue;
      const Entry* e = find_entry(item.seq);
      if (!e || e->removed) continue;
      mem_.push_back(std::move(item));
    }
    if (!mem_.empty()) mem_upto_ = std::max(mem_upto_, mem_.back().seq);
    if (load_was_short) {
      mem_upto_ = std::max(mem_upto_, load_head);
      if (next_seq_ - 1 <= load_head) spilled_ = false;
    }
    more = true;
  }
  if (more && on_available_) on_available_();
}

}  // namespace flatlink::gateway
