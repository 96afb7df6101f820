/**
 * The BPF side of the project's tools and examples, run in the emulated kernel (bpfkit/testing):
 * no root, no BPF-capable kernel, no native addon. Each object is loaded the way its user space
 * loads it, fed inputs built the way the kernel builds them, and its output read back with the
 * tool's own code.
 *
 * - examples/xdp-firewall (test/bpf/build/firewall.bpf.o): crafted frames against --drop rules
 *   written as main.ts writes them; verdicts, per-rule and total counters (summed over CPUs).
 * - execsnoop (src/tools/execsnoop/gen/execsnoop.bpf.o): its sys_enter/exit_execve(at) tracepoint
 *   programs on a context laid out like the tracepoint's, with the caller's strings and argv in a
 *   ProbeMemory image and its task_struct where the CO-RE relocations (made against the running
 *   kernel's BTF) point; the ring buffer records decoded by src/tools/execsnoop/event.ts; the
 *   settings made by the tool's own option parser. Then its kprobe program on a struct pt_regs.
 * - pktcount (src/tools/pktcount/gen/pktcount.bpf.o): IPv4 and IPv6 frames through the tool's
 *   PacketCounter, its flows and totals as the tool reads them.
 *
 * The execsnoop programs need the kernel's BTF (/sys/kernel/btf/vmlinux, readable by every user)
 * for their CO-RE relocations; without it those tests are skipped.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { accessSync, constants } from 'node:fs';
import { asm, EmulatorFault, label, loadAssembly, ProbeMemory, useEmulatedKernel } from '../../src/testing/index.js';
import { CORE_POISON_HELPER } from '../../src/btf/core.js';
import { Collection } from '../../src/load/collection.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import type { BpfMap } from '../../src/objects/map.js';
import type { Program } from '../../src/objects/program.js';
import { parseCidr } from '../../src/objects/cidr.js';
import { ExternResolver } from '../../src/load/externs.js';
import { kernelBtf } from '../../src/kernel/attach-target.js';
import { obj } from '../helpers/index.js';
import { parseRules } from '../../examples/xdp-firewall/main.js';
import { readCounter } from '../../examples/common.js';
import { loadExecsnoop, specExecsnoop, type ExecsnoopObjects } from '../../src/tools/execsnoop/gen/execsnoop.js';
import { decodeRecord, jsonLine, retText, tableRow, toRecord, type ExecRecord } from '../../src/tools/execsnoop/event.js';
import { parseExecsnoopArgs } from '../../src/tools/execsnoop/options.js';
import { rodataFor } from '../../src/tools/execsnoop/tool.js';
import { PacketCounter } from '../../src/tools/pktcount/counter.js';
import { parseExclusion } from '../../src/tools/pktcount/exclude.js';
import { formatAddress, formatEndpoint, protoName } from '../../src/tools/pktcount/snapshot.js';

/** What bpf_ktime_get_ns() returns in these runs. */
const KTIME = 987_654_321_000n;
const kernel = useEmulatedKernel({ clock: () => KTIME, task: { pid: 4321, tgid: 4321, uid: 1000, gid: 1000, comm: 'bash' } });
const TASK0 = { ...kernel.task };

after(() => {
  assert.deepEqual(kernel.openFds(), [], 'every test closed what it opened');
  assert.equal(kernel.maps().length, 0);
  assert.equal(kernel.programs().length, 0);
  const cache = Object.keys(createRequire(import.meta.url).cache);
  assert.ok(!cache.some((p) => p.endsWith('.node')), 'the native addon was never loaded');
});

const XDP_DROP = 1;
const XDP_PASS = 2;

// ---- frames -------------------------------------------------------------------------------------

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function be16(v: number): Uint8Array {
  return Uint8Array.of(v >> 8, v & 0xff);
}

function addr(text: string): Uint8Array {
  return parseCidr(text).address;
}

/** Ethernet from and to local MACs: `ethertype`, after one VLAN tag per TPID in `tags` (802.1Q / 802.1ad). */
function eth(ethertype: number, payload: Uint8Array, tags: readonly number[] = []): Uint8Array {
  const mac = Uint8Array.of(2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2);
  // Each tag is a TPID where the ethertype would be, then its TCI; the real ethertype follows the last.
  const chain = tags.map((tpid, i) => concat(be16(tpid), be16(100 + i)));
  return concat(mac, ...chain, be16(ethertype), payload);
}

function udp(sport: number, dport: number, payload = new Uint8Array(4)): Uint8Array {
  return concat(be16(sport), be16(dport), be16(8 + payload.length), be16(0), payload);
}

function tcp(sport: number, dport: number): Uint8Array {
  const h = new Uint8Array(20);
  h.set(be16(sport), 0);
  h.set(be16(dport), 2);
  h[12] = 0x50;
  h[13] = 0x02; // SYN
  return h;
}

/** An IPv4 header (no options unless ihl says more) and its payload. */
function ipv4(src: string, proto: number, payload: Uint8Array, o: { fragOffset?: number; ihl?: number; version?: number } = {}): Uint8Array {
  const h = new Uint8Array(20);
  h[0] = ((o.version ?? 4) << 4) | (o.ihl ?? 5);
  h.set(be16(20 + payload.length), 2);
  h.set(be16(o.fragOffset ?? 0), 6);
  h[8] = 64;
  h[9] = proto;
  h.set(addr(src), 12);
  h.set(addr('192.0.2.254'), 16);
  return concat(h, payload);
}

/** An IPv6 header from `src` whose next header is `next`, then `payload` (extension headers included). */
function ipv6(src: string, next: number, payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(40);
  h[0] = 0x60;
  h.set(be16(payload.length), 4);
  h[6] = next;
  h[7] = 64;
  h.set(addr(src), 8);
  h.set(addr('2001:db8::ffff'), 24);
  return concat(h, payload);
}

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

function v4Frame(src: string, extra = 0, tags: readonly number[] = []): Uint8Array {
  return eth(ETH_P_IP, ipv4(src, 17, udp(1234, 53, new Uint8Array(4 + extra))), tags);
}

const ARP = eth(ETH_P_ARP, new Uint8Array(28));

// ---- examples/xdp-firewall ----------------------------------------------------------------------

describe('examples/xdp-firewall: firewall.bpf.o', () => {
  it('drops sources in the --drop networks (the longest prefix decides), counts per rule and in total, passes the rest', async () => {
    // The rules as main.ts checks and writes them: the trie maps each network to its rule index.
    const rules = parseRules(['10.0.0.0/8', '10.1.0.0/16', '192.0.2.7']);
    assert.deepEqual(rules.map((r) => r.cidr), ['10.0.0.0/8', '10.1.0.0/16', '192.0.2.7/32']);
    await using coll = await Collection.load(await CollectionSpec.fromFile(obj('firewall')));
    const prog = coll.programs.get('xdp_firewall')!;
    const trie = coll.maps.get('drop_rules')!;
    const ruleDrops = coll.maps.get('rule_drops')!;
    const totals = coll.maps.get('totals')!;
    rules.forEach((r, i) => trie.update(r.cidr, i));

    const expected = { rules: rules.map(() => ({ packets: 0, bytes: 0 })), dropped: { packets: 0, bytes: 0 }, passed: { packets: 0, bytes: 0 } };
    const cpus = Math.min(kernel.cpus, 2);
    let turn = 0;
    /** One frame through the program, on alternating CPUs; `rule` is the index it should hit, 'pass' counted as passed, null not counted. */
    const send = (frame: Uint8Array, rule: number | 'pass' | null, repeat = 1): void => {
      kernel.cpu = turn++ % cpus;
      const r = prog.testRun({ data: frame, repeat });
      if (typeof rule === 'number') {
        assert.equal(r.retval, XDP_DROP, `dropped by rule ${rule}`);
        for (const c of [expected.rules[rule]!, expected.dropped]) {
          c.packets += repeat;
          c.bytes += repeat * frame.length;
        }
      } else {
        assert.equal(r.retval, XDP_PASS, 'passed');
        assert.deepEqual(r.data, frame, 'passed unchanged');
        if (rule === 'pass') {
          expected.passed.packets += repeat;
          expected.passed.bytes += repeat * frame.length;
        }
      }
    };
    send(v4Frame('10.2.3.4'), 0);
    send(v4Frame('10.1.200.1', 100), 1); // in 10/8 too, but 10.1/16 is longer
    send(v4Frame('192.0.2.7'), 2);
    send(v4Frame('192.0.2.8'), 'pass'); // next to the /32
    send(v4Frame('172.16.0.1', 40), 'pass');
    send(v4Frame('10.9.9.9', 0, [ETH_P_8021Q]), 0); // one VLAN tag is looked through
    send(v4Frame('10.1.0.1', 0, [ETH_P_8021AD]), 1);
    send(eth(ETH_P_IPV6, ipv6('2001:db8::1', 17, udp(1, 2))), null); // not IPv4: passed, not counted
    send(ARP, null);
    send(eth(ETH_P_IP, new Uint8Array(10)), null); // IPv4 header cut short
    send(eth(ETH_P_IP, ipv4('10.2.3.4', 17, udp(1, 2), { version: 6 })), null); // not version 4
    send(v4Frame('10.200.0.1'), 0, 50);

    const snapshot = () => ({
      rules: rules.map((_, i) => readCounter(ruleDrops, i)),
      dropped: readCounter(totals, 0),
      passed: readCounter(totals, 1),
    });
    assert.deepEqual(snapshot(), expected);
    assert.deepEqual(snapshot().rules.map((c) => c.packets), [52, 2, 1]);

    // Rules come and go while the program runs: without 10.1/16, 10/8 catches its sources.
    trie.delete('10.1.0.0/16');
    send(v4Frame('10.1.200.1', 100), 0);
    for (const r of rules) trie.delete(r.cidr);
    send(v4Frame('10.1.200.1', 100), 'pass');
    send(v4Frame('192.0.2.7'), 'pass');
    assert.deepEqual(snapshot(), expected);
  });
});

// ---- execsnoop ----------------------------------------------------------------------------------

const haveKernelBtf = (() => {
  try {
    accessSync('/sys/kernel/btf/vmlinux', constants.R_OK);
    return true;
  } catch {
    return false;
  }
})();
const needsBtf = { skip: haveKernelBtf ? false : 'no readable /sys/kernel/btf/vmlinux (the CO-RE relocations need it)' } as const;

/** A member's byte offset in a struct of the running kernel (what the CO-RE relocations use). */
function kernelOffset(struct: string, member: string): bigint {
  const t = kernelBtf().byName(struct, 'struct')[0];
  assert.ok(t && t.kind === 'struct', `the kernel has struct ${struct}`);
  const m = t.members.find((x) => x.name === member);
  assert.ok(m, `struct ${struct} has a member ${member}`);
  return BigInt(m.bitOffset / 8);
}

const CURRENT_TASK = 0xffff888000100000n;
const PARENT_TASK = 0xffff888000200000n;
const PPID = 1234;

/** The traced process's memory: its strings and argv at user addresses, unmapped gaps between them. */
class UserMemory {
  readonly mem = new ProbeMemory({ currentTask: CURRENT_TASK });
  #next = 0x7ffd00001000n;

  constructor() {
    // task->real_parent->tgid, where the CO-RE relocations against the kernel's BTF point.
    this.mem.u64(CURRENT_TASK + kernelOffset('task_struct', 'real_parent'), PARENT_TASK);
    this.mem.u32(PARENT_TASK + kernelOffset('task_struct', 'tgid'), PPID);
  }

  #take(n: number): bigint {
    const at = this.#next;
    this.#next += BigInt((n + 15) & ~15) + 64n;
    return at;
  }

  string(text: string): bigint {
    const at = this.#take(Buffer.byteLength(text) + 1);
    this.mem.string(at, text);
    return at;
  }

  /** A NULL-terminated array of pointers. */
  pointers(ptrs: readonly bigint[]): bigint {
    const at = this.#take((ptrs.length + 1) * 8);
    ptrs.forEach((p, i) => this.mem.u64(at + BigInt(i * 8), p));
    this.mem.u64(at + BigInt(ptrs.length * 8), 0n);
    return at;
  }

  argv(args: readonly string[]): bigint {
    return this.pointers(args.map((a) => this.string(a)));
  }

  /** An address nothing is mapped at: a page the process has not touched. */
  unmapped(): bigint {
    return this.#take(4096);
  }
}

/** struct sys_enter_execve_ctx (tracefs format): common fields, syscall nr, then filename, argv, envp. */
function enterCtx(filename: bigint, argv: bigint): Uint8Array {
  const b = new Uint8Array(40);
  const v = new DataView(b.buffer);
  v.setInt32(8, 59, true); // __NR_execve (x86_64)
  v.setBigUint64(16, filename, true);
  v.setBigUint64(24, argv, true);
  return b;
}

/** struct sys_enter_execveat_ctx: fd, filename, argv, envp, flags. */
function enterAtCtx(fd: number, filename: bigint, argv: bigint): Uint8Array {
  const b = new Uint8Array(56);
  const v = new DataView(b.buffer);
  v.setInt32(8, 322, true); // __NR_execveat
  v.setBigInt64(16, BigInt(fd), true);
  v.setBigUint64(24, filename, true);
  v.setBigUint64(32, argv, true);
  return b;
}

/** struct sys_exit_ctx: the return value. */
function exitCtx(ret: number): Uint8Array {
  const b = new Uint8Array(24);
  new DataView(b.buffer).setBigInt64(16, BigInt(ret), true);
  return b;
}

const TRACEPOINTS = ['tp_enter_execve', 'tp_enter_execveat', 'tp_exit_execve', 'tp_exit_execveat'];

/** The object as `bpfkit execsnoop <args>` loads it (its settings from the tool's own parser). */
async function loadForArgs(args: readonly string[], only = TRACEPOINTS): Promise<ExecsnoopObjects> {
  const options = parseExecsnoopArgs(args);
  assert.notEqual(options, 'help');
  return loadExecsnoop({ rodata: rodataFor(options as Exclude<typeof options, 'help'>), programs: { only } });
}

/** The ring buffer's records, as the tool turns them into records (the time is not looked at). */
function records(): ExecRecord[] {
  return kernel.readRingbuf('events').map((raw) => {
    const e = decodeRecord(raw);
    assert.equal(e.ktime_ns, KTIME, 'bpf_ktime_get_ns() at entry');
    return toRecord(e, new Date(0));
  });
}

/** A record without its time, for comparisons. */
function fields(r: ExecRecord): Omit<ExecRecord, 'time'> {
  const { time: _time, ...rest } = r;
  return rest;
}

function run(prog: Program, ctx: Uint8Array): void {
  assert.equal(prog.testRun({ ctx }).retval, 0);
}

describe('execsnoop: the BPF side, from the tracepoints', () => {
  const restoreTask = (): void => void Object.assign(kernel.task, TASK0);

  it('sys_enter_execve: one event with pid, tid, ppid, uid, gid, comm, filename and args, as the tool prints it', needsBtf, async () => {
    restoreTask();
    using o = await loadForArgs([]);
    const user = new UserMemory();
    kernel.memory = user.mem;
    const args = ['ls', '-l', 'two words', '', 'ünïcode'];
    run(o.programs.tpEnterExecve, enterCtx(user.string('/usr/bin/ls'), user.argv(args)));
    const [r, ...more] = records();
    assert.equal(more.length, 0);
    assert.deepEqual(fields(r!), {
      pid: 4321, tid: 4321, ppid: PPID, uid: 1000, gid: 1000, comm: 'bash', filename: '/usr/bin/ls', args,
      ret: 0, truncated: false, execveat: false, fault: false,
    });
    const fmt = { ret: false, threads: false };
    const json = JSON.parse(jsonLine(r!, fmt)) as Record<string, unknown>;
    assert.deepEqual({ ...json, time: undefined }, { time: undefined, pid: 4321, ppid: PPID, uid: 1000, comm: 'bash', filename: '/usr/bin/ls', args });
    assert.match(tableRow(r!, fmt), /^\S+ +4321 +1234 +1000 +bash +\/usr\/bin\/ls +ls -l 'two words' '' 'ünïcode'\n$/);
    assert.equal(kernel.readRingbuf('events').length, 0, 'read once');
  });

  it('limits: a filename or argument cut to its buffer, more than 20 arguments; execveat', needsBtf, async () => {
    restoreTask();
    using o = await loadForArgs([]);
    const user = new UserMemory();
    kernel.memory = user.mem;
    const long = 'x'.repeat(300);
    const exact = `/${'y'.repeat(254)}`; // 255 bytes: fits with its NUL
    run(o.programs.tpEnterExecve, enterCtx(user.string(long), user.argv(['a', 'b'.repeat(200), 'c'])));
    run(o.programs.tpEnterExecve, enterCtx(user.string(exact), user.argv(Array.from({ length: 25 }, (_, i) => `arg${i}`))));
    run(o.programs.tpEnterExecve, enterCtx(user.string('/bin/true'), user.argv(Array.from({ length: 20 }, (_, i) => `${i}`))));
    run(o.programs.tpEnterExecveat, enterAtCtx(3, user.string(''), user.argv(['fexecve'])));
    const [cut, many, twenty, at] = records();
    assert.equal(cut!.filename, `${'x'.repeat(255)}...`);
    assert.deepEqual(cut!.args, ['a', `${'b'.repeat(127)}...`, 'c']);
    assert.equal(cut!.truncated, true);
    assert.equal(many!.filename, exact);
    assert.deepEqual(many!.args, [...Array.from({ length: 20 }, (_, i) => `arg${i}`), '...']);
    assert.equal(many!.truncated, true);
    assert.deepEqual(twenty!.args, Array.from({ length: 20 }, (_, i) => `${i}`));
    assert.equal(twenty!.truncated, false, 'exactly 20 arguments are all there');
    assert.deepEqual(fields(at!), { ...fields(twenty!), filename: '', args: ['fexecve'], execveat: true });
  });

  it('memory the probe cannot read: an unknown filename or argument, the ones after it still read', needsBtf, async () => {
    restoreTask();
    using o = await loadForArgs([]);
    const user = new UserMemory();
    kernel.memory = user.mem;
    const prog = o.programs.tpEnterExecve;
    run(prog, enterCtx(user.unmapped(), user.argv(['sh'])));
    run(prog, enterCtx(user.string('/bin/sh'), user.pointers([user.string('sh'), user.unmapped(), user.string('-c')])));
    run(prog, enterCtx(user.string('/bin/sh'), user.unmapped()));
    run(prog, enterCtx(user.string('/bin/sh'), 0n)); // execve(path, NULL, ...) is allowed
    const [noName, noArg, noArgv, nullArgv] = records().map(fields);
    assert.equal(noName!.filename, null);
    assert.deepEqual(noName!.args, ['sh']);
    assert.equal(noName!.fault, true);
    assert.deepEqual(noArg!.args, ['sh', null, '-c']);
    assert.equal(noArg!.fault, true);
    assert.deepEqual(noArgv!.args, []);
    assert.equal(noArgv!.fault, true);
    assert.deepEqual(nullArgv, { ...noArgv, fault: false });
    const fmt = { ret: false, threads: false };
    assert.match(tableRow({ ...noArg!, time: new Date() }, fmt), / \/bin\/sh +sh \? -c\n$/);
  });

  it('--ret: the entry parks the event by tgid, the exit sends it with the return value', needsBtf, async () => {
    restoreTask();
    using o = await loadForArgs(['--ret']);
    const user = new UserMemory();
    kernel.memory = user.mem;
    run(o.programs.tpEnterExecve, enterCtx(user.string('/nonexistent'), user.argv(['nonexistent'])));
    assert.equal(kernel.readRingbuf('events').length, 0, 'nothing before the return');
    assert.deepEqual([...o.maps.inflight.keys()], [4321]);
    run(o.programs.tpExitExecve, exitCtx(-2));
    const [failed] = records();
    assert.equal(failed!.ret, -2);
    assert.equal(retText(failed!.ret), 'ENOENT');
    assert.equal(failed!.filename, '/nonexistent');
    assert.deepEqual([...o.maps.inflight.keys()], [], 'taken out of inflight');
    run(o.programs.tpExitExecve, exitCtx(0));
    assert.equal(kernel.readRingbuf('events').length, 0, 'an exit without its entry sends nothing');
    run(o.programs.tpEnterExecveat, enterAtCtx(-100, user.string('/bin/true'), user.argv(['true'])));
    run(o.programs.tpExitExecveat, exitCtx(0));
    const [ok] = records();
    assert.deepEqual({ ret: ok!.ret, execveat: ok!.execveat, filename: ok!.filename }, { ret: 0, execveat: true, filename: '/bin/true' });
    assert.match(tableRow(ok!, { ret: true, threads: false }), / bash +0 +\/bin\/true +true\n$/);
  });

  it('filters in the kernel: --pid, --uid, --comm, and threads only with --threads', needsBtf, async () => {
    const cases: [string[], Partial<typeof TASK0>, boolean][] = [
      [['--pid', '4321'], {}, true],
      [['--pid', '4322'], {}, false],
      [['--uid', '1000'], {}, true],
      [['--uid', '0'], {}, false],
      [['--comm', 'bash'], {}, true],
      [['--comm', 'bas'], {}, false],
      [['--comm', 'bashful'], {}, false],
      [[], { pid: 4325 }, false], // a thread other than the group leader
      [['--threads'], { pid: 4325 }, true],
    ];
    for (const [args, task, seen] of cases) {
      restoreTask();
      Object.assign(kernel.task, task);
      using o = await loadForArgs(args);
      const user = new UserMemory();
      kernel.memory = user.mem;
      run(o.programs.tpEnterExecve, enterCtx(user.string('/bin/true'), user.argv(['true'])));
      const got = records();
      assert.equal(got.length, seen ? 1 : 0, `execsnoop ${args.join(' ')} with task ${JSON.stringify(task)}`);
      if (seen && task.pid) assert.deepEqual([got[0]!.pid, got[0]!.tid], [4321, 4325]);
    }
    restoreTask();
  });

  it('a full ring buffer: events are dropped and counted in stats', needsBtf, async () => {
    restoreTask();
    // The tool's object with a one-page ring: room for a few events only.
    const spec = specExecsnoop();
    spec.maps.get('events')!.maxEntries = 4096;
    await using coll = await Collection.load(spec, { programs: { only: ['tp_enter_execve'] } });
    const user = new UserMemory();
    kernel.memory = user.mem;
    const prog = coll.programs.get('tp_enter_execve')!;
    const ctx = enterCtx(user.string('/bin/true'), user.argv(['true', 'x'.repeat(60)]));
    const runs = 30;
    for (let i = 0; i < runs; i++) run(prog, ctx);
    const delivered = kernel.readRingbuf('events').length;
    const stats = coll.maps.get('stats') as BpfMap<number, { dropped: bigint; inflight_full: bigint }[]>;
    const dropped = stats.lookup(0)!.reduce((n, s) => n + s.dropped, 0n);
    assert.ok(delivered > 0 && delivered < runs, `some delivered: ${delivered}`);
    assert.equal(Number(dropped), runs - delivered);
  });
});

describe('the emulator and failed CO-RE relocations', () => {
  it('a program with a poisoned call loads (the verifier refuses it only on a path it reaches); reaching it stops the run', () => {
    // The call stands where a guard (bpf_core_field_exists() and friends) keeps the program off:
    // here, a packet longer than 20 bytes.
    const prog = loadAssembly([
      asm.ldx('w', 'r2', 'r1', 0), // data
      asm.ldx('w', 'r3', 'r1', 4), // data_end
      asm.alu64('sub', 'r3', 'r2'),
      asm.mov64('r0', 7),
      asm.jmp('gt', 'r3', 20, 'poisoned'),
      asm.exit(),
      label('poisoned'),
      asm.call(CORE_POISON_HELPER),
      asm.exit(),
    ]);
    try {
      assert.equal(prog.testRun({ data: new Uint8Array(14) }).retval, 7);
      assert.throws(() => prog.testRun({ data: new Uint8Array(60) }), (e: unknown) => e instanceof EmulatorFault && /failed CO-RE relocation/.test(e.message));
    } finally {
      prog.close();
    }
  });
});

describe('execsnoop: the BPF side, from the kprobes', () => {
  const x64 = process.arch === 'x64' ? needsBtf : { skip: 'pt_regs laid out for x86_64 only' };

  it('ksys_execve reads the syscall arguments from struct pt_regs (CO-RE), through the wrapper when the kernel has one', x64, async () => {
    Object.assign(kernel.task, TASK0);
    // Loads all eight programs, as the tool's kprobe hook does: CO-RE relocations that find no
    // arm64 registers in the kernel's struct pt_regs leave poisoned calls on paths never taken.
    using o = await loadExecsnoop();
    const externs = new ExternResolver();
    let wrapped: boolean;
    try {
      // LINUX_HAS_SYSCALL_WRAPPER, as the loader computed it.
      wrapped = externs.kallsyms(new Set(['__x64_sys_bpf'])).size > 0;
    } finally {
      externs.close();
    }
    const user = new UserMemory();
    kernel.memory = user.mem;
    const size = kernelBtf().sizeof(kernelBtf().byName('pt_regs', 'struct')[0]!.id);
    const regs = (filename: bigint, argv: bigint): Uint8Array => {
      const b = new Uint8Array(size);
      const v = new DataView(b.buffer);
      v.setBigUint64(Number(kernelOffset('pt_regs', 'di')), filename, true);
      v.setBigUint64(Number(kernelOffset('pt_regs', 'si')), argv, true);
      return b;
    };
    const syscallRegs = regs(user.string('/usr/bin/env'), user.argv(['env', '-i']));
    let ctx = syscallRegs;
    if (wrapped) {
      // The probed __x64_sys_execve(const struct pt_regs *regs): di points to the user's registers.
      const at = 0xffffc90000a0ff58n;
      user.mem.map(at, syscallRegs);
      ctx = new Uint8Array(size);
      new DataView(ctx.buffer).setBigUint64(Number(kernelOffset('pt_regs', 'di')), at, true);
    }
    run(o.programs.ksysExecve, ctx);
    const [r, ...more] = records();
    assert.equal(more.length, 0);
    assert.deepEqual({ filename: r!.filename, args: r!.args, pid: r!.pid, ppid: r!.ppid }, { filename: '/usr/bin/env', args: ['env', '-i'], pid: 4321, ppid: PPID });
  });
});

// ---- pktcount -----------------------------------------------------------------------------------

describe('pktcount: pktcount.bpf.o through the tool\'s PacketCounter', () => {
  it('counts TCP and UDP flows over IPv4 and IPv6 (VLAN tags and IPv6 extension headers skipped) and sorts out the rest', async () => {
    Object.assign(kernel.task, TASK0);
    const exclusions = [parseExclusion('10.9.0.0/16', '--exclude'), parseExclusion('2001:db8:bad::/48', '--exclude')];
    using counter = await PacketCounter.load({ maxEntries: 64, exclusions });
    const prog = counter.collection.programs.get('xdp_pktcount')!;
    const send = (frame: Uint8Array, repeat = 1): number => {
      assert.equal(prog.testRun({ data: frame, repeat }).retval, XDP_PASS, 'every packet passes');
      return frame.length;
    };
    const hopByHop = (next: number, payload: Uint8Array) => concat(Uint8Array.of(next, 0, 0, 0, 0, 0, 0, 0), payload);
    const fragment = (next: number, offset: number, payload: Uint8Array) => concat(Uint8Array.of(next, 0), be16(offset << 3 | 1), new Uint8Array(4), payload);

    const tcp4 = send(eth(ETH_P_IP, ipv4('192.0.2.1', 6, tcp(40000, 80))), 3);
    const udp4 = send(eth(ETH_P_IP, ipv4('198.51.100.7', 17, udp(5353, 53))), 2);
    const vlan = send(v4Frame('198.51.100.7', 0, [ETH_P_8021Q]));
    const qinq = send(eth(ETH_P_IP, ipv4('203.0.113.9', 6, tcp(1234, 22)), [ETH_P_8021AD, ETH_P_8021Q]));
    const udp6 = send(eth(ETH_P_IPV6, ipv6('2001:db8::1', 0, hopByHop(17, udp(5353, 443)))));
    const tcp6 = send(eth(ETH_P_IPV6, ipv6('fd00::2', 44, fragment(6, 0, tcp(40000, 443)))), 2); // first fragment: has ports
    send(eth(ETH_P_IPV6, ipv6('fd00::2', 44, fragment(6, 8, new Uint8Array(16))))); // a later fragment: no ports
    send(eth(ETH_P_IPV6, ipv6('2001:db8:bad::5', 6, tcp(1, 2))), 4); // excluded
    send(eth(ETH_P_IP, ipv4('10.9.1.1', 17, udp(1, 2)))); // excluded
    send(eth(ETH_P_IP, ipv4('192.0.2.1', 1, new Uint8Array(8)))); // ICMP
    send(eth(ETH_P_IPV6, ipv6('fd00::3', 58, new Uint8Array(8)))); // ICMPv6
    send(eth(ETH_P_IP, ipv4('192.0.2.1', 17, udp(1, 2), { fragOffset: 0x10 }))); // a later IPv4 fragment
    send(eth(ETH_P_IP, ipv4('192.0.2.1', 6, tcp(1, 2), { ihl: 4 }))); // malformed: ihl < 5
    send(eth(ETH_P_IPV6, new Uint8Array(20))); // IPv6 header cut short
    send(eth(ETH_P_IP, ipv4('192.0.2.1', 6, new Uint8Array(10)))); // TCP header cut short
    send(ARP, 2);

    const flows = counter.readFlows().map((f) =>
      `${protoName(f.proto)} ${formatEndpoint(formatAddress(f.saddr, f.family), f.srcPort)} -> ${f.dstPort}: ${f.packets} packets, ${f.bytes} bytes`).sort();
    assert.deepEqual(flows, [
      `tcp 192.0.2.1:40000 -> 80: 3 packets, ${3 * tcp4} bytes`,
      `tcp 203.0.113.9:1234 -> 22: 1 packets, ${qinq} bytes`,
      `tcp [fd00::2]:40000 -> 443: 2 packets, ${2 * tcp6} bytes`,
      `udp 198.51.100.7:1234 -> 53: 1 packets, ${vlan} bytes`,
      `udp 198.51.100.7:5353 -> 53: 2 packets, ${2 * udp4} bytes`,
      `udp [2001:db8::1]:5353 -> 443: 1 packets, ${udp6} bytes`,
    ]);
    assert.deepEqual(counter.readTotals(), {
      packets: 3 + 2 + 1 + 1 + 1 + 2 + 1 + 4 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2,
      counted: 3 + 2 + 1 + 1 + 1 + 2, excluded: 5, nonIp: 2, otherL4: 4, malformed: 3, untracked: 0,
    });
  });
});
