/**
 * Type test for `bpfkit gen`: misuses of the generated gentest bindings, each of which must be a
 * compile error. test/unit/gen-typecheck.test.ts checks that every `@ts-expect-error` below is
 * needed (and, with the directives removed, that each line fails on its own).
 * Never run: it only has to type-check.
 */
import {
  GenColor, decodeGenValue, encodeGenKey, loadGentest, type GenKey,
} from './golden/gentest.js';

export async function misusesGeneratedBindings(key: GenKey): Promise<void> {
  const objs = await loadGentest();
  // @ts-expect-error a hash keyed by struct gen_key does not take a number
  objs.maps.genHash.lookup(1);
  // @ts-expect-error struct gen_value has more members, and packets is a bigint
  objs.maps.genArray.update(0, { packets: 1 });
  // @ts-expect-error .rodata variables cannot be set once loaded
  objs.variables.cfgMultiplier.set(3);
  // @ts-expect-error __u32 is a number, not a bigint
  await loadGentest({ rodata: { cfgMultiplier: 3n } });
  // @ts-expect-error gen_runs lives in .bss, not .rodata
  await loadGentest({ rodata: { genRuns: 1n } });
  // @ts-expect-error there is no such program
  objs.programs.nope.testRun();
  // @ts-expect-error 7 is not an enumerator of enum gen_color
  const color: GenColor = 7;
  // @ts-expect-error port is a number
  encodeGenKey({ ...key, port: '80' });
  // @ts-expect-error a queue has no keys
  objs.maps.genQueue.lookup(0);
  // @ts-expect-error gen_runs is a __u64: a bigint
  const runs: number = objs.variables.genRuns.get();
  // @ts-expect-error a union member is optional: decoding gives every alternative, encoding takes one
  const raw: bigint = decodeGenValue(new Uint8Array(144)).payload.raw;
  // @ts-expect-error a per-CPU map gives one value per CPU
  objs.maps.genPercpu.lookup(0)?.hits;
  // @ts-expect-error ringbuf maps hold no keys or values
  objs.maps.genEvents.update(0, 0);
  void color;
  void runs;
  void raw;
  objs.close();
}
