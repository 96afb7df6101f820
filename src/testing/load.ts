/**
 * Loads hand-assembled instructions as a Program — into the emulated kernel or the real one,
 * whichever is installed — for instruction-level tests. Programs with BPF-to-BPF calls or callback
 * addresses get the BTF function info the kernel requires for them (one FUNC per function,
 * `int f(void)`), so the same test runs unchanged in both.
 */
import { emulatorLacks } from '../load/program-load.js';
import { Btf } from '../btf/btf.js';
import type { BtfType } from '../btf/types.js';
import { BpfSyscallError, VerifierError } from '../errors.js';
import { Program } from '../objects/program.js';
import { btfLoadRaw, progLoadRaw } from '../sys/bpf.js';
import { attachType as attachTypes, progType as progTypes, type ProgType } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { assemble, type Item } from './asm.js';
import { functionStarts } from '../asm/isa.js';
import { bpf_func_info } from '../abi/uapi.js';

/** Options of {@link loadAssembly}: program type, license, name and load flags. */
export interface LoadAssemblyOptions {
  /** Program type; default 'xdp'. */
  type?: ProgType;
  license?: string;
  name?: string;
  /** BPF_F_* program flags. */
  flags?: number;
}

/** BTF with one `int fN(void)` per function and the func_info records pointing at them. */
export function functionInfo(insns: Uint8Array): { btf: Uint8Array; funcInfo: Uint8Array; count: number } {
  const starts = functionStarts(insns);
  const types: BtfType[] = [
    { kind: 'void', id: 0, name: '' },
    { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bits: 32, bitOffset: 0 },
    { kind: 'func_proto', id: 2, name: '', returnType: 1, params: [] },
  ];
  starts.forEach((_, k) => types.push({ kind: 'func', id: 3 + k, name: k === 0 ? 'main' : `f${k}`, type: 2, linkage: k === 0 ? 'global' : 'static' }));
  const FI = bpf_func_info;
  const funcInfo = new Uint8Array(starts.length * FI.$size);
  const v = new DataView(funcInfo.buffer);
  starts.forEach((at, k) => {
    v.setUint32(k * FI.$size + FI.insn_off, at, true);
    v.setUint32(k * FI.$size + FI.type_id, 3 + k, true);
  });
  return { btf: Btf.fromTypes(types).marshal(), funcInfo, count: starts.length };
}

/**
 * Loads instructions (items for `assemble`, or bytes) as a program. Throws VerifierError (with the
 * log) when refused, as Collection.load does.
 */
export function loadAssembly(code: readonly Item[] | Uint8Array, options: LoadAssemblyOptions = {}): Program {
  const insns = code instanceof Uint8Array ? code : assemble(code);
  const type = options.type ?? 'xdp';
  const name = options.name ?? 'asm';
  const expected = type === 'xdp' ? attachTypes.number('xdp') : 0;
  let btf: FD | undefined;
  let info: ReturnType<typeof functionInfo> | undefined;
  if (functionStarts(insns).length > 1) {
    info = functionInfo(insns);
    const fd = btfLoadRaw(info.btf, null, 0);
    if (fd < 0) throw new BpfSyscallError(fd, 'bpf(BPF_BTF_LOAD)', 'load function BTF');
    btf = new FD(fd, 'BTF');
  }
  try {
    const base = {
      progType: progTypes.number(type), insns, license: options.license ?? 'GPL', kernVersion: 0, progFlags: options.flags ?? 0,
      name, expectedAttachType: expected, btfFd: btf ? btf.value : 0, funcInfo: info ? info.funcInfo : null, funcInfoRecSize: 8,
      funcInfoCnt: info ? info.count : 0, lineInfo: null, lineInfoRecSize: 0, lineInfoCnt: 0,
    };
    const r = progLoadRaw({ ...base, logLevel: 0, logBuf: null });
    if (r.result >= 0) return new Program(new FD(r.result, `program ${name}`), { name, type });
    const log = new Uint8Array(1 << 20);
    const again = progLoadRaw({ ...base, logLevel: 1, logBuf: log });
    if (again.result >= 0) return new Program(new FD(again.result, `program ${name}`), { name, type });
    const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0))));
    throw emulatorLacks(text, name) ?? new VerifierError(name, again.result, text);
  } finally {
    btf?.close();
  }
}
