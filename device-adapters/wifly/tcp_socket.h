// Non-blocking TCP sockets for the WiFly adapter ("basic TCP socket stuff"):
// listen, accept, connect, read, write, peer names. Errors are values; nothing blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flatlink::adapters::wifly::tcp {

// A listening socket on address:port (IPv4 or IPv6 literal), or -1 with `error` set.
int listen_on(const std::string& address, uint16_t port, std::string& error);
// The port a socket is bound to (e.g. after listening on port 0), or 0.
uint16_t local_port(int fd);
// An accepted, non-blocking socket, or -1: `would_block` when there is nobody waiting.
int accept_one(int listen_fd, std::string& peer_address, bool& would_block, std::string& error);
// Starts a non-blocking connect; `in_progress` when it completes later (watch for
// writable, then call connect_result). -1 with `error` on immediate failure.
int connect_to(const std::string& host, uint16_t port, bool& in_progress, std::string& error);
// 0 when the pending connect succeeded, otherwise the errno it failed with.
int connect_result(int fd);

enum class IoStatus { ok, would_block, closed, failed };
// Reads up to `max` bytes and appends them to `out`.
IoStatus read_some(int fd, std::string& out, size_t max, std::string& error);
// Writes from the front of `data` and erases what was written.
IoStatus write_some(int fd, std::string& data, std::string& error);

void close_fd(int fd);

}  // namespace flatlink::adapters::wifly::tcp
