"""HTTP/1.1 keep-alive throughput: the same server on each loop, loaded by
wrk in one run, alternating between loops round after round.

    python bench_http.py [--rounds 3] [--duration 5] [--connections 50]
                         [--kinds protocol,streams]

Reports the median req/s, p99 latency and server CPU time per request for
each loop and server kind (an asyncio Protocol, streams), and the ratios
against the stock asyncio loop and uvloop.  Needs `wrk` (scripts/apt-packages.txt) and the
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


def wrk(port, duration, connections):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
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
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "http_server.py"), loop_name,
                             str(port), kind], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        cpu0 = cpu_seconds(proc.pid)
        rps, p99 = wrk(port, args.duration, args.connections)
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
    print(f"\nHTTP/1.1 keep-alive, wrk -t1 -c{args.connections} -d{args.duration}s, "
          f"median of {args.rounds} rounds, Python {sys.version.split()[0]}")
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
