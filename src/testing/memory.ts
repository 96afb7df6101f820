/**
 * Probe memory: the kernel (or user) memory that tracing programs read with bpf_probe_read_* and
 * through pointers such as bpf_get_current_task()'s. Tests lay out the structures a program
 * reads at the addresses it will read them from; anything else faults, as a bad address does in
 * the kernel (the helper answers -EFAULT and zeroes its buffer).
 *
 *   const mem = new ProbeMemory({ currentTask: 0xffff888000100000n })
 *     .u32(0xffff888000100000n + 0x9c0n, 4242)            // task->pid at its offset
 *     .string(0xffff888000200000n, 'bash');
 */
import type { ProbeMemoryLike } from './interpreter.js';

interface Segment {
  address: bigint;
  bytes: Uint8Array;
}

/**
 * Memory for tracing programs under the emulator: lay out kernel or user memory at chosen
 * addresses so `bpf_probe_read_*` finds it (and faults elsewhere, as the kernel returns -EFAULT).
 */
export class ProbeMemory implements ProbeMemoryLike {
  readonly #segments: Segment[] = [];
  /** What bpf_get_current_task() and bpf_get_current_task_btf() return. */
  currentTask: bigint | undefined;

  constructor(options: { currentTask?: bigint } = {}) {
    this.currentTask = options.currentTask;
  }

  /** Makes `bytes` readable (and writable, by the same reference) at `address`. */
  map(address: bigint, bytes: Uint8Array): this {
    this.#segments.push({ address, bytes });
    return this;
  }

  /** Writes bytes at an address, mapping a segment for them if none covers it. */
  set(address: bigint, bytes: Uint8Array): this {
    const seg = this.#find(address, bytes.length);
    if (seg) seg.bytes.set(bytes, Number(address - seg.address));
    else this.map(address, bytes.slice());
    return this;
  }

  u8(address: bigint, value: number): this {
    return this.set(address, Uint8Array.of(value & 0xff));
  }

  u16(address: bigint, value: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    return this.set(address, b);
  }

  u32(address: bigint, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    return this.set(address, b);
  }

  u64(address: bigint, value: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    return this.set(address, b);
  }

  /** A NUL-terminated string. */
  string(address: bigint, text: string): this {
    const enc = new TextEncoder().encode(text);
    const b = new Uint8Array(enc.length + 1);
    b.set(enc);
    return this.set(address, b);
  }

  #find(address: bigint, length: number): Segment | undefined {
    return this.#segments.find((s) => address >= s.address && address + BigInt(length) <= s.address + BigInt(s.bytes.length));
  }

  /** `length` bytes at `address`, or undefined when they are not all mapped in one segment. */
  read(address: bigint, length: number): Uint8Array | undefined {
    const seg = this.#find(address, length);
    if (!seg) return undefined;
    const at = Number(address - seg.address);
    return seg.bytes.subarray(at, at + length);
  }

  write(address: bigint, bytes: Uint8Array): boolean {
    const seg = this.#find(address, bytes.length);
    if (!seg) return false;
    seg.bytes.set(bytes, Number(address - seg.address));
    return true;
  }
}
