/**
 * bpf_check_mtu (helper 163) for XDP and tc programs, as net/core/filter.c's bpf_xdp_check_mtu /
 * bpf_skb_check_mtu do it: the device (the context's for ifindex 0) is looked up, its MTU plus its
 * hard header is compared with the frame's length (or *mtu_len plus the hard header when the
 * caller gives an L3 length), adjusted by len_diff, and the device's MTU is written back to
 * *mtu_len with either answer. A refused flag or device writes 0 there before 6.12, nothing after.
 */
import { EINVAL, ENODEV } from '../abi/errno.js';
import { __sk_buff as SKB, xdp_md as XDP } from '../abi/uapi.js';
import { Trap, type Vm } from './interpreter.js';
import { mem, ret, u32, u64 } from './args.js';
import { u32At } from './maps.js';

/** BPF_MTU_CHK_SEGS: also check a GSO skb's segments (tc only). */
const CHK_SEGS = 1n;

/** BPF_MTU_CHK_RET_*. */
export const MTU_RET = { SUCCESS: 0, FRAG_NEEDED: 1, SEGS_TOO_BIG: 2 } as const;

/** Every emulated device is Ethernet (loopback and veth too): its hard_header_len is ETH_HLEN. */
const HARD_HEADER_LEN = 14;

/** The context's device: xdp_md.ingress_ifindex (rxq->dev) or __sk_buff.ifindex (skb->dev). */
function ctxDevice(vm: Vm): number {
  if (vm.isXdp) return u32At(vm.ctx!.bytes, XDP.ingress_ifindex);
  return u32At(vm.skb!.ctx, SKB.ifindex);
}

/** bpf_xdp_check_mtu / bpf_skb_check_mtu. */
export function checkMtu(vm: Vm): void {
  if (!vm.isXdp && !(vm.isSkb && vm.skb?.isL2)) throw new Trap('bpf_check_mtu is only for XDP and tc programs (the verifier refuses it elsewhere)');
  const cell = mem(vm, 3, 4, true, 163, 'mtu_len');
  const view = new DataView(cell.buffer, cell.byteOffset, 4);
  const done = (rc: number, mtu: number): void => {
    if (rc >= 0 || !vm.env.kernel.checkMtuKeepsOnError) view.setUint32(0, mtu >>> 0, true);
    ret(vm, rc);
  };
  const ifindex = u32(vm, 2);
  const lenDiff = vm.rl[4]! | 0; // s32
  const flags = u64(vm, 5);
  const given = view.getUint32(0, true);
  // XDP takes no flags (no multi-buffer segment check); tc takes SEGS, but not with a length to check.
  if (vm.isXdp ? flags !== 0n : (flags & ~CHK_SEGS) !== 0n) return done(-EINVAL, 0);
  if (flags & CHK_SEGS && (lenDiff !== 0 || given !== 0)) return done(-EINVAL, 0);
  const dev = vm.env.fib.devices.get(ifindex === 0 ? ctxDevice(vm) : ifindex);
  if (!dev) return done(-ENODEV, 0);
  const devLen = (dev.mtu + HARD_HEADER_LEN) | 0;
  const pk = vm.packet!;
  // A non-zero *mtu_len is an L3 length (like fib_lookup's tot_len); the sum is the kernel's int.
  let len = given ? (given + HARD_HEADER_LEN) | 0 : pk.end - pk.data;
  len = (len + lenDiff) | 0;
  if (vm.isXdp) return done(len > devLen ? MTU_RET.FRAG_NEEDED : MTU_RET.SUCCESS, dev.mtu);
  if (len <= devLen) return done(MTU_RET.SUCCESS, dev.mtu);
  // Over the MTU: a GSO skb may still be resegmented to fit, so it passes unless SEGS asks for the
  // segments' check. A test run's skb never has its transport header set, and the kernel then
  // answers -EINVAL without writing *mtu_len.
  if (u32At(vm.skb!.ctx, SKB.gso_size) !== 0) {
    if (flags & CHK_SEGS) return ret(vm, -EINVAL);
    return done(MTU_RET.SUCCESS, dev.mtu);
  }
  done(MTU_RET.FRAG_NEEDED, dev.mtu);
}
