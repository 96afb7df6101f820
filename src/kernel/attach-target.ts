/**
 * Programs that hook kernel functions by BTF (tp_btf, fentry/fexit/fmod_ret, lsm, iter) must name
 * their target's BTF id at load. The id comes from the kernel's vmlinux BTF, under the name the
 * kernel gives each kind of target.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { parseRunningKernelBtf, type Btf } from '../btf/btf.js';
import { NotSupportedError, SpecError } from '../errors.js';
import type { ProgramSpec } from '../spec/program-spec.js';

let vmlinux: Btf | undefined;

/** The running kernel's BTF, parsed once per process. */
export function kernelBtf(): Btf {
  if (!vmlinux) {
    try {
      // Written and checked by the kernel itself: neither a whole-section nor a per-type check.
      vmlinux = parseRunningKernelBtf(readVmlinux());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new NotSupportedError('kernel BTF (/sys/kernel/btf/vmlinux)', 'the kernel was built without CONFIG_DEBUG_INFO_BTF', '5.4');
      }
      throw e;
    }
  }
  return vmlinux;
}

/** The running kernel's BTF if this process has already parsed it (nothing is read here). */
export function parsedKernelBtf(): Btf | undefined {
  return vmlinux;
}

const VMLINUX = '/sys/kernel/btf/vmlinux';

/**
 * The blob in a buffer of its own with zero bytes after it, which Btf.parseKernel can keep
 * without copying (5 MB or more). sysfs gives the file's size; if the read disagrees, a plain read.
 */
function readVmlinux(): Uint8Array {
  const fd = openSync(VMLINUX, 'r');
  try {
    const size = fstatSync(fd).size;
    const spare = 8;
    const buf = Buffer.alloc(size + spare);
    let n = 0;
    for (let r = 1; n < size && r > 0; n += r) r = readSync(fd, buf, n, size - n, n);
    if (n === size && size > 0 && readSync(fd, buf, size, 1, size) === 0) return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
  return readFileSync(VMLINUX);
}

/** The kernel BTF id a program must attach to, or 0 when its type needs none. */
export function attachBtfId(spec: ProgramSpec, btf: () => Btf = kernelBtf): number {
  const t = spec.attachType;
  let name: string;
  let kind: 'typedef' | 'func';
  switch (t) {
    case 'trace_raw_tp': name = `btf_trace_${spec.attachTarget}`; kind = 'typedef'; break;
    case 'trace_fentry': case 'trace_fexit': case 'modify_return': name = spec.attachTarget; kind = 'func'; break;
    case 'lsm_mac': case 'lsm_cgroup': name = `bpf_lsm_${spec.attachTarget}`; kind = 'func'; break;
    case 'trace_iter': name = `bpf_iter_${spec.attachTarget}`; kind = 'func'; break;
    default: return 0;
  }
  if (!spec.attachTarget) {
    throw new SpecError(`program ${spec.name}: section ${spec.sectionName} must name its target (e.g. ${spec.sectionName}/<name>)`);
  }
  const found = btf().byName(name, kind)[0];
  if (!found) {
    throw new SpecError(`program ${spec.name}: the kernel has no ${kind === 'typedef' ? 'tracepoint' : 'function'} "${spec.attachTarget}" (no ${name} in its BTF)`);
  }
  return found.id;
}
