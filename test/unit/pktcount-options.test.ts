/**
 * pktcount without a kernel: the command line, exclusions and their LPM keys, the privilege
 * check, addresses, snapshots (rates, ranking, top N, sources) and the text the terminal shows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPktcount } from '../../src/cli/pktcount.js';
import { createMetrics } from '../../src/tools/pktcount/metrics.js';
import { collectExclusions, parseExcludeText, parseExclusion } from '../../src/tools/pktcount/exclude.js';
import {
  DEFAULT_MAX_ENTRIES, parseDuration, parseListen, parseOrigin, parsePktcountArgs, type PktcountOptions,
} from '../../src/tools/pktcount/options.js';
import { effectiveCapabilities, missing } from '../../src/tools/common/privileges.js';
import { UsageError } from '../../src/tools/common/runtime.js';
import { pktcountNeeds, privilegeMessage } from '../../src/tools/pktcount/privileges.js';
import {
  SnapshotBuilder, flowLabel, formatAddress, formatRows, formatSnapshot, formatSummary, groupDigits, type FlowSample, type Snapshot, type Totals,
} from '../../src/tools/pktcount/snapshot.js';

function opts(argv: string[]): PktcountOptions {
  const r = parsePktcountArgs(argv);
  assert.notEqual(r, 'help');
  return r as PktcountOptions;
}

function usageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && pattern.test(e.message), `a UsageError matching ${pattern}`);
}

describe('pktcount: command line', () => {
  it('has the documented defaults', () => {
    const o = opts([]);
    assert.equal(o.iface, undefined);
    assert.equal(o.intervalMs, 1000);
    assert.equal(o.top, 10);
    assert.equal(o.maxEntries, DEFAULT_MAX_ENTRIES);
    assert.deepEqual(o.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(o.mode, undefined);
    assert.equal(o.json, false);
    assert.deepEqual(o.exclude, []);
    assert.equal(o.aggregate, 'flow');
  });

  it('--aggregate takes flow, src or dport', () => {
    assert.equal(opts(['--aggregate', 'src']).aggregate, 'src');
    assert.equal(opts(['--aggregate', 'DPORT']).aggregate, 'dport');
    assert.equal(opts(['--aggregate', 'flow']).aggregate, 'flow');
    assert.throws(() => parsePktcountArgs(['--aggregate', 'sport']), /--aggregate: "sport" is not a key; use flow, src or dport/);
  });

  it('reads every option', () => {
    const o = opts(['--iface', 'veth1', '--interval', '250ms', '--top', '5', '--max-entries', '1024', '--exclude', '10.0.0.0/8',
      '--exclude', '192.168.1.1,fd00::/8', '--exclude-file', '/x', '--mode', 'native', '--listen', '[::1]:9000', '--json',
      '--duration', '2m', '--allow-origin', 'https://Dash.Example:8443']);
    assert.equal(o.iface, 'veth1');
    assert.equal(o.intervalMs, 250);
    assert.equal(o.top, 5);
    assert.equal(o.maxEntries, 1024);
    assert.deepEqual(o.exclude, ['10.0.0.0/8', '192.168.1.1', 'fd00::/8']);
    assert.deepEqual(o.excludeFiles, ['/x']);
    assert.equal(o.mode, 'native');
    assert.deepEqual(o.listen, { host: '::1', port: 9000 });
    assert.equal(o.json, true);
    assert.equal(o.durationMs, 120_000);
    assert.deepEqual(o.allowOrigins, ['https://dash.example:8443']);
    assert.equal(opts(['--no-web']).listen, undefined);
    assert.equal(opts(['--mode', 'skb']).mode, 'skb');
    assert.equal(parsePktcountArgs(['-h']), 'help');
  });

  it('parses durations and refuses bad ones, naming them', () => {
    assert.equal(parseDuration('1s', '--interval'), 1000);
    assert.equal(parseDuration('2.5s', '--interval'), 2500);
    assert.equal(parseDuration('3', '--interval'), 3000);
    assert.equal(parseDuration('1m', '--interval'), 60_000);
    usageError(() => opts(['--interval', 'soon']), /--interval: invalid duration "soon"/);
    usageError(() => opts(['--interval', '1ms']), /--interval: "1ms" is out of range/);
  });

  it('parses listen addresses and refuses bad ones', () => {
    assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
    assert.deepEqual(parseListen(':9090'), { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(parseListen('9090'), { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
    usageError(() => parseListen('::1:80'), /brackets/);
    usageError(() => parseListen('host:99999'), /port "99999"/);
    usageError(() => parseListen('nohost'), /not HOST:PORT/);
    assert.equal(parseOrigin('http://a.b:1/'), 'http://a.b:1');
    usageError(() => parseOrigin('http://a.b/path'), /not an origin/);
  });

  it('refuses bad values and contradictions, naming the flag', () => {
    usageError(() => opts(['--mode', 'turbo']), /--mode: "turbo" is not a mode/);
    usageError(() => opts(['--top', '0']), /--top: 0 is out of range/);
    usageError(() => opts(['--top', 'ten']), /--top: "ten" is not a whole number/);
    usageError(() => opts(['--max-entries', '8']), /--max-entries: 8 is out of range/);
    usageError(() => opts(['--no-web', '--listen', ':1']), /contradict/);
    usageError(() => opts(['--bogus']), /bogus/);
    usageError(() => opts(['eth0']), /unexpected argument "eth0"/);
  });

  it('runPktcount exits 2 with a message for bad input, before touching the kernel', async () => {
    const err: string[] = [];
    const io = { out: () => {}, err: (t: string) => { err.push(t); } };
    assert.equal(await runPktcount(['--mode', 'x'], { io }), 2);
    assert.match(err.join(''), /--mode: "x" is not a mode/);
    err.length = 0;
    assert.equal(await runPktcount(['--exclude', '10.0.0.300', '--no-web'], { io }), 2);
    assert.match(err.join(''), /invalid CIDR "10\.0\.0\.300"/);
    err.length = 0;
    assert.equal(await runPktcount(['--exclude', '10.0.0.0/33', '--no-web'], { io }), 2);
    assert.match(err.join(''), /"10\.0\.0\.0\/33"/);
    const out: string[] = [];
    assert.equal(await runPktcount(['--help'], { io: { out: (t) => { out.push(t); }, err: () => {} } }), 0);
    assert.match(out.join(''), /usage: bpfkit pktcount/);
  });
});

describe('pktcount: exclusions', () => {
  it('turns IPs and CIDRs into canonical prefixes and LPM keys', () => {
    const a = parseExclusion('10.1.2.3/8', '--exclude');
    assert.equal(a.cidr, '10.0.0.0/8');
    assert.equal(a.family, 4);
    assert.deepEqual([...a.key], [8, 0, 0, 0, 10, 0, 0, 0]);
    const b = parseExclusion('192.168.5.2', '--exclude');
    assert.equal(b.cidr, '192.168.5.2/32');
    const c = parseExclusion('FD77:0:0::14', '--exclude');
    assert.equal(c.cidr, 'fd77::14/128');
    assert.equal(c.key.length, 20);
    assert.equal(c.key[0], 128);
    assert.deepEqual([...c.key.subarray(4, 6)], [0xfd, 0x77]);
    const d = parseExclusion('2001:db8:abcd::/36', 'f:1');
    assert.equal(d.cidr, '2001:db8:a000::/36');
  });

  it('names the bad value and where it came from', () => {
    usageError(() => parseExclusion('not-an-ip', '--exclude'), /--exclude: invalid CIDR "not-an-ip"/);
    usageError(() => parseExcludeText('10.0.0.1\n# fine\n\n300.1.1.1 # bad\n', 'list.txt'), /list\.txt:4: invalid CIDR "300\.1\.1\.1"/);
  });

  it('reads files with comments, blanks and several entries per line; deduplicates', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-pktcount-'));
    try {
      const f = join(dir, 'ex.txt');
      writeFileSync(f, '# office\n10.0.0.0/8 172.16.0.0/12\n\nfd00::/8, 10.9.9.9/8  # dup of the first\n');
      const all = collectExclusions(['192.168.0.0/16', '10.0.0.0/8'], [f]);
      assert.deepEqual(all.map((e) => e.cidr), ['192.168.0.0/16', '10.0.0.0/8', '172.16.0.0/12', 'fd00::/8']);
      assert.deepEqual(all.map((e) => e.origin), ['--exclude', '--exclude', `${f}:2`, `${f}:4`]);
      assert.throws(() => collectExclusions([], [join(dir, 'missing.txt')]), /--exclude-file: cannot read .*missing\.txt: no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pktcount: privileges', () => {
  const status = (hex: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${hex}\n`;

  it('reads CapEff and names what is missing and why', () => {
    assert.equal(effectiveCapabilities(status('000001ffffffffff')), 0x1ffffffffffn);
    const root = effectiveCapabilities(status('000001ffffffffff'));
    assert.deepEqual(missing(pktcountNeeds(true), root), []);
    const none = effectiveCapabilities(status('0000000000000000'));
    const lack = missing(pktcountNeeds(true), none);
    assert.deepEqual(lack.map((n) => n.cap), ['BPF', 'NET_ADMIN', 'SYS_ADMIN']);
    const msg = privilegeMessage(lack, 'npx bpfkit pktcount');
    assert.match(msg, /CAP_BPF \(to load the XDP program/);
    assert.match(msg, /CAP_NET_ADMIN \(to attach XDP/);
    assert.match(msg, /CAP_SYS_ADMIN \(to create the demo's network namespaces\)/);
    assert.match(msg, /sudo npx bpfkit pktcount/);
    // CAP_SYS_ADMIN stands in for CAP_BPF; an --iface run needs no namespaces.
    const sysAdminNetAdmin = (1n << 21n) | (1n << 12n);
    assert.deepEqual(missing(pktcountNeeds(false), sysAdminNetAdmin), []);
    assert.deepEqual(missing(pktcountNeeds(false), 1n << 39n).map((n) => n.cap), ['NET_ADMIN']);
  });
});

describe('pktcount: addresses, snapshots and text', () => {
  const v4 = (a: number[]): Uint8Array => new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a]);
  const v6 = (groups: number[]): Uint8Array => {
    const b = new Uint8Array(16);
    groups.forEach((g, i) => { b[i * 2] = g >> 8; b[i * 2 + 1] = g & 0xff; });
    return b;
  };
  const totals = (packets: number): Totals => ({ packets, counted: packets, excluded: 0, nonIp: 0, otherL4: 0, malformed: 0, untracked: 0 });

  it('formats IPv4 and IPv6 sources (RFC 5952)', () => {
    assert.equal(formatAddress(v4([192, 168, 5, 2]), 4), '192.168.5.2');
    assert.equal(formatAddress(v6([0xfd77, 0, 0, 0, 0, 0, 0, 0x11]), 6), 'fd77::11');
    assert.equal(formatAddress(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), 6), '2001:db8::1:0:0:1');
    assert.equal(formatAddress(v6([0, 0, 0, 0, 0, 0, 0, 1]), 6), '::1');
    assert.equal(formatAddress(v6([1, 2, 3, 4, 5, 6, 7, 8]), 6), '1:2:3:4:5:6:7:8');
    assert.equal(formatAddress(v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]), 6), '::ffff:10.0.0.1');
    assert.equal(flowLabel({ src: '192.168.5.2', srcPort: 58597, dstPort: 22 }), '192.168.5.2:58597 => :22');
    assert.equal(flowLabel({ src: 'fd77::11', srcPort: 5, dstPort: 53 }), '[fd77::11]:5 => :53');
  });

  it('ranks by packets, measures rates between reads, keeps the top N, sums sources', () => {
    const b = new SnapshotBuilder({ iface: 'veth9', mode: 'auto', demo: false, intervalMs: 1000, maxEntries: 100, top: 2, excluded: ['10.0.0.0/8'], startedAt: 10_000 });
    const f = (src: Uint8Array, family: 4 | 6, sport: number, proto: number, packets: number): FlowSample => (
      { family, saddr: src, srcPort: sport, dstPort: 22, proto, packets, bytes: packets * 100 });
    const a = v4([192, 168, 5, 2]);
    const c = v6([0xfd77, 0, 0, 0, 0, 0, 0, 0x11]);
    const s1 = b.build([f(a, 4, 1000, 6, 10), f(c, 6, 2000, 17, 30), f(a, 4, 1001, 6, 5)], totals(45), 12_000);
    assert.deepEqual(s1.entries.map((e) => [e.src, e.srcPort, e.proto, e.packets, e.rate]), [
      ['fd77::11', 2000, 'udp', 30, 15], ['192.168.5.2', 1000, 'tcp', 10, 5],
    ]);
    assert.equal(s1.flows, 3);
    assert.equal(s1.rates.packets, 22.5);
    assert.equal(s1.uptimeMs, 2000);
    assert.deepEqual(s1.sources.map((s) => [s.src, s.packets, s.flows]), [['fd77::11', 30, 1], ['192.168.5.2', 15, 2]]);
    assert.deepEqual(s1.excluded, ['10.0.0.0/8']);
    // One second later: the TCP flow overtakes.
    const s2 = b.build([f(a, 4, 1000, 6, 50), f(c, 6, 2000, 17, 31), f(a, 4, 1001, 6, 5)], totals(86), 13_000);
    assert.deepEqual(s2.entries.map((e) => [e.srcPort, e.packets, e.rate]), [[1000, 50, 40], [2000, 31, 1]]);
    assert.equal(s2.rates.packets, 41);
    // A flow evicted and back with fewer packets: all of them are new.
    const s3 = b.build([f(c, 6, 2000, 17, 4)], totals(90), 15_000);
    assert.deepEqual(s3.entries.map((e) => [e.packets, e.rate]), [[4, 2]]);
    assert.equal(s3.time, new Date(15_000).toISOString());
  });

  it('prints the seed-style table and a summary', () => {
    const b = new SnapshotBuilder({ iface: 'veth9', mode: 'auto', demo: false, intervalMs: 1000, maxEntries: 100, top: 10, excluded: [], startedAt: 0 });
    const s = b.build([
      { family: 4, saddr: v4([192, 168, 5, 2]), srcPort: 58597, dstPort: 22, proto: 6, packets: 51, bytes: 5000 },
      { family: 6, saddr: v6([0xfd77, 0, 0, 0, 0, 0, 0, 0x11]), srcPort: 5353, dstPort: 53, proto: 17, packets: 1234, bytes: 9 },
    ], { ...totals(1300), nonIp: 15 }, 2000);
    const rows = formatRows(s.entries);
    assert.equal(rows[0], '  [fd77::11]:5353 => :53    udp | 1,234   617/s');
    assert.equal(rows[1], '  192.168.5.2:58597 => :22  tcp |    51  25.5/s');
    const text = formatSnapshot(s);
    assert.match(text, /veth9: 1,300 packets \(650\/s\), 2 flows, 15 not TCP\/UDP\n/);
    const sum = formatSummary(s, 'veth9');
    assert.match(sum, /detached from veth9 after 2\.0s/);
    assert.match(sum, /packets seen {2}1,300/);
    assert.match(sum, /192\.168\.5\.2:58597 => :22 {2}tcp \| {4}51/);
    assert.equal(groupDigits(1234567), '1,234,567');
  });

  it('--aggregate: the fields the kernel summed away read as * in the table, the JSON and /metrics, never 0', async () => {
    // What the kernel stores per row with --aggregate: src zeroes both ports, dport the source and its port.
    const rowsOf = (aggregate: 'src' | 'dport'): FlowSample[] => aggregate === 'src'
      ? [
        { family: 4, saddr: v4([10, 0, 0, 1]), srcPort: 0, dstPort: 0, proto: 17, packets: 40, bytes: 4000 },
        { family: 6, saddr: v6([0xfd77, 0, 0, 0, 0, 0, 0, 0x11]), srcPort: 0, dstPort: 0, proto: 6, packets: 9, bytes: 900 },
      ]
      : [
        { family: 4, saddr: v4([0, 0, 0, 0]), srcPort: 0, dstPort: 53, proto: 17, packets: 40, bytes: 4000 },
        { family: 6, saddr: v6([0, 0, 0, 0, 0, 0, 0, 0]), srcPort: 0, dstPort: 53, proto: 17, packets: 7, bytes: 700 },
      ];
    const snap = (aggregate: 'src' | 'dport') => new SnapshotBuilder({
      iface: 'veth9', mode: 'auto', demo: false, aggregate, intervalMs: 1000, maxEntries: 100, top: 10, excluded: [], startedAt: 0,
    }).build(rowsOf(aggregate), totals(49), 1000);

    const bySrc = snap('src');
    assert.equal(bySrc.aggregate, 'src');
    assert.deepEqual(formatRows(bySrc.entries), ['  10.0.0.1:* => :*    udp | 40  40.0/s', '  [fd77::11]:* => :*  tcp |  9   9.0/s']);
    const json = JSON.parse(JSON.stringify(bySrc)) as Snapshot;
    assert.deepEqual(json.entries.map((e) => [e.src, e.srcPort, e.dstPort]), [['10.0.0.1', '*', '*'], ['fd77::11', '*', '*']]);
    assert.deepEqual(bySrc.sources.map((x) => x.src), ['10.0.0.1', 'fd77::11'], 'sources are still summed per address');

    const byPort = snap('dport');
    // The kernel's IPv4 and IPv6 rows of port 53 are one row.
    assert.deepEqual(formatRows(byPort.entries), ['  *:* => :53  udp | 47  47.0/s']);
    assert.deepEqual(JSON.parse(JSON.stringify(byPort.entries)), [{ src: '*', srcPort: '*', dstPort: 53, proto: 'udp', packets: 47, bytes: 4700, rate: 47 }]);
    assert.deepEqual(byPort.sources, [], 'no per-source sums when the source was summed away');
    assert.doesNotMatch(formatSnapshot(byPort) + formatSnapshot(bySrc), /0\.0\.0\.0|:0\b|\[::\]/);

    const metrics = createMetrics({ latest: () => bySrc, clients: () => 0, skippedSends: () => 0 });
    const text = await metrics.render();
    assert.match(text, /^pktcount_flow_packets_total\{src="10\.0\.0\.1",src_port="\*",dst_port="\*",proto="udp"\} 40$/m);
    const portMetrics = await createMetrics({ latest: () => byPort, clients: () => 0, skippedSends: () => 0 }).render();
    assert.match(portMetrics, /^pktcount_flow_packets_total\{src="\*",src_port="\*",dst_port="53",proto="udp"\} 47$/m);
  });
});
