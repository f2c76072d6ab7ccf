// The read hooks of ws_frame_guard.h, linked into the flatlink-cloud executable only:
// libwebsockets reads a plain connection with recv() and a TLS one with SSL_read(), through
// the dynamic linker, so these definitions (exported because libwebsockets refers to them)
// see each read first and call the C library's and OpenSSL's own (RTLD_NEXT). Reads on other
// threads and of connections the guard does not watch pass untouched.
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstdint>

#include "cloud-server/ws_frame_guard.h"

namespace {

namespace guard = flatlink::cloud::ws_guard;

template <typename F>
F next_definition(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// What lws may have of `n` bytes just read. Cut short: the socket's read side is shut, so the
// loop sees it readable again and the next read (answered 0 below) ends the connection.
long pass_on(int fd, void* buf, long n) {
  if (n <= 0) return n;
  const size_t pass = guard::received(fd, static_cast<const uint8_t*>(buf), static_cast<size_t>(n));
  if (pass < static_cast<size_t>(n)) shutdown(fd, SHUT_RD);
  return static_cast<long>(pass);
}

}  // namespace

extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  using Recv = ssize_t (*)(int, void*, size_t, int);
  static const Recv real = next_definition<Recv>("recv");
  if ((flags & MSG_PEEK) || !guard::on_loop_thread()) return real(fd, buf, len, flags);
  if (guard::refused(fd)) return 0;
  return pass_on(fd, buf, real(fd, buf, len, flags));
}

extern "C" int SSL_read(SSL* ssl, void* buf, int num) {
  using Read = int (*)(SSL*, void*, int);
  static const Read real = next_definition<Read>("SSL_read");
  if (!guard::on_loop_thread()) return real(ssl, buf, num);
  const int fd = SSL_get_fd(ssl);
  if (guard::refused(fd)) return 0;
  return static_cast<int>(pass_on(fd, buf, real(ssl, buf, num)));
}
