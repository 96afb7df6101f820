/**
 * Where execsnoop hooks execve(2) and execveat(2): kprobes on the syscall functions
 * (`__x64_sys_execve`, ...), as the seed's hello_ebpf does, when the kernel has kprobes; the
 * syscalls:sys_enter_execve tracepoints otherwise (a kernel built without CONFIG_KPROBES, like
 * ours). Each plan loads only its own programs from the object, so a kernel that lacks one kind
 * never sees it.
 */
import { BpfkitError, InvalidArgumentError, NotSupportedError, attachKsyscall, kprobeSupport, syscallSymbol, type Link, attachTracepoint, tracepointId, type Program } from '../../index.js';
import { execsnoopProgramNames, loadExecsnoop, type ExecsnoopObjects, type ExecsnoopRodata } from './gen/execsnoop.js';
import type { HookChoice } from './options.js';

export type HookKind = 'kprobe' | 'tracepoint';

type ProgramKey = keyof typeof execsnoopProgramNames;

/** One program attached to one hook. */
export interface Attachment {
  /** "kprobe __x64_sys_execve", "tracepoint syscalls/sys_enter_execve", ... */
  readonly hook: string;
  readonly program: string;
  readonly programId: number;
  /** The bpf_link's id (undefined on kernels that attach perf events without bpf_links). */
  readonly linkId: number | undefined;
  readonly link: Link;
}

export interface Hooked {
  readonly kind: HookKind;
  readonly objects: ExecsnoopObjects;
  readonly attachments: readonly Attachment[];
  /** Why this kind was chosen, and what was skipped, for --verbose. */
  readonly notes: readonly string[];
  /** Closes the links, then the programs and maps. */
  close(): void;
}

interface Step {
  readonly program: ProgramKey;
  /** The system call, for kprobes; the tracepoint name, for tracepoints. */
  readonly target: string;
  readonly retprobe: boolean;
}

function kprobeSteps(ret: boolean): Step[] {
  const steps: Step[] = [
    { program: 'ksysExecve', target: 'execve', retprobe: false },
    { program: 'ksysExecveat', target: 'execveat', retprobe: false },
  ];
  if (ret) {
    steps.push({ program: 'ksysExecveRet', target: 'execve', retprobe: true }, { program: 'ksysExecveatRet', target: 'execveat', retprobe: true });
  }
  return steps;
}

function tracepointExists(name: string): boolean {
  try {
    tracepointId('syscalls', name);
    return true;
  } catch (e) {
    if (e instanceof InvalidArgumentError) return false;
    throw e;
  }
}

/** The tracepoint steps this kernel can take; throws NotSupportedError when it has no execve tracepoint. */
function tracepointSteps(ret: boolean, notes: string[]): Step[] {
  const want: Step[] = [
    { program: 'tpEnterExecve', target: 'sys_enter_execve', retprobe: false },
    { program: 'tpEnterExecveat', target: 'sys_enter_execveat', retprobe: false },
  ];
  if (ret) want.push({ program: 'tpExitExecve', target: 'sys_exit_execve', retprobe: false }, { program: 'tpExitExecveat', target: 'sys_exit_execveat', retprobe: false });
  const steps = want.filter((s) => tracepointExists(s.target));
  const have = new Set(steps.map((s) => s.target));
  if (!have.has('sys_enter_execve') || (ret && !have.has('sys_exit_execve'))) {
    throw new NotSupportedError('the syscalls:sys_enter_execve and sys_exit_execve tracepoints',
      'the kernel was built without CONFIG_FTRACE_SYSCALLS (no syscall tracepoints in tracefs events/syscalls/), and it has no kprobes to fall back on');
  }
  if (!have.has('sys_enter_execveat') || (ret && !have.has('sys_exit_execveat'))) {
    notes.push('the kernel has no syscalls:sys_enter_execveat/sys_exit_execveat tracepoints: execveat(2) is not traced');
    return steps.filter((s) => !s.target.includes('execveat'));
  }
  return steps;
}

function attachStep(kind: HookKind, prog: Program, step: Step): { hook: string; link: Link } {
  if (kind === 'kprobe') {
    const link = attachKsyscall(prog, step.target, { retprobe: step.retprobe });
    return { hook: `${step.retprobe ? 'kretprobe' : 'kprobe'} ${syscallSymbol(step.target)}`, link };
  }
  return { hook: `tracepoint syscalls/${step.target}`, link: attachTracepoint(prog, 'syscalls', step.target) };
}

/** Loads the programs of one plan and attaches them; closes everything it made on failure. */
async function hookWith(kind: HookKind, steps: readonly Step[], rodata: Partial<ExecsnoopRodata>, notes: string[], ringbufSize: number | undefined): Promise<Hooked> {
  const objects = await loadExecsnoop({
    rodata, programs: { only: steps.map((s) => execsnoopProgramNames[s.program]) },
    ...(ringbufSize !== undefined ? { maxEntries: { events: ringbufSize } } : {}),
  });
  const attachments: Attachment[] = [];
  const close = (): void => {
    let first: unknown;
    for (const a of attachments.reverse()) {
      try { a.link.close(); } catch (e) { first ??= e; }
    }
    attachments.length = 0;
    objects.close();
    if (first) throw first;
  };
  try {
    for (const step of steps) {
      const prog = objects.programs[step.program];
      const { hook, link } = attachStep(kind, prog, step);
      let linkId: number | undefined;
      try {
        const id = link.info().id;
        linkId = id > 0 ? id : undefined;
      } catch {
        linkId = undefined;
      }
      attachments.push({ hook, program: execsnoopProgramNames[step.program], programId: prog.info().id, linkId, link });
    }
  } catch (e) {
    try { close(); } catch { /* keep the first error */ }
    throw e;
  }
  return { kind, objects, attachments, notes, close };
}

/**
 * Loads and attaches execsnoop as `choice` says, with a ring buffer of `ringbufSize` bytes (default:
 * the object's 1 MiB). With 'auto', kprobes when the kernel has them
 * (falling back to the tracepoints if they fail), else the tracepoints.
 */
export async function hookExec(choice: HookChoice, ret: boolean, rodata: Partial<ExecsnoopRodata>, ringbufSize?: number): Promise<Hooked> {
  const notes: string[] = [];
  const support = kprobeSupport();
  if (choice === 'kprobe') {
    notes.push('--hook kprobe: hooking the syscall functions with kprobes');
    return hookWith('kprobe', kprobeSteps(ret), rodata, notes, ringbufSize);
  }
  if (choice === 'tracepoint') {
    notes.push('--hook tracepoint: hooking the syscalls:sys_enter_execve tracepoint');
    return hookWith('tracepoint', tracepointSteps(ret, notes), rodata, notes, ringbufSize);
  }
  if (support) {
    notes.push(`the kernel has kprobes (${support === 'pmu' ? 'the kprobe PMU' : 'tracefs kprobe_events'}): hooking the syscall functions with kprobes, as the seed does`);
    try {
      return await hookWith('kprobe', kprobeSteps(ret), rodata, notes, ringbufSize);
    } catch (e) {
      if (!(e instanceof BpfkitError)) throw e;
      notes.push(`kprobes failed (${e.message}): falling back to the syscalls:sys_enter_execve tracepoint`);
    }
  } else {
    notes.push('the kernel has no kprobes (built without CONFIG_KPROBES): hooking the syscalls:sys_enter_execve tracepoint instead');
  }
  return hookWith('tracepoint', tracepointSteps(ret, notes), rodata, notes, ringbufSize);
}
