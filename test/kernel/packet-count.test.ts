/**
 * The per-source-address packet counter (test/bpf/packet_count.bpf.c), end to end: everything the
 * classic XDP example does except attaching. Load the object, feed xdp_prog_func crafted frames
 * through BPF_PROG_TEST_RUN instead of a network interface, then read xdp_stats_map the way the
 * example prints it: every key an IPv4 source address, every value a packet count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { Collection, CollectionSpec, type BpfMap, type Program } from '../../src/index.js';
import { ipv4Packet, kernelTest, obj } from '../helpers/index.js';

const XDP_PASS = 2;

/** A map key (the 4 address bytes, network order, read as a host-order u32) as a dotted string. */
function keyToIPv4(key: number): string {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, key, endianness() === 'LE');
  return [...b].join('.');
}

/** The key the program stores for a dotted address. */
function ipv4ToKey(addr: string): number {
  const b = new Uint8Array(addr.split('.').map(Number));
  return new DataView(b.buffer).getUint32(0, endianness() === 'LE');
}

/** A dotted address as a number, for sorting. */
function addrValue(addr: string): number {
  return addr.split('.').reduce((n, x) => n * 256 + Number(x), 0);
}

/** The map's contents, as the example prints them: address -> count, sorted by address. */
function contents(m: BpfMap): Map<string, number> {
  const rows: [string, number][] = [];
  for (const [k, v] of m.entries()) {
    assert.equal(typeof k, 'number', 'keys decode as u32 (BTF __u32)');
    assert.equal(typeof v, 'number', 'values decode as u32 (BTF __u32)');
    rows.push([keyToIPv4(k as number), v as number]);
  }
  rows.sort((a, b) => addrValue(a[0]) - addrValue(b[0]));
  return new Map(rows);
}

function format(m: Map<string, number>): string {
  return [...m].map(([addr, n]) => `${addr} => ${n}`).join('\n');
}

async function withCounter(fn: (p: Program, m: BpfMap, c: Collection) => void): Promise<void> {
  const spec = await CollectionSpec.fromFile(obj('packet_count'));
  const c = await Collection.load(spec);
  try {
    const p = c.programs.get('xdp_prog_func');
    const m = c.maps.get('xdp_stats_map');
    assert.ok(p && m);
    fn(p, m, c);
  } finally {
    c.close();
  }
}

test('packet_count: address conversions agree with the README example', () => {
  assert.equal(ipv4ToKey('192.168.1.10'), endianness() === 'LE' ? 0x0a01a8c0 : 0xc0a8010a);
  assert.equal(keyToIPv4(ipv4ToKey('192.168.1.10')), '192.168.1.10');
  assert.equal(keyToIPv4(ipv4ToKey('255.0.128.1')), '255.0.128.1');
});

test('packet_count: the map and program are what the example expects', kernelTest, async () => {
  await withCounter((p, m) => {
    assert.equal(m.type, 'lru_hash');
    assert.equal(m.keySize, 4);
    assert.equal(m.valueSize, 4);
    assert.equal(m.maxEntries, 1024);
    assert.equal(p.type, 'xdp');
    assert.equal(p.info().type, 'xdp');
    assert.deepEqual(p.info().mapIds, [m.info().id]);
    assert.equal(m.info().name, 'xdp_stats_map');
    assert.equal(contents(m).size, 0, 'starts empty');
  });
});

test('packet_count: the README frame, sent three times, counts 3 under 192.168.1.10', kernelTest, async () => {
  // dst ff:ff:ff:ff:ff:ff, src 02:00:00:00:00:01, IPv4, 192.168.1.10 -> 10.0.0.1 (UDP), 34 bytes.
  const frame = Uint8Array.from([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
    0xc0, 0xa8, 0x01, 0x0a, 0x0a, 0x00, 0x00, 0x01,
  ]);
  await withCounter((p, m) => {
    for (let i = 0; i < 3; i++) assert.equal(p.testRun({ data: frame }).retval, XDP_PASS);
    assert.deepEqual([...m.keys()], [ipv4ToKey('192.168.1.10')]);
    const raw = m.lookupBytes(new Uint8Array([0xc0, 0xa8, 0x01, 0x0a]));
    assert.ok(raw, 'the key is the four address bytes as they are in the header');
    assert.deepEqual([...raw], [3, 0, 0, 0]);
    assert.equal(format(contents(m)), '192.168.1.10 => 3');
  });
});

test('packet_count: counts per source address; non-IPv4 and short frames pass uncounted', kernelTest, async () => {
  const sent: [src: string, times: number, proto: 'tcp' | 'udp'][] = [
    ['192.168.1.10', 3, 'udp'],
    ['10.0.0.1', 1, 'tcp'],
    ['172.16.5.4', 2, 'tcp'],
    ['8.8.8.8', 5, 'udp'],
    ['255.255.255.255', 1, 'udp'],
    ['0.0.0.0', 2, 'tcp'],
    ['192.168.1.11', 4, 'tcp'],
  ];
  await withCounter((p, m) => {
    // Interleave the senders, as real traffic would.
    const queue = sent.flatMap(([src, times, proto]) => Array.from({ length: times }, (_, i) => ({ src, proto, i })));
    queue.sort((a, b) => a.i - b.i || a.src.localeCompare(b.src));
    for (const { src, proto } of queue) {
      const frame = ipv4Packet({ src, dst: '10.9.8.7', proto });
      assert.equal(p.testRun({ data: frame }).retval, XDP_PASS, `from ${src}`);
    }

    // Not counted: IPv6 ethertype (with what would be an IPv4 source at the same offset), ARP,
    // and an IPv4 frame too short to hold the IP header.
    const ipv6 = ipv4Packet({ src: '1.2.3.4', dst: '5.6.7.8' });
    ipv6[12] = 0x86; ipv6[13] = 0xdd;
    const arp = ipv4Packet({ src: '1.2.3.5', dst: '5.6.7.8' });
    arp[12] = 0x08; arp[13] = 0x06;
    const short = ipv4Packet({ src: '1.2.3.6', dst: '5.6.7.8' }).slice(0, 33);
    const vlan = ipv4Packet({ src: '1.2.3.7', dst: '5.6.7.8' });
    vlan[12] = 0x81; vlan[13] = 0x00;
    for (const frame of [ipv6, arp, short, vlan, new Uint8Array(14)]) {
      assert.equal(p.testRun({ data: frame }).retval, XDP_PASS);
    }

    const expected = new Map(
      sent.map(([src, times]) => [src, times] as [string, number]).sort((a, b) => addrValue(a[0]) - addrValue(b[0])),
    );
    const got = contents(m);
    assert.deepEqual(got, expected);
    assert.equal(format(got), [
      '0.0.0.0 => 2', '8.8.8.8 => 5', '10.0.0.1 => 1', '172.16.5.4 => 2', '192.168.1.10 => 3', '192.168.1.11 => 4',
      '255.255.255.255 => 1',
    ].join('\n'));
    for (const addr of ['1.2.3.4', '1.2.3.5', '1.2.3.6', '1.2.3.7']) {
      assert.equal(m.lookup(ipv4ToKey(addr)), undefined, `${addr} was not counted`);
    }
    // Lookups by key agree with the iteration.
    for (const [src, times] of sent) assert.equal(m.lookup(ipv4ToKey(src)), times, src);
  });
});

test('packet_count: repeat counts every run; an entry deleted from user space starts again at 1', kernelTest, async () => {
  await withCounter((p, m) => {
    const frame = ipv4Packet({ src: '203.0.113.9', dst: '198.51.100.1', proto: 'udp' });
    assert.equal(p.testRun({ data: frame, repeat: 50 }).retval, XDP_PASS);
    assert.equal(m.lookup(ipv4ToKey('203.0.113.9')), 50);
    assert.equal(p.testRun({ data: frame }).retval, XDP_PASS);
    assert.equal(m.lookup(ipv4ToKey('203.0.113.9')), 51);

    assert.equal(m.delete(ipv4ToKey('203.0.113.9')), true);
    assert.equal(contents(m).size, 0);
    p.testRun({ data: frame });
    assert.equal(format(contents(m)), '203.0.113.9 => 1');

    // A count set from user space is continued by the program.
    m.update(ipv4ToKey('198.51.100.77'), 1000);
    p.testRun({ data: ipv4Packet({ src: '198.51.100.77', dst: '10.0.0.1' }) });
    assert.equal(m.lookup(ipv4ToKey('198.51.100.77')), 1001);
  });
});
