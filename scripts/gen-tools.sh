#!/usr/bin/env bash
# Regenerate the typed bindings of the tools' BPF programs with `bpfkit gen`:
#
#   bpf/<name>.bpf.c  ->  src/tools/<name>/gen/<name>.ts      (committed; CI checks it is current)
#                         src/tools/<name>/gen/<name>.bpf.o   (build output, gitignored)
#
# A source can ask for more gen options with a comment line of its own, e.g.
#   // bpfkit-gen: --type event
# (split on blanks, appended to the command line before the clang flags).
#
# Runs the gen command of the built CLI (dist/src/cli/main.js), so `tsc` must have run once. When
# a binding changed (the C changed), TypeScript is compiled again so dist matches the sources.
#
#   OUT_ROOT=DIR   write DIR/<name>/gen/... instead of src/tools/<name>/gen/... (the golden test
#                  uses this to regenerate into a scratch directory); no recompile then
#   BPF_CLANG=...  the clang to use (default: the first of clang, clang-19, ... in PATH)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI="$ROOT/dist/src/cli/main.js"
OUT_ROOT="${OUT_ROOT:-}"

if [[ ! -f "$CLI" ]]; then
	echo "gen-tools: $CLI is missing: run \`npx tsc -p tsconfig.json\` first" >&2
	exit 1
fi

shopt -s nullglob
sources=("$ROOT"/bpf/*.bpf.c)
shopt -u nullglob
if [[ ${#sources[@]} -eq 0 ]]; then
	echo "gen-tools: no bpf/*.bpf.c sources"
	exit 0
fi

changed=0
for src in "${sources[@]}"; do
	name="$(basename "$src" .bpf.c)"
	if [[ ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
		echo "gen-tools: bpf/$name.bpf.c: the name must be letters, digits and underscores" >&2
		exit 1
	fi
	if [[ -n "$OUT_ROOT" ]]; then
		out="$OUT_ROOT/$name/gen"
	else
		out="$ROOT/src/tools/$name/gen"
	fi
	extra=()
	opts="$(sed -n 's|^[[:space:]]*//[[:space:]]*bpfkit-gen:[[:space:]]*||p' "$src" | head -n 1)"
	if [[ -n "$opts" ]]; then
		read -r -a extra <<<"$opts"
	fi
	# The bindings import the library from src/index.ts, three directories up.
	line="$(node "$CLI" gen "$name" "$src" --out-dir "$out" --import ../../../index.js "${extra[@]}" -- -Wall)"
	echo "  $line"
	if [[ "$line" != *"$name.ts (unchanged)"* ]]; then
		changed=1
	fi
done

if [[ -z "$OUT_ROOT" && $changed -eq 1 ]]; then
	echo "gen-tools: bindings changed: compiling TypeScript again"
	(cd "$ROOT" && npx --no-install tsc -p tsconfig.json)
fi
