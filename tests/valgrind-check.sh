#!/usr/bin/env bash
# Run a test program under valgrind's memcheck, for `meson test --wrapper`.
#
# Criterion runs every test in a worker that re-executes the binary, so
# valgrind must follow children (--trace-children=yes), and a worker's exit
# status does not reach the runner: an error would be reported nowhere.
# Each process therefore logs to its own file, and any non-empty log (-q
# prints errors only) fails the run, after being shown.
set -uo pipefail
logdir=$(mktemp -d "${TMPDIR:-/tmp}/bgl-valgrind.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

valgrind -q --trace-children=yes --child-silent-after-fork=no \
  --log-file="$logdir/vg.%p" --error-exitcode=99 \
  --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --track-fds=no "$@"
rc=$?

bad=0
for log in "$logdir"/vg.*; do
  [ -s "$log" ] || continue
  bad=1
  echo "==== valgrind: $(basename "$log") ====" >&2
  cat "$log" >&2
done
if [ "$bad" = 1 ]; then
  echo "valgrind found errors in $*" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
