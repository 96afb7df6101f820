/**
 * `bpfkit readline` against real shells on this kernel: an interactive bash driven through a
 * pseudo-terminal (util-linux `script`) gets lines typed into it, and the tool, run as a child
 * process, prints each with the shell's pid; a program that takes readline from libreadline.so
 * (compiled here) is traced through the library, and only its lines are shown; SIGINT and SIGTERM
 * exit cleanly with the program and link gone; bad input and a missing privilege are refused.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultLibDirs } from '../../src/elf/resolve.js';
import { kernelTest, patient } from '../helpers/index.js';
import { assertAlive, assertGone, runTool, sleep, ToolProcess } from '../fixtures/tools-procs.js';

interface LineJson {
  time: string;
  pid: number;
  uid: number;
  comm: string;
  line: string;
  truncated?: boolean;
}

const TAG = `bpfkit-rl-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit-readline-'));
  chmodSync(dir, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A program run on a pseudo-terminal by `script`, with what it prints collected. The program
 * prints "PID=<pid>" first (bash through `echo PID=$$`), so that stop() can end it before
 * `script`, which then reaps it.
 */
class OnPty {
  readonly child: ChildProcess;
  output = '';
  #pid: number | undefined;
  #exited: Promise<void>;

  constructor(command: string) {
    this.child = spawn('script', ['-qfec', command, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TERM: 'dumb', HISTFILE: '/dev/null', PS1: 'rl$ ' },
    });
    this.#exited = new Promise((resolve) => this.child.on('exit', () => resolve()));
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => { this.output += d; });
    this.child.stderr!.resume();
  }

  type(text: string): void {
    this.child.stdin!.write(text);
  }

  async waitFor(re: RegExp, what: string, timeoutMs = patient(10_000)): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.output);
      if (m) return m;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} on the terminal; it shows:\n${this.output}`);
      await sleep(50);
    }
  }

  /** The pid the program printed as PID=<n>. */
  async pid(what: string): Promise<number> {
    this.#pid ??= Number((await this.waitFor(/PID=(\d+)/, what))[1]);
    return this.#pid;
  }

  /**
   * Waits for bash's prompt after the PID line: readline() has then put the terminal in raw mode.
   * Typed earlier, ^V would be taken by the tty's line discipline (lnext) and the tab after it
   * would reach readline as a plain tab (completion), not as a character of the line.
   */
  async promptAfterPid(what: string): Promise<void> {
    // The prompt is bash's own (an interactive root bash sets PS1 itself): it ends in '$ ' or '# '.
    await this.waitFor(/PID=\d+\s*\n[^\n]*[$#] /, what);
  }

  /** Ends the program, then `script` (which reaps it). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.#pid !== undefined) {
      try { process.kill(this.#pid, 'SIGKILL'); } catch { /* already gone */ }
      const t = setTimeout(() => this.child.kill('SIGKILL'), patient(3000));
      await this.#exited;
      clearTimeout(t);
      return;
    }
    this.child.kill('SIGKILL');
    await this.#exited;
  }
}

function bashOnPty(): OnPty {
  return new OnPty('bash --norc --noprofile -i');
}

describe('readline: lines typed into bash', () => {
  it('sees a line typed into an interactive bash, with the shell\'s pid (--json)', kernelTest, async () => {
    const tool = new ToolProcess('readline', ['--json', '--verbose']);
    let shell: OnPty | undefined;
    try {
      await tool.ready('readline');
      assert.match(tool.stderr, /readline: readline is in .*bash itself|readline: readline is not in .*bash; it comes from/);
      // Started after the probe is in place: a readline() call that began before is not seen.
      shell = bashOnPty();
      shell.type('echo PID=$$\n');
      const pid = await shell.pid("bash's pid");
      const typed = Date.now();
      shell.type(`echo ${TAG}-json\n`);
      const ev = await tool.jsonLine<LineJson>('the typed line', (e) => e.line === `echo ${TAG}-json`);
      const received = Date.now();
      assert.equal(ev.pid, pid, 'the pid of the bash the line was typed into');
      assert.equal(ev.comm, 'bash');
      assert.equal(ev.uid, process.getuid!());
      // Between typing and the line's arrival, however slow the machine; the slack is for the
      // conversion of the kernel's monotonic clock to wall time.
      const t = Date.parse(ev.time);
      assert.ok(t >= typed - 1000 && t <= received + 1000, `the time ${ev.time} is when the line was entered`);
      assert.deepEqual(Object.keys(ev), ['time', 'pid', 'uid', 'comm', 'line']);
      const first = tool.json<LineJson>().find((e) => e.line === 'echo PID=$$');
      assert.equal(first?.pid, pid, 'the first line too, as typed (before expansion)');
      shell.type('exit\n');
    } finally {
      await shell?.stop();
      await tool.kill();
    }
  });

  it('human output: time, pid and the line, with escape sequences shown rather than replayed', kernelTest, async () => {
    const tool = new ToolProcess('readline', ['--verbose']);
    let shell: OnPty | undefined;
    try {
      await tool.ready('readline');
      shell = bashOnPty();
      shell.type('echo PID=$$\n');
      const pid = String(await shell.pid("bash's pid"));
      await shell.promptAfterPid("bash's prompt after the pid");
      // ESC typed as the literal characters ^V ESC is hard through a pty; a tab inserted with
      // ^V<TAB> reaches the line as a control character.
      shell.type(`: ${TAG}-table \x16\tend\n`);
      const row = await tool.until('the table row', () => tool.lines.find((l) => l.includes(`${TAG}-table`)));
      assert.match(tool.lines[0]!, /^TIME +PID +LINE$/);
      assert.match(row, new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${pid} +: ${TAG}-table \\\\tend$`));
      assert.equal(row.indexOf(pid), tool.lines[0]!.indexOf('PID'));
      shell.type('exit\n');
    } finally {
      await shell?.stop();
      await tool.kill();
    }
  });

  it('--pid: only that bash', kernelTest, async () => {
    const a = bashOnPty();
    const b = bashOnPty();
    try {
      a.type('echo PID=$$\n');
      b.type('echo PID=$$\n');
      const pidA = await a.pid('the first bash\'s pid');
      await b.pid('the second bash\'s pid');
      const tool = new ToolProcess('readline', ['--json', '--verbose', '--pid', String(pidA)]);
      try {
        await tool.ready('readline');
        assert.match(tool.stderr, new RegExp(`attached uretprobe .*:readline \\(pid ${pidA}\\)`));
        // Both shells were already waiting in readline() when the probe came: that call is not
        // seen (a uretprobe catches calls that begin after it). One line each to get past it.
        a.type('echo warm-$((1+1))\n');
        await a.waitFor(/warm-2/, 'the first bash to run its warm-up line');
        b.type('echo warm-$((2+1))\n');
        await b.waitFor(/warm-3/, 'the second bash to run its warm-up line');
        b.type(`echo ${TAG}-other-$((40+2))\n`);
        await b.waitFor(new RegExp(`${TAG}-other-42`), 'the other bash to run its line');
        a.type(`: ${TAG}-mine\n`);
        const ev = await tool.jsonLine<LineJson>('the line of the chosen bash', (e) => e.line === `: ${TAG}-mine`);
        assert.equal(ev.pid, pidA);
        await sleep(300);
        assert.ok(tool.json<LineJson>().every((e) => e.pid === pidA), JSON.stringify(tool.json()));
      } finally {
        await tool.kill();
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

/** libreadline.so.8 in the usual directories, or undefined. */
function findLibreadline(): string | undefined {
  for (const d of defaultLibDirs()) {
    const p = join(d, 'libreadline.so.8');
    if (existsSync(p)) return p;
  }
  return undefined;
}

const READLINE_PROGRAM = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
char *readline(const char *prompt);
int main(void)
{
	char *line;
	printf("PID=%d\\n", (int)getpid());
	fflush(stdout);
	while ((line = readline("rlprog> ")) != NULL) {
		printf("got:%s\\n", line);
		fflush(stdout);
		free(line);
	}
	return 0;
}
`;

describe('readline: from libreadline.so', () => {
  it('a program that takes readline from libreadline.so.8 is traced through the library; other programs using it are not shown', kernelTest, async (t) => {
    const lib = findLibreadline();
    const clang = ['clang', 'cc', 'gcc'].find((c) => spawnSync(c, ['--version']).status === 0);
    if (!lib || !clang) {
      t.skip(`needs libreadline.so.8 (${lib ?? 'missing'}) and a C compiler (${clang ?? 'missing'})`);
      return;
    }
    const src = join(dir, 'rlprog.c');
    const prog = join(dir, 'rlprog');
    const other = join(dir, 'rlother');
    writeFileSync(src, READLINE_PROGRAM);
    const cc = spawnSync(clang, ['-O1', '-o', prog, src, lib], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `compiling the readline program failed:\n${cc.stderr}`);
    copyFileSync(prog, other);
    chmodSync(other, 0o755);

    const tool = new ToolProcess('readline', ['--json', '--verbose', '--binary', prog]);
    let mine: OnPty | undefined;
    let theirs: OnPty | undefined;
    try {
      await tool.ready('readline');
      mine = new OnPty(prog);
      theirs = new OnPty(other);
      assert.match(tool.stderr, /readline is not in .*rlprog; it comes from libreadline\.so\.8 \(a DT_NEEDED dependency\)/);
      const pid = await mine.pid("the program's pid");
      await theirs.pid("the other program's pid");
      theirs.type(`${TAG}-theirs\n`);
      await theirs.waitFor(new RegExp(`got:${TAG}-theirs`), 'the other program to read its line');
      mine.type(`${TAG}-mine\n`);
      await mine.waitFor(new RegExp(`got:${TAG}-mine`), 'the program to read its line');
      const ev = await tool.jsonLine<LineJson>('the line read through libreadline', (e) => e.line === `${TAG}-mine`);
      assert.equal(ev.pid, pid);
      assert.equal(ev.comm, 'rlprog');
      await sleep(300);
      assert.ok(!tool.json<LineJson>().some((e) => e.line === `${TAG}-theirs`), 'the other program\'s line is filtered out');
    } finally {
      await mine?.stop();
      await theirs?.stop();
      await tool.kill();
    }

    // --binary naming the library itself: every program that uses it.
    const all = new ToolProcess('readline', ['--json', '--verbose', '--binary', lib]);
    let again: OnPty | undefined;
    try {
      await all.ready('readline');
      again = new OnPty(other);
      assert.match(all.stderr, /is a library: lines from every program/);
      await again.pid("the other program's pid");
      again.type(`${TAG}-any\n`);
      const ev = await all.jsonLine<LineJson>('the line of any program using the library', (e) => e.line === `${TAG}-any`);
      assert.equal(ev.comm, 'rlother');
    } finally {
      await again?.stop();
      await all.kill();
    }
  });
});

describe('readline: lost lines', () => {
  it('a full ring: every line is either printed or counted, in --json records and the stderr total', kernelTest, async () => {
    // The tool is stopped (SIGSTOP) while the lines are typed, so its 4 KiB ring (about 50 of
    // these lines) fills; --pid keeps other shells out.
    const lines = 120;
    const shell = bashOnPty();
    let tool: ToolProcess | undefined;
    try {
      shell.type('echo PID=$$\n');
      const pid = await shell.pid("bash's pid");
      tool = new ToolProcess('readline', ['--json', '--verbose', '--pid', String(pid), '--ringbuf-size', '4K']);
      await tool.ready('readline');
      // The readline() call bash was in when the probe came is not seen (see the usage): one line
      // to end it, so that every line below is read by a call that began with the probe in place.
      shell.type(`echo ${TAG}-ARMED\n`);
      await shell.waitFor(new RegExp(`^${TAG}-ARMED`, 'm'), 'the line that ends the earlier call');
      tool.signal('SIGSTOP');
      let text = '';
      for (let i = 0; i < lines; i++) text += `: ${TAG}-lost-${i}\n`;
      shell.type(`${text}echo ${TAG}-DONE\n`);
      // The last line ran: bash has read every line through readline.
      await shell.waitFor(new RegExp(`^${TAG}-DONE`, 'm'), 'the last line to run', patient(30_000));
      tool.signal('SIGCONT');
      tool.signal('SIGINT');
      assert.deepEqual(await tool.exit(), { code: 0, signal: null }, tool.stderr);
      const records = tool.json<LineJson & { lost?: number; reason?: string }>();
      const seen = records.filter((r) => r.lost === undefined && !r.line.includes('-ARMED'));
      const lost = records.filter((r) => r.lost !== undefined);
      for (const r of seen) assert.equal(r.pid, pid);
      for (const l of lost) assert.deepEqual([Object.keys(l), l.reason], [['time', 'lost', 'reason'], 'ringbuf_full']);
      const lostCount = lost.reduce((a, l) => a + l.lost!, 0);
      assert.ok(seen.length > 0 && lostCount > 0, `some lines fit and some did not: ${seen.length} printed, ${lostCount} lost`);
      assert.equal(seen.length + lostCount, lines + 1, 'printed + counted as lost == lines typed');
      const total = /^readline: (\d+) lines lost in total: the ring buffer was full; try --ringbuf-size 16K \(now 4K\)$/m.exec(tool.stderr);
      assert.ok(total, `a total at exit on stderr:\n${tool.stderr}`);
      assert.equal(Number(total[1]), lostCount);
    } finally {
      tool?.child.kill('SIGCONT');
      await tool?.kill();
      await shell.stop();
    }
  });
});

describe('readline: lifetime and bad input', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} exits 0 and leaves no program or link behind`, kernelTest, async () => {
      const tool = new ToolProcess('readline', ['--verbose']);
      try {
        await tool.ready('readline');
        const ids = tool.ids();
        assert.equal(ids.programs.length, 1, tool.stderr);
        assert.equal(ids.links.length, 1, 'attached through a bpf_link');
        assertAlive(ids);
        tool.signal(sig);
        assert.deepEqual(await tool.exit(), { code: 0, signal: null }, tool.stderr);
        assert.match(tool.stderr, /^readline: detached$/m);
        await assertGone(ids);
      } finally {
        await tool.kill();
      }
    });
  }

  it('not root: names CAP_BPF and CAP_PERFMON and says to run as root (exit 1)', kernelTest, async () => {
    const r = await runTool('readline', [], { uid: 65534, gid: 65534 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^bpfkit readline: readline needs CAP_BPF and CAP_PERFMON \(in practice: root\) .*uid 65534.*sudo npx bpfkit readline\n$/);
  });

  it('an unknown flag is named (exit 2)', async () => {
    const r = await runTool('readline', ['--shell', 'zsh']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^bpfkit readline: unknown option --shell\n/);
  });

  it('--binary that does not exist, or has no readline: says so (exit 2)', kernelTest, async () => {
    const missing = await runTool('readline', ['--binary', join(dir, 'no-bash')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^bpfkit readline: --binary: .*no-bash does not exist or is not executable\n$/);
    const none = await runTool('readline', ['--binary', '/bin/true']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^bpfkit readline: no readline function in \S*true nor in the libraries it loads \(libc\.so\.6[^)]*\).*--binary/);
  });
});
