"""HTTP/1.1 keep-alive throughput: the same server on each loop, loaded by
wrk in one run, alternating between loops round after round.

    python bench_http.py [--rounds 3] [--duration 5] [--connections 50]
                         [--kinds protocol,streams] [--no-pin]

Reports the median req/s, p99 latency and server CPU time per request for
each loop and server kind (an asyncio Protocol, streams), and the ratios
against the stock asyncio loop and uvloop.  With two or more CPUs the server
and wrk are pinned to one CPU each (--no-pin: not), so that they do not
trade places on a core and every loop meets the same scheduling.

It also reports how busy wrk's CPU was.  At 95 % or more the rate is wrk's
ceiling, not the server's (loopback TCP costs the client about as much
kernel time per request as the server), and the line says "wrk-bound":
only the server CPU per request still tells such loops apart, and
bench_instr.py counts the loop's share of it exactly.  Needs `wrk`
(scripts/apt-packages.txt) and the bgloop package importable (uvloop
optional).
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
WRK_BOUND = 0.95  # wrk's CPU share from which the rate is wrk's, not the server's


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
    """(req/s, p99 ms, the share of one CPU wrk used)"""
    start = time.monotonic()
    proc = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True,
        preexec_fn=pinned(cpu))
    with proc.stdout:
        out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    busy = (usage.ru_utime + usage.ru_stime) / (time.monotonic() - start)
    if proc.returncode:
        raise SystemExit(f"bench_http: wrk failed ({proc.returncode}):\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return rps, to_ms(*m.groups()), busy


def cpu_seconds(pid):
    """(user, system) CPU seconds of the server so far: what the loop itself
    costs, which a busy shared machine distorts much less than wall-clock
    throughput.  System time is the kernel's share (TCP over loopback, the
    same syscalls for every loop); user time is where loops differ."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_one(loop_name, kind, args):
    port = free_port()
    server_cpu, wrk_cpu = cpus(args)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "http_server.py"), loop_name,
                             str(port), kind], stdout=subprocess.PIPE, text=True,
                            preexec_fn=pinned(server_cpu))
    try:
        assert proc.stdout.readline().strip() == "ready"
        user0, sys0 = cpu_seconds(proc.pid)
        rps, p99, wrk_busy = wrk(port, args.duration, args.connections, wrk_cpu)
        user1, sys1 = cpu_seconds(proc.pid)
        per_req = 1e6 / (rps * args.duration)
        return rps, p99, (user1 - user0) * per_req, (sys1 - sys0) * per_req, wrk_busy
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
                rps, p99, user_us, sys_us, busy = run_one(name, kind, args)
                results[(kind, name)].append((rps, p99, user_us + sys_us, user_us, sys_us, busy))
                print(f"round {r + 1} {kind:8s} {name:9s} {rps:10.0f} req/s  p99 {p99:7.2f} ms  "
                      f"server CPU {user_us + sys_us:5.1f} us/req (user {user_us:4.1f})  "
                      f"wrk CPU {busy:4.0%}", flush=True)
                time.sleep(0.5)
    server_cpu, wrk_cpu = cpus(args)
    placement = (f"server on CPU {server_cpu}, wrk on CPU {wrk_cpu}" if server_cpu is not None
                 else "not pinned")
    print(f"\nHTTP/1.1 keep-alive, wrk -t1 -c{args.connections} -d{args.duration}s, "
          f"median of {args.rounds} rounds, {placement}, Python {sys.version.split()[0]}")
    for kind in kinds:
        med = {name: [statistics.median(x[i] for x in results[(kind, name)]) for i in range(6)]
               for name in loops}
        for name in loops:
            rps, p99, cpu, user, system, busy = med[name]
            vs = f"x{rps / med['asyncio'][0]:.2f} vs asyncio"
            if "uvloop" in med:
                vs += f"  x{rps / med['uvloop'][0]:.2f} vs uvloop"
            print(f"  {kind:8s} {name:9s} {rps:10.0f} req/s  p99 {p99:7.2f} ms  {vs}"
                  f"   server CPU {cpu:5.1f} us/req (user {user:4.1f} + kernel {system:4.1f})"
                  f"  x{med['asyncio'][2] / cpu:.2f} less than asyncio"
                  f"  wrk CPU {busy:4.0%}{'  wrk-bound' if busy >= WRK_BOUND else ''}")


if __name__ == "__main__":
    main()
