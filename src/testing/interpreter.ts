/**
 * The BPF interpreter: executes a program's own instructions, one at a time, with the semantics of
 * the kernel's instruction set (Documentation/bpf/standardization/instruction-set.rst).
 *
 * Registers are 64 bits held as two u32 halves (`rh`, `rl`), so ALU operations stay in plain
 * numbers; only 64-bit division falls back to BigInt. Memory is a set of regions (the stack of
 * each frame, the context, the packet, map values, ring buffer records, ...). A pointer is an
 * ordinary 64-bit value: its upper half names the region (0x5bf00000 + a tag handed out per run)
 * and its lower half is 0x40000000 + the offset, so pointer arithmetic, comparisons and spills to
 * the stack work like real addresses, while every load and store is checked against the bounds of
 * the region it falls in. Anything the kernel's verifier would have ruled out and that actually
 * happens at run time (an access out of bounds, a write to read-only memory, an unknown helper)
 * stops the run with an EmulatorFault naming the instruction.
 *
 * Context loads of `data`/`data_end`/`data_meta` produce packet pointers at the load, as the
 * verifier's context rewriting does in the kernel.
 */
import { BpfkitError } from '../errors.js';
import type { EmulatedSocket } from './sockets.js';
import { CORE_POISON_HELPER } from '../btf/core.js';
import { disassemble, helperName, readInsn } from '../asm/isa.js';
import type { Code } from './loader.js';
import type { EmuMap } from './maps.js';
import type { RingbufMap } from './rings.js';
import type { KernelBehaviour } from './version.js';
import type { SkbState } from './testrun.js';
import type { Fib } from './fib.js';

/** Upper halves of region pointers: non-canonical on x86_64, so never equal to a real kernel or user address. */
export const HI_BASE = 0x5bf00000;
export const LO_BASE = 0x40000000;
export const STACK_SIZE = 512;
export const MAX_CALL_FRAMES = 8;
export const MAX_TAIL_CALLS = 33;
const MAX_REGIONS = 0xffff;
const TWO32 = 4294967296;

export type RegionKind = 'stack' | 'ctx' | 'packet' | 'map_value' | 'map' | 'func' | 'ringbuf_sample' | 'probe' | 'key' | 'sock';

/** A piece of memory a program may point into. */
export class Region {
  /** Run in which `tag` was handed out. */
  run = -1;
  tag = 0;
  /** Valid offsets are [start, end). */
  start = 0;
  end: number;
  readable = true;
  writable = true;
  /** Context loads that produce pointers (data, data_end, ...): true when handled. */
  load: ((o: number, size: number, d: number) => boolean) | null = null;
  /** Context stores: a reason when the field may not be written. */
  store: ((o: number, size: number) => string | undefined) | null = null;
  map: EmuMap | undefined;
  func: { code: Code; pc: number } | undefined;
  sample: { ring: RingbufMap; pos: number; done: boolean } | undefined;
  /** Where offsets in messages count from (the stack counts from its frame pointer). */
  bias = 0;
  /** Array memory: accesses must stay inside one element of `valueSize` bytes every `elem` bytes. */
  elem = 0;
  valueSize = 0;

  constructor(readonly kind: RegionKind, public bytes: Uint8Array, readonly name: string) {
    this.end = bytes.length;
  }
}

/** The run stopped: the program did something the kernel's verifier would not have let it do. */
export class EmulatorFault extends BpfkitError {
  /** The program that was running (after tail calls, the one reached). */
  readonly program: string;
  /** Index of the faulting instruction in that program. */
  readonly insn: number;
  /** The instruction, disassembled. */
  readonly instruction: string;
  /** What went wrong. */
  readonly reason: string;
  /** `file.c:line: source` from the program's BTF line info, when it has one. */
  readonly source: string | undefined;

  constructor(program: string, insn: number, instruction: string, reason: string, source: string | undefined, func: string | undefined) {
    const where = `${func && func !== program ? ` in ${func}()` : ''}${source ? ` (${source})` : ''}`;
    super('ERR_BPFKIT_EMULATOR_FAULT', `program ${program}: instruction ${insn} \`${instruction}\`${where}: ${reason}`);
    this.program = program;
    this.insn = insn;
    this.instruction = instruction;
    this.reason = reason;
    this.source = source;
  }
}

/** Thrown inside the interpreter; turned into an EmulatorFault with the instruction by `exec`. */
export class Trap extends Error {}

/** LD_ABS/LD_IND out of the packet: the program ends, returning 0. */
const EXIT_ZERO = Symbol('exit 0');

/** What helpers need from the emulated kernel. */
export interface VmEnv {
  readonly cpus: number;
  /** What the imitated kernel release does where releases differ. */
  readonly kernel: KernelBehaviour;
  /** A network device by ifindex (1 is loopback), or undefined. */
  netdev(ifindex: number): { ifindex: number; name: string; mac?: Uint8Array } | undefined;
  /** The forwarding information base bpf_fib_lookup searches. */
  readonly fib: Fib;
  readonly maxInstructions: number;
  /** bpf_ktime_get_ns and friends. */
  clock(kind: 'monotonic' | 'boot' | 'coarse' | 'tai'): bigint;
  readonly task: Task;
  readonly memory: ProbeMemoryLike | undefined;
  random(): number;
  trace(text: string): void;
  redirect(r: { ifindex: number; flags: bigint; map?: string; key?: number; kind?: 'peer' | 'neigh' | 'clone'; data?: Uint8Array }): void;
  /** Sockets the lookup helpers find (sockets.ts). */
  readonly sockets: readonly EmulatedSocket[];
}

/**
 * The process a tracing program runs in under the emulator: what `bpf_get_current_pid_tgid`,
 * `bpf_get_current_comm` and friends return.
 */
export interface Task {
  pid: number;
  tgid: number;
  uid: number;
  gid: number;
  comm: string;
  cgroupId: bigint;
  /**
   * The cgroup v2 ids from the root (level 0, id 1) down to `cgroupId`, for
   * bpf_skb_ancestor_cgroup_id. Unset: the root alone when `cgroupId` is 1, else a cgroup
   * directly under the root.
   */
  cgroupAncestors?: readonly bigint[];
}

/**
 * The memory tracing programs read through bpf_probe_read_* (and write through
 * bpf_probe_write_user): `ProbeMemory`, or anything that answers the same way.
 */
export interface ProbeMemoryLike {
  read(address: bigint, length: number): Uint8Array | undefined;
  write?(address: bigint, bytes: Uint8Array): boolean;
  readonly currentTask?: bigint | undefined;
}

/**
 * The packet of an XDP or skb run: one linear buffer with head- and tailroom, where the data is,
 * and (XDP) the fragments holding what did not fit in the linear part.
 */
export class Packet {
  buf: Uint8Array;
  readonly region: Region;
  meta: number;
  data: number;
  end: number;
  /** Lowest data/meta start (xdp_frame fits before it), and the highest end (tailroom after). */
  readonly minStart: number;
  readonly maxEnd: number;
  /** XDP fragments: the data after the linear part, in pages of PAGE_SIZE. */
  frags: Uint8Array = new Uint8Array(0);

  constructor(input: Uint8Array, headroom: number, frameSize: number, tailroom: number, minStart: number) {
    this.buf = new Uint8Array(Math.max(frameSize, headroom + input.length + tailroom));
    this.buf.set(input, headroom);
    this.meta = headroom;
    this.data = headroom;
    this.end = headroom + input.length;
    this.minStart = minStart;
    this.maxEnd = this.buf.length - tailroom;
    this.region = new Region('packet', this.buf, 'the packet');
    this.sync();
  }

  /** Length of the linear data. */
  get length(): number {
    return this.end - this.data;
  }

  /** Length of the data, fragments included. */
  get total(): number {
    return this.end - this.data + this.frags.length;
  }

  /** `len` bytes from `offset` of the data, across the linear part and the fragments. */
  read(offset: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const lin = this.length;
    if (offset < lin) out.set(this.buf.subarray(this.data + offset, this.data + Math.min(lin, offset + len)));
    if (offset + len > lin) {
      const from = Math.max(0, offset - lin);
      out.set(this.frags.subarray(from, offset + len - lin), Math.max(0, lin - offset));
    }
    return out;
  }

  write(offset: number, bytes: Uint8Array): void {
    const lin = this.length;
    for (let i = 0; i < bytes.length; i++) {
      const at = offset + i;
      if (at < lin) this.buf[this.data + at] = bytes[i]!;
      else this.frags[at - lin] = bytes[i]!;
    }
  }

  /**
   * skb helpers that grow the packet: makes room for `head` bytes before data and `tail` bytes
   * after end (pskb_expand_head), moving the contents; offsets shift by the headroom added.
   */
  reserve(head: number, tail: number): void {
    const addHead = Math.max(0, head - this.meta);
    const addTail = Math.max(0, this.end + tail - this.buf.length);
    if (!addHead && !addTail) return;
    const buf = new Uint8Array(this.buf.length + addHead + addTail);
    buf.set(this.buf, addHead);
    this.buf = buf;
    this.region.bytes = buf;
    this.meta += addHead;
    this.data += addHead;
    this.end += addHead;
    this.sync();
  }

  /** Updates the region's bounds after the data pointers moved. */
  sync(): void {
    this.region.start = this.meta;
    this.region.end = this.end;
    this.region.bias = this.data;
  }
}

interface Frame {
  code: Code;
  retPc: number;
  saved: Uint32Array;
}

export type HelperFn = (vm: Vm) => void;

export class Vm {
  readonly rl = new Uint32Array(11);
  readonly rh = new Uint32Array(11);
  readonly env: VmEnv;
  readonly helpers: readonly (HelperFn | undefined)[];
  /** Regions with a tag in the current run, by tag. */
  readonly regions: Region[] = [];
  nregions = 0;
  runId = 0;
  cpu = 0;
  /** Instructions executed, in total (all runs). */
  executed = 0;
  #remaining = 0;
  #frames: Frame[] = [];
  #depth = 0;
  readonly #stacks: Region[] = [];
  readonly #values = new WeakMap<Uint8Array, Region>();
  /** Regions of array memory, by backing buffer. */
  readonly #arrays = new WeakMap<ArrayBufferLike, Region>();
  readonly #mapRegions = new WeakMap<EmuMap, Region>();
  readonly #funcRegions = new WeakMap<Code, Map<number, Region>>();
  /** Offset found by the last access(). */
  ao = 0;
  /** Set by bpf_tail_call: the program to continue with. */
  tailTarget: Code | undefined;
  tailCalls = 0;
  mayGotoBudget = 0;
  /** The run's context and packet (helpers that touch the packet need them). */
  ctx: Region | undefined;
  packet: Packet | undefined;
  /** The kind of program running: skb programs may use LD_ABS and skb helpers, XDP programs the xdp ones. */
  isSkb = false;
  /** The sk_buff's state beyond its bytes (checksum level, tunnel metadata) in an skb run. */
  skb: SkbState | undefined;
  isXdp = false;

  constructor(env: VmEnv, helpers: readonly (HelperFn | undefined)[]) {
    this.env = env;
    this.helpers = helpers;
  }

  // ---- regions and pointers ---------------------------------------------------------------------

  /** Puts a pointer to offset `o` of `r` into register `d`. */
  setPtr(d: number, r: Region, o: number): void {
    this.rh[d] = HI_BASE + (r.run === this.runId ? r.tag : this.#tag(r));
    this.rl[d] = LO_BASE + o;
  }

  /** Hands `r` a tag for this run. */
  #tag(r: Region): number {
    if (this.nregions >= MAX_REGIONS) throw new Trap('the run touched more than 65535 memory regions');
    r.run = this.runId;
    r.tag = this.nregions;
    this.regions[this.nregions++] = r;
    return r.tag;
  }

  /**
   * Puts a pointer to a map value (plus `extra` bytes) into register `d`. Hash values have a region
   * each, kept across runs; array elements are views made on demand, so an array's memory (each
   * chunk of it) is one region whose accesses must stay inside one element: a large array keeps no
   * object per element, and a run may touch any number of them.
   */
  setValuePtr(d: number, bytes: Uint8Array, map: EmuMap, extra = 0): void {
    if (map.stride) this.setPtr(d, this.#arrayRegion(bytes, map), bytes.byteOffset + extra);
    else this.setPtr(d, this.valueRegion(bytes, map), extra);
  }

  /** The address a value pointer holds (bpf_for_each_map_elem's callback arguments). */
  valueAddress(bytes: Uint8Array, map: EmuMap): bigint {
    return map.stride ? this.addressOf(this.#arrayRegion(bytes, map), bytes.byteOffset) : this.addressOf(this.valueRegion(bytes, map), 0);
  }

  #arrayRegion(bytes: Uint8Array, map: EmuMap): Region {
    let r = this.#arrays.get(bytes.buffer);
    if (!r) {
      r = this.#newValueRegion(new Uint8Array(bytes.buffer), map);
      r.elem = map.stride;
      r.valueSize = map.valueSize;
      this.#arrays.set(bytes.buffer, r);
    }
    return r;
  }

  /** The region for a (hash) map value's bytes: one per value buffer, kept across runs. */
  valueRegion(bytes: Uint8Array, map: EmuMap): Region {
    let r = this.#values.get(bytes);
    if (!r) {
      r = this.#newValueRegion(bytes, map);
      this.#values.set(bytes, r);
    }
    return r;
  }

  #newValueRegion(bytes: Uint8Array, map: EmuMap): Region {
    const r = new Region('map_value', bytes, `a value of map ${map.name}`);
    r.writable = !map.progReadOnly;
    r.readable = (map.flags & (1 << 8)) === 0;
    r.map = map;
    return r;
  }

  mapRegion(map: EmuMap): Region {
    let r = this.#mapRegions.get(map);
    if (!r) {
      r = new Region('map', new Uint8Array(0), `map ${map.name}`);
      r.readable = false;
      r.writable = false;
      r.map = map;
      this.#mapRegions.set(map, r);
    }
    return r;
  }

  funcRegion(code: Code, pc: number): Region {
    let m = this.#funcRegions.get(code);
    if (!m) {
      m = new Map();
      this.#funcRegions.set(code, m);
    }
    let r = m.get(pc);
    if (!r) {
      r = new Region('func', new Uint8Array(0), `the function at instruction ${pc}`);
      r.readable = false;
      r.writable = false;
      r.func = { code, pc };
      m.set(pc, r);
    }
    return r;
  }

  #stack(depth: number): Region {
    let r = this.#stacks[depth];
    if (!r) {
      r = new Region('stack', new Uint8Array(STACK_SIZE), `the stack of frame ${depth}`);
      r.bias = STACK_SIZE;
      this.#stacks[depth] = r;
    }
    r.bytes.fill(0);
    return r;
  }

  /**
   * The region an access of `size` bytes at (hi:lo)+off falls in, with the offset in `this.ao`;
   * traps when it is out of bounds, read-only or not memory at all.
   */
  access(hi: number, lo: number, off: number, size: number, write: boolean): Region {
    let a = lo + off;
    let h = hi;
    if (a < 0) {
      a += TWO32;
      h = (h - 1) >>> 0;
    } else if (a >= TWO32) {
      a -= TWO32;
      h = (h + 1) >>> 0;
    }
    const t = h - HI_BASE;
    if (t >= 0 && t < this.nregions) {
      const r = this.regions[t]!;
      const o = a - LO_BASE;
      if (o >= r.start && o + size <= r.end && (write ? r.writable : r.readable) && (r.elem === 0 || (o % r.elem) + size <= r.valueSize)) {
        this.ao = o;
        return r;
      }
      throw new Trap(this.#describeBad(r, o, size, write));
    }
    return this.#probe(h, a, size, write);
  }

  #describeBad(r: Region, o: number, size: number, write: boolean): string {
    const what = `${write ? 'write' : 'read'} of ${size} byte${size === 1 ? '' : 's'}`;
    if (r.elem && o >= r.start && o < r.end && (o % r.elem) + size > r.valueSize) {
      return `${what} at offset ${o % r.elem} is outside ${r.name} (${r.valueSize} bytes)`;
    }
    if (r.kind === 'map' || r.kind === 'func') return `${what} through a pointer to ${r.name}, which is not memory`;
    if (r.kind === 'ringbuf_sample' && r.sample?.done) return `${what} to a ring buffer record after it was submitted or discarded`;
    const inBounds = o >= r.start && o + size <= r.end;
    if (inBounds && write) {
      return r.kind === 'map_value' ? `${what} into ${r.name}, which programs may only read (BPF_F_RDONLY_PROG)` : `${what} into ${r.name}, which is read-only`;
    }
    if (inBounds) return `${what} from ${r.name}, which programs may not read`;
    const rel = o - r.bias;
    const lo = r.start - r.bias;
    const hi = r.end - r.bias;
    if (r.kind === 'stack') return `${what} at fp${rel < 0 ? '' : '+'}${rel} is outside ${r.name} (fp-${STACK_SIZE} to fp+0)`;
    if (r.kind === 'packet') return `${what} at packet offset ${rel} is outside the packet (offsets ${lo} to ${hi})`;
    return `${what} at offset ${rel} is outside ${r.name} (${hi - lo} bytes)`;
  }

  #probe(h: number, a: number, size: number, write: boolean): Region {
    const mem = this.env.memory;
    const address = (BigInt(h) << 32n) | BigInt(a);
    if (mem && !write) {
      const bytes = mem.read(address, size);
      if (bytes && bytes.length >= size) {
        const r = new Region('probe', bytes, 'probe memory');
        this.ao = 0;
        return r;
      }
    }
    if (h === 0 && a < 4096) return this.#nullTrap(a, size, write);
    throw new Trap(`${write ? 'write' : 'read'} of ${size} bytes at address 0x${address.toString(16)}, which is not a pointer to memory the program may use`);
  }

  #nullTrap(a: number, size: number, write: boolean): never {
    throw new Trap(`${write ? 'write' : 'read'} of ${size} bytes at address ${a}: a NULL pointer dereference (check the helper's result before using it)`);
  }

  /** A region the register points to (for helpers), with the offset in `this.ao`. */
  regionOf(reg: number): Region | undefined {
    const t = this.rh[reg]! - HI_BASE;
    if (t < 0 || t >= this.nregions) return undefined;
    this.ao = this.rl[reg]! - LO_BASE;
    return this.regions[t];
  }

  // ---- running ----------------------------------------------------------------------------------

  /** The return values the verifier allows at the main program's exit (cgroup_skb), and for what. */
  retRange: readonly [number, number] | undefined;
  retRangeOf = '';

  /**
   * Runs `code` from its first instruction with r1 pointing at the context. r0 is left in
   * rh[0]:rl[0].
   */
  run(code: Code, ctx: Region | undefined, ctxValue?: bigint): void {
    this.runId++;
    this.nregions = 0;
    this.#frames = [];
    this.#depth = 0;
    this.tailCalls = 0;
    this.mayGotoBudget = 1 << 23;
    this.#remaining = this.env.maxInstructions;
    this.rl.fill(0);
    this.rh.fill(0);
    this.ctx = ctx;
    if (ctx) this.setPtr(1, ctx, 0);
    else if (ctxValue !== undefined) this.#set64(1, ctxValue);
    this.setPtr(10, this.#stack(0), STACK_SIZE);
    if (this.packet) this.packet.sync();
    try {
      this.exec(code, 0);
    } catch (e) {
      if (e !== EXIT_ZERO) throw e;
      this.rl[0] = 0;
      this.rh[0] = 0;
    }
  }

  #set64(d: number, v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.rl[d] = Number(u & 0xffffffffn);
    this.rh[d] = Number(u >> 32n);
  }

  /** The address of offset `o` of region `r`, as a program would see it (tagging the region for this run). */
  addressOf(r: Region, o: number): bigint {
    const tag = r.run === this.runId ? r.tag : this.#tag(r);
    return (BigInt(HI_BASE + tag) << 32n) | BigInt(LO_BASE + o);
  }

  /** Register `i` as an unsigned 64-bit value. */
  reg64(i: number): bigint {
    return (BigInt(this.rh[i]!) << 32n) | BigInt(this.rl[i]!);
  }

  /** Calls a BPF function (a callback of bpf_loop and friends) with up to five arguments; r0 after. */
  callFunction(func: Region, args: readonly bigint[]): bigint {
    const rl = this.rl;
    const rh = this.rh;
    if (!func.func) throw new Trap('the callback argument is not a BPF function');
    if (this.#depth + 1 >= MAX_CALL_FRAMES) throw new Trap(`the call stack of ${MAX_CALL_FRAMES} frames is too deep`);
    const saved = new Uint32Array(10);
    for (let i = 0; i < 5; i++) {
      saved[i * 2] = rl[6 + i]!;
      saved[i * 2 + 1] = rh[6 + i]!;
    }
    this.#depth++;
    this.setPtr(10, this.#stack(this.#depth), STACK_SIZE);
    for (let i = 1; i <= 5; i++) this.#set64(i, args[i - 1] ?? 0n);
    try {
      this.exec(func.func.code, func.func.pc);
    } finally {
      this.#depth--;
      for (let i = 0; i < 5; i++) {
        rl[6 + i] = saved[i * 2]!;
        rh[6 + i] = saved[i * 2 + 1]!;
      }
    }
    return this.reg64(0);
  }

  /** Executes from `startPc` until the frame it started in exits. */
  exec(startCode: Code, startPc: number): void {
    const rl = this.rl;
    const rh = this.rh;
    const frames = this.#frames;
    const base = frames.length;
    let code = startCode;
    let { op, dst, src, off, imm } = code;
    let pc = startPc;
    let count = 0;
    const budget = this.#remaining;
    try {
      for (;;) {
        if (++count > budget) throw new Trap(`the run executed more than ${this.env.maxInstructions} instructions (an endless loop?)`);
        const c = op[pc]!;
        const d = dst[pc]!;
        // The 64-bit source operand of ALU64, JMP, ST and STX, as low and high words: a register (the
        // BPF_X bit of ALU64/JMP; STX's class bit), or imm sign-extended.
        const cls = c & 7;
        let sl = 0;
        let sh = 0;
        if (cls === 0x07 || cls === 0x05 || cls === 0x03 || cls === 0x02) {
          if (cls & 4 ? c & 8 : c & 1) {
            const s = src[pc]!;
            sl = rl[s]!;
            sh = rh[s]!;
          } else {
            const k = imm[pc]!;
            sl = k >>> 0;
            sh = k < 0 ? 0xffffffff : 0;
          }
        }
        switch (cls) {
          case 0x07: { // ALU64
            switch (c & 0xf0) {
              case 0x00: { // add
                const t = rl[d]! + sl;
                rh[d] = rh[d]! + sh + (t > 0xffffffff ? 1 : 0);
                rl[d] = t;
                break;
              }
              case 0x10: { // sub
                const t = rl[d]! - sl;
                rh[d] = rh[d]! - sh - (t < 0 ? 1 : 0);
                rl[d] = t;
                break;
              }
              case 0x40: rl[d] = rl[d]! | sl; rh[d] = rh[d]! | sh; break;
              case 0x50: rl[d] = rl[d]! & sl; rh[d] = rh[d]! & sh; break;
              case 0xa0: rl[d] = rl[d]! ^ sl; rh[d] = rh[d]! ^ sh; break;
              case 0xb0: // mov, movsx
                if (off[pc] === 0) {
                  rl[d] = sl;
                  rh[d] = sh;
                } else {
                  const bits = off[pc]!;
                  const v = bits === 8 ? (sl << 24) >> 24 : bits === 16 ? (sl << 16) >> 16 : sl | 0;
                  rl[d] = v;
                  rh[d] = v >> 31;
                }
                break;
              default:
                alu64(rl, rh, c & 0xf0, d, sh, sl, off[pc]!, imm[pc]!);
            }
            pc++;
            continue;
          }
          case 0x04: { // ALU (32-bit); results zero-extend
            const sl = c & 8 ? rl[src[pc]!]! : imm[pc]! >>> 0;
            alu32(rl, c & 0xf0, d, sl, off[pc]!, imm[pc]!, (c & 8) !== 0, rh);
            if (!((c === 0xd4 || c === 0xdc) && imm[pc] === 64)) rh[d] = 0; // le64/be64 keep (or swap in) the upper half
            pc++;
            continue;
          }
          case 0x05: // JMP
          case 0x06: { // JMP32
            const o = c & 0xf0;
            if (o === 0x00) { // ja
              pc += (c & 7) === 0x05 ? off[pc]! + 1 : imm[pc]! + 1;
              continue;
            }
            if (o === 0x80) { // call
              const s = src[pc]!;
              if (s === 1) {
                if (this.#depth + 1 >= MAX_CALL_FRAMES) throw new Trap(`the call stack of ${MAX_CALL_FRAMES} frames is too deep`);
                const saved = new Uint32Array(10);
                for (let i = 0; i < 5; i++) {
                  saved[i * 2] = rl[6 + i]!;
                  saved[i * 2 + 1] = rh[6 + i]!;
                }
                frames.push({ code, retPc: pc + 1, saved });
                this.#depth++;
                this.setPtr(10, this.#stack(this.#depth), STACK_SIZE);
                pc += imm[pc]! + 1;
                continue;
              }
              const id = imm[pc]!;
              const fn = this.helpers[id];
              if (!fn) {
                if (id === CORE_POISON_HELPER) {
                  throw new Trap('reached an instruction left by a failed CO-RE relocation (the kernel has no such type or field, and no bpf_core_*_exists() check kept the program off this path): the kernel\'s verifier refuses such a program');
                }
                throw new Trap(`helper ${helperName(id)} (#${id}) is not implemented by the bpfkit emulator`);
              }
              fn(this);
              if (this.tailTarget) {
                code = this.tailTarget;
                this.tailTarget = undefined;
                ({ op, dst, src, off, imm } = code);
                pc = 0;
                continue;
              }
              pc++;
              continue;
            }
            if (o === 0x90) { // exit
              if (frames.length === base) {
                if (this.retRange && this.#depth === 0) this.#checkReturn();
                return;
              }
              const f = frames.pop()!;
              for (let i = 0; i < 5; i++) {
                rl[6 + i] = f.saved[i * 2]!;
                rh[6 + i] = f.saved[i * 2 + 1]!;
              }
              this.#depth--;
              code = f.code;
              ({ op, dst, src, off, imm } = code);
              pc = f.retPc;
              continue;
            }
            if (o === 0xe0) { // may_goto: taken once its loop budget is spent
              if (this.mayGotoBudget > 0) this.mayGotoBudget--;
              else pc += off[pc]!;
              pc++;
              continue;
            }
            let taken: boolean;
            if ((c & 7) === 0x05) {
              taken = cond64(o, rh[d]!, rl[d]!, sh, sl);
            } else {
              taken = cond32(o, rl[d]!, c & 8 ? rl[src[pc]!]! : imm[pc]! >>> 0);
            }
            pc += taken ? off[pc]! + 1 : 1;
            continue;
          }
          case 0x01: { // LDX
            const s = src[pc]!;
            const size = SIZES[(c >> 3) & 3]!;
            const r = this.access(rh[s]!, rl[s]!, off[pc]!, size, false);
            const o = this.ao;
            if (r.load !== null && r.load(o, size, d)) {
              pc++;
              continue;
            }
            const b = r.bytes;
            if ((c & 0xe0) === 0x80) { // sign-extending
              const v = size === 1 ? (b[o]! << 24) >> 24 : size === 2 ? ((b[o]! | (b[o + 1]! << 8)) << 16) >> 16
                : b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
              rl[d] = v;
              rh[d] = v >> 31;
            } else if (size === 8) {
              rl[d] = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
              rh[d] = b[o + 4]! | (b[o + 5]! << 8) | (b[o + 6]! << 16) | (b[o + 7]! << 24);
            } else {
              rl[d] = size === 4 ? b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) : size === 2 ? b[o]! | (b[o + 1]! << 8) : b[o]!;
              rh[d] = 0;
            }
            pc++;
            continue;
          }
          case 0x02: // ST
          case 0x03: { // STX
            const size = SIZES[(c >> 3) & 3]!;
            if ((c & 0xe0) === 0xc0) {
              this.#atomic(d, src[pc]!, off[pc]!, imm[pc]!, size);
              pc++;
              continue;
            }
            const r = this.access(rh[d]!, rl[d]!, off[pc]!, size, true);
            const o = this.ao;
            if (r.store !== null) {
              const why = r.store(o, size);
              if (why) throw new Trap(why);
            }
            const lo = sl;
            const hi = sh;
            const b = r.bytes;
            b[o] = lo;
            if (size > 1) {
              b[o + 1] = lo >>> 8;
              if (size > 2) {
                b[o + 2] = lo >>> 16;
                b[o + 3] = lo >>> 24;
                if (size > 4) {
                  b[o + 4] = hi;
                  b[o + 5] = hi >>> 8;
                  b[o + 6] = hi >>> 16;
                  b[o + 7] = hi >>> 24;
                }
              }
            }
            pc++;
            continue;
          }
          case 0x00: { // LD
            if (c === 0x18) {
              if (src[pc] === 0) {
                rl[d] = imm[pc]!;
                rh[d] = imm[pc + 1]!;
              } else {
                this.#ldSpecial(code, pc, d);
              }
              pc += 2;
              continue;
            }
            this.#ldAbs(c, src[pc]!, imm[pc]!);
            pc++;
            continue;
          }
        }
      }
    } catch (e) {
      if (e instanceof Trap) throw this.#fault(code, pc, e.message);
      throw e;
    } finally {
      this.#remaining -= count;
      this.executed += count;
    }
  }

  /**
   * The verifier's check_return_code, at run time: a value outside the program type's range at the
   * main program's exit means the verifier would have refused the program.
   */
  #checkReturn(): void {
    const [lo, hi] = this.retRange!;
    const r0 = this.rh[0] ? -1 : this.rl[0]!;
    if (r0 < lo || r0 > hi) {
      const v = (BigInt(this.rh[0]!) << 32n) | BigInt(this.rl[0]!);
      throw new Trap(`the program returns ${BigInt.asIntN(64, v)}: the verifier refuses a ${this.retRangeOf} program that may return a value outside [${lo}, ${hi}] (it checks every exit at load)`);
    }
  }

  #fault(code: Code, pc: number, reason: string): EmulatorFault {
    const ins = readInsn(code.bytes, pc);
    const next = pc + 1 < code.n ? readInsn(code.bytes, pc + 1) : undefined;
    let func: string | undefined;
    let best = -1;
    for (const [start, name] of code.funcs) if (start <= pc && start > best) { best = start; func = name; }
    let source: string | undefined;
    best = -1;
    for (const [start, line] of code.lines) if (start <= pc && start > best) { best = start; source = line; }
    return new EmulatorFault(code.name, pc, disassemble(ins, next), reason, source, func);
  }

  #ldSpecial(code: Code, pc: number, d: number): void {
    const t = code.ld[pc];
    if (!t) throw new Trap('ld_imm64 with an unresolved reference');
    switch (t.kind) {
      case 'map':
        this.setPtr(d, this.mapRegion(t.map), 0);
        return;
      case 'value':
        this.setValuePtr(d, t.map.value(0), t.map, t.offset);
        return;
      case 'func':
        this.setPtr(d, this.funcRegion(code, t.pc), 0);
        return;
    }
  }

  /** Legacy packet loads (socket filters, tc): big-endian, from the start of the skb's data. */
  #ldAbs(c: number, s: number, k: number): void {
    const p = this.packet;
    if (!p || !this.isSkb) throw new Trap('BPF_LD_[ABS|IND] is only for socket filter and tc programs');
    const size = SIZES[(c >> 3) & 3]!;
    let at = k;
    if ((c & 0xe0) === 0x40) at = ((this.rl[s]! | 0) + k) | 0;
    if (at < 0 || at + size > p.length) throw EXIT_ZERO;
    const b = p.buf;
    const o = p.data + at;
    this.rl[0] = size === 4 ? ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) : size === 2 ? (b[o]! << 8) | b[o + 1]! : b[o]!;
    this.rh[0] = 0;
  }

  #atomic(d: number, s: number, offv: number, kind: number, size: number): void {
    const rl = this.rl;
    const rh = this.rh;
    if (kind === 0x100) { // load-acquire: dst = *(src + off)
      const r = this.access(rh[s]!, rl[s]!, offv, size, false);
      const o = this.ao;
      const b = r.bytes;
      rl[d] = size === 1 ? b[o]! : size === 2 ? b[o]! | (b[o + 1]! << 8) : b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
      rh[d] = size === 8 ? b[o + 4]! | (b[o + 5]! << 8) | (b[o + 6]! << 16) | (b[o + 7]! << 24) : 0;
      return;
    }
    const r = this.access(rh[d]!, rl[d]!, offv, size, true);
    const o = this.ao;
    const b = r.bytes;
    const oldLo = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
    const oldHi = size === 8 ? (b[o + 4]! | (b[o + 5]! << 8) | (b[o + 6]! << 16) | (b[o + 7]! << 24)) >>> 0 : 0;
    const sl = rl[s]!;
    const sh = size === 8 ? rh[s]! : 0;
    let nl = oldLo;
    let nh = oldHi;
    let fetchTo = -1;
    switch (kind) {
      case 0x110: // store-release: *(dst + off) = src
        if (size < 4) {
          b[o] = sl;
          if (size === 2) b[o + 1] = sl >>> 8;
          return;
        }
        nl = sl;
        nh = sh;
        break;
      case 0x00: case 0x01: {
        const t = oldLo + sl;
        nl = t >>> 0;
        nh = (oldHi + sh + (t > 0xffffffff ? 1 : 0)) >>> 0;
        if (kind & 1) fetchTo = s;
        break;
      }
      case 0x40: case 0x41: nl = (oldLo | sl) >>> 0; nh = (oldHi | sh) >>> 0; if (kind & 1) fetchTo = s; break;
      case 0x50: case 0x51: nl = (oldLo & sl) >>> 0; nh = (oldHi & sh) >>> 0; if (kind & 1) fetchTo = s; break;
      case 0xa0: case 0xa1: nl = (oldLo ^ sl) >>> 0; nh = (oldHi ^ sh) >>> 0; if (kind & 1) fetchTo = s; break;
      case 0xe1: nl = sl; nh = sh; fetchTo = s; break;
      case 0xf1: { // cmpxchg: compares with r0, r0 = old
        const eq = size === 8 ? rl[0] === oldLo && rh[0] === oldHi : rl[0] === oldLo;
        if (eq) {
          nl = sl;
          nh = sh;
        }
        fetchTo = 0;
        break;
      }
      default:
        throw new Trap(`unknown atomic operation 0x${kind.toString(16)}`);
    }
    b[o] = nl;
    b[o + 1] = nl >>> 8;
    b[o + 2] = nl >>> 16;
    b[o + 3] = nl >>> 24;
    if (size === 8) {
      b[o + 4] = nh;
      b[o + 5] = nh >>> 8;
      b[o + 6] = nh >>> 16;
      b[o + 7] = nh >>> 24;
    }
    if (fetchTo >= 0) {
      rl[fetchTo] = oldLo;
      rh[fetchTo] = oldHi;
    }
  }
}

/** Access sizes by the size field (W, H, B, DW). */
const SIZES = [4, 2, 1, 8] as const;

// ---- ALU ----------------------------------------------------------------------------------------

function toBig(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function fromBig(rl: Uint32Array, rh: Uint32Array, d: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  rl[d] = Number(u & 0xffffffffn);
  rh[d] = Number(u >> 32n);
}

/** The 64-bit operations not inlined in the interpreter loop. */
function alu64(rl: Uint32Array, rh: Uint32Array, op: number, d: number, sh: number, sl: number, offv: number, immv: number): void {
  const dl = rl[d]!;
  const dh = rh[d]!;
  switch (op) {
    case 0x20: { // mul: low 64 bits of the product
      const a0 = dl & 0xffff;
      const a1 = dl >>> 16;
      const b0 = sl & 0xffff;
      const b1 = sl >>> 16;
      const p00 = a0 * b0;
      const p01 = a0 * b1;
      const p10 = a1 * b0;
      const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
      const lo = ((mid & 0xffff) * 65536 + (p00 & 0xffff)) >>> 0;
      const hi = a1 * b1 + Math.floor(p01 / 65536) + Math.floor(p10 / 65536) + Math.floor(mid / 65536);
      rl[d] = lo;
      rh[d] = (hi + Math.imul(dh, sl) + Math.imul(dl, sh)) >>> 0;
      return;
    }
    case 0x30: // div
      if (sh === 0 && sl === 0) {
        rl[d] = 0;
        rh[d] = 0;
      } else if (offv === 0) {
        if (dh === 0 && sh === 0) {
          rl[d] = Math.floor(dl / sl);
        } else {
          fromBig(rl, rh, d, toBig(dh, dl) / toBig(sh, sl));
        }
      } else {
        fromBig(rl, rh, d, BigInt.asIntN(64, toBig(dh, dl)) / BigInt.asIntN(64, toBig(sh, sl)));
      }
      return;
    case 0x90: // mod; by zero leaves dst as it is
      if (sh === 0 && sl === 0) return;
      if (offv === 0) {
        if (dh === 0 && sh === 0) rl[d] = dl % sl;
        else fromBig(rl, rh, d, toBig(dh, dl) % toBig(sh, sl));
      } else {
        fromBig(rl, rh, d, BigInt.asIntN(64, toBig(dh, dl)) % BigInt.asIntN(64, toBig(sh, sl)));
      }
      return;
    case 0x60: { // lsh
      const n = sl & 63;
      if (n === 0) return;
      if (n < 32) {
        rh[d] = (dh << n) | (dl >>> (32 - n));
        rl[d] = dl << n;
      } else {
        rh[d] = dl << (n - 32);
        rl[d] = 0;
      }
      return;
    }
    case 0x70: { // rsh
      const n = sl & 63;
      if (n === 0) return;
      if (n < 32) {
        rl[d] = (dl >>> n) | (dh << (32 - n));
        rh[d] = dh >>> n;
      } else {
        rl[d] = dh >>> (n - 32);
        rh[d] = 0;
      }
      return;
    }
    case 0xc0: { // arsh
      const n = sl & 63;
      if (n === 0) return;
      if (n < 32) {
        rl[d] = (dl >>> n) | (dh << (32 - n));
        rh[d] = (dh | 0) >> n;
      } else {
        rl[d] = (dh | 0) >> (n - 32);
        rh[d] = (dh | 0) >> 31;
      }
      return;
    }
    case 0x80: { // neg
      rl[d] = -dl;
      rh[d] = -dh - (dl !== 0 ? 1 : 0);
      return;
    }
    case 0xd0: { // bswap16/32/64
      if (immv === 16) {
        rl[d] = ((dl & 0xff) << 8) | ((dl >>> 8) & 0xff);
        rh[d] = 0;
      } else if (immv === 32) {
        rl[d] = bswap32(dl);
        rh[d] = 0;
      } else {
        rl[d] = bswap32(dh);
        rh[d] = bswap32(dl);
      }
      return;
    }
  }
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** 32-bit operations; the caller zeroes the upper half (except for 64-bit byte swaps). */
function alu32(rl: Uint32Array, op: number, d: number, sl: number, offv: number, immv: number, x: boolean, rh: Uint32Array): void {
  const dl = rl[d]!;
  switch (op) {
    case 0x00: rl[d] = dl + sl; return;
    case 0x10: rl[d] = dl - sl; return;
    case 0x20: rl[d] = Math.imul(dl, sl); return;
    case 0x30:
      if (sl === 0) rl[d] = 0;
      else if (offv === 0) rl[d] = Math.floor(dl / sl);
      else {
        const a = dl | 0;
        const b = sl | 0;
        rl[d] = a === -2147483648 && b === -1 ? a : Math.trunc(a / b);
      }
      return;
    case 0x40: rl[d] = dl | sl; return;
    case 0x50: rl[d] = dl & sl; return;
    case 0x60: rl[d] = dl << (sl & 31); return;
    case 0x70: rl[d] = dl >>> (sl & 31); return;
    case 0x80: rl[d] = -dl; return;
    case 0x90:
      if (sl === 0) return;
      if (offv === 0) rl[d] = dl % sl;
      else {
        const b = sl | 0;
        rl[d] = b === -1 ? 0 : (dl | 0) % b;
      }
      return;
    case 0xa0: rl[d] = dl ^ sl; return;
    case 0xb0:
      rl[d] = offv === 8 ? (sl << 24) >> 24 : offv === 16 ? (sl << 16) >> 16 : sl;
      return;
    case 0xc0: rl[d] = (dl | 0) >> (sl & 31); return;
    case 0xd0: { // le (K) / be (X): on a little-endian host "to le" only truncates
      if (!x) {
        if (immv === 16) rl[d] = dl & 0xffff;
        return; // 32 and 64: value unchanged (the caller keeps the upper half for 64)
      }
      if (immv === 16) rl[d] = ((dl & 0xff) << 8) | ((dl >>> 8) & 0xff);
      else if (immv === 32) rl[d] = bswap32(dl);
      else {
        const hi = rh[d]!;
        rh[d] = bswap32(dl);
        rl[d] = bswap32(hi);
      }
      return;
    }
  }
}

function cond64(op: number, dh: number, dl: number, sh: number, sl: number): boolean {
  switch (op) {
    case 0x10: return dl === sl && dh === sh;
    case 0x50: return dl !== sl || dh !== sh;
    case 0x20: return dh > sh || (dh === sh && dl > sl);
    case 0x30: return dh > sh || (dh === sh && dl >= sl);
    case 0xa0: return dh < sh || (dh === sh && dl < sl);
    case 0xb0: return dh < sh || (dh === sh && dl <= sl);
    case 0x40: return (dl & sl) !== 0 || (dh & sh) !== 0;
    case 0x60: return (dh | 0) > (sh | 0) || (dh === sh && dl > sl);
    case 0x70: return (dh | 0) > (sh | 0) || (dh === sh && dl >= sl);
    case 0xc0: return (dh | 0) < (sh | 0) || (dh === sh && dl < sl);
    case 0xd0: return (dh | 0) < (sh | 0) || (dh === sh && dl <= sl);
    default: throw new Trap(`unknown jump condition 0x${op.toString(16)}`);
  }
}

function cond32(op: number, a: number, b: number): boolean {
  switch (op) {
    case 0x10: return a === b;
    case 0x50: return a !== b;
    case 0x20: return a > b;
    case 0x30: return a >= b;
    case 0xa0: return a < b;
    case 0xb0: return a <= b;
    case 0x40: return (a & b) !== 0;
    case 0x60: return (a | 0) > (b | 0);
    case 0x70: return (a | 0) >= (b | 0);
    case 0xc0: return (a | 0) < (b | 0);
    case 0xd0: return (a | 0) <= (b | 0);
    default: throw new Trap(`unknown jump condition 0x${op.toString(16)}`);
  }
}
