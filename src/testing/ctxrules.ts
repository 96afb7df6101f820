/**
 * The verifier's context access rules (the *_is_valid_access functions of net/core/filter.c) for the
 * program types whose test runs the emulator runs with packets (XDP, tc, socket filter, cgroup_skb,
 * lwt): a load, or a store, of a field the verifier refuses is refused at load with its words,
 * instead of reading 0 in a run.
 */
import type { CtxAccess } from './ctxaccess.js';

const SKB_SIZE = 192;
/** __sk_buff fields that are pointers or u64: [offset, size]; only whole-field accesses. */
const SKB_FIXED: readonly [number, number][] = [[76, 4], [80, 4], [140, 4], [144, 8], [152, 8], [168, 8], [184, 8]];
const inRange = (o: number, from: number, to: number) => o >= from && o < to;
const FAMILY_TO_LOCAL_PORT = (o: number) => inRange(o, 88, 140);

/** bpf_skb_is_valid_access: bounds, alignment, cb, fixed-size fields, narrow reads of u32 fields. */
function skbCommon(a: CtxAccess): boolean {
  const { off, size, write } = a;
  if (off < 0 || off >= SKB_SIZE || off % size !== 0) return false;
  if (inRange(off, 144, 152)) return false; // flow_keys: flow dissector programs only
  if (inRange(off, 180, 184)) return off === 180 && size === 1 && !write; // tstamp_type, a u8
  if (inRange(off, 48, 68)) return off + size <= 68;
  const fixed = SKB_FIXED.find(([at, len]) => inRange(off, at, at + len));
  if (fixed) return off === fixed[0] && size === fixed[1] && !(off === 168 && write);
  if (size > 4) return false;
  return !write || size === 4;
}

/** Whether the verifier refuses this context access for the program type (and attach type). */
export function ctxRefusal(type: string, expectedAttachType: number, xdpDevmap: number, a: CtxAccess): boolean {
  const { off, write } = a;
  switch (type) {
    case 'xdp':
      if (write || off < 0 || off >= 24 || a.size !== 4 || off % 4 !== 0) return true;
      return off === 20 && expectedAttachType !== xdpDevmap; // egress_ifindex: devmap programs only
    case 'socket_filter':
      if ([72, 76, 80, 140, 152, 160, 184].some((f) => inRange(off, f, f + (f >= 152 && f !== 160 ? 8 : 4))) || FAMILY_TO_LOCAL_PORT(off) || inRange(off, 180, 184)) return true;
      if (write && !inRange(off, 48, 68)) return true;
      return !skbCommon(a);
    case 'cgroup_skb':
      if ([72, 140, 160].some((f) => inRange(off, f, f + 4))) return true;
      if ((inRange(off, 92, 132) && a.size !== 4) || inRange(off, 180, 184)) return true; // socket addresses: whole fields; no tstamp_type
      if (write && !(inRange(off, 8, 12) || inRange(off, 32, 36) || inRange(off, 48, 68) || inRange(off, 152, 160))) return true;
      return !skbCommon(a);
    case 'lwt_in':
    case 'lwt_out':
    case 'lwt_xmit':
    case 'lwt_seg6local':
      // lwt_is_valid_access: no tc_classid, socket addresses, data_meta, tstamp, wire_len, hwtstamp
      // (nor tstamp_type); writes only to mark, priority and cb.
      if ([72, 140, 160].some((f) => inRange(off, f, f + 4)) || FAMILY_TO_LOCAL_PORT(off) || inRange(off, 152, 160) || inRange(off, 180, 192)) return true;
      if (write && !(inRange(off, 8, 12) || inRange(off, 32, 36) || inRange(off, 48, 68))) return true;
      return !skbCommon(a);
    case 'sched_cls':
    case 'sched_act':
      if (FAMILY_TO_LOCAL_PORT(off)) return true;
      if (write && !(inRange(off, 8, 16) || inRange(off, 32, 36) || inRange(off, 44, 68) || inRange(off, 72, 76) || inRange(off, 152, 160))) return true;
      return !skbCommon(a);
    default:
      return false;
  }
}
