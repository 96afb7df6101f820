/**
 * BTF that lives in the kernel: an object's BTF loaded with BPF_BTF_LOAD, read back by id (so a map
 * opened from a pin or by id can decode its keys and values).
 */
import { Attr } from '../sys/attr.js';
import { getFdById, objGetInfoByFd } from '../sys/bpf.js';
import { Btf } from './btf.js';

/** Reads back the BTF object with kernel id `id` (struct bpf_btf_info: btf @0, btf_size @8). */
export function btfFromKernelId(id: number): Btf {
  const fd = getFdById('BTF', id);
  try {
    const probe = new Attr(32);
    objGetInfoByFd(fd.value, probe);
    const size = probe.getU32(8);
    const data = new Uint8Array(size);
    objGetInfoByFd(fd.value, new Attr(32).ptr(0, data).u32(8, size));
    return Btf.parse(data);
  } finally {
    fd.close();
  }
}
