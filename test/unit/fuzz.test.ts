/**
 * A bounded run of the fuzz target (test/fuzz/harness.ts): every seed as it is, then mutants from
 * a fixed seed, through every public entry point that takes an object or BTF. Only typed errors,
 * no output or memory out of proportion to the input. `npm run fuzz -- --runs N` runs many more
 * (and judges time as well).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { fuzz, inputFor, loadCorpus, mutate, Rng } from '../fuzz/harness.js';
import type { Finding } from '../fuzz/harness.js';
import { ROOT } from '../helpers/index.js';

const kernel = useEmulatedKernel();
after(() => kernel.restore());

describe('fuzz target', () => {
  const corpus = loadCorpus(ROOT);

  it('has real objects, their BTF and the reproducers as seeds', () => {
    assert.ok(corpus.some((s) => s.kind === 'object' && s.name.endsWith('execsnoop.bpf.o')));
    assert.ok(corpus.some((s) => s.kind === 'btf' && s.name.endsWith('#.BTF') && s.records.length > 10));
    assert.ok(corpus.some((s) => s.name === 'fixtures/fuzz-16-Btf_resolve.bin'));
  });

  it('mutates deterministically', () => {
    const s = corpus.find((x) => x.kind === 'btf')!;
    const a = mutate(s, new Rng(7));
    const b = mutate(s, new Rng(7));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, s.bytes);
  });

  it('gives every run its own input, whatever run a campaign starts at', async () => {
    const n = corpus.length + 3;
    const a = inputFor(corpus, 99, n);
    assert.deepEqual(inputFor(corpus, 99, n).input, a.input);
    assert.notDeepEqual(inputFor(corpus, 99, n + corpus.length).input, a.input);
    assert.notDeepEqual(inputFor(corpus, 100, n).input, a.input);
    assert.deepEqual(inputFor(corpus, 99, 0).input, corpus[0]!.bytes);
    // Runs k..k+1 of one campaign are runs k..k+1 whether it started at 0 or at k.
    const seen: number[] = [];
    await fuzz(corpus, 2, 99, { kernel, loadCore: false, typesPerInput: 5 }, () => {}, undefined, n, (run) => seen.push(run));
    assert.deepEqual(seen, [n, n + 1]);
  });

  it('answers seeds and 200 mutants with typed errors only, in proportion to the input', async () => {
    const findings: Finding[] = [];
    // CO-RE objects are loaded by the on-demand runner: the first would parse vmlinux here.
    await fuzz(corpus, corpus.length + 200, 17, { kernel, loadCore: false, typesPerInput: 150 }, (f) => findings.push(f));
    assert.deepEqual(findings.map((f) => `${f.seed} ${f.entry}: ${f.problem}`), []);
    assert.deepEqual(kernel.openFds(), []);
  });
});
