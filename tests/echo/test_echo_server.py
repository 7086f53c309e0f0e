#!/usr/bin/env python3
"""Runs examples/echo_server against real TCP clients.

Usage: test_echo_server.py PATH/TO/echo_server
BGLOOP_RUN_PREFIX, if set, is a command the server runs under (e.g.
"qemu-aarch64 -L SYSROOT" for a cross-built one).

Prints TAP.  Checks: bad arguments give a usage message and exit status 2;
concurrent clients (request/response, bulk streaming, a 1 MiB payload to a
client that stops reading) get their bytes back exactly; the server reports
partial writes and paused reads for the slow client (so the buffering path
really ran); SIGTERM and SIGINT shut it down with exit status 0, also while a
client is still connected; out of descriptors, it pauses accepting and serves
the waiting clients as others leave.  Only the standard library is used.  Generous
timeouts guard against hangs; nothing asserts on durations.
"""
import os
import random
import re
import resource
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 60.0  # any single wait; only reached if something hangs
BUF = 8192      # kernel socket buffer size for the server (-b) and slow client
FEW_FDS = 32    # RLIMIT_NOFILE of the server in the out-of-descriptors case
RUN_PREFIX = shlex.split(os.environ.get("BGLOOP_RUN_PREFIX", ""))

results = []


def tap(ok, name, detail=""):
    results.append(ok)
    print(("ok" if ok else "not ok"), len(results), "-", name)
    if not ok and detail:
        for line in str(detail).splitlines():
            print("#", line)
    sys.stdout.flush()


class Server:
    def __init__(self, exe, args, env=None, preexec_fn=None):
        self.proc = subprocess.Popen(RUN_PREFIX + [exe] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     preexec_fn=preexec_fn)
        line = self._readline(self.proc.stdout)
        m = re.fullmatch(rb"listening on 127\.0\.0\.1:(\d+)\n", line or b"")
        if not m:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError("no 'listening on' line: %r, stderr %r" % (line, err))
        self.port = int(m.group(1))

    @staticmethod
    def _readline(f):
        ready, _, _ = select.select([f], [], [], TIMEOUT)
        return f.readline() if ready else None

    def stop(self, signo):
        """Send signo, return (exit status, stderr text)."""
        self.proc.send_signal(signo)
        try:
            _, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            return None, err.decode(errors="replace") + "\n(killed: did not exit)"
        return self.proc.returncode, err.decode(errors="replace")


def connect(port, bufsize=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if bufsize:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", port))
    return s


def recv_exact(s, n):
    chunks, got = [], 0
    while got < n:
        b = s.recv(min(1 << 20, n - got))
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv_all(s):
    chunks = []
    while True:
        b = s.recv(1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def client_request_response(port, seed, out):
    """Several messages of varied sizes, each read back before the next."""
    rng = random.Random(seed)
    sent = 0
    with connect(port) as s:
        for size in (1, 100, 4096, 65536, 200000, rng.randrange(1, 5000)):
            msg = rng.randbytes(size)
            s.sendall(msg)
            back = recv_exact(s, size)
            if back != msg:
                raise AssertionError("seed %d: %d-byte message came back as %d bytes%s"
                                     % (seed, size, len(back), "" if len(back) != size
                                        else " with different content"))
            sent += size
        s.shutdown(socket.SHUT_WR)
        rest = recv_all(s)
        if rest:
            raise AssertionError("seed %d: %d unexpected bytes after EOF" % (seed, len(rest)))
    out.append(sent)


def client_bulk(port, seed, out):
    """Stream 1 MiB while reading concurrently, half-close, read to EOF."""
    payload = random.Random(seed).randbytes(1 << 20)
    with connect(port) as s:
        def send():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send)
        t.start()
        back = recv_all(s)
        t.join(TIMEOUT)
    if back != payload:
        raise AssertionError("bulk: sent %d bytes, got %d back%s" % (
            len(payload), len(back), " (content differs)" if len(back) == len(payload) else ""))
    out.append(len(payload))


def client_slow_reader(port, seed, out):
    """Send 1 MiB with small socket buffers and read nothing until the
    sender is stuck: the whole path, including the server's own buffer, is
    then full, so the server must have met partial writes and paused reads."""
    payload = random.Random(seed).randbytes(1 << 20)
    with connect(port, BUF) as s:
        progress = [0, time.monotonic()]
        done = threading.Event()

        def send():
            view = memoryview(payload)
            while view:
                n = s.send(view[:4096])
                view = view[n:]
                progress[0] += n
                progress[1] = time.monotonic()
            s.shutdown(socket.SHUT_WR)
            done.set()

        t = threading.Thread(target=send)
        t.start()
        # Stuck = no progress for two seconds.  The server drains its socket
        # whenever its buffer has room, so its buffer is full and its reads
        # paused by then, unless it was not scheduled at all for that long.
        deadline = time.monotonic() + TIMEOUT
        while not done.is_set() and time.monotonic() < deadline:
            if progress[0] > 0 and time.monotonic() - progress[1] > 2.0:
                break
            time.sleep(0.05)
        stuck_at = progress[0]
        back = recv_all(s)
        t.join(TIMEOUT)
    if stuck_at >= len(payload):
        raise AssertionError("slow reader: sender never blocked, the test proves nothing")
    if back != payload:
        raise AssertionError("slow reader: sent %d bytes, got %d back%s" % (
            len(payload), len(back), " (content differs)" if len(back) == len(payload) else ""))
    out.append(len(payload))


def run_clients(port):
    errors, sent, threads = [], [], []

    def wrap(fn, *a):
        try:
            fn(*a)
        except Exception as e:  # reported, not swallowed
            errors.append("%s: %r" % (fn.__name__, e))

    for i in range(6):
        threads.append(threading.Thread(target=wrap, args=(client_request_response, port, i, sent)))
    threads.append(threading.Thread(target=wrap, args=(client_bulk, port, 100, sent)))
    threads.append(threading.Thread(target=wrap, args=(client_slow_reader, port, 200, sent)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
        if t.is_alive():
            errors.append("a client thread hung")
    return errors, len(threads), sum(sent)


def parse_summary(err):
    m = re.search(r"(\d+) connections, (\d+) bytes echoed, (\d+) partial writes, "
                  r"(\d+) read pauses", err)
    return tuple(int(x) for x in m.groups()) if m else None


def main():
    if len(sys.argv) != 2:
        print("usage: test_echo_server.py ECHO_SERVER", file=sys.stderr)
        return 2
    exe = sys.argv[1]

    for args, env_port in ((["notaport"], None), (["70000"], None), (["-1"], None),
                           (["1", "2"], None), (["-b"], None), (["-b", "0", "0"], None),
                           ([], "xyz")):
        env = dict(os.environ)
        env.pop("BGLOOP_ECHO_PORT", None)
        if env_port is not None:
            env["BGLOOP_ECHO_PORT"] = env_port
        p = subprocess.run(RUN_PREFIX + [exe] + args, env=env, capture_output=True, timeout=TIMEOUT)
        tap(p.returncode == 2 and b"usage:" in p.stderr,
            "bad arguments %r (BGLOOP_ECHO_PORT=%r) give usage and exit 2" % (args, env_port),
            "status %s, stderr %r" % (p.returncode, p.stderr))

    srv = Server(exe, ["-b", str(BUF), "0"])
    tap(0 < srv.port < 65536, "port 0 binds an ephemeral port (%d)" % srv.port)
    errors, nclients, total = run_clients(srv.port)
    tap(not errors, "%d concurrent clients get their bytes back exactly" % nclients,
        "\n".join(errors))

    idle = connect(srv.port)  # still connected at shutdown: must be freed too
    idle.sendall(b"ping")
    tap(recv_exact(idle, 4) == b"ping", "idle client is echoed")
    status, err = srv.stop(signal.SIGTERM)
    idle.close()
    tap(status == 0, "SIGTERM: exit status 0 with a client connected", "status %s\n%s" % (status, err))
    summary = parse_summary(err)
    tap(summary is not None, "shutdown summary printed", err)
    if summary:
        conns, nbytes, partial, pauses = summary
        tap(conns == nclients + 1, "server counted %d connections" % (nclients + 1),
            "counted %d" % conns)
        tap(nbytes == total + 4, "server echoed every byte (%d)" % (total + 4),
            "server says %d" % nbytes)
        tap(partial > 0, "partial writes were handled (%d)" % partial, err)
        tap(pauses > 0, "reads were paused for back-pressure (%d)" % pauses, err)

    env = dict(os.environ, BGLOOP_ECHO_PORT="0")
    srv = Server(exe, [], env=env)
    with connect(srv.port) as s:
        s.sendall(b"x")
        tap(recv_exact(s, 1) == b"x", "BGLOOP_ECHO_PORT=0 server echoes")
    status, err = srv.stop(signal.SIGINT)
    tap(status == 0, "SIGINT: exit status 0", "status %s\n%s" % (status, err))

    # Out of descriptors: the server must stop accepting for a while (not
    # spin, not die) and accept the waiting clients once others have left.
    # Skipped when the server runs under valgrind (set ECHO_TEST_VALGRIND=1):
    # valgrind closes descriptors that land in its reserved range, which
    # drops connections the server never saw.
    if os.environ.get("ECHO_TEST_VALGRIND"):
        print("ok %d - out of fds # SKIP under valgrind" % (len(results) + 1))
        results.append(True)
        print("1..%d" % len(results))
        return 0 if all(results) else 1
    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FEW_FDS, FEW_FDS))
    try:
        srv = Server(exe, ["0"], preexec_fn=few_fds)
    except RuntimeError as e:
        tap(False, "out of fds: server starts with RLIMIT_NOFILE %d" % FEW_FDS, e)
        print("1..%d" % len(results))
        return 1
    clients = [connect(srv.port) for _ in range(FEW_FDS + 8)]
    echoed = 0
    try:
        for i, c in enumerate(clients):
            c.sendall(b"%d" % i)
            if recv_exact(c, len(b"%d" % i)) == b"%d" % i:
                echoed += 1
            c.close()  # frees a descriptor in the server for the next one
    except OSError as e:
        print("# client error:", e)
    finally:
        for c in clients:
            c.close()
    tap(echoed == len(clients), "out of fds: every waiting client is served in turn (%d/%d)"
        % (echoed, len(clients)))
    status, err = srv.stop(signal.SIGTERM)
    tap(status == 0 and "pausing accepts" in err,
        "out of fds: accepts were paused, exit status 0", "status %s\n%s" % (status, err))

    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
