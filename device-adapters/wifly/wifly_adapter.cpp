// The wifly adapter: modules reached over TCP (out and in), their devices'
// JSON lines, and commands confirmed by the device's echo.
#include "device-adapters/wifly/wifly_adapter.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "device-adapters/wifly/rfc6455_session.h"
#include "device-adapters/wifly/tcp_session.h"
#include "device-adapters/wifly/tcp_socket.h"

namespace flatlink::adapters::wifly {
namespace {
constexpr const char* kTag = "wifly";
constexpr int kAcceptsPerEvent = 32;
}  // namespace

struct WiflyAdapter::Device {
  config::WiflyDeviceConfig config;
  DeviceInfo info;
  Json state = Json::object();
  Session* session = nullptr;  // the connection that carries it now
  bool online = false;
};

// A module in TCP server mode: connect, keep the session, reconnect with backoff.
struct WiflyAdapter::Module {
  Module(WiflyAdapter& adapter, EventLoop& loop, const config::WiflyModuleConfig& c, BackoffPolicy policy)
      : config(c),
        backoff(policy),
        retry_timer(loop, [&adapter, this] { adapter.connect_module(*this); }),
        connect_timer(loop, [&adapter, this] { adapter.connect_timed_out(*this); }) {}
  config::WiflyModuleConfig config;
  int index = 0;
  Backoff backoff;
  Timer retry_timer;
  Timer connect_timer;
  int fd = -1;  // while the connect is under way
  std::unique_ptr<FdWatch> watch;
  Session* session = nullptr;
  std::string label() const { return config.host + ":" + std::to_string(config.port); }
};

namespace {
AdapterBase::Limits limits_of(const config::WiflyAdapterConfig& config) {
  AdapterBase::Limits limits;
  limits.command_timeout_ms = config.command_timeout_ms;
  return limits;
}
}  // namespace

WiflyAdapter::WiflyAdapter(config::WiflyAdapterConfig config, EventLoop& loop, AdapterHost& host, const Clock& clock)
    : AdapterBase(config.name, kTag, loop, host, clock, limits_of(config)),
      config_(std::move(config)),
      reaper_(loop, [this] { reap(); }) {
  for (const auto& dc : config_.devices) {
    auto device = std::make_unique<Device>();
    device->config = dc;
    device->info = describe_declared(dc);
    devices_.push_back(std::move(device));
  }
  BackoffPolicy policy;
  policy.base_ms = config_.backoff_base_ms;
  policy.max_ms = std::max(config_.backoff_max_ms, config_.backoff_base_ms);
  for (const auto& mc : config_.modules) {
    auto module = std::make_unique<Module>(*this, loop_, mc, policy);
    module->index = static_cast<int>(modules_.size());
    modules_.push_back(std::move(module));
  }
}

WiflyAdapter::~WiflyAdapter() { stop(); }

size_t WiflyAdapter::session_count() const {
  return static_cast<size_t>(std::count_if(sessions_.begin(), sessions_.end(), [](const auto& s) { return !s->dead; }));
}

WiflyAdapter::Device* WiflyAdapter::find(const std::string& id) {
  for (auto& device : devices_) {
    if (device->info.id == id) return device.get();
  }
  return nullptr;
}

const WiflyAdapter::Device* WiflyAdapter::find(const std::string& id) const {
  for (const auto& device : devices_) {
    if (device->info.id == id) return device.get();
  }
  return nullptr;
}

// ---------------------------------------------------------------- lifecycle

void WiflyAdapter::start() {
  if (running_) return;
  running_ = true;
  for (auto& device : devices_) {
    host_.device_added(device->info);
    host_.presence(device->info.id, false);
  }
  start_listener();
  for (auto& module : modules_) connect_module(*module);
  LOG_INFO(kTag) << "adapter=" << config_.name << " started with " << devices_.size() << " devices, "
                 << modules_.size() << " modules to connect to"
                 << (listen_watch_ ? ", listening on " + config_.listen.address + ":" + std::to_string(listen_port_)
                                   : std::string());
}

void WiflyAdapter::stop() {
  if (!running_) return;
  running_ = false;
  drop_commands();  // the core ends the commands still pending
  for (auto& device : devices_) device->session = nullptr;
  for (auto& session : sessions_) session->close();
  sessions_.clear();
  for (auto& module : modules_) {
    module->retry_timer.cancel();
    module->connect_timer.cancel();
    module->watch.reset();
    tcp::close_fd(module->fd);
    module->fd = -1;
    module->session = nullptr;
  }
  listen_watch_.reset();
  tcp::close_fd(listen_fd_);
  listen_fd_ = -1;
  destroy_now();
  reaper_.cancel();
  LOG_INFO(kTag) << "adapter=" << config_.name << " stopped";
}

void WiflyAdapter::schedule_reap() {
  if (!reaper_.active()) reaper_.start(0);
}

void WiflyAdapter::reap() {
  sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(), [](const auto& s) { return s->dead; }),
                  sessions_.end());
}

Session& WiflyAdapter::add_session(std::unique_ptr<Session> session) {
  sessions_.push_back(std::move(session));
  return *sessions_.back();
}

// ---------------------------------------------------------------- listener

void WiflyAdapter::start_listener() {
  if (!config_.listen.enabled) return;
  std::string error;
  listen_fd_ = tcp::listen_on(config_.listen.address, config_.listen.port, error);
  if (listen_fd_ < 0) {
    LOG_ERROR(kTag) << "adapter=" << config_.name << " cannot listen on " << config_.listen.address << ":"
                    << config_.listen.port << ": " << error
                    << " (is another program using the port? is the address one of this machine's?)";
    return;
  }
  listen_port_ = tcp::local_port(listen_fd_);
  listen_watch_ = std::make_unique<FdWatch>(loop_, listen_fd_, [this](int events) { on_listener_events(events); });
  if (!listen_watch_->ok()) {
    listen_watch_.reset();
    tcp::close_fd(listen_fd_);
    listen_fd_ = -1;
  }
}

void WiflyAdapter::on_listener_events(int events) {
  if (!running_ || !(events & FdWatch::readable)) return;
  for (int i = 0; i < kAcceptsPerEvent; ++i) {
    std::string peer, error;
    bool would_block = false;
    const int fd = tcp::accept_one(listen_fd_, peer, would_block, error);
    if (fd < 0) {
      if (!would_block) LOG_WARN(kTag) << "adapter=" << config_.name << " " << error;
      return;
    }
    const size_t incoming = static_cast<size_t>(std::count_if(
        sessions_.begin(), sessions_.end(), [](const auto& s) { return !s->dead && s->incoming; }));
    if (incoming >= config_.max_connections) {
      LOG_WARN(kTag) << "adapter=" << config_.name << " refused a connection from " << peer << ": already "
                     << incoming << " connections (max_connections)";
      tcp::close_fd(fd);
      continue;
    }
    TcpSession::Limits limits;
    limits.max_handshake_bytes = config_.max_handshake_bytes;
    limits.max_line_bytes = config_.max_line_bytes;
    limits.handshake_timeout_ms = config_.handshake_timeout_ms;
    limits.markers = {config_.marker_open, config_.marker_close, config_.marker_hello};
    LOG_DEBUG(kTag) << "adapter=" << config_.name << " connection from " << peer;
    auto& session = static_cast<TcpSession&>(
        add_session(std::make_unique<TcpSession>(loop_, *this, fd, peer, true, limits)));
    session.start();
  }
}

// ---------------------------------------------------------------- modules in TCP server mode

void WiflyAdapter::connect_module(Module& module) {
  if (!running_ || module.session || module.fd >= 0) return;
  bool in_progress = false;
  std::string error;
  const int fd = tcp::connect_to(module.config.host, module.config.port, in_progress, error);
  if (fd < 0) {
    retry_module(module, error);
    return;
  }
  if (!in_progress) {
    module_connected(module, fd);
    return;
  }
  module.fd = fd;
  module.watch = std::make_unique<FdWatch>(loop_, fd, [this, &module](int events) { on_connect_events(module, events); });
  if (!module.watch->ok()) {
    module.watch.reset();
    tcp::close_fd(fd);
    module.fd = -1;
    retry_module(module, "cannot watch the socket");
    return;
  }
  module.watch->want_write();
  module.connect_timer.start(config_.connect_timeout_ms);
}

void WiflyAdapter::connect_timed_out(Module& module) {
  if (module.fd < 0) return;
  destroy_later(std::move(module.watch));
  tcp::close_fd(module.fd);
  module.fd = -1;
  retry_module(module, "connect took longer than " + std::to_string(config_.connect_timeout_ms) + " ms");
}

void WiflyAdapter::on_connect_events(Module& module, int events) {
  if (!running_ || module.fd < 0 || !(events & (FdWatch::writable | FdWatch::hangup))) return;
  const int err = tcp::connect_result(module.fd);
  module.connect_timer.cancel();
  // Inside the watch's own callback: it is destroyed later, from the loop.
  destroy_later(std::move(module.watch));
  const int fd = module.fd;
  module.fd = -1;
  if (err != 0) {
    tcp::close_fd(fd);
    retry_module(module, std::strerror(err));
    return;
  }
  module_connected(module, fd);
}

void WiflyAdapter::module_connected(Module& module, int fd) {
  LOG_INFO(kTag) << "adapter=" << config_.name << " connected to module " << module.label();
  TcpSession::Limits limits;
  limits.max_line_bytes = config_.max_line_bytes;
  limits.markers = {config_.marker_open, config_.marker_close, config_.marker_hello};
  auto& session = static_cast<TcpSession&>(
      add_session(std::make_unique<TcpSession>(loop_, *this, fd, module.label(), false, limits)));
  session.module = module.index;
  module.session = &session;
  session.start();
}

void WiflyAdapter::retry_module(Module& module, const std::string& why) {
  if (!running_) return;
  const uint32_t delay = module.backoff.next_delay_ms();
  LOG_WARN(kTag) << "adapter=" << config_.name << " module " << module.label() << ": " << why << "; retrying in "
                 << delay << " ms (check that it is powered, joined to the Wi-Fi and in TCP server mode)";
  module.retry_timer.start(delay);
}

// ---------------------------------------------------------------- sessions

bool WiflyAdapter::bind(Session& session, Device& device, const char* how) {
  if (device.session == &session) return true;
  const bool pinned_elsewhere =
      session.incoming && !device.config.address.empty() && device.config.address != session.peer();
  if (pinned_elsewhere || device.session) {
    // A LAN peer cannot take a device over: not one pinned to another address, and not
    // one whose live connection carries it now (that connection keeps it until it closes).
    warn_bad_input("takeover:" + session.peer(),
                   "adapter=" + config_.name + " peer=" + session.peer() + " named device=" + device.info.id + " (" +
                       how + "), which " +
                       (pinned_elsewhere ? "is pinned to address " + device.config.address
                                         : "is connected from " + device.session->peer()) +
                       "; connection refused and closed");
    session.close();
    session.dead = true;
    schedule_reap();
    if (session.module >= 0 && modules_[static_cast<size_t>(session.module)]->session == &session) {
      Module& module = *modules_[static_cast<size_t>(session.module)];
      module.session = nullptr;
      retry_module(module, "its device is connected elsewhere");
    }
    return false;
  }
  LOG_INFO(kTag) << "adapter=" << config_.name << " device=" << device.info.id << " on " << session.peer() << " ("
                 << session.kind() << ", " << how << ")";
  device.session = &session;
  session.device = device.info.id;
  if (!device.online) {
    device.online = true;
    host_.presence(device.info.id, true);
  }
  return true;
}

void WiflyAdapter::unbind(Session& session, const std::string& why) {
  if (session.device.empty()) return;
  Device* device = find(session.device);
  session.device.clear();
  if (!device || device->session != &session) return;
  device->session = nullptr;
  device->online = false;
  device_lost(device->info.id, why);
  host_.presence(device->info.id, false);
}

void WiflyAdapter::on_open(Session& session) {
  if (!running_) return;
  if (session.module >= 0) {
    const Module& module = *modules_[static_cast<size_t>(session.module)];
    if (!module.config.device.empty()) {
      if (Device* device = find(module.config.device)) bind(session, *device, "configured module");
    }
    return;
  }
  for (auto& device : devices_) {
    if (!device->config.address.empty() && device->config.address == session.peer()) {
      bind(session, *device, "configured address");
      return;
    }
  }
  LOG_INFO(kTag) << "adapter=" << config_.name << " " << session.kind() << " connection from " << session.peer()
                 << " open; its first message names its device";
}

void WiflyAdapter::on_marker(Session& session, Marker marker) {
  LOG_INFO(kTag) << "adapter=" << config_.name << " peer=" << session.peer() << " module marker "
                 << to_string(marker);
}

void WiflyAdapter::on_closed(Session& session, std::string_view why) {
  session.dead = true;
  schedule_reap();
  if (!running_) return;
  unbind(session, std::string(why));
  if (session.module >= 0) {
    Module& module = *modules_[static_cast<size_t>(session.module)];
    if (module.session == &session) {
      module.session = nullptr;
      retry_module(module, "connection ended: " + std::string(why));
    }
  }
}

void WiflyAdapter::on_rfc6455(Session& session, int fd, std::string already_read) {
  session.dead = true;
  schedule_reap();
  if (!running_) {
    tcp::close_fd(fd);
    return;
  }
  auto ws = std::make_unique<Rfc6455Session>(*this, session.peer(), config_.max_line_bytes);
  auto& adopted = static_cast<Rfc6455Session&>(add_session(std::move(ws)));
  adopted.adopt(Rfc6455Session::vhost(loop_), fd, already_read);
}

void WiflyAdapter::on_message(Session& session, std::string_view message) {
  if (!running_ || session.dead) return;
  const std::string source = "peer:" + session.peer();
  const std::string who = "adapter=" + config_.name + " peer=" + session.peer();
  Json line;
  std::string why;
  if (!parse_device_json(message, line, why, config_.max_line_bytes) || !line.is_object()) {
    warn_bad_input(source, who + " sent a message that is not a JSON object (" + (why.empty() ? "not an object" : why) +
                               "); ignored: " + log::quote(message));
    return;
  }
  std::string dev;
  if (const auto it = line.find("dev"); it != line.end()) {
    if (!it->is_string()) {
      warn_bad_input(source, who + " \"dev\" is not a string; ignored");
      return;
    }
    dev = it->get<std::string>();
  }
  Device* device = nullptr;
  if (!session.device.empty()) {
    if (!dev.empty() && dev != session.device) {
      warn_bad_input(source, who + " carries device " + session.device + " but sent a line for " + log::quote(dev) +
                                 "; ignored");
      return;
    }
    device = find(session.device);
  } else {
    if (dev.empty()) {
      warn_bad_input(source, who + " sent a line without \"dev\" before naming its device; ignored"
                                   " (configure the device's address, or start each line with \"dev\")");
      return;
    }
    device = find(dev);
    if (!device) {
      warn_bad_input(source, who + " names device " + log::quote(dev) +
                                 ", which is not in this adapter's configuration; ignored");
      return;
    }
    if (!bind(session, *device, "first message")) return;
  }
  if (!device) return;
  if (!session.saw_message) {
    session.saw_message = true;
    if (session.module >= 0) modules_[static_cast<size_t>(session.module)]->backoff.reset();
  }
  const std::string& id = device->info.id;
  const std::string about = "adapter=" + config_.name + " device=" + id;

  if (const auto it = line.find("error"); it != line.end()) {
    const std::string text = it->is_string() ? it->get<std::string>() : it->dump();
    if (command_running(id)) {
      refuse(id, text);
    } else {
      warn_bad_input("device:" + id, about + " reports an error: " + log::quote(text));
    }
  }
  Json state = Json::object();
  for (const auto& [key, value] : line.items()) {
    if (key == "dev" || key == "error" || key == "ok") continue;
    const Capability* cap = device->info.capability(key);
    if (!cap) {
      warn_bad_input("device:" + id, about + " reports " + log::quote(key) +
                                         ", which is not one of its configured capabilities; ignored");
      continue;
    }
    if (const auto problem = check_value(*cap, value)) {
      warn_bad_input("device:" + id, about + " " + log::quote(*problem) + "; ignored");
      continue;
    }
    state[key] = value;
  }
  if (!state.empty()) {
    for (const auto& [key, value] : state.items()) device->state[key] = value;
    host_.status(id, state, clock_.wall_ms());
    confirm_values(id, state);
  }
  // {"ok":true} confirms the command under way without reporting values (as on the serial adapter).
  if (const auto it = line.find("ok"); it != line.end()) {
    if (*it != true) {
      warn_bad_input("device:" + id, about + " sent \"ok\" with a value other than true; ignored");
    } else {
      acknowledge(id);
    }
  }
}

// ---------------------------------------------------------------- commands

bool WiflyAdapter::device_known(const std::string& device_id) const { return find(device_id) != nullptr; }

bool WiflyAdapter::device_online(const std::string& device_id) const {
  const Device* device = find(device_id);
  return running_ && device && device->session;
}

AdapterBase::Dispatch WiflyAdapter::dispatch(const Command& command) {
  Device* device = find(command.device);
  const Json line = {{"dev", device->info.id}, {"set", command.set}};
  LOG_DEBUG(kTag) << "adapter=" << config_.name << " device=" << device->info.id << " command=" << command.id;
  device->session->send(line.dump());
  return {};
}

std::unique_ptr<Adapter> make_wifly_adapter(const config::WiflyAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock) {
  return std::make_unique<WiflyAdapter>(config, loop, host, clock);
}

}  // namespace flatlink::adapters::wifly
