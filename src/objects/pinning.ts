/**
 * Where a map, program or link is pinned in bpffs, and the pin/unpin calls that keep it known: one
 * home for the objects that can be pinned.
 */
import { unpinPath } from '../sys/bpffs.js';
import { objPin } from '../sys/bpf.js';
import type { FD } from '../sys/fd.js';

export class Pinning {
  #at: string | undefined;

  constructor(at?: string) {
    this.#at = at;
  }

  /** The path of the last pin made (or the one the object was opened from). */
  get path(): string | undefined {
    return this.#at;
  }

  pin(fd: number, path: string): void {
    objPin(fd, path);
    this.#at = path;
  }

  /** Removes `path`, or the known pin; forgets the known pin when that is the one removed. */
  unpin(path?: string): void {
    const p = path ?? this.#at;
    if (!p) return;
    unpinPath(p);
    if (p === this.#at) this.#at = undefined;
  }
}

/**
 * A kernel object held by an fd that can be pinned (maps, programs, bpf_links): the fd, the pin
 * and closing, written once for all of them.
 */
export abstract class PinnableFd implements Disposable {
  readonly #fd: FD;
  readonly #pinning: Pinning;

  /** Takes ownership of `fd`; `pinnedAt` when it was opened from a pin. */
  protected constructor(fd: FD, pinnedAt?: string) {
    this.#fd = fd;
    this.#pinning = new Pinning(pinnedAt);
  }

  /** The file descriptor (throws after close()). */
  get fd(): number {
    return this.#fd.value;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  /** Pins the object in bpffs (BPF_OBJ_PIN) so it outlives this process. */
  pin(path: string): void {
    this.#pinning.pin(this.#fd.value, path);
  }

  /** Removes the pin made by pin() (or the given path). */
  unpin(path?: string): void {
    this.#pinning.unpin(path);
  }

  /** The path of the last pin made (or the one the object was opened from). */
  get pinnedPath(): string | undefined {
    return this.#pinning.path;
  }

  close(): void {
    this.#fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
