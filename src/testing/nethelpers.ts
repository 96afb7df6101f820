/**
 * Helpers that XDP and tc programs call to edit packets and their metadata, each as its
 * net/core/filter.c counterpart does it in a test run: checksums (bpf_csum_diff,
 * bpf_l3/l4_csum_replace, bpf_csum_level), room and size changes (bpf_skb_adjust_room,
 * bpf_skb_change_head/tail/proto/type), tunnel metadata (bpf_skb_set/get_tunnel_key and _opt) and
 * bpf_get_hash_recalc. A test run's skb starts with ip_summed = CHECKSUM_NONE and no dst.
 */
import { EACCES, EINVAL, EFAULT, ENOENT, ENOMEM, ENOTSUPP, EPROTO } from '../abi/errno.js';
import { __sk_buff as SKB, bpf_tunnel_key as K } from '../abi/uapi.js';
import { Trap, type HelperFn, type Vm } from './interpreter.js';
import { mem, ret, size, u32, u64 } from './args.js';
import { helperName } from '../asm/isa.js';
import type { SkbState, TunnelInfo } from './testrun.js';

const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
/** BPF_SKB_MAX_LEN: SKB_MAX_ALLOC, four pages less skb_shared_info. */
const BPF_SKB_MAX_LEN = 16384 - 320;
const CHECKSUM_NONE = 0;
const CHECKSUM_UNNECESSARY = 1;
const SKB_MAX_CSUM_LEVEL = 3;

// ---- ones' complement arithmetic, on values as x86 reads them from memory ----------------------

/** csum_add: 32-bit add with the carry folded back in. */
function csumAdd(a: number, b: number): number {
  const s = (a >>> 0) + (b >>> 0);
  return (s + (s > 0xffffffff ? 1 : 0)) >>> 0;
}

const csumSub = (a: number, b: number) => csumAdd(a, ~b >>> 0);

/** csum_fold: 32 bits to 16, complemented. */
function csumFold(x: number): number {
  let s = (x & 0xffff) + (x >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function csum16Add(c: number, addend: number): number {
  let r = (c + addend) & 0xffff;
  if (r < addend) r = (r + 1) & 0xffff;
  return r;
}

const csum16Sub = (c: number, addend: number) => csum16Add(c, ~addend & 0xffff);

/** csum_partial as x86_64 computes it: the buffer's little-endian words summed with end-around carry, to 32 bits. */
function csumPartial(b: Uint8Array, seed: number): number {
  let s = BigInt(seed >>> 0);
  const padded = new Uint8Array((b.length + 3) & ~3);
  padded.set(b);
  const v = new DataView(padded.buffer);
  for (let i = 0; i < padded.length; i += 4) s += BigInt(v.getUint32(i, true));
  while (s > 0xffffffffn) s = (s & 0xffffffffn) + (s >> 32n);
  return Number(s);
}

/** csum_from32to16: the two halves added with end-around carry, not complemented. */
function from32to16(x: number): number {
  const s = (x >>> 0) + (((x >>> 16) | (x << 16)) >>> 0);
  return Number((BigInt(s) >> 16n) & 0xffffn);
}

function le16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
}

// ---- the skb ------------------------------------------------------------------------------------

export function skbOf(vm: Vm, id: number): SkbState {
  if (!vm.isSkb || !vm.skb || !vm.packet) throw new Trap(`${helperName(id)} is only for skb programs (tc, socket filter, cgroup_skb, lwt)`);
  return vm.skb;
}

/** __sk_buff.protocol holds the __be16 in its first two bytes. */
export function protocol(s: SkbState): number {
  return (s.ctx[SKB.protocol]! << 8) | s.ctx[SKB.protocol + 1]!;
}

export function setProtocol(s: SkbState, p: number): void {
  s.ctx[SKB.protocol] = p >> 8;
  s.ctx[SKB.protocol + 1] = p & 0xff;
}

/** Bytes from skb->data to the network header (skb_network_offset). */
export const networkOffset = (s: SkbState) => (s.isL2 ? ETH_HLEN : 0);

function csumDiff(vm: Vm): void {
  const fromSize = size(vm, 2);
  const toSize = size(vm, 4);
  const seed = u32(vm, 5);
  const from = mem(vm, 1, fromSize, false, 28, 'from');
  const to = mem(vm, 3, toSize, false, 28, 'to');
  if (!vm.env.kernel.csumDiffFolded) {
    // Before 6.13: whole words only, at most 512 bytes, the 32-bit sum of ~from and to.
    if ((fromSize | toSize) & 3 || fromSize + toSize > 512) return ret(vm, -EINVAL);
    const diff = new Uint8Array(fromSize + toSize);
    diff.set(from.map((x) => ~x & 0xff));
    diff.set(to, fromSize);
    return ret(vm, csumPartial(diff, seed));
  }
  // From 6.13 the result is folded to 16 bits, the same on every architecture, for any sizes.
  if (fromSize && toSize) return ret(vm, from32to16(csumSub(csumPartial(to, seed), csumPartial(from, 0))));
  if (toSize) return ret(vm, from32to16(csumPartial(to, seed)));
  if (fromSize) return ret(vm, from32to16(~csumPartial(from, ~seed >>> 0) >>> 0));
  ret(vm, seed);
}

/** The u16 checksum field at `offset` of the data, after the kernel's offset and writability checks. */
function csumField(vm: Vm, id: number): number | undefined {
  skbOf(vm, id);
  const p = vm.packet!;
  const offset = u32(vm, 2);
  if (vm.rh[2] || offset > 0xffff || offset & 1 || offset + 2 > p.length) return undefined;
  return p.data + offset;
}

function l3CsumReplace(vm: Vm): void {
  const flags = u64(vm, 5);
  if (flags & ~0xfn) return ret(vm, -EINVAL);
  const at = csumField(vm, 10);
  if (at === undefined) return ret(vm, -EFAULT);
  if (!csumReplace(vm.packet!.buf, at, u64(vm, 3), u64(vm, 4), Number(flags & 0xfn))) return ret(vm, -EINVAL);
  ret(vm, 0);
}

/**
 * csum_replace_by_diff (size 0: `to` is a checksum diff, `from` must be 0), csum_replace2 or
 * csum_replace4 on the 16-bit field at `at`; false for another size. With ip_summed CHECKSUM_NONE,
 * inet_proto_csum_replace* update the field the same way.
 */
function csumReplace(b: Uint8Array, at: number, from: bigint, to: bigint, size: number): boolean {
  const sum = le16(b, at);
  switch (size) {
    case 0:
      if (from !== 0n) return false;
      put16(b, at, csumFold(csumAdd(Number(to & 0xffffffffn), ~sum >>> 0)));
      return true;
    case 2:
      put16(b, at, ~csum16Add(csum16Sub(~sum & 0xffff, Number(from & 0xffffn)), Number(to & 0xffffn)) & 0xffff);
      return true;
    case 4:
      put16(b, at, csumFold(csumAdd(csumSub(~sum >>> 0, Number(from & 0xffffffffn)), Number(to & 0xffffffffn))));
      return true;
    default:
      return false;
  }
}

const BPF_F_PSEUDO_HDR = 1n << 4n;
const BPF_F_MARK_MANGLED_0 = 1n << 5n;
const BPF_F_MARK_ENFORCE = 1n << 6n;
const BPF_F_IPV6 = 1n << 7n;

function l4CsumReplace(vm: Vm): void {
  const flags = u64(vm, 5);
  if (flags & ~(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_IPV6 | 0xfn)) return ret(vm, -EINVAL);
  const at = csumField(vm, 11);
  if (at === undefined) return ret(vm, -EFAULT);
  const b = vm.packet!.buf;
  const mangled0 = (flags & BPF_F_MARK_MANGLED_0) !== 0n;
  if (mangled0 && !(flags & BPF_F_MARK_ENFORCE) && le16(b, at) === 0) return ret(vm, 0);
  if (!csumReplace(b, at, u64(vm, 3), u64(vm, 4), Number(flags & 0xfn))) return ret(vm, -EINVAL);
  if (mangled0 && le16(b, at) === 0) put16(b, at, 0xffff); // CSUM_MANGLED_0
  ret(vm, 0);
}

function csumLevel(vm: Vm): void {
  const s = skbOf(vm, 135);
  const level = u64(vm, 2);
  switch (level) {
    case 0n: // BPF_CSUM_LEVEL_QUERY
      return ret(vm, s.ipSummed === CHECKSUM_UNNECESSARY ? s.csumLevel : -EACCES);
    case 1n: // INC
      if (s.ipSummed === CHECKSUM_UNNECESSARY) {
        if (s.csumLevel < SKB_MAX_CSUM_LEVEL) s.csumLevel++;
      } else if (s.ipSummed === CHECKSUM_NONE) {
        s.ipSummed = CHECKSUM_UNNECESSARY;
        s.csumLevel = 0;
      }
      break;
    case 2n: // DEC
      if (s.ipSummed === CHECKSUM_UNNECESSARY) {
        if (s.csumLevel === 0) s.ipSummed = CHECKSUM_NONE;
        else s.csumLevel--;
      }
      break;
    case 3n: // RESET
      resetUnnecessary(s);
      break;
    default:
      return ret(vm, -EINVAL);
  }
  ret(vm, 0);
}

function resetUnnecessary(s: SkbState): void {
  if (s.ipSummed === CHECKSUM_UNNECESSARY) {
    s.ipSummed = CHECKSUM_NONE;
    s.csumLevel = 0;
  }
}

// ---- room and size ------------------------------------------------------------------------------

/** Inserts `len` zero bytes at `off` from data (bpf_skb_net_hdr_push). */
function pushAt(vm: Vm, off: number, len: number): void {
  const p = vm.packet!;
  p.reserve(len, 0);
  p.buf.copyWithin(p.data - len, p.data, p.data + off);
  p.data -= len;
  p.meta = p.data;
  p.buf.fill(0, p.data + off, p.data + off + len);
  p.sync();
}

/** Removes `len` bytes at `off` from data (bpf_skb_net_hdr_pop). */
function popAt(vm: Vm, off: number, len: number): void {
  const p = vm.packet!;
  p.buf.copyWithin(p.data + len, p.data, p.data + off);
  p.data += len;
  p.meta = p.data;
  p.sync();
}

/** bpf_skb_net_base_len: the fixed network header of the protocol, 0 for others. */
function netBaseLen(s: SkbState): number {
  const proto = protocol(s);
  return proto === ETH_P_IP ? 20 : proto === ETH_P_IPV6 ? 40 : 0;
}

const ADJ_FIXED_GSO = 1n;
const ADJ_ENCAP_L3_IPV4 = 1n << 1n;
const ADJ_ENCAP_L3_IPV6 = 1n << 2n;
const ADJ_ENCAP_L4_GRE = 1n << 3n;
const ADJ_ENCAP_L4_UDP = 1n << 4n;
const ADJ_NO_CSUM_RESET = 1n << 5n;
const ADJ_ENCAP_L2_ETH = 1n << 6n;
const ADJ_DECAP_L3_IPV4 = 1n << 7n;
const ADJ_DECAP_L3_IPV6 = 1n << 8n;
const ADJ_ENCAP_L3 = ADJ_ENCAP_L3_IPV4 | ADJ_ENCAP_L3_IPV6;
const ADJ_DECAP_L3 = ADJ_DECAP_L3_IPV4 | ADJ_DECAP_L3_IPV6;
const ADJ_MASK = ADJ_FIXED_GSO | ADJ_ENCAP_L3 | ADJ_ENCAP_L4_GRE | ADJ_ENCAP_L4_UDP | ADJ_ENCAP_L2_ETH | (0xffn << 56n) | ADJ_DECAP_L3;

function skbAdjustRoom(vm: Vm): void {
  const s = skbOf(vm, 50);
  const p = vm.packet!;
  const lenDiff = u32(vm, 2) | 0;
  const mode = u32(vm, 3);
  const flags = u64(vm, 4);
  const abs = Math.abs(lenDiff);
  let lenMin = netBaseLen(s);
  const shrink = lenDiff < 0;
  const known = vm.env.kernel.adjustRoomDecapL3 ? ADJ_MASK : ADJ_MASK & ~ADJ_DECAP_L3;
  if (flags & ~(known | ADJ_NO_CSUM_RESET)) return ret(vm, -EINVAL);
  if (abs > 0xfff) return ret(vm, -EFAULT);
  const proto = protocol(s);
  if (proto !== ETH_P_IP && proto !== ETH_P_IPV6) return ret(vm, -ENOTSUPP);
  const macLen = s.isL2 ? ETH_HLEN : 0;
  let off = macLen;
  if (mode === 0) off += netBaseLen(s); // BPF_ADJ_ROOM_NET
  else if (mode !== 1) return ret(vm, -ENOTSUPP); // BPF_ADJ_ROOM_MAC
  if (flags & ADJ_DECAP_L3) {
    if (!shrink) return ret(vm, -EINVAL);
    const decap = flags & ADJ_DECAP_L3;
    if (decap === ADJ_DECAP_L3_IPV4) lenMin = 20;
    else if (decap === ADJ_DECAP_L3_IPV6) lenMin = 40;
    else return ret(vm, -EINVAL);
  }
  const lenCur = p.length - networkOffset(s);
  if ((shrink && (abs >= lenCur || lenCur - abs < lenMin)) || (!shrink && p.length + abs > BPF_SKB_MAX_LEN)) return ret(vm, -ENOTSUPP);
  if (shrink) {
    if (flags & ~(ADJ_FIXED_GSO | ADJ_DECAP_L3 | ADJ_NO_CSUM_RESET)) return ret(vm, -EINVAL);
    if (off + abs > p.length) return ret(vm, -ENOMEM);
    popAt(vm, off, abs);
    if (flags & ADJ_DECAP_L3_IPV4) setProtocol(s, ETH_P_IP);
    else if (flags & ADJ_DECAP_L3_IPV6) setProtocol(s, ETH_P_IPV6);
  } else {
    if (flags & ADJ_DECAP_L3) return ret(vm, -EINVAL);
    if (flags & ADJ_ENCAP_L3) {
      if ((flags & ADJ_ENCAP_L3) === ADJ_ENCAP_L3) return ret(vm, -EINVAL);
      if (flags & ADJ_ENCAP_L4_GRE && flags & ADJ_ENCAP_L4_UDP) return ret(vm, -EINVAL);
      const innerMac = Number((flags >> 56n) & 0xffn);
      if (flags & ADJ_ENCAP_L2_ETH && innerMac !== ETH_HLEN) return ret(vm, -EINVAL);
      if (innerMac > abs) return ret(vm, -EINVAL);
    }
    pushAt(vm, off, abs);
    if (proto === ETH_P_IP && flags & ADJ_ENCAP_L3_IPV6) setProtocol(s, ETH_P_IPV6);
    else if (proto === ETH_P_IPV6 && flags & ADJ_ENCAP_L3_IPV4) setProtocol(s, ETH_P_IP);
  }
  if (!(flags & ADJ_NO_CSUM_RESET)) resetUnnecessary(s);
  ret(vm, 0);
}

function skbChangeHead(vm: Vm): void {
  skbOf(vm, 43);
  const p = vm.packet!;
  const room = u32(vm, 2);
  const flags = u64(vm, 3);
  const newLen = p.length + room;
  if (flags || vm.rh[2] || room > 0x7fffffff || newLen > BPF_SKB_MAX_LEN) return ret(vm, -EINVAL);
  p.reserve(room, 0);
  p.data -= room;
  p.meta = p.data;
  p.buf.fill(0, p.data, p.data + room);
  p.sync();
  ret(vm, 0);
}

function skbChangeTail(vm: Vm): void {
  const s = skbOf(vm, 38);
  const p = vm.packet!;
  const newLen = u32(vm, 2);
  const flags = u64(vm, 3);
  if (flags || vm.rh[2] || newLen > BPF_SKB_MAX_LEN || newLen < networkOffset(s)) return ret(vm, -EINVAL);
  if (newLen > p.length) {
    const grow = newLen - p.length;
    p.reserve(0, grow);
    p.buf.fill(0, p.end, p.end + grow);
    p.end += grow;
  } else {
    p.end = p.data + newLen;
  }
  p.sync();
  ret(vm, 0);
}

function skbChangeProto(vm: Vm): void {
  const s = skbOf(vm, 31);
  const to = u32(vm, 2) & 0xffff;
  const toProto = ((to & 0xff) << 8) | (to >> 8); // the argument is __be16
  if (u64(vm, 3)) return ret(vm, -EINVAL);
  const from = protocol(s);
  const off = s.isL2 ? ETH_HLEN : 0;
  if (from === ETH_P_IP && toProto === ETH_P_IPV6) {
    pushAt(vm, off, 20);
  } else if (from === ETH_P_IPV6 && toProto === ETH_P_IP) {
    if (off + 20 > vm.packet!.length) return ret(vm, -ENOMEM);
    popAt(vm, off, 20);
  } else {
    return ret(vm, -ENOTSUPP);
  }
  setProtocol(s, toProto);
  ret(vm, 0);
}

function skbChangeType(vm: Vm): void {
  const s = skbOf(vm, 32);
  const type = u32(vm, 2);
  const cur = s.ctx[SKB.pkt_type]!;
  if (cur > 3 || vm.rh[2] || type > 3) return ret(vm, -EINVAL); // skb_pkt_type_ok: up to PACKET_OTHERHOST
  s.ctx[SKB.pkt_type] = type;
  ret(vm, 0);
}

/** bpf_get_hash_recalc: the flow hash (the kernel keys it with a random seed per boot; this one is fixed). */
export function getHashRecalc(vm: Vm): void {
  const s = skbOf(vm, 34);
  const p = vm.packet!;
  const net = p.buf.subarray(p.data + networkOffset(s), p.end);
  let h = 0;
  const proto = protocol(s);
  if ((proto === ETH_P_IP && net.length >= 20) || (proto === ETH_P_IPV6 && net.length >= 40)) {
    h = 0x811c9dc5;
    const addrs = proto === ETH_P_IP ? net.subarray(12, 20) : net.subarray(8, 40);
    for (const b of addrs) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    h ||= 1;
  }
  new DataView(s.ctx.buffer, s.ctx.byteOffset).setUint32(SKB.hash, h, true);
  ret(vm, h);
}

// ---- tunnel metadata ----------------------------------------------------------------------------

const KEY_SIZE = K.$size;
/**
 * The shorter key sizes the kernel still takes (older struct bpf_tunnel_key layouts): up to
 * local_ipv6, tunnel_label, tunnel_ext, or remote_ipv6[1] (one u32 of the address).
 */
const COMPAT_KEY_SIZES: readonly number[] = [K.local_ipv6, K.tunnel_label, K.tunnel_ext, K.remote_ipv6 + 4];
const TUNINFO_IPV6 = 1n;
const TUNNEL_CSUM = 0x01;
const TUNNEL_KEY = 0x04;
const TUNNEL_SEQ = 0x08;
const TUNNEL_DONT_FRAGMENT = 0x0100;
const TUNNEL_NOCACHE = 0x2000;
const TUNNEL_OPTIONS_PRESENT = 0x0800 | 0x1000 | 0x4000 | 0x8000;

function setTunnelKey(vm: Vm): void {
  const s = skbOf(vm, 21);
  const n = size(vm, 3);
  const flags = u64(vm, 4);
  const from = mem(vm, 2, n, false, 21, 'key');
  // BPF_F_TUNINFO_IPV6, ZERO_CSUM_TX, DONT_FRAGMENT, SEQ_NUMBER, and NO_TUNNEL_KEY where the release knows it.
  if (flags & ~(vm.env.kernel.noTunnelKey ? 0x1fn : 0xfn)) return ret(vm, -EINVAL);
  if (n !== KEY_SIZE && !COMPAT_KEY_SIZES.includes(n)) return ret(vm, -EINVAL);
  const k = new Uint8Array(KEY_SIZE);
  k.set(from.subarray(0, Math.min(n, KEY_SIZE)));
  const v = new DataView(k.buffer);
  const ipv6 = (flags & TUNINFO_IPV6) !== 0n;
  if ((!ipv6 && v.getUint32(K.tunnel_label, true)) || v.getUint16(K.tunnel_ext, true)) return ret(vm, -EINVAL);
  let tflags = TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE;
  if (flags & 4n) tflags |= TUNNEL_DONT_FRAGMENT;
  if (flags & 2n) tflags &= ~TUNNEL_CSUM;
  if (flags & 8n) tflags |= TUNNEL_SEQ;
  if (flags & 16n) tflags &= ~TUNNEL_KEY;
  const addr = (o: number) => {
    const a = new Uint8Array(16);
    if (ipv6) a.set(k.subarray(o, o + 16));
    else new DataView(a.buffer).setUint32(0, v.getUint32(o, true)); // cpu_to_be32
    return a;
  };
  s.tunnel = {
    id: BigInt(v.getUint32(K.tunnel_id, true)), dst: addr(K.remote_ipv4), src: addr(K.local_ipv4), ipv6,
    tos: k[K.tunnel_tos]!, ttl: k[K.tunnel_ttl]!, label: ipv6 ? v.getUint32(K.tunnel_label, true) & 0xfffff : 0, flags: tflags, options: new Uint8Array(0),
  };
  ret(vm, 0);
}

function getTunnelKey(vm: Vm): void {
  const s = skbOf(vm, 20);
  const n = size(vm, 3);
  const flags = u64(vm, 4);
  const to = mem(vm, 2, n, true, 20, 'key');
  const t: TunnelInfo | undefined = s.tunnel;
  const fail = (e: number) => {
    to.fill(0);
    ret(vm, e);
  };
  if (!t || flags & ~0x11n) return fail(-EINVAL);
  const ipv6 = (flags & TUNINFO_IPV6) !== 0n;
  if (t.ipv6 !== ipv6) return fail(-EPROTO);
  if (n !== KEY_SIZE) {
    if (n === K.remote_ipv6 + 4 && t.ipv6) return fail(-EINVAL);
    if (!COMPAT_KEY_SIZES.includes(n)) return fail(-EINVAL);
  }
  const k = new Uint8Array(KEY_SIZE);
  const v = new DataView(k.buffer);
  v.setUint32(K.tunnel_id, Number(t.id & 0xffffffffn), true);
  k[K.tunnel_tos] = t.tos;
  k[K.tunnel_ttl] = t.ttl;
  if (flags & 0x10n) v.setUint16(K.tunnel_flags, t.flags, false); // BPF_F_TUNINFO_FLAGS: __be16
  if (ipv6) {
    k.set(t.src, K.remote_ipv6);
    k.set(t.dst, K.local_ipv6);
    v.setUint32(K.tunnel_label, t.label, true);
  } else {
    v.setUint32(K.remote_ipv4, new DataView(t.src.buffer).getUint32(0), true); // be32_to_cpu
    v.setUint32(K.local_ipv4, new DataView(t.dst.buffer).getUint32(0), true);
  }
  to.set(k.subarray(0, n));
  ret(vm, 0);
}

function setTunnelOpt(vm: Vm): void {
  const s = skbOf(vm, 30);
  const n = size(vm, 3);
  const from = mem(vm, 2, n, false, 30, 'opt');
  if (!s.tunnel || n & 3) return ret(vm, -EINVAL);
  if (n > 255) return ret(vm, -ENOMEM);
  s.tunnel.options = from.slice();
  s.tunnel.flags &= ~TUNNEL_OPTIONS_PRESENT;
  if (n) s.tunnel.flags |= TUNNEL_OPTIONS_PRESENT;
  ret(vm, 0);
}

function getTunnelOpt(vm: Vm): void {
  const s = skbOf(vm, 29);
  const n = size(vm, 3);
  const to = mem(vm, 2, n, true, 29, 'opt');
  const t = s.tunnel;
  if (!t || !(t.flags & TUNNEL_OPTIONS_PRESENT)) {
    to.fill(0);
    return ret(vm, -ENOENT);
  }
  if (n < t.options.length) {
    to.fill(0);
    return ret(vm, -ENOMEM);
  }
  to.fill(0);
  to.set(t.options);
  ret(vm, t.options.length);
}

export const NET_HELPERS: Record<number, HelperFn> = {
  10: l3CsumReplace, 11: l4CsumReplace, 20: getTunnelKey, 21: setTunnelKey, 28: csumDiff, 29: getTunnelOpt, 30: setTunnelOpt,
  31: skbChangeProto, 32: skbChangeType, 34: getHashRecalc, 38: skbChangeTail, 43: skbChangeHead, 50: skbAdjustRoom,
  135: csumLevel,
};
