#!/usr/bin/env bash
# Compile the project's BPF C sources into BPF ELF objects.
#
#   test/bpf/<name>.bpf.c        -> test/bpf/build/<name>.bpf.o
#   examples/**/<name>.bpf.c     -> test/bpf/build/<name>.bpf.o
#
# CO-RE sources include "vmlinux.h": the running kernel's types, written to
# test/bpf/build/vmlinux.h by `bpftool btf dump file /sys/kernel/btf/vmlinux
# format c` when it is missing or older than the kernel's BTF (VMLINUX_BTF=path
# picks another BTF file).  Without bpftool or kernel BTF, sources that include
# vmlinux.h are skipped with a warning instead of failing the build.
#
# An object is rebuilt only when it is missing or older than its source, one of
# the headers the source included last time (taken from the compiler's
# dependency file), or this script.  Set FORCE=1 to rebuild everything and
# CLANG=/path/to/clang to pick another compiler.
set -euo pipefail

CLANG="${CLANG:-clang}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$ROOT/test/bpf/build"
SCRIPT="$ROOT/scripts/build-bpf.sh"
FORCE="${FORCE:-0}"

VMLINUX_BTF="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
VMLINUX_H="$OUT_DIR/vmlinux.h"

# bpf/include: the headers the package ships (bpfkit/drops.h).
CFLAGS=(-O2 -g -target bpf -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu -I"$OUT_DIR" -I"$ROOT/bpf/include" -Wall -Werror)

die() {
	echo "build-bpf: error: $*" >&2
	exit 1
}

if ! command -v "$CLANG" >/dev/null 2>&1; then
	die "'$CLANG' not found; install it with: apt-get install clang libbpf-dev (or set CLANG=/path/to/clang)"
fi
if [[ ! -f /usr/include/bpf/bpf_helpers.h ]]; then
	die "/usr/include/bpf/bpf_helpers.h not found; install it with: apt-get install clang libbpf-dev"
fi

# Collect the sources.
sources=()
shopt -s nullglob
for src in "$ROOT"/test/bpf/*.bpf.c; do
	sources+=("$src")
done
shopt -u nullglob
if [[ -d "$ROOT/examples" ]]; then
	while IFS= read -r -d '' src; do
		sources+=("$src")
	done < <(find "$ROOT/examples" -type f -name '*.bpf.c' -print0 | sort -z)
fi

if [[ ${#sources[@]} -eq 0 ]]; then
	echo "build-bpf: no *.bpf.c sources found"
	exit 0
fi

# Two sources with the same base name would write the same object.
declare -A seen=()
for src in "${sources[@]}"; do
	name="$(basename "$src" .c)"
	if [[ -n "${seen[$name]:-}" ]]; then
		die "both ${seen[$name]#"$ROOT"/} and ${src#"$ROOT"/} would build $name.o"
	fi
	seen[$name]="$src"
done

mkdir -p "$OUT_DIR"

# Generate vmlinux.h for the CO-RE sources when it is missing or older than the kernel's BTF.
have_vmlinux_h=1
if [[ ! -f "$VMLINUX_H" || "$VMLINUX_BTF" -nt "$VMLINUX_H" || "$FORCE" == "1" ]]; then
	if [[ ! -r "$VMLINUX_BTF" ]]; then
		echo "build-bpf: warning: $VMLINUX_BTF not readable (kernel without CONFIG_DEBUG_INFO_BTF?): CO-RE sources are skipped" >&2
		have_vmlinux_h=0
	elif ! command -v bpftool >/dev/null 2>&1; then
		echo "build-bpf: warning: bpftool not found (apt-get install bpftool): CO-RE sources are skipped" >&2
		have_vmlinux_h=0
	else
		echo "  BPFTOOL   ${VMLINUX_BTF} -> ${VMLINUX_H#"$ROOT"/}"
		if bpftool btf dump file "$VMLINUX_BTF" format c >"$VMLINUX_H.tmp"; then
			mv -f "$VMLINUX_H.tmp" "$VMLINUX_H"
		else
			rm -f "$VMLINUX_H.tmp"
			echo "build-bpf: warning: bpftool could not dump $VMLINUX_BTF: CO-RE sources are skipped" >&2
			have_vmlinux_h=0
		fi
	fi
	# A stale vmlinux.h still builds (the CO-RE loader adapts the objects to the running kernel).
	if [[ $have_vmlinux_h -eq 0 && -f "$VMLINUX_H" ]]; then
		echo "build-bpf: warning: using the existing ${VMLINUX_H#"$ROOT"/}" >&2
		have_vmlinux_h=1
	fi
fi

# Print the prerequisites listed in a make-style dependency file written by
# clang -MD, one per line.
deps_of() {
	local depfile="$1"
	# Join continuation lines, drop the "target:" part, split on blanks.
	sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$depfile" |
		sed -e 's/^[^:]*://' |
		tr -s ' \t' '\n\n' |
		sed -e '/^$/d'
}

# Succeed when $obj is missing or older than anything it was built from.
needs_build() {
	local src="$1" obj="$2" depfile="$3" dep
	[[ "$FORCE" == "1" ]] && return 0
	[[ -f "$obj" && -f "$depfile" ]] || return 0
	[[ "$src" -nt "$obj" || "$SCRIPT" -nt "$obj" ]] && return 0
	while IFS= read -r dep; do
		# A header that vanished since the last build forces a rebuild too.
		[[ -e "$dep" ]] || return 0
		[[ "$dep" -nt "$obj" ]] && return 0
	done < <(deps_of "$depfile")
	return 1
}

built=0
skipped=0
failed=0
for src in "${sources[@]}"; do
	name="$(basename "$src" .c)"
	obj="$OUT_DIR/$name.o"
	depfile="$OUT_DIR/$name.d"
	rel="${src#"$ROOT"/}"

	if [[ $have_vmlinux_h -eq 0 ]] && grep -q '^[[:space:]]*#[[:space:]]*include[[:space:]]*"vmlinux.h"' "$src"; then
		echo "build-bpf: warning: skipping $rel (needs vmlinux.h)" >&2
		skipped=$((skipped + 1))
		continue
	fi

	if ! needs_build "$src" "$obj" "$depfile"; then
		skipped=$((skipped + 1))
		continue
	fi

	echo "  CLANG-BPF $rel -> ${obj#"$ROOT"/}"
	# Build into a temporary file so a failed compile never leaves a fresh
	# looking (but stale or broken) object behind.
	if "$CLANG" "${CFLAGS[@]}" -MD -MF "$depfile.tmp" -MT "$obj" -c "$src" -o "$obj.tmp"; then
		mv -f "$obj.tmp" "$obj"
		mv -f "$depfile.tmp" "$depfile"
		built=$((built + 1))
	else
		rm -f "$obj.tmp" "$depfile.tmp"
		echo "build-bpf: error: failed to compile $rel" >&2
		failed=$((failed + 1))
	fi
done

echo "build-bpf: $built built, $skipped up to date, $failed failed"
if [[ $failed -ne 0 ]]; then
	exit 1
fi

# The kernel's own samples/bpf network programs, for the emulator comparison.
bash "$ROOT/scripts/build-kernel-samples.sh"
