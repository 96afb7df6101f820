/**
 * `bpfkit init`, the way a person uses it: run it in an empty directory, then run the commands it
 * prints — npm install, npm run gen, npm run build, npm start — and see the program load, attach,
 * print the execs the test makes and the counts per uid, and stop on SIGINT with exit code 0 and
 * its program and link gone. The project depends on this checkout (--bpfkit-path, a file:
 * dependency); npm install takes typescript and @types/node from npm's cache when it has them.
 * The temporary directory is removed at the end.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { kernelTest, ROOT } from '../helpers/index.js';
import { assertAlive, assertGone, sleep } from '../fixtures/tools-procs.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const TAG = `bpfkit-init-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
/** Keeps npm quiet and away from the network where it can. */
const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'bpfkit-init-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

function init(args: readonly string[], cwd = work): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'init', ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The commands under "Next:" in init's output, without their comments. */
function printedCommands(stdout: string): string[] {
  const at = stdout.indexOf('\nNext:\n');
  assert.ok(at >= 0, `init prints the next commands:\n${stdout}`);
  const out: string[] = [];
  for (const line of stdout.slice(at + 7).split('\n')) {
    if (!line.startsWith('  ')) break;
    out.push(line.replace(/#.*$/, '').trim());
  }
  return out;
}

/**
 * Pids of the processes below `pid` whose command line contains `needle`, innermost only (npm runs
 * a script through `sh -c`, whose command line has it too).
 */
function descendants(pid: number, needle: string): number[] {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      cmd.set(Number(name), readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // gone meanwhile
    }
  }
  const below = (p: number, ancestor: number): boolean => {
    for (let q = parent.get(p); q !== undefined && q > 1; q = parent.get(q)) if (q === ancestor) return true;
    return false;
  };
  const found = [...parent.keys()].filter((p) => below(p, pid) && cmd.get(p)!.includes(needle));
  return found.filter((p) => !found.some((q) => below(q, p)));
}

/** `npm start` (or another command) as a child in its own process group, its output by line. */
class Started {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  #partial = '';
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, args: readonly string[], cwd: string) {
    this.child = spawn(cmd, args, { cwd, env: NPM_ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.#partial + d).split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    this.exit = new Promise((r) => this.child.on('exit', (code, signal) => r({ code, signal })));
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async line(what: string, match: (l: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find(match);
      if (l !== undefined) return l;
      if (this.exited || Date.now() > deadline) {
        await sleep(100);
        const last = this.lines.find(match);
        if (last !== undefined) return last;
        assert.fail(`${this.exited ? 'exited' : 'timed out'} before ${what}\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
      }
      await sleep(50);
    }
  }

  /** The exit, or undefined when it takes longer than `ms`. */
  async exitWithin(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); });
    try {
      return await Promise.race([this.exit, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** For finally blocks: the whole group, however it can be stopped. */
  async kill(): Promise<void> {
    if (this.exited) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.exit;
  }
}

/** Runs a program under a name of its own (a symlink): its execs are easy to find in the output. */
async function execAs(name: string, times: number): Promise<number[]> {
  const path = join(work, name);
  if (!existsSync(path)) symlinkSync('/bin/true', path);
  const pids: number[] = [];
  for (let i = 0; i < times; i++) {
    const c = spawn(path, [], { stdio: 'ignore' });
    pids.push(c.pid!);
    await new Promise((r) => c.on('close', r));
  }
  return pids;
}

const ownComm = readFileSync('/proc/self/comm', 'utf8').trim();

function attachedIds(line: string): { programs: number[]; links: number[] } {
  const m = /program id (\d+), link id (\d+)/.exec(line);
  assert.ok(m, `the attached line names the program and link ids: ${line}`);
  const link = Number(m[2]);
  return { programs: [Number(m[1])], links: link > 0 ? [link] : [] };
}

describe('bpfkit init', () => {
  let project = '';
  /** The commands init printed. */
  let steps: string[] = [];

  it('writes the project and prints the commands to run next', kernelTest, () => {
    const r = init(['exec-counter', '--bpfkit-path', ROOT]);
    assert.equal(r.status, 0, r.stderr);
    project = join(work, 'exec-counter');
    for (const f of ['package.json', 'tsconfig.json', '.gitignore', 'README.md', 'src/counter.bpf.c', 'src/main.ts', 'src/gen/counter.ts', 'src/gen/counter.bpf.o']) {
      assert.ok(existsSync(join(project, f)), `${f} exists`);
    }
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    assert.equal(pkg['name'] as unknown, 'exec-counter');
    assert.equal(pkg['type'] as unknown, 'module');
    assert.deepEqual(pkg['dependencies'], { bpfkit: `file:${ROOT}` });
    assert.deepEqual(Object.keys(pkg['devDependencies']!).sort(), ['@types/node', 'typescript']);
    assert.match(pkg['scripts']!['gen']!, /^bpfkit gen counter src\/counter\.bpf\.c /);
    assert.equal(pkg['scripts']!['build'], 'tsc -p tsconfig.json');
    assert.equal(pkg['scripts']!['start'], 'node dist/main.js');
    assert.match(readFileSync(join(project, 'src/gen/counter.ts'), 'utf8'), /export async function loadCounter\(/);
    steps = printedCommands(r.stdout);
    assert.deepEqual(steps, ['cd exec-counter', 'npm install', 'npm run gen', 'npm run build', 'npm start']);
  });

  it('the printed commands install, generate and build it', kernelTest, () => {
    assert.ok(project, 'the project was created');
    let cwd = work;
    for (const step of steps) {
      if (step.startsWith('cd ')) {
        cwd = resolve(cwd, step.slice(3));
        continue;
      }
      if (step === 'npm start') continue; // the next test
      const args = step.split(' ').slice(1);
      // Keep it fast and leave the checkout alone: the cache first, and no install scripts (bpfkit's
      // own would rebuild the addon in the checkout, which is built already).
      if (args[0] === 'install') args.push('--prefer-offline', '--ignore-scripts');
      const t0 = Date.now();
      const r = spawnSync('npm', args, { cwd, env: NPM_ENV, encoding: 'utf8', timeout: 180_000 });
      assert.equal(r.status, 0, `${step} (${Date.now() - t0} ms):\n${r.stdout}\n${r.stderr}`);
      if (args[0] === 'run' && args[1] === 'gen') assert.match(r.stdout, /bpfkit gen: wrote src\/gen\/counter\.bpf\.o.*src\/gen\/counter\.ts/);
    }
    assert.equal(cwd, project);
    assert.ok(existsSync(join(project, 'node_modules', 'bpfkit', 'package.json')), 'bpfkit is installed');
    assert.ok(existsSync(join(project, 'dist', 'main.js')), 'npm run build wrote dist/main.js');
    assert.ok(existsSync(join(project, 'dist', 'gen', 'counter.js')), 'and the bindings');
  });

  it('npm start: loads, attaches, prints the execs and the counts, stops on SIGINT with exit 0 and nothing attached', kernelTest, async () => {
    assert.ok(existsSync(join(project, 'dist', 'main.js')), 'the project was built');
    const run = new Started('npm', ['start'], project);
    try {
      const attached = await run.line('the attached line', (l) => l.startsWith('counter: attached count_exec to syscalls/sys_enter_execve'));
      const ids = attachedIds(attached);
      assertAlive(ids);
      const name = `${TAG}-a`;
      const pids = await execAs(name, 3);
      for (const pid of pids) {
        const row = await run.line(`the exec of ${name} by pid ${pid}`, (l) => l.startsWith(`${pid} `) && l.endsWith(join(work, name)));
        const cols = row.split(/\s+/);
        assert.equal(cols[1], '0', `uid 0: ${row}`);
        assert.equal(cols[2], ownComm, `the caller's command name: ${row}`);
      }
      // The counts every 5 s: uid 0 has at least the test's execs.
      const counts = await run.line('the counts per uid', (l) => l.startsWith('execs per uid: '), 15_000);
      const n = /uid 0: (\d+)/.exec(counts);
      assert.ok(n && Number(n[1]) >= pids.length, counts);

      // Ctrl-C reaches the program (npm start forwards its exit code).
      const programs = descendants(run.child.pid!, 'dist/main.js');
      assert.equal(programs.length, 1, `one node dist/main.js below npm: ${programs}`);
      process.kill(programs[0]!, 'SIGINT');
      const exit = await run.exitWithin(15_000);
      assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 on SIGINT\n${run.stderr}`);
      const last = run.lines.filter((l) => l.trim() !== '').at(-1)!;
      assert.match(last, /^counter: detached; execs per uid: .*uid 0: \d+ \(last: /);
      await assertGone(ids);
    } finally {
      await run.kill();
    }
  });

  it('npm start: Ctrl-C (SIGINT to the whole process group) detaches too', kernelTest, async () => {
    const run = new Started('npm', ['start'], project);
    try {
      const ids = attachedIds(await run.line('the attached line', (l) => l.startsWith('counter: attached ')));
      assertAlive(ids);
      const [pid] = await execAs(`${TAG}-b`, 1);
      await run.line('the exec', (l) => l.startsWith(`${pid} `));
      process.kill(-run.child.pid!, 'SIGINT');
      const exit = await run.exitWithin(15_000);
      // npm itself ends by the signal it got (its convention); the program below it detaches cleanly.
      assert.ok(exit && (exit.code === 0 || exit.signal === 'SIGINT'), `npm exits: ${JSON.stringify(exit)}\n${run.stderr}`);
      assert.ok(run.lines.some((l) => l.startsWith('counter: detached; execs per uid: ')), run.lines.join('\n'));
      assert.doesNotMatch(run.stderr, /counter: /, 'the program reports no error');
      await assertGone(ids);
    } finally {
      await run.kill();
    }
  });
});

describe('bpfkit init: refusals and options', () => {
  it('never overwrites: a directory with one of the files is refused, and left as it was', () => {
    const dir = join(work, 'taken');
    mkdirSync(join(dir, 'src'), { recursive: true });
    writeFileSync(join(dir, 'src', 'main.ts'), 'mine\n');
    const r = init(['taken', '--no-gen']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^bpfkit init: taken already has src\/main\.ts: init never overwrites files/);
    assert.deepEqual(readdirSync(dir), ['src']);
    assert.equal(readFileSync(join(dir, 'src', 'main.ts'), 'utf8'), 'mine\n');
  });

  it('the current directory by default; the package name from the directory, or --name', () => {
    const dir = join(work, 'My Tool');
    mkdirSync(dir);
    const r = init(['--no-gen'], dir);
    assert.equal(r.status, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
    assert.equal(pkg.name, 'my-tool');
    // Run from this checkout, init points the project at it, and says so.
    assert.equal(pkg.dependencies['bpfkit'], `file:${ROOT}`, 'the checkout this bpfkit runs from');
    assert.match(r.stdout, new RegExp(`bpfkit comes from the local checkout ${ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.deepEqual(printedCommands(r.stdout).slice(0, 2), ['npm install', 'npm run gen'], 'no cd when it is the current directory');
    assert.ok(!existsSync(join(dir, 'src', 'gen')), '--no-gen generates nothing');

    const named = init(['named', '--name', '@me/exec-counter', '--no-gen']);
    assert.equal(named.status, 0, named.stderr);
    assert.equal((JSON.parse(readFileSync(join(work, 'named', 'package.json'), 'utf8')) as { name: string }).name, '@me/exec-counter');
    assert.deepEqual(printedCommands(named.stdout)[0], 'cd named');
  });

  it('--bpfkit-path takes a tarball from npm pack, and says it depends on it', () => {
    const tarball = join(work, 'bpfkit-9.9.9.tgz');
    writeFileSync(tarball, '');
    const r = init(['from-tarball', '--bpfkit-path', tarball, '--no-gen']);
    assert.equal(r.status, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(join(work, 'from-tarball', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(pkg.dependencies['bpfkit'], `file:${tarball}`);
    assert.match(r.stdout, /bpfkit comes from the tarball .*bpfkit-9\.9\.9\.tgz/);
  });

  it('refuses bad input with exit code 2 (1 for a --bpfkit-path that is not bpfkit)', () => {
    assert.equal(init(['a', 'b']).status, 2);
    const badName = init(['x', '--name', 'Not Valid']);
    assert.equal(badName.status, 2);
    assert.match(badName.stderr, /"Not Valid" is not a valid npm package name/);
    assert.equal(init(['x', '--frobnicate']).status, 2);
    const notBpfkit = init(['y', '--bpfkit-path', work]);
    assert.equal(notBpfkit.status, 1);
    assert.match(notBpfkit.stderr, /--bpfkit-path .*package\.json is missing/);
    assert.ok(!existsSync(join(work, 'y')), 'nothing written');
    const noTarball = init(['z', '--bpfkit-path', join(work, 'missing.tgz')]);
    assert.equal(noTarball.status, 1);
    assert.match(noTarball.stderr, /missing\.tgz: no such file/);
    assert.ok(!existsSync(join(work, 'z')), 'nothing written');
    const help = init(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: bpfkit init \[DIR\]/);
  });
});
