/**
 * XDP: a bpf_link of attach type xdp on the interface (5.9+), or, on older kernels or when asked,
 * the netlink way (RTM_SETLINK IFLA_XDP), undone on close. Both refuse to replace a program that
 * is already attached.
 */
import { EINVAL } from '../abi/errno.js';
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { getFdById } from '../sys/bpf.js';
import { FD } from '../sys/fd.js';
import { resolveInterface } from './iface.js';
import { DetachLink, FdLink, programId, requireProgramType, type Link } from './link.js';
import { xdpAttachNetlink, xdpDetachNetlink, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE, XDP_FLAGS_SKB_MODE } from './netlink.js';
import { linkCreateRaw } from '../sys/link.js';

/** 'skb' (generic, any interface), 'native' (in the driver), 'offload' (on the NIC). */
export type XdpMode = 'skb' | 'generic' | 'native' | 'drv' | 'offload' | 'hw';

/**
 * Options of {@link attachXdp}: the mode (driver, generic, offload), and netlink even where XDP
 * links exist (Linux 5.9).
 */
export interface XdpOptions {
  /** Default: native when the driver supports it, generic otherwise (the kernel decides). */
  mode?: XdpMode;
  /** Attach with netlink (RTM_SETLINK IFLA_XDP) instead of a bpf_link. */
  forceNetlink?: boolean;
}

function modeFlags(mode: XdpMode | undefined): number {
  switch (mode) {
    case undefined: return 0;
    case 'skb': case 'generic': return XDP_FLAGS_SKB_MODE;
    case 'native': case 'drv': return XDP_FLAGS_DRV_MODE;
    case 'offload': case 'hw': return XDP_FLAGS_HW_MODE;
    default: throw new InvalidArgumentError(`unknown XDP mode "${String(mode)}": use 'skb', 'native' or 'offload'`);
  }
}


function linkHint(errno: number, iface: string, mode: XdpMode | undefined): string | undefined {
  switch (errno) {
    case 16: return `${iface} already has an XDP program in this mode (attached by netlink or another link): detach it first`;
    case 95: case 524: return mode === 'native' || mode === 'drv' ? `the driver of ${iface} has no native XDP: use mode 'skb'` : `${iface} does not support this XDP mode`;
    case 1: return 'attaching XDP needs CAP_NET_ADMIN and CAP_BPF (run as root)';
    case 19: return `interface ${iface} does not exist (any more)`;
    case 34: return `the MTU of ${iface} is too large for XDP in this mode (or the program lacks xdp.frags support)`;
    default: return undefined;
  }
}

/**
 * Attaches an XDP program to an interface (index or name).
 *
 * Requires Linux 4.8 (XDP; generic mode on any interface 4.12, a bpf_link 5.9).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type or
 *   an unknown interface.
 * @throws {@link BpfSyscallError} (`code` is the errno name: EBUSY/EEXIST when a program is already
 *   attached, EOPNOTSUPP for a mode the driver lacks).
 */
export function attachXdp(prog: Program, iface: number | string, options: XdpOptions = {}): Link {
  requireProgramType(prog, ['xdp'], 'attachXdp');
  const ifindex = resolveInterface(iface);
  const flags = modeFlags(options.mode);
  const label = typeof iface === 'string' ? iface : `ifindex ${ifindex}`;
  const what = `attach XDP program${prog.name ? ` ${prog.name}` : ''} to ${label}`;
  if (!options.forceNetlink) {
    const r = linkCreateRaw({ progFd: prog.fd, target: ifindex, attachType: 'xdp', flags });
    if (r >= 0) return new FdLink(new FD(r, `XDP link on ${label}`), 'xdp');
    // Kernels before 5.9 do not know the xdp attach type (EINVAL): use netlink as they expect.
    if (-r !== EINVAL) throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', what, linkHint(-r, label, options.mode));
  }
  const progId = programId(prog);
  xdpAttachNetlink(ifindex, prog.fd, flags, what);
  return new DetachLink('xdp-netlink', { type: 'unspec', id: 0, progId, ifindex }, () => {
    // Detach only if our program is still the one attached (XDP_FLAGS_REPLACE + expected fd).
    let fd: FD;
    try {
      fd = getFdById('PROG', progId);
    } catch (e) {
      if (e instanceof BpfSyscallError && e.code === 'ENOENT') return; // gone: it cannot be attached
      throw e;
    }
    try {
      xdpDetachNetlink(ifindex, fd.value, flags, `detach XDP program from ${label}`);
    } finally {
      fd.close();
    }
  }, { outlivesProcess: true });
}
