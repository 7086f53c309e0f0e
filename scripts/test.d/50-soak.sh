#!/usr/bin/env bash
# Soak, bounded for CI: scripts/soak for 2.5 minutes (a plain Python process
# under bgloop.serve() - services crashing and restarting, clients, worker
# threads' thread-safe calls, owners started and stopped - then add-ons
# enabled and disabled in a background Blender).  Descriptors, threads,
# tasks, the loop's watchers and timers and RSS must stay flat.  Uses the
# wheel the other steps use (scripts/wheels --reuse).  Longer runs:
# scripts/soak --minutes N.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python3}" scripts/soak --minutes "${BGLOOP_SOAK_MINUTES:-2.5}"
