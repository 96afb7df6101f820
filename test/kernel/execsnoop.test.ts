/**
 * `bpfkit execsnoop` against real execs on this kernel, run as a child process the way a person
 * runs it: it sees a process the test spawns with its arguments (pid, ppid, uid, comm, filename),
 * honours --comm and --pid in the kernel, shows return values with --ret (0, and a negative errno
 * for a failed exec), marks truncated arguments and filenames, prints a clean table, exits cleanly
 * on SIGINT and SIGTERM with its programs and links gone, says which hook it used, and refuses
 * bad input and a missing privilege clearly.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kprobeSupport } from '../../src/index.js';
import { loadExecsnoop } from '../../src/tools/execsnoop/gen/execsnoop.js';
import { kernelTest } from '../helpers/index.js';
import { assertAlive, assertGone, runTool, sleep, ToolProcess, TOOLS_CLI } from '../fixtures/tools-procs.js';

interface ExecJson {
  time: string;
  pid: number;
  tid?: number;
  ppid: number;
  uid: number;
  comm: string;
  filename: string;
  args: string[];
  ret?: number;
  truncated?: boolean;
}

const TAG = `bpfkit-es-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit-execsnoop-'));
  chmodSync(dir, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a command to its end (a spawn from this process: its ppid is ours). */
function run(file: string, args: readonly string[]): Promise<{ pid: number; code: number | null; error?: Error }> {
  return new Promise((resolve) => {
    const c = spawn(file, args, { stdio: 'ignore' });
    let error: Error | undefined;
    c.on('error', (e) => { error = e; });
    c.on('close', (code) => resolve({ pid: c.pid ?? -1, code, ...(error ? { error } : {}) }));
  });
}

const ownComm = readFileSync('/proc/self/comm', 'utf8').trim();

describe('execsnoop: what it sees', () => {
  it('a process the test spawns, with pid, ppid, uid, comm, filename and args', kernelTest, async () => {
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose']);
    try {
      await tool.ready('execsnoop');
      const args = [`${TAG}-seen`, 'two words', '', 'ünïcode'];
      const started = Date.now();
      const r = await run('/bin/echo', args);
      assert.equal(r.code, 0);
      const ev = await tool.jsonLine<ExecJson>('the /bin/echo exec', (e) => e.args.includes(`${TAG}-seen`));
      const received = Date.now();
      assert.equal(ev.pid, r.pid);
      assert.equal(ev.ppid, process.pid, 'the parent is the test process');
      assert.equal(ev.uid, process.getuid!());
      assert.equal(ev.comm, ownComm, "the caller's command name, before the exec (as the seed prints it)");
      assert.equal(ev.filename, '/bin/echo');
      assert.deepEqual(ev.args, ['/bin/echo', ...args]);
      assert.equal(ev.ret, undefined, 'no ret without --ret');
      assert.equal(ev.truncated, undefined);
      assert.deepEqual(Object.keys(ev), ['time', 'pid', 'ppid', 'uid', 'comm', 'filename', 'args']);
      const t = Date.parse(ev.time);
      // Between the spawn and the line's arrival, however slow the machine; the slack is for the
      // conversion of the kernel's monotonic clock to wall time, not for how long anything took.
      const slack = 1000;
      assert.ok(t >= started - slack && t <= received + slack,
        `the time ${ev.time} is when the exec happened (spawned ${new Date(started).toISOString()}, line read ${new Date(received).toISOString()})`);
    } finally {
      await tool.kill();
    }
  });

  it('--comm: only execs by processes with that command name', kernelTest, async () => {
    // A process's command name comes from the file name it was executed as: a symlink to sh
    // gives a shell with a name nothing else on the machine has.
    const name = `bpfc${process.pid % 100000}`;
    const sh = join(dir, name);
    symlinkSync('/bin/sh', sh);
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--comm', name]);
    try {
      await tool.ready('execsnoop');
      assert.equal((await run('/bin/echo', [`${TAG}-comm-no`])).code, 0);
      assert.equal((await run(sh, ['-c', `/bin/echo ${TAG}-comm-yes; /bin/true`])).code, 0);
      const ev = await tool.jsonLine<ExecJson>('the exec by the renamed shell', (e) => e.args.includes(`${TAG}-comm-yes`));
      assert.equal(ev.comm, name);
      assert.equal(ev.filename, '/bin/echo');
      await sleep(300);
      const all = tool.json<ExecJson>();
      assert.ok(all.every((e) => e.comm === name), `only comm ${name}: ${JSON.stringify(all.map((e) => e.comm))}`);
      assert.ok(!all.some((e) => e.args.includes(`${TAG}-comm-no`)), 'the exec by the test process itself is filtered out');
    } finally {
      await tool.kill();
    }
  });

  it('--pid: only execs by that process', kernelTest, async () => {
    const shell = spawn('/bin/sh', ['-c', `read go; exec /bin/echo ${TAG}-pid-yes`], { stdio: ['pipe', 'ignore', 'ignore'] });
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--pid', String(shell.pid)]);
    try {
      await tool.ready('execsnoop');
      assert.equal((await run('/bin/echo', [`${TAG}-pid-no`])).code, 0);
      shell.stdin!.end('go\n');
      const ev = await tool.jsonLine<ExecJson>('the exec by the chosen process', (e) => e.args.includes(`${TAG}-pid-yes`));
      assert.equal(ev.pid, shell.pid);
      assert.equal(ev.comm, 'sh');
      await sleep(300);
      const all = tool.json<ExecJson>();
      assert.ok(all.every((e) => e.pid === shell.pid), `only pid ${shell.pid}: ${JSON.stringify(all.map((e) => e.pid))}`);
    } finally {
      shell.kill('SIGKILL');
      await tool.kill();
    }
  });

  it('--ret: 0 for an exec that worked, a negative errno for one that failed', kernelTest, async () => {
    const notExecutable = join(dir, `${TAG}-noexec`);
    writeFileSync(notExecutable, '#!/bin/sh\n');
    chmodSync(notExecutable, 0o644);
    const missing = join(dir, `${TAG}-missing`, 'prog');
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--ret']);
    try {
      await tool.ready('execsnoop');
      await run('/bin/echo', [`${TAG}-ret-ok`]);
      const enoent = await run(missing, [`${TAG}-ret-enoent`]);
      assert.ok(enoent.error, 'spawning a missing file fails');
      const eacces = await run(notExecutable, [`${TAG}-ret-eacces`]);
      assert.ok(eacces.error, 'spawning a file without x permission fails');
      const ok = await tool.jsonLine<ExecJson>('the successful exec', (e) => e.args.includes(`${TAG}-ret-ok`));
      assert.equal(ok.ret, 0);
      assert.equal(ok.filename, '/bin/echo');
      const e1 = await tool.jsonLine<ExecJson>('the exec of a missing file', (e) => e.args.includes(`${TAG}-ret-enoent`));
      assert.equal(e1.ret, -2, 'ENOENT');
      assert.equal(e1.filename, missing);
      const e2 = await tool.jsonLine<ExecJson>('the exec of a file without x permission', (e) => e.args.includes(`${TAG}-ret-eacces`));
      assert.equal(e2.ret, -13, 'EACCES');
      assert.deepEqual(Object.keys(ok), ['time', 'pid', 'ppid', 'uid', 'comm', 'filename', 'args', 'ret']);
    } finally {
      await tool.kill();
    }
  });

  it('cuts long argument lists, long arguments and long filenames, with a "..." marker', kernelTest, async () => {
    // A path longer than the 255 bytes kept, made of directories, to a symlink to echo.
    let deep = dir;
    for (let i = 0; i < 4; i++) deep = join(deep, `${'d'.repeat(70)}${i}`);
    mkdirSync(deep, { recursive: true });
    const longPath = join(deep, 'echo');
    symlinkSync('/bin/echo', longPath);
    assert.ok(longPath.length > 255);
    const longArg = `${TAG}-long-${'x'.repeat(400)}`;
    const args = [longArg, ...Array.from({ length: 30 }, (_, i) => `a${i}`)];
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose']);
    try {
      await tool.ready('execsnoop');
      assert.equal((await run(longPath, args)).code, 0);
      const ev = await tool.jsonLine<ExecJson>('the exec with many arguments', (e) => e.args.some((a) => a.startsWith(`${TAG}-long-`)));
      assert.equal(ev.truncated, true);
      assert.equal(ev.args.length, 21, '20 arguments kept, then the marker');
      assert.equal(ev.args[20], '...');
      assert.equal(ev.args[0], longPath.slice(0, 127) + '...', 'argv[0] (the long path) is cut at 127 bytes');
      assert.equal(ev.args[1], longArg.slice(0, 127) + '...');
      assert.deepEqual(ev.args.slice(2, 20), args.slice(1, 19));
      assert.equal(ev.filename, longPath.slice(0, 255) + '...');
    } finally {
      await tool.kill();
    }
  });

  it('human output: a header and aligned columns, control characters escaped', kernelTest, async () => {
    const tool = new ToolProcess('execsnoop', ['--verbose', '--ret']);
    try {
      await tool.ready('execsnoop');
      const r = await run('/bin/echo', [`${TAG}-table`, 'a b', '\x1b[2J']);
      const row = await tool.until('the table row', () => tool.lines.find((l) => l.includes(`${TAG}-table`)));
      const header = tool.lines[0]!;
      assert.match(header, /^TIME +PID +PPID +UID +COMM +RET +FILENAME +ARGS$/);
      assert.match(row, /^\d\d:\d\d:\d\d /);
      const at = (col: string): string => row.slice(header.indexOf(col)).split(/ +/)[0]!;
      assert.equal(at('PID'), String(r.pid));
      assert.equal(at('PPID'), String(process.pid));
      assert.equal(at('UID'), String(process.getuid!()));
      assert.equal(at('RET'), '0');
      assert.equal(at('FILENAME'), '/bin/echo');
      assert.ok(row.endsWith(`/bin/echo ${TAG}-table 'a b' $'\\e[2J'`), row);
      assert.ok(!row.includes('\x1b'), 'no raw escape character reaches the terminal');
    } finally {
      await tool.kill();
    }
  });
});

// The strings passed to execv are copied to the stack first: a literal in a page of the binary
// that nothing touched yet could not be read by the probe (it cannot take page faults).
const THREAD_EXEC = `
#include <pthread.h>
#include <string.h>
#include <unistd.h>
static char *tag;
static void *run(void *arg)
{
	char path[32];
	char *argv[3];
	(void)arg;
	strcpy(path, "/bin/echo");
	argv[0] = path;
	argv[1] = tag;
	argv[2] = 0;
	execv(path, argv);
	return 0;
}
int main(int argc, char **argv)
{
	pthread_t t;
	if (argc < 2)
		return 2;
	tag = argv[1];
	pthread_create(&t, 0, run, 0);
	pthread_join(t, 0);
	return 1;
}
`;

describe('execsnoop: threads', () => {
  it('an exec by a thread that is not the leader: hidden by default, shown with --threads (and its return value)', kernelTest, async (t) => {
    const cc = ['clang', 'cc', 'gcc'].find((c) => spawnSync(c, ['--version']).status === 0);
    if (!cc) {
      t.skip('needs a C compiler');
      return;
    }
    const src = join(dir, 'thread-exec.c');
    const prog = join(dir, 'thread-exec');
    writeFileSync(src, THREAD_EXEC);
    const built = spawnSync(cc, ['-O1', '-pthread', '-o', prog, src], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);

    const leadersOnly = new ToolProcess('execsnoop', ['--json', '--verbose']);
    try {
      await leadersOnly.ready('execsnoop');
      assert.equal((await run(prog, [`${TAG}-thread-hidden`])).code, 0);
      // The leader's own exec comes after: once it is there, the thread's would have been too.
      assert.equal((await run('/bin/echo', [`${TAG}-leader-after`])).code, 0);
      await leadersOnly.jsonLine<ExecJson>('the leader exec', (e) => e.args.includes(`${TAG}-leader-after`));
      // The exec of the program itself (by the test's child, a leader) is shown; the thread's exec of /bin/echo is not.
      const seen = leadersOnly.json<ExecJson>().filter((e) => e.args.includes(`${TAG}-thread-hidden`));
      assert.deepEqual(seen.map((e) => e.filename), [prog], 'the thread exec is not shown by default');
    } finally {
      await leadersOnly.kill();
    }

    const threads = new ToolProcess('execsnoop', ['--json', '--verbose', '--threads', '--ret']);
    try {
      await threads.ready('execsnoop');
      const r = await run(prog, [`${TAG}-thread-shown`]);
      assert.equal(r.code, 0);
      const ev = await threads.jsonLine<ExecJson>('the thread exec', (e) => e.filename === '/bin/echo' && e.args.includes(`${TAG}-thread-shown`));
      assert.equal(ev.pid, r.pid);
      assert.notEqual(ev.tid, ev.pid, 'called by another thread than the leader');
      assert.equal(ev.ret, 0, 'the return value pairs up although the thread became the leader');
      assert.equal(ev.comm, 'thread-exec');
    } finally {
      await threads.kill();
    }
  });
});

describe('execsnoop: hooks and lifetime', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} exits 0 and leaves no program or link behind`, kernelTest, async () => {
      const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--ret']);
      try {
        await tool.ready('execsnoop');
        const ids = tool.ids();
        assert.equal(ids.programs.length, 4, `4 programs attached (execve and execveat, entry and exit):\n${tool.stderr}`);
        assert.equal(ids.links.length, 4, 'each through a bpf_link');
        assertAlive(ids);
        tool.signal(sig);
        const exit = await tool.exit();
        assert.deepEqual(exit, { code: 0, signal: null }, tool.stderr);
        assert.match(tool.stderr, /^execsnoop: detached$/m);
        await assertGone(ids);
      } finally {
        await tool.kill();
      }
    });
  }

  it('says which hook it used: kprobes where the kernel has them, else the tracepoint', kernelTest, async () => {
    const tool = new ToolProcess('execsnoop', ['--verbose']);
    try {
      await tool.ready('execsnoop');
      if (kprobeSupport() === undefined) {
        assert.match(tool.stderr, /the kernel has no kprobes \(built without CONFIG_KPROBES\): hooking the syscalls:sys_enter_execve tracepoint/);
        assert.match(tool.stderr, /attached tracepoint syscalls\/sys_enter_execve: program tp_enter_execve \(id \d+\)/);
        assert.match(tool.stderr, /ready: tracing exec calls with tracepoints/);
      } else {
        assert.match(tool.stderr, /attached kprobe __\w+sys_execve: program ksys_execve/);
      }
    } finally {
      await tool.kill();
    }
  });

  // The probe decides: with kprobes, --hook kprobe traces execs (empty argument and return value
  // included); without, it fails with one clear line.
  it('--hook kprobe: kprobes see an exec and its return where the kernel has them, else exit 1 with a clear error', kernelTest, async () => {
    if (kprobeSupport() !== undefined) {
      const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--ret', '--hook', 'kprobe']);
      try {
        await tool.ready('execsnoop');
        assert.match(tool.stderr, /attached kprobe __\w+sys_execve: program ksys_execve/);
        const args = [`${TAG}-kp`, '', 'x y'];
        const r = await run('/bin/echo', args);
        assert.equal(r.code, 0);
        const ev = await tool.jsonLine<ExecJson>('the exec seen by the kprobe', (e) => e.args.includes(`${TAG}-kp`));
        assert.equal(ev.pid, r.pid);
        assert.equal(ev.ppid, process.pid);
        assert.equal(ev.filename, '/bin/echo');
        assert.deepEqual(ev.args, ['/bin/echo', ...args], 'the empty argument is an empty string');
        assert.equal(ev.ret, 0);
      } finally {
        await tool.kill();
      }
      return;
    }
    const r = await runTool('execsnoop', ['--hook', 'kprobe']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^bpfkit execsnoop: kprobes is not supported by this kernel: the kernel was built without CONFIG_KPROBES/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  });

  it('--hook tracepoint works wherever the syscall tracepoints exist', kernelTest, async () => {
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--hook', 'tracepoint']);
    try {
      await tool.ready('execsnoop');
      assert.match(tool.stderr, /--hook tracepoint/);
      await run('/bin/echo', [`${TAG}-tp`]);
      await tool.jsonLine<ExecJson>('the exec', (e) => e.args.includes(`${TAG}-tp`));
    } finally {
      await tool.kill();
    }
  });

  it('the kprobe programs pass the verifier here too (CO-RE picks the pt_regs of this architecture)', kernelTest, async () => {
    for (const wantRet of [0, 1]) {
      const objs = await loadExecsnoop({
        rodata: { wantRet },
        programs: { only: ['ksys_execve', 'ksys_execveat', 'ksys_execve_ret', 'ksys_execveat_ret'] },
      });
      try {
        for (const p of [objs.programs.ksysExecve, objs.programs.ksysExecveat, objs.programs.ksysExecveRet, objs.programs.ksysExecveatRet]) {
          assert.equal(p.type, 'kprobe');
          assert.ok(p.info().xlatedLength > 0);
        }
      } finally {
        objs.close();
      }
    }
  });
});

describe('execsnoop: bad input', () => {
  it('not root: names CAP_BPF and CAP_PERFMON and says to run as root (exit 1)', kernelTest, async () => {
    const r = await runTool('execsnoop', [], { uid: 65534, gid: 65534 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^bpfkit execsnoop: execsnoop needs CAP_BPF and CAP_PERFMON \(in practice: root\) .*uid 65534.*Run it as root: sudo npx bpfkit execsnoop\n$/);
    assert.equal(r.stdout, '');
  });

  it('not root, through setpriv with no groups: the same', kernelTest, async (t) => {
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      t.skip('setpriv (util-linux) is not installed');
      return;
    }
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, TOOLS_CLI, 'execsnoop'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /CAP_BPF and CAP_PERFMON/);
  });

  it('an unknown flag is named (exit 2)', async () => {
    const r = await runTool('execsnoop', ['--follow']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^bpfkit execsnoop: unknown option --follow\n/);
  });

  it('a bad value is named (exit 2)', async () => {
    const r = await runTool('execsnoop', ['--pid', 'init']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^bpfkit execsnoop: --pid: "init" is not a number\n/);
  });

  it('--help prints the usage (exit 0)', async () => {
    const r = await runTool('execsnoop', ['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: bpfkit execsnoop/);
  });
});

describe('execsnoop: lost events', () => {
  it('a full ring: every exec is either printed or counted, in --json records and the stderr total', kernelTest, async () => {
    // Execs as a uid nobody else uses, so only the test's execs match --uid; the tool is stopped
    // (SIGSTOP) while they happen, so its 4 KiB ring (about 11 events) fills.
    const uid = 61_000 + (process.pid % 1000);
    const execs = 60;
    const tool = new ToolProcess('execsnoop', ['--json', '--verbose', '--uid', String(uid), '--ringbuf-size', '4K']);
    try {
      await tool.ready('execsnoop');
      tool.signal('SIGSTOP');
      for (let i = 0; i < execs; i++) {
        const r = spawnSync('/bin/true', [], { uid, gid: uid, stdio: 'ignore' });
        assert.equal(r.status, 0, `exec ${i} as uid ${uid}: ${r.error?.message ?? ''}`);
      }
      tool.signal('SIGCONT');
      tool.signal('SIGINT');
      const exit = await tool.exit();
      assert.deepEqual(exit, { code: 0, signal: null }, tool.stderr);
      const records = tool.json<ExecJson & { lost?: number; reason?: string }>();
      const seen = records.filter((r) => r.lost === undefined);
      const lost = records.filter((r) => r.lost !== undefined);
      for (const e of seen) {
        assert.equal(e.uid, uid);
        assert.equal(e.filename, '/bin/true');
      }
      for (const l of lost) {
        assert.deepEqual(Object.keys(l), ['time', 'lost', 'reason']);
        assert.equal(l.reason, 'ringbuf_full');
        assert.ok(Number.isFinite(Date.parse(l.time)));
      }
      const lostCount = lost.reduce((a, l) => a + l.lost!, 0);
      assert.ok(seen.length > 0 && lostCount > 0, `some execs fit and some did not: ${seen.length} printed, ${lostCount} lost`);
      assert.equal(seen.length + lostCount, execs, 'printed + counted as lost == execs made');
      const total = /^execsnoop: (\d+) events lost in total: the ring buffer was full \(output is not keeping up\); try --ringbuf-size 16K \(now 4K\)/m.exec(tool.stderr);
      assert.ok(total, `a total at exit on stderr:\n${tool.stderr}`);
      assert.equal(Number(total[1]), lostCount);
    } finally {
      tool.child.kill('SIGCONT');
      await tool.kill();
    }
  });
});
