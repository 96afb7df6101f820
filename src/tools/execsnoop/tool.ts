/**
 * One execsnoop session: check privileges, load and attach (hooks.ts), print each event from the
 * ring buffer until the signal aborts, report events the kernel could not deliver, and close
 * everything (links first) on the way out.
 */
import { RingBufReader } from '../../index.js';
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

function sumStats(hooked: Hooked): { dropped: bigint; inflightFull: bigint } {
  const perCpu = hooked.objects.maps.stats.lookup(0) ?? [];
  let dropped = 0n;
  let inflightFull = 0n;
  for (const s of perCpu) {
    dropped += s.dropped;
    inflightFull += s.inflight_full;
  }
  return { dropped, inflightFull };
}

export async function runExecsnoopSession(options: ExecsnoopOptions, io: ToolIO, signal: AbortSignal, events: ExecsnoopSessionEvents = {}): Promise<void> {
  for (const n of options.notes) io.err(`execsnoop: ${n}\n`);
  requireTracingPrivileges('execsnoop', 'to load its programs and attach them to execve');
  if (signal.aborted) return;
  const hooked = await hookExec(options.hook, options.ret, rodataFor(options));
  let reader: RingBufReader<Uint8Array> | undefined;
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
    let reported = { dropped: 0n, inflightFull: 0n };
    await readUntilAborted(reader, signal, {
      checkDrops: () => {
        const now = sumStats(hooked);
        if (now.dropped > reported.dropped) {
          io.err(`execsnoop: ${now.dropped - reported.dropped} events lost: the ring buffer was full (output is not keeping up)\n`);
        }
        if (now.inflightFull > reported.inflightFull) {
          io.err(`execsnoop: ${now.inflightFull - reported.inflightFull} events lost: too many execs waiting for their return value\n`);
        }
        reported = now;
      },
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
    hooked.close();
    if (options.verbose) io.err('execsnoop: detached\n');
  }
}
