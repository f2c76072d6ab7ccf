// `flatlinkd pair`: one HTTPS request with OpenSSL, then the config files written atomically.
#include "gateway/pair_command.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config_loader.h"

namespace flatlink::gateway {
namespace {

constexpr const char* kUsage =
    "Usage: flatlinkd pair [--config PATH] [--ca FILE] [--no-start] URL CODE\n"
    "  URL   the cloud, https://HOST[:PORT][/PATH] (its certificate is verified)\n"
    "  CODE  a one-time code from the operator: flatlink-cloud admin pair-code FLAT\n"
    "  --ca FILE    the CA that signed the cloud's certificate, when not a public one\n"
    "               (copied next to the config as cloud-ca.pem)\n"
    "  --no-start   do not (re)start flatlinkd afterwards\n";

struct Url {
  std::string host;
  std::string port = "443";
  std::string path;  // without a trailing '/'
};

bool parse_url(const std::string& text, Url& url, std::string& error) {
  const std::string scheme = "https://";
  if (text.rfind(scheme, 0) != 0) {
    error = "the URL must start with https:// (pairing sends a secret)";
    return false;
  }
  std::string rest = text.substr(scheme.size());
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  url.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!url.path.empty() && url.path.back() == '/') url.path.pop_back();
  if (url.path.size() >= 5 && url.path.compare(url.path.size() - 5, 5, "/pair") == 0) url.path.resize(url.path.size() - 5);
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return error = "bad IPv6 address in the URL", false;
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') url.port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) url.port = authority.substr(colon + 1);
  }
  if (url.host.empty() || url.port.empty()) return error = "the URL names no host", false;
  return true;
}

std::string authority_of(const Url& url) {
  const std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  return url.port == "443" ? host : host + ":" + url.port;
}

int connect_to(const Url& url, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found)) {
    error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval timeout{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);  // bounds connect() too
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    error = std::string(std::strerror(errno));
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) error = "cannot reach the cloud at " + authority_of(url) + ": " + error;
  return fd;
}

struct Response {
  int status = 0;
  std::string body;
};

// One POST over TLS with the peer's certificate and name verified.
bool post(const Url& url, const std::string& ca_file, const std::string& body, Response& response, std::string& error) {
  const int fd = connect_to(url, error);
  if (fd < 0) return false;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = nullptr;
  bool ok = false;
  [&] {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!ca_file.empty() ? SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1
                         : SSL_CTX_set_default_verify_paths(ctx) != 1) {
      error = "cannot load the CA certificates" + (ca_file.empty() ? std::string() : " from " + ca_file);
      return;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    in6_addr ip{};
    const bool is_ip = inet_pton(AF_INET, url.host.c_str(), &ip) == 1 || inet_pton(AF_INET6, url.host.c_str(), &ip) == 1;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, url.host.c_str());
      SSL_set1_host(ssl, url.host.c_str());
    }
    if (SSL_connect(ssl) != 1) {
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        error = std::string("the cloud's certificate is not trusted (") + X509_verify_cert_error_string(verify) +
                "): give the CA that signed it with --ca FILE, or check the URL's host name";
      } else {
        char text[256] = "";
        ERR_error_string_n(ERR_get_error(), text, sizeof text);
        error = std::string("TLS handshake with the cloud failed: ") + text;
      }
      return;
    }
    const std::string request = "POST " + url.path + "/pair HTTP/1.1\r\nHost: " + authority_of(url) +
                                "\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) != static_cast<int>(request.size())) {
      error = "the cloud closed the connection while the request was sent";
      return;
    }
    std::string raw;
    char buf[4096];
    for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0 && raw.size() < 65536;) raw.append(buf, static_cast<size_t>(n));
    const auto head_end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12) {
      error = "no HTTP answer from the cloud (is it a flatlink cloud?)";
      return;
    }
    response.status = std::atoi(raw.c_str() + 9);
    response.body = raw.substr(head_end + 4);
    ok = true;
  }();
  if (ssl) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  SSL_CTX_free(ctx);
  close(fd);
  return ok;
}

// Writes `text` to `path` through a temporary file in the same folder, with that mode and owner.
bool write_file(const std::string& path, const std::string& text, mode_t mode, uid_t uid, gid_t gid, std::string& error) {
  const std::string tmp = path + ".pair-new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return error = "cannot write " + tmp + ": " + std::strerror(errno), false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  fchmod(fd, mode) == 0 && (geteuid() != 0 || fchown(fd, uid, gid) == 0) && fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write " + path + ": " + std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

int run(const std::vector<std::string>& args) {
  const int rc = [&] {
    pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }();
  return rc;
}

}  // namespace

int pair_command(int argc, char** argv) {
  std::string config_path = "/etc/flatlink/gateway.json";
  std::string ca_file;
  bool start = true;
  std::vector<std::string> positional;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "--ca") && i + 1 < argc) {
      (arg == "--config" ? config_path : ca_file) = argv[++i];
    } else if (arg == "--no-start") {
      start = false;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "flatlinkd: pair: unknown option %s\n%s", arg.c_str(), kUsage);
      return 2;
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) {
    std::fprintf(stderr, "flatlinkd: pair: expected URL and CODE\n%s", kUsage);
    return 2;
  }
  Url url;
  std::string error;
  if (!parse_url(positional[0], url, error)) {
    std::fprintf(stderr, "flatlinkd: pair: %s\n", error.c_str());
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path config_file = fs::absolute(config_path);
  const fs::path dir = config_file.parent_path();

  // The config as it is (kept: adapters, outbox, ...), or a minimal one.
  nlohmann::json config = nlohmann::json::object();
  if (std::ifstream in(config_file); in) {
    std::stringstream text;
    text << in.rdbuf();
    config = nlohmann::json::parse(text.str(), nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      std::fprintf(stderr, "flatlinkd: pair: %s is not a JSON object: fix or remove it first\n", config_file.c_str());
      return 1;
    }
  }
  char host[256] = "gateway";
  gethostname(host, sizeof host - 1);
  if (!config.contains("gateway_id")) config["gateway_id"] = std::string(host);
  const std::string name = config["gateway_id"].is_string() ? config["gateway_id"].get<std::string>() : "";

  Response response;
  if (!post(url, ca_file, nlohmann::json({{"code", positional[1]}, {"name", name}}).dump(), response, error)) {
    std::fprintf(stderr, "flatlinkd: pair: %s\n", error.c_str());
    return 1;
  }
  const auto answer = nlohmann::json::parse(response.body, nullptr, false);
  const auto field = [&](const char* key) {
    return answer.is_object() && answer.contains(key) && answer[key].is_string() ? answer[key].get<std::string>() : "";
  };
  if (response.status != 200) {
    const std::string why = field("error");
    std::fprintf(stderr, "flatlinkd: pair: the cloud refused (HTTP %d): %s\n", response.status,
                 why.empty() ? "no reason given" : why.c_str());
    return 1;
  }
  const std::string flat = field("flat");
  const std::string token = field("token");
  if (flat.empty() || token.size() < 32 || token.find_first_not_of("0123456789abcdef") != std::string::npos) {
    std::fprintf(stderr, "flatlinkd: pair: the cloud's answer holds no flat and token\n");
    return 1;
  }

  // Owners: the service user's group reads the config; the token belongs to the service user.
  uid_t uid = 0;
  gid_t gid = 0;
  const passwd* service = getpwnam("flatlink");
  if (service) uid = service->pw_uid, gid = service->pw_gid;
  std::error_code ec;
  fs::create_directories(dir, ec);
  auto& cloud = config["cloud"];
  if (!cloud.is_object()) cloud = nlohmann::json::object();
  const std::string token_name =
      cloud.contains("token_file") && cloud["token_file"].is_string() ? cloud["token_file"].get<std::string>()
                                                                       : "gateway-token.txt";
  const fs::path token_file = fs::path(token_name).is_absolute() ? fs::path(token_name) : dir / token_name;
  if (!write_file(token_file, token + "\n", 0600, uid, gid, error)) {
    std::fprintf(stderr, "flatlinkd: pair: %s\n", error.c_str());
    return 1;
  }
  if (!ca_file.empty()) {
    std::ifstream in(ca_file);
    std::stringstream pem;
    pem << in.rdbuf();
    const fs::path copy = dir / "cloud-ca.pem";
    if (fs::absolute(ca_file) != copy && !write_file(copy, pem.str(), 0644, 0, 0, error)) {
      std::fprintf(stderr, "flatlinkd: pair: %s\n", error.c_str());
      return 1;
    }
    cloud["ca_file"] = copy.string();
  }
  config["flat"] = flat;
  cloud["url"] = "wss://" + authority_of(url) + (url.path.empty() ? "/" : url.path);
  cloud["token_file"] = token_name;
  cloud.erase("token");
  cloud.erase("insecure");
  if (!config.contains("state_dir")) config["state_dir"] = "/var/lib/flatlink";
  if (!config.contains("adapters")) config["adapters"] = nlohmann::json::array();
  if (!write_file(config_file, config.dump(2) + "\n", 0640, 0, service ? gid : 0, error)) {
    std::fprintf(stderr, "flatlinkd: pair: %s\n", error.c_str());
    return 1;
  }
  std::printf("paired with flat %s: %s written (cloud %s), token in %s (0600)\n", flat.c_str(), config_file.c_str(),
              cloud["url"].get<std::string>().c_str(), token_file.c_str());
  auto loaded = config::load_gateway_config(config_file.string());
  if (auto* bad = std::get_if<config::ConfigError>(&loaded)) {
    std::fprintf(stderr, "flatlinkd: pair: the config is not valid yet: %s\n", bad->message.c_str());
    return 1;
  }
  if (!start) return 0;
  if (geteuid() != 0 || access("/run/systemd/system", F_OK) != 0) {
    std::printf("start it: systemctl enable --now flatlinkd (or run flatlinkd --config %s)\n", config_file.c_str());
    return 0;
  }
  const bool active = run({"systemctl", "is-active", "--quiet", "flatlinkd.service"}) == 0;
  const int rc = active ? run({"systemctl", "restart", "flatlinkd.service"})
                        : run({"systemctl", "enable", "--now", "flatlinkd.service"});
  if (rc != 0) {
    std::fprintf(stderr, "flatlinkd: pair: paired, but flatlinkd did not %s: journalctl -u flatlinkd -n 20\n",
                 active ? "restart" : "start");
    return 1;
  }
  std::printf("flatlinkd %s\n", active ? "restarted" : "enabled and started");
  return 0;
}

}  // namespace flatlink::gateway
