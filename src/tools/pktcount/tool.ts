/**
 * One run of pktcount: check the input and the privileges, start the leaderboard (so a taken port
 * fails before anything is made), load the program, build the demo network when there is no
 * --iface, attach, then read, print and publish a snapshot every interval until the signal aborts.
 * Everything made is undone in reverse order however the run ends; the XDP attachment is a
 * bpf_link, so even a killed process leaves nothing attached.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BpfkitError, resolveInterface } from '../../index.js';
import { missing } from '../common/privileges.js';
import { PrivilegeError, type ToolIO } from '../common/runtime.js';
import { PacketCounter } from './counter.js';
import { collectExclusions } from './exclude.js';
import { createDemoNetwork, defaultTag, removeStaleDemoNetworks, type DemoNetwork } from './netns.js';
import type { PktcountOptions } from './options.js';
import { pktcountNeeds, privilegeMessage } from './privileges.js';
import { LeaderboardServer } from './server.js';
import { SnapshotBuilder, emptySnapshot, formatSnapshot, formatSummary, type Snapshot, type SnapshotContext } from './snapshot.js';
import { TRAFFIC_SCRIPT } from './traffic.js';

/** What a run reports to whoever drives it (the CLI, or a test calling it in-process). */
export interface SessionEvents {
  /** Attached and counting; the leaderboard URL when there is one. */
  onReady?(info: { iface: string; url: string | undefined; demo: DemoNetwork | undefined }): void;
  onSnapshot?(s: Snapshot): void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A traffic process inside a namespace; stops when its stdin closes. */
class TrafficProcess {
  readonly child: ChildProcess;
  readonly what: string;
  #stderr = '';
  #exited = false;
  #stopping = false;
  readonly exited: Promise<void>;

  constructor(ns: string, what: string, args: string[]) {
    this.what = what;
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, TRAFFIC_SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin?.on('error', () => { /* gone */ });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-2000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        this.#exited = true;
        resolve();
      });
      this.child.once('error', (e) => {
        this.#stderr += e.message;
        this.#exited = true;
        resolve();
      });
    });
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get isRunning(): boolean {
    return !this.#exited;
  }

  get stderr(): string {
    return this.#stderr.trim();
  }

  /** Resolves once the process printed "ready". */
  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new BpfkitError('ERR_BPFKIT_DEMO', `the demo's ${this.what} did not start within ${timeoutMs} ms${this.stderr ? `: ${this.stderr}` : ''}`)), timeoutMs);
      this.child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new BpfkitError('ERR_BPFKIT_DEMO', `the demo's ${this.what} exited at start${this.stderr ? `: ${this.stderr}` : ''}`));
      });
    });
  }

  /** Closes stdin (the process exits), then SIGTERM and SIGKILL if it lingers. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#exited) return;
    try {
      this.child.stdin?.end();
    } catch {
      // already closed
    }
    const waited = (ms: number): Promise<boolean> => Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
    ]);
    if (await waited(1000)) return;
    this.child.kill('SIGTERM');
    if (await waited(1000)) return;
    this.child.kill('SIGKILL');
    await waited(1000);
  }
}

/** Runs until `signal` aborts (or --duration passes). Returns the last snapshot. */
export async function runSession(options: PktcountOptions, io: ToolIO, signal: AbortSignal, events: SessionEvents = {}): Promise<Snapshot> {
  const demo = options.iface === undefined;
  const exclusions = collectExclusions(options.exclude, options.excludeFiles);

  const lacking = missing(pktcountNeeds(demo));
  if (lacking.length > 0) {
    throw new PrivilegeError(privilegeMessage(lacking, demo ? 'npx bpfkit pktcount' : `npx bpfkit pktcount --iface ${options.iface}`));
  }
  if (!demo) resolveInterface(options.iface!);

  const tag = demo ? defaultTag() : '';
  const iface = demo ? `bpfkit-${tag}a` : options.iface!;
  const ctx = (startedAt: number): SnapshotContext => ({
    iface, mode: options.mode ?? 'auto', demo, aggregate: options.aggregate, intervalMs: options.intervalMs, maxEntries: options.maxEntries,
    top: options.top, excluded: exclusions.map((e) => e.cidr), startedAt,
  });

  const cleanups: (() => void | Promise<void>)[] = [];
  let net: DemoNetwork | undefined;
  const onExit = (): void => net?.destroy();
  process.on('exit', onExit);
  let last: Snapshot = emptySnapshot(ctx(Date.now()));
  let counter: PacketCounter | undefined;
  let attached = false;
  try {
    let server: LeaderboardServer | undefined;
    if (options.listen) {
      server = await LeaderboardServer.start({ host: options.listen.host, port: options.listen.port, initial: last, allowOrigins: options.allowOrigins, allowedHosts: options.allowedHosts });
      const s = server;
      cleanups.push(() => s.close());
    }
    if (signal.aborted) return last;

    counter = await PacketCounter.load({ maxEntries: options.maxEntries, exclusions, aggregate: options.aggregate });
    const c = counter;
    cleanups.push(() => c.close());

    const traffic: TrafficProcess[] = [];
    if (demo) {
      for (const stale of removeStaleDemoNetworks()) io.err(`pktcount: removed the demo network bpfkit-${stale}-* left by a process that is gone\n`);
      net = createDemoNetwork({ tag });
      const n = net;
      cleanups.push(() => n.destroy());
      cleanups.push(async () => {
        await Promise.all(traffic.map((t) => t.stop()));
      });
      const servers = new TrafficProcess(net.serverNs, 'servers', ['serve', net.server.v4, net.server.v6]);
      traffic.push(servers);
      await servers.ready(10_000);
    }
    if (signal.aborted) return last;

    counter.attach(iface, options.mode);
    attached = true;
    const startedAt = Date.now();
    const builder = new SnapshotBuilder(ctx(startedAt));
    last = emptySnapshot(ctx(startedAt), startedAt);
    server?.submit(last);

    if (net) {
      const clients = new TrafficProcess(net.clientNs, 'clients', ['clients', net.server.v4, net.server.v6, ...net.clients.v4, ...net.clients.v6]);
      traffic.push(clients);
    }

    const mode = options.mode ? ` in ${options.mode} mode` : '';
    if (net) {
      io.err(`pktcount: demo network: namespaces ${net.clientNs} (${[...net.clients.v4, ...net.clients.v6].join(', ')}) and ${net.serverNs} (${net.server.v4}, ${net.server.v6}), joined by veth pairs and the bridge ${net.bridge}\n`);
      io.err(`pktcount: demo traffic: TCP :22 :80 :443 and UDP :53 :123 :5004 from the clients to the servers, over IPv4 and IPv6\n`);
    }
    io.err(`pktcount: counting packets arriving on ${iface}${mode} (XDP, bpf_link), every ${options.intervalMs} ms, top ${options.top}` +
      `${exclusions.length ? `, excluding ${exclusions.map((e) => e.cidr).join(', ')}` : ''}\n`);
    if (server) io.err(`pktcount: leaderboard at ${server.url} (also /json, /ws, /metrics)\n`);
    io.err('pktcount: Ctrl-C to stop\n');
    events.onReady?.({ iface, url: server?.url, demo: net });

    const until = options.durationMs === undefined ? Infinity : startedAt + options.durationMs;
    let warned = false;
    for (let tick = 1; !signal.aborted; tick++) {
      const due = Math.min(startedAt + tick * options.intervalMs, until);
      await sleep(due - Date.now(), signal);
      if (signal.aborted) break;
      const flows = counter.readFlows();
      const totals = counter.readTotals();
      // Requests that arrived during the read are answered before the build holds the loop again.
      await new Promise<void>((resolve) => setImmediate(resolve));
      last = builder.build(flows, totals);
      if (options.json) io.out(`${JSON.stringify(last)}\n`);
      else if (!options.quiet) io.out(formatSnapshot(last));
      server?.submit(last);
      events.onSnapshot?.(last);
      const dead = traffic.find((t) => !t.isRunning && !t.stopping);
      if (dead && !warned) {
        warned = true;
        io.err(`pktcount: warning: the demo's ${dead.what} stopped${dead.stderr ? `: ${dead.stderr}` : ''}\n`);
      }
      if (Date.now() >= until) break;
    }
    // The final counts, read while still attached.
    last = builder.build(counter.readFlows(), counter.readTotals());
    server?.submit(last);
    return last;
  } finally {
    // Detach first, then stop traffic, remove the network, close the maps and the server.
    let firstError: unknown;
    try {
      counter?.detach();
    } catch (e) {
      firstError = e;
    }
    for (const undo of cleanups.reverse()) {
      try {
        await undo();
      } catch (e) {
        firstError ??= e;
      }
    }
    process.off('exit', onExit);
    if (attached) (options.json ? io.err : io.out)(formatSummary(last, iface));
    if (firstError !== undefined) io.err(`pktcount: cleanup: ${(firstError as Error).message}\n`);
  }
}
