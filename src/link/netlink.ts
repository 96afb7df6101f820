/**
 * Just enough rtnetlink for attaching programs without bpf_links: XDP through RTM_SETLINK
 * IFLA_XDP, and tc through a clsact qdisc plus a cls_bpf filter in direct-action mode. Also
 * interface lookups (RTM_GETLINK), which follow the caller's network namespace.
 *
 * Header layouts are the generated uapi ones (src/sys/uapi.ts); attribute numbers from uapi
 * linux/if_link.h, linux/pkt_sched.h and linux/pkt_cls.h. Everything is synchronous: rtnetlink answers a request before sendto()
 * returns, so replies are read with MSG_DONTWAIT.
 */
import { EAGAIN } from '../abi/errno.js';
import { BpfkitError, BpfSyscallError } from '../errors.js';
import { native } from '../sys/native.js';
import { cString } from '../abi/cstring.js';
import type { Layout } from '../abi/layout.js';
import { ifinfomsg as IFINFOMSG, nlattr, nlmsgerr, nlmsghdr, sockaddr_nl, tcmsg as TCMSG } from '../abi/uapi.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_ROUTE = 0;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const MSG_DONTWAIT = 0x40;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
const NLM_F_ACK_TLVS = 0x200;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSGERR_ATTR_MSG = 1;

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;

const RTM_NAMES: Record<number, string> = {
  16: 'RTM_NEWLINK', 18: 'RTM_GETLINK', 19: 'RTM_SETLINK', 36: 'RTM_NEWQDISC', 37: 'RTM_DELQDISC',
  44: 'RTM_NEWTFILTER', 45: 'RTM_DELTFILTER', 46: 'RTM_GETTFILTER',
};

const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const IFLA_IFNAME = 3;
const IFLA_XDP = 43;
const IFLA_XDP_FD = 1;
const IFLA_XDP_ATTACHED = 2;
const IFLA_XDP_FLAGS = 3;
const IFLA_XDP_PROG_ID = 4;
const IFLA_XDP_EXPECTED_FD = 8;

const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

/** tc handles: the clsact qdisc and its two attach points. */
export const TC_H_CLSACT = 0xfffffff1;
export const TC_H_CLSACT_HANDLE = 0xffff0000;
export const TC_H_INGRESS_PARENT = 0xfffffff2;
export const TC_H_EGRESS_PARENT = 0xfffffff3;
const ETH_P_ALL_BE = 0x0300; // htons(ETH_P_ALL = 3)

/** Flags of IFLA_XDP_FLAGS (uapi linux/if_link.h). */
export const XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0;
export const XDP_FLAGS_SKB_MODE = 1 << 1;
export const XDP_FLAGS_DRV_MODE = 1 << 2;
export const XDP_FLAGS_HW_MODE = 1 << 3;
export const XDP_FLAGS_REPLACE = 1 << 4;

/** Builds a netlink message payload: a fixed family header followed by attributes. */
export class NlWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #grow(n: number): number {
    const need = this.#len + n;
    if (need > this.#buf.length) {
      const b = new Uint8Array(Math.max(need, this.#buf.length * 2));
      b.set(this.#buf.subarray(0, this.#len));
      this.#buf = b;
    }
    const at = this.#len;
    this.#len = need;
    return at;
  }

  #view(): DataView {
    return new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  get length(): number {
    return this.#len;
  }

  u8(v: number): this { const o = this.#grow(1); this.#buf[o] = v & 0xff; return this; }
  u16(v: number): this { const o = this.#grow(2); this.#view().setUint16(o, v, true); return this; }
  u32(v: number): this { const o = this.#grow(4); this.#view().setUint32(o, v >>> 0, true); return this; }
  i32(v: number): this { const o = this.#grow(4); this.#view().setInt32(o, v, true); return this; }
  bytes(b: Uint8Array): this { const o = this.#grow(b.length); this.#buf.set(b, o); return this; }

  /** A fixed uapi header (ifinfomsg, tcmsg): the fields given by name, the rest zero. */
  header<L extends Layout>(layout: L, fields: Partial<Record<keyof L['$sizeof'], number>>): this {
    const o = this.#grow(layout.$size);
    const v = this.#view();
    for (const [name, value] of Object.entries(fields) as [string, number][]) {
      const at = o + (layout as unknown as Record<string, number>)[name]!;
      const size = layout.$sizeof[name];
      if (size === 1) v.setUint8(at, value);
      else if (size === 2) v.setUint16(at, value, true);
      else v.setUint32(at, value >>> 0, true);
    }
    return this;
  }

  align(): this {
    const pad = (4 - (this.#len % 4)) % 4;
    this.#grow(pad);
    return this;
  }

  /** An attribute; `body` writes its payload. */
  attr(type: number, body: (w: this) => void): this {
    this.align();
    const start = this.#grow(nlattr.$size);
    body(this);
    const v = this.#view();
    v.setUint16(start + nlattr.nla_len, this.#len - start, true);
    v.setUint16(start + nlattr.nla_type, type, true);
    return this.align();
  }

  attrU32(type: number, v: number): this { return this.attr(type, (w) => w.u32(v)); }
  attrI32(type: number, v: number): this { return this.attr(type, (w) => w.i32(v)); }
  attrStr(type: number, s: string): this { return this.attr(type, (w) => w.bytes(new TextEncoder().encode(`${s}\0`))); }
  nested(type: number, body: (w: this) => void): this { return this.attr(type | NLA_F_NESTED, body); }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Attributes of a payload region, by type (the nested/byte-order bits removed); the last of a type wins. */
export function parseAttrs(buf: Uint8Array, start: number, end: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = start;
  while (o + nlattr.$size <= end) {
    const len = v.getUint16(o + nlattr.nla_len, true);
    const type = v.getUint16(o + nlattr.nla_type, true) & NLA_TYPE_MASK;
    if (len < nlattr.$size || o + len > end) break;
    out.set(type, buf.subarray(o + nlattr.$size, o + len));
    o += (len + 3) & ~3;
  }
  return out;
}

function attrU32(a: Uint8Array | undefined): number | undefined {
  if (!a || a.length < 4) return undefined;
  return new DataView(a.buffer, a.byteOffset, 4).getUint32(0, true);
}

function attrStr(a: Uint8Array | undefined): string | undefined {
  return a ? cString(a) : undefined;
}

export interface NlMessage {
  type: number;
  flags: number;
  /** The message bytes after the 16-byte nlmsghdr. */
  payload: Uint8Array;
}

let seqCounter = Math.floor(Math.random() * 0x7fffffff);

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A NETLINK_ROUTE socket. */
export class Netlink implements Disposable {
  readonly #fd: number;
  #closed = false;

  constructor() {
    const n = native();
    const fd = n.socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (fd < 0) throw new BpfSyscallError(fd, 'socket(AF_NETLINK)', 'open rtnetlink socket');
    this.#fd = fd;
    const one = new Int32Array([1]);
    // Extended acks carry the kernel's error text; capped acks leave out the echoed request.
    n.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one);
    n.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one);
  }

  /**
   * Sends one request and collects the replies: for a dump every message until NLMSG_DONE, else
   * any reply messages and the final ack. Failures throw BpfSyscallError carrying the kernel's
   * extended ack message as hint.
   */
  request(type: number, flags: number, body: Uint8Array, what: string, hint?: (errno: number, extack: string | undefined) => string | undefined): NlMessage[] {
    if (this.#closed) throw new BpfkitError('ERR_BPFKIT_CLOSED', 'netlink socket is closed');
    const n = native();
    const seq = (seqCounter = (seqCounter + 1) & 0x7fffffff);
    const H = nlmsghdr;
    const msg = new Uint8Array(H.$size + body.length);
    const mv = new DataView(msg.buffer);
    mv.setUint32(H.nlmsg_len, msg.length, true);
    mv.setUint16(H.nlmsg_type, type, true);
    mv.setUint16(H.nlmsg_flags, flags | NLM_F_REQUEST, true);
    mv.setUint32(H.nlmsg_seq, seq, true);
    msg.set(body, H.$size);
    const kernel = new Uint8Array(sockaddr_nl.$size);
    new DataView(kernel.buffer).setUint16(sockaddr_nl.nl_family, AF_NETLINK, true);
    const cmd = `netlink ${RTM_NAMES[type] ?? `type ${type}`}`;
    const sent = n.sendto(this.#fd, msg, 0, kernel);
    if (sent < 0) throw new BpfSyscallError(sent, cmd, what);

    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const out: NlMessage[] = [];
    const buf = new Uint8Array(65536);
    const bv = new DataView(buf.buffer);
    let waited = 0;
    for (;;) {
      const r = n.recv(this.#fd, buf, MSG_DONTWAIT);
      if (r === -EAGAIN) {
        if (waited >= 2000) throw new BpfkitError('ERR_BPFKIT_NETLINK', `${cmd} (${what}): no reply from the kernel`);
        sleepMs(1);
        waited++;
        continue;
      }
      if (r < 0) throw new BpfSyscallError(r, `${cmd} (recv)`, what);
      let o = 0;
      while (o + H.$size <= r) {
        const len = bv.getUint32(o + H.nlmsg_len, true);
        const mtype = bv.getUint16(o + H.nlmsg_type, true);
        const mflags = bv.getUint16(o + H.nlmsg_flags, true);
        const mseq = bv.getUint32(o + H.nlmsg_seq, true);
        if (len < H.$size || o + len > r) break;
        const payload = buf.slice(o + H.$size, o + len);
        o += (len + 3) & ~3;
        if (mseq !== seq) continue; // a stale reply to an earlier request
        if (mtype === NLMSG_ERROR) {
          const err = new DataView(payload.buffer).getInt32(nlmsgerr.error, true);
          if (err === 0) return out; // the ack
          let extack: string | undefined;
          if (mflags & NLM_F_ACK_TLVS) {
            // int error + the request's header (capped: no payload), then the TLVs.
            extack = attrStr(parseAttrs(payload, nlmsgerr.$size, payload.length).get(NLMSGERR_ATTR_MSG));
          }
          const h = hint?.(-err, extack);
          const text = [h, extack ? `kernel says: ${extack}` : undefined].filter(Boolean).join('. ');
          throw new BpfSyscallError(err, cmd, what, text || undefined);
        }
        if (mtype === NLMSG_DONE) {
          const err = payload.length >= 4 ? new DataView(payload.buffer).getInt32(0, true) : 0;
          if (err < 0) throw new BpfSyscallError(err, cmd, what);
          return out;
        }
        out.push({ type: mtype, flags: mflags, payload });
        if (!dump && !(flags & NLM_F_ACK) && !(mflags & NLM_F_MULTI)) return out;
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    native().close(this.#fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Runs `fn` with a fresh rtnetlink socket. */
export function withNetlink<T>(fn: (nl: Netlink) => T): T {
  const nl = new Netlink();
  try {
    return fn(nl);
  } finally {
    nl.close();
  }
}

function ifinfomsg(index: number): NlWriter {
  return new NlWriter().header(IFINFOMSG, { ifi_index: index });
}

export interface NetInterface {
  index: number;
  name: string;
}

/** The interfaces of the caller's network namespace (RTM_GETLINK dump). */
export function listInterfaces(): NetInterface[] {
  return withNetlink((nl) => {
    const msgs = nl.request(RTM_GETLINK, NLM_F_DUMP, ifinfomsg(0).finish(), 'list network interfaces');
    const out: NetInterface[] = [];
    for (const m of msgs) {
      if (m.type !== RTM_NEWLINK || m.payload.length < IFINFOMSG.$size) continue;
      const index = new DataView(m.payload.buffer).getInt32(IFINFOMSG.ifi_index, true);
      const name = attrStr(parseAttrs(m.payload, IFINFOMSG.$size, m.payload.length).get(IFLA_IFNAME));
      if (name !== undefined) out.push({ index, name });
    }
    return out.sort((a, b) => a.index - b.index);
  });
}

/** The index of a named interface in the caller's network namespace, or undefined when there is none. */
export function interfaceIndex(name: string): number | undefined {
  return withNetlink((nl) => {
    try {
      const msgs = nl.request(RTM_GETLINK, NLM_F_ACK, ifinfomsg(0).attrStr(IFLA_IFNAME, name).finish(), `look up interface ${name}`);
      for (const m of msgs) {
        if (m.type === RTM_NEWLINK && m.payload.length >= IFINFOMSG.$size) return new DataView(m.payload.buffer).getInt32(IFINFOMSG.ifi_index, true);
      }
      return undefined;
    } catch (e) {
      if (e instanceof BpfSyscallError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  });
}

function xdpHint(errno: number, extack: string | undefined): string | undefined {
  if (extack) return undefined;
  switch (errno) {
    case 16: return 'another XDP program is attached to the interface: detach it first';
    case 95: return 'the driver does not support this XDP mode: try mode "skb" (generic XDP)';
    case 1: return 'attaching XDP needs CAP_NET_ADMIN (run as root)';
    case 19: return 'no such interface';
    default: return undefined;
  }
}

/** Attaches an XDP program with RTM_SETLINK IFLA_XDP (fails with EBUSY if one is attached already). */
export function xdpAttachNetlink(ifindex: number, progFd: number, flags: number, what: string): void {
  withNetlink((nl) => {
    const body = ifinfomsg(ifindex).nested(IFLA_XDP, (w) => {
      w.attrI32(IFLA_XDP_FD, progFd).attrU32(IFLA_XDP_FLAGS, flags | XDP_FLAGS_UPDATE_IF_NOEXIST);
    });
    nl.request(RTM_SETLINK, NLM_F_ACK, body.finish(), what, xdpHint);
  });
}

/**
 * Detaches the XDP program of `mode` flags from an interface, only if it is still the program of
 * `expectedFd` (XDP_FLAGS_REPLACE). Returns false when another program (or none) is attached.
 */
export function xdpDetachNetlink(ifindex: number, expectedFd: number, flags: number, what: string): boolean {
  return withNetlink((nl) => {
    const body = ifinfomsg(ifindex).nested(IFLA_XDP, (w) => {
      w.attrI32(IFLA_XDP_FD, -1).attrU32(IFLA_XDP_FLAGS, flags | XDP_FLAGS_REPLACE).attrI32(IFLA_XDP_EXPECTED_FD, expectedFd);
    });
    try {
      nl.request(RTM_SETLINK, NLM_F_ACK, body.finish(), what, xdpHint);
      return true;
    } catch (e) {
      // EEXIST: the attached program is not the expected one; ENODEV: the interface is gone.
      if (e instanceof BpfSyscallError && (e.code === 'EEXIST' || e.code === 'ENODEV')) return false;
      throw e;
    }
  });
}

export interface XdpState {
  /** XDP_ATTACHED_*: 0 none, 1 driver, 2 generic (skb), 3 hardware, 4 several. */
  attached: number;
  /** The program id when exactly one program is attached. */
  progId: number | undefined;
}

/** What XDP program an interface has (RTM_GETLINK IFLA_XDP). */
export function xdpQuery(ifindex: number): XdpState {
  return withNetlink((nl) => {
    const msgs = nl.request(RTM_GETLINK, NLM_F_ACK, ifinfomsg(ifindex).finish(), `query XDP of interface ${ifindex}`);
    for (const m of msgs) {
      if (m.type !== RTM_NEWLINK) continue;
      const xdp = parseAttrs(m.payload, 16, m.payload.length).get(IFLA_XDP);
      if (!xdp) return { attached: 0, progId: undefined };
      const inner = parseAttrs(xdp, 0, xdp.length);
      return { attached: inner.get(IFLA_XDP_ATTACHED)?.[0] ?? 0, progId: attrU32(inner.get(IFLA_XDP_PROG_ID)) };
    }
    return { attached: 0, progId: undefined };
  });
}

function tcmsg(ifindex: number, handle: number, parent: number, info: number): NlWriter {
  return new NlWriter().header(TCMSG, { tcm_ifindex: ifindex, tcm_handle: handle, tcm_parent: parent, tcm_info: info });
}

function tcHint(errno: number, extack: string | undefined): string | undefined {
  if (extack) return undefined;
  switch (errno) {
    case 1: return 'changing tc needs CAP_NET_ADMIN (run as root)';
    case 2: return 'the clsact qdisc or the filter does not exist';
    case 17: return 'a filter with this priority and handle exists already';
    case 19: return 'no such interface';
    default: return undefined;
  }
}

/** Adds a clsact qdisc; false when the interface already has one. */
export function clsactAdd(ifindex: number): boolean {
  return withNetlink((nl) => {
    const body = tcmsg(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0).attrStr(TCA_KIND, 'clsact').finish();
    try {
      nl.request(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, `add clsact qdisc to interface ${ifindex}`, tcHint);
      return true;
    } catch (e) {
      if (e instanceof BpfSyscallError && e.code === 'EEXIST') return false;
      throw e;
    }
  });
}

/** Deletes the clsact qdisc (and so every filter on it); false when there is none. */
export function clsactDelete(ifindex: number): boolean {
  return withNetlink((nl) => {
    const body = tcmsg(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0).attrStr(TCA_KIND, 'clsact').finish();
    try {
      nl.request(RTM_DELQDISC, NLM_F_ACK, body, `delete clsact qdisc of interface ${ifindex}`, tcHint);
      return true;
    } catch (e) {
      if (e instanceof BpfSyscallError && (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENODEV')) return false;
      throw e;
    }
  });
}

export interface TcFilter {
  kind: string;
  priority: number;
  handle: number;
  /** For cls_bpf filters: the program id and name. */
  progId: number | undefined;
  progName: string | undefined;
}

/** The filters attached at `parent` (TC_H_INGRESS_PARENT / TC_H_EGRESS_PARENT) of an interface. */
export function tcFilterList(ifindex: number, parent: number): TcFilter[] {
  return withNetlink((nl) => {
    let msgs: NlMessage[];
    try {
      msgs = nl.request(RTM_GETTFILTER, NLM_F_DUMP, tcmsg(ifindex, 0, parent, 0).finish(), `list tc filters of interface ${ifindex}`, tcHint);
    } catch (e) {
      // No clsact qdisc: no filters.
      if (e instanceof BpfSyscallError && (e.code === 'EINVAL' || e.code === 'ENOENT' || e.code === 'ENODEV')) return [];
      throw e;
    }
    const out: TcFilter[] = [];
    for (const m of msgs) {
      if (m.type !== RTM_NEWTFILTER || m.payload.length < TCMSG.$size) continue;
      const v = new DataView(m.payload.buffer);
      const handle = v.getUint32(TCMSG.tcm_handle, true);
      if (handle === 0) continue; // the per-priority chain head, not a filter
      const attrs = parseAttrs(m.payload, TCMSG.$size, m.payload.length);
      const opts = attrs.get(TCA_OPTIONS);
      const inner = opts ? parseAttrs(opts, 0, opts.length) : new Map<number, Uint8Array>();
      out.push({
        kind: attrStr(attrs.get(TCA_KIND)) ?? '',
        priority: v.getUint32(TCMSG.tcm_info, true) >>> 16,
        handle,
        progId: attrU32(inner.get(TCA_BPF_ID)),
        progName: attrStr(inner.get(TCA_BPF_NAME)),
      });
    }
    return out;
  });
}

export interface BpfFilterArgs {
  ifindex: number;
  parent: number;
  /** 0 lets the kernel pick one. */
  priority: number;
  handle: number;
  progFd: number;
  name: string;
}

/** Adds a cls_bpf filter in direct-action mode (fails with EEXIST when priority+handle are taken). */
export function tcFilterAddBpf(a: BpfFilterArgs, what: string): void {
  withNetlink((nl) => {
    const body = tcmsg(a.ifindex, a.handle, a.parent, ((a.priority & 0xffff) << 16) | ETH_P_ALL_BE)
      .attrStr(TCA_KIND, 'bpf')
      .nested(TCA_OPTIONS, (w) => {
        w.attrU32(TCA_BPF_FD, a.progFd).attrStr(TCA_BPF_NAME, a.name).attrU32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
      });
    nl.request(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body.finish(), what, tcHint);
  });
}

/** Deletes one filter; false when it is not there any more. */
export function tcFilterDelete(ifindex: number, parent: number, priority: number, handle: number, what: string): boolean {
  return withNetlink((nl) => {
    const body = tcmsg(ifindex, handle, parent, ((priority & 0xffff) << 16) | ETH_P_ALL_BE).attrStr(TCA_KIND, 'bpf').finish();
    try {
      nl.request(RTM_DELTFILTER, NLM_F_ACK, body, what, tcHint);
      return true;
    } catch (e) {
      if (e instanceof BpfSyscallError && (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENODEV')) return false;
      throw e;
    }
  });
}
