/**
 * Fuzz target for everything that takes an object or a BTF blob: real inputs (the test objects,
 * the tools' objects, their `.BTF` sections, the BTF reproducers) are mutated by a seeded mutator
 * that knows where BTF records sit, and each mutant goes through every public entry point:
 * Btf.parse, typeName, codecFor + decode/encode, dumpC, CollectionSpec, disassembly, inspect's
 * description and Collection.load under the emulated kernel. A finding is an error that is not a
 * BpfkitError, output or memory out of proportion to the input, or (for the on-demand runner) an
 * input that takes longer than the time limit. Same seed, same inputs.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { Btf } from '../../src/btf/btf.js';
import { codecFor } from '../../src/btf/codec.js';
import { dumpC } from '../../src/btf/dump-c.js';
import { disassembleSpec } from '../../src/asm/disasm.js';
import { describeObject } from '../../src/cli/inspect.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { Collection } from '../../src/load/collection.js';
import { ElfFile } from '../../src/elf/reader.js';
import { BpfkitError } from '../../src/errors.js';
import type { EmulatedKernel } from '../../src/testing/index.js';

export interface Seed {
  readonly name: string;
  readonly kind: 'object' | 'btf';
  readonly bytes: Uint8Array;
  /** Byte range mutations favour: the `.BTF` section of an object, the type section of a blob. */
  readonly focus: readonly [number, number];
  /** Byte offsets of the btf_type records in `bytes` (for field-aware mutations). */
  readonly records: readonly number[];
}

export interface Finding {
  readonly seed: string;
  readonly entry: string;
  readonly problem: string;
  readonly input: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Corpus

/** The inputs under `root`: built test objects, the tools' objects, their BTF, the reproducers. */
export function loadCorpus(root: string): Seed[] {
  const seeds: Seed[] = [];
  const objects: string[] = [];
  const build = join(root, 'test', 'bpf', 'build');
  if (existsSync(build)) for (const f of readdirSync(build).sort()) if (f.endsWith('.bpf.o')) objects.push(join(build, f));
  for (const tool of ['execsnoop', 'pktcount', 'readline']) {
    const f = join(root, 'src', 'tools', tool, 'gen', `${tool}.bpf.o`);
    if (existsSync(f)) objects.push(f);
  }
  for (const f of objects) {
    const bytes = new Uint8Array(readFileSync(f));
    const sec = ElfFile.parse(bytes).section('.BTF');
    const focus: [number, number] = sec ? [sec.offset, sec.offset + sec.size] : [0, bytes.length];
    const records = sec ? recordOffsets(bytes.subarray(sec.offset, sec.offset + sec.size)).map((r) => r + sec.offset) : [];
    seeds.push({ name: f.slice(root.length + 1), kind: 'object', bytes, focus, records });
    if (sec) {
      const blob = bytes.slice(sec.offset, sec.offset + sec.size);
      seeds.push(btfSeed(`${f.slice(root.length + 1)}#.BTF`, blob));
    }
  }
  const fixtures = join(root, 'test', 'fixtures', 'btf');
  if (existsSync(fixtures)) {
    for (const f of readdirSync(fixtures).sort()) {
      const bytes = new Uint8Array(readFileSync(join(fixtures, f)));
      // fuzz-14 is split BTF over a kernel's vmlinux: it parses over whatever vmlinux this is.
      if (f.startsWith('fuzz-14')) continue;
      if (bytes[0] === 0x7f) seeds.push({ name: `fixtures/${f}`, kind: 'object', bytes, focus: [0, bytes.length], records: [] });
      else seeds.push(btfSeed(`fixtures/${f}`, bytes));
    }
  }
  return seeds;
}

function btfSeed(name: string, bytes: Uint8Array): Seed {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let focus: [number, number] = [0, bytes.length];
  if (bytes.length >= 24) {
    const start = dv.getUint32(4, true) + dv.getUint32(8, true);
    focus = [Math.min(start, bytes.length), Math.min(start + dv.getUint32(12, true), bytes.length)];
  }
  return { name, kind: 'btf', bytes, focus, records: recordOffsets(bytes) };
}

/** Where each btf_type record of a little-endian blob starts; stops at the first inconsistency. */
function recordOffsets(blob: Uint8Array): number[] {
  const out: number[] = [];
  if (blob.length < 24) return out;
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const start = dv.getUint32(4, true) + dv.getUint32(8, true);
  const end = Math.min(start + dv.getUint32(12, true), blob.length);
  for (let at = start; at + 12 <= end && out.length < 100_000;) {
    out.push(at);
    const info = dv.getUint32(at + 4, true);
    const vlen = info & 0xffff;
    at += 12;
    switch ((info >>> 24) & 0x1f) {
      case 1: case 14: case 17: at += 4; break;
      case 3: at += 12; break;
      case 4: case 5: case 15: case 19: at += 12 * vlen; break;
      case 6: case 13: at += 8 * vlen; break;
      default: break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutator

/** xorshift32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = (seed >>> 0) || 0x9e3779b9;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.#s = x;
    return x;
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

const INTERESTING = [0, 1, 2, 3, 4, 7, 8, 16, 24, 32, 64, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x00ffffff,
  0x01000000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x40000000, 0x0fffffff];

/** One to four mutations of a copy of `seed.bytes`. */
export function mutate(seed: Seed, rng: Rng): Uint8Array {
  let out: Uint8Array = new Uint8Array(seed.bytes);
  const n = 1 + rng.below(4);
  for (let k = 0; k < n; k++) out = mutateOnce(out, seed, rng);
  return out;
}

function mutateOnce(buf: Uint8Array, seed: Seed, rng: Rng): Uint8Array {
  if (buf.length === 0) return buf;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const [lo, hi] = rng.below(10) < 8 && seed.focus[1] > seed.focus[0] ? seed.focus : [0, buf.length];
  const pos = (align: number): number => {
    const span = Math.max(1, Math.min(hi, buf.length) - lo - align + 1);
    return Math.min(buf.length - align, lo + rng.below(span)) & ~(align - 1);
  };
  const value = (): number => {
    const r = rng.below(4);
    if (r === 0) return rng.pick(INTERESTING);
    if (r === 1) return rng.below(Math.max(4, seed.records.length + 4)); // a type id, valid or just past the end
    if (r === 2) return rng.next();
    return rng.below(256);
  };
  switch (rng.below(9)) {
    case 0: { const p = pos(1); buf[p] = buf[p]! ^ (1 << rng.below(8)); return buf; }
    case 1: { buf[pos(1)] = rng.below(256); return buf; }
    case 2: { if (buf.length >= 4) dv.setUint32(pos(4), value(), true); return buf; }
    case 3: {
      if (buf.length < 4) return buf;
      const p = pos(4);
      dv.setUint32(p, (dv.getUint32(p, true) + rng.below(33) - 16) >>> 0, true);
      return buf;
    }
    case 4: return buf.slice(0, rng.below(buf.length));
    case 5: {
      const len = 1 + rng.below(32);
      const from = rng.below(buf.length);
      const to = pos(1);
      buf.copyWithin(to, from, Math.min(buf.length, from + len));
      return buf;
    }
    default: {
      // A field of one type record: name, info (kind, vlen, kind_flag), size/type, or what follows.
      if (seed.records.length === 0) return mutateOnce(buf, { ...seed, records: [0] }, rng);
      const at = rng.pick(seed.records) + 4 * rng.below(6);
      if (at + 4 > buf.length) return buf;
      const field = (at - rng.pick(seed.records)) >>> 2;
      if (field === 1 && rng.below(2) === 0) {
        // Keep the info word plausible: a kind from 1 to 19, a small vlen, maybe kind_flag.
        const kind = 1 + rng.below(19);
        dv.setUint32(at, ((rng.below(4) === 0 ? 1 << 31 : 0) | (kind << 24) | rng.below(4)) >>> 0, true);
      } else {
        dv.setUint32(at, value(), true);
      }
      return buf;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

export interface FuzzOptions {
  /** The emulated kernel Collection.load runs against (installed by the caller). */
  readonly kernel: EmulatedKernel;
  /** Inputs slower than this are findings (ms); undefined: time is not judged. */
  readonly timeLimitMs?: number;
  /** Also load objects with __ksym externs (slow: each load reads /proc/kallsyms). */
  readonly loadKsyms?: boolean;
  /** Load objects with CO-RE relocations (default true; the first one parses vmlinux). */
  readonly loadCore?: boolean;
  /** Type ids per blob whose names and codecs are tried (default 400). */
  readonly typesPerInput?: number;
  /** Base BTF for split blobs (e.g. this machine's vmlinux), if any. */
  readonly base?: Btf;
}

/** Bytes of output or retained memory an input of `n` bytes may cause. */
function outputBound(n: number): number {
  return (1 << 20) + 200 * n;
}
function memoryBound(n: number): number {
  return 64 * (1 << 20) + 256 * n;
}

/** Runs `input` (a mutant of `seed`) through every entry point; returns what went wrong. */
export async function fuzzOne(seed: Seed, input: Uint8Array, options: FuzzOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const problem = (entry: string, p: string): void => void findings.push({ seed: seed.name, entry, problem: p, input });
  const call = <T>(entry: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof BpfkitError)) problem(entry, `untyped error: ${(e as Error)?.stack ?? String(e)}`);
      return undefined;
    }
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const ab0 = externalBytes();
  const rss0 = process.resourceUsage().maxRSS * 1024;
  let btf: Btf | undefined;
  if (seed.kind === 'btf') {
    btf = call('Btf.parse', () => Btf.parse(input));
  } else {
    const spec = call('CollectionSpec.fromBuffer', () => CollectionSpec.fromBuffer(input));
    if (spec) {
      btf = spec.btf;
      const text = call('inspect', () => describeObject(spec, 'fuzz.o') + describeObject(spec, 'fuzz.o', true));
      if (text !== undefined && text.length > outputBound(input.length)) problem('inspect', `${text.length} characters of output`);
      for (const p of spec.programs.values()) {
        const asm = call(`disassemble ${p.name}`, () => disassembleSpec(p));
        if (asm !== undefined && asm.length > outputBound(input.length)) problem('disassemble', `${asm.length} characters`);
      }
      for (const m of spec.maps.values()) {
        if (!m.btf) continue;
        for (const id of [m.keyTypeId, m.valueTypeId]) if (id) exerciseType(m.btf, id, call, problem);
      }
      // Objects with __ksym or __kconfig externs read /proc/kallsyms (megabytes) on every load:
      // a second per input on a busy machine. They are loaded only when asked for.
      const ksyms = spec.btf !== undefined && call('byName', () =>
        spec.btf!.byName('.ksyms', 'datasec').length + spec.btf!.byName('.kconfig', 'datasec').length > 0);
      const core = [...spec.programs.values()].some((p) => p.coreRelos.length > 0);
      if ((!ksyms || options.loadKsyms) && (!core || options.loadCore !== false)) await loadEmulated(spec, call, options.kernel, problem);
    }
  }
  const types = options.typesPerInput ?? TYPES_PER_INPUT;
  if (btf) exerciseBtf(btf, call, problem, input.length, types);
  if (seed.kind === 'btf' && options.base) {
    const split = call('Btf.parse split', () => Btf.parse(input, { base: options.base }));
    if (split) exerciseBtf(split, call, problem, input.length, types);
  }
  // Time is judged on this process's CPU time: wall time on a shared, niced machine mostly
  // measures the other processes (the slowest wall-time findings of the last long run replayed
  // in a fraction of their logged time).
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (options.timeLimitMs !== undefined && cpuMs > options.timeLimitMs) {
    problem('time', `${Math.round(cpuMs)} ms of CPU (${Math.round(performance.now() - t0)} ms wall)`);
  }
  const retained = externalBytes() - ab0;
  if (retained > memoryBound(input.length)) problem('memory', `${retained} bytes of ArrayBuffers/external memory retained`);
  const rssGrowth = process.resourceUsage().maxRSS * 1024 - rss0;
  if (rssGrowth > memoryBound(input.length)) problem('memory', `peak RSS grew by ${rssGrowth} bytes`);
  return findings;
}

/**
 * Memory held outside the JS heap (ArrayBuffers and other external allocations): a superset of
 * `process.memoryUsage().arrayBuffers` at a twentieth of its cost (memoryUsage also reads
 * /proc/self/status and every heap space: 8.5% of the harness's time in a profile).
 */
function externalBytes(): number {
  return getHeapStatistics().external_memory;
}

type Call = <T>(entry: string, fn: () => T) => T | undefined;
type Problem = (entry: string, p: string) => void;

/** Largest value a codec is asked to decode and encode. */
const DECODE_LIMIT = 1 << 16;

/** Most type ids of one blob whose names and codecs are tried (a fuzzed blob may declare many). */
const TYPES_PER_INPUT = 400;

function exerciseBtf(btf: Btf, call: Call, problem: Problem, inputLength: number, types: number): void {
  const first = btf.base?.length ?? 1;
  const last = Math.min(btf.length, first + types);
  for (let id = first; id < last; id++) {
    const name = call(`typeName(${id})`, () => btf.typeName(id));
    if (name !== undefined && name.length > 64 * 1024) problem(`typeName(${id})`, `${name.length} characters`);
    exerciseType(btf, id, call, problem);
  }
  const c = call('dumpC', () => dumpC(btf));
  if (c !== undefined && c.length > outputBound(inputLength)) problem('dumpC', `${c.length} characters from ${inputLength} bytes`);
  call('types', () => btf.types.length);
}

function exerciseType(btf: Btf, id: number, call: Call, problem: Problem): void {
  const codec = call(`codecFor(${id})`, () => codecFor(btf, id));
  if (!codec) return;
  // Larger values are not decoded: the caller would have to hand over that many bytes first, and
  // decoding takes time in proportion to them (millions of array elements take seconds).
  if (codec.size > DECODE_LIMIT) return;
  const bytes = new Uint8Array(codec.size).fill(0xa5);
  const value = call(`decode(${id})`, () => codec.decode(bytes));
  if (value === undefined) return;
  const again = call(`encode(${id})`, () => codec.encode(value as never));
  if (again !== undefined && again.length !== codec.size) problem(`encode(${id})`, `${again.length} bytes for a ${codec.size}-byte type`);
}

async function loadEmulated(spec: CollectionSpec, call: Call, kernel: EmulatedKernel, problem: Problem): Promise<void> {
  let coll: Collection | undefined;
  try {
    coll = await Collection.load(spec);
  } catch (e) {
    if (!(e instanceof BpfkitError)) problem('Collection.load', `untyped error: ${(e as Error)?.stack ?? String(e)}`);
  } finally {
    call('Collection.close', () => coll?.close());
  }
  const left = kernel.openFds();
  if (left.length > 0) {
    problem('Collection.load', `${left.length} descriptors left open`);
    for (const fd of left) call('close', () => kernel.close(fd));
  }
}

/** The generator for run `run` of a campaign seeded `seed`: runs are independent, so a campaign
 * can be resumed at any run or split into ranges that yield exactly the inputs of one long run. */
export function runRng(seed: number, run: number): Rng {
  // splitmix32-style mix of (seed, run): neighbouring runs get unrelated streams.
  let x = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(run + 1, 0x85ebca77)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return new Rng((x ^ (x >>> 16)) >>> 0);
}

/** Input of run `run`: the seeds as they are first, then mutants, round-robin over the corpus. */
export function inputFor(corpus: readonly Seed[], seed: number, run: number): { seed: Seed; input: Uint8Array } {
  const s = corpus[run % corpus.length]!;
  return { seed: s, input: run < corpus.length ? new Uint8Array(s.bytes) : mutate(s, runRng(seed, run)) };
}

/**
 * Runs `runs` inputs starting at run `start` (see inputFor); calls `onFinding` for each finding,
 * `onRun` before each input (a watchdog's heartbeat) and `onProgress` every 1,000 runs.
 */
export async function fuzz(corpus: readonly Seed[], runs: number, seed: number, options: FuzzOptions,
  onFinding: (f: Finding, run: number) => void, onProgress?: (run: number) => void,
  start = 0, onRun?: (run: number) => void): Promise<number> {
  let found = 0;
  for (let run = start; run < start + runs; run++) {
    onRun?.(run);
    const { seed: s, input } = inputFor(corpus, seed, run);
    for (const f of await fuzzOne(s, input, options)) {
      found++;
      onFinding(f, run);
    }
    if (onProgress && run % 1000 === 999) onProgress(run + 1);
  }
  return found;
}
