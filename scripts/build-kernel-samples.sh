#!/usr/bin/env bash
# Compile network programs of the kernel's own samples/bpf, from Debian's linux-source-6.1
# (/usr/src/linux-source-6.1.tar.xz, GPL-2.0), with our clang: the emulator is compared with the
# kernel on them (test/kernel/emulator-public.test.ts). Nothing of the kernel's is committed: the
# sources are extracted into test/bpf/build/kernel-samples/ (once per tarball) and built there.
#
#   test/bpf/build/kernel-samples/<name>.o
#
# Without the tarball this prints how to get it and exits 0 (a package build needs none of it);
# the test then fails naming the missing package.
set -euo pipefail

CLANG="${CLANG:-clang}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARBALL="${KERNEL_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}"
OUT="$ROOT/test/bpf/build/kernel-samples"
SRC="$OUT/src"
SHIM="$OUT/include"
PRELUDE="$ROOT/test/bpf/kernel-samples/prelude.h"

# The network programs: XDP, tc and socket filters.
SAMPLES=(xdp1_kern xdp2_kern xdp_adjust_tail_kern xdp_tx_iptunnel_kern xdp_fwd_kern tcbpf1_kern
	parse_simple parse_varlen parse_ldabs sockex1_kern sockex2_kern sockex3_kern)

if [[ ! -f "$TARBALL" ]]; then
	echo "build-kernel-samples: warning: $TARBALL not found (apt-get install linux-source-6.1): kernel samples not built" >&2
	exit 0
fi

top="$(basename "$TARBALL" .tar.xz)"
if [[ ! -d "$SRC" || "$TARBALL" -nt "$SRC" ]]; then
	echo "  EXTRACT samples/bpf from ${TARBALL}"
	rm -rf "$SRC" "$OUT/tmp"
	mkdir -p "$OUT/tmp"
	members=()
	for s in "${SAMPLES[@]}"; do members+=("$top/samples/bpf/$s.c"); done
	tar -xJf "$TARBALL" -C "$OUT/tmp" "${members[@]}" "$top/samples/bpf/xdp_tx_iptunnel_common.h" \
		"$top/tools/testing/selftests/bpf/bpf_legacy.h"
	mkdir -p "$SRC"
	mv "$OUT/tmp/$top/samples/bpf/"* "$SRC/"
	mv "$OUT/tmp/$top/tools/testing/selftests/bpf/bpf_legacy.h" "$SRC/"
	rm -rf "$OUT/tmp"
	touch "$SRC"
fi

# <uapi/linux/X.h> as the kernel tree spells it is <linux/X.h> on the system; <net/ip.h> is
# kernel-internal (two flags); glibc's 32-bit stubs are asked for because BPF is not x86_64.
mkdir -p "$SHIM/uapi/linux" "$SHIM/net" "$SHIM/gnu"
for h in bpf filter if if_ether if_packet if_tunnel in ip ipv6 mpls pkt_cls tcp; do
	echo "#include <linux/$h.h>" >"$SHIM/uapi/linux/$h.h"
done
cat >"$SHIM/net/ip.h" <<'H'
#include <linux/ip.h>
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
static inline bool ip_is_fragment(const struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}
H
: >"$SHIM/gnu/stubs-32.h"

built=0
failed=0
for s in "${SAMPLES[@]}"; do
	obj="$OUT/$s.o"
	if [[ -f "$obj" && "$obj" -nt "$SRC/$s.c" && "$obj" -nt "$PRELUDE" && "$obj" -nt "${BASH_SOURCE[0]}" ]]; then continue; fi
	extra=()
	[[ "$s" == sockex2_kern || "$s" == sockex3_kern ]] && extra+=(-DSAMPLE_HAS_VLAN_HDR)
	echo "  CLANG-BPF samples/bpf/$s.c -> ${obj#"$ROOT"/}"
	if "$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 -w -Werror=implicit-function-declaration "${extra[@]}" -I/usr/include/x86_64-linux-gnu -I"$SHIM" -I"$SRC" \
		-include "$PRELUDE" -c "$SRC/$s.c" -o "$obj.tmp"; then
		mv -f "$obj.tmp" "$obj"
		built=$((built + 1))
	else
		rm -f "$obj.tmp"
		failed=$((failed + 1))
	fi
done
echo "build-kernel-samples: $built built, $failed failed"
[[ $failed -eq 0 ]]
