/**
 * Every error bpfkit throws. Each carries a stable `code` so callers can branch on it without
 * parsing messages. Syscall failures are shaped like Node's own SystemError (`code` is the errno
 * name, `errno` the negative number Node uses, `syscall` the call that failed).
 */
import { getSystemErrorName } from 'node:util';
import { constants } from 'node:os';

/**
 * Every `code` a BpfkitError other than BpfSyscallError carries (those carry the errno's name,
 * e.g. 'EPERM'). Stable: callers branch on them.
 */
export type BpfkitErrorCode =
  | 'ERR_BPFKIT_BPFFS' // no bpf filesystem where a pin goes, and mounting one failed
  | 'ERR_BPFKIT_BTF' // malformed BTF (BtfError)
  | 'ERR_BPFKIT_BTF_FILE' // `bpfkit btf` could not read its input file
  | 'ERR_BPFKIT_CLOSED' // an object used after close() (ClosedError)
  | 'ERR_BPFKIT_COMPILE' // clang failed to build BPF C (`bpfkit gen` from C)
  | 'ERR_BPFKIT_CORE' // a CO-RE relocation cannot be applied to this kernel (CoreError)
  | 'ERR_BPFKIT_DEMO' // the demo found the kernel answering otherwise than expected
  | 'ERR_BPFKIT_ELF' // a malformed or unsupported ELF object (ElfError)
  | 'ERR_BPFKIT_EMULATOR_FAULT' // bpfkit/testing stopped a program at a fault (EmulatorFault)
  | 'ERR_BPFKIT_EXCLUDE_FILE' // pktcount --exclude-file could not be read
  | 'ERR_BPFKIT_INVALID_ARG' // bad input to a call (InvalidArgumentError)
  | 'ERR_BPFKIT_LISTEN' // a tool's web server could not listen (port in use, bad address)
  | 'ERR_BPFKIT_MISSING_DEPENDENCY' // an optional dependency a tool needs (ws, prom-client) is not installed
  | 'ERR_BPFKIT_NETLINK' // rtnetlink did not answer
  | 'ERR_BPFKIT_NOT_SUPPORTED' // a feature the kernel, or bpfkit, lacks (NotSupportedError)
  | 'ERR_BPFKIT_NO_ADDON' // no native addon loads on this machine: syscalls are unavailable
  | 'ERR_BPFKIT_NO_ATTACH' // Program.attach() without the attach code loaded (import from 'bpfkit')
  | 'ERR_BPFKIT_OBJECT_FILE' // a BPF object file could not be read
  | 'ERR_BPFKIT_PMU' // a PMU's sysfs format file is not what the kernel documents
  | 'ERR_BPFKIT_PRIVILEGE' // the caller lacks the privileges a tool needs
  | 'ERR_BPFKIT_PROBE' // a feature probe cannot answer (it needs something absent, e.g. kernel BTF)
  | 'ERR_BPFKIT_SPEC' // an object bpfkit cannot use as it asks (SpecError)
  | 'ERR_BPFKIT_TRACEFS' // tracefs is not mounted and could not be mounted
  | 'ERR_BPFKIT_USAGE' // a tool's command line is wrong
  | 'ERR_BPFKIT_USDT_SPECS_FULL' // the USDT spec map has no room for another probe
  | 'ERR_BPFKIT_VARIABLE' // a global variable's map holds no value
  | 'ERR_BPFKIT_VERIFIER' // the verifier refused a program (VerifierError)
  | 'ERR_BPFKIT_WEB_FILES'; // the leaderboard's web files are missing from the build

/** An errno's name, as BpfSyscallError's code (e.g. 'EPERM', 'ENOTSUPP', or 'E<n>' for an unnamed one). */
export type ErrnoCode = `E${string}`;

/**
 * The base class of every error bpfkit throws: `code` says what went wrong, as one of the
 * {@link BpfkitErrorCode} strings, or an errno name ({@link ErrnoCode}) for a
 * {@link BpfSyscallError}. Catch it (or a subclass) and switch on `code`.
 */
export class BpfkitError extends Error {
  readonly code: BpfkitErrorCode | ErrnoCode;
  constructor(code: BpfkitErrorCode | ErrnoCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A malformed or unsupported ELF object. */
export class ElfError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_ELF', message);
  }
}

/** Malformed BTF (`.BTF`, `.BTF.ext`, or kernel BTF). */
export class BtfError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_BTF', message);
  }
}

/** The object is well-formed but asks for something bpfkit cannot do with it. */
export class SpecError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_SPEC', message);
  }
}

/** A value that does not fit the key or value type of a map, or bad user input. */
export class InvalidArgumentError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_INVALID_ARG', message);
  }
}

/** Using an object after close(). */
export class ClosedError extends BpfkitError {
  constructor(what: string) {
    super('ERR_BPFKIT_CLOSED', `${what} is closed`);
  }
}

/**
 * A feature is missing. `feature` names it; `minKernel`, when known, is the first upstream version
 * that has it. `lackedBy` says who lacks it: the running kernel (too old, or built without a config
 * option, or forbidden by a security policy), or bpfkit itself (the kernel may well have it).
 */
export class NotSupportedError extends BpfkitError {
  readonly feature: string;
  readonly minKernel: string | undefined;
  readonly lackedBy: 'kernel' | 'bpfkit';
  constructor(feature: string, detail?: string, minKernel?: string, options: { lackedBy?: 'kernel' | 'bpfkit' } = {}) {
    const by = options.lackedBy ?? 'kernel';
    const since = minKernel ? ` (requires Linux ${minKernel} or later)` : '';
    const who = by === 'kernel' ? 'this kernel' : 'bpfkit (not a kernel limitation)';
    super('ERR_BPFKIT_NOT_SUPPORTED', `${feature} is not supported by ${who}${since}${detail ? `: ${detail}` : ''}`);
    this.feature = feature;
    this.minKernel = minKernel;
    this.lackedBy = by;
  }
}

/** A failed system call, shaped like Node's SystemError. */
export class BpfSyscallError extends BpfkitError {
  readonly errno: number;
  readonly syscall: string;
  readonly hint: string | undefined;
  constructor(errno: number, syscall: string, what?: string, hint?: string) {
    const e = errno < 0 ? errno : -errno;
    const name = errnoName(e);
    const desc = describeErrno(name);
    super(name, `${what ? `${what}: ` : ''}${syscall} failed: ${name} (${desc})${hint ? `. ${hint}` : ''}`);
    this.errno = e;
    this.syscall = syscall;
    this.hint = hint;
  }
}

/**
 * The errno's name. The kernel also returns its internal ENOTSUPP (524), which libc and Node do not
 * name; it is what BPF_PROG_TEST_RUN and others say for "not supported for this type".
 */
export function errnoName(errno: number): ErrnoCode {
  const e = errno < 0 ? errno : -errno;
  if (e === -524) return 'ENOTSUPP';
  try {
    const name = getSystemErrorName(e);
    return name.startsWith('Unknown') ? `E${-e}` : name as ErrnoCode;
  } catch {
    return `E${-e}`;
  }
}

const errnoText: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or entry',
  ESRCH: 'no such process',
  EINTR: 'interrupted',
  EIO: 'I/O error',
  E2BIG: 'argument list too long',
  EBADF: 'bad file descriptor',
  EAGAIN: 'try again',
  ENOMEM: 'out of memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'device or resource busy',
  EEXIST: 'already exists',
  ENODEV: 'no such device',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left',
  ENOSYS: 'function not implemented',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUPP: 'operation not supported',
  ENOTSOCK: 'not a socket',
  EADDRINUSE: 'address in use',
};

function describeErrno(name: string): string {
  return errnoText[name] ?? 'system error';
}

/** Positive errno number from its name, e.g. errnoOf('ENOENT') === 2. */
export function errnoOf(name: keyof typeof constants.errno): number {
  return constants.errno[name];
}

/**
 * The verifier refused a program. `message` is a one-line summary (the program and the verifier's
 * own last complaint); `log` is the whole verifier log.
 */
export class VerifierError extends BpfkitError {
  readonly program: string;
  readonly log: string;
  readonly errno: number;
  constructor(program: string, errno: number, log: string, summaryOverride?: string) {
    const summary = summaryOverride ?? summarizeVerifierLog(log);
    const name = errnoName(errno);
    super('ERR_BPFKIT_VERIFIER', `program ${program} rejected by the verifier (${name})${summary ? `: ${summary}` : ''}`);
    this.program = program;
    this.log = log;
    this.errno = errno < 0 ? errno : -errno;
  }
}

/**
 * The verifier prints its state instruction by instruction and ends with the reason. The useful
 * line is the last one that is not bookkeeping ("processed N insns", "verification time").
 */
export function summarizeVerifierLog(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const noise = /^(processed \d+ insns|verification time|stack depth|max_states_per_insn|mark_precise|-- END PROG LOAD LOG --)/;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (noise.test(line)) continue;
    return line.length > 300 ? `${line.slice(0, 297)}...` : line;
  }
  return '';
}

/** bpfkit's emulated kernel (bpfkit/testing) lacks a feature the real kernel has: the message blames the emulator. */
export class EmulatorNotSupportedError extends NotSupportedError {
  constructor(feature: string, detail: string) {
    super(feature, detail);
    this.message = `${feature} is not implemented by the bpfkit emulator (bpfkit/testing): ${detail}`;
  }
}
