#!/usr/bin/env bash
# The library's symbol contract: the shared library exports exactly the
# functions the public headers declare (bgl_*), and the static library
# defines no global symbol outside the bgl_ (public) and bgli_ (internal,
# hidden) namespaces, so linking it into a program or an extension cannot
# clash with anyone else's names.
# Usage: symbols.sh LIBBGLOOP.so LIBBGLOOP.a INCLUDE_DIR
set -euo pipefail
so=$1 a=$2 inc=$3
fail=0
for f in "$so" "$a"; do [ -f "$f" ] || { echo "missing: $f"; exit 1; }; done

exported=$(nm -D --defined-only "$so" | awk 'NF == 3 && $2 ~ /[TDBRW]/ {print $3}' | sort -u)
declared=$(grep -ho 'BGL_EXPORT[^;(]*\bbgl_[a-z0-9_]*[ ]*(' "$inc"/bgloop/*.h |
           grep -o 'bgl_[a-z0-9_]*[ ]*($' | tr -d ' (' | sort -u)
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$extra" ] || { echo "exported but not declared in the headers:"; echo "$extra"; fail=1; }
[ -z "$missing" ] || { echo "declared in the headers but not exported:"; echo "$missing"; fail=1; }

leaks=$(nm -g --defined-only "$a" | awk 'NF == 3 {print $3}' | grep -vE '^bgli?_' | sort -u || true)
[ -z "$leaks" ] || { echo "global symbols of the static library outside bgl_/bgli_:"; echo "$leaks"; fail=1; }
internal=$(nm -D --defined-only "$so" | awk '{print $3}' | grep '^bgli_' || true)
[ -z "$internal" ] || { echo "internal symbols exported by the shared library:"; echo "$internal"; fail=1; }

[ $fail -ne 0 ] || echo "$(echo "$exported" | wc -l) exported functions, all declared; static library clean"
exit $fail
