/**
 * examples/xdp-syn-dump against real traffic: two network namespaces joined through veth pairs
 * and a bridge in the root namespace (test/fixtures/link-env.ts; no real interface is touched).
 * One dump runs on rootA, where A's packets to B arrive, and one on rootB, where B's answers
 * arrive. From A we open a TCP connection to a listener in B and one to a closed port of B, from
 * fixed source ports, and check that the SYNs (on rootA) and the listener's SYN-ACK (on rootB) are
 * printed with the right addresses, ports and flags and with a hex dump of the real packet. Then
 * SIGINT: each dump exits 0, nothing stays attached, the programs are freed, and the namespaces
 * and interfaces are removed (also when the test fails).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertProgramGone, assertTopologyGone, createTwoNamespaces, sleep, stopChild, type TwoNamespaces,
} from '../fixtures/link-env.js';
import { kernelTest, ROOT } from '../helpers/index.js';
import { hexdump } from '../../examples/xdp-syn-dump/main.js';

const MAIN = join(ROOT, 'dist', 'examples', 'xdp-syn-dump', 'main.js');
const OPEN_PORT = 47301;
const CLOSED_PORT = 47302;
const SRC_TO_OPEN = 41001;
const SRC_TO_CLOSED = 41002;

/** A TCP listener on ADDR:PORT that closes each connection; prints "ready" once listening. */
const LISTENER = `
const net = require('node:net');
const [addr, port] = process.argv.slice(1);
const server = net.createServer((c) => { c.on('error', () => {}); c.end(); });
server.listen(Number(port), addr, () => console.log('ready'));
`;

/** Connects from LOCAL to HOST:PORT from source port SPORT for each PORT:SPORT; prints "PORT SPORT outcome". */
const CLIENT = `
const net = require('node:net');
const [host, local, ...pairs] = process.argv.slice(1);
function connect(port, localPort) {
  return new Promise((resolve) => {
    const c = net.connect({ host, port, localAddress: local, localPort });
    c.on('connect', () => { c.end(); resolve('connected'); });
    c.on('error', (e) => resolve(e.code));
    c.setTimeout(5000, () => { c.destroy(); resolve('timeout'); });
  });
}
(async () => {
  for (const p of pairs) {
    const [port, sport] = p.split(':').map(Number);
    console.log(port, sport, await connect(port, sport));
  }
})();
`;

interface Dump {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDump(iface: string): Dump {
  const child = spawn(process.execPath, [MAIN, '--iface', iface], { stdio: ['ignore', 'pipe', 'pipe'] });
  const d: Dump = {
    child, stdout: '', stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { d.stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { d.stderr += s; });
  return d;
}

async function waitFor(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

interface Printed {
  time: string;
  kind: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  flags: string;
  length: number;
  /** The bytes read back from the hex dump. */
  bytes: number[];
  /** The dump's last line: the byte count, in hex. */
  dumpLength: number;
}

const LINE = /^(\d\d:\d\d:\d\d\.\d{6}) (SYN|SYN-ACK) (\S+):(\d+) -> (\S+):(\d+) flags \[([^\]]*)\] length (\d+)/;

/** The packets in a dump's output, each with its hex dump decoded. */
function printed(stdout: string): Printed[] {
  const lines = stdout.split('\n');
  const out: Printed[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = LINE.exec(lines[i]!);
    if (!m) continue;
    const bytes: number[] = [];
    let last: number[] = [];
    let dumpLength = -1;
    for (i++; i < lines.length && lines[i] !== ''; i++) {
      const l = lines[i]!;
      if (l === '*') continue; // repeats of `last` up to the next offset
      const row = /^([0-9a-f]{8})(?:  (.{49}) \|.*\|)?$/.exec(l);
      assert.ok(row, `a hex dump line: ${JSON.stringify(l)}`);
      const off = parseInt(row[1]!, 16);
      while (bytes.length < off && last.length > 0) bytes.push(...last.slice(0, off - bytes.length));
      if (row[2] === undefined) {
        dumpLength = off;
        break;
      }
      last = row[2].trim().split(/\s+/).map((h) => parseInt(h, 16));
      assert.equal(bytes.length, off, 'hex dump offsets follow each other');
      bytes.push(...last);
    }
    out.push({
      time: m[1]!, kind: m[2]!, src: m[3]!, sport: Number(m[4]), dst: m[5]!, dport: Number(m[6]), flags: m[7]!,
      length: Number(m[8]), bytes, dumpLength,
    });
  }
  return out;
}

/** Seconds between a printed HH:MM:SS and now, across midnight too. */
function secondsFromNow(time: string): number {
  const [h, m, s] = time.split(/[:.]/).map(Number) as [number, number, number];
  const now = new Date();
  const diff = Math.abs(h * 3600 + m * 60 + s - (now.getHours() * 3600 + now.getMinutes() * 60 + now.getSeconds()));
  return Math.min(diff, 86400 - diff);
}

/** Checks that the dumped bytes are the IPv4 TCP packet the line describes. */
function checkPacket(p: Printed): void {
  assert.equal(p.dumpLength, p.bytes.length, 'the hex dump ends with its byte count');
  assert.equal(p.bytes.length, p.length, 'a SYN is shorter than the snaplen: the whole packet is dumped');
  const b = p.bytes;
  assert.deepEqual(b.slice(12, 14), [0x08, 0x00], 'ethertype IPv4');
  assert.equal(b[23], 6, 'IP protocol TCP');
  assert.equal(b.slice(26, 30).join('.'), p.src, 'source address in the IP header');
  assert.equal(b.slice(30, 34).join('.'), p.dst, 'destination address in the IP header');
  const tcp = 14 + (b[14]! & 0x0f) * 4;
  assert.equal((b[tcp]! << 8) | b[tcp + 1]!, p.sport, 'source port in the TCP header');
  assert.equal((b[tcp + 2]! << 8) | b[tcp + 3]!, p.dport, 'destination port in the TCP header');
  const flags = b[tcp + 13]!;
  assert.ok(flags & 0x02, 'SYN is set in the TCP header');
  assert.equal(Boolean(flags & 0x10), p.kind === 'SYN-ACK', 'ACK is set exactly on SYN-ACKs');
  assert.ok(secondsFromNow(p.time) <= 60, `the time ${p.time} is the time of day`);
}

/** Whether `ip link` shows an XDP program on the interface. */
function hasXdp(iface: string): boolean {
  return /\bxdp|prog\/xdp/.test(execFileSync('ip', ['-d', 'link', 'show', 'dev', iface], { encoding: 'utf8' }).replace(iface, ''));
}

async function interrupt(d: Dump): Promise<void> {
  d.child.kill('SIGINT');
  const r = await Promise.race([d.exit, sleep(10_000).then(() => undefined)]);
  assert.ok(r, 'the dump exits within 10 s of SIGINT');
  assert.deepEqual(r, { code: 0, signal: null }, `exit status after SIGINT (stderr: ${d.stderr})`);
  assert.match(d.stdout, /xdp-syn-dump: detached from \S+; \d+ SYN packets? dumped, 0 lost/);
}

describe('examples/xdp-syn-dump', () => {
  test('command line mistakes exit with 2 before loading anything', () => {
    for (const args of [[], ['--iface', 'bpfkit-no-such-if0'], ['--iface', 'lo', '--snaplen', '0'], ['--iface', 'lo', '--count', 'x'], ['--bogus']]) {
      const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^xdp-syn-dump: /);
    }
    const help = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--iface IF/);
  });

  test('hexdump() prints what hexdump -C prints', { skip: existsSync('/usr/bin/hexdump') ? false : 'no hexdump(1)' }, () => {
    const inputs: Uint8Array[] = [
      Uint8Array.of(0x41),
      Uint8Array.from({ length: 16 }, (_, i) => i),
      Uint8Array.from({ length: 17 }, (_, i) => 0x30 + i),
      Uint8Array.from({ length: 74 }, (_, i) => (i * 37) & 0xff),
      new Uint8Array(64), // repeated lines become "*"
      Uint8Array.from([...new Uint8Array(48), 1, 2, 3]),
      Uint8Array.from([...new Uint8Array(16).fill(7), ...new Uint8Array(16).fill(7), ...new Uint8Array(16).fill(8), ...new Uint8Array(16).fill(7)]),
    ];
    for (const b of inputs) {
      assert.equal(hexdump(b), execFileSync('hexdump', ['-C'], { input: b, encoding: 'utf8' }), `${b.length} bytes`);
    }
    assert.equal(hexdump(new Uint8Array(0)), '');
  });

  test('dumps the SYNs and SYN-ACKs between two namespaces; SIGINT detaches and everything is removed', kernelTest, async () => {
    let t: TwoNamespaces | undefined;
    let listener: ChildProcess | undefined;
    const dumps: Dump[] = [];
    try {
      t = createTwoNamespaces('y');
      const net = t;
      listener = spawn('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', LISTENER, net.addrB, String(OPEN_PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let listening = '';
      listener.stdout!.setEncoding('utf8').on('data', (s: string) => { listening += s; });
      await waitFor('the listener in ns B', () => listening.includes('ready'));

      const onA = startDump(net.rootA);
      const onB = startDump(net.rootB);
      dumps.push(onA, onB);
      const attached = /program xdp_syn_dump id (\d+)/;
      await waitFor('both dumps to attach', () => attached.test(onA.stdout) && attached.test(onB.stdout));
      const ids = [onA, onB].map((d) => Number(attached.exec(d.stdout)![1]));
      assert.ok(hasXdp(net.rootA) && hasXdp(net.rootB), 'ip link shows the XDP programs');

      const client = spawnSync('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', CLIENT, net.addrB, net.addrA,
        `${OPEN_PORT}:${SRC_TO_OPEN}`, `${CLOSED_PORT}:${SRC_TO_CLOSED}`], { encoding: 'utf8', timeout: 30_000 });
      assert.match(client.stdout, new RegExp(`^${OPEN_PORT} ${SRC_TO_OPEN} connected$`, 'm'), `client: ${client.stdout}${client.stderr}`);
      assert.match(client.stdout, new RegExp(`^${CLOSED_PORT} ${SRC_TO_CLOSED} ECONNREFUSED$`, 'm'), `client: ${client.stdout}${client.stderr}`);

      const synTo = (d: Dump, dport: number): Printed | undefined => printed(d.stdout).find((p) => p.kind === 'SYN' && p.dport === dport);
      const synAck = (d: Dump): Printed | undefined => printed(d.stdout).find((p) => p.kind === 'SYN-ACK');
      await waitFor('the SYNs on rootA and the SYN-ACK on rootB', () =>
        synTo(onA, OPEN_PORT) !== undefined && synTo(onA, CLOSED_PORT) !== undefined && synAck(onB) !== undefined);

      // rootA: A's two connection attempts, nothing else with SYN set comes from A.
      const toOpen = synTo(onA, OPEN_PORT)!;
      const toClosed = synTo(onA, CLOSED_PORT)!;
      for (const [p, sport] of [[toOpen, SRC_TO_OPEN], [toClosed, SRC_TO_CLOSED]] as const) {
        assert.equal(p.src, net.addrA);
        assert.equal(p.dst, net.addrB);
        assert.equal(p.sport, sport);
        assert.match(p.flags, /^S[EW]*$/, 'a SYN without ACK');
        checkPacket(p);
      }
      assert.ok(printed(onA.stdout).every((p) => p.kind === 'SYN' && p.src === net.addrA), 'rootA sees only A\'s SYNs');

      // rootB: the listener's answer; the closed port answered with a RST, which is no SYN.
      const answer = synAck(onB)!;
      assert.equal(answer.src, net.addrB);
      assert.equal(answer.sport, OPEN_PORT);
      assert.equal(answer.dst, net.addrA);
      assert.equal(answer.dport, SRC_TO_OPEN);
      assert.match(answer.flags, /^S[EW]*\.$/, 'SYN and ACK');
      checkPacket(answer);
      assert.ok(printed(onB.stdout).every((p) => p.kind === 'SYN-ACK' && p.sport === OPEN_PORT), 'rootB sees only the SYN-ACK of the listener');

      for (const d of dumps) await interrupt(d);
      assert.ok(!hasXdp(net.rootA) && !hasXdp(net.rootB), 'no XDP program stays attached after SIGINT');
      for (const id of ids) await assertProgramGone(id, `the dump's program ${id}`);
    } finally {
      for (const d of dumps) await stopChild(d.child);
      await stopChild(listener);
      t?.destroy();
    }
    assertTopologyGone(t!);
  });
});
