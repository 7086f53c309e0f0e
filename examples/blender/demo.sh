#!/usr/bin/env bash
# Run the demo add-on in a headless Blender until Ctrl+C (or SIGTERM):
#
#   examples/blender/demo.sh [file.blend]
#
# Builds the bgloop wheel and the legacy add-on (build.py), installs the
# add-on into a throw-away Blender user directory and serves it with
# keep_alive.py.  BGLOOP_DEMO_PORT (default 8765) and BGLOOP_DEMO_TOKEN
# (default: generated, printed below) configure it; BGLOOP_BLENDER_WHEEL
# reuses an existing wheel instead of building one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
command -v blender >/dev/null || { echo "demo.sh: blender is not installed (apt-get install blender)" >&2; exit 2; }
out="$repo/build-blender-demo"
wheel_args=()
[ -n "${BGLOOP_BLENDER_WHEEL:-}" ] && wheel_args=(--wheel "$BGLOOP_BLENDER_WHEEL")
"${PYTHON:-python3}" "$here/build.py" --out "$out" "${wheel_args[@]}"

user=$(mktemp -d "${TMPDIR:-/tmp}/bgloop-blender-demo.XXXXXX")
trap 'rm -rf "$user"' EXIT
mkdir -p "$user/scripts/addons"
"${PYTHON:-python3}" -m zipfile -e "$out"/bgloop_demo-*-legacy.zip "$user/scripts/addons"

export BLENDER_USER_SCRIPTS="$user/scripts" BLENDER_USER_CONFIG="$user/config"
export BGLOOP_DEMO_PORT=${BGLOOP_DEMO_PORT:-8765}
export BGLOOP_DEMO_TOKEN=${BGLOOP_DEMO_TOKEN:-$("${PYTHON:-python3}" -c 'import secrets; print(secrets.token_urlsafe(18))')}
cat <<MSG
demo.sh: serving on http://127.0.0.1:$BGLOOP_DEMO_PORT (Ctrl+C stops it)
  curl http://127.0.0.1:$BGLOOP_DEMO_PORT/scene
  curl -H 'Authorization: Bearer $BGLOOP_DEMO_TOKEN' -H 'Content-Type: application/json' \\
       -d '{"kind": "cube", "name": "Box"}' http://127.0.0.1:$BGLOOP_DEMO_PORT/objects
MSG
# Not exec: the EXIT trap removes the temporary user directory afterwards.
# Blender gets the terminal's Ctrl+C itself; forward SIGTERM to it.
blender --background --factory-startup ${1:+"$1"} --addons bgloop_demo \
        --python "$here/keep_alive.py" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM
trap ':' INT      # the terminal's Ctrl+C reaches Blender directly
# A trapped signal interrupts `wait`; wait again for Blender's own exit code.
while :; do
  wait $pid && status=0 || status=$?
  kill -0 $pid 2>/dev/null || break
done
exit $status
