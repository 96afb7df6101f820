/**
 * What the kernel says about a loaded program (BPF_OBJ_GET_INFO_BY_FD into struct bpf_prog_info),
 * read by fd: used by Program and by the link layer, which must not import Program's module.
 */
import { cString } from '../abi/cstring.js';
import { bpf_prog_info } from '../abi/uapi.js';
import { Attr } from '../sys/attr.js';
import { objGetInfoByFd } from '../sys/bpf.js';
import { progType as progTypeNames, type ProgType } from '../abi/constants.js';

/**
 * What the kernel says about a loaded program (BPF_OBJ_GET_INFO_BY_FD, Requires Linux 4.13): type,
 * id, name, tag, map ids, and run statistics where {@link enableStats} turned them on (5.1).
 */
export interface ProgramInfo {
  readonly type: ProgType | `unknown(${number})`;
  readonly id: number;
  /** The kernel's hash of the translated instructions, as hex. */
  readonly tag: string;
  readonly name: string;
  readonly loadTime: bigint;
  readonly createdByUid: number;
  readonly mapIds: readonly number[];
  readonly btfId: number;
  readonly xlatedLength: number;
  readonly jitedLength: number;
  /** Run count and total run time; zero unless statistics are on (sysctl kernel.bpf_stats_enabled or enableStats()). */
  readonly runCount: bigint;
  readonly runTimeNs: bigint;
  readonly verifiedInstructions: number;
  readonly gplCompatible: boolean;
}

export function readProgramInfo(fd: number): ProgramInfo {
  const I = bpf_prog_info;
  const probe = new Uint8Array(I.$size);
  objGetInfoByFd(fd, probe);
  const pv = new DataView(probe.buffer);
  const nrMaps = pv.getUint32(I.nr_map_ids, true);
  const mapIds = new Uint32Array(nrMaps);
  const attr = new Attr(I.$size).u32(I.nr_map_ids, nrMaps).ptr(I.map_ids, nrMaps ? mapIds : null);
  objGetInfoByFd(fd, attr);
  const buf = attr.bytes;
  const v = attr.view;
  const [gplBit] = I.$bits.gpl_compatible;
  return {
    type: progTypeNames.name(v.getUint32(I.type, true)),
    id: v.getUint32(I.id, true),
    tag: Buffer.from(buf.subarray(I.tag, I.tag + I.$sizeof.tag)).toString('hex'),
    jitedLength: v.getUint32(I.jited_prog_len, true),
    xlatedLength: v.getUint32(I.xlated_prog_len, true),
    loadTime: v.getBigUint64(I.load_time, true),
    createdByUid: v.getUint32(I.created_by_uid, true),
    mapIds: [...mapIds],
    name: cString(buf.subarray(I.name, I.name + I.$sizeof.name)),
    gplCompatible: ((buf[gplBit >> 3]! >> (gplBit & 7)) & 1) === 1,
    btfId: v.getUint32(I.btf_id, true),
    runTimeNs: v.getBigUint64(I.run_time_ns, true),
    runCount: v.getBigUint64(I.run_cnt, true),
    verifiedInstructions: v.getUint32(I.verified_insns, true),
  };
}

/** The instructions as the kernel holds them after verification, 8 bytes each. */
export function readTranslatedInstructions(fd: number): Uint8Array {
  const I = bpf_prog_info;
  const first = new Uint8Array(I.$size);
  objGetInfoByFd(fd, first);
  const len = new DataView(first.buffer).getUint32(I.xlated_prog_len, true);
  const insns = new Uint8Array(len);
  objGetInfoByFd(fd, new Attr(I.$size).u32(I.xlated_prog_len, len).ptr(I.xlated_prog_insns, insns));
  return insns;
}
