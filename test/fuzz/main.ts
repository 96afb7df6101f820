/**
 * `npm run fuzz -- [--runs N] [--start K] [--seed S] [--time-limit MS] [--out DIR] [--split]`:
 * runs inputs K to K+N-1 of the campaign seeded S (see harness.ts: every run's input depends only on
 * S and its index, so a campaign resumes at any run and splits into ranges) and reports every
 * finding; each finding's input is saved in DIR (default .scratch/fuzz-findings) as
 * run-S-K.bin. `--split` also parses each BTF mutant as split BTF over this machine's vmlinux.
 * Progress goes to stderr every 1,000 runs as `progress: next run K, ...`: resume with --start K.
 * A watchdog thread ends the process (exit 3) when one input has used `--hang-limit` ms of CPU
 * (default 30,000), naming the run: a hang cannot be judged from inside the loop it hangs.
 * Run it niced: it uses one core.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Btf } from '../../src/btf/btf.js';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { ROOT } from '../helpers/index.js';
import { fuzz, loadCorpus } from './harness.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    start: { type: 'string', default: '0' },
    seed: { type: 'string', default: String(Date.now() >>> 0) },
    'time-limit': { type: 'string', default: '1000' },
    'hang-limit': { type: 'string', default: '30000' },
    out: { type: 'string', default: join(ROOT, '.scratch', 'fuzz-findings') },
    split: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const start = Number(values.start);
const seed = Number(values.seed);
for (const [name, v] of [['runs', runs], ['start', start], ['seed', seed], ['time-limit', Number(values['time-limit'])], ['hang-limit', Number(values['hang-limit'])]] as const) {
  if (!Number.isSafeInteger(v) || v < 0) {
    process.stderr.write(`fuzz: --${name} must be a non-negative integer\n`);
    process.exit(2);
  }
}
const corpus = loadCorpus(ROOT);
const kernel = useEmulatedKernel();
const base = values.split ? await Btf.loadKernel() : undefined;
const log = (line: string): void => void process.stderr.write(`${new Date().toISOString()} ${line}\n`);
log(`fuzz: ${corpus.length} seeds, runs ${start} to ${start + runs - 1}, seed ${seed}`);

// The watchdog: the loop stores the current run and the process's CPU time at its start; the
// thread ends the process when one run has used more than the hang limit.
const beat = new Float64Array(new SharedArrayBuffer(16));
beat[0] = -1;
const watchdog = new Worker(`
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const beat = new Float64Array(workerData.sab);
setInterval(() => {
  const run = beat[0], cpu0 = beat[1];
  if (run < 0) return;
  const u = process.cpuUsage();
  const used = (u.user + u.system) / 1000 - cpu0;
  if (beat[0] === run && used > workerData.limit) {
    writeSync(2, new Date().toISOString() + ' hang: run ' + run + ' (seed ' + workerData.seed + ') used ' + Math.round(used) +
      ' ms of CPU; replay with --start ' + run + ' --runs 1, resume with --start ' + (run + 1) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, 1000);
`, { eval: true, workerData: { sab: beat.buffer, limit: Number(values['hang-limit']), seed } });
watchdog.unref();

const started = performance.now();
const seen = new Set<string>();
let found = 0;
await fuzz(corpus, runs, seed, { kernel, timeLimitMs: Number(values['time-limit']), base }, (f, run) => {
  found++;
  const key = `${f.entry.replace(/\(\d+\)/, '')}: ${f.problem.split('\n')[0]}`;
  mkdirSync(values.out!, { recursive: true });
  const file = join(values.out!, `run-${seed}-${run}.bin`);
  writeFileSync(file, f.input);
  const first = seen.has(key) ? '' : ' (new kind)';
  log(`finding${first} (run ${run}, ${f.seed}) ${f.entry}: ${f.problem.split('\n').slice(0, 3).join(' | ')} -> ${file}`);
  seen.add(key);
}, (next) => {
  const s = (performance.now() - started) / 1000;
  log(`progress: next run ${next}, ${next - start} runs in ${s.toFixed(0)} s (${((next - start) / s).toFixed(1)}/s), ${found} findings`);
}, start, (run) => {
  const u = process.cpuUsage();
  beat[1] = (u.user + u.system) / 1000;
  beat[0] = run;
});
beat[0] = -1;
const s = (performance.now() - started) / 1000;
process.stdout.write(`${runs} inputs (runs ${start} to ${start + runs - 1}) in ${s.toFixed(1)} s, ${found} findings (${seen.size} distinct), seed ${seed}\n`);
kernel.restore();
await watchdog.terminate();
process.exitCode = found > 0 ? 1 : 0;
