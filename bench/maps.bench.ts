/**
 * Map operations, bpfkit next to libbpf, in one run: a hash map u32 -> u64 of BENCH_MAP_ENTRIES
 * entries (default 1M), per entry: update, lookup, iteration (next_key + lookup), batch lookup
 * and delete. bpfkit twice: with raw bytes (Uint8Array keys and values, as libbpf passes them) and
 * with BTF-decoded keys and values (number -> bigint), what a TypeScript user writes.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Collection } from '../src/load/collection.js';
import { CollectionSpec } from '../src/spec/collection-spec.js';
import type { BpfMap } from '../src/objects/map.js';
import { buildBpf, buildC, report, type Row } from './common.js';

const N = Number(process.env['BENCH_MAP_ENTRIES'] ?? 1 << 20);

const libbpf = buildC('libbpf-bench');
const spec = CollectionSpec.fromBuffer(readFileSync(buildBpf('maps_bench')));
spec.maps.get('bench_hash')!.maxEntries = N;

/** Mean ns per entry of fn(i) for i in [0, N). */
function perEntry(fn: (i: number) => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / N;
}

function perIterated(it: Iterable<unknown>): number {
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (const _ of it) n++;
  if (n !== N) throw new Error(`iterated ${n} entries, expected ${N}`);
  return Number(process.hrtime.bigint() - t0) / n;
}

function run(mode: 'raw' | 'decoded'): Record<string, number> {
  const coll = Collection.loadSync(spec);
  try {
    const m = coll.maps.get('bench_hash')! as BpfMap<number, bigint>;
    const out: Record<string, number> = {};
    if (mode === 'raw') {
      const key = new Uint8Array(4);
      const kv = new DataView(key.buffer);
      const value = new Uint8Array(8);
      value[0] = 1;
      out['update'] = perEntry((i) => { kv.setUint32(0, i, true); m.update(key, value); });
      out['lookup'] = perEntry((i) => { kv.setUint32(0, i, true); m.lookupBytes(key); });
      out['iterate'] = perIterated(m.entries());
      out['batch'] = perIteratedBatch(m, 'raw');
      out['delete'] = perEntry((i) => { kv.setUint32(0, i, true); m.delete(key); });
    } else {
      out['update'] = perEntry((i) => m.update(i, 1n));
      out['lookup'] = perEntry((i) => m.lookup(i));
      out['iterate'] = perIterated(m.entries());
      out['batch'] = perIteratedBatch(m, 'decoded');
      out['delete'] = perEntry((i) => m.delete(i));
    }
    return out;
  } finally {
    coll.close();
  }
}

/** Raw: the packed key and value bytes (lookupBatchRaw), as libbpf's caller gets them; decoded: [key, value] pairs. */
function perIteratedBatch(m: BpfMap<number, bigint>, mode: 'raw' | 'decoded'): number {
  const t0 = process.hrtime.bigint();
  const n = mode === 'raw' ? m.lookupBatchRaw({ batchSize: 4096 })!.count : m.lookupBatch({ batchSize: 4096 }).length;
  if (n !== N) throw new Error(`batch read ${n} entries, expected ${N}`);
  return Number(process.hrtime.bigint() - t0) / n;
}

const theirs = Object.fromEntries(execFileSync(libbpf, ['map-ops', String(N)], { encoding: 'utf8' })
  .trim().split('\n').map((l) => { const [k, v] = l.split(' '); return [k!, Number(v)]; }));
const raw = run('raw');
const decoded = run('decoded');

const rows: Row[] = [];
const names: Record<string, string> = {
  update: 'update', lookup: 'lookup', iterate: 'iterate (next_key+lookup)', batch: 'batch lookup (4096/call)', delete: 'delete',
};
for (const [op, label] of Object.entries(names)) {
  rows.push({ what: `${label}, raw`, bpfkit: raw[op]!, baseline: theirs[op]!, unit: 'ns/entry', higherIsBetter: false });
  rows.push({ what: `${label}, BTF-decoded`, bpfkit: decoded[op]!, baseline: theirs[op]!, unit: 'ns/entry', higherIsBetter: false });
}
report(`Hash map u32 -> u64, ${N} entries (lower is better; speed > 1x means bpfkit is faster)`, 'libbpf', rows);
