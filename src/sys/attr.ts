/**
 * Builds the attribute buffer a `bpf()` or `perf_event_open()` command takes. Offsets come from the
 * uapi layouts in `bpf.ts`; pointer fields are recorded as (offset, buffer) pairs that the native
 * layer patches with real addresses, so JavaScript never handles an address.
 */
import type { PointerRefs } from './native.js';

export class Attr {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly refs: PointerRefs = [];

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u32(offset: number, value: number): this {
    this.view.setUint32(offset, value >>> 0, true);
    return this;
  }

  i32(offset: number, value: number): this {
    this.view.setInt32(offset, value, true);
    return this;
  }

  u64(offset: number, value: bigint | number): this {
    this.view.setBigUint64(offset, BigInt(value), true);
    return this;
  }

  /** A pointer field; null writes 0. */
  ptr(offset: number, buffer: ArrayBufferView | null): this {
    this.refs.push(null, offset, buffer);
    return this;
  }

  /**
   * A pointer field to another struct that holds pointers of its own (the info structs of
   * BPF_OBJ_GET_INFO_BY_FD): its pointer fields are patched inside it.
   */
  ptrTo(offset: number, inner: Attr): this {
    this.refs.push(null, offset, inner.bytes);
    for (let i = 0; i < inner.refs.length; i += 3) {
      this.refs.push(inner.refs[i] ?? inner.bytes, inner.refs[i + 1]!, inner.refs[i + 2]!);
    }
    return this;
  }

  /** A fixed-size char array, NUL-terminated and truncated to fit. */
  str(offset: number, size: number, text: string): this {
    const enc = new TextEncoder().encode(text);
    this.bytes.set(enc.subarray(0, size - 1), offset);
    return this;
  }

  getU32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
}

