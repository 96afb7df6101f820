/**
 * Events from a tracing tool's ring buffer: records the kernel side sent cut short (only the used
 * part of a trailing array) decoded as the whole struct, and the loop that reads them until the
 * tool is stopped while watching the kernel side's drop counters.
 */

import type { RecordBatch } from '../../index.js';

/**
 * A decoder for records that hold a struct of `size` bytes cut after its used part (at least its
 * first `headerSize` bytes): each record is copied into a zeroed struct-sized buffer, which
 * `decode` reads. The buffer is reused from one record to the next.
 */
export function paddedDecoder<T>(tool: string, size: number, headerSize: number, decode: (struct: Uint8Array) => T): (record: Uint8Array) => T {
  const full = new Uint8Array(size);
  return (record) => {
    if (record.length < headerSize) throw new RangeError(`${tool}: a record of ${record.length} bytes is shorter than the event header (${headerSize})`);
    const n = Math.min(record.length, size);
    full.set(record.subarray(0, n));
    full.fill(0, n);
    return decode(full);
  };
}

/** A ring buffer reader, as the tools use it: batches of records until it is closed. */
export interface RecordSource {
  batches(): AsyncIterableIterator<RecordBatch>;
  close(): void;
  readonly closed: boolean;
}

export interface ReadLoop {
  /** Once the loop is set up, before the first record. */
  readonly onReady?: () => void;
  readonly onRecord: (record: Uint8Array) => void;
  /** Reads the kernel side's drop counters and reports what is new; every second, and once at the end. */
  readonly checkDrops: () => void;
}

/** How often the drop counters are read. */
export const DROP_CHECK_MS = 1000;

/**
 * Hands each record of `reader` to `loop.onRecord` until `signal` aborts (which closes the
 * reader), checking for drops every DROP_CHECK_MS and once more when the records end.
 */
export async function readUntilAborted(reader: RecordSource, signal: AbortSignal, loop: ReadLoop): Promise<void> {
  const onAbort = (): void => reader.close();
  const timer = setInterval(loop.checkDrops, DROP_CHECK_MS);
  timer.unref();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    loop.onReady?.();
    if (signal.aborted) return;
    // A batch at a time (one promise per batch); each record is handed over as a view into the
    // ring, valid during the call. Stopping closes the reader, which unmaps the ring: no record
    // of the batch is touched after that.
    read: for await (const batch of reader.batches()) {
      const { data, offsets, lengths } = batch;
      for (let i = 0; i < batch.count; i++) {
        loop.onRecord(data.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
        if (signal.aborted || reader.closed) break read;
      }
    }
    loop.checkDrops();
  } finally {
    signal.removeEventListener('abort', onAbort);
    clearInterval(timer);
  }
}
