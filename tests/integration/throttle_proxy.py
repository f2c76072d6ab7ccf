#!/usr/bin/env python3
"""A TCP proxy that throttles one direction to BYTES_PER_S: "down" (upstream -> client,
the default) or "up" (client -> upstream).

Usage: throttle_proxy.py LISTEN_PORT UPSTREAM_PORT BYTES_PER_S [down|up]

The socket it reads the throttled direction from has a tiny receive buffer, so the
throttled bytes wait on the sender's side (where flatlink's own bounded queue is) rather
than in this proxy's kernel buffer. Prints "listening" when ready. For the stream tests.
"""
import socket
import sys
import threading
import time

listen_port, upstream_port, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
direction = sys.argv[4] if len(sys.argv) > 4 else "down"


def relay(src, dst, throttle):
    """Copies src to dst until either side ends; at `rate` bytes/s when throttle."""
    start = time.monotonic()
    sent = 0
    try:
        while True:
            data = src.recv(512 if throttle else 4096)
            if not data:
                break
            dst.sendall(data)
            if not throttle:
                continue
            sent += len(data)
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            elif ahead < -0.05:
                # Idle time is not credit: at most 50 ms worth of burst.
                start = time.monotonic()
                sent = 0
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    up.connect(("127.0.0.1", upstream_port))
    threading.Thread(target=relay, args=(client, up, direction == "up"), daemon=True).start()
    threading.Thread(target=relay, args=(up, client, direction != "up"), daemon=True).start()


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if direction == "up":
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # inherited by accepted sockets
server.bind(("127.0.0.1", listen_port))
server.listen(16)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    serve(conn)
