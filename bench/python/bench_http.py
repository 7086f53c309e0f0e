"""HTTP/1.1 keep-alive throughput: the same server on each loop, loaded by
wrk in one run, alternating between loops round after round.

    python bench_http.py [--rounds 3] [--duration 5] [--connections 50]
                         [--kinds protocol,streams] [--no-pin]

Reports the median req/s, p99 latency and server CPU time per request for
each loop and server kind (an asyncio Protocol, streams), and the ratios
against the stock asyncio loop and uvloop.  With two or more CPUs the server
and wrk are pinned to one CPU each (--no-pin: not), so that they do not
trade places on a core and every loop meets the same scheduling.  Needs `wrk` (scripts/apt-packages.txt) and the
bgloop package importable (uvloop optional).
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

from loops import available

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def pinned(cpu):
    """A preexec_fn that puts the child on one CPU (None: leave it)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def cpus(args):
    """(server CPU, wrk CPU), or (None, None) when not pinning."""
    avail = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.no_pin or len(avail) < 2:
        return None, None
    return avail[-1], avail[0]


def wrk(port, duration, connections, cpu=None):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True,
        preexec_fn=pinned(cpu)).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return rps, to_ms(*m.groups())


def cpu_seconds(pid):
    # utime + stime of the server: what the loop itself costs, which a busy
    # shared machine distorts much less than wall-clock throughput.
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(loop_name, kind, args):
    port = free_port()
    server_cpu, wrk_cpu = cpus(args)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "http_server.py"), loop_name,
                             str(port), kind], stdout=subprocess.PIPE, text=True,
                            preexec_fn=pinned(server_cpu))
    try:
        assert proc.stdout.readline().strip() == "ready"
        cpu0 = cpu_seconds(proc.pid)
        rps, p99 = wrk(port, args.duration, args.connections, wrk_cpu)
        cpu_us = (cpu_seconds(proc.pid) - cpu0) / (rps * args.duration) * 1e6
        return rps, p99, cpu_us
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--kinds", default="protocol,streams")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place server and wrk")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench_http: wrk not found (apt-get install wrk)")
    loops = available()
    kinds = args.kinds.split(",")
    results = {(k, name): [] for k in kinds for name in loops}
    for r in range(args.rounds):
        for kind in kinds:
            for name in loops:  # alternate: drift on a shared machine hits all alike
                rps, p99, cpu_us = run_one(name, kind, args)
                results[(kind, name)].append((rps, p99, cpu_us))
                print(f"round {r + 1} {kind:8s} {name:9s} {rps:10.0f} req/s  p99 {p99:7.2f} ms  "
                      f"server CPU {cpu_us:5.1f} us/req", flush=True)
                time.sleep(0.5)
    server_cpu, wrk_cpu = cpus(args)
    placement = (f"server on CPU {server_cpu}, wrk on CPU {wrk_cpu}" if server_cpu is not None
                 else "not pinned")
    print(f"\nHTTP/1.1 keep-alive, wrk -t1 -c{args.connections} -d{args.duration}s, "
          f"median of {args.rounds} rounds, {placement}, Python {sys.version.split()[0]}")
    for kind in kinds:
        med = {name: [statistics.median(x[i] for x in results[(kind, name)]) for i in range(3)]
               for name in loops}
        for name in loops:
            rps, p99, cpu = med[name]
            vs = f"x{rps / med['asyncio'][0]:.2f} vs asyncio"
            if "uvloop" in med:
                vs += f"  x{rps / med['uvloop'][0]:.2f} vs uvloop"
            print(f"  {kind:8s} {name:9s} {rps:10.0f} req/s  p99 {p99:7.2f} ms  {vs}"
                  f"   server CPU {cpu:5.1f} us/req  x{cpu / med['asyncio'][2]:.2f}")


if __name__ == "__main__":
    main()
