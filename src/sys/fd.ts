/**
 * An owned file descriptor. Closing is idempotent; a descriptor whose owner is garbage-collected
 * without close() is closed by a FinalizationRegistry, so a forgotten map does not hold kernel
 * memory for the life of the process.
 */
import { ClosedError } from '../errors.js';
import { native } from './native.js';

const leaked = new FinalizationRegistry<number>((fd) => {
  try { native().close(fd); } catch { /* process is going away */ }
});

/**
 * An owned file descriptor of a bpfkit object (map, program, link): `value` is the number the kernel
 * gave, `close()` releases it once.
 */
export class FD {
  #fd: number;
  readonly #what: string;

  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
    leaked.register(this, fd, this);
  }

  /** The raw descriptor; throws ClosedError after close(). */
  get value(): number {
    if (this.#fd < 0) throw new ClosedError(this.#what);
    return this.#fd;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Closes the descriptor; later calls do nothing. */
  close(): void {
    if (this.#fd < 0) return;
    leaked.unregister(this);
    native().close(this.#fd);
    this.#fd = -1;
  }
}
