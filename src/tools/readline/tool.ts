/**
 * One readline session: check privileges, find bash and its readline (locate.ts), load the
 * program and attach it as a uretprobe there, print each line until the signal aborts, and close
 * everything (the link first) on the way out.
 *
 * When readline lives in a shared library, every program that uses the library runs the probe;
 * only lines from processes that run the traced bash are printed then (checked through
 * /proc/<pid>/exe, or, for a process already gone, its command name).
 */
import { basename } from 'node:path';
import { attachUprobe, type PerfEventLink, RingBufReader, InvalidArgumentError, readDrops } from '../../index.js';
import { DropReporter, formatSize, RINGBUF_SIZE_MAX } from '../common/drops.js';
import { readUntilAborted } from '../common/events.js';
import { monotonicToDate } from '../common/format.js';
import { requireTracingPrivileges } from '../common/privileges.js';
import type { ToolIO } from '../common/runtime.js';
import { decodeLineRecord, jsonLine, tableHeader, tableRow, toLineRecord, type LineRecord } from './event.js';
import { loadReadline } from './gen/readline.js';
import { findProgram } from '../../elf/index.js';
import { locateReadline, looksLikeLibrary, runsProgram, type ReadlineTarget } from './locate.js';
import type { ReadlineOptions } from './options.js';

/** Where to attach for these options. */
export function resolveTarget(options: ReadlineOptions, path = process.env['PATH']): ReadlineTarget {
  if (options.binary !== undefined && looksLikeLibrary(options.binary)) {
    return {
      program: undefined, file: options.binary, inProgram: false,
      how: `--binary ${options.binary} is a library: lines from every program that calls its readline`,
    };
  }
  const name = options.binary ?? 'bash';
  const found = findProgram(name, path);
  if (!found) {
    throw new InvalidArgumentError(options.binary !== undefined
      ? `--binary: ${options.binary} does not exist or is not executable`
      : `bash was not found in PATH (${path ?? ''}): point --binary at it`);
  }
  return locateReadline(found);
}

/**
 * Keeps the lines of processes running `program`, remembering each pid's answer for a while (a
 * shell asks readline for many lines; a pid reused by another program is seen after ttlMs).
 */
export class ProgramFilter {
  readonly #program: string;
  readonly #comm: string;
  readonly #ttlMs: number;
  readonly #seen = new Map<number, { ok: boolean; at: number }>();

  constructor(program: string, ttlMs = 10_000) {
    this.#program = program;
    this.#comm = basename(program).slice(0, 15);
    this.#ttlMs = ttlMs;
  }

  accepts(r: LineRecord, now = Date.now()): boolean {
    const hit = this.#seen.get(r.pid);
    if (hit && now - hit.at < this.#ttlMs) return hit.ok;
    const ok = runsProgram(r.pid, this.#program) ?? r.comm === this.#comm;
    if (this.#seen.size > 4096) this.#seen.clear();
    this.#seen.set(r.pid, { ok, at: now });
    return ok;
  }
}

export interface ReadlineSessionEvents {
  /** Called once the uretprobe is attached, before the first line. */
  readonly onReady?: (info: { target: ReadlineTarget; programId: number; linkId: number | undefined }) => void;
}

/** What the drop reports say, for a ring of `size` bytes. */
function dropReasons(size: number): { name: string; why: string; hint?: string }[] {
  const bigger = Math.min(size * 4, RINGBUF_SIZE_MAX);
  return [{
    name: 'ringbuf_full', why: 'the ring buffer was full',
    ...(bigger > size ? { hint: `try --ringbuf-size ${formatSize(bigger)} (now ${formatSize(size)})` } : {}),
  }];
}

export async function runReadlineSession(options: ReadlineOptions, io: ToolIO, signal: AbortSignal, events: ReadlineSessionEvents = {}): Promise<void> {
  requireTracingPrivileges('readline', "to load its program and attach it to bash's readline");
  const target = resolveTarget(options);
  if (signal.aborted) return;
  const objects = await loadReadline(options.ringbufSize !== undefined ? { maxEntries: { events: options.ringbufSize } } : {});
  let link: PerfEventLink | undefined;
  let reader: RingBufReader<Uint8Array> | undefined;
  let drops: DropReporter | undefined;
  try {
    const prog = objects.programs.uretprobeReadline;
    link = attachUprobe(prog, target.file, 'readline', { retprobe: true, ...(options.pid !== undefined ? { pid: options.pid } : {}) });
    const programId = prog.info().id;
    const id = link.info().id;
    const linkId = id > 0 ? id : undefined;
    if (options.verbose) {
      io.err(`readline: ${target.how}\n`);
      io.err(`readline: attached uretprobe ${target.file}:readline${options.pid !== undefined ? ` (pid ${options.pid})` : ''}: program uretprobe_readline (id ${programId}), link ${linkId !== undefined ? `id ${linkId}` : '(perf event ioctl, no bpf_link)'}\n`);
    }
    const filter = target.inProgram || target.program === undefined ? undefined : new ProgramFilter(target.program);
    reader = new RingBufReader(objects.maps.events);
    if (!options.json) io.out(tableHeader());
    const dropped = objects.maps.dropped;
    drops = new DropReporter('readline', 'lines', dropReasons(objects.maps.events.maxEntries), () => ({ ringbuf_full: readDrops(dropped) }), io, options.json);
    const report = drops;
    await readUntilAborted(reader, signal, {
      checkDrops: () => report.check(),
      onReady: () => {
        events.onReady?.({ target, programId, linkId });
        if (options.verbose) io.err(`readline: ready: waiting for lines typed into ${target.program ?? target.file} (Ctrl-C to stop)\n`);
      },
      onRecord: (raw) => {
        const e = decodeLineRecord(raw);
        const record = toLineRecord(e, monotonicToDate(e.ktime_ns));
        if (filter && !filter.accepts(record)) return;
        io.out(options.json ? jsonLine(record) : tableRow(record));
      },
    });
  } finally {
    reader?.close();
    try {
      link?.close();
      // The last counts, read before the maps go: drops since the last check, then the totals.
      drops?.check();
    } finally {
      drops?.summary();
      objects.close();
    }
    if (options.verbose) io.err('readline: detached\n');
  }
}
