/**
 * Attaching tracing programs for real: tracepoints, raw tracepoints (with pinning and reopening
 * the link from bpffs), uprobes and uretprobes on a binary compiled here, perf events on a CPU
 * clock. kprobes and the other kernel-function hooks are in link-hooks.test.ts, driven by probes.
 * Every test closes its links and collection and checks the program is then freed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  attach, attachPerfEvent, attachRawTracepoint, attachTracepoint, attachUprobe,
  FdLink, InvalidArgumentError, Link, LinkSet, NotSupportedError, PerfEventLink, resolveBinaryPath, symbolFileOffset,
} from '../../src/index.js';
import { onlineCpus } from '../../src/sys/cpus.js';
import { Collection, CollectionSpec } from '../../src/index.js';
import { attachPerfEventFd } from '../../src/link/link.js';
import { perfEventOpen, PERF_TYPE_TRACEPOINT } from '../../src/sys/perf-event.js';
import { tracepointId } from '../../src/sys/tracefs.js';
import { bpffsDir, kernelTest, obj, ROOT } from '../helpers/index.js';
import { assertProgramGone, count, loadCounters, prog, SLOT, sleep } from '../fixtures/link-env.js';

function runTrue(times: number): void {
  for (let i = 0; i < times; i++) {
    const r = spawnSync('/bin/true');
    assert.equal(r.status, 0);
  }
}

describe('tracepoints', () => {
  it('syscalls/sys_enter_execve counts the processes the test starts', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'tp_execve');
    const id = p.info().id;
    let link: PerfEventLink | undefined;
    try {
      link = attachTracepoint(p, 'syscalls', 'sys_enter_execve');
      assert.equal(link.kind, 'tracepoint');
      const info = link.info();
      if (link.hasBpfLink) {
        assert.equal(info.type, 'perf_event');
        assert.equal(info.perfEvent, 'tracepoint');
      }
      assert.equal(info.progId, id);
      const before = count(coll, SLOT.tpExecve);
      runTrue(3);
      const during = count(coll, SLOT.tpExecve);
      assert.ok(during - before >= 3n, `at least 3 execve calls counted (got ${during - before})`);
      link.close();
      assert.equal(link.closed, true);
      const after = count(coll, SLOT.tpExecve);
      runTrue(2);
      // Other processes on the machine may exec too, but not through a closed link.
      assert.equal(count(coll, SLOT.tpExecve), after, 'nothing is counted after close()');
    } finally {
      link?.close();
      coll.close();
    }
    await assertProgramGone(id);
  });

  it('attach() reads the tracepoint from the section name', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'tp_execve');
    const id = p.info().id;
    try {
      const link = attach(p);
      try {
        const before = count(coll, SLOT.tpExecve);
        runTrue(2);
        assert.ok(count(coll, SLOT.tpExecve) - before >= 2n);
      } finally {
        link.close();
      }
    } finally {
      coll.close();
    }
    await assertProgramGone(id);
  });

  it('Program.attach() and Collection.attachAll() attach by section name', kernelTest, async () => {
    const coll = await loadCounters({ only: ['tp_execve', 'raw_tp_sys_enter'] });
    try {
      const link = prog(coll, 'tp_execve').attach();
      try {
        const before = count(coll, SLOT.tpExecve);
        runTrue(2);
        assert.ok(count(coll, SLOT.tpExecve) - before >= 2n);
      } finally {
        link.close();
      }
      const links = coll.attachAll();
      try {
        assert.equal(links.length, 2);
        const execs = count(coll, SLOT.tpExecve);
        const syscalls = count(coll, SLOT.rawTp);
        runTrue(1);
        assert.ok(count(coll, SLOT.tpExecve) > execs);
        assert.ok(count(coll, SLOT.rawTp) > syscalls);
      } finally {
        for (const l of links) l.close();
      }
    } finally {
      coll.close();
    }
  });

  it('rejects unknown tracepoints and wrong program types with clear errors', kernelTest, async () => {
    const coll = await loadCounters();
    try {
      assert.throws(() => attachTracepoint(prog(coll, 'tp_execve'), 'syscalls', 'sys_enter_no_such_call'),
        (e: unknown) => e instanceof InvalidArgumentError && /syscalls\/sys_enter_no_such_call does not exist/.test(e.message));
      assert.throws(() => attachTracepoint(prog(coll, 'tp_execve'), 'no_such_category', 'x'),
        (e: unknown) => e instanceof InvalidArgumentError && /no category no_such_category/.test(e.message));
      assert.throws(() => attachTracepoint(prog(coll, 'xdp_udp'), 'syscalls', 'sys_enter_execve'),
        (e: unknown) => e instanceof InvalidArgumentError && /needs a tracepoint/.test(e.message));
    } finally {
      coll.close();
    }
  });
});

describe('raw tracepoints', () => {
  it('sys_enter counts system calls; the link pins, reopens from bpffs and detaches on unpin', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'raw_tp_sys_enter');
    const id = p.info().id;
    const dir = bpffsDir('link-rawtp');
    const pinPath = join(dir, 'sys_enter_link');
    let link: FdLink | undefined;
    let reopened: FdLink | undefined;
    try {
      link = attachRawTracepoint(p, 'sys_enter');
      const info = link.info();
      assert.equal(info.type, 'raw_tracepoint');
      assert.equal(info.tracepoint, 'sys_enter');
      assert.equal(info.progId, id);
      const a = count(coll, SLOT.rawTp);
      runTrue(1);
      const b = count(coll, SLOT.rawTp);
      assert.ok(b > a, 'system calls are counted');

      link.pin(pinPath);
      assert.equal(link.pinnedPath, pinPath);
      reopened = Link.fromPinned(pinPath);
      assert.equal(reopened.kind, 'raw_tracepoint');
      assert.equal(reopened.info().id, info.id, 'the pin holds the same link');
      const byId = Link.fromId(info.id);
      assert.equal(byId.info().progId, id);
      byId.close();

      // Closing the original fd does not detach: the pin keeps the link.
      link.close();
      const c = count(coll, SLOT.rawTp);
      runTrue(1);
      assert.ok(count(coll, SLOT.rawTp) > c, 'still counting while pinned');

      reopened.unpin();
      assert.equal(existsSync(pinPath), false);
      reopened.close();
      const d = count(coll, SLOT.rawTp);
      await sleep(20);
      runTrue(1);
      assert.equal(count(coll, SLOT.rawTp), d, 'detached once unpinned and closed');
    } finally {
      link?.close();
      reopened?.unpin();
      reopened?.close();
      coll.close();
      rmSync(pinPath, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(existsSync(dir), false, 'the bpffs test directory is removed');
    await assertProgramGone(id);
  });

  it('attach() uses the section name, and a missing tracepoint is ENOENT with a hint', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'raw_tp_sys_enter');
    try {
      const link = attach(p);
      try {
        assert.equal(link.info().type, 'raw_tracepoint');
      } finally {
        link.close();
      }
      assert.throws(() => attachRawTracepoint(p, 'no_such_raw_tp'), (e: unknown) =>
        (e as { code?: string }).code === 'ENOENT' && /no tracepoint named no_such_raw_tp/.test((e as Error).message));
    } finally {
      coll.close();
    }
  });
});

describe('tp_btf', () => {
  it('a tp_btf program (target fixed at load) attaches with a null raw tracepoint name', kernelTest, async () => {
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('progtypes')));
    const p = coll.programs.get('tp_btf_exec')!;
    const id = p.info().id;
    const hits = () => {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, 6, true); // HIT_TP_BTF, see test/bpf/README.md
      const v = coll.maps.get('hits')!.lookupBytes(key)!;
      return new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
    };
    try {
      const link = attachRawTracepoint(p, null);
      try {
        // The kernel makes tp_btf attachments raw tracepoint links.
        assert.equal(link.info().type, 'raw_tracepoint');
        assert.equal(link.info().tracepoint, 'sched_process_exec');
        const before = hits();
        runTrue(2);
        assert.ok(hits() - before >= 2n, 'sched_process_exec fired for the 2 execs');
      } finally {
        link.close();
      }
      const link2 = attach(p);
      link2.close();
    } finally {
      coll.close();
    }
    await assertProgramGone(id);
  });
});

describe('perf event attachment without a bpf_link', () => {
  it('PERF_EVENT_IOC_SET_BPF (the pre-5.15 path) counts too, and cannot be pinned', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'tp_execve');
    const id = p.info().id;
    try {
      const tp = tracepointId('syscalls', 'sys_enter_execve');
      const perf = perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: tp, samplePeriod: 1, wakeupEvents: 1 }, -1, 0, -1, undefined, 'test tracepoint');
      const link = attachPerfEventFd(p, perf, 'tracepoint', { forceIoctl: true });
      try {
        assert.equal(link.hasBpfLink, false);
        assert.equal(link.fd, undefined);
        assert.equal(link.info().progId, id);
        assert.throws(() => link.pin('/sys/fs/bpf/never'), NotSupportedError);
        const before = count(coll, SLOT.tpExecve);
        runTrue(2);
        assert.ok(count(coll, SLOT.tpExecve) - before >= 2n);
      } finally {
        link.close();
      }
      const after = count(coll, SLOT.tpExecve);
      runTrue(1);
      assert.equal(count(coll, SLOT.tpExecve), after);
    } finally {
      coll.close();
    }
    await assertProgramGone(id);
  });
});

describe('uprobes', () => {
  function buildTarget(): { dir: string; bin: string } {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-uprobe-'));
    const bin = join(dir, 'uprobe_target');
    const r = spawnSync('cc', ['-O1', '-o', bin, join(ROOT, 'test', 'fixtures', 'uprobe_target.c')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `cc failed: ${r.stderr}`);
    return { dir, bin };
  }

  it('uprobe and uretprobe count every call of a function and see its argument and result', kernelTest, async () => {
    const { dir, bin } = buildTarget();
    const coll = await loadCounters();
    const up = prog(coll, 'uprobe_count');
    const ret = prog(coll, 'uretprobe_count');
    const ids = [up.info().id, ret.info().id];
    const links: PerfEventLink[] = [];
    try {
      assert.ok(symbolFileOffset(bin, 'bpfkit_uprobe_target') > 0);
      links.push(attachUprobe(up, bin, 'bpfkit_uprobe_target'));
      links.push(attachUprobe(ret, bin, 'bpfkit_uprobe_target', { retprobe: true }));
      assert.equal(links[0]!.kind, 'uprobe');
      assert.equal(links[1]!.kind, 'uretprobe');
      if (links[0]!.hasBpfLink) assert.equal(links[0]!.info().perfEvent, 'uprobe');
      const n = 7;
      const r = spawnSync(bin, [String(n)], { encoding: 'utf8' });
      assert.equal(r.status, 0);
      assert.equal(r.stdout.trim(), String(n * (n + 1) + n));
      assert.equal(count(coll, SLOT.uprobe), BigInt(n));
      assert.equal(count(coll, SLOT.uretprobe), BigInt(n));
      assert.equal(count(coll, SLOT.uprobeArgSum), BigInt((n * (n + 1)) / 2), 'sum of the arguments 1..n');
      assert.equal(count(coll, SLOT.uretprobeRetSum), BigInt(n * (n + 1) + n), 'sum of the results 2x+1');
      for (const l of links) l.close();
      spawnSync(bin, ['3']);
      assert.equal(count(coll, SLOT.uprobe), BigInt(n), 'nothing counted after close');
      assert.equal(count(coll, SLOT.uretprobe), BigInt(n));
    } finally {
      for (const l of links) l.close();
      coll.close();
      rmSync(dir, { recursive: true, force: true });
    }
    for (const id of ids) await assertProgramGone(id);
  });

  it('a pid filter counts only that process', kernelTest, async () => {
    const { dir, bin } = buildTarget();
    const coll = await loadCounters();
    const up = prog(coll, 'uprobe_count');
    let link: PerfEventLink | undefined;
    const waiting = spawn(bin, ['4', 'wait'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const exited = new Promise<number | null>((r) => waiting.once('exit', (c) => r(c)));
      link = attachUprobe(up, bin, 'bpfkit_uprobe_target', { pid: waiting.pid! });
      // Another process running the same binary is not counted.
      assert.equal(spawnSync(bin, ['5']).status, 0);
      assert.equal(count(coll, SLOT.uprobe), 0n);
      waiting.stdin!.end('go\n');
      assert.equal(await exited, 0);
      assert.equal(count(coll, SLOT.uprobe), 4n);
    } finally {
      link?.close();
      if (waiting.exitCode === null) waiting.kill('SIGKILL');
      coll.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('attach() takes the binary from the section or the options; bad symbols and paths are explained', kernelTest, async () => {
    const { dir, bin } = buildTarget();
    const coll = await loadCounters();
    const up = prog(coll, 'uprobe_count');
    try {
      const link = attach(up, { binary: bin, symbol: 'bpfkit_uprobe_target' });
      try {
        spawnSync(bin, ['2']);
        assert.equal(count(coll, SLOT.uprobe), 2n);
      } finally {
        link.close();
      }
      assert.throws(() => attachUprobe(up, bin, 'no_such_function'),
        (e: unknown) => e instanceof InvalidArgumentError && /no function no_such_function in/.test(e.message));
      assert.throws(() => attachUprobe(up, 'bpfkit-no-such-binary', 'main'),
        (e: unknown) => e instanceof InvalidArgumentError && /not found in PATH/.test(e.message));
      // A bare program name is looked up in PATH, a bare library name in the library directories.
      assert.match(resolveBinaryPath('sh'), /^\/.*\/sh$/);
      const libc = attachUprobe(up, 'libc.so.6', 'malloc');
      libc.close();
    } finally {
      coll.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('perf events', () => {
  it('a perf_event program samples a software CPU clock on every online CPU', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'perf_count');
    const id = p.info().id;
    let link: LinkSet | undefined;
    try {
      const l = attachPerfEvent(p, { type: 'software', config: 'cpu-clock', frequency: 1000 });
      assert.ok(l instanceof LinkSet);
      link = l;
      assert.equal(link.links.length, onlineCpus().length);
      const end = Date.now() + 300;
      let x = 0;
      while (Date.now() < end) x += Math.sqrt(x + 1);
      assert.ok(x > 0);
      const n = count(coll, SLOT.perf);
      assert.ok(n > 0n, `samples counted (got ${n})`);
      link.close();
      const after = count(coll, SLOT.perf);
      await sleep(50);
      assert.equal(count(coll, SLOT.perf), after, 'no samples after close');
    } finally {
      link?.close();
      coll.close();
    }
    await assertProgramGone(id);
  });

  it('one CPU gives one link; bad event names are explained', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'perf_count');
    try {
      const l = attachPerfEvent(p, { type: 'software', config: 'cpu-clock', samplePeriod: 1_000_000, cpu: 0 });
      assert.ok(l instanceof PerfEventLink);
      l.close();
      assert.throws(() => attachPerfEvent(p, { type: 'software', config: 'no-such' as never }),
        (e: unknown) => e instanceof InvalidArgumentError && /unknown software perf event "no-such"/.test(e.message));
    } finally {
      coll.close();
    }
  });
});
