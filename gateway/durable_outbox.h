// The durable outbox: statuses wait here, on disk (SQLite, WAL), until the cloud
// acknowledges them. The loop thread keeps an index of every waiting status and
// the oldest ones in memory for sending; a writer thread commits to disk in
// groups (or each status, in sync mode) and reads spilled statuses back. Nothing
// here blocks the loop.
//
// Streams and epochs (docs/reliability.md): sequence numbers are unique within the
// store's epoch, a random 128-bit id drawn when the store is created and kept in it and
// in a side file beside it (<path>.epoch). Blocks of seqs are reserved on disk ahead of
// use, and a status is sent only below a reservation that is on disk, also while the
// disk fails. A store found new, emptied, replaced, rolled back or damaged (a damaged
// file is moved aside, never deleted) starts a new epoch, and what the side file said
// was waiting is counted as lost(). If no reservation can be committed at start, the
// outbox runs memory-only in an epoch of its own until the next start: nothing of it
// can be resumed, so no seq can be reused. If the disk fails while running, the
// outbox says so in health(), keeps its bounds, and keeps retrying; its pending disk
// work is compacted so that it stays within the outbox's own bounds. While the disk fails
// (or memory-only), how many waiting statuses live in memory only is written in place into
// a small file preallocated while the disk had room (<path>.held): a start after a crash
// in that state counts them as lost().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "gateway/outbox.h"
#include "gateway/outbox_store.h"

namespace flatlink::gateway {

class DurableOutbox final : public Outbox {
 public:
  // Opens (or creates) the database at path; never fails: a broken database
  // leaves the outbox in memory-only mode, said in health().
  DurableOutbox(EventLoop& loop, const config::OutboxConfig& config, std::string path);
  // Commits what is pending and stops the writer.
  ~DurableOutbox() override;

  uint64_t append(const std::string& device, const Json& state, int64_t ts) override;
  std::vector<OutboxItem> read_after(uint64_t after, size_t max) override;
  void ack(uint64_t seq) override;
  uint64_t next_seq() const override { return next_seq_; }
  size_t size() const override { return count_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t dropped() const override { return dropped_; }
  uint64_t coalesced() const override { return coalesced_; }
  uint64_t lost() const override { return lost_; }
  const std::string& epoch() const override { return epoch_; }
  void drop(uint64_t seq) override;
  // True when this process runs memory-only in an epoch of its own (no store at start).
  bool memory_only() const { return memory_epoch_; }
  // Changes waiting for the disk, the writer's retry list included (bounded; tests).
  size_t pending_ops() const { return pending_ops_.load(); }
  // Entries in the in-memory index, removed ones included (bounded; tests).
  size_t index_entries() const { return index_.size(); }
  // Devices the index knows (shrinks when their statuses leave; tests).
  size_t known_devices() const { return device_ids_.size(); }
  void on_available(std::function<void()> handler) override { on_available_ = std::move(handler); }
  std::string health() const override { return health_; }
  std::vector<std::string> waiting_devices() const override;

  // Command ids remembered across restarts (the executor's at-most-once memory), with the
  // wall ms until which each must be remembered, oldest first.
  const std::vector<std::pair<std::string, int64_t>>& recent_commands() const { return recent_commands_; }
  // Remember id until until_ms (wall); forgotten on disk after that.
  void remember_command(const std::string& id, int64_t until_ms);

  // Blocks until everything handed to the writer so far is committed (tests, shutdown).
  void flush();

 private:
  struct Op;
  struct Entry {
    uint64_t seq;
    uint32_t bytes;
    uint32_t device;  // index into devices_
    bool removed;     // coalesced or dropped; leaves the index when acknowledged
  };

  // Statuses waiting above committed_upto_ are in memory only; one leaves that count when
  // it is committed, acknowledged, coalesced or dropped.
  void leave_held(const Entry& e) {
    if (e.seq > committed_upto_) --held_;
  }
  void committed_through(uint64_t seq);
  // Hands the writer the count for <path>.held when it changed (only while degraded).
  void update_held();
  void write_held();  // writer thread

  void enqueue(Op op);
  void writer_main();
  void store_op(Op op);  // a change for the disk, unless memory-only
  void release_device(uint32_t device);
  void pop_removed_front();
  void compact_index();
  void write_side_file(bool sync);
  void writer_done(uint64_t committed_upto, uint64_t reserved, std::string error, std::vector<OutboxItem> loaded,
                   uint64_t load_head, bool load_was_short);
  uint32_t device_index(const std::string& device);
  Entry* find_entry(uint64_t seq);
  void make_room(OutboxItem& incoming, uint32_t incoming_bytes, uint32_t device);
  void drop_oldest();
  void request_load();
  uint64_t sendable_below() const;

  EventLoop& loop_;
  config::OutboxConfig config_;
  std::string path_;
  std::string side_path_;
  int held_fd_ = -1;  // <path>.held, preallocated; the writer writes it in place

  // Loop thread.
  std::deque<Entry> index_;
  std::deque<OutboxItem> mem_;
  bool spilled_ = false;          // statuses after the last one in mem_ wait on disk only
  uint64_t mem_upto_ = 0;         // when spilled: every waiting status <= this is in mem_
  bool loading_ = false;
  std::vector<std::string> devices_;
  std::unordered_map<std::string, uint32_t> device_ids_;
  std::vector<uint32_t> device_refs_;   // index entries per device
  std::vector<uint32_t> free_devices_;  // slots of devices_ free for reuse
  std::unordered_map<uint32_t, uint64_t> latest_by_device_;
  uint64_t next_seq_ = 1;
  uint64_t acked_ = 0;
  uint64_t reserved_ = 0;          // asked of the writer
  uint64_t durable_reserved_ = 0;  // committed: seqs below may be sent
  uint64_t committed_upto_ = 0;    // sync mode: statuses up to here are on disk
  size_t count_ = 0;
  uint64_t bytes_ = 0;
  uint64_t dropped_ = 0;
  uint64_t coalesced_ = 0;
  uint64_t lost_ = 0;
  uint64_t held_ = 0;          // waiting statuses not committed to disk (see leave_held)
  uint64_t held_carried_ = 0;  // a previous start's count, not yet kept in the store's lost
  std::string epoch_;
  bool memory_epoch_ = false;
  bool degraded_ = false;
  std::string health_;
  std::function<void()> on_available_;
  std::vector<std::pair<std::string, int64_t>> recent_commands_;

  // Shared with the writer thread.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::vector<Op> ops_;
  bool stopping_ = false;
  bool writer_busy_ = false;
  std::unique_ptr<OutboxStore> store_;  // the writer's once it runs
  std::atomic<uint64_t> waiting_hint_{0};  // count_, for the side file
  std::atomic<size_t> pending_ops_{0};
  std::atomic<uint64_t> held_hint_{0};     // what <path>.held should say
  uint64_t held_written_ = 0;              // writer: what it says
  uint64_t side_reserved_ = 0;             // writer: the reservation the side file holds
  uint64_t side_waiting_ = 0;              // writer: the count of waiting statuses it holds
  std::thread writer_;
  // The writer's answers are posted with this token: one the loop runs after the outbox is
  // gone (a test's next outbox on the same loop) is dropped, never run on a destroyed object.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace flatlink::gateway
