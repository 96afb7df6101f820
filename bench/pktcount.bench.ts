/**
 * pktcount at scale (issue 14): its flow table holding 50,000 flows (written straight into the
 * map through the library, no traffic), one interval's work timed piece by piece, and the
 * leaderboard server's endpoints answering while the table is that full.
 *
 *   read      PacketCounter.readFlows(): BPF_MAP_LOOKUP_BATCH + decoding every flow
 *   build     SnapshotBuilder.build(): rates, sort, top N, per-source sums
 *   tick      read + totals + build + server.submit: the work of one interval
 *   hold      the longest the event loop is held in a tick: pktcount yields between the read and
 *             the build, so the longer of (read + totals) and (build + submit)
 *   /json /metrics /healthz  request latency from an HTTP client in the same process, between
 *             ticks (a request arriving during a tick waits for the rest of it: the tick's
 *             figure is the longest the event loop is held)
 *
 * Baselines, in the same run: libbpf's bpf_map_lookup_batch of the same map in C (bench/c/map-batch.c,
 * timed inside the process) and `bpftool map dump id N` (whole process). Medians of RUNS.
 * The machine may be busy: compare within one run.
 *
 *   npm run bench:pktcount            FLOWS=50000 RUNS=5 npm run bench:pktcount
 */
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { PacketCounter } from '../src/tools/pktcount/counter.js';
import { LeaderboardServer } from '../src/tools/pktcount/server.js';
import { SnapshotBuilder, emptySnapshot, type SnapshotContext } from '../src/tools/pktcount/snapshot.js';
import { buildC, report, type Row } from './common.js';

const FLOWS = Number(process.env['FLOWS'] ?? 50_000);
const RUNS = Number(process.env['RUNS'] ?? 5);
const INTERVAL_MS = 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** CPU time (user + system) of this process spent in `fn`, in ms; collected into `cpu` when given. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Wall time of `fn` in ms; its CPU time is pushed onto `cpu` (a busy machine inflates wall time far more). */
function ms(fn: () => void, cpu?: number[]): number {
  const c = cpuMs();
  const t = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t) / 1e6;
  cpu?.push(cpuMs() - c);
  return wall;
}

/** GET `path`; resolves with the latency in ms once the whole body arrived. */
function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}` } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t) / 1e6) : reject(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `n` flows: IPv4 and IPv6 sources, TCP and UDP, varied ports and counts. */
function fill(counter: PacketCounter, n: number): void {
  const keys: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(24);
    const v6 = i % 4 === 3;
    if (v6) {
      k.set([0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
      k[14] = (i >> 8) & 0xff;
      k[15] = i & 0xff;
    } else {
      k[10] = 0xff; k[11] = 0xff; k[12] = 10; k[13] = (i >> 16) & 0xff; k[14] = (i >> 8) & 0xff; k[15] = i & 0xff;
    }
    const dv = new DataView(k.buffer);
    dv.setUint16(16, 1024 + (i % 60000), true);
    dv.setUint16(18, [22, 53, 80, 443, 5004][i % 5]!, true);
    k[20] = i % 3 === 0 ? 17 : 6;
    k[21] = v6 ? 6 : 4;
    const v = new Uint8Array(16);
    const vv = new DataView(v.buffer);
    vv.setBigUint64(0, BigInt(1 + ((i * 7919) % 100_000)), true);
    vv.setBigUint64(8, BigInt(64 * (1 + ((i * 7919) % 100_000))), true);
    keys.push([k, v]);
  }
  for (let i = 0; i < keys.length; i += 4096) counter.flows.updateBatch(keys.slice(i, i + 4096));
}

const counter = await PacketCounter.load({ maxEntries: Math.max(65_536, FLOWS) });
let server: LeaderboardServer | undefined;
try {
  fill(counter, FLOWS);
  const ctx: SnapshotContext = {
    iface: 'bench', mode: 'auto', demo: false, intervalMs: INTERVAL_MS, maxEntries: counter.maxEntries, top: 20, excluded: [], startedAt: Date.now(),
  };
  const builder = new SnapshotBuilder(ctx);
  server = await LeaderboardServer.start({ host: '127.0.0.1', port: 0, initial: emptySnapshot(ctx) });
  const s = server;
  const tick = (): void => {
    s.submit(builder.build(counter.readFlows(), counter.readTotals()));
  };
  tick();
  const read: number[] = [];
  const build: number[] = [];
  const ticks: number[] = [];
  const readCpu: number[] = [];
  const buildCpu: number[] = [];
  const tickCpu: number[] = [];
  const holds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let flows = counter.readFlows();
    read.push(ms(() => { flows = counter.readFlows(); }, readCpu));
    if (flows.length !== FLOWS) throw new Error(`read ${flows.length} flows, expected ${FLOWS}`);
    build.push(ms(() => builder.build(flows, counter.readTotals()), buildCpu));
    ticks.push(ms(tick, tickCpu));
    let parts: [ReturnType<PacketCounter['readFlows']>, ReturnType<PacketCounter['readTotals']>] | undefined;
    const first = ms(() => { parts = [counter.readFlows(), counter.readTotals()]; });
    holds.push(Math.max(first, ms(() => s.submit(builder.build(parts![0], parts![1])))));
  }
  const idle: Record<string, number[]> = { '/json': [], '/metrics': [], '/healthz': [] };
  const first: Record<string, number[]> = { '/json': [], '/metrics': [], '/healthz': [] };
  for (let i = 0; i < RUNS; i++) {
    tick();
    // The first request after a new snapshot (/metrics renders then), and a second one.
    for (const path of Object.keys(idle)) first[path]!.push(await get(s.port, path));
    for (const path of Object.keys(idle)) idle[path]!.push(await get(s.port, path));
  }

  const c = buildC('map-batch');
  const id = counter.flows.info().id;
  const cBatch: number[] = [];
  const dump: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(c, [String(id)], { encoding: 'utf8' });
    const m = /entries (\d+) ns (\d+)/.exec(r.stdout);
    if (!m || Number(m[1]) !== FLOWS) throw new Error(`map-batch: ${r.stdout}${r.stderr}`);
    cBatch.push(Number(m[2]) / 1e6);
    const t = process.hrtime.bigint();
    const d = spawnSync('bpftool', ['map', 'dump', 'id', String(id)], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30 });
    if (d.status !== 0) throw new Error(`bpftool map dump: ${d.stderr}`);
    dump.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const lib = median(cBatch);
  const rows: Row[] = [
    { what: `read ${FLOWS} flows (batch + decode) vs C batch`, bpfkit: median(read), baseline: lib, unit: 'ms', higherIsBetter: false },
    { what: 'read vs bpftool map dump (whole process)', bpfkit: median(read), baseline: median(dump), unit: 'ms', higherIsBetter: false },
    { what: 'tick (read + build + submit) vs C batch', bpfkit: median(ticks), baseline: lib, unit: 'ms', higherIsBetter: false },
    { what: 'longest event-loop hold of a tick vs C batch', bpfkit: median(holds), baseline: lib, unit: 'ms', higherIsBetter: false },
  ];
  report(`pktcount with ${FLOWS} flows: median of ${RUNS} (lower is better)`, 'libbpf', rows);
  console.log(`  build (rates, top 20 flows and sources) ${median(build).toFixed(1)} ms; tick ${median(ticks).toFixed(1)} ms of a ${INTERVAL_MS} ms interval (${(100 * median(ticks) / INTERVAL_MS).toFixed(1)}%)`);
  console.log(`  CPU time: read ${median(readCpu).toFixed(1)} ms, build ${median(buildCpu).toFixed(1)} ms, tick ${median(tickCpu).toFixed(1)} ms`);
  for (const path of Object.keys(idle)) {
    console.log(`  GET ${path.padEnd(9)} first after a snapshot ${median(first[path]!).toFixed(1).padStart(7)} ms, again ${median(idle[path]!).toFixed(1).padStart(7)} ms (max ${Math.max(...first[path]!, ...idle[path]!).toFixed(1)})`);
  }
} finally {
  await server?.close();
  counter.close();
}
