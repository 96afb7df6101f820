/**
 * Programs in a real kernel: load the objects of test/bpf, run them with BPF_PROG_TEST_RUN and
 * check the values test/bpf/README.md documents (global data, BPF-to-BPF calls, one program per
 * section name, legacy maps, a verifier rejection), then the Program API itself: info, pinning,
 * reopening by id, translated instructions, close and dispose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import {
  BpfkitError, BpfSyscallError, ClosedError, Collection, CollectionSpec, InvalidArgumentError, Program, VerifierError,
  type CollectionOptions, type ProgType,
} from '../../src/index.js';
import { bpffsDir, fdCount, kernelTest, obj, ROOT } from '../helpers/index.js';

// --- helpers ---------------------------------------------------------------------------------

/** Loads test object `name`, runs `fn`, and closes the collection whatever happens. */
async function withCollection<T>(name: string, fn: (c: Collection, spec: CollectionSpec) => T | Promise<T>, options?: CollectionOptions,
  edit?: (spec: CollectionSpec) => void): Promise<T> {
  const spec = await CollectionSpec.fromFile(obj(name));
  edit?.(spec);
  const coll = await Collection.load(spec, options);
  try {
    return await fn(coll, spec);
  } finally {
    coll.close();
  }
}

function prog(c: Collection, name: string): Program {
  const p = c.programs.get(name);
  assert.ok(p, `program ${name} is loaded (have: ${[...c.programs.keys()].join(', ')})`);
  return p;
}

/** A 14-byte packet (test_run's minimum) with little-endian u32 words at the given offsets. */
function words(fields: Record<number, number>, size = 14): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  for (const [off, val] of Object.entries(fields)) v.setUint32(Number(off), val >>> 0, true);
  return b;
}

/** subprog.bpf.c's packet: u8 mode at 0, u32 x at 4. */
function subprogPacket(mode: number, x: number): Uint8Array {
  const b = words({ 4: x });
  b[0] = mode;
  return b;
}

function cString(bytes: unknown): string {
  assert.ok(bytes instanceof Uint8Array, 'a char array decodes to bytes');
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('latin1');
}

// --- globals ---------------------------------------------------------------------------------

test('globals: xdp_globals returns 3*input + 1010100 with the compiled-in values', kernelTest, async () => {
  await withCollection('globals', (c) => {
    const p = prog(c, 'xdp_globals');
    assert.equal(p.testRun({ data: words({ 0: 5 }) }).retval, 1010115);
    assert.equal(p.testRun({ data: words({ 0: 0 }) }).retval, 1010100);
    assert.equal(p.testRun({ data: words({ 0: 1000 }) }).retval, 1013100);
  });
});

test('globals: .rodata variables set before load reach the program', kernelTest, async () => {
  const spec = await CollectionSpec.fromFile(obj('globals'));
  const changed = spec.copy();
  changed.variables.get('rodata_factor')!.set(5);
  changed.variables.get('custom_ro_value')!.set(2000000);
  // The copy is independent: the original keeps the compiled-in values.
  assert.equal(spec.variables.get('rodata_factor')!.get(), 3);
  assert.equal(changed.variables.get('rodata_factor')!.get(), 5);

  const c = await Collection.load(changed);
  try {
    assert.equal(prog(c, 'xdp_globals').testRun({ data: words({ 0: 5 }) }).retval, 2010125);
    assert.equal(c.variables.get('rodata_factor')!.get(), 5);
  } finally {
    c.close();
  }
  const only = spec.copy();
  only.variables.get('rodata_factor')!.set(5);
  const c2 = await Collection.load(only);
  try {
    assert.equal(prog(c2, 'xdp_globals').testRun({ data: words({ 0: 5 }) }).retval, 1010125);
  } finally {
    c2.close();
  }
});

test('globals: .bss and .data after a run, through coll.variables and through the maps', kernelTest, async () => {
  await withCollection('globals', (c) => {
    const v = (name: string) => {
      const variable = c.variables.get(name);
      assert.ok(variable, `variable ${name}`);
      return variable.get();
    };
    // Before any run: .bss is zero, .data holds its initialisers.
    assert.equal(v('bss_runs'), 0n);
    assert.equal(cString(v('bss_greeting')), '');
    assert.deepEqual(v('data_array'), [1, 2, 3, 4]);

    const p = prog(c, 'xdp_globals');
    assert.equal(p.testRun({ data: words({ 0: 5 }) }).retval, 1010115);

    assert.equal(v('bss_runs'), 1n);
    assert.equal(v('bss_last_input'), 5);
    assert.equal(v('bss_last_result'), 1010115);
    assert.equal(cString(v('bss_greeting')), 'hello, bpfkit');
    assert.deepEqual(v('data_array'), [1, 3, 3, 4]);
    assert.equal(v('data_value'), 100);
    assert.equal(v('custom_data_value'), 10000);
    assert.equal(v('custom_ro_value'), 1000000);
    assert.equal(v('rodata_factor'), 3);
    assert.equal(cString(v('rodata_greeting')), 'hello, bpfkit');

    // The same bytes straight from the maps (one u32 key 0, the whole section as the value).
    const bss = c.maps.get('.bss')!.lookupBytes(0);
    assert.ok(bss);
    assert.equal(bss.length, 32);
    const bv = new DataView(bss.buffer, bss.byteOffset, bss.byteLength);
    assert.equal(bv.getBigUint64(0, true), 1n);
    assert.equal(bv.getUint32(8, true), 5);
    assert.equal(bv.getUint32(12, true), 1010115);
    assert.equal(Buffer.from(bss.subarray(16, 32)).toString('latin1'), 'hello, bpfkit\0\0\0');

    const data = c.maps.get('.data')!.lookupBytes(0);
    assert.ok(data);
    assert.deepEqual([...new Uint32Array(data.slice().buffer)], [100, 1, 3, 3, 4]);
    // And decoded by the map's BTF (the DATASEC).
    assert.deepEqual(c.maps.get('.data')!.lookup(0), { data_value: 100, data_array: [1, 3, 3, 4] });

    // A second run with another input.
    assert.equal(p.testRun({ data: words({ 0: 2 }) }).retval, 1010106);
    assert.equal(v('bss_runs'), 2n);
    assert.equal(v('bss_last_input'), 2);
    assert.deepEqual(v('data_array'), [1, 3, 4, 4]);
  });
});

test('globals: a .data variable written after load changes what the program computes', kernelTest, async () => {
  await withCollection('globals', (c) => {
    c.variables.get('data_value')!.set(200);
    c.variables.get('bss_runs')!.set(41n);
    assert.equal(prog(c, 'xdp_globals').testRun({ data: words({ 0: 5 }) }).retval, 1010215);
    assert.equal(c.variables.get('bss_runs')!.get(), 42n);
    assert.equal(c.variables.get('data_value')!.get(), 200);
  });
});

test('globals: .rodata is frozen after load, so user space cannot write it', kernelTest, async () => {
  await withCollection('globals', (c) => {
    const ro = c.maps.get('.rodata')!;
    const before = ro.lookupBytes(0);
    assert.ok(before);
    assert.equal(ro.info().flags & 0x480, 0x480, 'BPF_F_RDONLY_PROG | BPF_F_MMAPABLE');
    const patched = before.slice();
    patched[0] = 9;
    assert.throws(() => ro.update(0, patched), (e: unknown) => {
      assert.ok(e instanceof BpfSyscallError, String(e));
      assert.equal(e.code, 'EPERM');
      assert.equal(e.syscall, 'bpf(BPF_MAP_UPDATE_ELEM)');
      return true;
    });
    assert.throws(() => c.variables.get('rodata_factor')!.set(7), (e: unknown) => e instanceof InvalidArgumentError && /\.rodata: it is constant once loaded/.test(e.message));
    assert.throws(() => c.maps.get('.rodata.custom')!.update(0, new Uint8Array(4)), BpfSyscallError);
    assert.deepEqual(ro.lookupBytes(0), before);
    // The program still sees the frozen value.
    assert.equal(prog(c, 'xdp_globals').testRun({ data: words({ 0: 5 }) }).retval, 1010115);
    // .data is not frozen.
    c.maps.get('.data.custom')!.update(0, words({ 0: 20000 }, 4));
    assert.equal(prog(c, 'xdp_globals').testRun({ data: words({ 0: 5 }) }).retval, 1020115);
  });
});

// --- BPF-to-BPF calls ------------------------------------------------------------------------

test('subprog: every mode of xdp_subprog and tc_subprog returns the documented value', kernelTest, async () => {
  await withCollection('subprog', (c) => {
    const xdp = prog(c, 'xdp_subprog');
    const tc = prog(c, 'tc_subprog');
    const expected: [mode: number, x: number, retval: number][] = [
      [0, 10, 17], [1, 10, 70], [2, 10, 21], [3, 10, 158], [4, 10, 4294967295], [255, 10, 4294967295],
      [3, 300, 3928], [0, 0xffffffff, 6], [1, 0, 10],
    ];
    for (const [mode, x, retval] of expected) {
      assert.equal(xdp.testRun({ data: subprogPacket(mode, x) }).retval, retval, `xdp_subprog mode ${mode}, x ${x}`);
    }
    assert.equal(tc.testRun({ data: subprogPacket(0, 10) }).retval, 101);
    assert.equal(tc.testRun({ data: subprogPacket(7, 10) }).retval, 101, 'tc_subprog ignores the mode');
    assert.equal(tc.testRun({ data: subprogPacket(0, 0xffffffff) }).retval, 4294967287);
    assert.equal(xdp.type, 'xdp');
    assert.equal(tc.type, 'sched_cls');
    assert.equal(tc.info().type, 'sched_cls');
  });
});

test('subprog_same_section: a callee in the caller\'s own section', kernelTest, async () => {
  await withCollection('subprog_same_section', (c) => {
    assert.deepEqual([...c.programs.keys()].sort(), ['read_x_plus_1000', 'xdp_same_section']);
    assert.equal(prog(c, 'xdp_same_section').testRun({ data: words({ 4: 5 }) }).retval, 2010);
    assert.equal(prog(c, 'xdp_same_section').testRun({ data: words({ 4: 0x1ff }) }).retval, 2 * (1000 + 0xff));
    assert.equal(prog(c, 'read_x_plus_1000').testRun({ data: words({ 4: 5 }) }).retval, 1005);
  });
});

// --- section names and program types ----------------------------------------------------------

const progtypes: { name: string; section: string; type: ProgType; attachType?: string; target?: string }[] = [
  { name: 'xdp_prog', section: 'xdp', type: 'xdp', attachType: 'xdp' },
  { name: 'tc_prog', section: 'tc', type: 'sched_cls' },
  { name: 'classifier_prog', section: 'classifier', type: 'sched_cls' },
  { name: 'socket_filter', section: 'socket', type: 'socket_filter' },
  { name: 'tracepoint_execve', section: 'tracepoint/syscalls/sys_enter_execve', type: 'tracepoint', target: 'syscalls/sys_enter_execve' },
  { name: 'raw_tp_sys_enter', section: 'raw_tracepoint/sys_enter', type: 'raw_tracepoint', target: 'sys_enter' },
  { name: 'tp_btf_exec', section: 'tp_btf/sched_process_exec', type: 'tracing', attachType: 'trace_raw_tp', target: 'sched_process_exec' },
  { name: 'kprobe_open', section: 'kprobe/do_sys_open', type: 'kprobe', target: 'do_sys_open' },
  { name: 'kretprobe_open', section: 'kretprobe/do_sys_open', type: 'kprobe', target: 'do_sys_open' },
  { name: 'uprobe_prog', section: 'uprobe', type: 'kprobe' },
  { name: 'cgroup_ingress', section: 'cgroup_skb/ingress', type: 'cgroup_skb', attachType: 'cgroup_inet_ingress' },
  { name: 'cgroup_egress', section: 'cgroup_skb/egress', type: 'cgroup_skb', attachType: 'cgroup_inet_egress' },
  { name: 'perf_event_prog', section: 'perf_event', type: 'perf_event' },
];

test('progtypes: the spec derives type, attach type and target from each section name', kernelTest, async () => {
  const spec = await CollectionSpec.fromFile(obj('progtypes'));
  for (const e of progtypes) {
    const ps = spec.programs.get(e.name);
    assert.ok(ps, e.name);
    assert.equal(ps.sectionName, e.section, `${e.name} section`);
    assert.equal(ps.type, e.type, `${e.name} type`);
    assert.equal(ps.attachType, e.attachType, `${e.name} attach type`);
    assert.equal(ps.attachTarget, e.target ?? '', `${e.name} attach target`);
    assert.equal(ps.autoload, true, `${e.name} autoload`);
  }
  const opt = spec.programs.get('xdp_optional');
  assert.ok(opt);
  assert.equal(opt.autoload, false);
  assert.equal(opt.type, 'xdp');
  assert.equal(spec.programs.size, progtypes.length + 1);
});

test('progtypes: every program loads; the ?xdp program only when included', kernelTest, async () => {
  await withCollection('progtypes', (c) => {
    assert.deepEqual([...c.programs.keys()].sort(), progtypes.map((e) => e.name).sort());
    assert.equal(c.programs.has('xdp_optional'), false);
    for (const e of progtypes) {
      const p = prog(c, e.name);
      assert.equal(p.type, e.type, `${e.name}: Program.type`);
      assert.equal(p.sectionName, e.section);
      assert.equal(p.attachTarget, e.target ?? '');
      assert.equal(p.attachType, e.attachType);
      const info = p.info();
      assert.equal(info.type, e.type, `${e.name}: the kernel's program type`);
      assert.equal(info.name, e.name.slice(0, 15));
      assert.equal(info.gplCompatible, true);
    }
  });
  await withCollection('progtypes', (c) => {
    assert.equal(c.programs.size, progtypes.length + 1);
    const opt = prog(c, 'xdp_optional');
    assert.equal(opt.info().type, 'xdp');
    assert.equal(opt.testRun({ data: new Uint8Array(60) }).retval, 1);
    assert.equal(c.maps.get('hits')!.lookup(13), 1n);
  }, { programs: { include: ['xdp_optional'] } });
  await withCollection('progtypes', (c) => {
    assert.deepEqual([...c.programs.keys()], ['xdp_optional']);
  }, { programs: { only: ['xdp_optional'] } });
});

test('progtypes: test runs of the packet programs and the raw tracepoint', kernelTest, async () => {
  await withCollection('progtypes', (c) => {
    const packet = new Uint8Array(60);
    const runs: [string, number][] = [
      ['xdp_prog', 2], ['tc_prog', 0], ['classifier_prog', 2], ['socket_filter', 46],
      ['cgroup_ingress', 1], ['cgroup_egress', 1],
    ];
    for (const [name, retval] of runs) assert.equal(prog(c, name).testRun({ data: packet }).retval, retval, name);
    // A socket filter sees the packet without its Ethernet header.
    assert.equal(prog(c, 'socket_filter').testRun({ data: new Uint8Array(100) }).retval, 86);

    // raw_tracepoint: ctx_in only, two u64 args { regs, syscall nr }.
    const ctx = new Uint8Array(16);
    new DataView(ctx.buffer).setBigUint64(8, 59n, true);
    assert.equal(prog(c, 'raw_tp_sys_enter').testRun({ ctx }).retval, 59);

    // Kinds BPF_PROG_TEST_RUN does not run fail without executing the program.
    assert.throws(() => prog(c, 'tracepoint_execve').testRun({ data: packet }), (e: unknown) => {
      assert.ok(e instanceof BpfSyscallError, String(e));
      assert.equal(e.errno, -524);
      assert.equal(e.code, 'ENOTSUPP');
      assert.match(e.message, /does not support BPF_PROG_TEST_RUN/);
      return true;
    });
    assert.throws(() => prog(c, 'kprobe_open').testRun({ data: packet }), BpfSyscallError);

    const hits = [...c.maps.get('hits')!.values()];
    assert.deepEqual(hits, [1n, 1n, 1n, 2n, 0n, 1n, 0n, 0n, 0n, 0n, 1n, 1n, 0n, 0n, 0n, 0n]);
  });
});

// --- legacy maps, ring buffers ----------------------------------------------------------------

test('legacy_maps: loads from the "maps" section and counts 1 then 2', kernelTest, async () => {
  await withCollection('legacy_maps', (c) => {
    const p = prog(c, 'xdp_legacy');
    const pkt = words({ 0: 7, 4: 99 });
    assert.equal(p.testRun({ data: pkt }).retval, 1);
    assert.equal(p.testRun({ data: pkt }).retval, 2);
    // No BTF for legacy maps: keys and values are plain integers of their size.
    assert.equal(c.maps.get('legacy_hash')!.lookup(7), 99);
    assert.equal(c.maps.get('legacy_hash')!.lookup(8), undefined);
    assert.equal(c.maps.get('legacy_counter')!.lookup(0), 2n);
    const counter = c.maps.get('legacy_counter')!.lookupBytes(new Uint8Array(4));
    assert.ok(counter);
    assert.equal(new DataView(counter.buffer).getBigUint64(0, true), 2n);
    const hash = c.maps.get('legacy_hash')!.info();
    assert.deepEqual([hash.type, hash.keySize, hash.valueSize, hash.maxEntries, hash.flags], ['hash', 4, 4, 16, 1]);
  });
});

test('ringbuf: the three producers load and report what they wrote', kernelTest, async () => {
  await withCollection('ringbuf', (c) => {
    assert.deepEqual([...c.programs.keys()].sort(), ['xdp_ringbuf_discard', 'xdp_ringbuf_output', 'xdp_ringbuf_submit']);
    assert.equal(c.maps.get('events')!.type, 'ringbuf');
    assert.equal(c.maps.get('events')!.maxEntries, 16384);
    assert.equal(prog(c, 'xdp_ringbuf_submit').testRun({ data: words({ 0: 3, 4: 7 }) }).retval, 3);
    assert.equal(prog(c, 'xdp_ringbuf_discard').testRun({ data: words({ 0: 5, 4: 8 }) }).retval, 3);
    assert.equal(prog(c, 'xdp_ringbuf_output').testRun({ data: words({ 0: 13, 4: 100 }) }).retval, 13);
    assert.equal(prog(c, 'xdp_ringbuf_output').testRun({ data: words({ 0: 0 }) }).retval, 4294967274, '-EINVAL');
  });
});

// --- the verifier says no ---------------------------------------------------------------------

test('reject: the verifier\'s refusal is a VerifierError with a one-line message and the whole log', kernelTest, async () => {
  const spec = await CollectionSpec.fromFile(obj('reject'));
  const before = fdCount();
  let caught: unknown;
  try {
    const c = await Collection.load(spec);
    c.close();
  } catch (e) {
    caught = e;
  }
  assert.equal(fdCount(), before, 'a failed load leaves no fd open');
  assert.ok(caught instanceof VerifierError, `expected a VerifierError, got ${String(caught)}`);
  assert.ok(caught instanceof BpfkitError);
  assert.equal(caught.code, 'ERR_BPFKIT_VERIFIER');
  assert.equal(caught.program, 'xdp_reject');
  assert.equal(caught.errno, -13);
  assert.doesNotMatch(caught.message, /\n/, 'the message is one line');
  assert.match(caught.message, /xdp_reject/);
  assert.match(caught.message, /EACCES/);
  assert.match(caught.message, /R1 offset is outside of the packet|invalid access to packet/);
  assert.match(caught.log, /invalid access to packet, off=0 size=1, R1\(id=0,off=0,r=0\)/);
  assert.match(caught.log, /R1 offset is outside of the packet/);
  assert.match(caught.log, /processed \d+ insns/);
  assert.ok(caught.log.split('\n').length > 3, 'the log is the verifier\'s whole output');

  // The same with a log asked for up front.
  await assert.rejects(Collection.load(spec, { programs: { logLevel: 1 } }), VerifierError);
  assert.equal(fdCount(), before);
});

// --- running -----------------------------------------------------------------------------------

test('testRun: repeat runs the program that many times and reports a mean duration', kernelTest, async () => {
  await withCollection('globals', (c) => {
    const p = prog(c, 'xdp_globals');
    const r = p.testRun({ data: words({ 0: 5 }), repeat: 100 });
    assert.equal(r.retval, 1010115);
    assert.equal(typeof r.duration, 'number');
    assert.ok(Number.isInteger(r.duration) && r.duration >= 0, `duration ${r.duration}`);
    assert.ok(r.data);
    assert.deepEqual([...r.data], [...words({ 0: 5 })], 'XDP_PASS-like run leaves the packet unchanged');
    assert.equal(c.variables.get('bss_runs')!.get(), 100n, 'the kernel ran it 100 times');
    const once = p.testRun({ data: words({ 0: 1 }) });
    assert.equal(once.retval, 1010103);
    assert.equal(c.variables.get('bss_runs')!.get(), 101n);
    assert.throws(() => p.testRun({ data: words({ 0: 1 }), repeat: -1 }), BpfkitError);
  });
});

// --- the Program object -------------------------------------------------------------------------

test('Program.info: name, type, tag, id, map ids, lengths', kernelTest, async () => {
  await withCollection('globals', (c) => {
    const p = prog(c, 'xdp_globals');
    const info = p.info();
    assert.equal(info.name, 'xdp_globals');
    assert.equal(info.type, 'xdp');
    assert.match(info.tag, /^[0-9a-f]{16}$/);
    assert.ok(info.id > 0);
    assert.ok(info.xlatedLength > 0 && info.xlatedLength % 8 === 0);
    assert.ok(info.btfId > 0, 'loaded with the object\'s BTF');
    const mapIds = [...c.maps.values()].map((m) => m.info().id).sort((a, b) => a - b);
    assert.equal(mapIds.length, 5);
    assert.deepEqual([...info.mapIds].sort((a, b) => a - b), mapIds, 'the program uses the five data maps');
    assert.equal(p.info().id, info.id, 'stable');
    // Another program of another object has another id.
    return withCollection('packet_count', (c2) => {
      const other = prog(c2, 'xdp_prog_func').info();
      assert.notEqual(other.id, info.id);
      assert.equal(other.mapIds.length, 1);
      assert.equal(other.mapIds[0], c2.maps.get('xdp_stats_map')!.info().id);
    });
  });
});

test('pin, fromPinned and fromId reopen the same program', kernelTest, async () => {
  const dir = bpffsDir('programs');
  try {
    const path = join(dir, 'xdp_globals');
    let id = 0;
    let tag = '';
    await withCollection('globals', (c) => {
      const p = prog(c, 'xdp_globals');
      p.pin(path);
      assert.equal(p.pinnedPath, path);
      const info = p.info();
      id = info.id;
      tag = info.tag;

      const byId = Program.fromId(id);
      try {
        assert.equal(byId.info().id, id);
        assert.equal(byId.name, 'xdp_globals');
        assert.equal(byId.type, 'xdp');
        assert.notEqual(byId.fd, p.fd);
        assert.equal(byId.testRun({ data: words({ 0: 5 }) }).retval, 1010115);
      } finally {
        byId.close();
      }
    });
    // The collection is closed, but the pin keeps the program (and its maps) alive.
    const pinned = Program.fromPinned(path);
    try {
      const info = pinned.info();
      assert.equal(info.id, id);
      assert.equal(info.tag, tag);
      assert.equal(pinned.name, 'xdp_globals');
      assert.equal(pinned.type, 'xdp');
      assert.equal(pinned.testRun({ data: words({ 0: 5 }) }).retval, 1010115);
      pinned.unpin(path);
    } finally {
      pinned.close();
    }
    assert.throws(() => Program.fromPinned(path), (e: unknown) => e instanceof BpfSyscallError && e.code === 'ENOENT');
    assert.throws(() => Program.fromId(0x7ffffff0), BpfSyscallError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('translatedInstructions: as long as info().xlatedLength', kernelTest, async () => {
  await withCollection('subprog', (c) => {
    for (const p of c.programs.values()) {
      const insns = p.translatedInstructions();
      const info = p.info();
      assert.ok(insns.length > 0);
      assert.equal(insns.length, info.xlatedLength, p.name);
      assert.equal(insns.length % 8, 0);
    }
    // The last instruction of a program is an exit (0x95).
    const insns = prog(c, 'tc_subprog').translatedInstructions();
    assert.equal(insns[insns.length - 8], 0x95);
  });
});

test('close() is idempotent; using a closed program or map throws ClosedError', kernelTest, async () => {
  const before = fdCount();
  const c = await Collection.load(await CollectionSpec.fromFile(obj('globals')));
  const p = prog(c, 'xdp_globals');
  const m = c.maps.get('.bss')!;
  const v = c.variables.get('bss_runs')!;
  try {
    assert.ok(fdCount() > before);
    assert.equal(p.closed, false);
  } finally {
    c.close();
  }
  c.close();
  p.close();
  assert.equal(fdCount(), before);
  assert.equal(p.closed, true);
  assert.equal(m.closed, true);
  assert.throws(() => p.testRun({ data: words({ 0: 5 }) }), ClosedError);
  assert.throws(() => p.info(), ClosedError);
  assert.throws(() => p.translatedInstructions(), ClosedError);
  assert.throws(() => p.fd, ClosedError);
  assert.throws(() => p.pin('/sys/fs/bpf/never'), ClosedError);
  assert.throws(() => m.lookup(0), ClosedError);
  assert.throws(() => v.get(), ClosedError);
  assert.throws(() => p.testRun({}), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(e.code, 'ERR_BPFKIT_CLOSED');
    assert.match(e.message, /xdp_globals/);
    return true;
  });
});

test('Symbol.dispose closes the collection', kernelTest, async () => {
  const before = fdCount();
  const c = await Collection.load(await CollectionSpec.fromFile(obj('packet_count')));
  const p = prog(c, 'xdp_prog_func');
  try {
    assert.equal(typeof c[Symbol.dispose], 'function');
    assert.equal(p.testRun({ data: new Uint8Array(14) }).retval, 2);
  } finally {
    c[Symbol.dispose]();
  }
  assert.equal(p.closed, true);
  assert.equal(c.maps.get('xdp_stats_map')!.closed, true);
  assert.equal(fdCount(), before);
  c[Symbol.dispose]();
  // A Program disposes on its own too.
  const c2 = await Collection.load(await CollectionSpec.fromFile(obj('packet_count')));
  try {
    const p2 = prog(c2, 'xdp_prog_func');
    p2[Symbol.dispose]();
    assert.equal(p2.closed, true);
  } finally {
    c2.close();
  }
  assert.equal(fdCount(), before);
});

test('globals: variables are read and written through the memory-mapped section, seen by the program at once', kernelTest, async () => {
  await withCollection('globals', (c) => {
    const data = c.variables.get('data_value')!;
    const runs = c.variables.get('bss_runs')!;
    assert.equal(data.memoryMapped, true, '.data is mmapable on this kernel');
    data.set(1);
    assert.equal(prog(c, 'xdp_globals').testRun({ data: words({ 0: 0 }) }).retval, 1010001, 'the program sees the write at once');
    const before = runs.get() as bigint;
    prog(c, 'xdp_globals').testRun({ data: words({ 0: 0 }), repeat: 3 });
    assert.equal(runs.get(), before + 3n, 'and user space sees the program\'s writes without a syscall');
    assert.equal(c.variables.get('rodata_factor')!.get(), 3, '.rodata reads through a read-only mapping');
  });
});

// Regression: the verifier gives up with EAGAIN when a signal is pending, and V8's CPU profiler
// signals the main thread (SIGPROF) more often than a large program takes to verify. Loading
// execsnoop's programs under `node --cpu-prof` at a 50 us interval failed every time as a
// "verifier rejection"; now it loads.
test('programs load under the CPU profiler (the verifier is not interrupted by SIGPROF)', kernelTest, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-cpuprof-'));
  try {
    const script = join(dir, 'load.mjs');
    writeFileSync(script, [
      `import { Collection, CollectionSpec } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href)};`,
      `const spec = await CollectionSpec.fromFile(${JSON.stringify(join(ROOT, 'dist', 'src', 'tools', 'execsnoop', 'gen', 'execsnoop.bpf.o'))});`,
      'let loaded = 0;',
      'for (let i = 0; i < 5; i++) { const c = await Collection.load(spec); loaded++; c.close(); }',
      'console.log(`loaded ${loaded}`);',
    ].join('\n'));
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-interval', '50', '--cpu-prof-dir', join(dir, 'prof'), script], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'loaded 5');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
