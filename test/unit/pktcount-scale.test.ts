/**
 * pktcount's render path at scale: picking the top N without sorting the whole table must give
 * exactly what the full sort gave, ties at the cut included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xorshift32 } from '../helpers/index.js';
import { compareFlows, SnapshotBuilder, topByPackets, type FlowEntry, type FlowSample, ZERO_TOTALS } from '../../src/tools/pktcount/snapshot.js';

/** Deterministic values in [0, 1). */
function rng(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 0x1_0000_0000;
}

function entries(n: number, distinctCounts: number, r: () => number): FlowEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    src: `10.0.${i >> 8 & 255}.${i & 255}`, srcPort: 1000 + Math.floor(r() * 50), dstPort: 80, proto: r() < 0.5 ? 'tcp' : 'udp',
    family: 4 as const, packets: 1 + Math.floor(r() * distinctCounts), bytes: 0, rate: Math.floor(r() * 3),
  }));
}

test('topByPackets: the first n of the full sort, for few and many ties at the cut', () => {
  const r = rng(14);
  for (const [size, distinct] of [[10, 5], [200, 3], [5000, 1], [5000, 40], [5000, 1_000_000]] as const) {
    for (const n of [0, 1, 5, 20, 60]) {
      const list = entries(size, distinct, r);
      const want = [...list].sort(compareFlows).slice(0, n);
      assert.deepEqual(topByPackets([...list], n, compareFlows), want, `${size} flows, ${distinct} distinct counts, top ${n}`);
    }
  }
});

test('SnapshotBuilder.build on 20,000 flows: top entries and sources as a full sort orders them', () => {
  const r = rng(50_000);
  const flows: FlowSample[] = Array.from({ length: 20_000 }, (_, i) => {
    const saddr = new Uint8Array(16);
    saddr.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, (i >> 6) & 255, i & 63]);
    return { family: 4, saddr, srcPort: 2000 + (i % 7), dstPort: 443, proto: 6, packets: 1 + Math.floor(r() * 30), bytes: 64 };
  });
  const start = 1_000_000;
  const snap = new SnapshotBuilder({ iface: 'x', mode: 'auto', demo: false, intervalMs: 1000, maxEntries: 65536, top: 25, excluded: [], startedAt: start })
    .build(flows, ZERO_TOTALS, start + 1000);
  const all: FlowEntry[] = flows.map((f) => ({
    src: `10.1.${f.saddr[14]}.${f.saddr[15]}`, srcPort: f.srcPort, dstPort: f.dstPort, proto: 'tcp', family: 4, packets: f.packets, bytes: f.bytes, rate: f.packets,
  }));
  assert.deepEqual(snap.entries, all.sort(compareFlows).slice(0, 25));
  const bySrc = new Map<string, number>();
  for (const e of all) bySrc.set(e.src, (bySrc.get(e.src) ?? 0) + e.packets);
  const wantSources = [...bySrc].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 25).map(([src, packets]) => [src, packets]);
  assert.deepEqual(snap.sources.map((s) => [s.src, s.packets]), wantSources);
  assert.equal(snap.flows, 20_000);
});

test('SnapshotBuilder.build over many reads: rates per flow and per source as packets since the previous read, when flows and sources come and go', () => {
  const r = rng(7);
  const addr = (i: number): Uint8Array => {
    const a = new Uint8Array(16);
    if (i % 2 === 0) a.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, i]);
    else a.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i]);
    return a;
  };
  const text = (i: number): string => (i % 2 === 0 ? `10.0.0.${i}` : `fd00::${i.toString(16)}`);
  // 6 sources x 4 flows; each read keeps a random subset, counts grow (or restart from a small number).
  const counts = new Map<string, number>();
  let prev = new Map<string, number>();
  const b = new SnapshotBuilder({ iface: 'x', mode: 'auto', demo: false, intervalMs: 1000, maxEntries: 100, top: 100, excluded: [], startedAt: 0 });
  for (let read = 1; read <= 12; read++) {
    const flows: FlowSample[] = [];
    const want = new Map<string, number>();
    const wantSrc = new Map<string, number>();
    const next = new Map<string, number>();
    for (let s = 0; s < 6; s++) {
      if (r() < 0.2) continue; // the whole source is absent from this read
      for (let p = 0; p < 4; p++) {
        if (r() < 0.3) continue;
        const id = `${s}/${p}`;
        const c = r() < 0.1 ? 1 + Math.floor(r() * 3) : (counts.get(id) ?? 0) + Math.floor(r() * 50);
        counts.set(id, c);
        flows.push({ family: s % 2 === 0 ? 4 : 6, saddr: addr(s), srcPort: 1000 + p, dstPort: 80, proto: p % 2 ? 17 : 6, packets: c, bytes: c });
        const before = prev.get(id);
        const d = before !== undefined && before <= c ? c - before : c;
        want.set(`${text(s)}:${1000 + p}`, d / 2);
        wantSrc.set(text(s), (wantSrc.get(text(s)) ?? 0) + d / 2);
        next.set(id, c);
      }
    }
    prev = next;
    const snap = b.build(flows, ZERO_TOTALS, read * 2000);
    assert.deepEqual(new Map(snap.entries.map((e) => [`${e.src}:${String(e.srcPort)}`, e.rate])), new Map([...want].map(([k, v]) => [k, Math.round(v * 100) / 100])), `read ${read}`);
    assert.deepEqual(new Map(snap.sources.map((e) => [e.src, e.rate])), new Map([...wantSrc].map(([k, v]) => [k, Math.round(v * 100) / 100])), `read ${read}`);
  }
});
