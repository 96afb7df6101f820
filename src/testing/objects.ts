/**
 * What the emulated kernel's objects share: a reference count (file descriptors, pins, and other
 * objects holding them, as the kernel counts them) and the services maps need from the kernel to
 * turn file descriptors in values (prog arrays, maps of maps, perf event arrays) into objects.
 */
import type { KernelBehaviour } from './version.js';

/** What an emulated kernel object is: the kinds an fd of the emulator can refer to. */
export type ObjectKind = 'map' | 'prog' | 'btf' | 'perf_event' | 'stats';

/** An object the emulated kernel holds (a map, program, BTF, perf event, stats fd), counted by its references. */
export interface KernelObject {
  readonly kind: ObjectKind;
  /** The kernel's id for the object (0 for kinds without ids). */
  id: number;
  /** References: open fds, pins, and slots of other objects that hold this one. */
  refs: number;
  /** Called once when the last reference goes: drop the references this object holds. */
  dispose(): void;
}

/** What emulated objects need from the kernel that holds them: its CPUs, its release, and its fd table. */
export interface ObjectHost {
  /** Possible CPUs: the number of values in a per-CPU map. */
  readonly cpus: number;
  /** What the imitated release does where releases differ. */
  readonly behaviour: KernelBehaviour;
  /** The object behind an fd of this process, or undefined when the fd is not open. */
  objectOfFd(fd: number): KernelObject | undefined;
  acquire(obj: KernelObject): void;
  release(obj: KernelObject): void;
}
