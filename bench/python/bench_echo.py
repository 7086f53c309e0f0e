"""Echo round trips per second: protocol and streams servers on each loop,
driven by the same blocking client (threads, one connection each, one
message in flight per connection) in a separate process.

    python bench_echo.py [--rounds 3] [--duration 3] [--clients 10] [--size 1024]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from loops import available

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port, size, stop_at, counts, i):
    msg = b"x" * size
    n = 0
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.monotonic() < stop_at:
            s.sendall(msg)
            got = 0
            while got < size:
                chunk = s.recv(65536)
                if not chunk:
                    raise SystemExit("server closed")
                got += len(chunk)
            n += 1
    counts[i] = n


def cpu_seconds(pid):
    # utime + stime of the server process (see bench_http.py)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(loop_name, kind, args):
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "echo_server.py"), loop_name,
                             kind, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        counts = [0] * args.clients
        stop_at = time.monotonic() + args.duration
        threads = [threading.Thread(target=client, args=(port, args.size, stop_at, counts, i))
                   for i in range(args.clients)]
        t0 = time.monotonic()
        cpu0 = cpu_seconds(proc.pid)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        n = sum(counts)
        return n / (time.monotonic() - t0), (cpu_seconds(proc.pid) - cpu0) / max(n, 1) * 1e6
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    loops = available()
    res = {(k, n): [] for k in ("protocol", "streams") for n in loops}
    for r in range(args.rounds):
        for kind in ("protocol", "streams"):
            for name in loops:
                v, cpu = measure(name, kind, args)
                res[(kind, name)].append((v, cpu))
                print(f"round {r + 1} {kind:8s} {name:8s} {v:9.0f} round trips/s  "
                      f"server CPU {cpu:5.1f} us each", flush=True)
    print(f"\necho, {args.clients} clients x {args.size} B, median of {args.rounds} rounds, "
          f"Python {sys.version.split()[0]}")
    for kind in ("protocol", "streams"):
        base = statistics.median(x[0] for x in res[(kind, "asyncio")])
        base_cpu = statistics.median(x[1] for x in res[(kind, "asyncio")])
        for name in loops:
            v = statistics.median(x[0] for x in res[(kind, name)])
            cpu = statistics.median(x[1] for x in res[(kind, name)])
            print(f"  {kind:8s} {name:8s} {v:9.0f}/s  x{v / base:.2f} vs asyncio   "
                  f"server CPU {cpu:5.1f} us  x{cpu / base_cpu:.2f}")


if __name__ == "__main__":
    main()
