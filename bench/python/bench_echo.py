"""Echo round trips per second: protocol and streams servers on each loop,
driven by bench/echo_load.c (one epoll thread, N connections, one message
in flight per connection, every echo checked) in a separate process.

    python bench_echo.py [--rounds 3] [--duration 3] [--connections 10]
                         [--sizes 64,1024,16384] [--loops asyncio,uvloop,...]
                         [--kinds protocol,streams] [--load PATH] [--no-pin]

With two or more CPUs the server runs on one and the load generator on
another, so neither steals the other's time.  Rounds alternate the loops
(round 1: every case on every loop, then round 2, ...) so that a slow
moment of the machine hits them all.  Prints round trips per second, the
server's CPU time per round trip and, per case, the medians' ratios
against the stock asyncio loop and uvloop.  On a shared machine the rates
follow its other load; the server's CPU time per round trip is the
steadier figure.  "server busy" is the share of its CPU the server used:
well below 100 %, the rate is set by the round trip's latency (the
kernel's loopback path and waking each side), not by the loop's work;
bench_instr.py counts that work exactly.

echo_load is found as --load, $BGLOOP_ECHO_LOAD, the bench build's
(build-bench/bench/echo_load, see bench/run.sh) or compiled with `cc -O2`
into build/bench/echo_load.
"""
import argparse
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys

from loops import available

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LOAD_SRC = os.path.join(ROOT, "bench", "echo_load.c")


def fresh(path):
    return os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(LOAD_SRC)


def find_load(explicit):
    if explicit or os.environ.get("BGLOOP_ECHO_LOAD"):
        path = explicit or os.environ["BGLOOP_ECHO_LOAD"]
        if not os.access(path, os.X_OK):
            raise SystemExit(f"bench_echo: {path} is not an executable echo_load")
        return path
    built = os.path.join(ROOT, "build-bench", "bench", "echo_load")
    if fresh(built):
        return built
    out = os.path.join(ROOT, "build", "bench", "echo_load")
    if fresh(out):
        return out
    cc = shlex.split(os.environ.get("CC", "")) or [
        c for c in (shutil.which("cc"), shutil.which("gcc"), shutil.which("clang")) if c][:1]
    if not cc:
        raise SystemExit("bench_echo: no C compiler (cc, gcc or clang) to build bench/echo_load.c;"
                         " build it with bench/run.sh or pass --load PATH")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    try:
        r = subprocess.run(cc + ["-O2", "-o", out, LOAD_SRC], capture_output=True, text=True)
    except OSError as e:
        raise SystemExit(f"bench_echo: cannot run the C compiler {cc[0]}: {e}")
    if r.returncode:
        raise SystemExit(f"bench_echo: {' '.join(cc)} could not build {LOAD_SRC}:\n{r.stderr}")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """The server's time on a CPU: its threads' schedstat nanoseconds where
    the kernel has them, else utime + stime in clock ticks (bench_http.py)."""
    if os.path.exists(f"/proc/{pid}/schedstat"):
        ns = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
        return ns / 1e9
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid, cpu):
    if cpu is not None:
        os.sched_setaffinity(pid, {cpu})


def measure(loop_name, kind, size, args, load, cpus):
    """(round trips/s, server CPU microseconds per round trip)"""
    port = free_port()
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "echo_server.py"), loop_name,
                               kind, str(port)], stdout=subprocess.PIPE, text=True)
    client = None
    try:
        pin(server.pid, cpus[0])
        if server.stdout.readline().strip() != "ready":
            raise SystemExit(f"bench_echo: the {loop_name} {kind} server did not start")
        client = subprocess.Popen([load, "127.0.0.1", str(port), str(args.connections), str(size),
                                   str(args.duration)], stdout=subprocess.PIPE, text=True)
        pin(client.pid, cpus[1])
        if client.stdout.readline().strip() != "connected":
            raise SystemExit(f"bench_echo: echo_load could not connect ({loop_name} {kind})")
        cpu0 = cpu_seconds(server.pid)
        out = client.stdout.read()
        cpu = cpu_seconds(server.pid) - cpu0
        if client.wait():
            raise SystemExit(f"bench_echo: echo_load failed on {loop_name} {kind} {size} B")
        res = dict(line.split() for line in out.splitlines())
        trips = int(res["round_trips"])
        return float(res["rate"]), cpu / max(trips, 1) * 1e6
    finally:
        for p in (client, server):
            if p and p.poll() is None:
                p.terminate()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--sizes", default="64,1024,16384")
    ap.add_argument("--loops", help="comma-separated subset of " + ",".join(available()))
    ap.add_argument("--kinds", default="protocol,streams")
    ap.add_argument("--load", help="the echo_load executable")
    ap.add_argument("--no-pin", action="store_true", help="leave CPU placement to the kernel")
    args = ap.parse_args()
    load = find_load(args.load)
    loops = args.loops.split(",") if args.loops else available()
    sizes = [int(s) for s in args.sizes.split(",")]
    allowed = sorted(os.sched_getaffinity(0))
    cpus = (allowed[0], allowed[1]) if len(allowed) >= 2 and not args.no_pin else (None, None)
    cases = [(k, s) for k in args.kinds.split(",") for s in sizes]
    res = {(c, n): [] for c in cases for n in loops}
    for r in range(args.rounds):
        for case in cases:
            for name in loops:
                v, cpu = measure(name, case[0], case[1], args, load, cpus)
                res[(case, name)].append((v, cpu))
                print(f"round {r + 1} {case[0]:8s} {case[1]:6d} B {name:9s} {v:9.0f} round trips/s"
                      f"  server CPU {cpu:5.1f} us each", flush=True)
    where = (f"server on CPU {cpus[0]}, echo_load on CPU {cpus[1]}" if cpus[0] is not None
             else "not pinned")
    print(f"\necho, {args.connections} connections, {args.duration:g} s, median of {args.rounds}"
          f" rounds, Python {sys.version.split()[0]}, {where}")
    for case in cases:
        med = {n: [statistics.median(x[i] for x in res[(case, n)]) for i in range(2)]
               for n in loops}
        for name in loops:
            v, cpu = med[name]
            vs = ""
            if "asyncio" in med:
                vs += f"  x{v / med['asyncio'][0]:.2f} vs asyncio"
            if "uvloop" in med:
                vs += f"  x{v / med['uvloop'][0]:.2f} vs uvloop"
            ref = "uvloop" if "uvloop" in med else "asyncio" if "asyncio" in med else None
            cpu_vs = f"  x{cpu / med[ref][1]:.2f} of {ref}'s" if ref else ""
            print(f"  {case[0]:8s} {case[1]:6d} B {name:9s} {v:9.0f}/s{vs}   "
                  f"server CPU {cpu:5.1f} us{cpu_vs}  server busy {cpu * v / 1e6:4.0%}")


if __name__ == "__main__":
    main()
