/**
 * Where a map, program or link is pinned in bpffs, and the pin/unpin calls that keep it known: one
 * home for the objects that can be pinned.
 */
import { unpinPath } from './bpffs.js';
import { objPin } from './sys/bpf.js';

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
