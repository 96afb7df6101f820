/**
 * CollectionSpec from the built test objects, without a kernel: the maps, programs, license and
 * variables each object declares (as test/bpf/README.md lists them), and malformed input —
 * truncated copies, flipped bytes, files that are not ELF or not BPF — which must always end in
 * an ElfError, BtfError or SpecError with a readable message, never a RangeError or TypeError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BpfkitError, BtfError, CollectionSpec, ElfError, InvalidArgumentError, SpecError, type MapSpec,
} from '../../src/index.js';
import { ROOT, obj, objBytes } from '../helpers/index.js';

const OBJECTS = ['globals', 'legacy_maps', 'maps', 'packet_count', 'progtypes', 'reject', 'ringbuf', 'subprog', 'subprog_same_section'];

function spec(name: string): CollectionSpec {
  return CollectionSpec.fromBuffer(objBytes(name));
}

function map(s: CollectionSpec, name: string): MapSpec {
  const m = s.maps.get(name);
  assert.ok(m, `map ${name} (have: ${[...s.maps.keys()].join(', ')})`);
  return m;
}

/** [type, keySize, valueSize, maxEntries, flags] of a map spec. */
function shape(m: MapSpec): [string, number, number, number, number] {
  return [m.type, m.keySize, m.valueSize, m.maxEntries, m.flags];
}

// --- what the objects declare ------------------------------------------------------------------

test('maps.bpf.o: every BTF-defined map with its type, sizes, max_entries and flags', () => {
  const s = spec('maps');
  const expected: Record<string, [string, number, number, number, number]> = {
    hash_map: ['hash', 4, 8, 64, 0],
    array_map: ['array', 4, 8, 8, 0],
    percpu_hash: ['percpu_hash', 4, 8, 16, 0],
    percpu_array: ['percpu_array', 4, 8, 4, 0],
    lru_hash: ['lru_hash', 4, 8, 4, 0],
    lru_percpu_hash: ['lru_percpu_hash', 4, 8, 4, 0],
    lpm_trie: ['lpm_trie', 8, 4, 16, 1],
    queue: ['queue', 0, 4, 8, 0],
    stack: ['stack', 0, 4, 8, 0],
    ringbuf: ['ringbuf', 0, 0, 16384, 0],
    perf_array: ['perf_event_array', 4, 4, 0, 0],
    prog_array: ['prog_array', 4, 4, 4, 0],
    jmp_table: ['prog_array', 4, 4, 2, 0],
    inner_map_a: ['array', 4, 4, 1, 0],
    inner_map_b: ['array', 4, 4, 1, 0],
    array_of_maps: ['array_of_maps', 4, 4, 2, 0],
    hash_of_maps: ['hash_of_maps', 4, 4, 4, 0],
    rich_map: ['hash', 4, 64, 8, 0],
  };
  assert.deepEqual([...s.maps.keys()].sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const m = map(s, name);
    assert.deepEqual(shape(m), want, name);
    assert.equal(m.name, name);
    assert.equal(m.section, '.maps');
    assert.equal(m.pinning, 'none');
    assert.equal(m.data, undefined);
    assert.equal(m.freeze, false);
  }
  // Key and value types from BTF where the kernel accepts them, none where it does not.
  assert.equal(s.btf!.typeName(map(s, 'hash_map').keyTypeId), '__u32');
  assert.equal(s.btf!.typeName(map(s, 'hash_map').valueTypeId), '__u64');
  assert.equal(s.btf!.typeName(map(s, 'rich_map').valueTypeId), 'struct rich_value');
  assert.equal(s.btf!.sizeof(map(s, 'lpm_trie').keyTypeId), 8);
  assert.equal(map(s, 'queue').keyTypeId, 0);
  for (const name of ['ringbuf', 'perf_array', 'jmp_table', 'array_of_maps', 'hash_of_maps']) {
    assert.equal(map(s, name).keyTypeId, 0, `${name} key type`);
    assert.equal(map(s, name).valueTypeId, 0, `${name} value type`);
  }
});

test('maps.bpf.o: inner map templates and statically initialised slots', () => {
  const s = spec('maps');
  for (const outer of ['array_of_maps', 'hash_of_maps']) {
    const inner = map(s, outer).innerMap;
    assert.ok(inner, `${outer} has an inner map template`);
    assert.deepEqual(shape(inner), ['array', 4, 4, 1, 0], `${outer}'s inner map`);
    assert.equal(inner.innerMap, undefined);
  }
  assert.deepEqual(map(s, 'array_of_maps').contents, [{ index: 0, target: 'inner_map_a' }]);
  assert.deepEqual(map(s, 'jmp_table').contents, [{ index: 0, target: 'xdp_tail_target' }]);
  assert.deepEqual(map(s, 'hash_of_maps').contents, []);
  assert.deepEqual(map(s, 'prog_array').contents, []);
  for (const m of s.maps.values()) {
    if (!['array_of_maps', 'hash_of_maps'].includes(m.name)) assert.equal(m.innerMap, undefined, m.name);
  }
  assert.deepEqual([...s.programs.keys()].sort(), ['xdp_maps', 'xdp_tail_target']);
  assert.equal(s.license, 'Dual BSD/GPL');
  assert.equal(s.kernelVersion, 0);
});

test('globals.bpf.o: one array map per data section, with its initial bytes and flags', () => {
  const s = spec('globals');
  const expected: Record<string, { size: number; flags: number; freeze: boolean }> = {
    '.rodata': { size: 18, flags: 0x480, freeze: true },
    '.data': { size: 20, flags: 0x400, freeze: false },
    '.bss': { size: 32, flags: 0x400, freeze: false },
    '.data.custom': { size: 4, flags: 0x400, freeze: false },
    '.rodata.custom': { size: 4, flags: 0x480, freeze: true },
  };
  assert.deepEqual([...s.maps.keys()].sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const m = map(s, name);
    assert.deepEqual(shape(m), ['array', 4, want.size, 1, want.flags], name);
    assert.equal(m.freeze, want.freeze, `${name} freeze`);
    assert.equal(m.section, name);
    assert.ok(m.data, `${name} has initial data`);
    assert.equal(m.data.length, want.size);
  }
  const u32s = (b: Uint8Array) => [...new Uint32Array(new Uint8Array(b).buffer)];
  assert.deepEqual(u32s(map(s, '.data').data!), [100, 1, 2, 3, 4]);
  assert.deepEqual([...map(s, '.bss').data!], new Array(32).fill(0));
  assert.deepEqual(u32s(map(s, '.data.custom').data!), [10000]);
  assert.deepEqual(u32s(map(s, '.rodata.custom').data!), [1000000]);
  const ro = map(s, '.rodata').data!;
  assert.deepEqual(u32s(ro.subarray(0, 4)), [3]);
  assert.equal(Buffer.from(ro.subarray(4)).toString('latin1'), 'hello, bpfkit\0');
  assert.equal(s.license, 'Dual BSD/GPL');
  assert.deepEqual([...s.programs.keys()], ['xdp_globals']);
});

test('globals.bpf.o: variables with their section, offset, size, type and initial value', () => {
  const s = spec('globals');
  const expected: Record<string, { map: string; offset: number; size: number; value: unknown; type?: string }> = {
    rodata_factor: { map: '.rodata', offset: 0, size: 4, value: 3 },
    rodata_greeting: { map: '.rodata', offset: 4, size: 14, value: new Uint8Array(Buffer.from('hello, bpfkit\0', 'latin1')) },
    data_value: { map: '.data', offset: 0, size: 4, value: 100, type: '__u32' },
    data_array: { map: '.data', offset: 4, size: 16, value: [1, 2, 3, 4], type: '__u32[4]' },
    bss_runs: { map: '.bss', offset: 0, size: 8, value: 0n, type: '__u64' },
    bss_last_input: { map: '.bss', offset: 8, size: 4, value: 0 },
    bss_last_result: { map: '.bss', offset: 12, size: 4, value: 0 },
    bss_greeting: { map: '.bss', offset: 16, size: 16, value: new Uint8Array(16), type: 'char[16]' },
    custom_data_value: { map: '.data.custom', offset: 0, size: 4, value: 10000 },
    custom_ro_value: { map: '.rodata.custom', offset: 0, size: 4, value: 1000000 },
  };
  assert.deepEqual([...s.variables.keys()].sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const v = s.variables.get(name)!;
    assert.equal(v.name, name);
    assert.equal(v.mapName, want.map, `${name} map`);
    assert.equal(v.offset, want.offset, `${name} offset`);
    assert.equal(v.size, want.size, `${name} size`);
    assert.equal(v.constant, want.map.startsWith('.rodata'), `${name} constant`);
    assert.deepEqual(v.get(), want.value, `${name} value`);
    if (want.type) assert.equal(v.typeName, want.type, `${name} type`);
  }
  assert.match(s.variables.get('rodata_factor')!.typeName, /__u32$/);
});

test('globals.bpf.o: setting a variable writes the map\'s data, checked against its type; copies are independent', () => {
  const s = spec('globals');
  const copy = s.copy();
  copy.variables.get('rodata_factor')!.set(5);
  copy.variables.get('data_array')!.set([9, 8, 7, 6]);
  assert.deepEqual([...copy.maps.get('.rodata')!.data!.subarray(0, 4)], [5, 0, 0, 0]);
  assert.deepEqual([...new Uint32Array(new Uint8Array(copy.maps.get('.data')!.data!).buffer)], [100, 9, 8, 7, 6]);
  // The original spec (and the object's bytes) are untouched.
  assert.equal(s.variables.get('rodata_factor')!.get(), 3);
  assert.deepEqual(s.variables.get('data_array')!.get(), [1, 2, 3, 4]);
  assert.equal(spec('globals').variables.get('rodata_factor')!.get(), 3);
  // Two specs parsed from one buffer do not share data either.
  const bytes = objBytes('globals');
  const a = CollectionSpec.fromBuffer(bytes);
  const b = CollectionSpec.fromBuffer(bytes);
  a.variables.get('data_value')!.set(1);
  assert.equal(b.variables.get('data_value')!.get(), 100);

  for (const bad of [2 ** 32, -1, 1.5, 'three']) {
    assert.throws(() => s.variables.get('rodata_factor')!.set(bad), InvalidArgumentError, String(bad));
  }
  assert.equal(s.variables.get('rodata_factor')!.get(), 3);
});

test('progtypes.bpf.o: section names, program types, attach types and autoload', () => {
  const s = spec('progtypes');
  const expected: [name: string, section: string, type: string, attachType: string | undefined, target: string][] = [
    ['xdp_prog', 'xdp', 'xdp', 'xdp', ''],
    ['tc_prog', 'tc', 'sched_cls', undefined, ''],
    ['classifier_prog', 'classifier', 'sched_cls', undefined, ''],
    ['socket_filter', 'socket', 'socket_filter', undefined, ''],
    ['tracepoint_execve', 'tracepoint/syscalls/sys_enter_execve', 'tracepoint', undefined, 'syscalls/sys_enter_execve'],
    ['raw_tp_sys_enter', 'raw_tracepoint/sys_enter', 'raw_tracepoint', undefined, 'sys_enter'],
    ['tp_btf_exec', 'tp_btf/sched_process_exec', 'tracing', 'trace_raw_tp', 'sched_process_exec'],
    ['kprobe_open', 'kprobe/do_sys_open', 'kprobe', undefined, 'do_sys_open'],
    ['kretprobe_open', 'kretprobe/do_sys_open', 'kprobe', undefined, 'do_sys_open'],
    ['uprobe_prog', 'uprobe', 'kprobe', undefined, ''],
    ['cgroup_ingress', 'cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress', ''],
    ['cgroup_egress', 'cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress', ''],
    ['perf_event_prog', 'perf_event', 'perf_event', undefined, ''],
    ['xdp_optional', '?xdp', 'xdp', 'xdp', ''],
  ];
  assert.deepEqual([...s.programs.keys()].sort(), expected.map((e) => e[0]).sort());
  for (const [name, section, type, attachType, target] of expected) {
    const p = s.programs.get(name)!;
    assert.equal(p.name, name);
    assert.equal(p.sectionName, section, `${name} section`);
    assert.equal(p.type, type, `${name} type`);
    assert.equal(p.attachType, attachType, `${name} attach type`);
    assert.equal(p.attachTarget, target, `${name} target`);
    assert.equal(p.autoload, name !== 'xdp_optional', `${name} autoload`);
    assert.equal(p.license, 'GPL');
    assert.ok(p.instructions.length > 0 && p.instructions.length % 8 === 0);
    assert.deepEqual(p.references.map((r) => r.map), ['hits'], `${name} uses the hits map`);
  }
  assert.equal(s.license, 'GPL');
  assert.deepEqual(shape(map(s, 'hits')), ['array', 4, 8, 16, 0]);
});

test('subprog objects: .text functions are linked into programs, not programs themselves', () => {
  const s = spec('subprog');
  assert.deepEqual([...s.programs.keys()].sort(), ['tc_subprog', 'xdp_subprog']);
  const xdp = s.programs.get('xdp_subprog')!;
  assert.deepEqual(xdp.functions.map(([, n]) => n).sort(), ['add_seven', 'chain_a', 'chain_b', 'chain_c', 'global_scale', 'xdp_subprog']);
  assert.equal(xdp.functions[0]![1], 'xdp_subprog');
  assert.equal(xdp.functions[0]![0], 0);
  assert.deepEqual(s.programs.get('tc_subprog')!.functions.map(([, n]) => n), ['tc_subprog', 'global_scale']);
  assert.equal(s.programs.get('tc_subprog')!.type, 'sched_cls');
  assert.equal(s.maps.size, 0);
  // One func_info record per linked function.
  assert.equal(xdp.funcInfo.length, 6);

  const same = spec('subprog_same_section');
  assert.deepEqual([...same.programs.keys()].sort(), ['read_x_plus_1000', 'xdp_same_section']);
  assert.deepEqual(same.programs.get('xdp_same_section')!.functions.map(([, n]) => n), ['xdp_same_section', 'read_x_plus_1000']);
  assert.equal(same.programs.get('xdp_same_section')!.instructions.length, 12 * 8);
});

test('legacy_maps, packet_count, ringbuf and reject objects', () => {
  const legacy = spec('legacy_maps');
  assert.deepEqual(shape(map(legacy, 'legacy_counter')), ['array', 4, 8, 1, 0]);
  assert.deepEqual(shape(map(legacy, 'legacy_hash')), ['hash', 4, 4, 16, 1]);
  assert.equal(map(legacy, 'legacy_hash').section, 'maps');
  assert.equal(legacy.maps.size, 2);
  assert.deepEqual(legacy.programs.get('xdp_legacy')!.references.map((r) => [r.map, r.kind]), [['legacy_hash', 'map'], ['legacy_counter', 'map']]);
  assert.equal(legacy.license, 'GPL');

  const pc = spec('packet_count');
  assert.deepEqual(shape(map(pc, 'xdp_stats_map')), ['lru_hash', 4, 4, 1024, 0]);
  assert.deepEqual([...pc.programs.keys()], ['xdp_prog_func']);
  assert.equal(pc.license, 'Dual BSD/GPL');

  const rb = spec('ringbuf');
  assert.deepEqual(shape(map(rb, 'events')), ['ringbuf', 0, 0, 16384, 0]);
  assert.deepEqual([...rb.programs.keys()].sort(), ['xdp_ringbuf_discard', 'xdp_ringbuf_output', 'xdp_ringbuf_submit']);

  const rej = spec('reject');
  assert.deepEqual([...rej.programs.keys()], ['xdp_reject']);
  assert.equal(rej.maps.size, 0);
  assert.equal(rej.license, 'GPL');
});

test('fromFile reads the same as fromBuffer; bad arguments and unreadable files are BpfkitErrors', async () => {
  const fromFile = await CollectionSpec.fromFile(obj('maps'));
  const fromBuffer = spec('maps');
  assert.deepEqual([...fromFile.maps.keys()], [...fromBuffer.maps.keys()]);
  assert.deepEqual([...fromFile.programs.keys()], [...fromBuffer.programs.keys()]);
  assert.deepEqual(fromFile.programs.get('xdp_maps')!.instructions, fromBuffer.programs.get('xdp_maps')!.instructions);

  assert.throws(() => CollectionSpec.fromBuffer('not bytes' as unknown as Uint8Array), InvalidArgumentError);
  await assert.rejects(CollectionSpec.fromFile(join(ROOT, 'test', 'bpf', 'build', 'no-such.bpf.o')), (e: unknown) => {
    assert.ok(e instanceof BpfkitError);
    assert.equal(e.code, 'ERR_BPFKIT_OBJECT_FILE');
    assert.match(e.message, /no-such\.bpf\.o/);
    return true;
  });
  // A file that is not ELF: the error names the file.
  const notElf = join(ROOT, 'package.json');
  await assert.rejects(CollectionSpec.fromFile(notElf), (e: unknown) => {
    assert.ok(e instanceof ElfError, String(e));
    assert.ok(e.message.startsWith(`${notElf}: `), e.message);
    assert.match(e.message, /not an ELF file/);
    return true;
  });
});

// --- malformed input -----------------------------------------------------------------------------

/** The error a parse of `bytes` threw, or undefined when it parsed. Anything but our errors fails. */
function parseError(bytes: Uint8Array, what: string): BpfkitError | undefined {
  try {
    CollectionSpec.fromBuffer(bytes);
    return undefined;
  } catch (e) {
    if (!(e instanceof ElfError || e instanceof BtfError || e instanceof SpecError)) {
      assert.fail(`${what}: expected ElfError/BtfError/SpecError, got ${(e as Error)?.stack ?? String(e)}`);
    }
    assert.ok(e.message.length > 10, `${what}: message "${e.message}"`);
    assert.doesNotMatch(e.message, /undefined|NaN|\[object /, `${what}: message "${e.message}"`);
    return e;
  }
}

/** xorshift32: the same "random" bytes on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

test('malformed: every object truncated at many lengths fails with an ElfError', { timeout: 120_000 }, () => {
  for (const name of OBJECTS) {
    const full = objBytes(name);
    const lengths = new Set<number>();
    for (let n = 0; n < 256; n++) lengths.add(n);
    for (let n = 256; n < full.length; n += 61) lengths.add(n);
    for (let n = Math.max(0, full.length - 80); n < full.length; n++) lengths.add(n);
    for (const n of lengths) {
      // A fresh copy of exactly n bytes, so nothing can read past it.
      const e = parseError(full.slice(0, n), `${name} truncated to ${n} bytes`);
      assert.ok(e, `${name} truncated to ${n} of ${full.length} bytes parsed without error`);
      assert.ok(e instanceof ElfError, `${name} at ${n}: ${e.name}: ${e.message}`);
    }
    assert.ok(CollectionSpec.fromBuffer(full.slice()), `${name} whole`);
  }
});

test('malformed: random byte flips end in a BpfkitError or a valid spec, never a crash', { timeout: 120_000 }, () => {
  const rnd = prng(0x5eed);
  let failed = 0;
  let parsed = 0;
  for (const name of OBJECTS) {
    const orig = objBytes(name);
    const view = new DataView(orig.buffer, orig.byteOffset, orig.byteLength);
    const shoff = Number(view.getBigUint64(40, true));
    const shnum = view.getUint16(60, true);
    for (let k = 0; k < 1200; k++) {
      const b = Uint8Array.from(orig);
      const where = rnd();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) {
        // Anywhere, in the section headers, or in the ELF header.
        const pos = where < 0.5 ? Math.floor(rnd() * b.length)
          : where < 0.8 ? shoff + Math.floor(rnd() * shnum * 64)
            : Math.floor(rnd() * 64);
        b[pos]! ^= 1 << Math.floor(rnd() * 8);
      }
      if (parseError(b, `${name} flip #${k}`)) failed++;
      else parsed++;
    }
  }
  // Both outcomes happen: the flips hit bytes that matter and bytes that do not.
  assert.ok(failed > 1000, `${failed} failed`);
  assert.ok(parsed > 1000, `${parsed} parsed`);
});

test('malformed: not ELF, not 64-bit, not BPF', () => {
  const notElf = [
    new Uint8Array(0),
    new Uint8Array(64),
    new TextEncoder().encode('#!/bin/sh\necho this is not a BPF object\n'.repeat(4)),
    readFileSync(join(ROOT, 'package.json')),
  ];
  for (const bytes of notElf) {
    const e = parseError(bytes, `${bytes.length} bytes of non-ELF`);
    assert.ok(e instanceof ElfError, String(e));
  }

  const good = objBytes('packet_count');
  const patch = (f: (b: Uint8Array, v: DataView) => void) => {
    const b = Uint8Array.from(good);
    f(b, new DataView(b.buffer));
    return b;
  };
  // ELFCLASS32.
  const e32 = parseError(patch((b) => { b[4] = 1; }), 'ELF32');
  assert.ok(e32 instanceof ElfError);
  assert.match(e32.message, /64-bit/);
  // Unknown data encoding.
  assert.ok(parseError(patch((b) => { b[5] = 7; }), 'encoding 7') instanceof ElfError);
  // Big-endian header on a little-endian object: garbage offsets, but still our error.
  assert.ok(parseError(patch((b) => { b[5] = 2; }), 'big-endian'));

  // Another machine: x86-64 (62) and aarch64 (183).
  for (const machine of [62, 183]) {
    const e = parseError(patch((_b, v) => v.setUint16(18, machine, true)), `e_machine ${machine}`);
    assert.ok(e instanceof SpecError, String(e));
    assert.match(e.message, new RegExp(`machine is ${machine}, not BPF`));
    assert.match(e.message, /clang -target bpf/);
  }
  // A real executable of this host.
  for (const exe of ['/bin/true', '/usr/bin/true']) {
    if (!existsSync(exe)) continue;
    const e = parseError(readFileSync(exe), exe);
    assert.ok(e instanceof SpecError || e instanceof ElfError, `${exe}: ${String(e)}`);
    break;
  }
  // No section headers.
  const noSh = parseError(patch((_b, v) => v.setBigUint64(40, 0n, true)), 'e_shoff 0');
  assert.ok(noSh instanceof ElfError);
  assert.match(noSh.message, /section header/);
});

test('malformed: a .bss claiming an absurd size is refused, not allocated', () => {
  const good = objBytes('globals');
  const v = new DataView(good.buffer, good.byteOffset, good.byteLength);
  const shoff = Number(v.getBigUint64(40, true));
  const shnum = v.getUint16(60, true);
  let bssHeader = -1;
  for (let i = 0; i < shnum; i++) {
    if (v.getUint32(shoff + i * 64 + 4, true) === 8 /* SHT_NOBITS */) bssHeader = shoff + i * 64;
  }
  assert.ok(bssHeader > 0, 'globals.bpf.o has a NOBITS section');
  for (const size of [2n ** 40n, 2n ** 33n, 2n ** 31n]) {
    const b = Uint8Array.from(good);
    new DataView(b.buffer).setBigUint64(bssHeader + 32, size, true);
    const e = parseError(b, `.bss of ${size} bytes`);
    assert.ok(e, `.bss of ${size} bytes parsed`);
  }
});

test('malformed: a relocation on a cut-off last instruction is a SpecError', async () => {
  const { ElfFile, SHT } = await import('../../src/elf/reader.js');
  const good = objBytes('globals');
  const elf = ElfFile.parse(good);
  const xdp = elf.section('xdp')!;
  const rel = elf.sections.find((s) => s.type === SHT.REL && s.info === xdp.index)!;
  assert.ok(xdp && rel && rel.size >= 16);
  const shoff = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(40, true));

  // The section loses its last 4 bytes; the first relocation moves onto the now partial last instruction.
  const b = Uint8Array.from(good);
  const v = new DataView(b.buffer);
  v.setBigUint64(shoff + xdp.index * 64 + 32, BigInt(xdp.size - 4), true);
  v.setBigUint64(rel.offset, BigInt(xdp.size - 8), true);
  const e = parseError(b, 'relocation on a partial instruction');
  assert.ok(e instanceof SpecError, String(e));
  assert.match(e.message, /not on an instruction/);

  // A relocation on the last whole instruction, which is not an ld_imm64 (it is the exit).
  const c = Uint8Array.from(good);
  new DataView(c.buffer).setBigUint64(rel.offset, BigInt(xdp.size - 8), true);
  const e2 = parseError(c, 'relocation on the exit');
  assert.ok(e2 instanceof SpecError, String(e2));
});

test('a "version" section gives the kernel version, read from the section itself', async () => {
  const { ElfFile } = await import('../../src/elf/reader.js');
  // reject.bpf.o's license is "GPL\0": 4 bytes. Renaming the section to "version" (same length)
  // turns those bytes into a kernel version of 0x004c5047.
  const good = objBytes('reject');
  const elf = ElfFile.parse(good);
  const v = new DataView(good.buffer, good.byteOffset, good.byteLength);
  const shoff = Number(v.getBigUint64(40, true));
  const shstrndx = v.getUint16(62, true);
  const strtab = elf.sections[shstrndx]!;
  const license = elf.section('license')!;
  assert.equal(license.size, 4);
  const nameOff = v.getUint32(shoff + license.index * 64, true);
  const b = Uint8Array.from(good);
  const at = strtab.offset + nameOff;
  assert.equal(Buffer.from(b.subarray(at, at + 8)).toString('latin1'), 'license\0');
  b.set(new TextEncoder().encode('version'), at);

  for (const bytes of [b, Buffer.from(b)]) {
    const s = CollectionSpec.fromBuffer(bytes);
    assert.equal(s.kernelVersion, 0x004c5047);
    assert.equal(s.license, '');
    assert.equal(s.programs.get('xdp_reject')!.kernelVersion, 0x004c5047);
  }
});
