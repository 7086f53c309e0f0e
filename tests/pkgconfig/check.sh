#!/usr/bin/env bash
# Install a configured build into a temporary DESTDIR, then compile and link
# use_bgloop.c with nothing but `pkg-config --cflags --libs bgloop`, against
# the shared and the static library, and run both programs.
# Usage: tests/pkgconfig/check.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: check.sh BUILD_DIR}
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bgl-pkgconfig.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

if ! meson install -C "$build" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"; echo "pkgconfig: meson install failed"; exit 1
fi
pc=$(find "$dest" -name bgloop.pc -print -quit)
[ -n "$pc" ] || { echo "pkgconfig: no bgloop.pc installed"; exit 1; }
echo "pkgconfig: installed ${pc#"$dest"}"

# The .pc names the real prefix; point it into the DESTDIR.
export PKG_CONFIG_PATH=$(dirname "$pc")
prefix=$(pkg-config --variable=prefix bgloop)
pc_args=(--define-variable=prefix="$dest$prefix")
cflags=$(pkg-config "${pc_args[@]}" --cflags bgloop)
libs=$(pkg-config "${pc_args[@]}" --libs bgloop)
libdir=$(pkg-config "${pc_args[@]}" --variable=libdir bgloop)
echo "pkgconfig: cflags: $cflags"
echo "pkgconfig: libs:   $libs"

# shellcheck disable=SC2086 # the flags are word lists
$cc -std=c11 -Wall -Wextra -Werror -o "$tmp/use_shared" "$here/use_bgloop.c" $cflags $libs
LD_LIBRARY_PATH=$libdir "$tmp/use_shared"

static_libs=$(pkg-config "${pc_args[@]}" --static --libs bgloop)
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror -static-libgcc -o "$tmp/use_static" "$here/use_bgloop.c" \
  $cflags -Wl,-Bstatic $static_libs -Wl,-Bdynamic -pthread
"$tmp/use_static"
echo "pkgconfig: ok (shared and static)"
