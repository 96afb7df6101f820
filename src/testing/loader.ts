/**
 * BPF_PROG_LOAD for the emulator: checks what can be checked without a verifier's state tracking
 * (every encoding, jump targets, ld_imm64 pairs and their map fds, call targets, helper numbers,
 * GPL-only helpers, the last instruction), resolves map references the way the kernel does, and
 * decodes the instructions into flat arrays for the interpreter. A refusal comes back with the
 * errno and the verifier's own wording for the log.
 *
 * What it does not do is the verifier's proof of safety (pointer bounds, initialised registers,
 * termination): a program the kernel would refuse for an unchecked packet access loads here, and
 * the interpreter stops it when the access actually goes out of bounds.
 */
import { createHash } from 'node:crypto';
import { Btf } from '../btf/btf.js';
import { CORE_POISON_HELPER } from '../btf/core.js';
import { CALL_HELPER, CALL_KFUNC, CALL_PSEUDO, CLS, HELPER_NAMES, JMP, PSEUDO, disassemble, encodingError, functionStarts, helperName, readInsn, type RawInsn } from '../asm/isa.js';
import { ArrayMap, EmuMap, FdArrayMap, type ProgRef } from './maps.js';
import { E2BIG, EACCES, EBADF, EINVAL } from '../abi/errno.js';
import { HELPERS } from './helpers.js';
import { ctxAccesses, maxCtxOffset } from './ctxaccess.js';
import { PROG_TYPES, attachType } from '../abi/constants.js';
import { bpf_func_info, bpf_line_info } from '../abi/uapi.js';
import { ctxRefusal } from './ctxrules.js';
import type { KernelBehaviour } from './version.js';

/** The log line of a helper the emulator lacks (src/load/program-load.ts recognises it). */
export const EMULATOR_LACKS_HELPER = (id: number) => `helper ${helperName(id)} (#${id}) is not implemented by the bpfkit emulator`;

/** What an ld_imm64 with a non-zero src_reg loads. */
export type LdTarget =
  | { kind: 'map'; map: EmuMap }
  | { kind: 'value'; map: ArrayMap; offset: number }
  | { kind: 'func'; pc: number };

/** Decoded instructions, one entry per 8-byte slot. */
export interface Code {
  readonly name: string;
  readonly progType: number;
  readonly n: number;
  readonly op: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly off: Int16Array;
  readonly imm: Int32Array;
  /** ld_imm64 targets by pc (maps, map values, functions). */
  readonly ld: (LdTarget | undefined)[];
  /** Source line text by pc, from BTF line info, for error messages. */
  readonly lines: Map<number, string>;
  /** Function names by their first pc, from BTF func info. */
  readonly funcs: Map<number, string>;
  /** End of the furthest context access found at load (the verifier's max_ctx_offset). */
  maxCtxOffset: number;
  readonly bytes: Uint8Array;
}

export interface LoadRequest {
  progType: number;
  insns: Uint8Array;
  license: string;
  name: string;
  expectedAttachType: number;
  progFlags: number;
  btf: Uint8Array | undefined;
  funcInfo: Uint8Array | null;
  funcInfoRecSize: number;
  lineInfo: Uint8Array | null;
  lineInfoRecSize: number;
  /** fd_array of BPF_PROG_LOAD, for BPF_PSEUDO_MAP_IDX references. */
  fdArray: Int32Array | null;
  /** What the imitated release's verifier takes. */
  kernel: KernelBehaviour;
}

export type LoadResult = { ok: true; code: Code; maps: EmuMap[]; log: string } | { ok: false; errno: number; log: string };

const MAX_INSNS = 1_000_000;
/** Helpers only GPL-compatible programs may call (gpl_only in their kernel bpf_func_proto). */
const GPL_ONLY = new Set([4, 6, 25, 35, 45, 112, 113, 114, 115, 158]);

/** Licenses the kernel treats as GPL-compatible (license_is_gpl_compatible). */
export function gplCompatible(license: string): boolean {
  return ['GPL', 'GPL v2', 'GPL and additional rights', 'Dual BSD/GPL', 'Dual MIT/GPL', 'Dual MPL/GPL'].includes(license);
}

/**
 * The kernel's program tag: the first 8 bytes of a hash of the instructions with map fds (and map
 * value offsets) zeroed, as bpf_prog_calc_tag computes it. Linux 6.18 hashes with SHA-256 (checked
 * against the kernel by test/kernel/emulator-diff.test.ts); kernels before it used SHA-1 (the
 * emulator's `kernel` option picks).
 */
export function programTag(insns: Uint8Array, hash: 'sha1' | 'sha256' = 'sha256'): Uint8Array {
  const copy = insns.slice();
  const n = copy.length / 8;
  for (let i = 0; i < n; i++) {
    const o = i * 8;
    const src = copy[o + 1]! >> 4;
    if (copy[o] === 0x18 && (src === PSEUDO.MAP_FD || src === PSEUDO.MAP_VALUE) && i + 1 < n) {
      copy.fill(0, o + 4, o + 8);
      copy.fill(0, o + 12, o + 16);
      i++;
    }
  }
  return new Uint8Array(createHash(hash).update(copy).digest().subarray(0, 8));
}

export function load(req: LoadRequest, mapOfFd: (fd: number) => EmuMap | number): LoadResult {
  const n = req.insns.byteLength / 8;
  const log: string[] = [];
  const fail = (errno: number, msg: string): LoadResult => {
    log.push(msg);
    return { ok: false, errno, log: `${log.join('\n')}\n` };
  };
  if (n === 0 || !Number.isInteger(n)) return fail(EINVAL, 'program has no instructions');
  if (n > MAX_INSNS) return fail(E2BIG, `BPF program is too large. Processed ${MAX_INSNS + 1} insn`);
  const insns: RawInsn[] = [];
  for (let i = 0; i < n; i++) insns.push(readInsn(req.insns, i));
  const gpl = gplCompatible(req.license);
  const ld: (LdTarget | undefined)[] = new Array(n);
  const maps: EmuMap[] = [];
  const useMap = (m: EmuMap) => {
    if (!maps.includes(m)) maps.push(m);
  };
  const ldPc = new Set<number>();
  for (let i = 0; i < n; i++) {
    const ins = insns[i]!;
    const where = (msg: string) => `${i}: (${ins.code.toString(16).padStart(2, '0')}) ${disassemble(ins, insns[i + 1])}\n${msg}`;
    const bad = encodingError(ins);
    if (bad) return fail(EINVAL, where(bad));
    const cls = ins.code & 7;
    if (ins.code === 0x18) {
      const next = insns[i + 1];
      if (!next || next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0) return fail(EINVAL, where('invalid bpf_ld_imm64 insn'));
      if (ins.off !== 0) return fail(EINVAL, where('invalid bpf_ld_imm64 insn'));
      switch (ins.src) {
        case 0:
          break;
        case PSEUDO.MAP_FD:
        case PSEUDO.MAP_VALUE:
        case PSEUDO.MAP_IDX:
        case PSEUDO.MAP_IDX_VALUE: {
          let fd = ins.imm;
          if (ins.src === PSEUDO.MAP_IDX || ins.src === PSEUDO.MAP_IDX_VALUE) {
            if (!req.fdArray || ins.imm < 0 || ins.imm >= req.fdArray.length) return fail(EINVAL, where(`fd_idx ${ins.imm} out of range`));
            fd = req.fdArray[ins.imm]!;
          }
          const m = mapOfFd(fd);
          if (typeof m === 'number') return fail(m === -EBADF ? EBADF : EINVAL, where(`fd ${fd} is not pointing to valid bpf_map`));
          if (ins.src === PSEUDO.MAP_FD || ins.src === PSEUDO.MAP_IDX) {
            if (next.imm !== 0) return fail(EINVAL, where('unrecognized bpf_ld_imm64 insn'));
            ld[i] = { kind: 'map', map: m };
          } else {
            const offset = next.imm >>> 0;
            if (!(m instanceof ArrayMap) || m.perCpu || m.maxEntries !== 1) return fail(EINVAL, where('direct value access on this map type is not supported'));
            if (offset >= m.valueSize) return fail(EACCES, where(`invalid access to map value pointer, value_size=${m.valueSize} off=${offset}`));
            ld[i] = { kind: 'value', map: m, offset };
          }
          if (m instanceof FdArrayMap && m.type === 'prog_array') {
            const self: ProgRef = { kind: 'prog', id: 0, progType: req.progType, name: req.name, refs: 0, dispose() {} };
            if (!m.compatible(self)) return fail(EINVAL, where('prog array of another program type'));
          }
          useMap(m);
          break;
        }
        case PSEUDO.FUNC: {
          const target = i + ins.imm + 1;
          if (target < 0 || target >= n) return fail(EINVAL, where(`jump out of range from insn ${i} to ${target}`));
          ld[i] = { kind: 'func', pc: target };
          break;
        }
        case PSEUDO.BTF_ID:
          return fail(EINVAL, where('ksym (__ksym) references are not supported by the bpfkit emulator'));
        default:
          return fail(EINVAL, where('invalid bpf_ld_imm64 insn'));
      }
      ldPc.add(i + 1);
      i++;
      continue;
    }
    if (cls === CLS.JMP || cls === CLS.JMP32) {
      const op = ins.code & 0xf0;
      if (op === JMP.CALL) {
        if (ins.src === CALL_HELPER) {
          // A CO-RE relocation that found nothing leaves a call of 0xbad2310 where the program was
          // meant to be guarded (bpf_core_field_exists() and friends). The verifier refuses it only
          // on a path it reaches, which needs its state tracking: here it loads, and the run stops
          // if it is ever reached (interpreter.ts).
          if (ins.imm === CORE_POISON_HELPER) continue;
          if (ins.imm <= 0 || ins.imm >= HELPER_NAMES.length) return fail(EINVAL, where(`invalid func ${helperName(ins.imm)}`));
          if (!gpl && GPL_ONLY.has(ins.imm)) return fail(EINVAL, where('cannot call GPL-restricted function from non-GPL compatible program'));
          // Refused at load, as the kernel refuses a helper it lacks; the library turns this line
          // into a NotSupportedError that names the helper.
          if (!HELPERS[ins.imm]) return fail(EINVAL, where(`program of this type cannot use helper ${helperName(ins.imm)}#${ins.imm}: ${EMULATOR_LACKS_HELPER(ins.imm)}`));
        } else if (ins.src === CALL_PSEUDO) {
          const target = i + ins.imm + 1;
          if (target < 0 || target >= n) return fail(EINVAL, where(`function calls to out of range insn ${target}`));
        } else if (ins.src === CALL_KFUNC) {
          return fail(EINVAL, where('kernel function calls (kfuncs) are not supported by the bpfkit emulator'));
        }
      } else if (op !== JMP.EXIT) {
        const delta = cls === CLS.JMP32 && op === JMP.JA ? ins.imm : ins.off;
        const target = i + delta + 1;
        if (target < 0 || target >= n) return fail(EINVAL, where(`jump out of range from insn ${i} to ${target}`));
      }
    }
    if (ins.dst === 10 && writesDst(ins)) return fail(EACCES, where('frame pointer is read only'));
  }
  // Second pass: jumps into the middle of an ld_imm64.
  for (let i = 0; i < n; i++) {
    const ins = insns[i]!;
    const cls = ins.code & 7;
    if (ldPc.has(i) || (cls !== CLS.JMP && cls !== CLS.JMP32)) continue;
    const op = ins.code & 0xf0;
    if (op === JMP.EXIT || (op === JMP.CALL && ins.src !== CALL_PSEUDO)) continue;
    const delta = op === JMP.CALL || (cls === CLS.JMP32 && op === JMP.JA) ? ins.imm : ins.off;
    if (ldPc.has(i + delta + 1)) return fail(EINVAL, `jump into the middle of ldimm64 insn ${i + delta}`);
  }
  const funcErr = checkFuncInfo(req, ld);
  if (funcErr) return fail(EINVAL, funcErr);
  const last = insns[n - 1]!;
  const lastOp = last.code & 0xf0;
  const lastCls = last.code & 7;
  if (ldPc.has(n - 1) || !((lastCls === CLS.JMP || lastCls === CLS.JMP32) && (lastOp === JMP.EXIT || lastOp === JMP.JA))) {
    return fail(EINVAL, 'last insn is not an exit or jmp');
  }
  const code = decode(req, insns, ld);
  const accesses = ctxAccesses(code);
  code.maxCtxOffset = maxCtxOffset(accesses);
  const stImm = req.kernel.ctxStoreImm ? undefined : accesses.find((a) => a.imm);
  if (stImm) return fail(EACCES, `${stImm.pc}: (${disassemble(insns[stImm.pc]!)})\nBPF_ST stores into R${stImm.reg} ctx is not allowed`);
  const modified = accesses.find((a) => a.base !== 0);
  if (modified) return fail(EACCES, `${modified.pc}: (${disassemble(insns[modified.pc]!)})\ndereference of modified ctx ptr R${modified.reg} off=${modified.base} disallowed`);
  const type = PROG_TYPES[req.progType];
  const xdpDevmap = attachType.number('xdp_devmap');
  const bad = accesses.find((a) => ctxRefusal(type ?? '', req.expectedAttachType, xdpDevmap, a));
  if (bad) return fail(EACCES, `${bad.pc}: (${disassemble(insns[bad.pc]!)})\ninvalid bpf_context access off=${bad.off} size=${bad.size}`);
  if (type === 'raw_tracepoint' || type === 'raw_tracepoint_writable') {
    // bpf_tracing_ctx_access: reads of up to 12 u64 arguments, aligned to their size.
    for (const a of accesses) {
      const writableBuf = type === 'raw_tracepoint_writable' && a.write && a.off === 0 && a.size === 8;
      if (a.off < 0 || a.off >= 96 || (a.write && !writableBuf) || a.off % a.size !== 0) {
        return fail(EACCES, `${a.pc}: (${disassemble(insns[a.pc]!)})\ninvalid bpf_context access off=${a.off} size=${a.size}`);
      }
    }
  }
  log.push(`processed ${n} insns (limit ${MAX_INSNS}) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0`);
  return { ok: true, code, maps, log: `${log.join('\n')}\n` };
}

/** The kernel's checks of BTF func_info against the program's functions (check_btf_func). */
function checkFuncInfo(req: LoadRequest, ld: (LdTarget | undefined)[]): string | undefined {
  const hasCallback = ld.some((t) => t?.kind === 'func');
  const cnt = req.funcInfo && req.funcInfoRecSize ? Math.floor(req.funcInfo.byteLength / req.funcInfoRecSize) : 0;
  if (cnt === 0) return hasCallback ? 'missing btf func_info' : undefined;
  if (req.funcInfoRecSize < bpf_func_info.$size) return `invalid func info rec size ${req.funcInfoRecSize}`;
  const starts = functionStarts(req.insns);
  if (cnt !== starts.length) return 'number of funcs in func_info doesn\'t match number of subprogs';
  const v = new DataView(req.funcInfo!.buffer, req.funcInfo!.byteOffset, req.funcInfo!.byteLength);
  for (let k = 0; k < cnt; k++) {
    const off = v.getUint32(k * req.funcInfoRecSize + bpf_func_info.insn_off, true);
    if (off !== starts[k]) return k === 0 && off !== 0 ? 'nonzero insn_off 0 for the first func info record' : 'func_info BTF section doesn\'t match subprog layout in BPF program';
  }
  return undefined;
}

function writesDst(ins: RawInsn): boolean {
  const cls = ins.code & 7;
  return cls === CLS.ALU || cls === CLS.ALU64 || cls === CLS.LDX || ins.code === 0x18;
}

function decode(req: LoadRequest, insns: RawInsn[], ld: (LdTarget | undefined)[]): Code {
  const n = insns.length;
  const op = new Uint8Array(n);
  const dst = new Uint8Array(n);
  const src = new Uint8Array(n);
  const off = new Int16Array(n);
  const imm = new Int32Array(n);
  insns.forEach((ins, i) => {
    op[i] = ins.code;
    dst[i] = ins.dst;
    src[i] = ins.src;
    off[i] = ins.off;
    imm[i] = ins.imm;
  });
  const { lines, funcs } = debugInfo(req);
  return { name: req.name, progType: req.progType, n, op, dst, src, off, imm, ld, lines, funcs, bytes: req.insns.slice(), maxCtxOffset: 0 };
}

/** Source lines and function names from the BTF line and func info the loader passed, when it did. */
function debugInfo(req: LoadRequest): { lines: Map<number, string>; funcs: Map<number, string> } {
  const lines = new Map<number, string>();
  const funcs = new Map<number, string>();
  if (!req.btf) return { lines, funcs };
  let btf: Btf;
  try {
    btf = Btf.parse(req.btf);
  } catch {
    return { lines, funcs };
  }
  const L = bpf_line_info;
  if (req.lineInfo && req.lineInfoRecSize >= L.$size) {
    const v = new DataView(req.lineInfo.buffer, req.lineInfo.byteOffset, req.lineInfo.byteLength);
    for (let o = 0; o + L.$size <= req.lineInfo.byteLength; o += req.lineInfoRecSize) {
      try {
        const pc = v.getUint32(o + L.insn_off, true);
        const file = btf.string(v.getUint32(o + L.file_name_off, true));
        const text = btf.string(v.getUint32(o + L.line_off, true)).trim();
        const lineCol = v.getUint32(o + L.line_col, true);
        lines.set(pc, `${file.split('/').pop()}:${lineCol >>> 10}: ${text}`);
      } catch {
        // a record we cannot read only costs the message its source line
      }
    }
  }
  const FI = bpf_func_info;
  if (req.funcInfo && req.funcInfoRecSize >= FI.$size) {
    const v = new DataView(req.funcInfo.buffer, req.funcInfo.byteOffset, req.funcInfo.byteLength);
    for (let o = 0; o + FI.$size <= req.funcInfo.byteLength; o += req.funcInfoRecSize) {
      try {
        funcs.set(v.getUint32(o + FI.insn_off, true), btf.type(v.getUint32(o + FI.type_id, true)).name);
      } catch {
        // as above
      }
    }
  }
  return { lines, funcs };
}
