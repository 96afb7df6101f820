/**
 * A loaded global variable (`.data`, `.bss`, `.rodata` and their `.*` variants), by name and typed
 * by its BTF. Where the kernel lets the section's array map be memory-mapped (BPF_F_MMAPABLE),
 * reads and writes go straight to the memory the programs use, with no syscall; otherwise through
 * map lookups and updates. `.rodata` is frozen at load: mapped read-only, and set() refuses.
 */
import { codecFor, type Codec } from '../btf/codec.js';
import { BpfkitError, ClosedError, InvalidArgumentError } from '../errors.js';
import type { BpfMap } from './map.js';
import { native } from '../sys/native.js';
import type { MapSpec } from '../spec/map-spec.js';
import { BPF_F_MMAPABLE } from '../abi/constants.js';

/** The memory of a data section's map, shared with the programs, when the kernel allows it. */
export class DataSectionMapping {
  readonly bytes: Uint8Array;
  readonly writable: boolean;
  readonly #buffer: ArrayBuffer;

  private constructor(buffer: ArrayBuffer, size: number, writable: boolean) {
    this.#buffer = buffer;
    this.bytes = new Uint8Array(buffer, 0, size);
    this.writable = writable;
  }

  /** Maps `map` (an mmapable array of one value); undefined when the map or kernel does not allow it. */
  static open(map: BpfMap, spec: MapSpec): DataSectionMapping | undefined {
    if ((spec.flags & BPF_F_MMAPABLE) === 0 || spec.type !== 'array') return undefined;
    const n = native();
    const page = n.constants.PAGE_SIZE;
    const length = Math.ceil(spec.valueSize / page) * page;
    const writable = !spec.freeze;
    const prot = n.constants.PROT_READ | (writable ? n.constants.PROT_WRITE : 0);
    const r = n.mmap(map.fd, length, prot, n.constants.MAP_SHARED, 0);
    if (typeof r === 'number') return undefined; // e.g. an emulated kernel: fall back to syscalls
    return new DataSectionMapping(r, spec.valueSize, writable);
  }

  close(): void {
    if (this.#buffer.byteLength > 0) native().munmap(this.#buffer);
  }
}

/**
 * A data section's mapping, made on first use: a collection whose variables are never touched
 * maps nothing (and its maps can still be frozen, which a writable mapping would forbid).
 */
export class LazyDataSection {
  readonly #map: BpfMap;
  readonly #spec: MapSpec;
  #state: DataSectionMapping | null | undefined;

  constructor(map: BpfMap, spec: MapSpec) {
    this.#map = map;
    this.#spec = spec;
  }

  get(): DataSectionMapping | undefined {
    if (this.#state === undefined) this.#state = DataSectionMapping.open(this.#map, this.#spec) ?? null;
    return this.#state ?? undefined;
  }

  close(): void {
    this.#state?.close();
    this.#state = null;
  }
}

/**
 * A loaded global variable (in `.data`, `.bss`, `.rodata`), typed by its BTF: get() and set()
 * read and write the value the programs see. With BPF_F_MMAPABLE (Linux 5.5) the section is
 * memory-mapped and access is direct; otherwise it goes through map lookups and updates.
 * `.rodata` is frozen at load: set() refuses.
 *
 * Requires Linux 5.2 (global data sections as array maps, BPF_MAP_FREEZE).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`, `ERR_BPFKIT_VARIABLE`) for a value
 *   that does not fit the variable's type, or set() on a constant.
 * @throws {@link ClosedError} (`ERR_BPFKIT_CLOSED`) after the collection is closed.
 */
export class Variable {
  readonly name: string;
  /** True for `.rodata`: constant once loaded. */
  readonly constant: boolean;
  readonly #map: BpfMap;
  readonly #offset: number;
  readonly #size: number;
  readonly #codec: Codec;
  readonly #section0: LazyDataSection | undefined;

  constructor(name: string, map: BpfMap, loc: { offset: number; size: number; typeId: number }, spec: MapSpec, memory?: LazyDataSection) {
    this.name = name;
    this.#map = map;
    this.#offset = loc.offset;
    this.#size = loc.size;
    this.constant = spec.freeze;
    this.#codec = codecFor(spec.btf!, loc.typeId, { path: name });
    this.#section0 = memory;
  }

  /** Whether reads and writes go straight to the shared memory (no syscall). */
  get memoryMapped(): boolean {
    return this.#memory() !== undefined;
  }

  #memory(): DataSectionMapping | undefined {
    return this.#section0?.get();
  }

  get(): unknown {
    if (this.#map.closed) throw new ClosedError(`variable ${this.name}`);
    const memory = this.#memory();
    if (memory) return this.#codec.decode(memory.bytes, this.#offset);
    return this.#codec.decode(this.#section(), this.#offset);
  }

  /**
   * Writes the variable. Memory-mapped: in place, seen by the programs at once (a multi-byte value
   * is not written atomically). Otherwise a read-modify-write of the section through the map.
   */
  set(value: unknown): void {
    if (this.#map.closed) throw new ClosedError(`variable ${this.name}`);
    if (this.constant) {
      throw new InvalidArgumentError(`variable ${this.name} is in .rodata: it is constant once loaded; set it on the spec before load`);
    }
    const enc = this.#codec.encode(value as never);
    if (enc.length !== this.#size) throw new InvalidArgumentError(`variable ${this.name}: encoded ${enc.length} bytes, expected ${this.#size}`);
    const memory = this.#memory();
    if (memory) {
      memory.bytes.set(enc, this.#offset);
      return;
    }
    const bytes = this.#section();
    bytes.set(enc, this.#offset);
    this.#map.update(0, bytes);
  }

  #section(): Uint8Array {
    const bytes = this.#map.lookupBytes(0);
    if (!bytes) throw new BpfkitError('ERR_BPFKIT_VARIABLE', `variable ${this.name}: its map ${this.#map.name} has no value`);
    return bytes;
  }
}
