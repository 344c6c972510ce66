#!/usr/bin/env python3
"""The Python twin of examples/listen/main.go, standard library only: a
check that an app of another framework takes the sockets the agent hands
over by systemd socket activation.

It serves HTTP on every socket of LISTEN_FDS (fds 3, 4, ...; LISTEN_PID must
be its own pid; LISTEN_FDNAMES names them), or, without LISTEN_FDS, on
127.0.0.1:$PORT. It answers / with its version (the file VERSION in its
working directory, else CUTOVER_RELEASE_ID), /pid with its process id and
/healthz with 200, or 500 while a file UNHEALTHY exists in its working
directory. On SIGTERM or SIGINT it stops accepting, finishes the requests in
flight and exits.
"""

import http.server
import os
import signal
import socket
import sys
import threading

LISTEN_FDS_START = 3


def read_version(directory):
    try:
        with open(os.path.join(directory, "VERSION")) as f:
            v = f.read().strip()
            if v:
                return v
    except OSError:
        pass
    return os.environ.get("CUTOVER_RELEASE_ID", "unknown")


def inherited_sockets():
    """Returns [(name, socket)] from LISTEN_FDS, None without it."""
    if "LISTEN_FDS" not in os.environ:
        return None
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("app.py: LISTEN_FDS is set but LISTEN_PID %s is not my pid %d"
                 % (os.environ.get("LISTEN_PID"), os.getpid()))
    n = int(os.environ["LISTEN_FDS"])
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    out = []
    for i in range(n):
        fd = LISTEN_FDS_START + i
        name = names[i] if i < len(names) and names[i] else "LISTEN_FD_%d" % fd
        out.append((name, socket.socket(fileno=fd)))  # family and type from the fd
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(k, None)
    return out


def make_handler(directory, version):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the Go app

        def do_GET(self):
            status, body = 200, version
            if self.path == "/pid":
                body = str(os.getpid())
            elif self.path == "/healthz":
                if os.path.exists(os.path.join(directory, "UNHEALTHY")):
                    status, body = 500, "unhealthy: " + version
                else:
                    body = "ok"
            elif self.path != "/":
                status, body = 404, "not found"
            data = (body + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def setup(self):
            super().setup()
            self.server.track(self.connection, True)

        def handle_one_request(self):
            super().handle_one_request()
            if self.server.answered(self.connection):
                self.close_connection = True  # stopping: no next request

        def finish(self):
            self.server.track(self.connection, False)
            super().finish()

        def log_message(self, *args):
            pass  # a unix socket has no client address to log; be quiet

    return Handler


class Server(http.server.ThreadingHTTPServer):
    """Serves one socket; stop() is Go's http.Server.Shutdown: stop
    accepting, end the kept-alive connections, finish the requests in
    flight."""

    daemon_threads = False  # server_close waits for the requests in flight
    block_on_close = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.kept = set()  # connections that were answered once
        self.stopping = False

    def track(self, conn, add):
        if not add:
            with self.lock:
                self.kept.discard(conn)

    def answered(self, conn):
        """Records that conn was answered; True when stopping."""
        with self.lock:
            if not self.stopping:
                self.kept.add(conn)
            return self.stopping

    def stop(self):
        with self.lock:
            self.stopping = True
            kept = list(self.kept)
        # A kept-alive connection waits for its next request: end its
        # reading side, so that its handler sees the end and returns (an
        # answer being written still goes out); a client that had sent a
        # request on it sends it again on a new connection. A connection
        # not answered yet keeps its first request: it is answered, then
        # closed. This comes first: another process serves the same
        # sockets, and every answer from here on is one it should give.
        for conn in kept:
            end_reading(conn)
        self.shutdown()  # no more accepts (within one poll interval)
        self.server_close()  # wait for the handlers


def end_reading(conn):
    try:
        conn.shutdown(socket.SHUT_RD)
    except OSError:
        pass


def serve(sock, handler):
    # Non-blocking: another process may take the connection that made the
    # socket readable (an old and a new release share it); accept() then
    # fails at once instead of blocking the loop, and shutdown() ends it.
    sock.setblocking(False)
    srv = Server(sock.getsockname(), handler, bind_and_activate=False)
    srv.socket.close()
    srv.socket = sock
    srv.server_address = sock.getsockname()
    return srv


# STOP_SIGNALS stop the app. They are blocked from the start, in every
# thread, and taken with sigwait: a Python handler that set an Event would
# run in the main thread, maybe while that thread holds the Event's lock in
# Event.wait, and never return (seen under load: the old release went on
# answering until SIGKILL).
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main():
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # before any thread starts
    directory = os.getcwd()
    version = read_version(directory)
    handler = make_handler(directory, version)
    socks = inherited_sockets()
    if socks is None:
        port = os.environ.get("PORT")
        if not port:
            sys.exit("app.py: no LISTEN_FDS and no PORT: nothing to listen on")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(port)))
        s.listen(128)
        socks = [("own", s)]
    servers = [serve(s, handler) for _, s in socks]
    threads = [threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}) for srv in servers]
    for t in threads:
        t.start()
    print("app.py: version %s, pid %d, serving on %s" % (version, os.getpid(),
          ", ".join(name for name, _ in socks)), flush=True)

    signal.sigwait(STOP_SIGNALS)
    print("app.py: version %s, pid %d: stopping" % (version, os.getpid()), flush=True)
    stoppers = [threading.Thread(target=srv.stop) for srv in servers]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
    print("app.py: version %s, pid %d: stopped" % (version, os.getpid()), flush=True)


if __name__ == "__main__":
    main()
