"""User-space instructions per request of each loop's server, counted by
valgrind's callgrind: the part of a request's cost that the event loop
controls, free of the machine's noise.

    python bench_instr.py [--requests 2000] [--connections 20] [--size 64]
                          [--cases http-protocol,http-streams,echo-protocol,echo-streams]
                          [--loops asyncio,uvloop,...]

Each case starts the server (bench/python/http_server.py or echo_server.py)
under callgrind, opens the connections, warms up, zeroes the counters
(callgrind_control), drives exactly --requests requests (one in flight per
connection), dumps the counters and divides.  The count covers everything
the server process runs in user space: the loop, its transports, asyncio's
own Python code and the benchmark's protocol; the kernel's work (the same
recv and send for every loop) is not in it.  Wall-clock throughput
(bench_http.py, bench_echo.py) adds the kernel and the load generator; on a
small machine those decide the rate, and this is what tells the loops apart.
"""
import argparse
import glob
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile

from loops import available

from http_server import RESPONSE

HERE = os.path.dirname(os.path.abspath(__file__))

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
CASES = ("http-protocol", "http-streams", "echo-protocol", "echo-streams")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(case, loop_name, port):
    family, kind = case.split("-")
    if family == "http":
        return ["http_server.py", loop_name, str(port), kind]
    return ["echo_server.py", loop_name, kind, str(port)]


def drive(socks, message, unit, n, stall=120.0):
    """Send `message` on every connection and again each time `unit` bytes
    came back, until n answers arrived (one message in flight per
    connection)."""
    sel = selectors.DefaultSelector()
    got = {}
    sent = done = 0
    for s in socks:
        got[s] = 0
        sel.register(s, selectors.EVENT_READ)
        if sent < n:
            s.sendall(message)
            sent += 1
    while done < n:
        events = sel.select(stall)
        if not events:
            raise SystemExit(f"bench_instr: no answer for {stall:.0f} s ({done} of {n} done)")
        for key, _ in events:
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                raise SystemExit("bench_instr: the server closed a connection")
            got[s] += len(data)
            while got[s] >= unit:
                got[s] -= unit
                done += 1
                if sent < n:
                    s.sendall(message)
                    sent += 1
    sel.close()


def callgrind_control(pid, flag):
    r = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True)
    if r.returncode != 0 or "OK" not in r.stdout:
        raise SystemExit(f"bench_instr: callgrind_control {flag} {pid} failed: {r.stdout}{r.stderr}")


def measure(case, loop_name, args, tmp):
    port = free_port()
    out = os.path.join(tmp, f"cg.{case}.{loop_name}")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             sys.executable] + server_command(case, loop_name, port),
                            cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    socks = []
    try:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"bench_instr: the {loop_name} {case} server did not start")
        if case.startswith("http"):
            message, unit = REQUEST, len(RESPONSE)
        else:
            message, unit = b"e" * args.size, args.size
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        drive(socks, message, unit, args.warmup)
        callgrind_control(proc.pid, "--zero")
        drive(socks, message, unit, args.requests)
        callgrind_control(proc.pid, "--dump")
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait()
    dumps = sorted(glob.glob(out + ".*"))
    if not dumps:
        raise SystemExit(f"bench_instr: callgrind wrote no dump for {loop_name} {case}")
    with open(dumps[-1]) as f:
        m = re.search(r"^summary: (\d+)", f.read(), re.M)
    return int(m.group(1)) / args.requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--size", type=int, default=64, help="echo message size in bytes")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--loops", default=",".join(available()))
    args = ap.parse_args()
    cases = args.cases.split(",")
    loops = args.loops.split(",")
    for case in cases:
        if case not in CASES:
            ap.error(f"unknown case {case!r} (choose from {', '.join(CASES)})")
    if args.requests < 1 or args.connections < 1 or args.size < 1:
        ap.error("--requests, --connections and --size must be positive")
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"bench_instr: {tool} not found (apt-get install valgrind)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_instr.") as tmp:
        for case in cases:
            for name in loops:
                results[(case, name)] = measure(case, name, args, tmp)
                print(f"{case:14s} {name:9s} {results[(case, name)]:9.0f} instructions/request",
                      flush=True)
    print(f"\nuser-space instructions per request (callgrind), {args.requests} requests over "
          f"{args.connections} connections, echo {args.size} B, Python {sys.version.split()[0]}\n"
          "(x2.00 vs asyncio: half the instructions asyncio's loop takes)")
    for case in cases:
        for name in loops:
            v = results[(case, name)]
            vs = "".join(f"  x{results[(case, ref)] / v:.2f} vs {ref}"
                         for ref in ("asyncio", "uvloop") if (case, ref) in results and ref != name)
            print(f"  {case:14s} {name:9s} {v:9.0f}{vs}")


if __name__ == "__main__":
    main()
