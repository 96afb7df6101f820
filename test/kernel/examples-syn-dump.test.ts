/**
 * examples/xdp-syn-dump against real traffic: two network namespaces joined through veth pairs
 * and a bridge in the root namespace (test/fixtures/link-env.ts; no real interface is touched).
 * One dump runs on rootA, where A's packets to B arrive, and one on rootB, where B's answers
 * arrive. From A we open a TCP connection to a listener in B and one to a closed port of B, from
 * fixed source ports, and check that the SYNs (on rootA) and the listener's SYN-ACK (on rootB) are
 * printed with the right addresses, ports and flags and with a hex dump of the real packet (the
 * dump on rootB loads a copy of the object, through --object). Then SIGINT: each dump exits 0,
 * nothing stays attached, the programs are freed. A last dump on rootA cuts packets with
 * --snaplen (the .rodata constant the bindings set) and sees one more connection attempt. The
 * namespaces and interfaces are removed at the end (also when the test fails).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertProgramGone, assertTopologyGone, createTwoNamespaces, sleep, stopChild, type TwoNamespaces,
} from '../fixtures/link-env.js';
import { kernelTest, patient, ROOT } from '../helpers/index.js';
import { EVENT_SIZE, hexdump, parseSynEvent } from '../../examples/xdp-syn-dump/main.js';

const MAIN = join(ROOT, 'dist', 'examples', 'xdp-syn-dump', 'main.js');
/** The object of the example's bindings, copied next to them by the build. */
const OBJECT = join(ROOT, 'dist', 'examples', 'xdp-syn-dump', 'gen', 'syn_dump.bpf.o');
/** --snaplen of the last dump: shorter than any SYN (Ethernet + IPv4 + TCP headers are 54 bytes or more). */
const SHORT_SNAPLEN = 40;
const OPEN_PORT = 47301;
const CLOSED_PORT = 47302;
const SRC_TO_OPEN = 41001;
const SRC_TO_CLOSED = 41002;
/** The source port of the connection the --snaplen dump sees. */
const SRC_AGAIN = 41003;

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
    c.setTimeout(${patient(5000)}, () => { c.destroy(); resolve('timeout'); });
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

function startDump(iface: string, args: string[] = []): Dump {
  const child = spawn(process.execPath, [MAIN, '--iface', iface, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const d: Dump = {
    child, stdout: '', stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { d.stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { d.stderr += s; });
  return d;
}

async function waitFor(what: string, ok: () => boolean, ms = patient(10_000)): Promise<void> {
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
  /** "first N bytes": how many of them were dumped; undefined when the whole packet was. */
  first: number | undefined;
  /** The bytes read back from the hex dump. */
  bytes: number[];
  /** The dump's last line: the byte count, in hex. */
  dumpLength: number;
}

const LINE = /^(\d\d:\d\d:\d\d\.\d{6}) (SYN|SYN-ACK) (\S+):(\d+) -> (\S+):(\d+) flags \[([^\]]*)\] length (\d+)(?:, first (\d+) bytes)?$/;

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
      length: Number(m[8]), first: m[9] === undefined ? undefined : Number(m[9]), bytes, dumpLength,
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

/** Checks that the dumped bytes start with the headers of the IPv4 TCP packet the line describes, up to the ports. */
function checkHeaders(p: Printed): number {
  assert.equal(p.dumpLength, p.bytes.length, 'the hex dump ends with its byte count');
  const b = p.bytes;
  assert.deepEqual(b.slice(12, 14), [0x08, 0x00], 'ethertype IPv4');
  assert.equal(b[23], 6, 'IP protocol TCP');
  assert.equal(b.slice(26, 30).join('.'), p.src, 'source address in the IP header');
  assert.equal(b.slice(30, 34).join('.'), p.dst, 'destination address in the IP header');
  const tcp = 14 + (b[14]! & 0x0f) * 4;
  assert.equal((b[tcp]! << 8) | b[tcp + 1]!, p.sport, 'source port in the TCP header');
  assert.equal((b[tcp + 2]! << 8) | b[tcp + 3]!, p.dport, 'destination port in the TCP header');
  return tcp;
}

/** Checks that the dumped bytes are the whole IPv4 TCP packet the line describes. */
function checkPacket(p: Printed): void {
  assert.equal(p.first, undefined, 'a SYN is shorter than the default snaplen: the whole packet is dumped');
  assert.equal(p.bytes.length, p.length, 'a SYN is shorter than the default snaplen: the whole packet is dumped');
  const tcp = checkHeaders(p);
  const b = p.bytes;
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
  const ms = patient(10_000);
  const r = await Promise.race([d.exit, sleep(ms).then(() => undefined)]);
  assert.ok(r, `the dump exits within ${ms} ms of SIGINT`);
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

  test('parseSynEvent() decodes struct syn_event as the program lays it out, IPv4 and IPv6', () => {
    // struct syn_event in the host's byte order, ports in network order; then the packet bytes.
    const le = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
    const event = (family: number, saddr: number[], daddr: number[], capLen: number, packet: number[]): Uint8Array => {
      const b = new Uint8Array(EVENT_SIZE + packet.length);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, 123_456_789_000n, le);
      v.setUint32(8, 7, le); // ifindex
      v.setUint32(12, 1500, le); // pkt_len
      v.setUint32(16, capLen, le);
      v.setUint16(20, 41001, false); // sport, network order
      v.setUint16(22, 443, false);
      b[24] = family;
      b[25] = 0x12; // SYN ACK
      b.set(saddr, 28);
      b.set(daddr, 44);
      b.set(packet, EVENT_SIZE);
      return b;
    };
    const v4 = parseSynEvent(event(4, [10, 232, 0, 1], [192, 0, 2, 200], 3, [1, 2, 3]));
    assert.deepEqual({ ...v4, packet: [...v4.packet] }, {
      monotonicNs: 123_456_789_000n, ifindex: 7, length: 1500, sport: 41001, dport: 443, family: 4, tcpFlags: 0x12,
      saddr: '10.232.0.1', daddr: '192.0.2.200', packet: [1, 2, 3],
    });
    const v6 = parseSynEvent(event(6, [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1], [0xfe, 0x80, ...new Array<number>(13).fill(0), 0x2a], 2, [9, 8, 7]));
    assert.equal(v6.saddr, '2001:db8::1');
    assert.equal(v6.daddr, 'fe80::2a');
    assert.deepEqual([v6.sport, v6.dport], [41001, 443]);
    assert.deepEqual([...v6.packet], [9, 8], 'cap_len bytes of the packet, not what else follows');
    assert.throws(() => parseSynEvent(new Uint8Array(EVENT_SIZE - 1)), /a SYN event is 64 bytes or more, got 63/);
    assert.throws(() => parseSynEvent(event(5, [], [], 0, [])), /unknown address family 5/);
  });

  test('--object: a file that is missing or not a build of syn_dump.bpf.c is named, exit 1', () => {
    const missing = join(ROOT, 'no-such-dir', 'syn_dump.bpf.o');
    const r = spawnSync(process.execPath, [MAIN, '--iface', 'lo', '--object', missing], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `xdp-syn-dump: BPF object ${missing} does not exist\n`);
  });

  test('--object: the object of another example lacks the snaplen constant', kernelTest, () => {
    const other = join(ROOT, 'dist', 'examples', 'tc-counter', 'gen', 'tc_counter.bpf.o');
    const r = spawnSync(process.execPath, [MAIN, '--iface', 'lo', '--object', other], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `xdp-syn-dump: ${other}: syn_dump: no rodata variable "snaplen" (is it a build of syn_dump.bpf.c?)\n`);
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
    const scratch = mkdtempSync(join(tmpdir(), 'bpfkit-syn-dump-'));
    try {
      t = createTwoNamespaces('y');
      const net = t;
      listener = spawn('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', LISTENER, net.addrB, String(OPEN_PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let listening = '';
      listener.stdout!.setEncoding('utf8').on('data', (s: string) => { listening += s; });
      await waitFor('the listener in ns B', () => listening.includes('ready'));

      const onA = startDump(net.rootA);
      // The same program from another file: --object loads it through the bindings instead of theirs.
      const copy = join(scratch, 'copy.bpf.o');
      copyFileSync(OBJECT, copy);
      const onB = startDump(net.rootB, ['--object', copy]);
      dumps.push(onA, onB);
      const attached = /program xdp_syn_dump id (\d+)/;
      await waitFor('both dumps to attach', () => attached.test(onA.stdout) && attached.test(onB.stdout));
      const ids = [onA, onB].map((d) => Number(attached.exec(d.stdout)![1]));
      assert.match(onA.stdout, /, first 256 bytes of each\); Ctrl-C to detach/, 'the default snaplen, read back from the loaded .rodata');
      assert.ok(hasXdp(net.rootA) && hasXdp(net.rootB), 'ip link shows the XDP programs');

      const client = spawnSync('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', CLIENT, net.addrB, net.addrA,
        `${OPEN_PORT}:${SRC_TO_OPEN}`, `${CLOSED_PORT}:${SRC_TO_CLOSED}`], { encoding: 'utf8', timeout: patient(30_000) });
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

      // --snaplen: the program appends only the first SHORT_SNAPLEN bytes of each packet.
      const cut = startDump(net.rootA, ['--snaplen', String(SHORT_SNAPLEN)]);
      dumps.push(cut);
      await waitFor('the --snaplen dump to attach', () => attached.test(cut.stdout));
      const cutId = Number(attached.exec(cut.stdout)![1]);
      assert.match(cut.stdout, new RegExp(`, first ${SHORT_SNAPLEN} bytes of each\\); Ctrl-C to detach`), '--snaplen, read back from the loaded .rodata');
      const again = spawnSync('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', CLIENT, net.addrB, net.addrA, `${OPEN_PORT}:${SRC_AGAIN}`],
        { encoding: 'utf8', timeout: patient(30_000) });
      assert.match(again.stdout, new RegExp(`^${OPEN_PORT} ${SRC_AGAIN} connected$`, 'm'), `client: ${again.stdout}${again.stderr}`);
      await waitFor('the SYN on rootA', () => synTo(cut, OPEN_PORT) !== undefined);
      const short = synTo(cut, OPEN_PORT)!;
      assert.deepEqual([short.src, short.sport, short.dst, short.length], [net.addrA, SRC_AGAIN, net.addrB, toOpen.length]);
      assert.equal(short.first, SHORT_SNAPLEN, 'the line says how many bytes were dumped');
      assert.equal(short.bytes.length, SHORT_SNAPLEN, 'the hex dump holds the first SHORT_SNAPLEN bytes');
      checkHeaders(short);
      await interrupt(cut);
      assert.ok(!hasXdp(net.rootA), 'no XDP program stays attached after SIGINT');
      await assertProgramGone(cutId, `the --snaplen dump's program ${cutId}`);
    } finally {
      for (const d of dumps) await stopChild(d.child);
      await stopChild(listener);
      t?.destroy();
      rmSync(scratch, { recursive: true, force: true });
    }
    assertTopologyGone(t!);
  });
});
