#!/usr/bin/env bash
# Builds relay.o from relay.c with Debian's clang (scripts/install-test-deps installs clang, llvm
# and libbpf-dev). The object is committed so that building Turnpike needs only the Rust
# toolchain; crates/xdp/tests/object_is_fresh.rs fails when it no longer matches relay.c.
#
#   crates/xdp/bpf/build.sh [OUT]     (OUT defaults to relay.o beside this script)
#
# Reproducible: the compiler runs in this folder on the relative name relay.c, the folder's path
# is mapped to "." in what debug info remains, and DWARF is stripped (BTF, which the loader needs
# for the maps, stays), so two checkouts at different paths produce the same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/relay.o}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
command -v clang >/dev/null 2>&1 || { echo "build.sh: clang not found: run scripts/install-test-deps" >&2; exit 1; }
command -v llvm-strip >/dev/null 2>&1 || { echo "build.sh: llvm-strip not found: run scripts/install-test-deps" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$here"
clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
    -fdebug-prefix-map="$here"=. -fno-ident \
    -Wall -Werror \
    -c relay.c -o "$tmp/relay.o"
llvm-strip --strip-debug "$tmp/relay.o" -o "$out"
