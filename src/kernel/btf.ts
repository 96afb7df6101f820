/**
 * BTF that lives in the kernel: an object's BTF loaded with BPF_BTF_LOAD, read back by id (so a map
 * opened from a pin or by id can decode its keys and values).
 */
import { bpf_btf_info } from '../abi/uapi.js';
import { Attr } from '../sys/attr.js';
import { getFdById, objGetInfoByFd } from '../sys/bpf.js';
import { Btf } from '../btf/btf.js';

/** Reads back the BTF object with kernel id `id` (struct bpf_btf_info: a first call for the size, a second for the bytes). */
export function btfFromKernelId(id: number): Btf {
  const I = bpf_btf_info;
  const fd = getFdById('BTF', id);
  try {
    const probe = new Attr(I.$size);
    objGetInfoByFd(fd.value, probe);
    const size = probe.getU32(I.btf_size);
    const data = new Uint8Array(size);
    objGetInfoByFd(fd.value, new Attr(I.$size).ptr(I.btf, data).u32(I.btf_size, size));
    return Btf.parse(data);
  } finally {
    fd.close();
  }
}
