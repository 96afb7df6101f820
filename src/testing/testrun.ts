/**
 * BPF_PROG_TEST_RUN's inputs as the kernel turns them into a context: the packet laid out with the
 * kernel's head- and tailroom (XDP: 256 bytes of headroom in a 4096-byte frame with 320 bytes of
 * tailroom; skb: the MAC header pulled for socket filters and cgroup_skb), `struct xdp_md` and
 * `struct __sk_buff` at their uapi offsets (pointer fields produce packet pointers when loaded), and
 * for tracing programs the caller's bytes as they are. Each setup also knows what goes back to user
 * space after the run (data_out, ctx_out).
 */
import { E2BIG, EINVAL, ENODEV, ENOMEM } from '../abi/errno.js';
import { __sk_buff as SKB, xdp_md as XDP } from '../abi/uapi.js';
import { inSpans, spans } from './ctxfields.js';
import { Packet, Region, Trap, type Vm } from './interpreter.js';
import { putU32, u32At } from './maps.js';

export const ETH_HLEN = 14;
export const XDP_PACKET_HEADROOM = 256;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86_64. */
export const SKB_SHINFO = 320;
/** sizeof(struct xdp_frame): the lowest data may move to with bpf_xdp_adjust_head. */
export const XDP_FRAME_SIZE = 40;
export const XDP_MD_SIZE = XDP.$size;
export const SKB_SIZE = SKB.$size;
const NET_SKB_PAD = 64;
const PAGE_SIZE = 4096;
const MAX_SKB_FRAGS = 17;

/** xdp_metalen_invalid: metadata before an XDP packet is a multiple of 4 bytes, at most `max` (255 on 6.18, 32 before). */
export function metalenInvalid(metalen: number, max: number): boolean {
  return (metalen & 3) !== 0 || metalen > max;
}

/** What an sk_buff holds besides its bytes and its __sk_buff fields. */
export interface SkbState {
  /** tc programs see the frame from the MAC header; the others from the network header. */
  readonly isL2: boolean;
  /** The __sk_buff bytes (fields at their uapi offsets: __sk_buff in src/abi/uapi.ts). */
  readonly ctx: Uint8Array;
  /** CHECKSUM_NONE (0) in a test run; bpf_csum_level may make it CHECKSUM_UNNECESSARY (1). */
  ipSummed: number;
  csumLevel: number;
  /** Tunnel metadata set by bpf_skb_set_tunnel_key / _opt (a metadata dst on the skb). */
  tunnel: TunnelInfo | undefined;
}

export interface TunnelInfo {
  id: bigint;
  /** Addresses as 16 bytes each (IPv4 in the first 4), in network order. */
  src: Uint8Array;
  dst: Uint8Array;
  ipv6: boolean;
  tos: number;
  ttl: number;
  label: number;
  /** TUNNEL_* flags (host order, the kernel's __be16 bits). */
  flags: number;
  options: Uint8Array;
}

export interface RunSetup {
  ctx: Region | undefined;
  packet: Packet | undefined;
  skbState?: SkbState;
  skb: boolean;
  xdp: boolean;
  /** After the run: the data and context to copy out. */
  finish(): { data: Uint8Array | undefined; ctx: Uint8Array | undefined };
}

/** The tail of a struct from user space past what the kernel knows must be zero (bpf_ctx_init). */
function ctxInit(ctxIn: Uint8Array | null, size: number): Uint8Array | number {
  const out = new Uint8Array(size);
  if (!ctxIn) return out;
  for (let i = size; i < ctxIn.length; i++) if (ctxIn[i] !== 0) return -E2BIG;
  out.set(ctxIn.subarray(0, Math.min(size, ctxIn.length)));
  return out;
}

function readOnly(name: string) {
  return () => `${name} is read-only for this program type`;
}

export function xdpSetup(vm: Vm, data: Uint8Array, ctxIn: Uint8Array | null, hasCtx: boolean): RunSetup | number {
  // The order of bpf_prog_test_run_xdp: the context first, then the data, then the device.
  const md = ctxInit(ctxIn, XDP_MD_SIZE);
  if (typeof md === 'number') return md;
  let metalen = 0;
  // Where ctx_in's data_end may end the linear part early (the rest goes to fragments), the
  // metadata must also leave room for struct xdp_frame; before, data_end must be the whole size.
  const linearFromCtx = vm.env.kernel.xdpLinearFromCtx;
  let linearWanted = data.length;
  if (hasCtx) {
    // ctx_in's data holds the metadata length; data_end the end of the linear part.
    metalen = u32At(md, XDP.data);
    const dataMeta = u32At(md, XDP.data_meta);
    const dataEnd = u32At(md, XDP.data_end);
    const endOk = linearFromCtx ? dataEnd <= data.length : dataEnd === data.length;
    if (dataMeta !== 0 || !endOk || metalen > dataEnd || metalenInvalid(metalen, vm.env.kernel.maxMetalen)) return -EINVAL;
    if (linearFromCtx && metalen > XDP_PACKET_HEADROOM - XDP_FRAME_SIZE) return -EINVAL;
    linearWanted = dataEnd;
  }
  // The frame after the metadata must hold an Ethernet header (a linear part of 0 bytes runs, measured).
  if (data.length - (linearFromCtx ? metalen : 0) < ETH_HLEN) return -EINVAL;
  if (hasCtx) {
    if (u32At(md, XDP.egress_ifindex) !== 0) return -EINVAL;
    const ingress = u32At(md, XDP.ingress_ifindex);
    if (ingress === 0 && u32At(md, XDP.rx_queue_index) !== 0) return -EINVAL;
    if (ingress !== 0 && !vm.env.netdev(ingress)) return -ENODEV;
    // Emulated devices have one receive queue.
    if (ingress !== 0 && u32At(md, XDP.rx_queue_index) !== 0) return -EINVAL;
  }
  const headroom = XDP_PACKET_HEADROOM - metalen;
  // What does not fit in the linear part goes into page-sized fragments, as the kernel does.
  const linear = Math.min(linearWanted, PAGE_SIZE - headroom - SKB_SHINFO);
  if (Math.ceil((data.length - linear) / PAGE_SIZE) > MAX_SKB_FRAGS) return -ENOMEM;
  const packet = new Packet(data.subarray(0, linear), headroom, PAGE_SIZE, SKB_SHINFO, XDP_FRAME_SIZE);
  packet.frags = data.slice(linear);
  packet.data += metalen;
  packet.sync();
  const ifindex = u32At(md, XDP.ingress_ifindex) || 1;
  const queue = u32At(md, XDP.rx_queue_index);
  const bytes = new Uint8Array(XDP_MD_SIZE);
  putU32(bytes, XDP.ingress_ifindex, ifindex);
  putU32(bytes, XDP.rx_queue_index, queue);
  const ctx = new Region('ctx', bytes, 'the context (struct xdp_md)');
  ctx.load = (o, size, d) => {
    if (o < XDP.ingress_ifindex) { // data, data_end, data_meta: packet pointers
      if (size !== 4 || o % 4 !== 0) throw new Trap(`invalid bpf_context access off=${o} size=${size}`);
      vm.setPtr(d, packet.region, o === XDP.data ? packet.data : o === XDP.data_end ? packet.end : packet.meta);
      return true;
    }
    return false;
  };
  ctx.store = readOnly('struct xdp_md');
  return {
    ctx, packet, skb: false, xdp: true,
    finish: () => {
      const out = new Uint8Array(packet.end - packet.meta + packet.frags.length);
      out.set(packet.buf.subarray(packet.meta, packet.end));
      out.set(packet.frags, packet.end - packet.meta);
      let ctxOut: Uint8Array | undefined;
      if (hasCtx) {
        // ingress_ifindex and rx_queue_index go back as they were given.
        ctxOut = md.slice();
        putU32(ctxOut, XDP.data, packet.data - packet.meta);
        putU32(ctxOut, XDP.data_end, packet.end - packet.meta);
        putU32(ctxOut, XDP.data_meta, 0);
      }
      return { data: out, ctx: ctxOut };
    },
  };
}

/** __sk_buff fields a test run's ctx_in may set (convert___skb_to_skb: everything else must be zero). */
const SKB_SETTABLE = spans(SKB, 'mark', 'priority', 'ingress_ifindex', 'ifindex', 'cb', 'tstamp', 'wire_len', 'gso_segs', 'gso_size', 'hwtstamp');
/** __sk_buff fields copied back to ctx_out (convert_skb_to___skb); the rest of ctx_out is ctx_in as given. */
const SKB_RETURNED = spans(SKB, 'mark', 'priority', 'ingress_ifindex', 'ifindex', 'cb', 'tstamp', 'wire_len', 'gso_segs', 'hwtstamp');
/** __sk_buff fields programs may write. */
const SKB_WRITABLE = spans(SKB, 'mark', 'queue_mapping', 'priority', 'tc_index', 'cb', 'tc_classid', 'tstamp');
/** GSO_LEGACY_MAX_SIZE and GSO_MAX_SEGS: the largest wire_len and gso_segs a test run takes. */
const GSO_LEGACY_MAX_SIZE = 65536;
const GSO_MAX_SEGS = 65535;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;

/** eth_type_trans: the packet type against the device's addresses, and the protocol (host order). */
function ethTypeTrans(frame: Uint8Array, mac: Uint8Array, loopback: boolean): { pktType: number; protocol: number } {
  const dst = frame.subarray(0, 6);
  const same = (a: Uint8Array, b: (i: number) => number) => a.every((x, i) => x === b(i));
  let pktType = 0; // PACKET_HOST
  if (!same(dst, (i) => mac[i] ?? 0)) {
    // Loopback's broadcast address is all zeros, so ff:ff:ff:ff:ff:ff is only multicast there.
    if (dst[0]! & 1) pktType = !loopback && same(dst, () => 0xff) ? 1 /* BROADCAST */ : 2 /* MULTICAST */;
    else pktType = 3; // PACKET_OTHERHOST
  }
  let protocol = (frame[12]! << 8) | frame[13]!;
  if (protocol < 0x600) protocol = frame[14] === 0xff && frame[15] === 0xff ? 0x0001 /* ETH_P_802_3 */ : 0x0004; /* ETH_P_802_2 */
  return { pktType, protocol };
}

/**
 * tc (sched_cls/sched_act) programs see the frame from its MAC header; socket filters, cgroup_skb
 * and lwt programs from the network header (test_run pulls the Ethernet header first). The checks
 * come in bpf_prog_test_run_skb's order: the data, the context's tail, the device, the network
 * header's length, then the context's fields.
 */
export function skbSetup(vm: Vm, data: Uint8Array, ctxIn: Uint8Array | null, hasCtx: boolean, isL2: boolean): RunSetup | number {
  if (data.length < ETH_HLEN || data.length > PAGE_SIZE - NET_SKB_PAD - SKB_SHINFO) return -EINVAL;
  const sk = ctxInit(ctxIn, SKB_SIZE);
  if (typeof sk === 'number') return sk;
  const devIndex = hasCtx && u32At(sk, SKB.ifindex) > 1 ? u32At(sk, SKB.ifindex) : 1;
  const dev = vm.env.netdev(devIndex);
  if (!dev) return -ENODEV;
  const { pktType, protocol } = ethTypeTrans(data.length >= 16 ? data : padded(data, 16), dev.mac ?? new Uint8Array(6), devIndex === 1);
  // Reject an IPv4 or IPv6 frame too short for its header (upstream commit 12bec2bd4b76, in the
  // stable kernels too; measured on 6.18).
  const l3 = data.length - ETH_HLEN;
  if ((protocol === ETH_P_IP && l3 < 20) || (protocol === ETH_P_IPV6 && l3 < 40)) return -EINVAL;
  const skbLen = isL2 ? data.length : l3;
  if (hasCtx) {
    for (let i = 0; i < SKB_SIZE; i++) if (sk[i] !== 0 && !inSpans(SKB_SETTABLE, i, 1)) return -EINVAL;
    const wireLen = u32At(sk, SKB.wire_len);
    if (wireLen === 0) putU32(sk, SKB.wire_len, skbLen);
    else if (wireLen < skbLen || wireLen > GSO_LEGACY_MAX_SIZE) return -EINVAL;
    if (u32At(sk, SKB.gso_segs) > GSO_MAX_SEGS) return -EINVAL;
  }
  const input = sk.slice();
  const packet = new Packet(data, NET_SKB_PAD, 0, SKB_SHINFO, NET_SKB_PAD);
  if (!isL2) {
    packet.data += ETH_HLEN;
    packet.meta = packet.data;
    packet.sync();
  }
  const bytes = sk;
  putU32(bytes, SKB.pkt_type, pktType);
  putU32(bytes, SKB.protocol, (protocol >> 8) | ((protocol & 0xff) << 8));
  putU32(bytes, SKB.ifindex, dev.ifindex);
  const ctx = new Region('ctx', bytes, 'the context (struct __sk_buff)');
  ctx.load = (o, size, d) => {
    if (o < SKB.len + SKB.$sizeof.len) { // len, computed at the load (narrow loads take its low-order bytes)
      const len = packet.end - packet.data;
      vm.rl[d] = size >= 4 ? len : (len >>> (o * 8)) & (size === 2 ? 0xffff : 0xff);
      vm.rh[d] = 0;
      return true;
    }
    switch (o) {
      case SKB.data: case SKB.data_end: case SKB.data_meta:
        if (size !== 4) throw new Trap(`invalid bpf_context access off=${o} size=${size}`);
        vm.setPtr(d, packet.region, o === SKB.data ? packet.data : o === SKB.data_end ? packet.end : packet.meta);
        return true;
      case SKB.flow_keys: case SKB.sk: // no socket or flow keys in a test run
        vm.rl[d] = 0;
        vm.rh[d] = 0;
        return true;
      default:
        return false;
    }
  };
  ctx.store = (o, size) => (inSpans(SKB_WRITABLE, o, size) ? undefined : `struct __sk_buff field at offset ${o} is read-only`);
  const skbState: SkbState = { isL2, ctx: bytes, ipSummed: 0, csumLevel: 0, tunnel: undefined };
  return {
    ctx, packet, skb: true, xdp: false, skbState,
    finish: () => {
      // For L3 program types the kernel pushes the link-layer header back zeroed.
      const head = isL2 ? 0 : ETH_HLEN;
      const out = new Uint8Array(head + packet.end - packet.data);
      out.set(packet.buf.subarray(packet.data, packet.end), head);
      let ctxOut: Uint8Array | undefined;
      if (hasCtx) {
        ctxOut = input;
        for (const [at, len] of SKB_RETURNED) ctxOut.set(bytes.subarray(at, at + len), at);
      }
      return { data: out, ctx: ctxOut };
    },
  };
}

function padded(b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  out.set(b);
  return out;
}

/** Tracing-style programs: the context is the caller's bytes (u64 arguments, a tracepoint record, pt_regs). */
export function bufferSetup(ctxIn: Uint8Array | null, writable: boolean, name: string): RunSetup {
  const bytes = ctxIn ? ctxIn.slice() : new Uint8Array(0);
  const ctx = new Region('ctx', bytes, name);
  if (!writable) ctx.store = readOnly(name);
  return {
    ctx, packet: undefined, skb: false, xdp: false,
    finish: () => ({ data: undefined, ctx: bytes.slice() }),
  };
}
