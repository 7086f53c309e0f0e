"""Echo round trips per second: protocol and streams servers on each loop,
driven by the same blocking client (threads, one connection each, one
message in flight per connection) in a separate process.

    python bench_echo.py [--rounds 3] [--duration 3] [--clients 10] [--sizes 64,1024,16384]

Prints the ratios against the stock asyncio loop and uvloop per message size.
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


def measure(loop_name, kind, size, args):
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "echo_server.py"), loop_name,
                             kind, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        counts = [0] * args.clients
        stop_at = time.monotonic() + args.duration
        threads = [threading.Thread(target=client, args=(port, size, stop_at, counts, i))
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
    ap.add_argument("--sizes", default="64,1024,16384")
    args = ap.parse_args()
    loops = available()
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [(k, s) for k in ("protocol", "streams") for s in sizes]
    res = {(c, n): [] for c in cases for n in loops}
    for r in range(args.rounds):
        for case in cases:
            for name in loops:
                v, cpu = measure(name, case[0], case[1], args)
                res[(case, name)].append((v, cpu))
                print(f"round {r + 1} {case[0]:8s} {case[1]:6d} B {name:9s} {v:9.0f} round trips/s"
                      f"  server CPU {cpu:5.1f} us each", flush=True)
    print(f"\necho, {args.clients} clients, median of {args.rounds} rounds, "
          f"Python {sys.version.split()[0]}")
    for case in cases:
        med = {n: [statistics.median(x[i] for x in res[(case, n)]) for i in range(2)]
               for n in loops}
        for name in loops:
            v, cpu = med[name]
            vs = f"x{v / med['asyncio'][0]:.2f} vs asyncio"
            if "uvloop" in med:
                vs += f"  x{v / med['uvloop'][0]:.2f} vs uvloop"
            print(f"  {case[0]:8s} {case[1]:6d} B {name:9s} {v:9.0f}/s  {vs}   "
                  f"server CPU {cpu:5.1f} us  x{cpu / med['asyncio'][1]:.2f}")


if __name__ == "__main__":
    main()
