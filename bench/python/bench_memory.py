"""Memory per idle connection: a protocol server on each loop holds N idle
TCP connections (default 10,000); the growth of its resident set size
divided by N, in one run for every loop.

    python bench_memory.py [--connections 10000] [--rounds 2]

Raises RLIMIT_NOFILE (soft up to the hard limit) in the client and the
server; fails with a clear message if the hard limit is too low.
"""
import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

from loops import available, make_loop, serve_until_killed

HERE = os.path.dirname(os.path.abspath(__file__))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"bench_memory: RLIMIT_NOFILE hard limit {hard} < {need}; raise it (ulimit -Hn)")
    if soft == resource.RLIM_INFINITY or soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class Idle(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def serve(loop_name, port, n):
    raise_nofile(n + 256)
    loop = make_loop(loop_name)
    serve_until_killed(loop, loop.create_server(Idle, "127.0.0.1", port, backlog=4096))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def measure(loop_name, n):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", loop_name, str(port), str(n)],
                            stdout=subprocess.PIPE, text=True)
    socks = []
    try:
        assert proc.stdout.readline().strip() == "ready"
        # One round trip first, so lazily built parts of the loop are there.
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"x")
            c.recv(1)
        time.sleep(0.3)
        base_fds = open_fds(proc.pid)
        before = rss_kib(proc.pid)
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        deadline = time.monotonic() + 60
        while open_fds(proc.pid) < base_fds + n:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench_memory: {loop_name} accepted only "
                                 f"{open_fds(proc.pid) - base_fds} of {n}")
            time.sleep(0.05)
        time.sleep(0.5)
        return (rss_kib(proc.pid) - before) * 1024 / n
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait()


def main():
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    raise_nofile(args.connections + 256)
    loops = available()
    res = {name: [] for name in loops}
    for r in range(args.rounds):
        for name in loops:
            b = measure(name, args.connections)
            res[name].append(b)
            print(f"round {r + 1} {name:9s} {b:8.0f} bytes per idle connection", flush=True)
    print(f"\nmemory per idle connection ({args.connections} connections, server RSS growth), "
          f"median of {args.rounds} rounds, Python {sys.version.split()[0]}")
    med = {name: statistics.median(res[name]) for name in loops}
    for name in loops:
        vs = f"x{med[name] / med['asyncio']:.2f} of asyncio"
        if "uvloop" in med:
            vs += f"  x{med[name] / med['uvloop']:.2f} of uvloop"
        print(f"  {name:9s} {med[name]:8.0f} B  {vs}")


if __name__ == "__main__":
    main()
