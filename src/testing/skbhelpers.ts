/**
 * The rest of what net/core/filter.c offers skb programs (tc, socket filters, cgroup_skb, lwt),
 * each as it behaves in BPF_PROG_TEST_RUN. The kernel's test-run skb carries a dummy socket
 * (sk_alloc'd by the caller, so it is in the caller's cgroup, owned by uid 0 of the netns, with a
 * fresh cookie per run), no dst, no security path, hash 0, no VLAN tag, ip_summed CHECKSUM_NONE,
 * its MAC header at the frame's start and its network header 14 bytes after it.
 */
import { EFAULT, EINVAL, ENOMEM, ENOTSUPP, EOPNOTSUPP } from '../abi/errno.js';
import { __sk_buff as SKB } from '../abi/uapi.js';
import type { HelperFn, Vm } from './interpreter.js';
import { mem, ret, ret64, size, u32, u64 } from './args.js';
import { csum16Add, getHashRecalc, networkOffset, protocol, setProtocol, skbOf } from './nethelpers.js';
import { ETH_HLEN, type SkbState } from './testrun.js';

const ETH_ALEN = 6;
const VLAN_HLEN = 4;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const ETH_P_802_3 = 0x0001;
const ETH_P_802_2 = 0x0004;
/** VLAN_MAX_DEPTH: how many stacked tags __vlan_get_protocol walks. */
const VLAN_MAX_DEPTH = 8;

/** What the skb holds beyond SkbState, for the helpers of this module. */
interface SkbExtra {
  /** l4_hash or sw_hash: skb_get_hash returns skb->hash as it is instead of dissecting the flow. */
  hashSet: boolean;
  /** The dummy socket's cookie, given on first use (__sock_gen_cookie). */
  cookie: bigint;
}

const extras = new WeakMap<SkbState, SkbExtra>();
/** Socket cookies come from one counter, as the kernel's net_cookie does. */
let lastCookie = 0x1000n;

function extra(s: SkbState): SkbExtra {
  let e = extras.get(s);
  if (!e) extras.set(s, (e = { hashSet: false, cookie: 0n }));
  return e;
}

const view = (s: SkbState) => new DataView(s.ctx.buffer, s.ctx.byteOffset, s.ctx.byteLength);
const isVlan = (proto: number) => proto === ETH_P_8021Q || proto === ETH_P_8021AD;
const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

// ---- the socket and cgroup of the test run --------------------------------------------------------

/** bpf_get_socket_cookie(skb): the dummy socket's cookie, the same for every call in a run. */
function socketCookie(vm: Vm): void {
  const e = extra(skbOf(vm, 46));
  if (!e.cookie) e.cookie = ++lastCookie;
  ret64(vm, e.cookie);
}

/** bpf_get_socket_uid: sock_init_data(NULL, sk) gives the dummy socket uid 0 of the netns. */
function socketUid(vm: Vm): void {
  skbOf(vm, 47);
  ret(vm, 0);
}

/** The task's cgroup and its ancestors, root first. */
function cgroupPath(vm: Vm): readonly bigint[] {
  const t = vm.env.task;
  return t.cgroupAncestors ?? (t.cgroupId === 1n ? [1n] : [1n, t.cgroupId]);
}

/** bpf_skb_cgroup_id: the dummy socket was allocated in the caller's cgroup v2 (cgroup_sk_alloc). */
function skbCgroupId(vm: Vm): void {
  skbOf(vm, 79);
  ret64(vm, vm.env.task.cgroupId);
}

/** bpf_skb_ancestor_cgroup_id: the ancestor at `level` (0 is the root), 0 past the socket's own level. */
function skbAncestorCgroupId(vm: Vm): void {
  skbOf(vm, 83);
  const level = u32(vm, 2) | 0; // an int: negative levels find nothing
  const path = cgroupPath(vm);
  ret64(vm, level >= 0 && level < path.length ? path[level]! : 0n);
}

/**
 * bpf_get_cgroup_classid (the caller's net_cls classid), bpf_skb_cgroup_classid (the socket's,
 * copied from the caller's at sk_alloc) and bpf_get_route_realm (the dst's tclassid; a test run's
 * skb has no dst, lwt_xmit's ip6_null_entry has none either): 0 outside a net_cls cgroup with a
 * classid, which the emulator does not model.
 */
const zero = (id: number) => (vm: Vm) => {
  skbOf(vm, id);
  ret(vm, 0);
};

/** bpf_skb_get_xfrm_state: a test run's skb has no security path, so -EINVAL with `to` zeroed. */
function xfrmState(vm: Vm): void {
  skbOf(vm, 66);
  mem(vm, 3, size(vm, 4), true, 66, 'to').fill(0);
  ret(vm, -EINVAL);
}

// ---- data -----------------------------------------------------------------------------------------

/** bpf_skb_pull_data: linear already, so only a length past the data fails (pskb_may_pull). */
function skbPullData(vm: Vm): void {
  skbOf(vm, 39);
  const len = u32(vm, 2);
  ret(vm, len > vm.packet!.length ? -ENOMEM : 0);
}

/** bpf_skb_load_bytes_relative: from the MAC (0) or network (1) header, up to the tail. */
function loadBytesRelative(vm: Vm): void {
  const s = skbOf(vm, 68);
  const p = vm.packet!;
  const offset = u32(vm, 2);
  const len = size(vm, 4);
  const to = mem(vm, 3, len, true, 68, 'to');
  const header = u32(vm, 5); // BPF_HDR_START_MAC or _NET, a u32
  // The MAC header is where data starts for tc and 14 bytes before it for the others.
  const mac = p.data + networkOffset(s) - ETH_HLEN;
  const start = header === 0 ? mac : header === 1 ? mac + ETH_HLEN : undefined;
  if (offset > 0xffff || start === undefined || start + offset + len > p.end) {
    to.fill(0);
    return ret(vm, -EFAULT);
  }
  to.set(p.buf.subarray(start + offset, start + offset + len));
  ret(vm, 0);
}

/** bpf_csum_update: only a CHECKSUM_COMPLETE skb has a csum to update; test runs here never are. */
function csumUpdate(vm: Vm): void {
  skbOf(vm, 40);
  ret(vm, -ENOTSUPP);
}

// ---- hash -----------------------------------------------------------------------------------------

function setHashField(s: SkbState, hash: number): void {
  view(s).setUint32(SKB.hash, hash >>> 0, true);
}

/** bpf_set_hash_invalid: skb_clear_hash, so the next skb_get_hash dissects the flow again. */
function setHashInvalid(vm: Vm): void {
  const s = skbOf(vm, 41);
  setHashField(s, 0);
  extra(s).hashSet = false;
  ret(vm, 0);
}

/** bpf_set_hash: a software L4 hash, which skb_get_hash then returns as it is. */
function setHash(vm: Vm): void {
  const s = skbOf(vm, 48);
  setHashField(s, u32(vm, 2));
  extra(s).hashSet = true;
  ret(vm, 0);
}

/** bpf_get_hash_recalc: the hash bpf_set_hash gave, or the flow's (nethelpers.ts). */
function hashRecalc(vm: Vm): void {
  const s = skbOf(vm, 34);
  if (extra(s).hashSet) return ret(vm, view(s).getUint32(SKB.hash, true));
  getHashRecalc(vm);
}

// ---- ECN and timestamps ---------------------------------------------------------------------------

/** vlan_get_protocol: skb->protocol, or for an in-packet VLAN tag what the tags carry (read from data). */
function innerProtocol(vm: Vm, s: SkbState): number {
  const p = vm.packet!;
  let type = protocol(s);
  let depth = ETH_HLEN;
  for (let n = 0; isVlan(type); n++) {
    if (n === VLAN_MAX_DEPTH || depth + VLAN_HLEN > p.length) return 0;
    type = be16(p.buf, p.data + depth + 2);
    depth += VLAN_HLEN;
  }
  return type;
}

/** bpf_skb_ecn_set_ce: INET_ECN_set_ce on the network header, IPv4's checksum updated in step. */
function ecnSetCe(vm: Vm): void {
  const s = skbOf(vm, 97);
  const p = vm.packet!;
  const proto = innerProtocol(vm, s);
  const hdrLen = proto === ETH_P_IP ? 20 : proto === ETH_P_IPV6 ? 40 : 0;
  const net = p.data + networkOffset(s);
  if (!hdrLen || p.length < hdrLen || net + hdrLen > p.end) return ret(vm, 0);
  const b = p.buf;
  if (proto === ETH_P_IP) {
    const ecn = (b[net + 1]! + 1) & 3; // NOT_ECT 1, ECT_1 2, ECT_0 3, CE 0
    if (!(ecn & 2)) return ret(vm, ecn ? 0 : 1);
    // check += htons(0xFFFB) + htons(ecn), in the field's memory order.
    const sum = csum16Add(b[net + 10]! | (b[net + 11]! << 8), 0xfbff + (ecn << 8));
    b[net + 10] = sum & 0xff;
    b[net + 11] = sum >> 8;
    b[net + 1]! |= 3;
    return ret(vm, 1);
  }
  if (((b[net + 1]! >> 4) & 3) === 0) return ret(vm, 0); // not ECN-capable
  b[net + 1]! |= 0x30;
  ret(vm, 1);
}

/** bpf_skb_set_tstamp: a delivery time and its clock, for IP packets. */
function setTstamp(vm: Vm): void {
  const s = skbOf(vm, 192);
  const tstamp = u64(vm, 2);
  const type = u32(vm, 3);
  const proto = protocol(s);
  if (proto !== ETH_P_IP && proto !== ETH_P_IPV6) return ret(vm, -EOPNOTSUPP);
  // 0 is BPF_SKB_TSTAMP_UNSPEC (tstamp must be 0) before 6.11, BPF_SKB_CLOCK_REALTIME (any) after;
  // 1 is DELIVERY_MONO / CLOCK_MONOTONIC; 2 is CLOCK_TAI from 6.11.
  const clocks = vm.env.kernel.tstampClocks;
  if (type > (clocks ? 2 : 1)) return ret(vm, -EINVAL);
  if (type === 0 ? !clocks && tstamp !== 0n : tstamp === 0n) return ret(vm, -EINVAL);
  view(s).setBigUint64(SKB.tstamp, tstamp, true);
  s.ctx[SKB.tstamp_type] = type; // what __sk_buff.tstamp_type reads back
  ret(vm, 0);
}

// ---- VLAN -----------------------------------------------------------------------------------------

function vlanPresent(s: SkbState): boolean {
  return view(s).getUint32(SKB.vlan_present, true) !== 0;
}

/** __vlan_hwaccel_put_tag: __sk_buff.vlan_proto reads the __be16 as stored, vlan_tci in host order. */
function putTag(s: SkbState, proto: number, tci: number): void {
  const v = view(s);
  v.setUint32(SKB.vlan_present, 1, true);
  v.setUint32(SKB.vlan_tci, tci & 0xffff, true);
  v.setUint32(SKB.vlan_proto, ((proto & 0xff) << 8) | (proto >> 8), true);
}

function clearTag(vm: Vm, s: SkbState): void {
  const v = view(s);
  v.setUint32(SKB.vlan_present, 0, true);
  if (vm.env.kernel.vlanClearZeroes) {
    v.setUint32(SKB.vlan_tci, 0, true);
    v.setUint32(SKB.vlan_proto, 0, true);
  }
}

/** __vlan_insert_tag: the tag goes in after the MAC addresses. */
function insertTag(vm: Vm, proto: number, tci: number): void {
  const p = vm.packet!;
  p.reserve(VLAN_HLEN, 0);
  p.buf.copyWithin(p.data - VLAN_HLEN, p.data, p.data + 2 * ETH_ALEN);
  p.data -= VLAN_HLEN;
  p.meta = p.data;
  p.buf.set([proto >> 8, proto & 0xff, tci >> 8, tci & 0xff], p.data + 2 * ETH_ALEN);
  p.sync();
}

function skbVlanPush(vm: Vm): void {
  const s = skbOf(vm, 18);
  const arg = u32(vm, 2) & 0xffff;
  let proto = ((arg & 0xff) << 8) | (arg >> 8); // __be16
  if (!isVlan(proto)) proto = ETH_P_8021Q;
  const tci = u32(vm, 3) & 0xffff;
  if (vlanPresent(s)) {
    // skb_vlan_push wants data at the MAC header (the kernel also WARNs otherwise).
    if (!s.isL2) return ret(vm, -EINVAL);
    const v = view(s);
    const old = v.getUint32(SKB.vlan_proto, true);
    const oldProto = ((old & 0xff) << 8) | (old >> 8);
    insertTag(vm, oldProto, v.getUint32(SKB.vlan_tci, true));
    setProtocol(s, oldProto);
  }
  putTag(s, proto, tci);
  ret(vm, 0);
}

/** __skb_vlan_pop: the tag after the MAC addresses out of the packet; its TCI, or a negative errno. */
function popTag(vm: Vm, s: SkbState): number {
  const p = vm.packet!;
  if (!s.isL2) return -EINVAL;
  if (p.length < ETH_HLEN + VLAN_HLEN) return -ENOMEM;
  const b = p.buf;
  const tci = be16(b, p.data + ETH_HLEN);
  const inner = be16(b, p.data + ETH_HLEN + 2);
  // vlan_set_encap_proto: an 802.3 length field means raw 802.3 (0xffff next) or 802.2 LLC.
  const next = inner >= 0x600 ? inner : be16(b, p.data + ETH_HLEN + 4) === 0xffff ? ETH_P_802_3 : ETH_P_802_2;
  b.copyWithin(p.data + VLAN_HLEN, p.data, p.data + 2 * ETH_ALEN);
  p.data += VLAN_HLEN;
  p.meta = p.data;
  p.sync();
  setProtocol(s, next);
  return tci;
}

/** bpf_skb_vlan_pop (skb_vlan_pop): the offloaded tag, else one in the packet; a further tag in the packet becomes the offloaded one. */
function skbVlanPop(vm: Vm): void {
  const s = skbOf(vm, 19);
  if (vlanPresent(s)) {
    clearTag(vm, s);
  } else {
    if (!isVlan(protocol(s))) return ret(vm, 0);
    const r = popTag(vm, s);
    if (r < 0) return ret(vm, r);
  }
  const proto = protocol(s);
  if (!isVlan(proto)) return ret(vm, 0);
  const tci = popTag(vm, s);
  if (tci < 0) return ret(vm, tci);
  putTag(s, proto, tci);
  ret(vm, 0);
}

export const SKB_HELPERS: Record<number, HelperFn> = {
  17: zero(17), 18: skbVlanPush, 19: skbVlanPop, 24: zero(24), 34: hashRecalc, 39: skbPullData, 40: csumUpdate,
  46: socketCookie, 47: socketUid, 41: setHashInvalid, 48: setHash, 66: xfrmState, 68: loadBytesRelative, 79: skbCgroupId,
  83: skbAncestorCgroupId, 97: ecnSetCe, 151: zero(151), 192: setTstamp,
};
