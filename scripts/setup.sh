#!/usr/bin/env bash
# Installs everything bpfkit needs on a fresh Debian machine (run as root): the BPF toolchain from
# Debian (clang, libbpf headers, bpftool, iproute2), QEMU for the kernel matrix, the cross and musl
# compilers for the prebuilt addons, and the npm dependencies; in a checkout (no prebuilds/) npm's
# install step builds the native addon with npm's own node-gyp against the Node headers on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v llvm-objdump >/dev/null 2>&1 || missing+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/types.h ] || [ -f /usr/include/asm/types.h ] || missing+=(linux-libc-dev)
command -v bpftool >/dev/null 2>&1 || missing+=(bpftool)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# The prebuilt addons `npm pack` ships (scripts/prebuild.sh): arm64 glibc and x64 musl.
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
# <sys/sdt.h>, for the USDT test binary.
[ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ] || missing+=(systemtap-sdt-dev)
# The leaderboard's browser test; chromium's fonts are only a Recommends, so name one.
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
# The kernel matrix (scripts/kernel-matrix.mjs): QEMU, and a static busybox, cpio and xz for the
# guests' initramfs.
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
# The cilium/ebpf (Go) baselines of the reader benchmarks (bench/go/); no test needs them.
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/cilium/ebpf ] || missing+=(golang-github-cilium-ebpf-dev)
# Public XDP programs the emulator is compared against (test/kernel/emulator-public.test.ts):
# xdp-tools' compiled objects (xdp-filter, xdpdump) and libxdp's (AF_XDP default program).
[ -f /usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o ] || missing+=(xdp-tools)
[ -f /usr/lib/x86_64-linux-gnu/bpf/xsk_def_xdp_prog.o ] || missing+=(libxdp1)
# The kernel's samples/bpf network programs, built at test time by scripts/build-kernel-samples.sh.
[ -f /usr/src/linux-source-6.1.tar.xz ] || missing+=(linux-source-6.1)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or install them yourself: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Prometheus, for the test that scrapes two pktcount instances (test/kernel/prometheus.test.ts runs
# its own server on loopback). Debian's package would start and enable a server listening on every
# address: a policy-rc.d refusing service starts covers the install, and the unit is disabled after.
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian package: prometheus (run as root, or: apt-get install prometheus)" >&2
    exit 1
  fi
  echo "setup: installing prometheus (its service stays stopped and disabled)"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null || { [ "$own_policy" = 1 ] && rm -f "$policy"; exit 1; }
  [ "$own_policy" = 1 ] && rm -f "$policy"
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

# node-gyp must build against the local Node headers: this machine reaches no download site.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/bpfkit.node ]; then
  echo "setup: installing npm dependencies and building the native addon"
  npm ci --no-audit --no-fund --loglevel=error
fi
