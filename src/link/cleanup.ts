/**
 * Attachments made without a bpf_link (netlink XDP and tc filters, BPF_PROG_ATTACH to cgroups)
 * outlive the process that made them. bpfkit removes the ones still open when the process exits:
 * on a normal exit and an uncaught exception (the 'exit' event), and on SIGINT / SIGTERM / SIGHUP
 * when nobody else handles the signal (then the signal's default action follows, so the process
 * still dies of it). A process killed with SIGKILL cannot clean up: prefer bpf_link attachments,
 * which the kernel removes with the last fd.
 */

interface Closable {
  close(): void;
}

const live = new Set<Closable>();
let installed = false;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function closeAll(): void {
  for (const l of [...live]) {
    try {
      l.close();
    } catch {
      // Exiting: a detach that fails (interface gone) must not stop the others.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Another handler means the application decided what the signal does; 'exit' still cleans up.
  if (process.listenerCount(signal) > 1) return;
  closeAll();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', closeAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Remove `link` when the process exits, unless it is closed before. */
export function detachAtExit(link: Closable): void {
  install();
  live.add(link);
}

/** `link` was closed by its owner. */
export function forget(link: Closable): void {
  live.delete(link);
}

/** How many attachments are waiting for cleanup (tests). */
export function pendingCleanups(): number {
  return live.size;
}
