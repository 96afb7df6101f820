/**
 * CO-RE and extern symbols in a real kernel. The objects core_task.bpf.o and core_externs.bpf.o
 * (test/bpf) are built against vmlinux.h and loaded through CollectionSpec/Collection:
 *
 * - core_current (test-run: the task is the thread calling BPF_PROG_TEST_RUN) reads the test
 *   process and its parent through BPF_CORE_READ, a flavored type, and every relocation kind,
 *   checked against process.pid/ppid and the kernel's own BTF;
 * - core_prog_fields follows a prog array to the kernel's struct bpf_prog and reads bitfields,
 *   an enum, an anonymous union member and aux->id, checked against BPF_OBJ_GET_INFO_BY_FD;
 * - core_exec is attached to syscalls/sys_enter_execve (perf_event_open, done here by hand) and
 *   sees the parent of a child the test starts;
 * - an unguarded access to a missing field fails with a VerifierError naming the relocation;
 * - __kconfig values, ksym addresses and kfunc calls; an unguarded missing weak kfunc is named;
 * - and a differential check: a small libbpf loader built here loads the same objects, and the
 *   instructions the kernel translated must equal bpfkit's, map ids aside.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Collection, CollectionSpec, VerifierError, type Program } from '../../src/index.js';
import { applyCoreRelocations } from '../../src/btf/core.js';
import { sanitizeBtfForKernel } from '../../src/load/btf-sanitize.js';
import type { BtfStruct } from '../../src/btf/types.js';
import { onlineCpus } from '../../src/sys/cpus.js';
import { kernelBtf } from '../../src/kernel/attach-target.js';
import { loadBtf } from '../../src/load/btf-load.js';
import { btfLoadRaw } from '../../src/sys/bpf.js';
import { ExternResolver, kernelVersionCode, readKallsyms, readKernelConfig } from '../../src/load/externs.js';
import { native } from '../../src/sys/native.js';
import { kernelTest, obj, onCI, ROOT } from '../helpers/index.js';

// --- helpers ---------------------------------------------------------------------------------

async function loadSpec(name: string): Promise<CollectionSpec> {
  return CollectionSpec.fromFile(obj(name));
}

function prog(c: Collection, name: string): Program {
  const p = c.programs.get(name);
  assert.ok(p, `program ${name} is loaded (have: ${[...c.programs.keys()].join(', ')})`);
  return p;
}

/** A raw tracepoint's test-run context: two u64 arguments. */
const RAW_TP_CTX = new Uint8Array(16);

function kernelStruct(name: string): BtfStruct {
  const t = kernelBtf().byName(name, 'struct')[0];
  assert.ok(t && t.kind === 'struct', `the kernel has struct ${name}`);
  return t;
}

/** Probe: whether the running kernel's BTF has this enumerator. */
function kernelHasEnumValue(enumName: string, value: string): boolean {
  return kernelBtf().byName(enumName).some((t) => (t.kind === 'enum' || t.kind === 'enum64') && t.values.some((x) => x.name === value));
}

function kernelEnumValue(enumName: string, value: string): bigint {
  const e = kernelBtf().byName(enumName).find((t) => t.kind === 'enum' || t.kind === 'enum64');
  assert.ok(e && (e.kind === 'enum' || e.kind === 'enum64'));
  const v = e.values.find((x) => x.name === value);
  assert.ok(v, `${enumName} has ${value}`);
  return v.value;
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

function tracefs(): string {
  for (const dir of TRACEFS) if (existsSync(join(dir, 'events'))) return dir;
  mkdirSync(TRACEFS[0]!, { recursive: true });
  execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS[0]!]);
  return TRACEFS[0]!;
}

const PERF_TYPE_TRACEPOINT = 2;
const PERF_FLAG_FD_CLOEXEC = 8;
const PERF_EVENT_IOC_ENABLE = 0x2400;
const PERF_EVENT_IOC_SET_BPF = 0x40042408;

/**
 * Attaches a tracepoint program the old way, independent of bpfkit's link module:
 * perf_event_open(PERF_TYPE_TRACEPOINT) for any process on CPU 0, PERF_EVENT_IOC_SET_BPF,
 * enable. The program then runs for every hit of the tracepoint on every CPU (the kernel keeps
 * tracepoint programs per tracepoint, not per event: a second event would get EEXIST).
 * Returns the detach function.
 */
function attachTracepointByHand(p: Program, category: string, name: string): () => void {
  const id = Number(readFileSync(join(tracefs(), 'events', category, name, 'id'), 'utf8').trim());
  const attr = new Uint8Array(128);
  const v = new DataView(attr.buffer);
  v.setUint32(0, PERF_TYPE_TRACEPOINT, true);
  v.setUint32(4, attr.length, true);
  v.setBigUint64(8, BigInt(id), true); // config
  v.setBigUint64(16, 1n, true); // sample_period
  v.setUint32(48, 1, true); // wakeup_events
  const n = native();
  const fds: number[] = [];
  const detach = () => { for (const fd of fds.splice(0)) n.close(fd); };
  try {
    for (const cpu of onlineCpus().slice(0, 1)) {
      const fd = n.perfEventOpen(attr, null, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
      assert.ok(fd >= 0, `perf_event_open(${category}/${name}, cpu ${cpu}): errno ${-fd}`);
      fds.push(fd);
      assert.equal(n.ioctl(fd, PERF_EVENT_IOC_SET_BPF, p.fd), 0, 'PERF_EVENT_IOC_SET_BPF');
      assert.equal(n.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0, 'PERF_EVENT_IOC_ENABLE');
    }
  } catch (e) {
    detach();
    throw e;
  }
  return detach;
}

// --- CO-RE ------------------------------------------------------------------------------------

test('core_current reads the calling thread, its parent, and every relocation kind from the running kernel', kernelTest, async () => {
  const spec = await loadSpec('core_task');
  spec.variables.get('cfg_magic')!.set(0x1234);
  const coll = await Collection.load(spec);
  try {
    assert.equal(prog(coll, 'core_current').testRun({ ctx: RAW_TP_CTX }).retval, 0);
    const o = coll.maps.get('out')!.lookup(0) as Record<string, number | bigint>;
    const kbtf = kernelBtf();
    const task = kernelStruct('task_struct');
    const pid = task.members.find((m) => m.name === 'pid')!;
    assert.equal(o['tgid'], process.pid);
    assert.equal(o['pid'], process.pid, 'the main thread runs the test');
    assert.equal(o['ptgid'], process.ppid, 'task->real_parent->tgid');
    assert.equal(o['ptgid_flavor'], process.ppid, 'the same through struct task_struct___bpfkit');
    assert.equal(o['pid_flavor'], process.pid);
    assert.equal(o['has_real_parent'], 1);
    assert.equal(o['has_missing'], 0, 'bpf_core_field_exists of a field the kernel lacks');
    assert.equal(o['guarded'], 0xdead, 'the guarded read is skipped');
    assert.equal(o['type_exists'], 1);
    assert.equal(o['type_missing'], 0);
    assert.equal(o['task_size'], task.size);
    assert.equal(o['flavor_size'], task.size, 'a flavor has the size of the kernel type it stands for');
    assert.equal(o['pid_size'], 4);
    assert.equal(o['pid_offset'], pid.bitOffset / 8);
    assert.equal(o['pid_signed'], 1);
    assert.equal(BigInt(o['ringbuf_value']!), kernelEnumValue('bpf_map_type', 'BPF_MAP_TYPE_RINGBUF'));
    assert.equal(o['ringbuf_exists'], 1);
    assert.equal(BigInt(o['hash_value']!), kernelEnumValue('bpf_map_type', 'BPF_MAP_TYPE_HASH'), 'a flavored enumerator');
    // ARENA (6.9+): the guarded read happens exactly where the kernel's enum has it.
    if (kernelHasEnumValue('bpf_map_type', 'BPF_MAP_TYPE_ARENA')) {
      assert.equal(o['arena_exists'], 1);
      assert.equal(BigInt(o['arena_value']!), kernelEnumValue('bpf_map_type', 'BPF_MAP_TYPE_ARENA'), 'a flavored enumerator, guarded');
    } else {
      assert.equal(o['arena_exists'], 0);
      assert.equal(o['arena_value'], 0xffffffff, 'the guarded read is skipped');
    }
    assert.equal(o['none_exists'], 0);
    assert.equal(o['magic'], 0x1234, '.rodata set before load');
    assert.equal(o['pid_bits'], BigInt(process.pid), 'a plain field read through the bitfield relocations');
    assert.equal(o['task_type_id'], BigInt(task.id), 'bpf_core_type_id_kernel');
    assert.equal(kbtf.type(task.id), task);
  } finally {
    coll.close();
  }
});

test('the relocation report: one poisoned relocation in core_current, the guarded read', kernelTest, async () => {
  const spec = await loadSpec('core_task');
  const p = spec.programs.get('core_current')!;
  const insns = new Uint8Array(p.instructions);
  const res = applyCoreRelocations(insns, p.coreRelos, p.btf!, kernelBtf(), p.name);
  assert.equal(res.length, p.coreRelos.length);
  // The guarded ARENA read is poisoned (dead code) where the kernel predates it (6.9).
  const arena = kernelHasEnumValue('bpf_map_type', 'BPF_MAP_TYPE_ARENA');
  const poisoned = res.filter((r) => r.poisoned);
  assert.deepEqual(poisoned.map((r) => `${r.kind} ${r.subject}`).sort(), [
    ...(arena ? [] : ['enumval_value enum bpf_map_type___bpfkit::BPF_MAP_TYPE_ARENA___bpfkit']),
    'field_byte_offset task_struct___bpfkit.bpfkit_missing',
  ]);
  assert.match(poisoned.find((r) => r.kind === 'field_byte_offset')!.reason!, /the kernel's struct task_struct has no field bpfkit_missing/);
  const zero = res.filter((r) => !r.poisoned && r.value === 0n && r.reason).map((r) => `${r.kind} ${r.subject}`).sort();
  assert.deepEqual(zero, [
    ...(arena ? [] : ['enumval_exists enum bpf_map_type___bpfkit::BPF_MAP_TYPE_ARENA___bpfkit']),
    'enumval_exists enum bpf_map_type___bpfkit::BPFKIT_MAP_TYPE_NONE',
    'field_exists task_struct___bpfkit.bpfkit_missing', // clang merged the two bpf_core_field_exists()
    'type_exists struct bpfkit_no_such_type',
  ].sort());
});

test('core_prog_fields reads the kernel struct bpf_prog of core_target: bitfields, enum, anonymous union, aux->id', kernelTest, async () => {
  const spec = await loadSpec('core_task');
  const coll = await Collection.load(spec);
  try {
    assert.equal(prog(coll, 'core_prog_fields').testRun({ ctx: RAW_TP_CTX }).retval, 0);
    const o = coll.maps.get('prog_out')!.lookup(0) as Record<string, unknown>;
    const info = prog(coll, 'core_target').info();
    const jit = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim() !== '0';
    assert.equal(o['target'], 1n, 'progs[0] holds core_target');
    assert.equal(o['jited'], jit ? 1 : 0);
    assert.equal(o['gpl_compatible'], 1);
    assert.equal(o['sleepable'], 0);
    assert.equal(BigInt(o['type'] as number), kernelEnumValue('bpf_prog_type', 'BPF_PROG_TYPE_RAW_TRACEPOINT'));
    assert.equal(o['len'], info.xlatedLength / 8);
    assert.equal(o['id'], info.id);
    assert.equal(Buffer.from(o['tag'] as Uint8Array).toString('hex'), info.tag);
  } finally {
    coll.close();
  }
});

test('core_exec on syscalls/sys_enter_execve sees the parent of a child the test starts', kernelTest, async () => {
  const spec = await loadSpec('core_task');
  const coll = await Collection.load(spec);
  let detach: (() => void) | undefined;
  try {
    detach = attachTracepointByHand(prog(coll, 'core_exec'), 'syscalls', 'sys_enter_execve');
    const child = spawnSync('/bin/true');
    assert.equal(child.status, 0);
    detach();
    detach = undefined;
    const rec = coll.maps.get('execs')!.lookup(child.pid) as { tgid: number; ptgid: number } | undefined;
    assert.ok(rec, `the child ${child.pid} was seen exec'ing`);
    assert.equal(rec.tgid, child.pid);
    assert.equal(rec.ptgid, process.pid, 'its real_parent is this process');
  } finally {
    detach?.();
    coll.close();
  }
});

test('an unguarded read of a missing field fails with a VerifierError naming the relocation', kernelTest, async () => {
  for (const [name, subject] of [
    ['core_unguarded', 'field_byte_offset of task_struct___bpfkit.bpfkit_missing'],
    ['core_unguarded_enum', 'enumval_value of enum bpf_map_type___bpfkit::BPFKIT_MAP_TYPE_NONE'],
  ] as const) {
    const spec = await loadSpec('core_task');
    await assert.rejects(Collection.load(spec, { programs: { only: [name] } }), (e: unknown) => {
      assert.ok(e instanceof VerifierError, `a VerifierError, got ${String(e)}`);
      assert.equal(e.program, name);
      assert.match(e.message, new RegExp(`CO-RE relocation failed: program ${name}, instruction \\d+: ${subject.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(e.log, /invalid func unknown#195896080/);
      return true;
    });
  }
});

// --- externs ----------------------------------------------------------------------------------

test('core_externs: kconfig values, a ksym address, kfunc calls and weak externs the kernel lacks', kernelTest, async () => {
  const spec = await loadSpec('core_externs');
  const coll = await Collection.load(spec);
  try {
    assert.equal(prog(coll, 'core_externs').testRun({ ctx: RAW_TP_CTX }).retval, 0);
    const o = coll.maps.get('kout')!.lookup(0) as Record<string, unknown>;
    const config = readKernelConfig();
    assert.ok(config, 'this kernel has /proc/config.gz or /boot/config-*');
    const str = (v: string | undefined) => (v ?? '').replace(/^"|"$/g, '');
    assert.equal(o['version'], new ExternResolver().kernelVersion());
    if (!existsSync('/proc/version_signature')) assert.equal(o['version'], kernelVersionCode(release()));
    assert.equal(o['bpf'], config.get('CONFIG_BPF') === 'y' ? 1 : 0);
    assert.equal(o['hz'], Number(config.get('CONFIG_HZ')));
    assert.equal(o['jit'], config.get('CONFIG_BPF_JIT') === 'y' ? 1 : config.get('CONFIG_BPF_JIT') === 'm' ? 2 : 0);
    assert.equal(o['missing'], 0, 'the weak CONFIG_BPFKIT_DOES_NOT_EXIST');
    // Probe: the kfuncs (6.2+) are FUNCs in the kernel's BTF; the program calls them where they are.
    const rcuKfuncs = ['bpf_rcu_read_lock', 'bpf_rcu_read_unlock'].every((n) => kernelBtf().byName(n).some((t) => t.kind === 'func'));
    assert.equal(o['rcu'], rcuKfuncs ? 1 : 2, rcuKfuncs ? 'bpf_rcu_read_lock/unlock were called' : 'the weak kfuncs resolved to 0 and were not called');
    const lv = Buffer.from(o['localversion'] as Uint8Array);
    assert.equal(lv.subarray(0, lv.indexOf(0)).toString(), str(config.get('CONFIG_LOCALVERSION')).slice(0, 15));
    const addr = readKallsyms(new Set(['bpf_prog_put'])).get('bpf_prog_put')?.[0];
    assert.ok(addr, 'bpf_prog_put is in /proc/kallsyms');
    assert.equal(o['prog_put'], addr);
    assert.equal(o['no_such_symbol'], 0n);
    assert.equal(o['no_such_var'], 0n);
  } finally {
    coll.close();
  }
});

test('a typed ksym becomes a BTF id load the kernel resolves by name', kernelTest, async () => {
  const spec = await loadSpec('core_externs');
  const inKallsyms = readKallsyms(new Set(['runqueues'])).has('runqueues');
  const load = Collection.load(spec, { programs: { only: ['core_typed_ksym'] } });
  if (inKallsyms) {
    const coll = await load;
    try {
      assert.equal(prog(coll, 'core_typed_ksym').testRun({ ctx: RAW_TP_CTX }).retval, 1);
    } finally {
      coll.close();
    }
  } else {
    // Without CONFIG_KALLSYMS_ALL the kernel cannot find data symbols: it says so for the very
    // BTF VAR bpfkit named, which is what libbpf gets too.
    await assert.rejects(load, (e: unknown) => e instanceof VerifierError && /kernel symbol 'runqueues'/.test(e.log));
  }
});

test('an unguarded call of a weak kfunc the kernel lacks fails with a VerifierError naming it', kernelTest, async () => {
  const spec = await loadSpec('core_externs');
  await assert.rejects(Collection.load(spec, { programs: { only: ['core_weak_kfunc'] } }), (e: unknown) => {
    assert.ok(e instanceof VerifierError, `a VerifierError, got ${String(e)}`);
    assert.match(e.message, /calls the weak kfunc bpfkit_no_such_kfunc \(instruction \d+\), which this kernel lacks/);
    assert.match(e.log, /invalid kernel function call not eliminated/);
    return true;
  });
});

test('BTF with extern declarations loads into the kernel only once sanitized', kernelTest, async () => {
  const spec = await loadSpec('core_externs');
  const raw = btfLoadRaw(spec.btf!.marshal(), null, 0);
  if (raw >= 0) native().close(raw);
  assert.ok(raw < 0, 'the kernel refuses extern linkage as the compiler wrote it');
  const sanitized = loadBtf(sanitizeBtfForKernel(spec.btf!));
  assert.ok('fd' in sanitized, 'error' in sanitized ? sanitized.error.message : '');
  sanitized.fd.close();
  const coll = await Collection.load(spec, { programs: { only: ['core_externs'] } });
  try {
    assert.equal(coll.btfError, undefined, 'the collection loaded the object\'s BTF (sanitised)');
  } finally {
    coll.close();
  }
});

// --- the same objects through libbpf ---------------------------------------------------------------

/** Builds test/fixtures/libbpf-xlated.c; undefined (or a failure on CI) when libbpf-dev is missing. */
function buildLibbpfLoader(dir: string): string | undefined {
  const out = join(dir, 'libbpf-xlated');
  const r = spawnSync('cc', ['-O1', '-Wall', '-o', out, join(ROOT, 'test', 'fixtures', 'libbpf-xlated.c'), '-lbpf'], { encoding: 'utf8' });
  if (r.status !== 0) {
    if (onCI) assert.fail(`cannot build the libbpf loader (apt-get install libbpf-dev): ${r.stderr || r.error}`);
    return undefined;
  }
  return out;
}

/** Instruction bytes with the map id (src_reg 1 or 2) of every ld_imm64 zeroed: ids differ between loads. */
function withoutMapIds(bytes: Uint8Array): Uint8Array {
  const b = new Uint8Array(bytes);
  const v = new DataView(b.buffer);
  for (let i = 0; i + 16 <= b.length; i += 8) {
    if (b[i] !== 0x18) continue;
    const src = b[i + 1]! >> 4;
    if (src === 1 || src === 2) v.setInt32(i + 4, 0, true);
    i += 8;
  }
  return b;
}

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  for (let i = 0; i < Math.max(a.length, b.length); i += 8) {
    const x = Buffer.from(a.subarray(i, i + 8)).toString('hex');
    const y = Buffer.from(b.subarray(i, i + 8)).toString('hex');
    if (x !== y) return `instruction ${i / 8}: libbpf ${x || '(none)'}, bpfkit ${y || '(none)'}`;
  }
  return 'none';
}

/** Objects libbpf 1.1 loads (legacy_maps and subprog_same_section it refuses; reject no one loads). */
const DIFFERENTIAL_OBJECTS = [
  'core_task', 'core_externs', 'globals', 'maps', 'packet_count', 'progtypes', 'ringbuf', 'subprog', 'link_counters',
];

/** libbpf names global-data maps "<object prefix>.<section>"; bpfkit by the section alone. */
function sectionOf(libbpfName: string): string {
  const m = /\.(rodata|data|bss|kconfig)(\..*)?$/.exec(libbpfName);
  return m ? m[0] : libbpfName;
}

test('differential: libbpf and bpfkit leave the kernel with the same programs and maps', kernelTest, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-core-'));
  try {
    const loader = buildLibbpfLoader(dir);
    if (!loader) {
      t.skip('cc or libbpf-dev is missing');
      return;
    }
    let programs = 0;
    let maps = 0;
    for (const name of DIFFERENTIAL_OBJECTS) {
      const out: string = execFileSync(loader, [obj(name)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const reference = new Map<string, Buffer>();
      const refMaps = new Map<string, number[]>();
      for (const line of out.trim().split('\n')) {
        const parts = line.split(' ');
        if (parts[0] === 'map') refMaps.set(sectionOf(parts[1]!), parts.slice(2).map(Number));
        else reference.set(parts[0]!, Buffer.from(parts[1]!, 'hex'));
      }
      const coll = await Collection.load(await loadSpec(name));
      try {
        assert.deepEqual([...coll.programs.keys()].sort(), [...reference.keys()].sort(), `${name}: the same programs load`);
        for (const [prog, ref] of reference) {
          const ours = coll.programs.get(prog)!.translatedInstructions();
          const a = withoutMapIds(ref);
          const b = withoutMapIds(ours);
          assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${name}/${prog}: ${firstDifference(a, b)}`);
          programs++;
        }
        for (const [mapName, def] of refMaps) {
          // libbpf keeps one .kconfig map per object; bpfkit gives each program its own (not in coll.maps).
          if (mapName === '.kconfig') continue;
          const m = coll.maps.get(mapName);
          assert.ok(m, `${name}: bpfkit created map ${mapName} as libbpf did`);
          const i = m.info();
          const { mapType: types } = await import('../../src/abi/constants.js');
          assert.deepEqual([types.number(i.type as never), i.keySize, i.valueSize, i.maxEntries, i.flags], def, `${name}/${mapName}: type, key size, value size, max_entries, flags`);
          maps++;
        }
      } finally {
        coll.close();
      }
    }
    t.diagnostic(`compared ${programs} programs and ${maps} maps over ${DIFFERENTIAL_OBJECTS.length} objects`);
    assert.ok(programs >= 37 && maps >= 33, `compared ${programs} programs and ${maps} maps`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a loaded program disassembles with what each CO-RE relocation became on this kernel', kernelTest, async () => {
  const coll = await Collection.load(await loadSpec('core_task'));
  try {
    const text = coll.programs.get('core_current')!.disassemble();
    const tgid = kernelBtf().byName('task_struct', 'struct')[0] as BtfStruct;
    const member = tgid.members.find((m) => m.name === 'tgid')!;
    assert.match(text, new RegExp(`CO-RE field_byte_offset task_struct\\.tgid = ${member.bitOffset / 8}\\b`));
    assert.match(coll.programs.get('core_current')!.disassemble({ translated: true }), /exit/);
  } finally {
    coll.close();
  }
});

test('kernel BTF for CO-RE can come from a file (kernels without /sys/kernel/btf/vmlinux)', kernelTest, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-kbtf-'));
  try {
    const copy = join(dir, 'vmlinux.btf');
    execFileSync('cp', ['/sys/kernel/btf/vmlinux', copy]);
    const ok = await Collection.load(await loadSpec('core_task'), { kernelBtf: copy, programs: { only: ['core_current'] } });
    ok.close();
    // BTF that lacks the kernel's types: the relocations are resolved against it, not the running kernel.
    const empty = join(dir, 'empty.btf');
    const { Btf } = await import('../../src/btf/btf.js');
    const intOnly = Btf.fromTypes([
      { kind: 'void', id: 0, name: '' },
      { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
    ]);
    (await import('node:fs')).writeFileSync(empty, intOnly.marshal());
    await assert.rejects(Collection.load(await loadSpec('core_task'), { kernelBtf: empty, programs: { only: ['core_current'] } }),
      (e: unknown) => e instanceof VerifierError && /CO-RE relocation failed/.test(e.message));
    await assert.rejects(Collection.load(await loadSpec('core_task'), { kernelBtf: join(dir, 'missing.btf') }),
      (e: unknown) => e instanceof Error && /cannot read the kernel BTF file .*missing\.btf/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
