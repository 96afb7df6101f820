/**
 * tc programs (sched_cls): a tcx bpf_link on the interface's ingress or egress (6.6+), or the
 * classic way over rtnetlink: a clsact qdisc (created if missing) with a cls_bpf filter in
 * direct-action mode. close() deletes the filter, and the qdisc too when this process created it
 * and no filter (of anyone) is left on it.
 */
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import { haveTcx } from '../kernel/features.js';
import type { Program } from '../objects/program.js';
import { FD } from '../sys/fd.js';
import { resolveInterface } from './iface.js';
import { DetachLink, FdLink, programId, requireProgramType, type Link } from './link.js';
import {
  clsactAdd, clsactDelete, tcFilterAddBpf, tcFilterDelete, tcFilterList, TC_H_EGRESS_PARENT, TC_H_INGRESS_PARENT,
} from './netlink.js';
import { linkCreateRaw } from '../sys/link.js';

/** Which side of an interface a tc program sees: packets received (`ingress`) or sent (`egress`). */
export type TcDirection = 'ingress' | 'egress';

/**
 * Options of {@link attachTc}: direction, priority and handle (cls_bpf), and netlink (cls_bpf)
 * even where tcx exists (Linux 6.6).
 */
export interface TcOptions {
  /** Default: what the program's attach type says (tcx/ingress, tcx/egress sections). */
  direction?: TcDirection;
  /** Use a clsact qdisc and a cls_bpf filter over rtnetlink instead of a tcx link. */
  forceNetlink?: boolean;
  /** Netlink only: filter priority (1-65535); default: the kernel picks a free one. */
  priority?: number;
  /** Netlink only: filter handle; default 1. */
  handle?: number;
}


/** Filters this process attached, so two attachments of one program tell their filters apart. */
const claimed = new Set<string>();

/** Interfaces whose clsact qdisc this process created: removed when their last filter goes. */
const ownedQdiscs = new Set<number>();

function directionOf(prog: Program, options: TcOptions): TcDirection {
  if (options.direction) {
    if (options.direction !== 'ingress' && options.direction !== 'egress') {
      throw new InvalidArgumentError(`tc direction must be 'ingress' or 'egress', got "${String(options.direction)}"`);
    }
    return options.direction;
  }
  if (prog.attachType === 'tcx_ingress') return 'ingress';
  if (prog.attachType === 'tcx_egress') return 'egress';
  throw new InvalidArgumentError(`attachTc: say which direction ${prog.name || 'the program'} attaches to ({ direction: 'ingress' | 'egress' }); its section ${prog.sectionName || '(none)'} does not`);
}

function tcxHint(errno: number, label: string): string | undefined {
  switch (errno) {
    case 1: return 'attaching tc programs needs CAP_NET_ADMIN and CAP_BPF (run as root)';
    case 19: return `interface ${label} does not exist (any more)`;
    case 17: return 'this program is already attached there';
    default: return undefined;
  }
}

/**
 * Attaches a sched_cls program to an interface's ingress or egress.
 *
 * Requires Linux 4.5 (a clsact qdisc with a direct-action cls_bpf filter); a tcx link from 6.6.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type, an
 *   unknown interface or direction.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when rtnetlink or BPF_LINK_CREATE
 *   refuses the attachment.
 * @throws {@link BpfkitError} (`ERR_BPFKIT_NETLINK`) when the kernel does not answer on rtnetlink.
 */
export function attachTc(prog: Program, iface: number | string, options: TcOptions = {}): Link {
  requireProgramType(prog, ['sched_cls'], 'attachTc');
  const direction = directionOf(prog, options);
  const ifindex = resolveInterface(iface);
  const label = typeof iface === 'string' ? iface : `ifindex ${ifindex}`;
  const what = `attach tc program${prog.name ? ` ${prog.name}` : ''} to ${label} ${direction}`;
  // Kernels before 6.6 have no tcx links: clsact + cls_bpf instead. The probe decides, not this
  // attach's errno: an EINVAL from a kernel that has tcx is the caller's error and is reported.
  if (!options.forceNetlink && haveTcx()) {
    const r = linkCreateRaw({ progFd: prog.fd, target: ifindex, attachType: direction === 'ingress' ? 'tcx_ingress' : 'tcx_egress' });
    if (r >= 0) return new FdLink(new FD(r, `tcx ${direction} link on ${label}`), 'tcx');
    throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', what, tcxHint(-r, label));
  }
  return attachTcNetlink(prog, ifindex, label, direction, options, what);
}

function attachTcNetlink(prog: Program, ifindex: number, label: string, direction: TcDirection, options: TcOptions, what: string): Link {
  const priority = options.priority ?? 0;
  const handle = options.handle ?? 1;
  if (!Number.isInteger(priority) || priority < 0 || priority > 0xffff) throw new InvalidArgumentError(`tc priority must be 1-65535, got ${priority}`);
  if (!Number.isInteger(handle) || handle <= 0 || handle > 0xffffffff) throw new InvalidArgumentError(`tc handle must be a positive 32-bit integer, got ${handle}`);
  const parent = direction === 'ingress' ? TC_H_INGRESS_PARENT : TC_H_EGRESS_PARENT;
  const progId = programId(prog);
  if (clsactAdd(ifindex)) ownedQdiscs.add(ifindex);
  const dropQdiscIfUnused = (): void => {
    if (!ownedQdiscs.has(ifindex)) return;
    if (tcFilterList(ifindex, TC_H_INGRESS_PARENT).length === 0 && tcFilterList(ifindex, TC_H_EGRESS_PARENT).length === 0) {
      ownedQdiscs.delete(ifindex);
      clsactDelete(ifindex);
    }
  };
  let prio: number;
  try {
    tcFilterAddBpf({ ifindex, parent, priority, handle, progFd: prog.fd, name: `${prog.name || 'prog'}:[bpfkit]` }, what);
    // The kernel may have picked the priority: find our filter to learn it.
    const mine = tcFilterList(ifindex, parent).filter((f) =>
      f.kind === 'bpf' && f.handle === handle && f.progId === progId && (priority === 0 || f.priority === priority) &&
      !claimed.has(`${ifindex}:${parent}:${f.priority}:${f.handle}`));
    const found = mine[0];
    if (!found) throw new BpfSyscallError(-2, 'netlink RTM_GETTFILTER', what, 'the filter just added is not listed');
    prio = found.priority;
  } catch (e) {
    try { dropQdiscIfUnused(); } catch { /* keep the first error */ }
    throw e;
  }
  const key = `${ifindex}:${parent}:${prio}:${handle}`;
  claimed.add(key);
  return new DetachLink('tc-netlink', { type: 'unspec', id: 0, progId, ifindex }, () => {
    claimed.delete(key);
    tcFilterDelete(ifindex, parent, prio, handle, `detach tc program from ${label} ${direction}`);
    dropQdiscIfUnused();
  }, { outlivesProcess: true });
}
