"""Resource samples of this process and the judgement that they stay flat.

A soak samples at quiet points - after a cycle's services are stopped and
its clients gone - where every count must be back at its level after the
warm-up: descriptors, threads, asyncio tasks, the loop's watchers and
timers, the services' resources and tasks.  Memory may drift a little
(allocator caches), so RSS only has to stay under a generous bound.
"""

from __future__ import annotations

import asyncio
import gc
import os

import bgloop

# RSS growth allowed after the warm-up: allocator and interpreter caches
# settle late, a leak keeps growing.
RSS_SLACK_BYTES = 16 * 1024 * 1024
RSS_SLACK_RATIO = 0.10
# Fraction of the samples that is warm-up (executor threads, caches, the
# first restarts); the level after it is the reference.
WARMUP = 0.25


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def sample(loop: asyncio.AbstractEventLoop | None = None) -> dict[str, int]:
    """Counts that must not grow; RSS in bytes."""
    gc.collect()
    status = bgloop.status()
    stats = bgloop.stats()
    out = {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "tasks": len(asyncio.all_tasks(loop or bgloop.ensure_loop())),
        "services": len(status),
        "svc_tasks": sum(s.get("tasks", 0) for s in status.values()),
        "svc_resources": sum(s.get("resources", 0) for s in status.values()),
        "io_watchers": int(stats.get("io_watchers", 0)),
        "timers": int(stats.get("timers", 0)),
        "rss": _rss_bytes(),
    }
    return out


def summary(samples: list[dict[str, int]]) -> str:
    """First, post-warm-up and last value of every series, one per line."""
    if not samples:
        return "no samples"
    ref = samples[_warm_index(samples)]
    lines = []
    for key in samples[0]:
        first, base, last = samples[0][key], ref[key], samples[-1][key]
        peak = max(s[key] for s in samples)
        if key == "rss":
            lines.append(f"  {key:14} first {first / 2**20:8.1f} MiB  after warm-up "
                         f"{base / 2**20:8.1f} MiB  last {last / 2**20:8.1f} MiB  "
                         f"peak {peak / 2**20:8.1f} MiB")
        else:
            lines.append(f"  {key:14} first {first:6}  after warm-up {base:6}  last {last:6}"
                         f"  peak {peak:6}")
    return "\n".join(lines)


def _warm_index(samples: list) -> int:
    return min(len(samples) - 1, max(1, int(len(samples) * WARMUP)))


def judge(samples: list[dict[str, int]], min_samples: int = 8) -> list[str]:
    """What grew: every count after the warm-up must equal its level right
    after the warm-up, at every later sample; RSS may grow by at most
    RSS_SLACK_BYTES or RSS_SLACK_RATIO of its level, whichever is larger."""
    if len(samples) < min_samples:
        return [f"only {len(samples)} samples (need {min_samples}): the soak did not run"]
    i = _warm_index(samples)
    ref = samples[i]
    problems = []
    for key in ref:
        later = [s[key] for s in samples[i:]]
        if key == "rss":
            limit = ref[key] + max(RSS_SLACK_BYTES, int(ref[key] * RSS_SLACK_RATIO))
            if max(later) > limit:
                problems.append(f"rss grew from {ref[key] / 2**20:.1f} MiB to "
                                f"{max(later) / 2**20:.1f} MiB (limit {limit / 2**20:.1f} MiB)")
        elif any(v != ref[key] for v in later):
            shown = later if len(later) <= 12 else later[:6] + ["..."] + later[-5:]
            problems.append(f"{key} not flat after warm-up: {ref[key]} -> "
                            f"[{', '.join(map(str, shown))}]")
    return problems
