#!/usr/bin/env python3
"""A TCP balancer for the cluster tests (tests/integration/cluster_group.sh), standing in for
HAProxy's `balance first` with health checks (docs/scale-out.md): each frontend listens on
127.0.0.1 (port 0) and sends every connection to the first of its backends that accepts it,
so a device whose node is gone reaches the other node at its next connect. Bytes are copied
both ways unchanged; when either side closes, so does the other.

usage: tcp_balancer.py PORTS_FILE LOG_FILE NAME=HOST:PORT,HOST:PORT... ...
PORTS_FILE gets "NAME PORT" per frontend once all listen; LOG_FILE a line per connection,
"NAME -> HOST:PORT" (or "NAME -> none")."""
import os
import socket
import sys
import threading

log_lock = threading.Lock()


def log(path, line):
    with log_lock, open(path, "a") as f:
        f.write(line + "\n")


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(name, lsock, backends, log_path):
    while True:
        client, _ = lsock.accept()
        upstream = None
        for host, port in backends:
            try:
                upstream = socket.create_connection((host, port), timeout=1)
                upstream.settimeout(None)
                break
            except OSError:
                upstream = None
        log(log_path, "%s -> %s" % (name, "%s:%d" % (host, port) if upstream else "none"))
        if upstream is None:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


def main():
    ports_file, log_path = sys.argv[1], sys.argv[2]
    lines, threads = [], []
    for spec in sys.argv[3:]:
        name, targets = spec.split("=", 1)
        backends = []
        for t in targets.split(","):
            host, port = t.rsplit(":", 1)
            backends.append((host, int(port)))
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        lines.append("%s %d" % (name, lsock.getsockname()[1]))
        threads.append(threading.Thread(target=serve, args=(name, lsock, backends, log_path),
                                        daemon=True))
    for t in threads:
        t.start()
    with open(ports_file + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(ports_file + ".tmp", ports_file)
    threading.Event().wait()


if __name__ == "__main__":
    main()
