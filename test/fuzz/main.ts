/**
 * `npm run fuzz -- [--runs N] [--seed S] [--time-limit MS] [--out DIR] [--split]`: mutates the
 * corpus (see harness.ts) N times and reports every finding; each finding's input is saved in DIR
 * (default .scratch/fuzz-findings) for `node ../shared/repro/btf/run-btf.mjs`-style replay.
 * `--split` also parses each BTF mutant as split BTF over this machine's vmlinux.
 * Run it niced: it uses one core.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Btf } from '../../src/btf/btf.js';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { ROOT } from '../helpers/index.js';
import { fuzz, loadCorpus } from './harness.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string', default: String(Date.now() >>> 0) },
    'time-limit': { type: 'string', default: '1000' },
    out: { type: 'string', default: join(ROOT, '.scratch', 'fuzz-findings') },
    split: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
const corpus = loadCorpus(ROOT);
const kernel = useEmulatedKernel();
const base = values.split ? await Btf.loadKernel() : undefined;
process.stderr.write(`fuzz: ${corpus.length} seeds, ${runs} runs, seed ${seed}\n`);
const started = performance.now();
const seen = new Set<string>();
const found = await fuzz(corpus, runs, seed, { kernel, timeLimitMs: Number(values['time-limit']), base }, (f, run) => {
  const key = `${f.entry.replace(/\(\d+\)/, '')}: ${f.problem.split('\n')[0]}`;
  mkdirSync(values.out!, { recursive: true });
  const file = join(values.out!, `run-${seed}-${run}.bin`);
  writeFileSync(file, f.input);
  if (!seen.has(key)) process.stderr.write(`finding (run ${run}, ${f.seed}) ${f.entry}: ${f.problem.split('\n').slice(0, 3).join(' | ')} -> ${file}\n`);
  seen.add(key);
}, (done) => {
  const s = (performance.now() - started) / 1000;
  process.stderr.write(`fuzz: ${done} runs in ${s.toFixed(0)} s (${(done / s).toFixed(0)}/s)\n`);
});
const s = (performance.now() - started) / 1000;
process.stdout.write(`${runs} inputs in ${s.toFixed(1)} s, ${found} findings (${seen.size} distinct), seed ${seed}\n`);
kernel.restore();
process.exitCode = found > 0 ? 1 : 0;
