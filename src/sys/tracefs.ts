/**
 * tracefs: where tracepoint ids live (events/<category>/<name>/id) and where legacy kprobes and
 * uprobes are created (kprobe_events, uprobe_events). A fresh machine may not have it mounted;
 * as root bpfkit mounts it at /sys/kernel/tracing, otherwise it says how to.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfkitError, InvalidArgumentError } from '../errors.js';

const TRACING = '/sys/kernel/tracing';
const DEBUG_TRACING = '/sys/kernel/debug/tracing';

let cached: string | undefined;

function mountedTracefs(): string | undefined {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return undefined;
  }
  const points: string[] = [];
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'tracefs' && f[1]) points.push(f[1].replace(/\\040/g, ' '));
  }
  if (points.includes(TRACING)) return TRACING;
  if (points.includes(DEBUG_TRACING)) return DEBUG_TRACING;
  return points[0];
}

/**
 * The tracefs mount point. When tracefs is not mounted and the process is root, mounts it at
 * /sys/kernel/tracing; otherwise throws an error that says what to do.
 */
export function tracefsRoot(): string {
  if (cached && existsSync(join(cached, 'events'))) return cached;
  let root = mountedTracefs();
  if (!root && process.getuid?.() === 0 && existsSync(TRACING)) {
    try {
      execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACING], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      // Someone else may have mounted it meanwhile; look again before giving up.
      root = mountedTracefs();
      if (!root) {
        const msg = (e as { stderr?: Buffer }).stderr?.toString().trim() ?? (e as Error).message;
        throw new BpfkitError('ERR_BPFKIT_TRACEFS', `tracefs is not mounted and mounting it at ${TRACING} failed: ${msg}`);
      }
    }
    root ??= mountedTracefs();
  }
  if (!root) {
    throw new BpfkitError('ERR_BPFKIT_TRACEFS',
      `tracefs is not mounted: mount it as root with \`mount -t tracefs tracefs ${TRACING}\` ` +
      '(tracepoint ids and legacy kprobe/uprobe events live there), or run as root so bpfkit mounts it');
  }
  cached = root;
  return root;
}

/** The tracefs root if it is mounted or can be mounted; undefined instead of throwing. */
export function tryTracefsRoot(): string | undefined {
  try {
    return tracefsRoot();
  } catch {
    return undefined;
  }
}

const NAME = /^[A-Za-z0-9_.:-]+$/;

/** The id of tracepoint <category>/<name> (events/<category>/<name>/id). */
export function tracepointId(category: string, name: string): number {
  if (!NAME.test(category) || !NAME.test(name)) {
    throw new InvalidArgumentError(`bad tracepoint "${category}/${name}": category and name are single tracefs path parts like "syscalls" and "sys_enter_execve"`);
  }
  const root = tracefsRoot();
  const path = join(root, 'events', category, name, 'id');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const hint = existsSync(join(root, 'events', category))
        ? `category ${category} exists but has no event ${name}`
        : `there is no category ${category}`;
      throw new InvalidArgumentError(`tracepoint ${category}/${name} does not exist (${hint}; see ${join(root, 'available_events')})`);
    }
    throw new BpfkitError('ERR_BPFKIT_TRACEFS', `reading ${path}: ${(e as Error).message}`);
  }
  const id = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(id) || id < 0) throw new BpfkitError('ERR_BPFKIT_TRACEFS', `${path} holds "${text.trim()}", not a tracepoint id`);
  return id;
}

let probeCounter = 0;

/** A unique event name for a legacy probe of this process. */
export function legacyProbeName(kind: 'kprobe' | 'uprobe', what: string): string {
  const clean = what.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 32);
  return `bpfkit_${kind[0]}${process.pid}_${probeCounter++}_${clean}`;
}

/**
 * Creates a legacy probe event by writing `definition` (e.g. "p:bpfkit/name do_sys_open") to
 * kprobe_events or uprobe_events; returns its tracepoint id and a function that removes it.
 */
export function createLegacyProbe(file: 'kprobe_events' | 'uprobe_events', group: string, name: string, definition: string): { id: number; remove: () => void } {
  const root = tracefsRoot();
  const eventsFile = join(root, file);
  try {
    appendFileSync(eventsFile, `${definition}\n`);
  } catch (e) {
    throw new BpfkitError('ERR_BPFKIT_TRACEFS', `creating ${file} entry "${definition}" failed: ${(e as Error).message}`, { cause: e });
  }
  const remove = (): void => {
    try { appendFileSync(eventsFile, `-:${group}/${name}\n`); } catch { /* already gone */ }
  };
  try {
    return { id: tracepointId(group, name), remove };
  } catch (e) {
    remove();
    throw e;
  }
}
