/**
 * Loads an object's BTF into the kernel (BPF_BTF_LOAD) so maps can carry key/value types and
 * programs their func and line info. A kernel that refuses it costs only that metadata, as with
 * libbpf: the caller gets the error to report and loads without BTF.
 */
import type { Btf } from '../btf/btf.js';
import { sanitizeBtfForKernel } from './btf-sanitize.js';
import { BpfSyscallError } from '../errors.js';
import { btfLoadRaw } from '../sys/bpf.js';
import { FD } from '../sys/fd.js';

export function loadBtf(btf: Btf): { fd: FD } | { error: Error } {
  // The kernel refuses extern declarations (and kinds it predates): give it a sanitised copy with
  // the same type ids, so map and program metadata stay valid.
  const bytes = sanitizeBtfForKernel(btf).marshal();
  const r = btfLoadRaw(bytes, null, 0);
  if (r >= 0) return { fd: new FD(r, 'BTF') };
  const log = new Uint8Array(1 << 20);
  const again = btfLoadRaw(bytes, log, 1);
  if (again >= 0) return { fd: new FD(again, 'BTF') };
  const end = log.indexOf(0);
  const text = new TextDecoder().decode(end < 0 ? log : log.subarray(0, end)).trim();
  const last = text.split('\n').filter(Boolean).pop();
  return { error: new BpfSyscallError(again, 'bpf(BPF_BTF_LOAD)', 'load BTF', last ? `the kernel said: ${last}` : undefined) };
}
