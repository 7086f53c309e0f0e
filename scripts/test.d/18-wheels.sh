#!/usr/bin/env bash
# Every wheel and the sdist, cross-built on this machine (scripts/wheels:
# manylinux_2_28 x86_64/aarch64, macOS 11 arm64/x86_64, Windows x64 against
# scripts/winpython's CPython headers and python3.dll import library), then
# checked as artefacts (scripts/check-wheels: tags, architectures, minimum OS
# versions, exported init function, the glibc 2.28 policy, imports macOS 11
# has, and on Windows only python3.dll's stable ABI, the UCRT and system DLLs).
# Later steps install these wheels (20-python, 25-aarch64).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/wheels --reuse
echo "---- dist/"
ls -l dist/
scripts/check-wheels
