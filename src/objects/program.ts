/**
 * A BPF program loaded in the kernel: run it with BPF_PROG_TEST_RUN, read what the kernel says
 * about it, pin it. Attaching lives in the link modules.
 */
import { BpfkitError, BpfSyscallError, InvalidArgumentError } from '../errors.js';
import { getFdById, objGet, progTestRun } from '../sys/bpf.js';
import type { AttachType, ProgType } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { PinnableFd } from './pinning.js';
import type { AttachOptions } from '../link/attach.js';
import type { Link } from '../link/link.js';
import { readProgramInfo, readTranslatedInstructions, type ProgramInfo } from './program-info.js';
import { disassembleInstructions, disassembleLoaded, type AppliedCoreRelocation } from '../asm/disasm.js';
import type { ProgramSpec } from '../spec/program-spec.js';

export { readProgramInfo, type ProgramInfo } from './program-info.js';

/**
 * Program.attach() finds the attach code through this hook, which link/attach.ts sets when it
 * loads: live objects do not import the attach layer, which builds on them.
 */
let attachByKind: ((prog: Program, options: AttachOptions) => Link) | undefined;

/** Called once by link/attach.ts. */
export function setAttachByKind(fn: (prog: Program, options: AttachOptions) => Link): void {
  attachByKind = fn;
}

/**
 * Input of {@link Program.testRun} (BPF_PROG_TEST_RUN): packet data and/or a context, and how
 * often to run.
 */
export interface TestRunOptions {
  /** Packet data in (XDP, tc, socket filter, cgroup_skb, flow dissector, ...). */
  data?: Uint8Array;
  /** Room for packet data out; defaults to the input size plus 256 bytes of headroom. */
  dataSizeOut?: number;
  /** Context in (struct __sk_buff, xdp_md, a raw tracepoint's u64 args, ...). */
  ctx?: Uint8Array;
  /** Room for the context out; defaults to the context's size when one is given. */
  ctxSizeOut?: number;
  /** Run this many times (the duration is the mean); default 1. */
  repeat?: number;
  /** BPF_F_TEST_* flags. */
  flags?: number;
  cpu?: number;
  batchSize?: number;
}

/**
 * What {@link Program.testRun} returns: the program's return value, its mean run time, and the
 * packet data and context after the run.
 */
export interface TestRunResult {
  /** The program's return value (r0, low 32 bits). */
  readonly retval: number;
  /** Mean run time in nanoseconds. */
  readonly duration: number;
  /** Packet data after the run, when data was given. */
  readonly data: Uint8Array | undefined;
  /** Context after the run, when a context was given. */
  readonly ctx: Uint8Array | undefined;
}

/** Program types whose BPF_PROG_TEST_RUN accepts only ctx_in (no data, ctx_out or repeat). */
const CTX_IN_ONLY: ReadonlySet<string> = new Set<ProgType>(['raw_tracepoint', 'raw_tracepoint_writable', 'syscall']);

/**
 * A BPF program loaded in the kernel. Run it on crafted input with testRun() (BPF_PROG_TEST_RUN),
 * read what the kernel says about it with info(), pin it, or attach it (attach(), or one of the
 * attach* functions). Closing the program drops this process's reference; links keep it alive.
 *
 * Requires Linux 3.19 (BPF_PROG_LOAD); each program type needs its own version (see
 * {@link ProgType}, {@link haveProgramType}); testRun() 4.12 (per type: XDP and tc 4.12,
 * raw_tracepoint 5.10, ...), info() and fromId() 4.13, pin() and fromPinned() 4.4.
 *
 * @throws {@link BpfSyscallError} (`code` is the errno name, e.g. ENOTSUPP when the type has no
 *   test run, EINVAL for a context the type refuses) when the kernel refuses an operation.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for bad test-run input.
 * @throws {@link ClosedError} (`ERR_BPFKIT_CLOSED`) after close().
 * @example
 * ```ts
 * const prog = coll.programs.get('xdp_filter')!;
 * const frame = new Uint8Array(64);                  // an Ethernet frame to run the program on
 * const { retval, data } = prog.testRun({ data: frame });
 * console.log(retval === 2 ? 'XDP_PASS' : retval, data?.length, prog.info().id);
 * ```
 */
export class Program extends PinnableFd {
  readonly name: string;
  readonly type: ProgType;
  readonly sectionName: string;
  readonly attachType: AttachType | undefined;
  /** What the section name says to attach to, e.g. "syscalls/sys_enter_execve". */
  readonly attachTarget: string;
  /** The verifier log when it was asked for with `logLevel` at load. */
  readonly verifierLog: string;
  readonly #fd: FD;

  readonly #loaded: { instructions: Uint8Array; spec: ProgramSpec; core: readonly AppliedCoreRelocation[] } | undefined;

  constructor(fd: FD, meta: {
    name: string; type: ProgType; sectionName?: string; attachType?: AttachType | undefined; attachTarget?: string; verifierLog?: string;
    /** What was handed to the kernel, kept for disassemble(). */
    loaded?: { instructions: Uint8Array; spec: ProgramSpec; core: readonly AppliedCoreRelocation[] };
  }) {
    super(fd);
    this.#loaded = meta.loaded;
    this.#fd = fd;
    this.name = meta.name;
    this.type = meta.type;
    this.sectionName = meta.sectionName ?? '';
    this.attachType = meta.attachType;
    this.attachTarget = meta.attachTarget ?? '';
    this.verifierLog = meta.verifierLog ?? '';
  }

  /** Opens a program pinned in bpffs. */
  static fromPinned(path: string): Program {
    return Program.#fromFd(objGet(path));
  }

  /** Opens a loaded program by its kernel id. */
  static fromId(id: number): Program {
    return Program.#fromFd(getFdById('PROG', id));
  }

  static #fromFd(fd: FD): Program {
    try {
      const info = readProgramInfo(fd.value);
      return new Program(fd, { name: info.name, type: info.type as ProgType });
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  /** Runs the program once (or `repeat` times) in the kernel on the given packet or context. */
  testRun(options: TestRunOptions = {}): TestRunResult {
    const fd = this.#fd.value;
    // raw tracepoint and syscall test runs take ctx_in only: the kernel refuses repeat and ctx_out with EINVAL.
    const ctxInOnly = CTX_IN_ONLY.has(this.type);
    const repeat = options.repeat ?? (ctxInOnly ? 0 : 1);
    if (!Number.isInteger(repeat) || repeat < 0) throw new InvalidArgumentError(`repeat must be a non-negative integer, got ${repeat}`);
    const data = options.data;
    const dataOut = data ? new Uint8Array(options.dataSizeOut ?? data.length + 256) : null;
    const ctxOut = options.ctxSizeOut || (options.ctx && !ctxInOnly) ? new Uint8Array(options.ctxSizeOut ?? options.ctx!.length) : null;
    const args = {
      progFd: fd, dataIn: data ?? null, dataOut, ctxIn: options.ctx ?? null, ctxOut, repeat,
      flags: options.flags ?? 0, cpu: options.cpu ?? 0, batchSize: options.batchSize ?? 0,
    };
    let r;
    try {
      r = progTestRun(args);
    } catch (e) {
      // ENOSPC: the program grew the packet past the room we gave; retry once with a page more.
      if (e instanceof BpfSyscallError && e.code === 'ENOSPC' && data && options.dataSizeOut === undefined) {
        return this.testRun({ ...options, dataSizeOut: data.length + 4096 });
      }
      throw e;
    }
    return {
      retval: r.retval,
      duration: r.duration,
      data: dataOut ? dataOut.slice(0, r.dataSizeOut) : undefined,
      ctx: ctxOut ? ctxOut.slice(0, r.ctxSizeOut) : undefined,
    };
  }

  /** What the kernel says about the program (BPF_OBJ_GET_INFO_BY_FD). */
  info(): ProgramInfo {
    return readProgramInfo(this.#fd.value);
  }

  /**
   * The instructions as the kernel holds them after verification (`bpftool prog dump xlated`),
   * 8 bytes each. Map fds appear as the kernel rewrote them.
   */
  translatedInstructions(): Uint8Array {
    return readTranslatedInstructions(this.#fd.value);
  }

  /**
   * The program as a person can read it. By default the instructions bpfkit handed to the kernel,
   * after relocation against the running kernel (CO-RE values and map references annotated, source
   * lines from BTF); with `{ translated: true }` what the kernel holds after verification.
   */
  disassemble(options: { translated?: boolean } = {}): string {
    if (options.translated || !this.#loaded) return disassembleInstructions(this.translatedInstructions());
    return disassembleLoaded(this.#loaded.instructions, this.#loaded.spec, this.#loaded.core);
  }

  /**
   * Attaches the program where its section name says (`tracepoint/syscalls/sys_enter_execve`,
   * `xdp`, `uprobe/PATH:SYMBOL`, ...), taking what the section cannot say (interface, cgroup,
   * socket, pid, binary) from `options`. Closing the returned link detaches it.
   *
   * Requires Linux 3.19 or later: each kind of hook needs the version of its attach function
   * (see {@link attach}).
   * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when the section names no hook
   *   or `options` lack what it cannot say.
   * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) for a hook bpfkit cannot
   *   auto-attach or the kernel lacks.
   * @throws {@link BpfSyscallError} (`code` is the errno name) when the kernel refuses.
   */
  attach(options: AttachOptions = {}): Link {
    if (!attachByKind) {
      throw new BpfkitError('ERR_BPFKIT_NO_ATTACH', "Program.attach(): the attach code is not loaded; import from 'bpfkit' (its entry loads it) or call attach() yourself");
    }
    return attachByKind(this, options);
  }
}
