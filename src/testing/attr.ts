/**
 * How the emulated kernel reads what user space hands to bpf() and writes what it hands back, with
 * no offset of its own: every field is named and placed by the generated uapi layouts
 * (src/abi/uapi.ts), the same ones the library's syscall layer encodes with, and every command is
 * mapped to its `union bpf_attr` member here, once. A field read at a width other than the
 * kernel's is a programming error and throws.
 */
import type { Layout } from '../abi/layout.js';
import { bpf_attr, bpf_cmd } from '../abi/uapi.js';
import type { PointerRefs } from '../sys/native.js';
import { EFAULT } from '../abi/errno.js';

/** The scalar fields of a layout (those with a size), by name. */
export type FieldOf<L extends Layout> = keyof L['$sizeof'] & keyof L & string;

const C = bpf_cmd;
/** The member of `union bpf_attr` each command reads, as the kernel's syscall.c does (CHECK_ATTR). */
export const ATTR_OF_CMD = {
  [C.BPF_MAP_CREATE]: bpf_attr.map_create,
  [C.BPF_MAP_LOOKUP_ELEM]: bpf_attr.map_elem,
  [C.BPF_MAP_UPDATE_ELEM]: bpf_attr.map_elem,
  [C.BPF_MAP_DELETE_ELEM]: bpf_attr.map_elem,
  [C.BPF_MAP_GET_NEXT_KEY]: bpf_attr.map_elem,
  [C.BPF_MAP_LOOKUP_AND_DELETE_ELEM]: bpf_attr.map_elem,
  [C.BPF_MAP_FREEZE]: bpf_attr.map_elem,
  [C.BPF_PROG_LOAD]: bpf_attr.prog_load,
  [C.BPF_OBJ_PIN]: bpf_attr.obj,
  [C.BPF_OBJ_GET]: bpf_attr.obj,
  [C.BPF_PROG_ATTACH]: bpf_attr.prog_attach,
  [C.BPF_PROG_DETACH]: bpf_attr.prog_attach,
  [C.BPF_PROG_TEST_RUN]: bpf_attr.test,
  [C.BPF_PROG_GET_NEXT_ID]: bpf_attr.get_id,
  [C.BPF_MAP_GET_NEXT_ID]: bpf_attr.get_id,
  [C.BPF_BTF_GET_NEXT_ID]: bpf_attr.get_id,
  [C.BPF_LINK_GET_NEXT_ID]: bpf_attr.get_id,
  [C.BPF_PROG_GET_FD_BY_ID]: bpf_attr.get_id,
  [C.BPF_MAP_GET_FD_BY_ID]: bpf_attr.get_id,
  [C.BPF_BTF_GET_FD_BY_ID]: bpf_attr.get_id,
  [C.BPF_LINK_GET_FD_BY_ID]: bpf_attr.get_id,
  [C.BPF_OBJ_GET_INFO_BY_FD]: bpf_attr.info,
  [C.BPF_PROG_QUERY]: bpf_attr.query,
  [C.BPF_RAW_TRACEPOINT_OPEN]: bpf_attr.raw_tracepoint,
  [C.BPF_BTF_LOAD]: bpf_attr.btf_load,
  [C.BPF_TASK_FD_QUERY]: bpf_attr.task_fd_query,
  [C.BPF_MAP_LOOKUP_BATCH]: bpf_attr.batch,
  [C.BPF_MAP_LOOKUP_AND_DELETE_BATCH]: bpf_attr.batch,
  [C.BPF_MAP_UPDATE_BATCH]: bpf_attr.batch,
  [C.BPF_MAP_DELETE_BATCH]: bpf_attr.batch,
  [C.BPF_LINK_CREATE]: bpf_attr.link_create,
  [C.BPF_LINK_UPDATE]: bpf_attr.link_update,
  [C.BPF_ENABLE_STATS]: bpf_attr.enable_stats,
  [C.BPF_ITER_CREATE]: bpf_attr.iter_create,
  [C.BPF_LINK_DETACH]: bpf_attr.link_detach,
  [C.BPF_PROG_BIND_MAP]: bpf_attr.prog_bind_map,
  [C.BPF_TOKEN_CREATE]: bpf_attr.token_create,
  [C.BPF_PROG_STREAM_READ_BY_FD]: bpf_attr.prog_stream_read,
} as const;
export type AttrCmd = keyof typeof ATTR_OF_CMD;

/** The reader of command `cmd`'s attr (its layout from ATTR_OF_CMD). */
export function attrOf<K extends AttrCmd>(cmd: K, bytes: Uint8Array, refs: PointerRefs | undefined): AttrReader<(typeof ATTR_OF_CMD)[K]> {
  return new AttrReader(ATTR_OF_CMD[cmd], bytes, refs);
}

/** One decoded field: a number, a 64-bit value, a NUL-terminated name, or the buffer a pointer field points to. */
export type FieldValue = number | bigint | string | Uint8Array | null;

/**
 * Reads a kernel structure handed in by user space (an attr, or a struct an attr points to such as
 * bpf_prog_info) and the buffers its pointer fields point to (PointerRefs). Bytes past the end of
 * what user space passed read as zero, as the kernel zero-extends a shorter attr.
 */
export class AttrReader<L extends Layout> {
  readonly view: DataView;
  constructor(
    readonly layout: L,
    readonly bytes: Uint8Array,
    readonly refs: PointerRefs | undefined,
    /** Set for a struct an attr points to: its pointer refs name it as their holder. */
    readonly holder: Uint8Array | null = null,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** A reader of the struct behind a pointer of this one, laid out as `layout`. */
  inner<M extends Layout>(layout: M, bytes: Uint8Array): AttrReader<M> {
    return new AttrReader(layout, bytes, this.refs, bytes);
  }

  /** The byte offset of `field`, after checking the caller reads it at the kernel's width. */
  offset(field: FieldOf<L>, width?: number): number {
    const size = (this.layout.$sizeof as Record<string, number>)[field];
    if (width !== undefined && size !== width) throw new Error(`${field} is ${size} bytes wide, not ${width}`);
    return this.layout[field] as number;
  }

  #has(o: number, n: number): boolean {
    return o + n <= this.bytes.length;
  }

  u32(f: FieldOf<L>): number {
    const o = this.offset(f, 4);
    return this.#has(o, 4) ? this.view.getUint32(o, true) : 0;
  }

  u64(f: FieldOf<L>): bigint {
    const o = this.offset(f, 8);
    return this.#has(o, 8) ? this.view.getBigUint64(o, true) : 0n;
  }

  setU32(f: FieldOf<L>, v: number): void {
    const o = this.offset(f, 4);
    if (this.#has(o, 4)) this.view.setUint32(o, v >>> 0, true);
  }

  /** A one-bit bitfield (perf_event_attr.disabled, ...), placed by the layout's `$bits`. */
  bit(name: string): boolean {
    const where = (this.layout as { $bits?: Readonly<Record<string, readonly [number, number]>> }).$bits?.[name];
    if (!where || where[1] !== 1) throw new Error(`${name} is not a one-bit field`);
    const byte = where[0] >> 3;
    return byte < this.bytes.length && (this.bytes[byte]! & (1 << (where[0] & 7))) !== 0;
  }

  /** A char array field (e.g. map_name), up to its NUL. */
  str(f: FieldOf<L>): string {
    const o = this.offset(f);
    const b = this.bytes.subarray(o, Math.min(o + (this.layout.$sizeof as Record<string, number>)[f]!, this.bytes.length));
    const end = b.indexOf(0);
    return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
  }

  /** A char array field's raw bytes (as far as user space passed them). */
  raw(f: FieldOf<L>): Uint8Array {
    const o = this.offset(f);
    return this.bytes.subarray(o, Math.min(o + (this.layout.$sizeof as Record<string, number>)[f]!, this.bytes.length));
  }

  /** The buffer behind a pointer field, or null for NULL. */
  ptr(f: FieldOf<L>): Uint8Array | null {
    const o = this.offset(f, 8);
    const refs = this.refs;
    if (!refs || !this.#has(o, 8)) return null;
    const holder = this.holder;
    for (let i = refs.length - 3; i >= 0; i -= 3) {
      const h = refs[i] as ArrayBufferView | null;
      const same = holder === null ? h === null || sameView(h, this.bytes) : h !== null && sameView(h, holder);
      if (same && refs[i + 1] === o) {
        const b = refs[i + 2] as ArrayBufferView | null;
        return b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null;
      }
    }
    return null;
  }

  /** `len` bytes at a pointer field; -EFAULT when the buffer is missing or short. */
  need(f: FieldOf<L>, len: number): Uint8Array | number {
    const b = this.ptr(f);
    if (len === 0) return b ?? new Uint8Array(0);
    if (!b || b.length < len) return -EFAULT;
    return b.subarray(0, len);
  }

  /**
   * Every field, decoded by its width in the layout: 4 bytes as a number, 8 as the buffer a
   * pointer field points to (or the 64-bit value when no buffer is attached), char arrays as
   * strings; nested structs (link_create's per-link-type members) by their own names.
   */
  fields(): Record<string, FieldValue | Record<string, FieldValue>> {
    const out: Record<string, FieldValue | Record<string, FieldValue>> = {};
    const sizes = (this.layout.$sizeof ?? {}) as Record<string, number>;
    for (const [name, size] of Object.entries(sizes)) {
      const f = name as FieldOf<L>;
      const o = this.layout[f] as number;
      if (size === 4) out[name] = this.u32(f);
      else if (size === 8) out[name] = this.#pointerAt(o) ? this.ptr(f) : this.u64(f);
      else if (size === 2) out[name] = this.#has(o, 2) ? this.view.getUint16(o, true) : 0;
      else if (size === 1) out[name] = this.#has(o, 1) ? this.bytes[o]! : 0;
      else out[name] = this.str(f);
    }
    for (const [name, inner] of Object.entries(this.layout)) {
      if (name.startsWith('$') || typeof inner !== 'object') continue;
      const nested = new AttrReader(inner as Layout, this.bytes, this.refs, this.holder).fields();
      out[name] = nested as Record<string, FieldValue>;
    }
    return out;
  }

  #pointerAt(o: number): boolean {
    const refs = this.refs ?? [];
    for (let i = 0; i < refs.length; i += 3) {
      const h = refs[i] as ArrayBufferView | null;
      const mine = this.holder === null ? h === null || sameView(h, this.bytes) : h !== null && sameView(h, this.holder);
      if (mine && refs[i + 1] === o) return true;
    }
    return false;
  }

  /**
   * Writes a log the way the verifier does into the buffer of field `buf` (room: field `size`),
   * the length it needed into `trueSize`. False when it did not fit.
   */
  writeLog(log: string, buf: FieldOf<L>, size: FieldOf<L>, trueSize: FieldOf<L>): boolean {
    const out = this.ptr(buf);
    const room0 = this.u32(size);
    const bytes = new TextEncoder().encode(log);
    this.setU32(trueSize, bytes.length + 1);
    if (!out || room0 === 0) return true;
    const room = Math.min(room0, out.length);
    const n = Math.min(bytes.length, room - 1);
    out.set(bytes.subarray(0, n));
    out[n] = 0;
    return bytes.length + 1 <= room;
  }
}

/** The same memory (pointer fields of nested structs name their holder by the view). */
function sameView(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset;
}

/** Builds a kernel structure the emulated kernel hands back (bpf_map_info, ...), field by field. */
export class StructWriter<L extends Layout & { readonly $bits?: Readonly<Record<string, readonly [number, number]>> }> {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(readonly layout: L, size: number = layout.$size) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  #at(f: FieldOf<L>, width?: number): number {
    const size = (this.layout.$sizeof as Record<string, number>)[f];
    if (width !== undefined && size !== width) throw new Error(`${f} is ${size} bytes wide, not ${width}`);
    return this.layout[f] as number;
  }

  u32(f: FieldOf<L>, v: number): this {
    this.view.setUint32(this.#at(f, 4), v >>> 0, true);
    return this;
  }

  u64(f: FieldOf<L>, v: bigint): this {
    this.view.setBigUint64(this.#at(f, 8), v, true);
    return this;
  }

  /** A byte-array field (tag, name): `b` truncated to leave the field's last byte (a name's NUL) only when `cstr`. */
  set(f: FieldOf<L>, b: Uint8Array, cstr = false): this {
    const size = (this.layout.$sizeof as Record<string, number>)[f]!;
    this.bytes.set(b.subarray(0, cstr ? size - 1 : size), this.#at(f));
    return this;
  }

  /** A one-bit bitfield (e.g. bpf_prog_info.gpl_compatible). */
  bit(name: string, on: boolean): this {
    const where = this.layout.$bits?.[name];
    if (!where || where[1] !== 1) throw new Error(`${name} is not a one-bit field`);
    const [bit] = where;
    const byte = this.bytes[bit >> 3] ?? 0;
    this.bytes[bit >> 3] = on ? byte | (1 << (bit & 7)) : byte & ~(1 << (bit & 7));
    return this;
  }
}
