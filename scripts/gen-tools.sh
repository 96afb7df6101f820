#!/usr/bin/env bash
# Regenerate the typed bindings of the tools' and the examples' BPF programs with `bpfkit gen`:
#
#   bpf/<name>.bpf.c           ->  src/tools/<name>/gen/<name>.ts          (committed; CI checks it is current)
#                                  src/tools/<name>/gen/<name>.bpf.o       (build output, gitignored)
#   examples/<ex>/<name>.bpf.c ->  examples/<ex>/gen/<name>.ts             (committed; CI checks it is current)
#                                  examples/<ex>/gen/<name>.bpf.o          (build output, gitignored)
#
# The tools' bindings sit three directories below src/index.ts and import it with a relative path
# (../../../index.js); the examples' import 'bpfkit', the package's own name (Node and TypeScript
# resolve a package's own name inside it), so they read as they would in a user's project.
# scripts/copy-objects.mjs copies the objects next to the compiled modules in dist/.
#
# A source can ask for more gen options with a comment line of its own, e.g.
#   // bpfkit-gen: --type event
# (split on blanks, appended to the command line before the clang flags).
#
# Runs the gen command of the built CLI (dist/src/cli/main.js), so `tsc` must have run once. When
# a binding changed (the C changed), TypeScript is compiled again so dist matches the sources.
#
#   OUT_ROOT=DIR   write DIR/<name>/gen/... for a tool and DIR/examples/<ex>/gen/... for an
#                  example, instead of into the tree (the golden test uses this to regenerate into
#                  a scratch directory); no recompile then
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
tools=("$ROOT"/bpf/*.bpf.c)
examples=("$ROOT"/examples/*/*.bpf.c)
shopt -u nullglob
if [[ ${#tools[@]} -eq 0 && ${#examples[@]} -eq 0 ]]; then
	echo "gen-tools: no bpf/*.bpf.c or examples/*/*.bpf.c sources"
	exit 0
fi

changed=0

# gen_one SOURCE OUT_DIR IMPORT: runs `bpfkit gen` for one source.
gen_one() {
	local src="$1" out="$2" import="$3" name opts line
	local rel="${src#"$ROOT"/}"
	name="$(basename "$src" .bpf.c)"
	if [[ ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
		echo "gen-tools: $rel: the name must be letters, digits and underscores" >&2
		exit 1
	fi
	local extra=()
	opts="$(sed -n 's|^[[:space:]]*//[[:space:]]*bpfkit-gen:[[:space:]]*||p' "$src" | head -n 1)"
	if [[ -n "$opts" ]]; then
		read -r -a extra <<<"$opts"
	fi
	# --object-file: the objects stay beside the bindings (copy-objects.mjs copies them into dist/)
	# rather than as base64 inside the committed .ts.
	line="$(node "$CLI" gen "$name" "$src" --out-dir "$out" --import "$import" --object-file "${extra[@]}" -- -Wall)"
	echo "  $line"
	if [[ "$line" != *"$name.ts (unchanged)"* ]]; then
		changed=1
	fi
}

for src in "${tools[@]}"; do
	name="$(basename "$src" .bpf.c)"
	if [[ -n "$OUT_ROOT" ]]; then
		out="$OUT_ROOT/$name/gen"
	else
		out="$ROOT/src/tools/$name/gen"
	fi
	# src/tools/<name>/gen/<name>.ts imports src/index.ts, three directories up.
	gen_one "$src" "$out" ../../../index.js
done

for src in "${examples[@]}"; do
	example="$(basename "$(dirname "$src")")"
	if [[ -n "$OUT_ROOT" ]]; then
		out="$OUT_ROOT/examples/$example/gen"
	else
		out="$ROOT/examples/$example/gen"
	fi
	# examples/<ex>/gen/<name>.ts imports the package by its name, as an example copied out of the
	# installed package does (in the repository the name resolves to the package itself).
	gen_one "$src" "$out" bpfkit
done

if [[ -z "$OUT_ROOT" && $changed -eq 1 ]]; then
	echo "gen-tools: bindings changed: compiling TypeScript again"
	(cd "$ROOT" && npx --no-install tsc -p tsconfig.json)
fi
