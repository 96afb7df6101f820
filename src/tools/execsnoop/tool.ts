/**
 * One execsnoop session: check privileges, load and attach (hooks.ts), print each event from the
 * ring buffer until the signal aborts, report events the kernel could not deliver, and close
 * everything (links first) on the way out.
 */
import { RingBufReader } from '../../index.js';
import { DropReporter, formatSize, RINGBUF_SIZE_MAX } from '../common/drops.js';
import { readUntilAborted } from '../common/events.js';
import { monotonicToDate } from '../common/format.js';
import { requireTracingPrivileges } from '../common/privileges.js';
import type { ToolIO } from '../common/runtime.js';
import type { ExecsnoopRodata } from './gen/execsnoop.js';
import { decodeRecord, jsonLine, tableHeader, tableRow, toRecord, type FormatOptions } from './event.js';
import { hookExec, type Hooked } from './hooks.js';
import type { ExecsnoopOptions } from './options.js';

/** The .rodata settings of bpf/execsnoop.bpf.c for these options. */
export function rodataFor(o: ExecsnoopOptions): Partial<ExecsnoopRodata> {
  const comm = new Uint8Array(16);
  if (o.comm !== undefined) comm.set(new TextEncoder().encode(o.comm).subarray(0, 15));
  return {
    wantRet: o.ret ? 1 : 0,
    traceThreads: o.threads ? 1 : 0,
    filterPid: o.pid ?? 0,
    filterUidOn: o.uid !== undefined ? 1 : 0,
    filterUid: o.uid ?? 0,
    filterCommOn: o.comm !== undefined ? 1 : 0,
    filterComm: comm,
  };
}

export interface ExecsnoopSessionEvents {
  /** Called once everything is attached, before the first event. */
  readonly onReady?: (hooked: Hooked) => void;
}

/** The kernel side's drop counters (struct exec_stats per CPU), summed, by reason. */
function sumStats(hooked: Hooked): Record<string, bigint> {
  const perCpu = hooked.objects.maps.stats.lookup(0) ?? [];
  let dropped = 0n;
  let inflightFull = 0n;
  for (const s of perCpu) {
    dropped += s.dropped;
    inflightFull += s.inflight_full;
  }
  return { ringbuf_full: dropped, inflight_full: inflightFull };
}

/** What the drop reports say, for a ring of `size` bytes. */
function dropReasons(size: number): { name: string; why: string; hint?: string }[] {
  const bigger = Math.min(size * 4, RINGBUF_SIZE_MAX);
  return [
    {
      name: 'ringbuf_full', why: 'the ring buffer was full (output is not keeping up)',
      ...(bigger > size ? { hint: `try --ringbuf-size ${formatSize(bigger)} (now ${formatSize(size)}), or filter with --comm, --pid or --uid` } : { hint: 'filter with --comm, --pid or --uid' }),
    },
    { name: 'inflight_full', why: 'too many execs waiting for their return value', hint: 'filter with --comm, --pid or --uid' },
  ];
}

export async function runExecsnoopSession(options: ExecsnoopOptions, io: ToolIO, signal: AbortSignal, events: ExecsnoopSessionEvents = {}): Promise<void> {
  for (const n of options.notes) io.err(`execsnoop: ${n}\n`);
  requireTracingPrivileges('execsnoop', 'to load its programs and attach them to execve');
  if (signal.aborted) return;
  const hooked = await hookExec(options.hook, options.ret, rodataFor(options), options.ringbufSize);
  let reader: RingBufReader<Uint8Array> | undefined;
  let drops: DropReporter | undefined;
  try {
    if (options.verbose) {
      for (const n of hooked.notes) io.err(`execsnoop: ${n}\n`);
      for (const a of hooked.attachments) {
        io.err(`execsnoop: attached ${a.hook}: program ${a.program} (id ${a.programId}), link ${a.linkId !== undefined ? `id ${a.linkId}` : '(perf event ioctl, no bpf_link)'}\n`);
      }
    }
    reader = new RingBufReader(hooked.objects.maps.events);
    const fmt: FormatOptions = { ret: options.ret, threads: options.threads };
    if (!options.json) io.out(tableHeader(fmt));
    drops = new DropReporter('execsnoop', 'events', dropReasons(hooked.objects.maps.events.maxEntries), () => sumStats(hooked), io, options.json);
    const report = drops;
    await readUntilAborted(reader, signal, {
      checkDrops: () => report.check(),
      onReady: () => {
        events.onReady?.(hooked);
        if (options.verbose) io.err(`execsnoop: ready: tracing exec calls with ${hooked.kind === 'kprobe' ? 'kprobes' : 'tracepoints'} (Ctrl-C to stop)\n`);
      },
      onRecord: (raw) => {
        const e = decodeRecord(raw);
        const record = toRecord(e, monotonicToDate(e.ktime_ns));
        io.out(options.json ? jsonLine(record, fmt) : tableRow(record, fmt));
      },
    });
  } finally {
    reader?.close();
    // The last counts, read before the maps go: drops since the last check, then the totals.
    try {
      drops?.check();
    } finally {
      drops?.summary();
      hooked.close();
    }
    if (options.verbose) io.err('execsnoop: detached\n');
  }
}
