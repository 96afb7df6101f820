/**
 * The kernel release the emulator imitates, where releases differ in what user space can see. Only
 * differences measured on real kernels are modelled (6.18 on our machines, Debian's 6.1.192 and
 * 6.12.118 under QEMU, checked by test/kernel/emulator-diff.test.ts in each), each with the upstream
 * change that made it. A change backported to a stable series counts from that stable release on.
 *
 * "6.1" or "6.1.0-57-amd64" (a distribution's ABI name, whose sublevel says nothing) stands for the
 * series as its stable releases are now; "6.1.150" for that point release.
 */
import { InvalidArgumentError } from '../errors.js';

/** Where the imitated kernel release differs from others in what user space can see (see the module comment). */
export interface KernelBehaviour {
  /** The release imitated, e.g. "6.18". */
  readonly release: string;
  /** bpf_prog_calc_tag: SHA-256 from 6.18 (signed programs), SHA-1 before. */
  readonly tagHash: 'sha1' | 'sha256';
  /** xdp_metalen_invalid: the most metadata an XDP packet may carry (a multiple of 4). */
  readonly maxMetalen: number;
  /** What bpf_probe_read_{user,kernel}_str returns for "" (1 on 6.18, 0 on 6.1 and 6.12). */
  readonly emptyStrLen: 0 | 1;
  /** bpf_csum_diff folds its result to 16 bits and takes any sizes (6.13), or returns the 32-bit sum of whole words. */
  readonly csumDiffFolded: boolean;
  /** XDP test runs: ctx_in's data_end may end the linear part before the data's end, or must equal it. */
  readonly xdpLinearFromCtx: boolean;
  /** The verifier takes BPF_ST (store of an immediate) into the context, or refuses it with EACCES whatever the field. */
  readonly ctxStoreImm: boolean;
  /** bpf_skb_adjust_room knows BPF_F_ADJ_ROOM_DECAP_L3_IPV4/IPV6, or refuses them as unknown flags. */
  readonly adjustRoomDecapL3: boolean;
  /** bpf_skb_set_tunnel_key knows BPF_F_NO_TUNNEL_KEY, or refuses it as an unknown flag. */
  readonly noTunnelKey: boolean;
  /** BPF_MAP_FREEZE needs a writable fd first (a frozen map's fd is not: EPERM), or answers EBUSY for a frozen map. */
  readonly freezeNeedsWrite: boolean;
  /** A per-CPU array's max_entries must match the template's in a map of maps, as a plain array's does. */
  readonly percpuArrayInnerSized: boolean;
  /** Clearing an skb's VLAN tag zeroes vlan_proto and vlan_tci too (6.2), or clears vlan_present alone. */
  readonly vlanClearZeroes: boolean;
  /** bpf_skb_set_tstamp takes BPF_SKB_CLOCK_REALTIME/MONOTONIC/TAI (6.11), or only BPF_SKB_TSTAMP_UNSPEC (with 0) and DELIVERY_MONO. */
  readonly tstampClocks: boolean;
  /** bpf_fib_lookup knows BPF_FIB_LOOKUP_MARK, or refuses it as an unknown flag (-EINVAL). */
  readonly fibLookupMark: boolean;
  /** bpf_check_mtu leaves *mtu_len as it was when it fails (-EINVAL, -ENODEV), or writes 0 there. */
  readonly checkMtuKeepsOnError: boolean;
}

export const DEFAULT_RELEASE = '6.18';

/** A release as [major, minor, sublevel]; the sublevel is undefined when the string does not say it. */
export type Release = readonly [number, number, number | undefined];

/** Parses "6.12", "6.12.3", "6.1.0-28-amd64", "6.18.44-fc-v1272" (what `uname -r` gives). */
export function parseRelease(release: string): Release {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) throw new InvalidArgumentError(`kernel release ${JSON.stringify(release)} is not of the form "6.12" or "6.12.3-..." (pass what \`uname -r\` prints)`);
  // Debian and Ubuntu name their ABI "6.1.0-57": a sublevel of 0 with a suffix is not the point release.
  const sub = m[3] === undefined || (m[3] === '0' && release.length > m[0].length) ? undefined : Number(m[3]);
  return [Number(m[1]), Number(m[2]), sub];
}

/**
 * Whether a change merged in mainline `since` is in `r`; `stable` lists the first point release of
 * each stable series it was backported to ("6.1": 161). A series without its sublevel is taken as
 * its current stable release, so it has every backport.
 */
export function hasChange(r: Release, since: readonly [number, number], stable: Readonly<Record<string, number>> = {}): boolean {
  const [major, minor, sub] = r;
  if (major !== since[0] ? major > since[0] : minor >= since[1]) return true;
  const first = stable[`${major}.${minor}`];
  return first !== undefined && (sub === undefined || sub >= first);
}

export function kernelBehaviour(release: string = DEFAULT_RELEASE): KernelBehaviour {
  const r = parseRelease(release);
  const since618 = hasChange(r, [6, 18]);
  return {
    release,
    tagHash: since618 ? 'sha256' : 'sha1',
    // "net, xdp: allow metadata > 32" (6.8): the limit is what skb_shared_info.meta_len (a u8) holds.
    maxMetalen: hasChange(r, [6, 8]) ? 255 : 32,
    emptyStrLen: since618 ? 1 : 0,
    // "bpf: Support specifying linear xdp packet data size for BPF_PROG_TEST_RUN" (6.18), in the
    // stable series from 6.12.66 and 6.1.161 (Debian's changelogs); measured on 6.1.192 and 6.12.118.
    xdpLinearFromCtx: hasChange(r, [6, 18], { '6.12': 66, '6.1': 161 }),
    csumDiffFolded: hasChange(r, [6, 13]),
    // "bpf: allow ctx writes using BPF_ST_MEM instruction" (6.3) dropped do_check's "BPF_ST stores into R1 ctx is not allowed".
    ctxStoreImm: hasChange(r, [6, 3]),
    // "bpf: add bpf_skb_adjust_room flag BPF_F_ADJ_ROOM_DECAP_L3_IPV{4,6}" (6.3).
    adjustRoomDecapL3: hasChange(r, [6, 3]),
    // "bpf: Add flag BPF_F_NO_TUNNEL_KEY to bpf_skb_set_tunnel_key()" (6.3).
    noTunnelKey: hasChange(r, [6, 3]),
    // map_freeze checks map_get_sys_perms() for FMODE_CAN_WRITE before its frozen test: absent
    // from 6.1.192, present in 6.12.118 (the release between is not pinned down; taken as 6.12).
    freezeNeedsWrite: hasChange(r, [6, 12]),
    // 6.1.192 and 6.12.118 give percpu_array_map_ops bpf_map_meta_equal (no max_entries check);
    // 6.18 compares max_entries as for arrays (measured; the release between is not pinned down).
    percpuArrayInnerSized: since618,
    // "net: remove skb->vlan_present" (6.2): the tag is present when vlan_all is not 0.
    vlanClearZeroes: hasChange(r, [6, 2]),
    // "net: Rename mono_delivery_time to tstamp_type" and "bpf: Add BPF_SKB_CLOCK_TAI" (6.11).
    tstampClocks: hasChange(r, [6, 11]),
    // "bpf: Add BPF_FIB_LOOKUP_MARK" (6.10).
    fibLookupMark: hasChange(r, [6, 10]),
    // Debian's 6.1.192 source writes 0 to *mtu_len on failure; 6.18 leaves it (measured). Taken
    // from "bpf: Remove MEM_UNINIT from skb/xdp MTU helpers" (6.12); 6.12 itself is not measured.
    checkMtuKeepsOnError: hasChange(r, [6, 12]),
  };
}
