/**
 * kprobe_multi links (`SEC("kprobe.multi/<pattern>")`, `kretprobe.multi`, `kprobe.session`): one
 * program on many kernel functions through fprobe, in one BPF_LINK_CREATE (5.18+, CONFIG_FPROBE;
 * sessions 6.10+). The program must have been loaded with the expected attach type
 * BPF_TRACE_KPROBE_MULTI (or _SESSION), which the section gives.
 *
 * A name is passed to the kernel as is; a pattern (`*`, `?`) is expanded first, as libbpf does,
 * against the functions ftrace can trace: available_filter_functions_addrs (6.5+) gives their
 * addresses directly; before that, available_filter_functions gives the names and /proc/kallsyms
 * their addresses (every address of a name that occurs more than once).
 */
import { E2BIG, EBUSY, EINVAL, ENOENT, EPERM, ESRCH } from '../abi/errno.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { hookSupport } from '../kernel/features.js';
import { FD } from '../sys/fd.js';
import { globMatch, isGlob } from './glob.js';
import { FdLink, requireProgramType } from './link.js';
import { multiProbeAttachType } from './multi-probe.js';
import { BPF_F_KPROBE_MULTI_RETURN, linkCreateRaw } from '../sys/link.js';
import { tracefsRoot } from '../sys/tracefs.js';

/**
 * Options of {@link attachKprobeMulti}: return probes, sessions (Linux 6.10), one cookie per
 * function.
 */
export interface KprobeMultiOptions {
  /** Attach at function return (kretprobe.multi). */
  retprobe?: boolean;
  /**
   * A kprobe session (6.10+): the program runs at entry and, unless it returned non-zero there,
   * again at return. Implied for programs loaded from kprobe.session sections.
   */
  session?: boolean;
  /** One bpf_cookie per function, in the order of `functions` (an explicit list only). */
  cookies?: readonly bigint[];
}


/** A kernel function name as kallsyms spells it (letters, digits, '_', '.'), or a pattern of them. */
const NAME = /^[A-Za-z0-9_.*?]+$/;

/** Traceable functions matching `pattern`, as addresses (see the module comment). */
export function resolveKernelPattern(pattern: string): bigint[] {
  const root = tracefsRoot();
  const withAddrs = join(root, 'available_filter_functions_addrs');
  const out: bigint[] = [];
  if (existsSync(withAddrs)) {
    // "<hex address> <name> [module]"
    for (const line of readFileSync(withAddrs, 'latin1').split('\n')) {
      const sp = line.indexOf(' ');
      if (sp <= 0) continue;
      const end = line.indexOf(' ', sp + 1);
      const name = line.slice(sp + 1, end < 0 ? undefined : end);
      if (globMatch(name, pattern)) out.push(BigInt(`0x${line.slice(0, sp)}`));
    }
  } else {
    const names = new Set<string>();
    for (const line of readFileSync(join(root, 'available_filter_functions'), 'latin1').split('\n')) {
      const name = line.split(' ', 1)[0]!;
      if (name && globMatch(name, pattern)) names.add(name);
    }
    if (names.size > 0) {
      // "<hex address> <type> <name>[\t[module]]"; some kernels keep clang's ".llvm.<hash>" suffix here only.
      for (const line of readFileSync('/proc/kallsyms', 'latin1').split('\n')) {
        const f = line.split(/[ \t]/);
        const name = f[2];
        if (!name) continue;
        const llvm = name.indexOf('.llvm.');
        if (names.has(name) || (llvm > 0 && names.has(name.slice(0, llvm)))) out.push(BigInt(`0x${f[0]}`));
      }
    }
  }
  if (out.length === 0) {
    throw new InvalidArgumentError(`kprobe.multi: no traceable kernel function matches "${pattern}" (see ${join(root, 'available_filter_functions')})`);
  }
  return out;
}

/**
 * Attaches a kprobe.multi / kretprobe.multi / kprobe.session program to many kernel functions at
 * once: a pattern ("tcp_*"), one name, or a list of names (with `cookies`, one per name).
 *
 * Requires Linux 5.18 (kprobe_multi links); kprobe.session 6.10.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a bad name or pattern, a
 *   pattern matching no traceable function, or cookies that do not pair with the names.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ESRCH/ENOENT for an unknown function,
 *   EINVAL or EOPNOTSUPP on kernels without kprobe_multi).
 */
export function attachKprobeMulti(prog: Program, functions: string | readonly string[], options: KprobeMultiOptions = {}): FdLink {
  requireProgramType(prog, ['kprobe'], 'attachKprobeMulti');
  const { session, attachType } = multiProbeAttachType(prog, 'kprobe', 'attachKprobeMulti', options);
  const list = typeof functions === 'string' ? [functions] : [...functions];
  if (list.length === 0) throw new InvalidArgumentError('attachKprobeMulti: no functions given');
  for (const f of list) {
    if (!NAME.test(f) || (list.length > 1 && isGlob(f))) {
      throw new InvalidArgumentError(`attachKprobeMulti: bad function "${f}": give one name or pattern ("tcp_*"), or a list of plain names`);
    }
  }
  const pattern = list.length === 1 && isGlob(list[0]!);
  if (options.cookies && (pattern || options.cookies.length !== list.length)) {
    throw new InvalidArgumentError(`attachKprobeMulti: cookies need an explicit list of functions, one cookie each (${list.length} functions, ${options.cookies.length} cookies)`);
  }
  const missing = hookSupport(session ? 'kprobe_session' : 'kprobe_multi');
  if (missing) throw missing;

  const flags = options.retprobe ? BPF_F_KPROBE_MULTI_RETURN : 0;
  const target = pattern ? { addresses: resolveKernelPattern(list[0]!) } : { symbols: list };
  const kind = session ? 'kprobe_session' : options.retprobe ? 'kretprobe_multi' : 'kprobe_multi';
  const r = linkCreateRaw({
    progFd: prog.fd, target: 0, attachType,
    kprobeMulti: { flags, ...target, ...(options.cookies ? { cookies: options.cookies } : {}) },
  });
  if (r < 0) {
    const what = `attach ${prog.name || 'program'} as ${kind} to ${pattern ? `"${list[0]}" (${target.addresses!.length} functions)` : list.join(', ')}`;
    throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', what,
      -r === ESRCH || -r === ENOENT ? 'a function is not in kallsyms or cannot be traced (see available_filter_functions in tracefs)' :
      -r === EINVAL ? 'the kernel refused a function address (not a traceable function entry) or the attach options' :
      -r === E2BIG ? 'too many functions for one link (the kernel caps the count)' :
      -r === EBUSY ? 'a function is already traced in a way that excludes fprobe' :
      -r === EPERM ? 'attaching kprobes needs CAP_BPF and CAP_PERFMON (run as root)' : undefined);
  }
  return new FdLink(new FD(r, `${kind} link`), kind);
}
