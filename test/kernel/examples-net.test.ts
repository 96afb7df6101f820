/**
 * The examples under examples/ (the XDP firewall, the tc counter, the socket filter counter), run
 * the way their users run them: as commands (`node dist/examples/<name>/main.js ...`), in a child
 * process, against real traffic, ended by a signal.
 *
 * Network: two namespaces joined by one veth pair, the way test/fixtures/link-env.ts builds its
 * namespaces, but without its bridge in the root namespace:
 *
 *     ns A  [ veth0 10.231.0.1/24, 10.231.0.3/24 ] <-----> [ veth0 10.231.0.2/24 ]  ns B
 *
 * B is "the host": a UDP echo server runs there and every example runs there too (`ip netns exec
 * B node main.js --iface veth0`), so datagrams from A arrive on B's veth0 (XDP, tc ingress), B's
 * answers leave through it (tc egress) and a packet socket bound to it sees both. A's second
 * address lets the firewall drop one source and pass another. Counts are exact because nothing
 * else crosses the link: IPv6 is off in both namespaces, link-local IGMP reports are off
 * (net.ipv4.igmp_link_local_mcast_reports=0, a per-namespace sysctl: interfaces of the root
 * namespace, like link-env's bridge ports, would send reports the test cannot silence without
 * changing the machine's own settings), and the neighbours are permanent (no ARP).
 *
 * Nothing runs in, or attaches to, the root namespace, let alone eth0. Every test deletes its
 * namespaces (which deletes the veth pair) even when it fails, and checks that nothing stayed
 * attached after the example exited.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readLinkInfo } from '../../src/sys/link.js';
import { getFdById, getNextId } from '../../src/sys/bpf.js';
import { haveTcx } from '../../src/kernel/features.js';
import { isRoot, kernelTest, patient, ROOT } from '../helpers/index.js';
import { assertProgramGone, LINK_TEST_PORT, sleep, startEcho, stopChild } from '../fixtures/link-env.js';
import { addNamespace, assertNetworkGone, deleteNamespaces, macOf, PID_TAG } from '../fixtures/net.js';

const PAYLOAD = 100;
/** An echo datagram on the wire: Ethernet + IPv4 + UDP headers and the payload (veth adds no padding or FCS). */
const FRAME = 14 + 20 + 8 + PAYLOAD;
/** Namespace A's second address: a source the firewall is not told to drop. */
const SECOND_SOURCE = '10.231.0.3';
/** Nothing listens there in B: UDP to it draws an ICMP port unreachable, TCP a RST. */
const CLOSED_PORT = LINK_TEST_PORT + 1;

function exampleMain(name: string): string {
  return join(ROOT, 'dist', 'examples', name, 'main.js');
}

// ---------------------------------------------------------------------------------------------
// Traffic, generated inside namespace A.

/** Sends `count` datagrams of PAYLOAD bytes from `src` to B, waits for their echoes (up to waitMs); prints "echoes N". */
const UDP_SCRIPT = `
const dgram = require('node:dgram');
const [dst, port, count, size, src, waitMs] = process.argv.slice(1);
const n = Number(count);
const s = dgram.createSocket('udp4');
let echoes = 0;
let done = false;
const finish = () => { if (done) return; done = true; process.stdout.write('echoes ' + echoes + '\\n'); s.close(); };
const timer = setTimeout(finish, Number(waitMs));
s.on('error', () => {});
s.on('message', () => { if (++echoes === n) { clearTimeout(timer); finish(); } });
s.bind(0, src, () => { for (let i = 0; i < n; i++) s.send(Buffer.alloc(Number(size), 0x61), Number(port), dst); });
`;

/** Connects to B's CLOSED_PORT; prints the error code (ECONNREFUSED when B answered with a RST). */
const TCP_SCRIPT = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.setTimeout(Number(process.argv[3]), () => { process.stdout.write('TIMEOUT\\n'); s.destroy(); });
s.on('connect', () => { process.stdout.write('CONNECTED\\n'); s.destroy(); });
s.on('error', (e) => process.stdout.write(e.code + '\\n'));
`;

/** The two namespaces and the addresses in them. */
interface Pair {
  nsA: string;
  nsB: string;
  /** Name of the veth end in each namespace. */
  dev: string;
  addrA: string;
  addrB: string;
}

function inNsA(p: Pair, script: string, args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', p.nsA, process.execPath, '-e', script, ...args], { encoding: 'utf8', timeout: patient(20_000) });
  if (r.status !== 0) assert.fail(`traffic generator in ${p.nsA} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * UDP datagrams from `src` (an address of namespace A) to `port` on B; the number of echoes that
 * came back. The generator stops as soon as every echo is in, so the default wait (for echoes that
 * should come) is patient; a caller expecting none gives a short `waitMs` of its own.
 */
function udp(p: Pair, o: { src: string; count: number; port?: number; waitMs?: number }): number {
  const outText = inNsA(p, UDP_SCRIPT, [p.addrB, String(o.port ?? LINK_TEST_PORT), String(o.count), String(PAYLOAD), o.src, String(o.waitMs ?? patient(3000))]);
  const m = /^echoes (\d+)$/.exec(outText);
  assert.ok(m, `unexpected output of the UDP generator: ${outText}`);
  return Number(m[1]);
}

function tcpToClosedPort(p: Pair): string {
  return inNsA(p, TCP_SCRIPT, [p.addrB, String(CLOSED_PORT), String(patient(3000))]);
}

// ---------------------------------------------------------------------------------------------
// The network.

function run(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command inside namespace B (where the examples run). */
function inB(p: Pair, cmd: string, ...args: string[]): string {
  return run('ip', 'netns', 'exec', p.nsB, cmd, ...args);
}

/** Builds the two namespaces and their veth pair; removes what it made if a step fails. */
function createPair(tag: string): Pair & { destroy(): void } {
  const p = {
    nsA: `bpfkit-ex${tag}${PID_TAG}-a`,
    nsB: `bpfkit-ex${tag}${PID_TAG}-b`,
    dev: 'veth0',
    addrA: '10.231.0.1',
    addrB: '10.231.0.2',
    destroy() {
      deleteNamespaces(this.nsA, this.nsB);
    },
  };
  try {
    for (const ns of [p.nsA, p.nsB]) addNamespace(ns, ['net.ipv4.igmp_link_local_mcast_reports=0']);
    // Both ends are created directly in their namespaces: nothing appears in the root namespace.
    run('ip', 'link', 'add', p.dev, 'netns', p.nsA, 'type', 'veth', 'peer', 'name', p.dev, 'netns', p.nsB);
    run('ip', '-n', p.nsA, 'addr', 'add', `${p.addrA}/24`, 'dev', p.dev);
    run('ip', '-n', p.nsA, 'addr', 'add', `${SECOND_SOURCE}/24`, 'dev', p.dev);
    run('ip', '-n', p.nsB, 'addr', 'add', `${p.addrB}/24`, 'dev', p.dev);
    const macA = macOf(p.nsA, p.dev);
    const macB = macOf(p.nsB, p.dev);
    run('ip', '-n', p.nsA, 'neigh', 'replace', p.addrB, 'lladdr', macB, 'dev', p.dev, 'nud', 'permanent');
    for (const a of [p.addrA, SECOND_SOURCE]) run('ip', '-n', p.nsB, 'neigh', 'replace', a, 'lladdr', macA, 'dev', p.dev, 'nud', 'permanent');
    for (const ns of [p.nsA, p.nsB]) run('ip', '-n', ns, 'link', 'set', p.dev, 'up');
  } catch (e) {
    p.destroy();
    throw e;
  }
  return p;
}

function assertPairGone(p: Pair): void {
  assertNetworkGone({ namespaces: [p.nsA, p.nsB] });
}

interface Net {
  p: Pair;
  /** B's veth0 ifindex (inside B). */
  ifindex: number;
  /** Starts an example inside B (SIGKILLed at the end of the test if still running). */
  start(name: string, args: string[]): Example;
}

/** Builds the network and B's UDP echo server, runs `fn`, then removes everything and checks it is gone. */
async function withNetwork(tag: string, fn: (net: Net) => Promise<void>): Promise<void> {
  const p = createPair(tag);
  let echo: ChildProcess | undefined;
  const examples: Example[] = [];
  try {
    echo = await startEcho(p);
    const ifindex = (JSON.parse(run('ip', '-n', p.nsB, '-j', 'link', 'show', 'dev', p.dev)) as { ifindex: number }[])[0]!.ifindex;
    assert.equal(udp(p, { src: p.addrA, count: 2 }), 2, `UDP echo from ${p.addrA} works before any example runs`);
    assert.equal(udp(p, { src: SECOND_SOURCE, count: 2 }), 2, `UDP echo from ${SECOND_SOURCE} works before any example runs`);
    await fn({
      p,
      ifindex,
      start(name, args) {
        const e = new Example(name, args, p.nsB);
        examples.push(e);
        return e;
      },
    });
  } finally {
    for (const e of examples) await e.kill();
    await stopChild(echo);
    p.destroy();
  }
  assertPairGone(p);
}

// ---------------------------------------------------------------------------------------------
// An example running as a child process, printing JSON lines (--json).

type Event = { event: string } & Record<string, unknown>;

interface CounterJson {
  packets: number;
  bytes: number;
}

class Example {
  readonly child: ChildProcess;
  readonly events: Event[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #wake: (() => void)[] = [];

  /** `ip netns exec` execs node in place: the child is the example itself, and gets the signals sent to it. */
  constructor(readonly name: string, args: string[], ns: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, exampleMain(name), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => { this.stderr += d; });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let ev: Event;
      try {
        ev = JSON.parse(line) as Event;
      } catch {
        ev = { event: 'not-json', line };
      }
      this.events.push(ev);
      this.#notify();
    });
    void this.exited.then(() => this.#notify());
  }

  #notify(): void {
    for (const w of this.#wake.splice(0)) w();
  }

  /** The first event (from index `from` on) that satisfies `pred`, waiting for it up to `timeoutMs`. */
  async waitFor(what: string, pred: (e: Event) => boolean, timeoutMs = patient(10_000), from = 0): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.events.length; i++) {
        const e = this.events[i]!;
        assert.notEqual(e.event, 'not-json', `${this.name} printed a line that is not JSON: ${String(e['line'])}`);
        if (pred(e)) return e;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        await sleep(50); // let the last lines arrive
        if (i < this.events.length) continue;
        assert.fail(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}; stderr: ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`${this.name}: no ${what} within ${timeoutMs} ms; last output: ${JSON.stringify(this.events.at(-1))}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#wake.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  attached(): Promise<Event> {
    return this.waitFor('"attached" line', (e) => e.event === 'attached');
  }

  /** The next "counts" line printed after every event seen so far that satisfies `pred`. */
  counts(what: string, pred: (e: Event) => boolean): Promise<Event> {
    return this.waitFor(what, (e) => e.event === 'counts' && pred(e), patient(10_000), 0);
  }

  /** Sends `signal`, waits for the exit, and returns the "detached" line it printed last. */
  async stop(signal: NodeJS.Signals): Promise<Event> {
    this.child.kill(signal);
    const ms = patient(10_000);
    const timeout = sleep(ms).then(() => 'timeout' as const);
    const r = await Promise.race([this.exited, timeout]);
    assert.notEqual(r, 'timeout', `${this.name} did not exit within ${ms} ms of ${signal}`);
    const { code, signal: by } = r as { code: number | null; signal: NodeJS.Signals | null };
    assert.equal(by, null, `${this.name} handled ${signal} instead of dying of it; stderr: ${this.stderr}`);
    assert.equal(code, 0, `${this.name} exits with 0 after ${signal}; stderr: ${this.stderr}`);
    assert.match(this.stderr, new RegExp(`${signal}, detaching`));
    const last = this.events.at(-1);
    assert.equal(last?.event, 'detached', `${this.name}'s last line is the final "detached" summary`);
    return last!;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

function counter(v: unknown): CounterJson {
  const c = v as CounterJson;
  assert.equal(typeof c?.packets, 'number');
  assert.equal(typeof c?.bytes, 'number');
  return c;
}

function programIds(attached: Event): number[] {
  const list = (attached['programs'] ?? [attached['program']]) as { id: number }[];
  const ids = list.map((p) => p.id);
  for (const id of ids) assert.ok(Number.isInteger(id) && id > 0, 'the "attached" line gives the kernel id of each program');
  return ids;
}

/** bpf_links that hold one of `progIds` (any type, any interface). */
function linksOf(progIds: readonly number[]): { id: number; type: string; ifindex: number | undefined }[] {
  const out: { id: number; type: string; ifindex: number | undefined }[] = [];
  for (let id = getNextId('LINK', 0); id !== undefined; id = getNextId('LINK', id)) {
    let fd;
    try {
      fd = getFdById('LINK', id);
    } catch {
      continue; // gone meanwhile
    }
    try {
      const info = readLinkInfo(fd.value);
      if (progIds.includes(info.progId)) out.push({ id, type: info.type, ifindex: info.ifindex });
    } finally {
      fd.close();
    }
  }
  return out;
}

/** `ip -d link show dev X` in B: the XDP mode of the first line ("xdp", "xdpgeneric", ...) and the program id. */
function ipLinkXdp(p: Pair): { mode: string; id: number } | undefined {
  const text = run('ip', '-n', p.nsB, '-d', 'link', 'show', 'dev', p.dev);
  const mode = /^\d+: \S+ .* (xdp|xdpgeneric|xdpdrv|xdpoffload|xdpmulti) /.exec(text.split('\n')[0] ?? '')?.[1];
  const id = /prog\/xdp id (\d+)/.exec(text)?.[1];
  if (mode === undefined && id === undefined) return undefined;
  return { mode: mode ?? '(none)', id: Number(id) };
}

/** `tc filter show dev X ingress|egress` in B. */
function tcFilters(p: Pair, dir: 'ingress' | 'egress'): string {
  return run('tc', '-n', p.nsB, 'filter', 'show', 'dev', p.dev, dir).trim();
}

function hasClsact(p: Pair): boolean {
  return /qdisc clsact/.test(run('tc', '-n', p.nsB, 'qdisc', 'show', 'dev', p.dev));
}

/** Packet sockets bound to `ifindex` in B, from /proc/net/packet: their receive queue sizes. */
function packetSocketsOn(p: Pair, ifindex: number): { rmem: number }[] {
  const lines = inB(p, 'cat', '/proc/net/packet').trim().split('\n').slice(1);
  // sk RefCnt Type Proto Iface R Rmem User Inode
  return lines.map((l) => l.trim().split(/\s+/)).filter((f) => Number(f[4]) === ifindex).map((f) => ({ rmem: Number(f[6]) }));
}

// ---------------------------------------------------------------------------------------------

describe('examples/xdp-firewall', () => {
  it('drops the datagrams of a --drop source, passes another, counts per rule, and detaches on SIGINT', kernelTest, async () => {
    await withNetwork('f', async ({ p, ifindex, start }) => {
      const fw = start('xdp-firewall', ['--iface', p.dev, '--drop', `${p.addrA}/32`, '--drop', '192.0.2.0/24', '--interval', '0.1', '--json']);
      const attached = await fw.attached();
      assert.deepEqual(attached['rules'], [`${p.addrA}/32`, '192.0.2.0/24']);
      assert.equal(attached['ifindex'], ifindex);
      assert.equal(attached['link'], 'xdp', 'attached through a bpf_link');
      const [progId] = programIds(attached);
      assert.deepEqual(ipLinkXdp(p), { mode: 'xdp', id: progId }, '`ip -d link show` lists the firewall on the interface, in native mode');
      const zero = await fw.counts('first counts', () => true);
      assert.equal(counter(zero['dropped']).packets, 0);

      assert.equal(udp(p, { src: SECOND_SOURCE, count: 5 }), 5, `${SECOND_SOURCE} is not dropped: all its echoes come back`);
      assert.equal(udp(p, { src: p.addrA, count: 5, waitMs: 1000 }), 0, `${p.addrA} is dropped: no echo comes back`);
      const first = await fw.counts('5 drops', (e) => counter(e['dropped']).packets >= 5);
      const rules = first['rules'] as (CounterJson & { cidr: string })[];
      assert.deepEqual(rules.map((r) => [r.cidr, r.packets, r.bytes]), [[`${p.addrA}/32`, 5, 5 * FRAME], ['192.0.2.0/24', 0, 0]]);

      assert.equal(udp(p, { src: p.addrA, count: 3, waitMs: 1000 }), 0);
      await fw.counts('the counter to rise to 8', (e) => (e['rules'] as CounterJson[])[0]!.packets === 8);

      const final = await fw.stop('SIGINT');
      assert.deepEqual(final['rules'], [
        { cidr: `${p.addrA}/32`, packets: 8, bytes: 8 * FRAME },
        { cidr: '192.0.2.0/24', packets: 0, bytes: 0 },
      ], 'per-rule drops, summed over the CPUs');
      assert.deepEqual(final['dropped'], { packets: 8, bytes: 8 * FRAME });
      assert.deepEqual(final['passed'], { packets: 5, bytes: 5 * FRAME }, `the IPv4 packets that passed: ${SECOND_SOURCE}'s datagrams`);

      assert.equal(ipLinkXdp(p), undefined, 'no XDP program on the interface after SIGINT (`ip -d link show`)');
      assert.deepEqual(linksOf([progId!]), [], 'the XDP link is gone');
      await assertProgramGone(progId!, 'the firewall program');
      assert.equal(udp(p, { src: p.addrA, count: 3 }), 3, `${p.addrA} gets its echoes again once the firewall is gone`);
    });
  });

  it('in skb (generic) mode drops as well, and leaves nothing attached when killed with SIGKILL', kernelTest, async () => {
    await withNetwork('g', async ({ p, start }) => {
      const fw = start('xdp-firewall', ['--iface', p.dev, '--drop', '10.231.0.0/31', '--mode', 'skb', '--interval', '0.1', '--json']);
      const attached = await fw.attached();
      const [progId] = programIds(attached);
      assert.deepEqual(ipLinkXdp(p), { mode: 'xdpgeneric', id: progId }, 'attached in generic mode');
      // 10.231.0.0/31 holds .0 and .1 (dropped), not .3.
      assert.equal(udp(p, { src: p.addrA, count: 4, waitMs: 1000 }), 0);
      assert.equal(udp(p, { src: SECOND_SOURCE, count: 4 }), 4);
      const seen = await fw.counts('4 drops and 4 passes', (e) => counter(e['dropped']).packets === 4 && counter(e['passed']).packets >= 4);
      assert.deepEqual(seen['dropped'], { packets: 4, bytes: 4 * FRAME });
      assert.deepEqual(seen['passed'], { packets: 4, bytes: 4 * FRAME });

      fw.child.kill('SIGKILL');
      const { signal } = await fw.exited;
      assert.equal(signal, 'SIGKILL');
      // The XDP link was an fd of the process: the kernel detached it when the process died.
      await assertProgramGone(progId!, 'the firewall program');
      assert.equal(ipLinkXdp(p), undefined, 'no XDP program after the process was killed');
      assert.equal(udp(p, { src: p.addrA, count: 2 }), 2);
    });
  });
});

describe('examples/tc-counter', () => {
  // tcx links came in 6.6; before, attachTc() falls back to clsact + cls_bpf over rtnetlink.
  // The probe says which of the two the example must have used here.
  it('counts the packets and bytes of each direction through tcx links (cls_bpf filters where the kernel has no tcx), and detaches on SIGINT', kernelTest, async () => {
    const tcx = haveTcx();
    const mode = tcx ? 'tcx' : 'tc-netlink';
    await withNetwork('c', async ({ p, ifindex, start }) => {
      const tc = start('tc-counter', ['--iface', p.dev, '--interval', '0.1', '--json']);
      const attached = await tc.attached();
      const programs = attached['programs'] as { direction: string; program: string; link: string }[];
      assert.deepEqual(programs.map((x) => [x.direction, x.program, x.link]), [['ingress', 'count_ingress', mode], ['egress', 'count_egress', mode]]);
      const ids = programIds(attached);
      const links = linksOf(ids);
      if (tcx) {
        assert.deepEqual(links.map((l) => [l.type, l.ifindex]), [['tcx', ifindex], ['tcx', ifindex]], 'two tcx links on the interface');
        assert.equal(hasClsact(p), false, 'tcx needs no qdisc');
      } else {
        assert.deepEqual(links, [], 'no bpf_link: the kernel has no tcx, so cls_bpf filters instead');
        assert.ok(hasClsact(p), 'a clsact qdisc was added');
        assert.match(tcFilters(p, 'ingress'), /bpf .*count_ingress.* direct-action/, '`tc filter show dev X ingress` lists the filter');
        assert.match(tcFilters(p, 'egress'), /bpf .*count_egress.* direct-action/);
      }

      const N = 6;
      assert.equal(udp(p, { src: p.addrA, count: N }), N, 'the counter lets the traffic through');
      // Datagrams from A enter B's veth0 (ingress), B's echoes leave through it (egress).
      await tc.counts(`${N} packets each way`, (e) => counter(e['ingress']).packets >= N && counter(e['egress']).packets >= N);

      const final = await tc.stop('SIGINT');
      assert.deepEqual(final['ingress'], { packets: N, bytes: N * FRAME });
      assert.deepEqual(final['egress'], { packets: N, bytes: N * FRAME });

      assert.deepEqual(linksOf(ids), [], 'the tcx links are gone');
      assert.equal(tcFilters(p, 'ingress'), '', 'no ingress filter (`tc filter show`)');
      assert.equal(tcFilters(p, 'egress'), '', 'no egress filter (`tc filter show`)');
      assert.equal(hasClsact(p), false, 'no clsact qdisc left');
      for (const id of ids) await assertProgramGone(id);
    });
  });

  it('with --attach clsact uses cls_bpf filters, and removes them and the qdisc on SIGTERM', kernelTest, async () => {
    await withNetwork('k', async ({ p, start }) => {
      assert.equal(hasClsact(p), false);
      const tc = start('tc-counter', ['--iface', p.dev, '--attach', 'clsact', '--interval', '0.1', '--json']);
      const attached = await tc.attached();
      const programs = attached['programs'] as { link: string }[];
      assert.deepEqual(programs.map((x) => x.link), ['tc-netlink', 'tc-netlink']);
      const ids = programIds(attached);
      assert.deepEqual(linksOf(ids), [], 'no bpf_link: cls_bpf filters instead');
      assert.ok(hasClsact(p), 'a clsact qdisc was added');
      assert.match(tcFilters(p, 'ingress'), /bpf .*count_ingress.* direct-action/, '`tc filter show dev X ingress` lists the filter');
      assert.match(tcFilters(p, 'egress'), /bpf .*count_egress.* direct-action/);

      const N = 4;
      assert.equal(udp(p, { src: SECOND_SOURCE, count: N }), N);
      await tc.counts(`${N} packets each way`, (e) => counter(e['ingress']).packets >= N && counter(e['egress']).packets >= N);

      const final = await tc.stop('SIGTERM');
      assert.deepEqual(final['ingress'], { packets: N, bytes: N * FRAME });
      assert.deepEqual(final['egress'], { packets: N, bytes: N * FRAME });

      assert.equal(tcFilters(p, 'ingress'), '', 'no ingress filter left');
      assert.equal(tcFilters(p, 'egress'), '', 'no egress filter left');
      assert.equal(hasClsact(p), false, 'the clsact qdisc the example added is gone');
      for (const id of ids) await assertProgramGone(id);
    });
  });
});

describe('examples/socket-filter', () => {
  it('counts packets by protocol from the map, queues nothing to the socket, and detaches on SIGINT', kernelTest, async () => {
    await withNetwork('s', async ({ p, ifindex, start }) => {
      const sf = start('socket-filter', ['--iface', p.dev, '--interval', '0.1', '--json']);
      const attached = await sf.attached();
      const [progId] = programIds(attached);
      assert.equal(packetSocketsOn(p, ifindex).length, 1, 'one packet socket is bound to the interface');

      const N = 5;
      assert.equal(udp(p, { src: p.addrA, count: N }), N);
      // One datagram to a closed port: B answers with ICMP port unreachable.
      assert.equal(udp(p, { src: p.addrA, count: 1, port: CLOSED_PORT, waitMs: 500 }), 0);
      // One TCP connection to a closed port: SYN in, RST out.
      assert.equal(tcpToClosedPort(p), 'ECONNREFUSED');

      const udpPackets = 2 * N + 1; // N datagrams and N echoes, plus the one to the closed port
      const seen = await sf.counts('all the traffic', (e) =>
        counter(e['udp']).packets >= udpPackets && counter(e['icmp']).packets >= 1 && counter(e['tcp']).packets >= 2);
      assert.equal(counter(seen['udp']).bytes, udpPackets * FRAME);
      assert.deepEqual(packetSocketsOn(p, ifindex), [{ rmem: 0 }], 'the filter keeps 0 bytes of every packet: nothing waits in the socket');

      const final = await sf.stop('SIGINT');
      assert.deepEqual(final['udp'], { packets: udpPackets, bytes: udpPackets * FRAME });
      // ICMP port unreachable quotes the datagram (IP header, UDP header, payload: it is small).
      assert.deepEqual(final['icmp'], { packets: 1, bytes: 14 + 20 + 8 + (20 + 8 + PAYLOAD) });
      assert.equal(counter(final['tcp']).packets, 2, 'SYN and RST');
      assert.ok(counter(final['tcp']).bytes >= 2 * (14 + 20 + 20));
      assert.deepEqual(final['other'], { packets: 0, bytes: 0 }, 'nothing else crossed the interface (no ARP, no IPv6, no IGMP)');

      assert.deepEqual(packetSocketsOn(p, ifindex), [], 'the packet socket is closed');
      await assertProgramGone(progId!, 'the socket filter program');
    });
  });
});

describe('examples: bad command lines', () => {
  function runExample(name: string, args: string[], options: { uid?: number; gid?: number } = {}): { code: number | null; stderr: string } {
    const r = spawnSync(process.execPath, [exampleMain(name), ...args], { cwd: ROOT, encoding: 'utf8', timeout: patient(20_000), ...options });
    return { code: r.status, stderr: r.stderr };
  }

  it('xdp-firewall names an invalid CIDR and exits with 2', () => {
    for (const bad of ['10.0.0.300/8', '10.0.0.0/33', 'example.com', '10.1.2/24']) {
      const r = runExample('xdp-firewall', ['--iface', 'lo', '--drop', '192.0.2.0/24', '--drop', bad]);
      assert.equal(r.code, 2, `exit code for --drop ${bad}; stderr: ${r.stderr}`);
      assert.ok(r.stderr.startsWith('xdp-firewall: '), r.stderr);
      assert.ok(r.stderr.includes(JSON.stringify(bad)), `the message names ${bad}: ${r.stderr}`);
      assert.equal(r.stderr.split('\n').length, 4, `one line of error, then the usage line and a --help hint: ${r.stderr}`);
    }
    const v6 = runExample('xdp-firewall', ['--iface', 'lo', '--drop', '2001:db8::/32']);
    assert.equal(v6.code, 2);
    assert.match(v6.stderr, /"2001:db8::\/32": this firewall matches IPv4 source addresses only/);
    const twice = runExample('xdp-firewall', ['--iface', 'lo', '--drop', '10.0.0.1/8', '--drop', '10.0.0.0/8']);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /same network \(10\.0\.0\.0\/8\)/);
    const none = runExample('xdp-firewall', ['--iface', 'lo']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /at least one --drop/);
    const flag = runExample('xdp-firewall', ['--iface', 'lo', '--drop', '192.0.2.0/24', '--dorp', '1.2.3.4']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--dorp/);
  });

  it('every example names an unknown interface and lists the existing ones', () => {
    const cases: [string, string[]][] = [
      ['xdp-firewall', ['--drop', '192.0.2.0/24']], ['tc-counter', []], ['socket-filter', []],
    ];
    for (const [name, extra] of cases) {
      const r = runExample(name, ['--iface', 'bkno0', ...extra]);
      assert.equal(r.code, 2, `${name}: exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, /no network interface named "bkno0"; existing interfaces: .*\blo\b/, `${name}: ${r.stderr}`);
      const missing = runExample(name, extra);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /--iface is required/);
    }
  });

  it('--object names a missing file, and exits with 1', () => {
    for (const [name, extra] of [['xdp-firewall', ['--drop', '192.0.2.0/24']], ['tc-counter', []], ['socket-filter', []]] as const) {
      const missing = join(ROOT, 'no-such-dir', `${name}.bpf.o`);
      const r = runExample(name, ['--iface', 'lo', ...extra, '--object', missing]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, `${name}: BPF object ${missing} does not exist\n`);
    }
  });

  it('--object names a file that is not a build of the example\'s C, and exits with 1', kernelTest, () => {
    const cases = [
      ['xdp-firewall', ['--drop', '192.0.2.0/24'], 'firewall.bpf.c', 'tc-counter/gen/tc_counter.bpf.o', /map drop_rules is missing/],
      ['tc-counter', [], 'tc_counter.bpf.c', 'xdp-firewall/gen/firewall.bpf.o', /map counts is missing/],
      ['socket-filter', [], 'socket_filter.bpf.c', 'xdp-firewall/gen/firewall.bpf.o', /map counts is missing/],
      ['tc-counter', [], 'tc_counter.bpf.c', '../../package.json', /not an ELF file/],
    ] as const;
    for (const [name, extra, source, object, why] of cases) {
      const path = join(ROOT, 'dist', 'examples', object);
      const r = runExample(name, ['--iface', 'lo', ...extra, '--object', path]);
      assert.equal(r.code, 1, `${name} --object ${object}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`${name}: ${path}: `), `the message names the file: ${r.stderr}`);
      assert.match(r.stderr, why);
      assert.ok(r.stderr.endsWith(` (is it a build of ${source}?)\n`), r.stderr);
    }
  });

  it('without privileges, says which capability is missing and exits with 1', { skip: isRoot ? false : 'needs root to switch to an unprivileged user' }, () => {
    for (const [name, extra] of [['xdp-firewall', ['--drop', '192.0.2.0/24']], ['tc-counter', []], ['socket-filter', []]] as const) {
      const r = runExample(name, ['--iface', 'lo', ...extra], { uid: 65534, gid: 65534 });
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${name}: missing CAP_BPF and CAP_NET_(ADMIN|RAW), which ${name} needs .*run it as root`), r.stderr);
    }
  });
});
