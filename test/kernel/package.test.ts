/**
 * The package as a user who never saw this repository gets it: `npm pack` (prepack builds dist,
 * the demo's object and the prebuilt addons), then, in an empty project, as an unprivileged user
 * (uid 65534, a HOME of its own) with a PATH holding only node, npm, npx and sh (no compiler, no
 * python, no make; no Node headers configured), offline from a copy of npm's cache:
 * - npm install of the tarball: no source build happens (no build/ in the installed package),
 * - a TypeScript program compiled with the typescript installed there runs bpfkit against
 *   bpfkit/testing's emulated kernel,
 * - `npx bpfkit --version` and `npx bpfkit inspect` work,
 * - with the prebuilds taken away (a machine no prebuild fits), parsing and the emulator still
 *   work and a real load fails with ERR_BPFKIT_NO_ADDON naming what to run;
 * then, as root, `npx bpfkit execsnoop --json` from that project sees an exec the test makes and
 * stops on SIGINT with exit code 0. The temporary directory is removed at the end.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, cpSync, readdirSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { kernelTest, ROOT } from '../helpers/index.js';

const NOBODY = 65534;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

interface LockEntry {
  version: string; resolved?: string; integrity?: string; dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>; dev?: boolean; optional?: boolean; [k: string]: unknown;
}

/**
 * The temp project's package-lock.json: bpfkit from the tarball, and bpfkit's dependencies and
 * typescript with @types/node at the versions and integrities of our own lock, whose tarballs
 * `npm ci` left in npm's cache. A lock is what lets npm install offline: without one it needs the
 * registry's package documents, which `npm ci` never fetched.
 */
function appLock(tarballName: string, tarballIntegrity: string): { lock: object; deps: Record<string, string> } {
  const ours = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string; dependencies: Record<string, string>; optionalDependencies?: Record<string, string>;
    bin: Record<string, string>; engines: Record<string, string>; os: string[];
  };
  const packages: Record<string, object> = {};
  const add = (name: string, optional: boolean): void => {
    const key = `node_modules/${name}`;
    if (packages[key]) return;
    const e = ours.packages[key];
    assert.ok(e, `${name} is in our package-lock.json`);
    const { dev: _dev, optional: _opt, ...rest } = e;
    const base = name.startsWith('@') ? name.split('/')[1] : name;
    packages[key] = {
      ...rest, resolved: e.resolved ?? `https://registry.npmjs.org/${name}/-/${base}-${e.version}.tgz`,
      ...(optional ? { optional: true } : {}),
    };
    for (const d of Object.keys(e.dependencies ?? {})) add(d, optional);
    for (const d of Object.keys(e.optionalDependencies ?? {})) add(d, true);
  };
  const deps = {
    bpfkit: `file:../${tarballName}`,
    typescript: ours.packages['node_modules/typescript']!.version,
    '@types/node': ours.packages['node_modules/@types/node']!.version,
  };
  packages['node_modules/bpfkit'] = {
    version: own.version, resolved: `file:../${tarballName}`, integrity: tarballIntegrity, hasInstallScript: true,
    os: own.os, engines: own.engines, bin: own.bin, dependencies: own.dependencies, optionalDependencies: own.optionalDependencies,
  };
  for (const d of Object.keys(own.dependencies)) add(d, false);
  for (const d of Object.keys(own.optionalDependencies ?? {})) add(d, true);
  add('typescript', false);
  add('@types/node', false);
  return {
    deps,
    lock: { name: 'app', lockfileVersion: 3, requires: true, packages: { '': { name: 'app', dependencies: deps }, ...packages } },
  };
}

let work = '';
let bin = '';
let home = '';
let app = '';
let npmCli = '';
let npxCli = '';
let tarball = '';
let execsnoop: ChildProcess | undefined;

/** The environment of the unprivileged user: nothing from ours but what npm needs to stay quiet. */
function userEnv(): NodeJS.ProcessEnv {
  return {
    PATH: bin, HOME: home, npm_config_cache: join(home, '.npm'), npm_config_update_notifier: 'false',
    npm_config_fund: 'false', npm_config_audit: 'false', npm_config_offline: 'true',
  };
}

function asUser(file: string, args: readonly string[], options: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { cwd: app, env: userEnv(), uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 600_000, ...options });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The deepest process below `pid` whose command line contains `needle` (npm runs bins via sh -c). */
function innermost(pid: number, needle: string): number | undefined {
  const parent = new Map<number, number>();
  const matches: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle)) matches.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  const depth = (p: number): number => {
    let d = 0;
    for (let q: number | undefined = p; q !== pid; q = parent.get(q)) {
      if (q === undefined || q <= 1) return -1;
      d++;
    }
    return d;
  };
  return matches.filter((m) => depth(m) >= 0).sort((a, b) => depth(b) - depth(a))[0];
}

function chownTree(path: string): void {
  const r = spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, path]);
  assert.equal(r.status, 0, `chown -R ${path}`);
}

const MAIN_TS = `import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Collection, CollectionSpec, type BpfMap } from 'bpfkit';
import { useEmulatedKernel } from 'bpfkit/testing';

const kernel = useEmulatedKernel();
// The seeds' packet counter, as bpfkit ships it for \`bpfkit demo\`.
const root = dirname(createRequire(import.meta.url).resolve('bpfkit/package.json'));
const spec = await CollectionSpec.fromFile(join(root, 'dist', 'src', 'cli', 'packet_count.bpf.o'));
const coll = await Collection.load(spec);
const frame = (src: number[]): Uint8Array => {
  const b = new Uint8Array(34);
  b.set([0x08, 0x00], 12);
  b.set([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17], 14);
  b.set(src, 26);
  return b;
};
const prog = coll.programs.get('xdp_prog_func')!;
const rets = [prog.testRun({ data: frame([192, 168, 1, 10]), repeat: 3 }).retval, prog.testRun({ data: frame([10, 1, 2, 3]) }).retval];
const counts = coll.maps.get('xdp_stats_map') as BpfMap<number, number>;
const rows = [...counts.entries()].map(([k, v]) => [[k & 0xff, (k >>> 8) & 0xff, (k >>> 16) & 0xff, k >>> 24].join('.'), v]).sort();
coll.close();
console.log(JSON.stringify({ rets, rows, openFds: kernel.openFds().length }));
`;

/** Loads into the real kernel: with no addon this must fail with a clear error. */
const NO_ADDON_MJS = `import { CollectionSpec, Collection } from 'bpfkit';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
const root = dirname(createRequire(import.meta.url).resolve('bpfkit/package.json'));
const spec = await CollectionSpec.fromFile(join(root, 'dist', 'src', 'cli', 'packet_count.bpf.o'));
try {
  await Collection.load(spec);
  console.log(JSON.stringify({ programs: spec.programs.size, loaded: true }));
} catch (e) {
  console.log(JSON.stringify({ programs: spec.programs.size, code: e.code, message: e.message }));
}
`;

describe('npm pack, installed offline by an unprivileged user without a compiler', { ...kernelTest, timeout: 1_800_000 }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'bpfkit-pkg-'));
    chmodSync(work, 0o755);
    // Only node, npm, npx and sh (npm runs install scripts with it) on PATH.
    bin = join(work, 'bin');
    mkdirSync(bin);
    const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
    npmCli = realpathSync(which.stdout.trim());
    npxCli = join(dirname(npmCli), 'npx-cli.js');
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(npmCli, join(bin, 'npm'));
    symlinkSync(npxCli, join(bin, 'npx'));
    symlinkSync('/bin/sh', join(bin, 'sh'));

    const packed = spawnSync(process.execPath, [npmCli, 'pack', '--pack-destination', work], {
      cwd: ROOT, encoding: 'utf8', timeout: 1_200_000,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    assert.equal(packed.status, 0, `npm pack:\n${packed.stderr.slice(-4000)}`);
    const tarballName = packed.stdout.trim().split('\n').pop()!;
    tarball = join(work, tarballName);
    chmodSync(tarball, 0o644);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;

    // A HOME of the user's own, holding a copy of our npm cache (installs are offline).
    home = join(work, 'home');
    const cache = spawnSync(process.execPath, [npmCli, 'config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim();
    cpSync(join(cache, '_cacache'), join(home, '.npm', '_cacache'), { recursive: true });
    app = join(work, 'app');
    mkdirSync(app);
    const { lock, deps } = appLock(tarballName, integrity);
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: deps }, null, 2)}\n`);
    writeFileSync(join(app, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
    writeFileSync(join(app, 'tsconfig.json'), `${JSON.stringify({
      compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, outDir: 'dist', types: ['node'], skipLibCheck: true },
      include: ['main.ts'],
    }, null, 2)}\n`);
    writeFileSync(join(app, 'main.ts'), MAIN_TS);
    writeFileSync(join(app, 'no-addon.mjs'), NO_ADDON_MJS);
    chownTree(home);
    chownTree(app);
  });

  after(() => {
    if (execsnoop?.exitCode === null && execsnoop.pid) {
      try { process.kill(-execsnoop.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the tarball holds dist, the prebuilt addons, docs and examples', () => {
    const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.split('\n');
    for (const f of [
      'package/dist/src/index.js', 'package/dist/src/cli/main.js', 'package/dist/src/cli/packet_count.bpf.o',
      'package/dist/src/tools/execsnoop/gen/execsnoop.bpf.o', 'package/prebuilds/linux-x64/node.napi.glibc.node',
      'package/prebuilds/linux-arm64/node.napi.glibc.node', 'package/prebuilds/linux-x64/node.napi.musl.node',
      'package/docs/testing.md', 'package/bpf/include/bpfkit/drops.h', 'package/binding.gyp', 'package/native/bpfkit.c', 'package/scripts/install.mjs',
    ]) assert.ok(list.includes(f), `${f} is in the tarball`);
    assert.ok(list.some((f) => f.startsWith('package/examples/') && f.endsWith('main.ts')), 'examples are in the tarball');
    assert.ok(!list.some((f) => f.startsWith('package/build/') || f.startsWith('package/dist/test/')), 'no local build or tests');
  });

  it('PATH reaches no compiler, make or python', () => {
    const r = spawnSync('/bin/sh', ['-c', 'for c in cc gcc clang make python3 node-gyp; do command -v $c; done; true'], { env: { PATH: bin }, encoding: 'utf8' });
    assert.equal(r.stdout.trim(), '');
  });

  it('installs offline (lock + npm cache) with no compiler, building nothing', () => {
    const r = asUser(process.execPath, [npmCli, 'ci', '--offline', '--no-audit', '--no-fund']);
    assert.equal(r.status, 0, `npm ci --offline:\n${r.stdout}\n${r.stderr}`);
    const installed = join(app, 'node_modules', 'bpfkit');
    assert.ok(existsSync(join(installed, 'prebuilds', 'linux-x64', 'node.napi.glibc.node')));
    assert.ok(!existsSync(join(installed, 'build')), 'no source build happened');
    assert.ok(!existsSync(join(app, 'node_modules', 'node-gyp')), 'node-gyp is not a dependency');
    assert.ok(existsSync(join(app, 'node_modules', 'node-gyp-build')));
  });

  it('a TypeScript program runs against the emulated kernel', () => {
    const tsc = asUser(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.']);
    assert.equal(tsc.status, 0, `tsc:\n${tsc.stdout}${tsc.stderr}`);
    const run = asUser(process.execPath, ['dist/main.js']);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { rets: [2, 2], rows: [['10.1.2.3', 1], ['192.168.1.10', 3]], openFds: 0 });
  });

  it('npx bpfkit --version and inspect work as the user', () => {
    const v = asUser(npxCli, ['bpfkit', '--version']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), `bpfkit ${pkg.version}`);
    const i = asUser(npxCli, ['bpfkit', 'inspect', 'node_modules/bpfkit/dist/src/cli/packet_count.bpf.o', '--json']);
    assert.equal(i.status, 0, i.stderr);
    const spec = JSON.parse(i.stdout) as { programs: { name: string }[]; maps: { name: string }[] };
    assert.deepEqual(spec.programs.map((p) => p.name), ['xdp_prog_func']);
    assert.ok(spec.maps.some((m) => m.name === 'xdp_stats_map'));
  });

  it('npx bpfkit init in the project depends on the same tarball, and says so', () => {
    const r = asUser(npxCli, ['bpfkit', 'init', 'proj', '--no-gen']);
    assert.equal(r.status, 0, r.stderr);
    const dep = (JSON.parse(readFileSync(join(app, 'proj', 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['bpfkit'];
    assert.equal(dep, `file:${tarball}`);
    assert.match(r.stdout, /bpfkit comes from the tarball /);
  });

  it('where no addon loads, what needs no kernel works and a load says why and what to do', () => {
    const prebuilds = join(app, 'node_modules', 'bpfkit', 'prebuilds');
    renameSync(prebuilds, `${prebuilds}.off`);
    try {
      const emulated = asUser(process.execPath, ['dist/main.js']);
      assert.equal(emulated.status, 0, emulated.stderr);
      assert.equal((JSON.parse(emulated.stdout) as { openFds: number }).openFds, 0);
      const r = asUser(process.execPath, ['no-addon.mjs']);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { programs: number; code?: string; message?: string };
      assert.equal(out.programs, 1, 'the object parsed');
      assert.equal(out.code, 'ERR_BPFKIT_NO_ADDON');
      assert.match(out.message!, /no prebuild for linux-x64 \(glibc/);
      assert.match(out.message!, /npm rebuild bpfkit --build-from-source/);
      const cli = asUser(npxCli, ['bpfkit', 'demo']);
      assert.equal(cli.status, 1);
      assert.equal(cli.stderr.trim().split('\n').length, 1, `one line:\n${cli.stderr}`);
    } finally {
      renameSync(`${prebuilds}.off`, prebuilds);
    }
  });

  it('as root, npx bpfkit execsnoop from the project sees an exec and stops on SIGINT', async () => {
    const marker = `bpfkit-pkg-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    // Its own process group, so SIGINT reaches npx and bpfkit alike, as Ctrl-C would.
    execsnoop = spawn(process.execPath, [npxCli, 'bpfkit', 'execsnoop', '--json'], {
      cwd: app, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      // Root's own PATH: bpfkit mounts tracefs with mount(8) where it is not mounted.
      env: { PATH: `${bin}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, HOME: process.env['HOME'] ?? '/root', npm_config_update_notifier: 'false', npm_config_offline: 'true' },
    });
    const child = execsnoop;
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const seen = (): boolean => stdout.split('\n').some((l) => {
      if (!l.startsWith('{')) return false;
      const e = JSON.parse(l) as { args?: (string | null)[] };
      return e.args?.includes(marker) ?? false;
    });
    // Exec until one is reported (execsnoop attaches some time after it starts); bounded only so a
    // broken run ends.
    for (let i = 0; i < 600 && !seen() && child.exitCode === null; i++) {
      spawnSync('/bin/true', [marker]);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(seen(), `execsnoop reported /bin/true ${marker}:\n${stdout.slice(-2000)}\n${stderr}`);
    // Ctrl-C to bpfkit itself (npx's own reaction to SIGINT is npm's business): it stops cleanly
    // with 0, and npx then exits with bpfkit's code.
    const tool = innermost(child.pid!, 'execsnoop --json');
    assert.ok(tool !== undefined && tool !== child.pid, 'bpfkit runs below npx');
    process.kill(tool, 'SIGINT');
    assert.equal(await exited, 0, stderr);
  });
});
