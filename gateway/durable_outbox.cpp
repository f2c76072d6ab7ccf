// The durable outbox: in-memory index and send window on the loop thread,
// SQLite commits on a writer thread.
#include "gateway/durable_outbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cloud-link/protocol.h"
#include "common/clock.h"
#include "common/log.h"

namespace flatlink::gateway {
namespace {

constexpr uint64_t kReserveBlock = 100'000;
constexpr auto kRetryDelay = std::chrono::seconds(2);
constexpr auto kSideFileEvery = std::chrono::seconds(1);

uint32_t size_of(const std::string& device, const std::string& state_text) {
  return static_cast<uint32_t>(device.size() + state_text.size());
}

bool power_of_two(uint64_t n) { return n && (n & (n - 1)) == 0; }

// The side file beside the store: which epoch the store holds, how far its seqs are
// reserved, and how many statuses waited when it was last written. It tells a store that
// is gone (0 bytes, replaced, rolled back, damaged) from a first start.
struct SideFile {
  std::string epoch;
  uint64_t reserved = 0;
  uint64_t waiting = 0;
  uint64_t lost = 0;
};

std::optional<SideFile> read_side_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  SideFile side;
  std::string key;
  while (in >> key) {
    if (key == "epoch") in >> side.epoch;
    else if (key == "reserved") in >> side.reserved;
    else if (key == "waiting") in >> side.waiting;
    else if (key == "lost") in >> side.lost;
    else break;
  }
  if (!proto::valid_epoch(side.epoch)) return std::nullopt;
  return side;
}

// Written whole to a temporary file and renamed over the old one: a reader sees the old or
// the new file, never half of one. fsync'd when sync (a new epoch or reservation).
bool write_side(const std::string& path, const SideFile& side, bool sync) {
  const std::string tmp = path + ".tmp";
  std::ostringstream text;
  text << "epoch " << side.epoch << "\nreserved " << side.reserved << "\nwaiting " << side.waiting << "\nlost "
       << side.lost << "\n";
  const std::string body = text.str();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
  if (ok && sync) ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

// <path>.held: how many waiting statuses lived in memory only (the disk failing, or a
// memory-only epoch) when it was last written. One block, allocated while the disk has room
// and then only ever overwritten in place, so that it can be written on a full disk. A record
// is "held <count> epoch <epoch>", padded to a fixed size so that each write covers the last.
constexpr off_t kHeldFileBytes = 4096;
constexpr size_t kHeldRecordBytes = 96;

struct HeldRecord {
  uint64_t count = 0;
  std::string epoch;
};

bool write_held_record(int fd, uint64_t count, const std::string& epoch) {
  char buf[kHeldRecordBytes];
  std::memset(buf, ' ', sizeof buf);
  const int n = std::snprintf(buf, sizeof buf, "held %llu epoch %s", static_cast<unsigned long long>(count), epoch.c_str());
  if (n < 0 || static_cast<size_t>(n) >= sizeof buf - 1) return false;
  buf[n] = ' ';
  buf[sizeof buf - 1] = '\n';
  return ::pwrite(fd, buf, sizeof buf, 0) == static_cast<ssize_t>(sizeof buf);
}

// Opens the file and reads what it held; allocates its block if it is new. -1 when it cannot
// be had (logged: a crash while the disk fails could then not be counted).
int open_held_file(const std::string& path, HeldRecord& found) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    char buf[kHeldRecordBytes + 1] = {};
    const ssize_t n = ::pread(fd, buf, kHeldRecordBytes, 0);
    std::istringstream in(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0));
    std::string key, epoch_key;
    HeldRecord record;
    if (in >> key >> record.count >> epoch_key >> record.epoch && key == "held") found = record;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size >= kHeldFileBytes) return fd;
    // New: its block is allocated and written now, while there is room (posix_fallocate
    // alone leaves ext4 an unwritten extent to convert later; tmpfs gets its page either way).
    const std::string zeros(static_cast<size_t>(kHeldFileBytes), '\0');
    const int allocated = ::posix_fallocate(fd, 0, kHeldFileBytes);  // an error number, not errno
    if (allocated != 0) errno = allocated;
    if (allocated == 0 && ::pwrite(fd, zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size()) &&
        write_held_record(fd, found.count, found.epoch) && ::fdatasync(fd) == 0) {
      return fd;
    }
    const int error = errno;
    ::close(fd);
    errno = error;
  }
  LOG_WARN("outbox") << "cannot prepare " << path << " (" << std::strerror(errno)
                     << "): statuses held in memory only while the disk fails would not be counted after a crash";
  return -1;
}

// A damaged store is kept for a person to look at, never deleted: moved aside with its WAL.
std::string move_aside(const std::string& path) {
  const std::string aside = path + ".damaged-" + std::to_string(SystemClock::instance().wall_ms());
  std::rename(path.c_str(), aside.c_str());
  for (const char* suffix : {"-wal", "-shm"}) std::rename((path + suffix).c_str(), (aside + suffix).c_str());
  return aside;
}

}  // namespace

// One change for the writer, applied in order.
struct DurableOutbox::Op {
  enum Kind { insert, remove, merge, ack, reserve, dropped, coalesced, command, load };
  explicit Op(Kind k, uint64_t s = 0) : kind(k), seq(s) {}
  explicit Op(OutboxItem i) : kind(insert), item(std::move(i)) {}

  Kind kind;
  OutboxItem item;         // insert
  uint64_t seq = 0;        // remove, ack, reserve, dropped/coalesced (count), load (after); merge: the older one
  uint64_t into = 0;       // merge: the newer one, which takes the older's keys it lacks
  size_t count = 0;        // load
  uint64_t head = 0;       // load: the newest seq when it was asked for
  std::string id;          // command
  int64_t ts = 0;          // command: remembered until (wall ms)
};

DurableOutbox::DurableOutbox(EventLoop& loop, const config::OutboxConfig& config, std::string path)
    : loop_(loop),
      config_(config),
      path_(std::move(path)),
      side_path_(path_ + ".epoch"),
      store_(std::make_unique<OutboxStore>()) {
  // Startup reads and the first reservation happen before the loop runs: the one time the
  // loop thread touches the disk.
  const auto side = read_side_file(side_path_);
  HeldRecord held_before;
  held_fd_ = open_held_file(path_ + ".held", held_before);
  if (held_before.count > 0) {
    LOG_ERROR("outbox") << "the last run stopped while " << held_before.count
                        << " statuses were held in memory only (the disk had failed; epoch=" << held_before.epoch
                        << "): they may be lost; counted as lost";
  }
  bool held_counted = false;
  std::string gone;  // why the store this gateway had is gone, if it is
  if (!store_->open(path_, config_.durability) && store_->damaged()) {
    const std::string error = store_->error();
    const std::string aside = move_aside(path_);
    LOG_ERROR("outbox") << "store " << path_ << " is damaged (" << error << "); moved aside to " << aside
                        << " and starting a new store";
    gone = "damaged";
    store_ = std::make_unique<OutboxStore>();
    store_->open(path_, config_.durability);
  }
  auto summary = store_->is_open() ? store_->summary() : std::nullopt;
  const int64_t now = SystemClock::instance().wall_ms();
  auto commands = summary ? store_->recent_commands(now - proto::kMaxTtlMs) : std::nullopt;
  if (commands) {
    // A row holds the time until which its id is remembered; a store from before that held
    // the time it arrived (below now): remembered for the longest TTL from then.
    for (auto& [id, ts] : *commands) {
      if (ts < now) ts += proto::kMaxTtlMs;
    }
    recent_commands_ = std::move(*commands);
  }
  bool usable = commands.has_value();
  if (usable) {
    dropped_ = summary->dropped;
    coalesced_ = summary->coalesced;
    lost_ = std::max(summary->lost, side ? side->lost : 0) + held_before.count;
    held_counted = true;
    epoch_ = summary->epoch;
    if (gone.empty() && side) {
      if (epoch_.empty()) gone = "emptied or replaced by a new file";
      else if (epoch_ != side->epoch) gone = "replaced by another store (epoch " + epoch_ + ")";
      else if (summary->reserved_seq < side->reserved) gone = "rolled back to an older copy";
    }
    if (!gone.empty() || epoch_.empty()) {
      if (!gone.empty()) {
        const uint64_t may_be_lost = side ? side->waiting : 0;
        lost_ += may_be_lost;
        LOG_ERROR("outbox") << "the store I had is gone (" << path_ << ": " << gone << "): up to " << may_be_lost
                            << " statuses that waited in it may be lost (" << lost_
                            << " in all); a new stream epoch starts";
      } else if (summary->count > 0 || summary->reserved_seq > 0) {
        LOG_INFO("outbox") << path_ << " was made before stream epochs; its statuses go on in a new epoch";
      }
      epoch_ = new_epoch();
    }
    next_seq_ = std::max<uint64_t>({summary->max_seq + 1, summary->reserved_seq, 1});
    // The first reservation, committed now: without it nothing new could be sent safely.
    OutboxStore::Batch batch;
    batch.reserve_seq = next_seq_ + kReserveBlock;
    batch.epoch = epoch_;
    if (lost_ != summary->lost) batch.lost = lost_;
    if (store_->commit(batch)) {
      // The count is kept in the store's lost now: the held file starts again from 0.
      if (held_fd_ >= 0 && held_before.count > 0) write_held_record(held_fd_, 0, epoch_);
      reserved_ = durable_reserved_ = batch.reserve_seq;
      side_reserved_ = batch.reserve_seq;
      write_side(side_path_, SideFile{epoch_, batch.reserve_seq, summary->count, lost_}, true);
      side_waiting_ = summary->count;
    } else {
      usable = false;
    }
  }
  if (usable) {
    auto index = store_->load_index();
    auto first = index ? store_->load_after(0, config_.memory_items) : std::nullopt;
    usable = first.has_value();
    if (usable) {
      uint64_t max_seq = 0;
      for (auto& row : *index) {
        const uint32_t device = device_index(row.device);
        ++device_refs_[device];
        index_.push_back(Entry{row.seq, row.bytes, device, false});
        latest_by_device_[device] = row.seq;
        ++count_;
        bytes_ += row.bytes;
        max_seq = row.seq;
      }
      mem_.assign(first->begin(), first->end());
      if (mem_.size() < index_.size()) {
        spilled_ = true;
        mem_upto_ = mem_.empty() ? 0 : mem_.back().seq;
      }
      committed_upto_ = max_seq;
      LOG_INFO("outbox") << "opened " << path_ << ": epoch=" << epoch_ << ", " << count_
                         << " statuses waiting, next seq=" << next_seq_ << ", " << dropped_ << " dropped, "
                         << coalesced_ << " coalesced, " << lost_ << " lost so far";
    }
  }
  if (!usable) {
    // Memory only, in an epoch nobody can resume: a later start cannot hand out these seqs
    // again in a stream the cloud knows. What is in the store stays there for that start.
    memory_epoch_ = true;
    degraded_ = true;
    epoch_ = new_epoch();
    index_.clear();
    mem_.clear();
    latest_by_device_.clear();
    count_ = 0;
    bytes_ = 0;
    if (next_seq_ < 1) next_seq_ = 1;
    // A previous run's held count stays in the held file (this run cannot keep it in the
    // store), carried with what this run holds, until a start can.
    if (!held_counted) lost_ += held_before.count;
    held_carried_ = held_before.count;
    held_hint_ = held_written_ = held_before.count;
    health_ = "outbox not durable (memory only until restart): " + store_->error();
    LOG_ERROR("outbox") << "cannot use " << path_ << " (" << store_->error()
                        << "); keeping statuses in memory only, bounded, in a new stream epoch=" << epoch_
                        << " until the next start";
  }
  waiting_hint_ = count_;
  if (!memory_epoch_ && next_seq_ + kReserveBlock / 2 > reserved_) {
    reserved_ += kReserveBlock;
    enqueue(Op(Op::reserve, reserved_));
  }
  writer_ = std::thread([this] { writer_main(); });
}

DurableOutbox::~DurableOutbox() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
  alive_.reset();  // after the join (the writer reads it): answers posted and not run yet are dropped
  if (held_fd_ >= 0) ::close(held_fd_);
}

uint32_t DurableOutbox::device_index(const std::string& device) {
  auto it = device_ids_.find(device);
  if (it != device_ids_.end()) return it->second;
  uint32_t slot;
  if (!free_devices_.empty()) {
    slot = free_devices_.back();
    free_devices_.pop_back();
    devices_[slot] = device;
  } else {
    slot = static_cast<uint32_t>(devices_.size());
    devices_.push_back(device);
    device_refs_.push_back(0);
  }
  device_ids_.emplace(device, slot);
  return slot;
}

// A device whose last entry left the index leaves the device table: the table holds the
// devices with something waiting, not every device ever seen.
void DurableOutbox::release_device(uint32_t device) {
  if (--device_refs_[device] > 0) return;
  latest_by_device_.erase(device);
  device_ids_.erase(devices_[device]);
  devices_[device].clear();
  devices_[device].shrink_to_fit();
  free_devices_.push_back(device);
}

DurableOutbox::Entry* DurableOutbox::find_entry(uint64_t seq) {
  auto it = std::lower_bound(index_.begin(), index_.end(), seq, [](const Entry& e, uint64_t s) { return e.seq < s; });
  return it != index_.end() && it->seq == seq ? &*it : nullptr;
}

void DurableOutbox::enqueue(Op op) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The writer waits for a first change, then (group mode) for a full group or a read:
    // woken only for those, not once per status (each wake-up is a futex call and a thread
    // switch, more than the status itself costs).
    wake = ops_.empty() || ops_.size() + 1 >= config_.commit_max_items || op.kind == Op::load;
    ops_.push_back(std::move(op));
  }
  if (wake) wake_.notify_one();
}

void DurableOutbox::store_op(Op op) {
  if (!memory_epoch_) enqueue(std::move(op));
}

uint64_t DurableOutbox::sendable_below() const {
  if (memory_epoch_) return UINT64_MAX;  // an epoch nobody can resume: every seq is unique
  // Also while the disk fails: a seq above the reservation on disk could be handed out
  // again by the next start, in the same epoch.
  if (degraded_) return durable_reserved_;
  if (config_.durability == config::Durability::sync) return std::min(committed_upto_ + 1, durable_reserved_);
  return durable_reserved_;
}

uint64_t DurableOutbox::append(const std::string& device, const Json& state, int64_t ts) {
  // Encoded once here: the size, the disk and the cloud's frames all take this text.
  OutboxItem item{next_seq_++, device, encode_state(state), ts};
  uint32_t bytes = size_of(device, item.state_text);
  if (count_ + 1 > config_.max_items || bytes_ + bytes > config_.max_bytes) {
    make_room(item, bytes, device_index(device));
    bytes = size_of(device, item.state_text);
  }
  compact_index();
  const uint32_t dev = device_index(device);  // after make_room: it may have freed the slot
  ++device_refs_[dev];
  index_.push_back(Entry{item.seq, bytes, dev, false});
  latest_by_device_[dev] = item.seq;
  ++count_;
  ++held_;
  bytes_ += bytes;
  waiting_hint_ = count_;
  // Without a working disk nothing can be read back: keep everything in memory then.
  const size_t mem_limit = memory_epoch_ ? config_.max_items : config_.memory_items;
  if (!spilled_ && mem_.size() < mem_limit) {
    mem_.push_back(item);
  } else if (!spilled_) {
    spilled_ = true;
    mem_upto_ = mem_.empty() ? acked_ : mem_.back().seq;
  }
  if (!memory_epoch_ && next_seq_ + kReserveBlock / 2 > reserved_) {
    reserved_ += kReserveBlock;
    enqueue(Op(Op::reserve, reserved_));
  }
  store_op(Op(std::move(item)));
  update_held();
  return next_seq_ - 1;
}

// When full: first coalesce (the device's previous waiting status is folded into
// this one, counted), then drop the oldest until there is room.
void DurableOutbox::make_room(OutboxItem& incoming, uint32_t incoming_bytes, uint32_t device) {
  auto latest = latest_by_device_.find(device);
  if (latest != latest_by_device_.end()) {
    Entry* old = find_entry(latest->second);
    if (old && !old->removed) {
      auto in_mem = std::lower_bound(mem_.begin(), mem_.end(), old->seq,
                                     [](const OutboxItem& i, uint64_t s) { return i.seq < s; });
      if (in_mem != mem_.end() && in_mem->seq == old->seq) {
        // Rare (only when full): the two texts are parsed back to merge them.
        Json merged = Json::parse(in_mem->state_text, nullptr, false);
        const Json newer = Json::parse(incoming.state_text, nullptr, false);
        if (!merged.is_object()) merged = Json::object();
        if (newer.is_object()) {
          for (const auto& [k, v] : newer.items()) merged[k] = v;
        }
        incoming.state_text = encode_state(merged);
        mem_.erase(in_mem);
        store_op(Op(Op::remove, old->seq));
      } else {
        // Both on disk only: the writer folds the older row into the newer one.
        Op op(Op::merge, old->seq);
        op.into = incoming.seq;
        // Queued after the insert of `incoming`, which append() queues once room is made.
        loop_.post(alive_, [this, op]() mutable { store_op(std::move(op)); });
      }
      old->removed = true;
      --count_;
      leave_held(*old);
      bytes_ -= old->bytes;
      ++coalesced_;
      store_op(Op(Op::coalesced, coalesced_));
      if (power_of_two(coalesced_)) {  // 1, 2, 4, 8, ...: counted always, logged with backoff
        LOG_WARN("outbox") << "full (" << config_.max_items << " statuses / " << config_.max_bytes
                           << " bytes): folded device=" << devices_[device] << " seq=" << old->seq
                           << " into its newer state, " << coalesced_ << " coalesced so far";
      }
    }
  }
  while ((count_ + 1 > config_.max_items || bytes_ + incoming_bytes > config_.max_bytes) && count_ > 0) drop_oldest();
}

// Removed entries at the front are popped: nothing needs them any more, and dropping the
// oldest stays O(1) over a long outage instead of rescanning a removed prefix.
void DurableOutbox::pop_removed_front() {
  while (!index_.empty() && index_.front().removed) {
    const uint32_t device = index_.front().device;
    const uint64_t seq = index_.front().seq;
    auto latest = latest_by_device_.find(device);
    if (latest != latest_by_device_.end() && latest->second == seq) latest_by_device_.erase(latest);
    index_.pop_front();
    release_device(device);
  }
}

// Coalesced entries sit behind live ones; once they are the larger part of the index they
// go in one pass (amortised O(1) per status), so that the index stays within the bounds.
void DurableOutbox::compact_index() {
  if (index_.size() <= 2 * count_ + 64) return;
  std::deque<Entry> live;
  for (const Entry& e : index_) {
    if (!e.removed) {
      live.push_back(e);
      continue;
    }
    auto latest = latest_by_device_.find(e.device);
    if (latest != latest_by_device_.end() && latest->second == e.seq) latest_by_device_.erase(latest);
    release_device(e.device);
  }
  index_.swap(live);
}

void DurableOutbox::drop_oldest() {
  pop_removed_front();
  if (index_.empty()) return;
  Entry& e = index_.front();
  e.removed = true;
  --count_;
  leave_held(e);
  bytes_ -= e.bytes;
  if (!mem_.empty() && mem_.front().seq == e.seq) mem_.pop_front();
  ++dropped_;
  store_op(Op(Op::remove, e.seq));
  store_op(Op(Op::dropped, dropped_));
  if (power_of_two(dropped_)) {  // 1, 2, 4, 8, ...: a flood does not flood the log
    LOG_WARN("outbox") << "full (" << config_.max_items << " statuses / " << config_.max_bytes
                       << " bytes): dropped device=" << devices_[e.device] << " seq=" << e.seq << ", " << dropped_
                       << " dropped so far";
  }
  pop_removed_front();
  waiting_hint_ = count_;
}

void DurableOutbox::drop(uint64_t seq) {
  Entry* e = find_entry(seq);
  if (!e || e->removed) return;
  e->removed = true;
  --count_;
  leave_held(*e);
  bytes_ -= e->bytes;
  auto in_mem = std::lower_bound(mem_.begin(), mem_.end(), seq, [](const OutboxItem& i, uint64_t s) { return i.seq < s; });
  if (in_mem != mem_.end() && in_mem->seq == seq) mem_.erase(in_mem);
  ++dropped_;
  LOG_ERROR("outbox") << "device=" << devices_[e->device] << " seq=" << seq
                      << " dropped: it can never be sent within the cloud's limits; " << dropped_
                      << " dropped so far";
  store_op(Op(Op::remove, seq));
  store_op(Op(Op::dropped, dropped_));
  pop_removed_front();
  waiting_hint_ = count_;
  update_held();
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
  if (loading_ || memory_epoch_) return;
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
      leave_held(e);
      bytes_ -= e.bytes;
    }
    const uint32_t device = e.device;
    auto latest = latest_by_device_.find(device);
    if (latest != latest_by_device_.end() && latest->second == e.seq) latest_by_device_.erase(latest);
    index_.pop_front();
    release_device(device);
  }
  pop_removed_front();
  while (!mem_.empty() && mem_.front().seq <= seq) mem_.pop_front();
  if (index_.empty()) spilled_ = false;
  waiting_hint_ = count_;
  store_op(Op(Op::ack, seq));
  update_held();
}

void DurableOutbox::committed_through(uint64_t seq) {
  auto it = std::upper_bound(index_.begin(), index_.end(), committed_upto_,
                             [](uint64_t s, const Entry& e) { return s < e.seq; });
  for (; it != index_.end() && it->seq <= seq; ++it) {
    if (!it->removed) --held_;
  }
  committed_upto_ = seq;
}

void DurableOutbox::update_held() {
  const uint64_t hint = held_carried_ + (degraded_ ? held_ : 0);
  if (hint == held_hint_.load()) return;
  held_hint_ = hint;
  { std::lock_guard<std::mutex> lock(mutex_); }  // the writer is waiting or will see it
  wake_.notify_one();
}

std::vector<std::string> DurableOutbox::waiting_devices() const {
  std::vector<std::string> out;
  out.reserve(latest_by_device_.size());
  for (const auto& [device, seq] : latest_by_device_) out.push_back(devices_[device]);
  return out;
}

void DurableOutbox::remember_command(const std::string& id, int64_t until_ms) {
  Op op(Op::command);
  op.id = id;
  op.ts = until_ms;
  enqueue(std::move(op));
}

void DurableOutbox::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.notify_one();
  idle_.wait(lock, [this] { return ops_.empty() && !writer_busy_; });
}

// ---- writer thread ------------------------------------------------------------

namespace {

// Changes that wait for a failing disk are folded together, so that the list stays within
// the outbox's own bounds however long the disk fails: counters and the reservation keep
// their last value, acknowledged statuses are forgotten, an insert and its removal cancel
// out, and command ids past their time go.
template <class OpT>
void compact(std::vector<OpT>& ops, int64_t forget_before) {
  uint64_t ack = 0;
  std::unordered_map<uint64_t, size_t> inserted;  // seq -> index in ops
  std::vector<bool> keep(ops.size(), true);
  std::unordered_map<int, size_t> latest;  // kind -> index of its highest value
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& op = ops[i];
    switch (op.kind) {
      case OpT::ack:
      case OpT::reserve:
      case OpT::dropped:
      case OpT::coalesced: {
        if (op.kind == OpT::ack) ack = std::max(ack, op.seq);
        auto [it, fresh] = latest.emplace(op.kind, i);
        if (!fresh) {
          const bool higher = op.seq >= ops[it->second].seq;
          keep[higher ? it->second : i] = false;
          if (higher) it->second = i;
        }
        break;
      }
      case OpT::insert: inserted[op.item.seq] = i; break;
      case OpT::remove: {
        auto it = inserted.find(op.seq);
        if (it != inserted.end()) {  // never reached the disk: neither needs to
          keep[it->second] = false;
          keep[i] = false;
        }
        break;
      }
      case OpT::command: keep[i] = op.ts >= forget_before; break;
      default: break;
    }
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto& op = ops[i];
    if ((op.kind == OpT::insert && op.item.seq <= ack) || (op.kind == OpT::remove && op.seq <= ack) ||
        (op.kind == OpT::merge && op.into <= ack)) {
      keep[i] = false;
    }
  }
  size_t out = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!keep[i]) continue;
    // Never onto itself: a self-move empties a std::string (libstdc++), and the statuses
    // and command ids that waited for the disk were written with an empty device and id.
    if (out != i) ops[out] = std::move(ops[i]);
    ++out;
  }
  ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(out), ops.end());
}

}  // namespace

void DurableOutbox::write_held() {
  const uint64_t held = held_hint_.load();
  if (held == held_written_) return;
  held_written_ = held;
  if (held_fd_ >= 0) write_held_record(held_fd_, held, epoch_);  // in place: no new blocks
}

void DurableOutbox::write_side_file(bool sync) {
  write_side(side_path_, SideFile{epoch_, side_reserved_, waiting_hint_.load(), lost_}, sync);
}

void DurableOutbox::writer_main() {
  const auto interval = std::chrono::milliseconds(
      config_.durability == config::Durability::sync ? 0 : config_.commit_interval_ms);
  std::vector<Op> failed;  // changes the disk refused, retried with the next (compacted)
  auto side_written = std::chrono::steady_clock::now();
  auto retry_at = side_written;
  bool stop = false;
  const auto held_due = [this] { return held_hint_.load() != held_written_; };
  while (!stop) {
    std::vector<Op> ops;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      writer_busy_ = false;
      idle_.notify_all();
      const bool side_due = !memory_epoch_ && waiting_hint_.load() != side_waiting_;
      if (!failed.empty()) {
        // The disk is retried every kRetryDelay; meanwhile only the held file is written.
        wake_.wait_until(lock, retry_at, [&] { return stopping_ || held_due(); });
        if (!stopping_ && std::chrono::steady_clock::now() < retry_at) {
          lock.unlock();
          write_held();
          continue;
        }
      } else if (side_due) {  // the side file's count is behind: written within a second
        wake_.wait_until(lock, side_written + kSideFileEvery,
                         [&] { return !ops_.empty() || stopping_ || held_due(); });
      } else {
        wake_.wait(lock, [&] { return !ops_.empty() || stopping_ || held_due(); });
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
    write_held();
    if (memory_epoch_ && ops.empty() && !stop) continue;  // woken for the held file only
    const int64_t forget_before = SystemClock::instance().wall_ms();
    if (!failed.empty()) {
      failed.insert(failed.end(), std::make_move_iterator(ops.begin()), std::make_move_iterator(ops.end()));
      ops.swap(failed);
      failed.clear();
      compact(ops, forget_before);
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
        case Op::coalesced: batch.coalesced = op.seq; break;
        case Op::command: batch.commands.emplace_back(op.id, op.ts); break;
        case Op::load: loads.push_back(std::move(op)); break;
      }
    }
    batch.merges = std::move(merges);
    if (!batch.commands.empty()) batch.forget_commands_before = forget_before;
    std::string error;
    const bool ok = store_->is_open() && store_->commit(batch);
    if (!ok) {
      error = store_->is_open() ? store_->error() : "cannot open: " + store_->error();
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
      if (batch.coalesced) failed.push_back(Op(Op::coalesced, *batch.coalesced));
      for (auto& [id, until] : batch.commands) {
        Op op(Op::command);
        op.id = std::move(id);
        op.ts = until;
        failed.push_back(std::move(op));
      }
      committed = 0;
      reserved = 0;
      retry_at = std::chrono::steady_clock::now() + kRetryDelay;
    }
    pending_ops_ = failed.size();
    if (stop && ok && failed.empty() && !memory_epoch_) {
      // The last commit at shutdown took everything: nothing is held in memory only now.
      held_hint_ = held_carried_;
      write_held();
    }
    // The side file: at once (synced) for a new reservation, else at most once a second when
    // the number waiting changed. Not for a memory-only epoch: the store is not its.
    if (ok && !memory_epoch_) {
      const auto now = std::chrono::steady_clock::now();
      if (reserved > side_reserved_) {
        side_reserved_ = reserved;
        side_waiting_ = waiting_hint_.load();
        write_side_file(true);
        side_written = now;
      } else if ((stop || now - side_written >= kSideFileEvery) && waiting_hint_.load() != side_waiting_) {
        side_waiting_ = waiting_hint_.load();
        write_side_file(false);
        side_written = now;
      }
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
    loop_.post(alive_, [this, committed, reserved, error, loaded = std::move(loaded), load_head, load_short, answered]() mutable {
      writer_done(committed, reserved, std::move(error), std::move(loaded), answered ? load_head : 0, load_short);
    });
  }
}

void DurableOutbox::writer_done(uint64_t committed_upto, uint64_t reserved, std::string error,
                                std::vector<OutboxItem> loaded, uint64_t load_head, bool load_was_short) {
  bool more = false;
  if (!error.empty()) {
    if (!degraded_ || (!memory_epoch_ && health_ != "outbox not durable: " + error)) {
      LOG_ERROR("outbox") << "cannot write " << path_ << " (" << error
                          << "); keeping statuses in memory, bounded, and retrying";
    }
    degraded_ = true;
    if (!memory_epoch_) health_ = "outbox not durable: " + error;
    more = true;
  } else if (degraded_ && !memory_epoch_ && (committed_upto || reserved)) {
    degraded_ = false;
    health_.clear();
    LOG_INFO("outbox") << path_ << " works again; statuses are durable again";
  }
  if (committed_upto > committed_upto_) {
    committed_through(committed_upto);
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
  update_held();
  if (more && on_available_) on_available_();
}

}  // namespace flatlink::gateway
