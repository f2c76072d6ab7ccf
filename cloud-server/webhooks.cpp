// Notifications to the flats' webhooks (webhooks.h): libwebsockets' HTTP client POSTs on a
// vhost of their own (no listener; its client TLS context loads the system's CA certificates,
// which the server's vhost leaves out), one delivery per flat at a time.
#include "cloud-server/webhooks.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "common/log.h"

namespace flatlink::cloud {
namespace {

constexpr const char* kProtocol = "flatlink-webhook";

std::string hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

// The vhost's protocols outlive every Webhooks (the vhost lives as long as the context):
// the callback finds its Webhooks through the vhost, and ignores a connection whose Webhooks
// is gone.
std::map<lws_vhost*, Webhooks*>& owners() {
  static std::map<lws_vhost*, Webhooks*> map;
  return map;
}

bool numeric_address(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool valid_webhook_event(std::string_view event) {
  return std::find(std::begin(kWebhookEvents), std::end(kWebhookEvents), event) != std::end(kWebhookEvents);
}

std::optional<bool> lock_unlocked(const Json& state) {
  if (!state.is_object()) return std::nullopt;
  if (auto it = state.find("lock"); it != state.end() && it->is_string()) {
    if (*it == "unlocked") return true;
    if (*it == "locked") return false;
  }
  if (auto it = state.find("locked"); it != state.end() && it->is_boolean()) return !it->get<bool>();
  return std::nullopt;
}

std::optional<WebhookUrl> parse_webhook_url(std::string_view url, std::string& why) {
  if (url.size() > 1024) {
    why = "the URL is longer than 1024 characters";
    return std::nullopt;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      why = "the URL has a space or a control character";
      return std::nullopt;
    }
  }
  WebhookUrl out;
  const std::string scheme_end = "://";
  const size_t colon = url.find(scheme_end);
  const std::string scheme = colon == std::string_view::npos ? "" : lower(url.substr(0, colon));
  if (scheme == "http") {
    out.tls = false;
  } else if (scheme == "https") {
    out.tls = true;
  } else {
    why = "only http:// and https:// URLs are accepted";
    return std::nullopt;
  }
  std::string_view rest = url.substr(colon + scheme_end.size());
  if (rest.find('#') != std::string_view::npos) {
    why = "the URL has a fragment (#)";
    return std::nullopt;
  }
  const size_t path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  out.path = path_at == std::string_view::npos ? "/" : std::string(rest.substr(path_at));
  if (out.path[0] == '?') out.path = "/" + out.path;
  if (authority.find('@') != std::string_view::npos) {
    why = "the URL has user info (user:password@): put a token in the path or query instead";
    return std::nullopt;
  }
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "the URL's IPv6 address has no closing ]";
      return std::nullopt;
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        why = "the URL's host is malformed";
        return std::nullopt;
      }
      port_text = after.substr(1);
    }
  } else {
    const size_t c = authority.rfind(':');
    out.host = std::string(authority.substr(0, c));
    if (c != std::string_view::npos) port_text = authority.substr(c + 1);
    for (char ch : out.host) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') {
        why = "the URL's host has a character other than letters, digits, '.', '-' and '_'";
        return std::nullopt;
      }
    }
  }
  if (out.host.empty()) {
    why = "the URL has no host";
    return std::nullopt;
  }
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty() || (authority.size() && authority.back() == ':')) {
    int port = 0;
    if (port_text.empty() || port_text.size() > 5) port = -1;
    for (char ch : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) port = -1;
    }
    if (port == 0) port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) {
      why = "the URL's port is not 1 to 65535";
      return std::nullopt;
    }
    out.port = port;
  }
  return out;
}

std::string webhook_signature(const std::string& secret, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &n);
  return hex(mac, n);
}

std::string new_webhook_secret() {
  unsigned char raw[32];
  RAND_bytes(raw, sizeof raw);
  return hex(raw, sizeof raw);
}

Webhooks::Webhooks(EventLoop& loop, const Clock& clock, Metrics& metrics, std::string ca_file)
    : loop_(loop), clock_(clock), metrics_(metrics), ca_file_(std::move(ca_file)) {
  unsigned char raw[4];
  RAND_bytes(raw, sizeof raw);
  instance_tag_ = hex(raw, sizeof raw);
}

Webhooks::~Webhooks() {
  alive_.reset();
  if (vhost_) owners().erase(vhost_);
  // Deliveries under way end without us (their callbacks find no owner and close them).
  for (auto& entry : attempts_) lws_set_timeout(entry.first, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  {
    std::lock_guard lock(lookups_mutex_);
    stopping_ = true;
  }
  lookups_cv_.notify_all();
  if (resolver_.joinable()) resolver_.join();
}

bool Webhooks::ensure_vhost() {
  if (vhost_) return true;
  if (!loop_.context()) return false;
  static lws_protocols protocols[] = {
      {kProtocol, &Webhooks::callback, 0, 0, 0, nullptr, 0},
      {nullptr, nullptr, 0, 0, 0, nullptr, 0},
  };
  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.vhost_name = "webhooks";
  // The client TLS context of this vhost verifies servers against the system's CA bundle.
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.timeout_secs = kAttemptTimeoutMs / 1000;
  if (!ca_file_.empty()) info.client_ssl_ca_filepath = ca_file_.c_str();  // besides the system's
  vhost_ = lws_create_vhost(loop_.context(), &info);
  if (!vhost_) {
    LOG_ERROR("webhook") << "cannot make the webhooks' client vhost: no webhook is delivered";
    return false;
  }
  owners()[vhost_] = this;
  return true;
}

void Webhooks::configure(const std::vector<store::WebhookRow>& rows) {
  std::map<std::string, Hook> next;
  for (const auto& row : rows) {
    std::string why;
    auto url = parse_webhook_url(row.url, why);
    if (!url) {
      LOG_WARN("webhook") << "flat=" << row.flat << " webhook ignored: " << why;
      continue;
    }
    Hook hook{*url, row.secret, {}};
    for (const auto& e : row.events) {
      if (valid_webhook_event(e)) hook.events.insert(e);
    }
    auto before = hooks_.find(row.flat);
    if (before == hooks_.end() || before->second.url.host != url->host || before->second.url.port != url->port ||
        before->second.url.path != url->path || before->second.events != hook.events ||
        before->second.secret != hook.secret) {
      LOG_INFO("webhook") << "flat=" << row.flat << " webhook " << (before == hooks_.end() ? "set" : "changed")
                          << ": " << (url->tls ? "https://" : "http://") << url->host << ":" << url->port << " for "
                          << row.events.size() << " events";
    }
    next.emplace(row.flat, std::move(hook));
  }
  for (auto it = queues_.begin(); it != queues_.end();) {
    if (next.contains(it->first)) {
      ++it;
      continue;
    }
    LOG_INFO("webhook") << "flat=" << it->first << " webhook removed; " << it->second.queue.size()
                        << " notifications not sent";
    metrics_.webhook_dropped += it->second.queue.size();
    if (it->second.in_flight) {
      attempts_.erase(it->second.in_flight);
      lws_set_timeout(it->second.in_flight, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    it = queues_.erase(it);
  }
  hooks_ = std::move(next);
}

size_t Webhooks::waiting(const std::string& flat) const {
  auto it = queues_.find(flat);
  return it == queues_.end() ? 0 : it->second.queue.size();
}

void Webhooks::notify(const std::string& flat, const std::string& event, Json detail) {
  auto hook = hooks_.find(flat);
  if (hook == hooks_.end() || !hook->second.events.contains(event)) return;
  const int64_t ts = clock_.wall_ms();
  Json body = Json::object();
  body["id"] = instance_tag_ + "-" + std::to_string(++next_id_);
  body["flat"] = flat;
  body["event"] = event;
  body["ts"] = ts;
  for (auto& [key, value] : detail.items()) body[key] = value;
  FlatQueue& q = queues_[flat];
  if (q.queue.size() >= kQueueMax) {
    // The one in flight (the front) stays; the oldest waiting behind it goes.
    const size_t at = q.in_flight || q.resolving ? 1 : 0;
    if (at < q.queue.size()) {
      q.queue.erase(q.queue.begin() + static_cast<long>(at));
      ++metrics_.webhook_dropped;
      LOG_WARN("webhook") << "flat=" << flat << " queue full (" << kQueueMax << "): the oldest notification dropped";
    }
  }
  q.queue.push_back({body.dump(-1, ' ', false, Json::error_handler_t::replace), event, 0});
  kick(flat);
}

// Starts the front notification's next attempt, unless one is under way or waiting for its backoff.
void Webhooks::kick(const std::string& flat) {
  auto hook = hooks_.find(flat);
  auto qit = queues_.find(flat);
  if (hook == hooks_.end() || qit == queues_.end()) return;
  FlatQueue& q = qit->second;
  if (q.queue.empty() || q.in_flight || q.resolving || (q.retry && q.retry->active())) return;
  const std::string& host = hook->second.url.host;
  if (numeric_address(host)) {
    connect(flat, host);
    return;
  }
  q.resolving = true;
  {
    std::lock_guard lock(lookups_mutex_);
    lookups_.emplace_back(flat, host);
    if (!resolver_.joinable()) resolver_ = std::thread([this] { resolver_main(); });
  }
  lookups_cv_.notify_one();
}

void Webhooks::resolver_main() {
  std::unique_lock lock(lookups_mutex_);
  for (;;) {
    lookups_cv_.wait(lock, [this] { return stopping_ || !lookups_.empty(); });
    if (stopping_) return;
    const std::string flat = lookups_.front().first;  // (no structured binding: captured below)
    const std::string host = lookups_.front().second;
    lookups_.pop_front();
    lock.unlock();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::optional<std::string> address;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &found) == 0 && found) {
      // The first IPv4 address, else the first IPv6 one: one address is tried per attempt, and
      // a name such as localhost often lists ::1 first while receivers listen on IPv4 only.
      const addrinfo* pick = found;
      for (const addrinfo* a = found; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
          pick = a;
          break;
        }
      }
      char text[INET6_ADDRSTRLEN] = {};
      const void* where = pick->ai_family == AF_INET6
                              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(pick->ai_addr)->sin6_addr)
                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(pick->ai_addr)->sin_addr);
      if (inet_ntop(pick->ai_family, where, text, sizeof text)) address = text;
      freeaddrinfo(found);
    }
    loop_.post(std::weak_ptr<const void>(alive_), [this, flat, host, address] { resolved(flat, host, address); });
    lock.lock();
  }
}

void Webhooks::resolved(const std::string& flat, const std::string& host, std::optional<std::string> address) {
  auto qit = queues_.find(flat);
  if (qit == queues_.end()) return;
  qit->second.resolving = false;
  auto hook = hooks_.find(flat);
  if (hook == hooks_.end() || hook->second.url.host != host) {
    kick(flat);  // changed meanwhile
    return;
  }
  if (!address) {
    finished(flat, false, "cannot resolve the host name");
    return;
  }
  connect(flat, *address);
}

void Webhooks::connect(const std::string& flat, const std::string& address) {
  FlatQueue& q = queues_[flat];
  const Hook& hook = hooks_.at(flat);
  Pending& front = q.queue.front();
  ++front.attempts;
  if (!ensure_vhost()) {
    finished(flat, false, "no client vhost");
    return;
  }
  auto attempt = std::make_unique<Attempt>();
  attempt->flat = flat;
  attempt->body = front.body;
  attempt->signature = "sha256=" + webhook_signature(hook.secret, front.body);
  attempt->timestamp = std::to_string(clock_.wall_ms() / 1000);
  const bool default_port = hook.url.port == (hook.url.tls ? 443 : 80);
  const std::string host_header =
      (hook.url.host.find(':') != std::string::npos ? "[" + hook.url.host + "]" : hook.url.host) +
      (default_port ? "" : ":" + std::to_string(hook.url.port));
  lws_client_connect_info info{};
  info.context = loop_.context();
  info.vhost = vhost_;
  info.address = address.c_str();
  info.port = hook.url.port;
  info.path = hook.url.path.c_str();
  info.host = host_header.c_str();
  info.origin = host_header.c_str();
  info.method = "POST";
  info.protocol = kProtocol;
  info.local_protocol_name = kProtocol;
  info.alpn = "http/1.1";
  // Certificates verified (no self-signed, expired or other-host ones); redirects not followed.
  info.ssl_connection = (hook.url.tls ? LCCSCF_USE_SSL : 0) | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
  info.opaque_user_data = attempt.get();
  queues_[flat].status = 0;
  queues_[flat].in_flight = nullptr;
  // lws may call back (a failure) from inside the call: the callback claims pending_attempt_.
  pending_attempt_ = std::move(attempt);
  lws* made = lws_client_connect_via_info(&info);
  if (pending_attempt_) {  // no callback yet
    auto unclaimed = std::move(pending_attempt_);
    if (!made) {
      finished(flat, false, "cannot start the connection");
      return;
    }
    attempts_[made] = std::move(unclaimed);
    queues_[flat].in_flight = made;
  }
  auto qit = queues_.find(flat);
  if (!made || qit == queues_.end() || qit->second.in_flight != made) return;  // ended during the call
  if (!qit->second.deadline) {
    qit->second.deadline = std::make_unique<Timer>(loop_, [this, flat] {
      auto it = queues_.find(flat);
      if (it == queues_.end() || !it->second.in_flight) return;
      lws* stuck = it->second.in_flight;
      attempts_.erase(stuck);
      it->second.in_flight = nullptr;
      lws_set_timeout(stuck, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      finished(flat, false, "no answer within " + std::to_string(kAttemptTimeoutMs / 1000) + " s");
    });
  }
  qit->second.deadline->start(kAttemptTimeoutMs);
}

// One attempt of the flat's front notification ended.
void Webhooks::finished(const std::string& flat, bool ok, const std::string& why) {
  auto qit = queues_.find(flat);
  if (qit == queues_.end() || qit->second.queue.empty()) return;
  FlatQueue& q = qit->second;
  q.in_flight = nullptr;
  if (q.deadline) q.deadline->cancel();
  Pending& front = q.queue.front();
  if (ok) {
    ++metrics_.webhook_sent;
    LOG_INFO("webhook") << "flat=" << flat << " event=" << front.event << " delivered (HTTP " << q.status
                        << ", attempt " << front.attempts << ")";
    q.queue.pop_front();
    kick(flat);
    return;
  }
  if (front.attempts >= kMaxAttempts) {
    ++metrics_.webhook_failed;
    LOG_WARN("webhook") << "flat=" << flat << " event=" << front.event << " not delivered after " << front.attempts
                        << " attempts (" << why << "); given up: check the flat's webhook URL and receiver";
    q.queue.pop_front();
    kick(flat);
    return;
  }
  ++metrics_.webhook_retried;
  static std::mt19937 rng{std::random_device{}()};
  const uint32_t base = kBackoffMs[std::min<size_t>(static_cast<size_t>(front.attempts) - 1, std::size(kBackoffMs) - 1)];
  const uint32_t delay = base * 4 / 5 + static_cast<uint32_t>(rng() % (base * 2 / 5 + 1));  // ±20 %
  LOG_WARN("webhook") << "flat=" << flat << " event=" << front.event << " attempt " << front.attempts
                      << " failed (" << why << "); retry in " << delay << " ms";
  if (!q.retry) q.retry = std::make_unique<Timer>(loop_, [this, flat] { kick(flat); });
  q.retry->start(delay);
}

int Webhooks::callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  (void)user;
  auto owner = owners().find(lws_get_vhost(wsi));
  if (owner == owners().end()) {
    // Webhooks gone: a connection of ours ends here; nothing else on this vhost.
    return reason == LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER || reason == LWS_CALLBACK_RECEIVE_CLIENT_HTTP ? -1 : 0;
  }
  return owner->second->handle(wsi, reason, in, len);
}

int Webhooks::handle(lws* wsi, lws_callback_reasons reason, void* in, size_t len) {
  Attempt* attempt = nullptr;
  if (auto it = attempts_.find(wsi); it != attempts_.end()) {
    attempt = it->second.get();
  } else if (pending_attempt_) {
    // A callback from inside lws_client_connect_via_info: the attempt is this wsi's now.
    attempt = pending_attempt_.get();
    attempts_[wsi] = std::move(pending_attempt_);
    if (auto q = queues_.find(attempt->flat); q != queues_.end()) q->second.in_flight = wsi;
  }
  const auto end = [&](bool ok, const std::string& why) {
    if (!attempt) return;
    const std::string flat = attempt->flat;
    auto q = queues_.find(flat);
    const bool current = q != queues_.end() && q->second.in_flight == wsi;
    attempts_.erase(wsi);
    attempt = nullptr;
    if (current) finished(flat, ok, why);
  };
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      if (!attempt) return -1;
      auto** p = reinterpret_cast<unsigned char**>(in);
      unsigned char* stop = *p + len;
      const std::string length = std::to_string(attempt->body.size());
      const auto add = [&](const char* name, const std::string& value) {
        return lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name),
                                           reinterpret_cast<const unsigned char*>(value.data()),
                                           static_cast<int>(value.size()), p, stop) == 0;
      };
      if (!add("content-type:", "application/json") || !add("content-length:", length) ||
          !add("x-flatlink-signature:", attempt->signature) || !add("x-flatlink-timestamp:", attempt->timestamp) ||
          !add("user-agent:", "flatlink-cloud")) {
        return -1;
      }
      lws_client_http_body_pending(wsi, 1);
      lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
      if (!attempt || attempt->body_sent) return 0;
      std::vector<unsigned char> buf(LWS_PRE + attempt->body.size());
      std::memcpy(buf.data() + LWS_PRE, attempt->body.data(), attempt->body.size());
      attempt->body_sent = true;
      lws_client_http_body_pending(wsi, 0);
      if (lws_write(wsi, buf.data() + LWS_PRE, attempt->body.size(), LWS_WRITE_HTTP_FINAL) !=
          static_cast<int>(attempt->body.size())) {
        return -1;
      }
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
      if (attempt) {
        if (auto q = queues_.find(attempt->flat); q != queues_.end()) q->second.status = lws_http_client_http_response(wsi);
      }
      return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[1024 + LWS_PRE];
      char* at = buffer + LWS_PRE;
      int room = sizeof buffer - LWS_PRE;
      return lws_http_client_read(wsi, &at, &room) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
      return 0;  // the receiver's answer body is not used
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP: {
      if (!attempt) return -1;
      auto q = queues_.find(attempt->flat);
      const unsigned status = q == queues_.end() ? 0 : q->second.status;
      end(status >= 200 && status < 300, "HTTP " + std::to_string(status));
      return -1;  // one request per connection
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      end(false, in ? std::string(static_cast<const char*>(in), strnlen(static_cast<const char*>(in), len ? len : 200))
                    : std::string("connection failed"));
      return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
      end(false, "connection closed before an answer");
      return 0;
    default:
      return 0;
  }
}

}  // namespace flatlink::cloud
