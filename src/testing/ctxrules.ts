/**
 * The verifier's context access rules (the *_is_valid_access functions of net/core/filter.c) for the
 * program types whose test runs the emulator runs with packets (XDP, tc, socket filter, cgroup_skb,
 * lwt): a load, or a store, of a field the verifier refuses is refused at load with its words,
 * instead of reading 0 in a run.
 */
import { offsetofend } from '../abi/layout.js';
import { __sk_buff as SKB, xdp_md as XDP } from '../abi/uapi.js';
import type { FieldOf } from './attr.js';
import type { CtxAccess } from './ctxaccess.js';
import { inSpans, spans } from './ctxfields.js';

type SkbField = FieldOf<typeof SKB>;
/** __sk_buff fields that are pointers or u64: [offset, size]; only whole-field accesses. */
const SKB_FIXED = spans(SKB, 'data', 'data_end', 'data_meta', 'flow_keys', 'tstamp', 'sk', 'hwtstamp');
const inRange = (o: number, from: number, to: number) => o >= from && o < to;
/** Whether o falls inside the field (any of its bytes). */
const inField = (o: number, f: SkbField) => inRange(o, SKB[f], offsetofend(SKB, f));
/** Whether o falls from the first field's start to the last field's end. */
const inFields = (o: number, first: SkbField, last: SkbField) => inRange(o, SKB[first], offsetofend(SKB, last));
/** family .. local_port: the socket's addresses and ports. */
const FAMILY_TO_LOCAL_PORT = (o: number) => inFields(o, 'family', 'local_port');
/** tstamp_type, a u8, and the padding up to hwtstamp. */
const TSTAMP_TYPE = (o: number) => inRange(o, SKB.tstamp_type, SKB.hwtstamp);
/** The fields socket filters may not touch. */
const SOCKET_FILTER_DENIED = spans(SKB, 'tc_classid', 'data', 'data_end', 'data_meta', 'tstamp', 'wire_len', 'hwtstamp');
/** tc_classid, data_meta, wire_len: refused for cgroup_skb and lwt. */
const CLASSID_META_WIRELEN = spans(SKB, 'tc_classid', 'data_meta', 'wire_len');

/** bpf_skb_is_valid_access: bounds, alignment, cb, fixed-size fields, narrow reads of u32 fields. */
function skbCommon(a: CtxAccess): boolean {
  const { off, size, write } = a;
  if (off < 0 || off >= SKB.$size || off % size !== 0) return false;
  if (inField(off, 'flow_keys')) return false; // flow_keys: flow dissector programs only
  if (TSTAMP_TYPE(off)) return off === SKB.tstamp_type && size === 1 && !write; // tstamp_type, a u8
  if (inField(off, 'cb')) return off + size <= offsetofend(SKB, 'cb');
  const fixed = SKB_FIXED.find(([at, len]) => inRange(off, at, at + len));
  if (fixed) return off === fixed[0] && size === fixed[1] && !(off === SKB.sk && write);
  if (size > 4) return false;
  return !write || size === 4;
}

/** Whether the verifier refuses this context access for the program type (and attach type). */
export function ctxRefusal(type: string, expectedAttachType: number, xdpDevmap: number, a: CtxAccess): boolean {
  const { off, write } = a;
  switch (type) {
    case 'xdp':
      if (write || off < 0 || off >= XDP.$size || a.size !== 4 || off % 4 !== 0) return true;
      return off === XDP.egress_ifindex && expectedAttachType !== xdpDevmap; // egress_ifindex: devmap programs only
    case 'socket_filter':
      if (inSpans(SOCKET_FILTER_DENIED, off, 1) || FAMILY_TO_LOCAL_PORT(off) || TSTAMP_TYPE(off)) return true;
      if (write && !inField(off, 'cb')) return true;
      return !skbCommon(a);
    case 'cgroup_skb':
      if (inSpans(CLASSID_META_WIRELEN, off, 1)) return true;
      if ((inFields(off, 'remote_ip4', 'local_ip6') && a.size !== 4) || TSTAMP_TYPE(off)) return true; // socket addresses: whole fields; no tstamp_type
      if (write && !(inField(off, 'mark') || inField(off, 'priority') || inField(off, 'cb') || inField(off, 'tstamp'))) return true;
      return !skbCommon(a);
    case 'lwt_in':
    case 'lwt_out':
    case 'lwt_xmit':
    case 'lwt_seg6local':
      // lwt_is_valid_access: no tc_classid, socket addresses, data_meta, tstamp, wire_len, hwtstamp
      // (nor tstamp_type); writes only to mark, priority and cb.
      if (inSpans(CLASSID_META_WIRELEN, off, 1) || FAMILY_TO_LOCAL_PORT(off) || inField(off, 'tstamp') || inRange(off, SKB.tstamp_type, SKB.$size)) return true;
      if (write && !(inField(off, 'mark') || inField(off, 'priority') || inField(off, 'cb'))) return true;
      return !skbCommon(a);
    case 'sched_cls':
    case 'sched_act':
      if (FAMILY_TO_LOCAL_PORT(off)) return true;
      if (write && !(inFields(off, 'mark', 'queue_mapping') || inField(off, 'priority') || inFields(off, 'tc_index', 'cb') || inField(off, 'tc_classid') || inField(off, 'tstamp'))) return true;
      return !skbCommon(a);
    default:
      return false;
  }
}
