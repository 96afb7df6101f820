/**
 * `bpfkit pktcount` against real traffic, as a user runs it (a child process, stopped by signals):
 *
 * - with --iface on a test network (two namespaces joined by veths and a bridge, see
 *   src/tools/pktcount/netns.ts), exact TCP and UDP exchanges over IPv4 and IPv6 are counted; the
 *   excluded sources never show up and the excluded counter rises; the table, /json, /ws and
 *   /metrics give those counts;
 * - after SIGINT and SIGTERM nothing is attached; after kill -9 neither (the bpf_link dies with
 *   the process);
 * - the demo (no --iface) makes its namespaces, counts TCP and UDP over IPv4 and IPv6, and removes
 *   everything on SIGINT, on SIGTERM, and (through its reaper) after kill -9;
 * - bad input: an unknown interface, a taken port, a missing privilege;
 * - and first, the XDP program itself on crafted frames (BPF_PROG_TEST_RUN): every header shape
 *   it parses, every counter, the exclusion tries, and the flow table sized by --max-entries.
 *
 * Nothing here touches an interface the test did not create.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { WebSocket } from 'ws';
import { PacketCounter } from '../../src/tools/pktcount/counter.js';
import { collectExclusions } from '../../src/tools/pktcount/exclude.js';
import { createDemoNetwork, type DemoNetwork } from '../../src/tools/pktcount/netns.js';
import { formatAddress, type FlowEntry, type Snapshot } from '../../src/tools/pktcount/snapshot.js';
import { kernelTest, patient } from '../helpers/index.js';
import {
  burst, linkExists, namespaces, startPktcount, startServers, stopChild, waitFor, xdpAttached, type Running,
} from '../fixtures/pktcount-run.js';

async function json(url: string): Promise<Snapshot> {
  const r = await fetch(new URL('json', url));
  assert.equal(r.status, 200);
  return await r.json() as Snapshot;
}

function find(s: Snapshot, src: string, srcPort: number, dstPort: number, proto: string): FlowEntry | undefined {
  return s.entries.find((e) => e.src === src && e.srcPort === srcPort && e.dstPort === dstPort && e.proto === proto);
}

function firstWsMessage(url: string, origin: string): Promise<Snapshot & { type: string; history: unknown[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL('ws', url).href.replace(/^http/, 'ws'), { origin });
    const ms = patient(5000);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no websocket message within ${ms} ms`));
    }, ms);
    ws.once('message', (d) => {
      clearTimeout(timer);
      ws.close();
      resolve(JSON.parse(String(d)) as Snapshot & { type: string; history: unknown[] });
    });
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// ---- Frames for BPF_PROG_TEST_RUN -------------------------------------------------------------

const TCP = 6;
const UDP = 17;
const ICMP = 1;

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function l4(proto: number, sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(proto === TCP ? 20 : 8);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  if (proto === TCP) b[12] = 0x50;
  else v.setUint16(4, 8);
  return b;
}

function ipv4(proto: number, src: number[], payload: Uint8Array, opts: { fragOffset?: number; options?: number } = {}): Uint8Array {
  const ihl = 5 + (opts.options ?? 0);
  const h = new Uint8Array(ihl * 4);
  const v = new DataView(h.buffer);
  h[0] = 0x40 | ihl;
  v.setUint16(2, h.length + payload.length);
  v.setUint16(6, opts.fragOffset ?? 0);
  h[8] = 64;
  h[9] = proto;
  h.set(src, 12);
  h.set([10, 0, 0, 1], 16);
  for (let i = 20; i < h.length; i++) h[i] = 1; // NOP options
  return concat(h, payload);
}

function ipv6(next: number, src: number[], payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(40);
  const v = new DataView(h.buffer);
  h[0] = 0x60;
  v.setUint16(4, payload.length);
  h[6] = next;
  h[7] = 64;
  h.set(src, 8);
  h.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 24);
  return concat(h, payload);
}

/** An IPv6 extension header (hop-by-hop, routing or destination options), 8 bytes. */
function ext(next: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = next;
  return b;
}

function frag6(next: number, offset: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = next;
  new DataView(b.buffer).setUint16(2, offset << 3);
  return b;
}

function eth(type: number, payload: Uint8Array, vlans: number[] = []): Uint8Array {
  const macs = new Uint8Array([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
  const tags = vlans.map((tpid, i) => {
    const t = new Uint8Array(4);
    const v = new DataView(t.buffer);
    v.setUint16(0, tpid);
    v.setUint16(2, 100 + i);
    return t;
  });
  // Each tag's TPID sits where the EtherType would; the real type follows the last tag.
  const types = [...vlans, type].map((t) => {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, t);
    return b;
  });
  const parts: Uint8Array[] = [macs, types[0]!];
  tags.forEach((_, i) => {
    parts.push(new Uint8Array([0, 100 + i]), types[i + 1]!);
  });
  const frame = concat(...parts, payload);
  return frame.length >= 60 ? frame : concat(frame, new Uint8Array(60 - frame.length));
}

const V6SRC = [0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x21];

describe('pktcount XDP program on crafted frames (BPF_PROG_TEST_RUN)', kernelTest, () => {
  it('parses every header shape, counts flows and every kind of skipped packet, honours exclusions', async () => {
    const counter = await PacketCounter.load({ maxEntries: 64, exclusions: collectExclusions(['10.9.0.0/16', '2001:db8::/32'], []) });
    try {
      assert.equal(counter.flows.maxEntries, 64, 'the flow table has --max-entries entries');
      assert.equal(counter.flows.info().maxEntries, 64, 'in the kernel too');
      const prog = counter.collection.programs.get('xdp_pktcount')!;
      const run = (frame: Uint8Array, repeat = 1): void => {
        assert.equal(prog.testRun({ data: frame, repeat }).retval, 2, 'XDP_PASS, always');
      };
      run(eth(0x0800, ipv4(UDP, [10, 1, 1, 1], l4(UDP, 1000, 53))), 3);
      run(eth(0x0800, ipv4(TCP, [10, 1, 1, 2], l4(TCP, 1001, 22), { options: 2 })), 2);
      run(eth(0x86dd, ipv6(TCP, V6SRC, l4(TCP, 2000, 443))), 4);
      run(eth(0x86dd, ipv6(0, V6SRC, concat(ext(60), ext(UDP), l4(UDP, 2001, 5353)))));
      run(eth(0x86dd, ipv6(44, V6SRC, concat(frag6(UDP, 0), l4(UDP, 2002, 123)))));
      run(eth(0x0800, ipv4(UDP, [10, 1, 1, 3], l4(UDP, 1002, 161)), [0x8100]));
      run(eth(0x86dd, ipv6(TCP, V6SRC, l4(TCP, 2003, 80)), [0x88a8, 0x8100]));
      // Not counted in flows:
      run(eth(0x0800, ipv4(UDP, [10, 1, 1, 4], l4(UDP, 1, 2), { fragOffset: 100 }))); // later fragment: other_l4
      run(eth(0x86dd, ipv6(44, V6SRC, concat(frag6(UDP, 10), l4(UDP, 3, 4))))); // later fragment: other_l4
      run(eth(0x0800, ipv4(ICMP, [10, 1, 1, 5], new Uint8Array(8))), 2); // other_l4
      run(eth(0x0806, new Uint8Array(28)), 3); // ARP: non_ip
      run(concat(eth(0x0800, new Uint8Array(0)).subarray(0, 14), new Uint8Array([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17]))); // IPv4 header cut short: malformed
      run(eth(0x0800, ipv4(UDP, [10, 9, 3, 4], l4(UDP, 5, 6))), 5); // excluded
      run(eth(0x86dd, ipv6(UDP, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], l4(UDP, 7, 8))), 6); // excluded
      run(concat(eth(0x86dd, new Uint8Array(0)).subarray(0, 14), new Uint8Array(20))); // IPv6 header cut short: malformed

      const flows = counter.readFlows().map((f) => `${f.proto}|${formatAddress(f.saddr, f.family)}|${f.srcPort}|${f.dstPort}|${f.packets}`).sort();
      assert.deepEqual(flows, [
        '17|10.1.1.1|1000|53|3',
        '17|10.1.1.3|1002|161|1',
        '17|fd77::21|2001|5353|1',
        '17|fd77::21|2002|123|1',
        '6|10.1.1.2|1001|22|2',
        '6|fd77::21|2000|443|4',
        '6|fd77::21|2003|80|1',
      ]);
      const t = counter.readTotals();
      assert.equal(t.counted, 13);
      assert.equal(t.excluded, 11);
      assert.equal(t.nonIp, 3);
      assert.equal(t.otherL4, 4);
      assert.equal(t.malformed, 2);
      assert.equal(t.untracked, 0);
      assert.equal(t.packets, t.counted + t.excluded + t.nonIp + t.otherL4 + t.malformed);
    } finally {
      counter.close();
    }
  });

  it('--aggregate src and dport count by source address or by destination port, in the kernel', async () => {
    const rows = async (aggregate: 'src' | 'dport'): Promise<string[]> => {
      const counter = await PacketCounter.load({ maxEntries: 64, aggregate });
      try {
        const prog = counter.collection.programs.get('xdp_pktcount')!;
        const run = (frame: Uint8Array, repeat = 1): void => {
          assert.equal(prog.testRun({ data: frame, repeat }).retval, 2);
        };
        // Two sources, each from several ephemeral ports, to two services.
        for (const sport of [40001, 40002, 40003]) run(eth(0x0800, ipv4(TCP, [10, 1, 1, 1], l4(TCP, sport, 22))), 2);
        run(eth(0x0800, ipv4(UDP, [10, 1, 1, 1], l4(UDP, 40004, 53))), 3);
        for (const sport of [50001, 50002]) run(eth(0x86dd, ipv6(TCP, V6SRC, l4(TCP, sport, 22))));
        return counter.readFlows().map((f) => `${f.proto}|${formatAddress(f.saddr, f.family)}|${f.srcPort}|${f.dstPort}|${f.packets}`).sort();
      } finally {
        counter.close();
      }
    };
    assert.deepEqual(await rows('src'), ['17|10.1.1.1|0|0|3', '6|10.1.1.1|0|0|6', '6|fd77::21|0|0|2']);
    assert.deepEqual(await rows('dport'), ['17|0.0.0.0|0|53|3', '6|0.0.0.0|0|22|6', '6|::|0|22|2']);
  });

  it('the flow table keeps at most --max-entries flows (LRU)', async () => {
    const counter = await PacketCounter.load({ maxEntries: 32 });
    try {
      const prog = counter.collection.programs.get('xdp_pktcount')!;
      for (let port = 1; port <= 200; port++) prog.testRun({ data: eth(0x0800, ipv4(UDP, [10, 2, 0, 1], l4(UDP, port, 53))) });
      const n = counter.readFlows().length;
      assert.ok(n > 0 && n <= 32, `${n} flows kept`);
      assert.equal(counter.readTotals().counted + counter.readTotals().untracked, 200);
    } finally {
      counter.close();
    }
  });
});

describe('pktcount --iface on a test network', kernelTest, () => {
  let net: DemoNetwork | undefined;
  let servers: ChildProcess | undefined;

  before(async () => {
    net = createDemoNetwork();
    servers = await startServers(net);
  });

  after(async () => {
    await stopChild(servers);
    net?.destroy();
    if (net) {
      for (const ns of net.namespaces) assert.ok(!namespaces().includes(ns), `test namespace ${ns} removed`);
      for (const l of net.links) assert.ok(!linkExists(l), `test link ${l} removed`);
    }
  });

  it('counts TCP and UDP over IPv4 and IPv6, honours exclusions, and serves the counts; SIGINT detaches', async () => {
    const n = net!;
    const p = await startPktcount(['--iface', n.clientLink, '--interval', '200ms', '--top', '50', '--listen', '127.0.0.1:0',
      '--exclude', '10.77.0.13', '--exclude', 'fd77::13/128']);
    try {
      assert.ok(p.url, `it serves a leaderboard:\n${p.stderr()}`);
      assert.equal(p.iface, n.clientLink);
      assert.ok(xdpAttached(n.clientLink), 'XDP is attached while it runs');
      assert.match(p.stderr(), /excluding 10\.77\.0\.13\/32, fd77::13\/128/);

      const [v4a, v4b, v4x] = n.clients.v4 as [string, string, string];
      const [v6a, v6b, v6x] = n.clients.v6 as [string, string, string];
      assert.equal(burst(n, 'udp', v4a, 41001, n.server.v4, 53, 20), 20);
      assert.equal(burst(n, 'tcp', v4b, 41002, n.server.v4, 7, 15), 15);
      assert.equal(burst(n, 'udp', v6a, 41003, n.server.v6, 53, 20), 20);
      assert.equal(burst(n, 'tcp', v6b, 41004, n.server.v6, 22, 15), 15);
      assert.equal(burst(n, 'udp', v4x, 41005, n.server.v4, 53, 25), 25);
      assert.equal(burst(n, 'udp', v6x, 41006, n.server.v6, 123, 25), 25);

      const s = await waitFor('the four flows in /json', async () => {
        const j = await json(p.url!);
        const ok = find(j, v4a, 41001, 53, 'udp')?.packets === 20 && find(j, v6a, 41003, 53, 'udp')?.packets === 20 &&
          (find(j, v4b, 41002, 7, 'tcp')?.packets ?? 0) >= 17 && (find(j, v6b, 41004, 22, 'tcp')?.packets ?? 0) >= 17 &&
          j.totals.excluded >= 50;
        return ok ? j : undefined;
      });
      // UDP: exactly one packet per datagram; TCP: the requests plus handshake, ACKs and FIN.
      const udp4 = find(s, v4a, 41001, 53, 'udp')!;
      assert.equal(udp4.family, 4);
      assert.ok(udp4.bytes >= 20 * 42, `whole frames are counted in bytes (${udp4.bytes})`);
      assert.equal(find(s, v6a, 41003, 53, 'udp')!.family, 6);
      assert.equal(find(s, v6b, 41004, 22, 'tcp')!.family, 6);
      assert.ok(!s.entries.some((e) => e.src === v4x || e.src === v6x), 'excluded sources never appear');
      assert.ok(!s.sources.some((e) => e.src === v4x || e.src === v6x), 'nor among the sources');
      assert.ok(s.totals.excluded >= 50, `the excluded counter counts the 50 excluded datagrams (${s.totals.excluded})`);
      assert.equal(s.iface, n.clientLink);
      assert.equal(s.intervalMs, 200);
      assert.deepEqual(s.excluded, ['10.77.0.13/32', 'fd77::13/128']);
      assert.ok(s.totals.counted >= 74, `counted ${s.totals.counted}`);
      assert.ok(s.totals.packets >= s.totals.counted + s.totals.excluded);

      const first = await firstWsMessage(p.url!, new URL(p.url!).origin);
      assert.equal(first.type, 'snapshot');
      assert.ok(Array.isArray(first.history));
      assert.equal(find(first, v4a, 41001, 53, 'udp')?.packets, 20, '/ws has the UDP count');
      assert.ok((find(first, v6b, 41004, 22, 'tcp')?.packets ?? 0) >= 17, '/ws has the TCP count');

      const metrics = await (await fetch(new URL('metrics', p.url))).text();
      assert.match(metrics, new RegExp(`^pktcount_flow_packets_total\\{src="${v4a.replace(/\./g, '\\.')}",src_port="41001",dst_port="53",proto="udp"\\} 20$`, 'm'));
      assert.match(metrics, /^pktcount_flow_packets_total\{src="fd77::11",src_port="41003",dst_port="53",proto="udp"\} 20$/m);
      const excluded = Number(/^pktcount_excluded_packets_total (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(excluded >= 50, `pktcount_excluded_packets_total ${excluded}`);
      assert.doesNotMatch(metrics, /src="10\.77\.0\.13"|src="fd77::13"/);

      // The terminal table in the seed's format.
      await waitFor('the table to show the UDP flow', () => p.stdout().includes(`${v4a}:41001 => :53  `));
      assert.match(p.stdout(), /\[fd77::12\]:41004 => :22 +tcp \| +\d+/);
    } finally {
      const r = await p.stop('SIGINT');
      assert.equal(r.code, 0, `exit code after SIGINT (stderr: ${p.stderr()})`);
    }
    assert.match(p.stdout(), new RegExp(`pktcount: detached from ${n.clientLink} after`));
    assert.match(p.stdout(), /excluded {6}\d+ \(10\.77\.0\.13\/32, fd77::13\/128\)/);
    assert.ok(!xdpAttached(n.clientLink), 'nothing attached after SIGINT');
  });

  it('SIGTERM detaches too (skb mode, --json lines)', async () => {
    const n = net!;
    const p = await startPktcount(['--iface', n.clientLink, '--mode', 'skb', '--interval', '100ms', '--no-web', '--json']);
    try {
      assert.equal(p.url, undefined, 'no leaderboard with --no-web');
      assert.ok(xdpAttached(n.clientLink));
      assert.equal(burst(n, 'udp', n.clients.v4[0]!, 41011, n.server.v4, 53, 5), 5);
      const line = await waitFor('a JSON line with the flow', () => p.stdout().split('\n').filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Snapshot).find((s) => s.entries.some((e) => e.srcPort === 41011 && e.packets === 5)));
      assert.equal(line.mode, 'skb');
    } finally {
      const r = await p.stop('SIGTERM');
      assert.equal(r.code, 0, `exit code after SIGTERM (stderr: ${p.stderr()})`);
    }
    assert.match(p.stderr(), /detached from/, 'with --json the summary goes to stderr');
    assert.ok(!xdpAttached(n.clientLink), 'nothing attached after SIGTERM');
  });

  it('kill -9 leaves nothing attached (bpf_link)', async () => {
    const n = net!;
    const p = await startPktcount(['--iface', n.clientLink, '--no-web', '--quiet']);
    assert.ok(xdpAttached(n.clientLink), 'attached while running');
    const r = await p.stop('SIGKILL');
    assert.equal(r.signal, 'SIGKILL');
    await waitFor('the XDP program to go with the process', () => !xdpAttached(n.clientLink), patient(5000));
  });

  it('an unknown interface: says so, lists the interfaces, exits 2', async () => {
    const p = await startPktcount(['--iface', 'bpfkit-nope0', '--no-web'], { waitReady: false });
    const r = await p.exited;
    assert.equal(r.code, 2);
    assert.match(p.stderr(), /no network interface named "bpfkit-nope0"; existing interfaces: .*\blo\b/);
  });

  it('a taken port: says which and suggests --listen, exits 1, leaves nothing behind', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const before = namespaces().filter((s) => s.startsWith('bpfkit-'));
    try {
      const p = await startPktcount(['--listen', `127.0.0.1:${port}`], { waitReady: false });
      const r = await p.exited;
      assert.equal(r.code, 1);
      assert.match(p.stderr(), new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*--listen`));
    } finally {
      blocker.close();
    }
    assert.deepEqual(namespaces().filter((s) => s.startsWith('bpfkit-')), before, 'the demo made no namespace');
  });

  it('without privileges: names what is missing and how to run it, exits 1', async () => {
    const p = await startPktcount(['--iface', 'lo', '--no-web'], { waitReady: false, uid: 65534 });
    const r = await p.exited;
    assert.equal(r.code, 1, p.stderr());
    assert.match(p.stderr(), /needs CAP_BPF \(to load the XDP program and create its maps\), CAP_NET_ADMIN \(to attach XDP to an interface\)/);
    assert.match(p.stderr(), /sudo npx bpfkit pktcount --iface lo/);
  });
});

describe('pktcount demo (no --iface)', kernelTest, () => {
  async function runDemo(timeoutMs?: number): Promise<{ p: Running; tag: string }> {
    const p = await startPktcount(['--interval', '300ms', '--top', '50', '--listen', '127.0.0.1:0', '--quiet'], timeoutMs === undefined ? {} : { timeoutMs });
    const tag = /^bpfkit-([a-z0-9]+)a$/.exec(p.iface)?.[1];
    assert.ok(tag, `the demo counts on its own veth (${p.iface})`);
    return { p, tag };
  }

  function assertGone(tag: string): void {
    const ns = namespaces();
    assert.ok(!ns.includes(`bpfkit-${tag}-clients`) && !ns.includes(`bpfkit-${tag}-servers`), `namespaces of ${tag} removed (left: ${ns.join(', ')})`);
    for (const l of [`bpfkit-${tag}a`, `bpfkit-${tag}b`, `bpfkit-${tag}br`]) assert.ok(!linkExists(l), `${l} removed`);
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`makes its network, counts TCP and UDP over IPv4 and IPv6, and removes everything on ${signal}`, async () => {
      const { p, tag } = await runDemo();
      try {
        assert.ok(namespaces().includes(`bpfkit-${tag}-clients`) && namespaces().includes(`bpfkit-${tag}-servers`));
        assert.ok(xdpAttached(p.iface));
        const s = await waitFor('TCP and UDP flows over IPv4 and IPv6', async () => {
          const j = await json(p.url!);
          const kinds = new Set(j.entries.map((e) => `${e.proto}${e.family}`));
          return ['tcp4', 'tcp6', 'udp4', 'udp6'].every((k) => kinds.has(k)) ? j : undefined;
        }, patient(20_000), 300);
        assert.equal(s.demo, true);
        assert.ok(s.entries.every((e) => e.src.startsWith('10.77.0.') || e.src.startsWith('fd77::')), 'only the demo clients');
      } finally {
        const r = await p.stop(signal);
        assert.equal(r.code, 0, `exit code after ${signal} (stderr: ${p.stderr()})`);
      }
      assertGone(tag);
      assert.match(p.stdout(), /pktcount: detached from bpfkit-/);
    });
  }

  it('kill -9: the reaper removes the network', async () => {
    const { p, tag } = await runDemo();
    await p.stop('SIGKILL');
    await waitFor('the reaper to remove the demo network', () => {
      try {
        assertGone(tag);
        return true;
      } catch {
        return false;
      }
    }, patient(10_000), 200);
  });

  it('removes a demo network left by a process that is gone', async () => {
    // A pid that is free now: a process that has already exited.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = createDemoNetwork({ tag: `${gone.toString(36)}z`, reaper: false });
    try {
      const { p } = await runDemo();
      await p.stop('SIGINT');
      assert.match(p.stderr(), new RegExp(`removed the demo network bpfkit-${stale.tag}-\\*`));
      assertGone(stale.tag);
    } finally {
      stale.destroy();
    }
  });

  // A deadline, not a measurement: startPktcount fails (and kills the demo, whose reaper removes
  // its network) if it is not counting in time.
  it('is counting within 5 s (x BPFKIT_TEST_PATIENCE) of its start', async () => {
    const { p, tag } = await runDemo(patient(5000));
    const r = await p.stop('SIGINT');
    assert.equal(r.code, 0, `exit code after SIGINT (stderr: ${p.stderr()})`);
    assertGone(tag);
  });
});
