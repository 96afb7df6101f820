#!/usr/bin/env node
// Loads every program of every BPF object in a directory, one program at a time, with bpfkit, and
// reports which load. Made for bcc's libbpf-tools (compiled outside this repository: none of that
// code belongs here), to compare with what libbpf loads on the same kernel.
//
//   node scripts/measure-libbpf-tools.mjs [options] DIR|FILE.bpf.o...
//
//   --libbpf FILE   libbpf's results to compare with: lines "object<TAB>program<TAB>OK|FAIL[<TAB>...]"
//                   (object matched by file name). Adds the set differences to the report.
//   --only NAME     only this program (repeatable)
//   --verbose       print each result as it comes and the verifier log of failures
//   --json          print the results as JSON instead of a table
//
// Each program is loaded alone, as libbpf does with every other program's autoload off: every map
// of the object is created, the object's BTF loaded, then just that program, and all is closed
// again. Programs get no user-space setup (`.rodata` and map sizes stay as compiled). Needs root
// (or CAP_BPF + CAP_PERFMON) and a built tree (npx tsc -p .).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { CollectionSpec, Collection } = await import(join(root, 'dist', 'src', 'index.js'));

const args = process.argv.slice(2);
const inputs = [];
const only = [];
let libbpfFile;
let verbose = false;
let json = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--libbpf') libbpfFile = args[++i];
  else if (a === '--only') only.push(args[++i]);
  else if (a === '--verbose' || a === '-v') verbose = true;
  else if (a === '--json') json = true;
  else if (a === '--help' || a === '-h') {
    console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 18).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
    process.exit(0);
  } else inputs.push(a);
}
if (inputs.length === 0) {
  console.error('usage: node scripts/measure-libbpf-tools.mjs [--libbpf FILE] [--only NAME] [--verbose] [--json] DIR|FILE.bpf.o...');
  process.exit(2);
}

const files = [];
for (const p of inputs) {
  if (statSync(p).isDirectory()) {
    for (const f of readdirSync(p).sort()) if (f.endsWith('.bpf.o')) files.push(join(p, f));
  } else files.push(p);
}

function describe(e) {
  const err = /** @type {any} */ (e);
  const code = err?.code ?? err?.name ?? 'Error';
  let msg = String(err?.message ?? err).split('\n')[0];
  if (msg.length > 400) msg = `${msg.slice(0, 397)}...`;
  return { code, message: msg, log: typeof err?.log === 'string' ? err.log : (typeof err?.verifierLog === 'string' ? err.verifierLog : undefined) };
}

const results = [];
const t0 = performance.now();
for (const file of files) {
  const object = basename(file);
  let spec;
  const p0 = performance.now();
  try {
    spec = CollectionSpec.fromBuffer(readFileSync(file));
  } catch (e) {
    const d = describe(e);
    results.push({ object, program: '-', ok: false, code: d.code, message: `parse: ${d.message}`, ms: performance.now() - p0 });
    if (verbose) console.error(`${object}: parse failed: ${d.code} ${d.message}`);
    continue;
  }
  const parseMs = performance.now() - p0;
  for (const name of spec.programs.keys()) {
    if (only.length && !only.includes(name)) continue;
    const s0 = performance.now();
    let coll;
    let r;
    try {
      coll = await Collection.load(spec.copy(), { programs: { only: [name] } });
      r = { object, program: name, ok: true, code: 'OK', message: '' };
    } catch (e) {
      const d = describe(e);
      r = { object, program: name, ok: false, code: d.code, message: d.message };
      if (verbose && d.log) r.log = d.log;
    } finally {
      coll?.close();
    }
    r.ms = performance.now() - s0;
    r.parseMs = parseMs;
    results.push(r);
    if (verbose) {
      console.error(`${object}\t${name}\t${r.ok ? 'OK' : `FAIL\t${r.code}\t${r.message}`}\t${r.ms.toFixed(1)}ms`);
      if (r.log) console.error(r.log.split('\n').slice(-25).join('\n'));
    }
  }
}
const totalMs = performance.now() - t0;

let libbpf;
if (libbpfFile) {
  libbpf = new Map();
  for (const line of readFileSync(libbpfFile, 'utf8').split('\n')) {
    const [obj, prog, status] = line.split('\t');
    if (!obj || !prog || !status) continue;
    libbpf.set(`${basename(obj)}\t${prog}`, { ok: status === 'OK', line });
  }
}

const programs = results.filter((r) => r.program !== '-');
const okCount = programs.filter((r) => r.ok).length;
const summary = {
  objects: files.length,
  objectsParsed: files.length - results.filter((r) => r.program === '-').length,
  programs: programs.length,
  bpfkitOk: okCount,
  totalMs: Math.round(totalMs),
};
let onlyLibbpf = [];
let onlyBpfkit = [];
if (libbpf) {
  summary.libbpfOk = [...libbpf.values()].filter((v) => v.ok).length;
  summary.libbpfPrograms = libbpf.size;
  for (const r of programs) {
    const l = libbpf.get(`${r.object}\t${r.program}`);
    if (!l) continue;
    if (l.ok && !r.ok) onlyLibbpf.push({ ...r, libbpf: l.line });
    if (!l.ok && r.ok) onlyBpfkit.push({ ...r, libbpf: l.line });
  }
  const seen = new Set(programs.map((r) => `${r.object}\t${r.program}`));
  summary.missingFromBpfkit = [...libbpf.keys()].filter((k) => !seen.has(k) && (!only.length || only.includes(k.split('\t')[1])));
  summary.onlyLibbpf = onlyLibbpf.length;
  summary.onlyBpfkit = onlyBpfkit.length;
}

if (json) {
  console.log(JSON.stringify({ summary, results, onlyLibbpf, onlyBpfkit }, null, 2));
} else {
  for (const r of results) {
    console.log(`${r.object}\t${r.program}\t${r.ok ? 'OK' : 'FAIL'}\t${r.ok ? '' : `${r.code}\t${r.message}`}\t${r.ms.toFixed(1)}ms`);
  }
  console.log('');
  console.log(`objects: ${summary.objects} (${summary.objectsParsed} parsed), programs: ${summary.programs}, bpfkit loads: ${summary.bpfkitOk}, ${summary.totalMs} ms`);
  if (libbpf) {
    console.log(`libbpf loads: ${summary.libbpfOk} of ${summary.libbpfPrograms}`);
    console.log(`libbpf OK, bpfkit FAIL: ${onlyLibbpf.length}`);
    for (const r of onlyLibbpf) console.log(`  ${r.object} ${r.program}: ${r.code} ${r.message}`);
    console.log(`bpfkit OK, libbpf FAIL: ${onlyBpfkit.length}`);
    for (const r of onlyBpfkit) console.log(`  ${r.object} ${r.program}: ${r.libbpf.split('\t').slice(2).join(' ')}`);
    if (summary.missingFromBpfkit.length) console.log(`in libbpf's list, not in bpfkit's: ${summary.missingFromBpfkit.join(', ')}`);
  }
}
process.exitCode = libbpf && onlyLibbpf.length ? 1 : 0;
