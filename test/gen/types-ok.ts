/**
 * Type test for `bpfkit gen`: correct uses of the generated gentest bindings, which must compile
 * under `strict` (test/unit/gen-typecheck.test.ts checks it; the project build compiles it too).
 * Never run: it only has to type-check.
 */
import type { BpfMap, CollectionSpec, Program, TestRunResult } from 'bpfkit';
import {
  GenColor, GenKind, cString, decodeGenEvent, decodeGenValue, encodeGenKey, encodeGenValue, gentestMapNames,
  gentestProgramNames, gentestVariableNames, loadGentest, specGentest,
  type GenCounters, type GenEvent, type GenKey, type GenValue, type GentestObjects,
} from './golden/gentest.js';

export async function usesGeneratedBindings(): Promise<number> {
  const key: GenKey = { ifindex: 1, port: 80, proto: 6, flags: 1, kind: 2, addr: { bytes: new Uint8Array(16) } };
  const objs: GentestObjects = await loadGentest({
    rodata: { cfgKey: key, cfgMultiplier: 3, cfgColor: GenColor.GEN_BLUE },
    data: { genRuns: 0n, genDataCounter: 41 },
    programs: { logLevel: 1 },
  });
  try {
    const hash: BpfMap<GenKey, GenValue> = objs.maps.genHash;
    const value: GenValue | undefined = hash.lookup(key);
    let total = 0;
    if (value !== undefined) {
      const packets: bigint = value.packets;
      const name: string = cString(value.name);
      const color: GenColor = value.color;
      const kind: GenKind = value.bits.k;
      const c: number = value.bits.c;
      const ok: boolean = value.bits.ok;
      const wide: bigint = value.wide;
      const raw: bigint | undefined = value.payload.raw;
      const hi: number | undefined = value.payload.halves?.hi;
      const grid: number = value.matrix[1]?.[2] ?? 0;
      total += Number(packets) + name.length + color + kind + c + (ok ? 1 : 0) + Number(wide) + Number(raw ?? 0n) + (hi ?? 0) + grid;
      hash.update(key, value, 'noexist');
      hash.update(encodeGenKey(key), encodeGenValue(value));
    }
    const array: BpfMap<number, GenValue> = objs.maps.genArray;
    for (const [i, v] of array) total += i + v.delta;
    const perCpu: GenCounters[] | undefined = objs.maps.genPercpu.lookup(0);
    total += perCpu?.reduce((sum, c) => sum + Number(c.hits), 0) ?? 0;
    const lru: bigint | undefined = objs.maps.genLru.lookup(key);
    total += Number(lru ?? 0n);
    const ev: GenEvent | undefined = objs.maps.genQueue.pop();
    if (ev !== undefined && ev.kind === GenKind.GEN_KIND_PACKET) total += ev.pid;
    objs.maps.genQueue.push({ ts: 1n, pid: 2, kind: GenKind.GEN_KIND_EXIT, comm: new Uint8Array(16) });
    const prog: Program = objs.programs.genCopy;
    const run: TestRunResult = prog.testRun({ data: new Uint8Array(64) });
    total += run.retval;
    objs.variables.genRuns.set(objs.variables.genRuns.get() + 1n);
    objs.variables.genLast.set(decodeGenValue(new Uint8Array(144)));
    const multiplier: number = objs.variables.cfgMultiplier.get();
    const cfg: GenKey = objs.variables.cfgKey.get();
    total += multiplier + cfg.port;
    const rodata: { cfg_key: GenKey; cfg_multiplier: number; cfg_color: GenColor } | undefined = objs.maps.rodata.lookup(0);
    total += rodata?.cfg_multiplier ?? 0;
    const spec: CollectionSpec = specGentest();
    total += spec.maps.size + decodeGenEvent(new Uint8Array(32)).pid;
    const names: readonly string[] = [gentestMapNames.genHash, gentestProgramNames.genCopy, gentestVariableNames.cfgKey];
    return total + names.length;
  } finally {
    objs.close();
  }
}

export async function disposes(): Promise<void> {
  const objs = await loadGentest();
  objs[Symbol.dispose]();
}
