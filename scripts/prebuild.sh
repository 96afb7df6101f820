#!/usr/bin/env bash
# Build the native addon for every target the package ships prebuilt, in prebuildify's layout that
# node-gyp-build selects from at run time (src/sys/native.ts):
#
#   prebuilds/linux-x64/node.napi.glibc.node     gcc
#   prebuilds/linux-arm64/node.napi.glibc.node   aarch64-linux-gnu-gcc (Debian: gcc-aarch64-linux-gnu)
#   prebuilds/linux-x64/node.napi.musl.node      musl-gcc (Debian: musl-tools)
#
# The addon uses only Node-API (version 8) and libuv, whose symbols the node binary exports, so one
# build per architecture and libc serves every Node >= 20. Undefined napi_*/uv_* symbols are
# resolved when node loads the file, as with node-gyp's builds. `npm pack` runs this (prepack).
#
#   NODE_HEADERS=DIR   Node's headers (default: include/node beside the running node)
#   PREBUILD_TARGETS="x64-glibc arm64-glibc x64-musl"   which to build (default: all three)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/native/bpfkit.c"
NODE_HEADERS="${NODE_HEADERS:-$(node -p "require('node:path').join(process.execPath, '..', '..', 'include', 'node')")}"
TARGETS="${PREBUILD_TARGETS:-x64-glibc arm64-glibc x64-musl}"

die() {
	echo "prebuild: error: $*" >&2
	exit 1
}

[[ -f "$NODE_HEADERS/node_api.h" ]] || die "$NODE_HEADERS/node_api.h not found: set NODE_HEADERS to the directory holding Node's node_api.h and uv.h"

CFLAGS=(-std=gnu11 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
	-D_GNU_SOURCE -DNODE_GYP_MODULE_NAME=bpfkit -DBUILDING_NODE_EXTENSION -isystem "$NODE_HEADERS")

# build CC OUT [extra flags...]: one shared object, stripped of debug info.
build() {
	local cc="$1" out="$2"
	shift 2
	command -v "$cc" >/dev/null 2>&1 || die "$cc not found: run scripts/setup.sh as root (installs gcc-aarch64-linux-gnu and musl-tools)"
	mkdir -p "$(dirname "$out")"
	"$cc" "${CFLAGS[@]}" "$@" -o "$out.tmp" "$SRC" -s
	mv "$out.tmp" "$out"
	echo "  PREBUILD  ${out#"$ROOT"/} ($(stat -c %s "$out") bytes)"
}

for t in $TARGETS; do
	case "$t" in
	x64-glibc) build gcc "$ROOT/prebuilds/linux-x64/node.napi.glibc.node" ;;
	arm64-glibc) build aarch64-linux-gnu-gcc "$ROOT/prebuilds/linux-arm64/node.napi.glibc.node" ;;
	x64-musl)
		# musl-gcc searches only musl's own headers; give it the kernel's UAPI headers (linux/,
		# asm/, asm-generic/) and nothing else of glibc's.
		uapi="$ROOT/build/musl-uapi"
		mkdir -p "$uapi"
		for d in linux asm-generic; do ln -sfn "/usr/include/$d" "$uapi/$d"; done
		ln -sfn /usr/include/x86_64-linux-gnu/asm "$uapi/asm"
		build musl-gcc "$ROOT/prebuilds/linux-x64/node.napi.musl.node" -isystem "$uapi"
		;;
	*) die "unknown target $t (x64-glibc, arm64-glibc, x64-musl)" ;;
	esac
done
