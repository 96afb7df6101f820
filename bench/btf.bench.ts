/**
 * Kernel BTF parsing and a CO-RE load, bpfkit next to libbpf, in one run.
 *   vmlinux parse: Btf.parse of /sys/kernel/btf/vmlinux vs libbpf's btf__parse.
 *   CO-RE load:    CollectionSpec + Collection.load + close of test/bpf/build/core_task.bpf.o
 *                  vs bpf_object__open_file + bpf_object__load + close (both verify in the kernel).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf } from '../src/btf/btf.js';
import { Collection } from '../src/load/collection.js';
import { CollectionSpec } from '../src/spec/collection-spec.js';
import { buildC, report, ROOT, timeNs, type Row } from './common.js';

const PARSES = Number(process.env['BENCH_PARSES'] ?? 20);
const LOADS = Number(process.env['BENCH_LOADS'] ?? 50);

const libbpf = buildC('libbpf-bench');
const vmlinux = readFileSync('/sys/kernel/btf/vmlinux');
const object = join(ROOT, 'test', 'bpf', 'build', 'core_task.bpf.o');
const objectBytes = readFileSync(object);

const rows: Row[] = [];
const ours = timeNs(PARSES, () => Btf.parse(vmlinux));
const theirs = Number(execFileSync(libbpf, ['btf-parse', String(PARSES)], { encoding: 'utf8' }).trim());
rows.push({ what: `parse vmlinux BTF (${(vmlinux.length / 1e6).toFixed(1)} MB), per parse`, bpfkit: ours / 1e6, baseline: theirs / 1e6, unit: 'ms', higherIsBetter: false });

const oursLoad = timeNs(LOADS, () => {
  const coll = Collection.loadSync(CollectionSpec.fromBuffer(objectBytes));
  coll.close();
});
const theirsLoad = Number(execFileSync(libbpf, ['load', object, String(LOADS)], { encoding: 'utf8' }).trim());
rows.push({ what: 'CO-RE object: parse + relocate + load + close', bpfkit: oursLoad / 1e6, baseline: theirsLoad / 1e6, unit: 'ms', higherIsBetter: false });

report('BTF and CO-RE (lower time is better; speed > 1x means bpfkit is faster)', 'libbpf', rows);
console.log('\nbpfkit parses kernel BTF once per process and reuses it for every CO-RE load; libbpf parses it again for each object.');
