/**
 * One cold bpfkit load, for bench/load.bench.ts: run as `node dist/bench/load-child.js OBJECT` in a
 * fresh process. Imports the library, parses and loads OBJECT, closes it, then does the same again
 * (warm: kernel facts cached in the process). Prints one JSON line of milliseconds:
 * {importMs, specMs, loadMs, specCpuMs, loadCpuMs, warmSpecMs, warmLoadMs} (the Cpu ones are this
 * process's user + system time, which a busy machine inflates far less than wall time).
 */
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const t0 = performance.now();
const { Collection, CollectionSpec } = await import('../src/index.js');
const t1 = performance.now();
const s0 = cpu();
const path = process.argv[2];
if (!path) throw new Error('usage: load-child.js OBJECT');
const spec = await CollectionSpec.fromFile(path);
const t2 = performance.now();
const c0 = cpu();
const specCpuMs = c0 - s0;
const first = await Collection.load(spec);
const t3 = performance.now();
const c1 = cpu();
first.close();
const t4 = performance.now();
const again = await CollectionSpec.fromFile(path);
const t5 = performance.now();
(await Collection.load(again)).close();
const t6 = performance.now();
console.log(JSON.stringify({
  importMs: t1 - t0, specMs: t2 - t1, loadMs: t3 - t2, specCpuMs, loadCpuMs: c1 - c0, warmSpecMs: t5 - t4, warmLoadMs: t6 - t5,
}));
