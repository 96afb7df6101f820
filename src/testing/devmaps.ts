/**
 * The redirect maps of XDP programs, with their kernel semantics as user space and bpf_redirect_map
 * see them: devmap (slots by index) and devmap_hash (keys) holding network devices of the emulated
 * kernel (`netdevs` option) and optionally a BPF_XDP_DEVMAP program; cpumap (slots per CPU holding a
 * queue size and optionally a BPF_XDP_CPUMAP program); and the socket maps (xskmap, sockmap,
 * sockhash), which exist with the kernel's checks but stay empty: the emulator has no sockets.
 */
import { E2BIG, EBADF, EEXIST, EINVAL, ENODEV, ENOENT, ENOSPC, ENOTSOCK, EOPNOTSUPP, EOVERFLOW } from '../abi/errno.js';
import { EmuMap, arrayNextKey, keyId, putU32, u32At, type MapParams, type ProgRef } from './maps.js';
import type { KernelObject, ObjectHost } from './objects.js';
import { PROG_TYPES, attachType as attachTypes } from '../abi/constants.js';
import { bpf_cpumap_val, bpf_devmap_val } from '../abi/uapi.js';

const BPF_NOEXIST = 1;
const BPF_EXIST = 2;

/** What device and CPU maps need from the kernel besides objects. */
export interface NetHost extends ObjectHost {
  hasNetdev(ifindex: number): boolean;
}

/**
 * Where a map's value keeps its u32 (devmap: ifindex; cpumap: qsize) and its program (an fd going
 * in, an id coming out), and the value size that holds the program (smaller values hold none).
 */
interface ValueLayout {
  readonly first: number;
  readonly progFd: number;
  readonly progId: number;
  readonly withProg: number;
}
const DEVMAP_VAL: ValueLayout = {
  first: bpf_devmap_val.ifindex, progFd: bpf_devmap_val.bpf_prog.fd, progId: bpf_devmap_val.bpf_prog.id, withProg: bpf_devmap_val.$size,
};
const CPUMAP_VAL: ValueLayout = {
  first: bpf_cpumap_val.qsize, progFd: bpf_cpumap_val.bpf_prog.fd, progId: bpf_cpumap_val.bpf_prog.id, withProg: bpf_cpumap_val.$size,
};

interface Slot {
  /** devmap: the ifindex; cpumap: the queue size. */
  value: number;
  prog: (ProgRef & KernelObject) | null;
}

/** The program of a devmap or cpumap value: an XDP program loaded for that attach type, or -EINVAL. */
function slotProg(host: ObjectHost, fd: number, attach: 'xdp_devmap' | 'xdp_cpumap'): (ProgRef & KernelObject) | null | number {
  if (fd === -1) return null;
  const obj = host.objectOfFd(fd);
  if (!obj || obj.kind !== 'prog') return -EINVAL;
  const prog = obj as ProgRef & KernelObject;
  if (PROG_TYPES[prog.progType] !== 'xdp' || prog.expectedAttachType !== attachTypes.number(attach)) return -EINVAL;
  return prog;
}

/** devmap, devmap_hash and cpumap. */
export class RedirectMap extends EmuMap {
  readonly #slots = new Map<number | string, { key: Uint8Array; slot: Slot }>();
  readonly #host: NetHost;
  readonly hashed: boolean;
  readonly cpu: boolean;
  readonly #val: ValueLayout;

  constructor(host: NetHost, p: MapParams) {
    super(host, p);
    this.#host = host;
    this.hashed = this.type === 'devmap_hash';
    this.cpu = this.type === 'cpumap';
    this.#val = this.cpu ? CPUMAP_VAL : DEVMAP_VAL;
  }

  /** The target of bpf_redirect_map at `index`: the ifindex (devmaps) or the CPU (cpumap), or undefined. */
  target(index: number): number | undefined {
    const e = this.#slots.get(index);
    if (!e) return undefined;
    return this.cpu ? index : e.slot.value;
  }

  override sysLookup(key: Uint8Array | null, out: Uint8Array): number {
    const e = key ? this.#slots.get(keyId(key)) : undefined;
    if (!e) return -ENOENT;
    out.fill(0);
    putU32(out, this.#val.first, e.slot.value);
    if (this.valueSize >= this.#val.withProg) putU32(out, this.#val.progId, e.slot.prog?.id ?? 0);
    return 0;
  }

  /**
   * bpf_map_lookup_elem from a program (devmaps only; the verifier refuses it on a cpumap): the
   * slot's struct bpf_devmap_val, ifindex and program id, read-only (devmaps are BPF_F_RDONLY_PROG).
   */
  override lookup(key: Uint8Array): Uint8Array | null {
    const out = new Uint8Array(this.valueSize);
    return this.sysLookup(key, out) === 0 ? out : null;
  }

  override sysUpdate(key: Uint8Array | null, value: Uint8Array, flags: number): number {
    const i = key ? u32At(key) : 0;
    const v = u32At(value, this.#val.first);
    const progFd = this.valueSize >= this.#val.withProg ? u32At(value, this.#val.progFd) | 0 : -1;
    if (flags > BPF_EXIST) return -EINVAL;
    const id = keyId(key ?? new Uint8Array(4));
    if (this.hashed) {
      if (!v) return -EINVAL;
      // BPF_EXIST is not checked for a missing key (__dev_map_hash_update_elem inserts it).
      if (this.#slots.has(id) && flags === BPF_NOEXIST) return -EEXIST;
    } else {
      if (i >= this.maxEntries) return -E2BIG;
      if (flags === BPF_NOEXIST) return -EEXIST;
    }
    let slot: Slot | null;
    if (this.cpu) {
      if (v > 16384) return -EOVERFLOW;
      if (i >= this.#host.cpus) return -ENODEV;
      if (v === 0) slot = null; // the same as deleting
      else {
        const prog = slotProg(this.#host, progFd, 'xdp_cpumap');
        if (typeof prog === 'number') return prog;
        slot = { value: v, prog };
      }
    } else if (!v) {
      // devmap: an empty slot, which may not name a program.
      if (progFd > -1) return -EINVAL;
      slot = null;
    } else {
      if (!this.#host.hasNetdev(v)) return -EINVAL;
      const prog = slotProg(this.#host, progFd, 'xdp_devmap');
      if (typeof prog === 'number') return prog;
      slot = { value: v, prog };
    }
    if (this.hashed && !this.#slots.has(id) && this.#slots.size >= this.maxEntries) return -E2BIG;
    this.#put(id, key ?? new Uint8Array(4), slot);
    return 0;
  }

  #put(id: number | string, key: Uint8Array, slot: Slot | null): void {
    const old = this.#slots.get(id);
    if (slot?.prog) this.#host.acquire(slot.prog);
    if (slot) this.#slots.set(id, { key: key.slice(), slot });
    else this.#slots.delete(id);
    if (old?.slot.prog) this.#host.release(old.slot.prog);
  }

  override sysDelete(key: Uint8Array | null): number {
    const id = keyId(key ?? new Uint8Array(4));
    if (this.hashed) {
      if (!this.#slots.has(id)) return -ENOENT;
    } else if ((key ? u32At(key) : 0) >= this.maxEntries) return -EINVAL;
    this.#put(id, key ?? new Uint8Array(4), null);
    return 0;
  }

  override sysGetNextKey(key: Uint8Array | null, out: Uint8Array): number {
    if (this.hashed) {
      const keys = [...this.#slots.values()].map((e) => e.key);
      const at = key ? keys.findIndex((k) => keyId(k) === keyId(key)) : -1;
      const next = keys[at + 1];
      if (!next) return -ENOENT;
      out.set(next);
      return 0;
    }
    return arrayNextKey(key, out, this.maxEntries);
  }

  override dispose(): void {
    for (const e of this.#slots.values()) if (e.slot.prog) this.#host.release(e.slot.prog);
    this.#slots.clear();
  }
}

/** xskmap, sockmap, sockhash: the kernel's checks on keys and flags; no socket can go in. */
export class SocketMap extends EmuMap {
  override sysLookup(): number {
    if (this.type === 'xskmap') return -EOPNOTSUPP;
    // User space reads a socket's cookie, a u64: a 4-byte value cannot hold it.
    return this.valueSize !== 8 ? -ENOSPC : -ENOENT;
  }

  override sysUpdate(key: Uint8Array | null, value: Uint8Array, flags: number): number {
    const fd = this.valueSize === 8 ? Number(new DataView(value.buffer, value.byteOffset).getBigUint64(0, true)) : u32At(value);
    // An emulated object is never a socket; a real fd the emulator cannot use either. sockmap and
    // sockhash look the socket up before anything else; xskmap checks flags and key first.
    const notSocket = this.host.objectOfFd(fd) ? -ENOTSOCK : -EBADF;
    if (this.type !== 'xskmap') return fd > 0x7fffffff ? -EINVAL : notSocket;
    if (flags > BPF_EXIST) return -EINVAL;
    if ((key ? u32At(key) : 0) >= this.maxEntries) return -E2BIG;
    return notSocket;
  }

  override sysDelete(key: Uint8Array | null): number {
    const i = key ? u32At(key) : 0;
    if (this.type === 'sockhash') return -ENOENT;
    if (i >= this.maxEntries) return -EINVAL;
    return this.type === 'sockmap' ? -EINVAL : 0;
  }

  override sysGetNextKey(key: Uint8Array | null, out: Uint8Array): number {
    if (this.type === 'sockhash') return -ENOENT;
    return arrayNextKey(key, out, this.maxEntries);
  }
}

const DEV_FLAGS = (1 << 2) | (1 << 3) | (1 << 4); // NUMA_NODE | RDONLY | WRONLY
const BPF_F_RDONLY_PROG = 1 << 7;

/** BPF_MAP_CREATE's checks for these map types (dev_map_alloc_check, cpu_map_alloc, sock_map_alloc, ...). */
export function createNetMap(type: string, p: MapParams, host: NetHost): EmuMap | number {
  switch (type) {
    case 'devmap':
    case 'devmap_hash':
      if (p.maxEntries === 0 || p.keySize !== 4 || (p.valueSize !== 4 && p.valueSize !== 8) || p.flags & ~DEV_FLAGS) return -EINVAL;
      // dev_map_init_map adds BPF_F_RDONLY_PROG: programs read a slot's value, never write it
      // (and the map's info shows the flag).
      return new RedirectMap(host, { ...p, flags: p.flags | BPF_F_RDONLY_PROG });
    case 'cpumap':
      if (p.maxEntries === 0 || p.keySize !== 4 || (p.valueSize !== 4 && p.valueSize !== 8) || p.flags & ~(1 << 2)) return -EINVAL;
      if (p.maxEntries > 8192) return -E2BIG; // NR_CPUS of a distribution kernel
      return new RedirectMap(host, p);
    case 'xskmap':
      if (p.maxEntries === 0 || p.keySize !== 4 || p.valueSize !== 4 || p.flags & ~DEV_FLAGS) return -EINVAL;
      return new SocketMap(host, p);
    case 'sockmap':
      if (p.maxEntries === 0 || p.keySize !== 4 || (p.valueSize !== 4 && p.valueSize !== 8) || p.flags & ~DEV_FLAGS) return -EINVAL;
      return new SocketMap(host, p);
    case 'sockhash':
      if (p.maxEntries === 0 || p.keySize === 0 || (p.valueSize !== 4 && p.valueSize !== 8) || p.flags & ~DEV_FLAGS) return -EINVAL;
      return new SocketMap(host, p);
    default:
      return -EINVAL;
  }
}
