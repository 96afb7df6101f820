/**
 * securityfs (/sys/kernel/security): which Linux security modules are active (`lsm`) and the
 * lockdown mode (`lockdown`). BPF LSM programs only run when "bpf" is among the active modules,
 * and a policy may refuse BPF trampolines while it is, so error messages read these to say which
 * of the two a refusal is. A fresh machine may not have securityfs mounted: as root it is mounted
 * for the read and unmounted again, so the machine's mounts stay as they were.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const SECURITYFS = '/sys/kernel/security';

export interface SecurityState {
  /** The active LSMs in order, e.g. ["lockdown", "capability", "landlock", "bpf"]. */
  lsms: readonly string[];
  /** The lockdown mode ("none", "integrity", "confidentiality"), when the lockdown LSM reports one. */
  lockdown: string | undefined;
}

function mounted(): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => {
      const f = l.split(' ');
      return f[1] === SECURITYFS && f[2] === 'securityfs';
    });
  } catch {
    return false;
  }
}

function readState(): SecurityState | undefined {
  let lsm: string;
  try {
    lsm = readFileSync(`${SECURITYFS}/lsm`, 'utf8');
  } catch {
    return undefined;
  }
  let lockdown: string | undefined;
  try {
    // "none [integrity] confidentiality": the bracketed one is in force.
    lockdown = /\[(\w+)\]/.exec(readFileSync(`${SECURITYFS}/lockdown`, 'utf8'))?.[1];
  } catch {
    lockdown = undefined;
  }
  return { lsms: lsm.trim().split(',').filter(Boolean), lockdown };
}

let cached: SecurityState | null | undefined;

/**
 * The active LSMs and lockdown mode, or undefined when they cannot be read (securityfs not
 * mounted and the process cannot mount it, or a kernel without CONFIG_SECURITYFS).
 */
export function securityState(): SecurityState | undefined {
  if (cached !== undefined) return cached ?? undefined;
  let state = readState();
  if (!state && !mounted() && process.getuid?.() === 0 && existsSync(SECURITYFS)) {
    try {
      execFileSync('mount', ['-t', 'securityfs', 'securityfs', SECURITYFS], { stdio: 'ignore' });
      try {
        state = readState();
      } finally {
        execFileSync('umount', [SECURITYFS], { stdio: 'ignore' });
      }
    } catch {
      state ??= undefined;
    }
  }
  cached = state ?? null;
  return state;
}

/** True / false when the active LSMs could be read; undefined when they could not. */
export function bpfLsmActive(): boolean | undefined {
  const s = securityState();
  return s ? s.lsms.includes('bpf') : undefined;
}
