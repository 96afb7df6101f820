/**
 * The one module that imports the native addon. Everything else asks `native()` for the syscall
 * interface, so unit tests (and the emulated kernel of bpfkit/testing) can install a fake with
 * `setNative()` and run without root, a kernel, or the addon.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfkitError } from '../errors.js';

/**
 * Pointer fields to fill just before a call, as triples [holder, byteOffset, buffer, ...]: the
 * address of `buffer` goes at `byteOffset` of `holder` (null: the attribute buffer itself).
 */
export type PointerRefs = (number | ArrayBufferView | null)[];

/** A libuv poll handle on an fd, as the addon's (or the emulator's) `Poller` makes it; each call returns 0 or a negative errno. */
export interface NativePoller {
  /** Start watching; events is a mask of UV_READABLE / UV_WRITABLE / UV_PRIORITIZED. */
  start(events: number): number;
  stop(): number;
  /** Whether this poller keeps the event loop (and so the process) alive. */
  ref(on: boolean): number;
  close(): number;
}

/** Every call returns a non-negative result or a negative errno. */
export interface Native {
  bpf(cmd: number, attr: Uint8Array, refs?: PointerRefs): number;
  /**
   * The per-element map commands (LOOKUP, UPDATE, DELETE, GET_NEXT_KEY, LOOKUP_AND_DELETE) with
   * the attr built natively: the hot path of map access. Optional: without it they go through bpf().
   */
  mapElem?(cmd: number, fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number): number;
  /**
   * One step of a map walk in one call: GET_NEXT_KEY (`prev` null: the first key) into `next`, then
   * LOOKUP of `next` into `value`. 0, or the next-key call's -errno, or -(4096 + errno) when the
   * lookup failed. Optional: without it the walk makes two mapElem calls.
   */
  mapNextLookup?(fd: number, prev: ArrayBufferView | null, next: ArrayBufferView, value: ArrayBufferView): number;
  /**
   * Binds a map's own key and value buffers (null for none) once, for mapOp: the per-element
   * commands then pass no buffers per call. The binding keeps both buffers alive. Optional, with mapOp.
   */
  mapBind?(fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null): unknown;
  /** A per-element map command (as mapElem) on the buffers of a binding from mapBind. */
  mapOp?(binding: unknown, cmd: number, flags: number): number;
  perfEventOpen(attr: Uint8Array, refs: PointerRefs | null, pid: number, cpu: number, groupFd: number, flags: number): number;
  ioctl(fd: number, request: number, arg?: number | ArrayBufferView): number;
  close(fd: number): number;
  /** An ArrayBuffer over the mapped memory, or a negative errno. */
  mmap(fd: number, length: number, prot: number, flags: number, offset: number): ArrayBuffer | number;
  munmap(buffer: ArrayBuffer): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, sockaddr: Uint8Array): number;
  connect(fd: number, sockaddr: Uint8Array): number;
  sendto(fd: number, buf: ArrayBufferView, flags: number, sockaddr?: Uint8Array | null): number;
  recv(fd: number, buf: ArrayBufferView, flags: number): number;
  setsockopt(fd: number, level: number, name: number, value: ArrayBufferView): number;
  getsockopt(fd: number, level: number, name: number, out: ArrayBufferView): number;
  getrlimit(resource: number): [bigint, bigint] | number;
  setrlimit(resource: number, cur: bigint, max: bigint): number;
  strerror(errno: number): string;
  Poller: new (fd: number, callback: (status: number, events: number) => void) => NativePoller;
  /**
   * Optional, for emulated kernels (bpfkit/testing): the machine facts and bpffs operations the
   * library otherwise takes from the real filesystem.
   */
  possibleCpus?(): number;
  onlineCpus?(): number[];
  bpffsMounts?(): string[];
  /** unlink(2) of a pin: 0 or -errno. */
  unlink?(path: string): number;
  exists?(path: string): boolean;
  constants: {
    PROT_READ: number; PROT_WRITE: number; MAP_SHARED: number; PAGE_SIZE: number;
    UV_READABLE: number; UV_WRITABLE: number; UV_PRIORITIZED: number; RLIMIT_MEMLOCK: number;
    NR_CPUS_ONLINE: number;
  };
}

let current: Native | undefined;

/** The directory holding bpfkit's package.json and binding.gyp: two levels above dist/src/sys/native.js. */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

/** This machine as the prebuilds are named: said in the error when nothing loads. */
function target(): string {
  const libc = existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  return `${process.platform}-${process.arch} (${libc}, Node ${process.versions.node})`;
}

const rebuildHint =
  'run `npm rebuild bpfkit --build-from-source` (needs python3, make, a C compiler and Node\'s headers); ' +
  'code that needs no kernel can run on bpfkit/testing\'s emulated kernel';

/**
 * Loads the addon as node-gyp-build selects it: a local build (build/Release: a source build at
 * install, or a checkout's `npm ci`) first, else the prebuild for this platform, architecture and
 * libc in prebuilds/. Only the first syscall calls this, so what needs no kernel (spec parsing,
 * gen, inspect, btf dump, bpfkit/testing) works on machines where no addon loads.
 */
function loadAddon(): Native {
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  if (!root) {
    throw new BpfkitError('ERR_BPFKIT_NO_ADDON', `bpfkit's package directory (with binding.gyp) was not found above ${fileURLToPath(import.meta.url)}: reinstall bpfkit`);
  }
  let path: string;
  try {
    const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    path = gypBuild.resolve(root);
  } catch {
    throw new BpfkitError(
      'ERR_BPFKIT_NO_ADDON',
      `bpfkit's native addon has no prebuild for ${target()} and was not built at install: ${rebuildHint}`,
    );
  }
  try {
    return require(path) as Native;
  } catch (e) {
    const why = ((e as Error).message ?? String(e)).split('\n')[0];
    throw new BpfkitError('ERR_BPFKIT_NO_ADDON', `bpfkit's native addon ${path} does not load on ${target()} (${why}): ${rebuildHint}`);
  }
}

/** The syscall interface: the fake if one is installed, else the native addon (loaded once). */
export function native(): Native {
  if (current) return current;
  current = loadAddon();
  return current;
}

/** The installed syscall interface without loading the addon: a fake, the addon once loaded, or undefined. */
export function installedNative(): Native | undefined {
  return current;
}

/** Replace the syscall interface (tests, emulation). Returns the previous one, or undefined. */
export function setNative(fake: Native | undefined): Native | undefined {
  const prev = current;
  current = fake;
  return prev;
}
