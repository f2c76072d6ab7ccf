// The one event loop of a process: libwebsockets' own loop, with timers, a
// thread-safe hand-over queue and signal-driven graceful shutdown.
//
// Everything here runs on the thread that calls run(), except post() and
// request_stop(), which any thread (and request_stop() a signal handler) may call.
#pragma once

#include <libwebsockets.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace flatlink {

// An event library's loop that lws runs on instead of its own poll() loop: the cloud's
// libuv loop (common/uv_loop.h: epoll, so that the cost of an event does not grow with the
// number of links). Kept behind this interface so that the gateway, with its few sockets,
// does not link libuv.
class ForeignLoop {
 public:
  virtual ~ForeignLoop() = default;
  virtual const char* name() const = 0;
  // The lws_context_creation_info option that selects it (LWS_SERVER_OPTION_LIBUV, ...).
  virtual uint64_t lws_option() const = 0;
  // The loop object lws is given in info.foreign_loops.
  virtual void* native() = 0;
  // Blocks until at least one event was handled (lws wakes it with lws_cancel_service).
  virtual void run_once() = 0;
  // Runs the loop until no handle is active (lws' closes after lws_context_destroy).
  virtual void drain() = 0;
  // After lws_context_destroy: drains the loop, then closes it.
  virtual void close() = 0;
};

class EventLoop {
 public:
  struct Options {
    // The owner's protocols (no terminating entry). Their callbacks find their
    // object through lws_protocols::user.
    std::vector<lws_protocols> protocols;
    // Adjusts the context before it is created: listening port, TLS, limits.
    std::function<void(lws_context_creation_info&)> tune;
    // Run on this event library's loop; empty, or when lws cannot use it (its plugin, e.g.
    // Debian's libwebsockets-evlib-uv, missing): lws' own poll() loop.
    std::unique_ptr<ForeignLoop> foreign;
  };

  explicit EventLoop(Options options);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  bool ok() const { return context_ != nullptr; }
  // "libuv" or "poll": what the loop runs on.
  const char* backend() const { return foreign_ ? foreign_->name() : "poll"; }
  lws_context* context() const { return context_; }
  lws_vhost* vhost() const;

  // Services events until quit(); may be called again after. Returns 0, or 1 if the loop failed.
  int run();
  // Leave run() after the current iteration.
  void quit();
  // Ask for a graceful stop: the on_stop handler runs on the loop thread, and the
  // owner calls quit() when its links are closed; after grace_ms the loop quits anyway.
  // Async-signal-safe.
  void request_stop();
  void on_stop(std::function<void()> handler, uint32_t grace_ms = 3000) {
    on_stop_ = std::move(handler);
    stop_grace_ms_ = grace_ms;
  }
  bool stopping() const { return stop_started_; }
  // SIGINT and SIGTERM call request_stop() on this loop; SIGPIPE is ignored.
  void install_signal_handlers();
  // Runs handler on the loop thread after signo (below 64; SIGHUP for a reload,
  // say) arrives. Installs the signal's handler; call before run(), loop thread.
  void on_signal(int signo, std::function<void()> handler);

  // Runs fn on the loop thread soon. Safe from any thread.
  void post(std::function<void()> fn);
  // The same, but only if `alive` (a token its target owns: a shared_ptr held by the object
  // fn would reach) still exists when fn is about to run: a worker thread's answer never
  // reaches an object destroyed meanwhile. The token is checked on the loop thread, where
  // the target is destroyed, so nothing can destroy it between the check and the call.
  void post(std::weak_ptr<const void> alive, std::function<void()> fn);

  // Destroys the lws context now: every link is closed (their CLOSED callbacks still reach
  // their owners) and timers that outlive it do nothing. For a main that must destroy its
  // server after the loop stops but before the loop object goes (cloud-server/main.cpp).
  void shutdown();

 private:
  friend class Timer;
  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  void drain_posted();
  void begin_stop();
  void dispatch_signals();

  std::vector<lws_protocols> protocols_;
  std::unique_ptr<ForeignLoop> foreign_;
  lws_context* context_ = nullptr;
  // On a foreign loop: the context until lws has freed it (info.pcontext; lws writes null).
  lws_context* foreign_context_ = nullptr;
  std::atomic<bool> stop_requested_{false};
  bool stop_started_ = false;
  bool quit_ = false;
  std::function<void()> on_stop_;
  uint32_t stop_grace_ms_ = 3000;
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::pair<int, std::function<void()>>> signal_handlers_;
  struct StopSul {
    lws_sorted_usec_list_t sul;  // first member: the callback casts back
    EventLoop* owner;
  } stop_deadline_{};
};

// Calls back on the loop thread when a file descriptor (a serial port, a pipe,
// another library's socket) is readable or writable, or hung up. The watch uses
// a duplicate of fd: the caller keeps owning and closing its own fd, and may do
// so right after destroying the watch.
class FdWatch {
 public:
  enum Event { readable = 1, writable = 2, hangup = 4 };
  FdWatch(EventLoop& loop, int fd, std::function<void(int events)> fn);
  ~FdWatch();
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  bool ok() const { return wsi_ != nullptr; }
  // Ask for one `writable` callback (when the fd can take more bytes).
  void want_write();

 private:
  friend class EventLoop;
  void detach();
  EventLoop& loop_;
  std::function<void(int)> fn_;
  lws* wsi_ = nullptr;
};

// A one-shot timer on the loop. Restartable; cancelled when destroyed. The loop holds
// the callback while it runs (Redis' ae.c): the callback may destroy or restart its own
// timer. After EventLoop::shutdown() start and cancel do nothing.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> fn);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(uint32_t delay_ms);
  void cancel();
  bool active() const { return active_; }

 private:
  struct Sul {
    lws_sorted_usec_list_t sul;  // first member: the callback casts back to Sul
    Timer* owner;
  };
  static void fire(lws_sorted_usec_list_t* sul);

  EventLoop& loop_;
  std::function<void()> fn_;
  Sul sul_{};
  bool active_ = false;
  bool* destroyed_ = nullptr;  // while the callback runs: set when the timer is destroyed in it
};

}  // namespace flatlink
