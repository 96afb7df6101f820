#!/usr/bin/env node
// The kernel matrix: runs the project's kernel test files inside Debian's generic 6.1 and 6.12
// kernels under QEMU (TCG), with this machine's root file system shared read-only over 9p, so the
// very same build of the project (dist/) runs in each guest. Run as root.
//
//   node scripts/kernel-matrix.mjs                         all kernel test files, both kernels
//   node scripts/kernel-matrix.mjs --kernel 6.12 ringbuf   files matching "ringbuf", on 6.12 only
//   node scripts/kernel-matrix.mjs --root /work/wt-x ...   test another checkout's dist/
//
// Kernels and initramfs images are cached under .kernels/ (gitignored); each run's console log,
// per-file logs and results land in .kernels/results/<kernel>-<time>/.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

const here = dirname(new URL(import.meta.url).pathname);
const repo = resolve(here, '..');

// One pinned build per series (the newest Debian 12 offered when pinned); if the archive drops it,
// the newest build of the series that apt offers is used instead.
const KERNELS = {
  '6.1': { pin: 'linux-image-6.1.0-57-amd64', pattern: /^linux-image-6\.1\.0-\d+-amd64$/ },
  '6.12': { pin: 'linux-image-6.12.118+deb12-amd64', pattern: /^linux-image-6\.12\.\d+\+deb12-amd64$/ },
};
// What the guests load with insmod (dependencies are added): the 9p root and its overlay, a virtio
// RNG, and what the kernel tests use (veth pairs, bridges, clsact + cls_bpf/act_bpf, dummy, tun).
const MODULES = [
  'virtio_pci', 'virtio_rng', '9pnet_virtio', '9p', 'overlay',
  'veth', 'bridge', 'sch_ingress', 'cls_bpf', 'act_bpf', 'dummy', 'tun',
];
const APT = [
  { test: () => existsSync('/usr/bin/qemu-system-x86_64'), pkg: 'qemu-system-x86' },
  { test: () => existsSync('/bin/busybox') && isStatic('/bin/busybox'), pkg: 'busybox-static' },
  { test: () => which('cpio'), pkg: 'cpio' },
  { test: () => which('xz'), pkg: 'xz-utils' },
];

function usage(code) {
  const out = code ? process.stderr : process.stdout;
  out.write(`usage: node scripts/kernel-matrix.mjs [options] [FILTER...]
Runs dist/test/kernel/*.test.js (those whose name contains a FILTER, or all) inside Debian's 6.1 and
6.12 kernels under QEMU. Run as root, after \`npm run build && npm run build:bpf\`.
  --kernel K       6.1 or 6.12 (repeatable; default: both)
  --root DIR       project checkout whose dist/ is tested (default: ${repo})
  --timeout S      per-file time limit in seconds (default: 600)
  --budget S       time limit for all files of one kernel; later files are reported as not run
                   (default: none)
  --patience N     BPFKIT_TEST_PATIENCE in the guests: how much the tests' deadlines stretch
                   (default: 10, for software emulation)
  --smp N          virtual CPUs per guest (default: 1)
  --mem M          guest memory in MiB (default: 2048)
  --sequential     one kernel after the other (default: both at once)
  --cache DIR      where kernels, images and results go (default: ${join(repo, '.kernels')})
`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = { kernels: [], root: repo, timeout: 600, budget: 0, patience: 10, smp: 1, mem: 2048, parallel: true,
    cache: join(repo, '.kernels'), filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) { console.error(`kernel-matrix: ${a} needs a value`); usage(2); }
      return argv[++i];
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isInteger(v) || v <= 0) { console.error(`kernel-matrix: ${a} takes a positive integer`); usage(2); }
      return v;
    };
    if (a === '--kernel') {
      const k = val();
      if (!KERNELS[k]) { console.error(`kernel-matrix: unknown kernel ${k}: use ${Object.keys(KERNELS).join(' or ')}`); process.exit(2); }
      o.kernels.push(k);
    } else if (a === '--root') o.root = resolve(val());
    else if (a === '--timeout') o.timeout = num();
    else if (a === '--budget') o.budget = num();
    else if (a === '--patience') o.patience = num();
    else if (a === '--smp') o.smp = num();
    else if (a === '--mem') o.mem = num();
    else if (a === '--sequential') o.parallel = false;
    else if (a === '--cache') o.cache = resolve(val());
    else if (a === '-h' || a === '--help') usage(0);
    else if (a.startsWith('-')) { console.error(`kernel-matrix: unknown option ${a}`); usage(2); }
    else o.filters.push(a);
  }
  if (o.kernels.length === 0) o.kernels = Object.keys(KERNELS);
  return o;
}

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
function isStatic(file) {
  // A static busybox has no PT_INTERP; the dynamic one (package busybox) cannot run in the initramfs.
  const head = readFileSync(file).subarray(0, 4096);
  return !head.includes(Buffer.from('/lib64/ld-linux'));
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr ?? '').trim()}`);
  return r.stdout ?? '';
}
function log(msg) { process.stderr.write(`kernel-matrix: ${msg}\n`); }

function ensurePackages() {
  const missing = APT.filter((p) => !p.test()).map((p) => p.pkg);
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

function versionCompare(a, b) {
  const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
  const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d) return d;
  }
  return 0;
}

// The package to use for a series: the pinned one if apt offers it, else the newest of the series.
function choosePackage(series) {
  const k = KERNELS[series];
  const avail = spawnSync('apt-cache', ['show', '--no-all-versions', k.pin], { encoding: 'utf8' });
  if (avail.status === 0 && avail.stdout.includes('Package:')) return k.pin;
  const names = run('apt-cache', ['pkgnames', 'linux-image-6.']).split('\n').filter((n) => k.pattern.test(n));
  if (names.length === 0) throw new Error(`apt offers no ${series} kernel (${k.pattern}); run apt-get update?`);
  names.sort(versionCompare);
  const pick = names[names.length - 1];
  log(`${k.pin} is gone from apt; using ${pick}`);
  return pick;
}

// Fetches and extracts a kernel package once: <cache>/<package>/{boot,lib/modules}.
function ensureKernel(cache, series) {
  // A previous extraction of the pinned package (or of any build of the series) is reused as is.
  const k = KERNELS[series];
  const have = existsSync(cache) ? readdirSync(cache).filter((n) => k.pattern.test(n)) : [];
  let pkg = have.includes(k.pin) ? k.pin : null;
  if (!pkg) {
    try { pkg = choosePackage(series); } catch (e) {
      if (have.length === 0) throw e;
      pkg = have.sort(versionCompare)[have.length - 1];
      log(`${e.message}; using the cached ${pkg}`);
    }
  }
  const dir = join(cache, pkg);
  if (!existsSync(join(dir, '.complete'))) {
    const dl = join(cache, 'deb');
    mkdirSync(dl, { recursive: true });
    log(`downloading ${pkg}`);
    // _apt cannot write into a root-owned directory: download unsandboxed (we are root anyway).
    run('apt-get', ['download', '-o', 'APT::Sandbox::User=root', pkg], { cwd: dl });
    const deb = readdirSync(dl).find((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dl}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    run('dpkg-deb', ['-x', join(dl, deb), tmp]);
    writeFileSync(join(tmp, '.complete'), `${deb}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    rmSync(join(dl, deb));
  }
  const version = readdirSync(join(dir, 'lib', 'modules'))[0];
  return {
    series, pkg, version, dir,
    vmlinuz: join(dir, 'boot', `vmlinuz-${version}`),
    config: join(dir, 'boot', `config-${version}`),
    modules: join(dir, 'lib', 'modules', version),
  };
}

// A module's file contents (Debian's 6.12 ships them xz-compressed) and its `depends=` list.
function moduleBytes(path) {
  return path.endsWith('.xz') ? spawnSync('xz', ['-dc', path], { maxBuffer: 1 << 28 }).stdout : readFileSync(path);
}
function moduleDepends(bytes) {
  const tag = Buffer.from('\0depends=');
  const at = bytes.indexOf(tag);
  if (at < 0) return [];
  const end = bytes.indexOf(0, at + tag.length);
  return bytes.subarray(at + tag.length, end).toString('latin1').split(',').filter(Boolean);
}

// Modules to insmod, dependencies first, skipping those built into the kernel.
function resolveModules(kernel) {
  const norm = (n) => n.replace(/-/g, '_');
  const byName = new Map();
  for (const rel of readFileSync(join(kernel.modules, 'modules.order'), 'utf8').split('\n').filter(Boolean)) {
    const file = rel.replace(/\.ko$/, '');
    byName.set(norm(basename(file)), rel);
  }
  const builtin = new Set(readFileSync(join(kernel.modules, 'modules.builtin'), 'utf8').split('\n')
    .filter(Boolean).map((rel) => norm(basename(rel, '.ko'))));
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    name = norm(name);
    if (seen.has(name)) return;
    seen.add(name);
    if (builtin.has(name)) return;
    const rel = byName.get(name);
    if (!rel) throw new Error(`${kernel.pkg} has no module ${name}`);
    const candidates = [rel, `${rel}.xz`, `${rel}.zst`].map((r) => join(kernel.modules, r));
    const path = candidates.find((p) => existsSync(p));
    if (!path) throw new Error(`${kernel.pkg}: ${rel} is listed but missing`);
    if (path.endsWith('.zst')) throw new Error(`${path}: zstd modules are not handled`);
    const bytes = moduleBytes(path);
    for (const dep of moduleDepends(bytes)) visit(dep);
    order.push({ name, bytes });
  };
  for (const m of MODULES) visit(m);
  return order;
}

// The initramfs: a static busybox, the modules, and init.sh. Rebuilt when any input changes.
function ensureInitramfs(cache, kernel) {
  const init = readFileSync(join(here, 'kernel-matrix', 'init.sh'));
  const busybox = readFileSync('/bin/busybox');
  const key = createHash('sha256').update(init).update(busybox).update(kernel.pkg).update(MODULES.join(','))
    .digest('hex').slice(0, 16);
  const out = join(cache, `initramfs-${kernel.version}-${key}.cpio`);
  if (existsSync(out)) return out;
  const mods = resolveModules(kernel);
  const tmp = join(cache, `initramfs-build-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'lower', 'rw', 'newroot', 'modules']) mkdirSync(join(tmp, d), { recursive: true });
  copyFileSync('/bin/busybox', join(tmp, 'bin', 'busybox'));
  chmodSync(join(tmp, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'mount', 'umount', 'insmod', 'mkdir', 'echo', 'sleep', 'switch_root']) {
    run('ln', ['-s', 'busybox', join(tmp, 'bin', applet)]);
  }
  writeFileSync(join(tmp, 'init'), init, { mode: 0o755 });
  for (const m of mods) writeFileSync(join(tmp, 'modules', `${m.name}.ko`), m.bytes);
  writeFileSync(join(tmp, 'modules', 'order'), mods.map((m) => m.name).join('\n') + '\n');
  // The kernel opens /dev/console for init's stdio before anything is mounted.
  run('mknod', ['-m', '600', join(tmp, 'dev', 'console'), 'c', '5', '1']);
  const list = run('find', ['.', '-mindepth', '1'], { cwd: tmp });
  const cpio = spawnSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: tmp, input: list, maxBuffer: 1 << 30 });
  if (cpio.status !== 0) throw new Error(`cpio failed: ${cpio.stderr}`);
  writeFileSync(`${out}.tmp`, cpio.stdout);
  renameSync(`${out}.tmp`, out);
  rmSync(tmp, { recursive: true, force: true });
  log(`${kernel.version}: initramfs with ${mods.map((m) => m.name).join(' ')}`);
  return out;
}

function shellQuote(s) { return `'${s.replace(/'/g, `'\\''`)}'`; }

// Boots a guest; if it dies before running any file (a boot failure), boots it once more.
async function runGuest(o, kernel, initrd, files) {
  const first = await bootGuest(o, kernel, initrd, files);
  if (existsSync(join(first.res, 'results.tsv'))) return first;
  log(`${kernel.series}: the guest died before running a test (console: ${first.consoleLog}); booting it again`);
  return bootGuest(o, kernel, initrd, files);
}

function bootGuest(o, kernel, initrd, files) {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  let res = join(o.cache, 'results', `${kernel.series}-${stamp}-${process.pid}`);
  for (let n = 2; existsSync(res); n++) res = join(o.cache, 'results', `${kernel.series}-${stamp}-${process.pid}-${n}`);
  mkdirSync(res, { recursive: true });
  copyFileSync(join(here, 'kernel-matrix', 'guest.sh'), join(res, 'guest.sh'));
  writeFileSync(join(res, 'job.env'), [
    `ROOT=${shellQuote(o.root)}`,
    `TIMEOUT=${o.timeout}`,
    `BUDGET=${o.budget}`,
    `PATIENCE=${o.patience}`,
    `KCONFIG=${shellQuote(kernel.config)}`,
    `FILES=(${files.map(shellQuote).join(' ')})`,
  ].join('\n') + '\n');
  const consoleLog = join(res, 'console.log');
  const args = [
    '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', String(o.smp), '-m', String(o.mem),
    '-nodefaults', '-no-reboot', '-display', 'none',
    '-serial', `file:${consoleLog}`,
    '-kernel', kernel.vmlinuz, '-initrd', initrd,
    // lsm=...,bpf turns the BPF LSM on; panic=-1 turns a guest panic into a QEMU exit;
    // no_timer_check: on a loaded host the boot-time IO-APIC timer check misses its window under TCG
    // and panics ("IO-APIC + timer doesn't work!").
    '-append', 'console=ttyS0 panic=-1 loglevel=4 mitigations=off no_timer_check lsm=lockdown,capability,bpf',
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${res},mount_tag=results,security_model=none`,
    '-device', 'virtio-rng-pci',
  ];
  // Boot (up to a minute or two on a busy machine) plus every file's limit: a stuck guest is killed.
  const limitMs = (180 + (o.budget ? o.budget + o.timeout : files.length * (o.timeout + 15))) * 1000;
  const started = Date.now();
  return new Promise((resolvePromise) => {
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    qemu.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { log(`${kernel.series}: guest still running after ${limitMs / 1000}s, killing it`); qemu.kill('SIGKILL'); }, limitMs);
    qemu.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ kernel, res, files, consoleLog, seconds: (Date.now() - started) / 1000, code, signal, stderr });
    });
  });
}

const SUMMARY = /^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;

// The failing tests of one file's spec output, or its tail when it never got that far (a timeout),
// with node's internal stack frames dropped and long lines (verifier logs) cut.
function condense(text) {
  const at = text.indexOf('✖ failing tests:');
  const lines = at >= 0 ? text.slice(at).split('\n') : text.trimEnd().split('\n').slice(-30);
  return lines.filter((l) => !/^\s+at .*\(node:internal/.test(l))
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}… (${l.length} chars)` : l))
    .join('\n').trimEnd();
}

// Prints one kernel's results; returns the number of files that did not pass.
function report(run) {
  const { kernel, res, files } = run;
  const rows = new Map();
  const tsv = join(res, 'results.tsv');
  if (existsSync(tsv)) {
    for (const line of readFileSync(tsv, 'utf8').split('\n').filter(Boolean)) {
      const [file, status, ms] = line.split('\t');
      rows.set(file, { status, ms: Number(ms) });
    }
  }
  const out = [];
  out.push(`== ${kernel.series}: ${kernel.pkg} (${kernel.version}), ${files.length} files, guest ran ${run.seconds.toFixed(0)}s`);
  if (!existsSync(join(res, 'done'))) {
    out.push(`   the guest did not finish (qemu exit ${run.code ?? run.signal}); console: ${run.consoleLog}`);
    if (run.stderr.trim()) out.push(`   qemu: ${run.stderr.trim().split('\n').join('\n   qemu: ')}`);
  }
  let bad = 0;
  const failures = [];
  for (const f of files) {
    const name = basename(f, '.js');
    const row = rows.get(f) ?? { status: 'not run', ms: NaN };
    if (row.status !== 'pass') bad++;
    const logFile = join(res, 'logs', `${name}.log`);
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const summary = text.split('\n').filter((l) => SUMMARY.test(l)).map((l) => l.slice(2).trim())
      .filter((l) => !l.startsWith('duration_ms')).join(', ');
    const secs = Number.isNaN(row.ms) || row.status === 'not-run' ? '-' : `${(row.ms / 1000).toFixed(1)}s`;
    out.push(`   ${row.status.toUpperCase().padEnd(7)} ${name.padEnd(32)} ${secs.padStart(7)}  ${summary}`);
    if (row.status !== 'pass') {
      failures.push(`--- ${kernel.series} ${name}: ${row.status}${{ timeout: ' (killed at its time limit)', 'not-run': ' (the --budget was spent)' }[row.status] ?? ''}`);
      if (text) failures.push(condense(text));
    }
  }
  out.push(`   ${files.length - bad} of ${files.length} files passed on ${kernel.series}; logs: ${res}`);
  console.log(out.join('\n'));
  if (failures.length) {
    const text = failures.join('\n') + '\n';
    writeFileSync(join(res, 'failures.txt'), text);
    process.stdout.write(text);
  }
  return bad;
}

/**
 * Kernel test files the full matrix leaves to the host (see main). Named in a filter, they run.
 * init, package and pktcount-browser exercise npm, tsc and Chromium; prometheus a Prometheus
 * server: their kernel work is pktcount's and execsnoop's, whose files run in the guests.
 */
const HOST_ONLY = ['init.test.js', 'package.test.js', 'pktcount-browser.test.js', 'prometheus.test.js'];

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    console.error('kernel-matrix: run as root (it installs packages and shares / with the guests over 9p)');
    process.exit(2);
  }
  const testDir = join(o.root, 'dist', 'test', 'kernel');
  if (!existsSync(testDir)) {
    console.error(`kernel-matrix: no ${testDir}: run \`npm run build && npm run build:bpf\` in ${o.root} first`);
    process.exit(2);
  }
  const all = readdirSync(testDir).filter((n) => n.endsWith('.test.js')).sort().map((n) => join(testDir, n));
  // Without a filter, the files that test packaging and the browser UI stay on the host: their
  // kernel work (execsnoop, pktcount's XDP) is what execsnoop.test and pktcount.test run in the
  // guests, and npm, tsc and Chromium under emulation would take most of the CI budget.
  const files = o.filters.length ? all.filter((f) => o.filters.some((x) => basename(f).includes(x)))
    : all.filter((f) => !HOST_ONLY.includes(basename(f)));
  if (files.length === 0) {
    console.error(`kernel-matrix: no kernel test file matches ${o.filters.join(' ')} in ${testDir}`);
    process.exit(2);
  }
  ensurePackages();
  mkdirSync(o.cache, { recursive: true });
  const guests = o.kernels.map((series) => {
    const kernel = ensureKernel(o.cache, series);
    return { kernel, initrd: ensureInitramfs(o.cache, kernel) };
  });
  log(`${files.length} files on ${o.kernels.join(', ')} (${o.parallel ? 'in parallel' : 'one after the other'}, -smp ${o.smp}, ${o.mem} MiB, ${o.timeout}s per file)`);
  const started = Date.now();
  const runs = [];
  let bad = 0;
  if (o.parallel) {
    const pending = guests.map((g) => runGuest(o, g.kernel, g.initrd, files).then((r) => { bad += report(r); runs.push(r); }));
    await Promise.all(pending);
  } else {
    for (const g of guests) {
      const r = await runGuest(o, g.kernel, g.initrd, files);
      bad += report(r);
      runs.push(r);
    }
  }
  console.log(`kernel matrix: ${bad ? `${bad} file runs did not pass` : 'all passed'} (${((Date.now() - started) / 1000).toFixed(0)}s)`);
  process.exit(bad ? 1 : 0);
}

main().catch((e) => { console.error(`kernel-matrix: ${e.message}`); process.exit(1); });
