// A WiFly connection read by the adapter itself: lines, or hixie-75/76.
#include "device-adapters/wifly/tcp_session.h"

#include "common/log.h"
#include "device-adapters/wifly/tcp_socket.h"

namespace flatlink::adapters::wifly {
namespace {
constexpr const char* kTag = "wifly";
// Reads per readable event before giving other connections their turn.
constexpr int kReadsPerEvent = 16;
}  // namespace

TcpSession::TcpSession(EventLoop& loop, SessionOwner& owner, int fd, std::string peer, bool incoming,
                       const Limits& limits)
    : Session(std::move(peer)),
      loop_(loop),
      owner_(owner),
      fd_(fd),
      limits_(limits),
      mode_(incoming ? Mode::opening : Mode::lines),
      deadline_(loop, [this] { on_deadline(); }),
      markers_(limits.markers),
      lines_(limits.max_line_bytes),
      hixie_(limits.max_line_bytes) {
  this->incoming = incoming;
}

TcpSession::~TcpSession() {
  deadline_.cancel();
  watch_.reset();  // closes the watch's duplicate of the socket
  tcp::close_fd(fd_);
}

void TcpSession::start() {
  watch_ = std::make_unique<FdWatch>(loop_, fd_, [this](int events) { on_events(events); });
  if (!watch_->ok()) {
    fail("cannot watch the socket", true);
    return;
  }
  if (mode_ == Mode::opening) {
    deadline_.start(limits_.handshake_timeout_ms);
  } else {
    owner_.on_open(*this);
  }
}

std::string_view TcpSession::kind() const {
  switch (mode_) {
    case Mode::lines: return "lines";
    case Mode::hixie: return to_string(version_);
    case Mode::opening:
    case Mode::handshake: return "opening";
    case Mode::finished: break;
  }
  return "closed";
}

void TcpSession::on_events(int events) {
  if (mode_ == Mode::finished) return;
  if (events & FdWatch::readable) read_available();
  if (mode_ == Mode::finished) return;
  if (events & FdWatch::writable) flush();
  if (mode_ == Mode::finished) return;
  if (events & FdWatch::hangup) fail("connection hung up", false);
}

void TcpSession::read_available() {
  for (int i = 0; i < kReadsPerEvent && mode_ != Mode::finished; ++i) {
    std::string chunk;
    std::string error;
    switch (tcp::read_some(fd_, chunk, 4096, error)) {
      case tcp::IoStatus::ok: break;
      case tcp::IoStatus::would_block: return;
      case tcp::IoStatus::closed:
        fail(mode_ == Mode::handshake || mode_ == Mode::opening ? "closed during the handshake" : "closed by the peer",
             mode_ == Mode::handshake);
        return;
      case tcp::IoStatus::failed:
        fail(error, true);
        return;
    }
    // Markers come before a WebSocket request (a module sends `*HELLO*` first) and
    // between lines or frames, never inside the handshake: its 8-byte hixie-76 key
    // must reach the parser untouched.
    if (mode_ == Mode::handshake) {
      process(chunk);
    } else {
      std::string data;
      markers_.feed(chunk, data, [this](Marker m) {
        if (mode_ != Mode::finished) owner_.on_marker(*this, m);
      });
      if (mode_ != Mode::finished) process(data);
    }
  }
}

void TcpSession::process(std::string_view data) {
  switch (mode_) {
    case Mode::opening:
      in_.append(data);
      process_opening();
      break;
    case Mode::handshake:
      in_.append(data);
      process_handshake();
      break;
    case Mode::lines: process_lines(data); break;
    case Mode::hixie: process_hixie(data); break;
    case Mode::finished: break;
  }
}

void TcpSession::process_opening() {
  switch (sniff_opening(in_)) {
    case Opening::need_more: return;
    case Opening::plain: {
      deadline_.cancel();
      mode_ = Mode::lines;
      LOG_INFO(kTag) << "peer=" << peer() << " speaks plain lines";
      owner_.on_open(*this);
      std::string data = std::move(in_);
      in_.clear();
      if (mode_ != Mode::finished) process_lines(data);
      return;
    }
    case Opening::http:
      mode_ = Mode::handshake;
      markers_.flush(in_);  // a held-back '*' belongs to the request now
      process_handshake();
      return;
  }
}

void TcpSession::process_handshake() {
  const UpgradeParse parsed = parse_upgrade(in_, limits_.max_handshake_bytes);
  if (parsed.status == UpgradeParse::Status::need_more) return;
  if (parsed.status == UpgradeParse::Status::error) {
    const bool too_big = parsed.error.find("longer than") != std::string::npos;
    write_out(http_error_response(too_big ? 431 : 400, too_big ? "Request Header Fields Too Large" : "Bad Request"));
    fail("refused a WebSocket handshake: " + parsed.error, true);
    return;
  }
  const UpgradeRequest& request = parsed.request;
  version_ = request.version;
  if (request.version == WsVersion::rfc6455) {
    if (in_.size() > limits_.max_rfc6455_handover_bytes) {
      write_out(http_error_response(431, "Request Header Fields Too Large"));
      fail("refused an RFC 6455 handshake of " + std::to_string(in_.size()) + " bytes (libwebsockets takes at most " +
               std::to_string(limits_.max_rfc6455_handover_bytes) + ")",
           true);
      return;
    }
    deadline_.cancel();
    mode_ = Mode::finished;
    const int fd = fd_;
    fd_ = -1;  // the owner hands it to libwebsockets
    std::string bytes = std::move(in_);
    in_.clear();
    LOG_DEBUG(kTag) << "peer=" << peer() << " RFC 6455 upgrade for " << log::q(request.path)
                    << " handed to libwebsockets";
    owner_.on_rfc6455(*this, fd, std::move(bytes));
    return;
  }
  if (request.version == WsVersion::hixie76) {
    const auto answer = hixie76_answer(request.key1, request.key2, request.key3);
    if (!answer) {  // parse_upgrade checked the keys; kept for safety
      write_out(http_error_response(400, "Bad Request"));
      fail("refused a hixie-76 handshake: invalid keys", true);
      return;
    }
    write_out(hixie76_response(request, *answer));
  } else {
    write_out(hixie75_response(request));
  }
  if (mode_ == Mode::finished) return;
  deadline_.cancel();
  mode_ = Mode::hixie;
  LOG_INFO(kTag) << "peer=" << peer() << " " << to_string(request.version) << " WebSocket open on "
                 << log::q(request.path);
  std::string rest = in_.substr(request.consumed);
  in_.clear();
  owner_.on_open(*this);
  if (mode_ == Mode::finished || rest.empty()) return;
  // Frames right behind the handshake may hold markers too.
  std::string data;
  markers_.feed(rest, data, [this](Marker m) {
    if (mode_ != Mode::finished) owner_.on_marker(*this, m);
  });
  if (mode_ != Mode::finished) process_hixie(data);
}

void TcpSession::process_lines(std::string_view data) {
  lines_.feed(
      data,
      [this](std::string_view line) {
        if (mode_ == Mode::finished || line.empty()) return;
        owner_.on_message(*this, line);
      },
      [this](size_t bytes) {
        LOG_WARN(kTag) << "peer=" << peer() << " dropped a line of more than " << limits_.max_line_bytes
                       << " bytes (" << bytes << " so far); waiting for the next newline";
      });
}

void TcpSession::process_hixie(std::string_view data) {
  hixie_.feed(data, [this](HixieDecoder::Event event, std::string_view text) {
    if (mode_ == Mode::finished) return;
    switch (event) {
      case HixieDecoder::Event::message:
        if (!text.empty()) owner_.on_message(*this, text);
        break;
      case HixieDecoder::Event::close:
        if (version_ == WsVersion::hixie76) write_out(hixie_close_frame());
        fail("closed by the WebSocket client", false);
        break;
      case HixieDecoder::Event::error: fail("bad WebSocket frame: " + std::string(text), true); break;
    }
  });
}

void TcpSession::on_deadline() {
  if (mode_ == Mode::opening && in_.empty()) {
    // Silence is not a WebSocket client: a module that has nothing to say yet.
    mode_ = Mode::lines;
    LOG_INFO(kTag) << "peer=" << peer() << " said nothing in " << limits_.handshake_timeout_ms
                   << " ms; taking it for a plain line module";
    owner_.on_open(*this);
    return;
  }
  if (mode_ == Mode::opening || mode_ == Mode::handshake) {
    fail("handshake not complete after " + std::to_string(limits_.handshake_timeout_ms) + " ms (" +
             std::to_string(in_.size()) + " bytes received); closed",
         true);
  }
}

void TcpSession::send(std::string_view message) {
  if (mode_ == Mode::lines) {
    std::string line(message);
    line.push_back('\n');
    write_out(line);
  } else if (mode_ == Mode::hixie) {
    write_out(hixie_frame(message));
  }
}

void TcpSession::write_out(std::string_view bytes) {
  if (mode_ == Mode::finished || fd_ < 0) return;
  if (out_.size() + bytes.size() > limits_.max_send_backlog) {
    fail("peer does not read: more than " + std::to_string(limits_.max_send_backlog) + " bytes waiting", true);
    return;
  }
  out_.append(bytes);
  flush();
}

void TcpSession::flush() {
  if (out_.empty() || fd_ < 0) return;
  std::string error;
  switch (tcp::write_some(fd_, out_, error)) {
    case tcp::IoStatus::ok: break;
    case tcp::IoStatus::would_block:
      if (watch_) watch_->want_write();
      break;
    case tcp::IoStatus::closed:
    case tcp::IoStatus::failed: fail(error, false); break;
  }
}

void TcpSession::close() {
  if (mode_ == Mode::finished) return;
  flush();  // a last answer, if the socket takes it now
  mode_ = Mode::finished;
  deadline_.cancel();
}

void TcpSession::fail(const std::string& why, bool warn) {
  if (mode_ == Mode::finished) return;
  mode_ = Mode::finished;
  deadline_.cancel();
  if (warn) {
    LOG_WARN(kTag) << "peer=" << peer() << " " << why;
  } else {
    LOG_INFO(kTag) << "peer=" << peer() << " " << why;
  }
  owner_.on_closed(*this, why);
}

}  // namespace flatlink::adapters::wifly
