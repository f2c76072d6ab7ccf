// libwebsockets' loop wrapped for the daemons: timers, posted work, graceful stop.
#include "common/event_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "common/log.h"

namespace flatlink {
namespace {

constexpr const char* kLoopProtocol = "flatlink-loop";
std::atomic<EventLoop*> g_signal_loop{nullptr};

void on_stop_signal(int) {
  if (EventLoop* loop = g_signal_loop.load()) loop->request_stop();
}

// Signals registered with on_signal() that arrived and await their handler, one bit each.
std::atomic<uint64_t> g_pending_signals{0};
std::atomic<lws_context*> g_signal_context{nullptr};

void on_handled_signal(int signo) {
  g_pending_signals.fetch_or(uint64_t{1} << signo);
  if (lws_context* context = g_signal_context.load()) lws_cancel_service(context);
}

}  // namespace

EventLoop::EventLoop(Options options) {
  protocols_ = std::move(options.protocols);
  lws_protocols own{};
  own.name = kLoopProtocol;
  own.callback = &EventLoop::callback;
  own.user = this;
  protocols_.push_back(own);
  protocols_.push_back(lws_protocols{});  // terminator

  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols_.data();
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.user = this;
  info.gid = -1;
  info.uid = -1;
  if (options.tune) options.tune(info);
  log::route_lws_logs();
  if (options.foreign) {
    void* loops[1] = {options.foreign->native()};
    lws_context_creation_info on_foreign = info;
    on_foreign.options |= options.foreign->lws_option();
    on_foreign.foreign_loops = loops;
    on_foreign.pcontext = &foreign_context_;
    context_ = lws_create_context(&on_foreign);
    if (context_) {
      foreign_context_ = context_;
      foreign_ = std::move(options.foreign);
    } else {
      options.foreign->close();
      LOG_WARN("loop") << "libwebsockets cannot run on " << options.foreign->name()
                       << " (its event library plugin not installed?); using its own poll() loop";
    }
  }
  if (!context_) context_ = lws_create_context(&info);
  if (!context_) LOG_ERROR("loop") << "could not create the libwebsockets context (port in use? bad TLS files?)";
}

EventLoop::~EventLoop() {
  if (g_signal_loop.load() == this) g_signal_loop.store(nullptr);
  shutdown();
}

void EventLoop::shutdown() {
  if (g_signal_context.load() == context_) g_signal_context.store(nullptr);
  if (!context_) return;
  lws_sul_cancel(&stop_deadline_.sul);
  // Still set while lws closes the links: their owners' timers cancel normally in there.
  lws_context_destroy(context_);
  context_ = nullptr;
  if (!foreign_) return;
  // On a foreign loop lws closes its handles asynchronously and may leave the loop run dry
  // with the context (its vhosts' TLS contexts, its fd table) not yet freed (seen with
  // LeakSanitizer on lws 4.1.6): another lws_context_destroy takes its next stage (lws'
  // context.c: destroy2, destroy3). A few rounds at most; lws writes null into
  // foreign_context_ when it has freed it.
  for (int round = 0; foreign_context_ && round < 4; ++round) {
    foreign_->drain();
    if (foreign_context_) lws_context_destroy(foreign_context_);
  }
  if (foreign_context_) LOG_WARN("loop") << "libwebsockets did not finish destroying its context on " << foreign_->name();
  foreign_->close();
}

lws_vhost* EventLoop::vhost() const {
  return context_ ? lws_get_vhost_by_name(context_, "default") : nullptr;
}

int EventLoop::run() {
  if (!context_) return 1;
  quit_ = false;
  while (!quit_) {
    if (stop_requested_.load() && !stop_started_) begin_stop();
    if (quit_) break;
    if (foreign_) {
      foreign_->run_once();
    } else if (lws_service(context_, 0) < 0) {
      LOG_ERROR("loop") << "libwebsockets service failed; leaving the loop";
      return 1;
    }
    drain_posted();
    dispatch_signals();
  }
  return 0;
}

void EventLoop::quit() {
  quit_ = true;
  // Timers fire inside lws_service() (or the foreign loop's run) before it polls: wake the
  // poll so that run() sees quit_ now.
  if (context_) lws_cancel_service(context_);
}

void EventLoop::request_stop() {
  stop_requested_.store(true);
  if (context_) lws_cancel_service(context_);
}

void EventLoop::begin_stop() {
  stop_started_ = true;
  if (!on_stop_) {
    quit_ = true;
    return;
  }
  stop_deadline_.owner = this;
  lws_sul_schedule(context_, 0, &stop_deadline_.sul,
                   [](lws_sorted_usec_list_t* sul) {
                     EventLoop* self = reinterpret_cast<StopSul*>(sul)->owner;
                     LOG_WARN("loop") << "graceful stop took longer than " << self->stop_grace_ms_
                                      << " ms; stopping anyway";
                     self->quit();
                   },
                   static_cast<lws_usec_t>(stop_grace_ms_) * LWS_US_PER_MS);
  on_stop_();
}

void EventLoop::install_signal_handlers() {
  g_signal_loop.store(this);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void EventLoop::on_signal(int signo, std::function<void()> handler) {
  if (signo <= 0 || signo >= 64) return;
  g_signal_context.store(context_);
  signal_handlers_.emplace_back(signo, std::move(handler));
  struct sigaction sa {};
  sa.sa_handler = on_handled_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(signo, &sa, nullptr);
}

void EventLoop::dispatch_signals() {
  if (g_pending_signals.load() == 0) return;
  const uint64_t pending = g_pending_signals.exchange(0);
  for (auto& [signo, handler] : signal_handlers_) {
    if (pending & (uint64_t{1} << signo)) handler();
  }
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  if (context_) lws_cancel_service(context_);
}

void EventLoop::post(std::weak_ptr<const void> alive, std::function<void()> fn) {
  post([alive = std::move(alive), fn = std::move(fn)] {
    if (alive.lock()) fn();
  });
}

void EventLoop::drain_posted() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    work.swap(posted_);
  }
  for (auto& fn : work) fn();
}

int EventLoop::callback(lws* wsi, lws_callback_reasons reason, void*, void*, size_t) {
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
      const lws_protocols* protocol = lws_get_protocol(wsi);
      if (protocol && protocol->user) static_cast<EventLoop*>(protocol->user)->drain_posted();
      return 0;
    }
    case LWS_CALLBACK_RAW_RX_FILE:
      if (auto* watch = static_cast<FdWatch*>(lws_get_opaque_user_data(wsi))) watch->fn_(FdWatch::readable);
      return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
      if (auto* watch = static_cast<FdWatch*>(lws_get_opaque_user_data(wsi))) watch->fn_(FdWatch::writable);
      return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
      // lws drops a descriptor that hung up or failed; tell the owner once.
      if (auto* watch = static_cast<FdWatch*>(lws_get_opaque_user_data(wsi))) {
        watch->wsi_ = nullptr;
        lws_set_opaque_user_data(wsi, nullptr);
        watch->fn_(FdWatch::hangup);
      }
      return 0;
    default:
      return 0;
  }
}

FdWatch::FdWatch(EventLoop& loop, int fd, std::function<void(int)> fn) : loop_(loop), fn_(std::move(fn)) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    LOG_ERROR("loop") << "cannot watch fd " << fd << ": " << std::strerror(errno);
    return;
  }
  lws_sock_file_fd_type desc{};
  desc.filefd = copy;
  wsi_ = lws_adopt_descriptor_vhost(loop_.vhost(), LWS_ADOPT_RAW_FILE_DESC, desc, kLoopProtocol, nullptr);
  if (!wsi_) {
    LOG_ERROR("loop") << "cannot watch fd " << fd << ": libwebsockets refused it";
    ::close(copy);
    return;
  }
  lws_set_opaque_user_data(wsi_, this);
}

FdWatch::~FdWatch() { detach(); }

void FdWatch::detach() {
  if (!wsi_) return;
  lws* wsi = wsi_;
  wsi_ = nullptr;
  lws_set_opaque_user_data(wsi, nullptr);
  // Closes the wsi and, with it, our duplicate of the fd.
  lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_SYNC);
}

void FdWatch::want_write() {
  if (wsi_) lws_callback_on_writable(wsi_);
}

Timer::Timer(EventLoop& loop, std::function<void()> fn) : loop_(loop), fn_(std::move(fn)) { sul_.owner = this; }

Timer::~Timer() {
  cancel();
  if (destroyed_) *destroyed_ = true;
}

void Timer::start(uint32_t delay_ms) {
  if (!loop_.context()) return;
  active_ = true;
  lws_sul_schedule(loop_.context(), 0, &sul_.sul, &Timer::fire, static_cast<lws_usec_t>(delay_ms) * LWS_US_PER_MS);
}

void Timer::cancel() {
  if (active_ && loop_.context()) lws_sul_cancel(&sul_.sul);
  active_ = false;
}

void Timer::fire(lws_sorted_usec_list_t* sul) {
  Timer* self = reinterpret_cast<Sul*>(sul)->owner;
  self->active_ = false;
  // The callback runs from a local: if it destroys its timer, what it captured lives on
  // until it returns. A move, not a copy: no allocation per firing.
  std::function<void()> fn = std::move(self->fn_);
  bool destroyed = false;
  self->destroyed_ = &destroyed;
  fn();
  if (destroyed) return;
  self->destroyed_ = nullptr;
  self->fn_ = std::move(fn);
}

}  // namespace flatlink
