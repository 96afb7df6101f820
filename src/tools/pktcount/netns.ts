/**
 * The demo's private network: two network namespaces joined by veth pairs through a bridge in the
 * root namespace. Nothing touches an existing interface, and the root namespace gets no address
 * or route (its ends of the veths and the bridge carry no IP at all, IPv6 is off on them).
 *
 *      <tag>-clients                      root namespace                      <tag>-servers
 *   [ veth0 10.77.0.11-13   ] <-> [ <tag>a ]--[ <tag>br ]--[ <tag>b ] <-> [ veth0 10.77.0.1 ]
 *   [       fd77::11-13     ]                                              [       fd77::1   ]
 *
 * pktcount attaches to `<tag>a`, the root-side end of the clients' veth: every frame the clients
 * send crosses it as received traffic, which is what XDP sees. All names start with "bpfkit-".
 *
 * A reaper (a small detached shell) is started before anything is created: if this process dies
 * without cleaning up (kill -9), its end of a pipe closes and the reaper deletes the network.
 * On a normal exit the network is deleted here and the reaper is told to stand down.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { BpfkitError } from '../../index.js';

export interface DemoNetwork {
  /** Short unique part of every name. */
  readonly tag: string;
  readonly clientNs: string;
  readonly serverNs: string;
  readonly bridge: string;
  /** Root-namespace end of the clients' veth: attach here. */
  readonly clientLink: string;
  /** Root-namespace end of the servers' veth. */
  readonly serverLink: string;
  readonly server: { readonly v4: string; readonly v6: string };
  readonly clients: { readonly v4: readonly string[]; readonly v6: readonly string[] };
  /** Namespaces and root-namespace interfaces this network made. */
  readonly namespaces: readonly string[];
  readonly links: readonly string[];
  /** Removes everything (synchronous, idempotent, never throws). */
  destroy(): void;
}

export interface DemoNetworkOptions {
  /** Unique part of the names (letters and digits, at most 6); default from the pid. */
  readonly tag?: string;
  /** Start the reaper that cleans up if this process is killed (default true). */
  readonly reaper?: boolean;
  /** Client addresses per family (default 3). */
  readonly clientsPerFamily?: number;
}

let counter = 0;

/** A tag unique among this machine's live processes: the pid in base 36 and a counter. */
export function defaultTag(): string {
  return `${process.pid.toString(36)}${(counter++ % 36).toString(36)}`;
}

function ipCommand(args: string[], input?: string): void {
  try {
    execFileSync('ip', args, { stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') {
      throw new BpfkitError('ERR_BPFKIT_DEMO', "the demo needs the 'ip' command: install iproute2 (apt-get install iproute2)");
    }
    const detail = (err.stderr ?? '').trim() || err.message;
    throw new BpfkitError('ERR_BPFKIT_DEMO', `ip ${args.join(' ')} failed: ${detail}`);
  }
}

/** The shell the reaper runs: wait for "disarm" or EOF; on EOF delete everything. */
function reaperScript(links: readonly string[], namespaces: readonly string[]): string {
  const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;
  const steps = [
    ...links.map((l) => `ip link del ${q(l)} 2>/dev/null`),
    ...namespaces.map((n) => `ip netns del ${q(n)} 2>/dev/null`),
  ];
  return `trap '' INT TERM HUP; read -r cmd; [ "$cmd" = disarm ] && exit 0; ${steps.join('; ')}; exit 0`;
}

function startReaper(links: readonly string[], namespaces: readonly string[]): ChildProcess {
  const child = spawn('sh', ['-c', reaperScript(links, namespaces)], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  child.on('error', () => { /* no sh: the exit handler still cleans up */ });
  child.unref();
  (child.stdin as Socket | null)?.unref?.();
  child.stdin?.on('error', () => { /* reaper gone */ });
  return child;
}

function disarmReaper(r: ChildProcess | undefined): void {
  if (!r || r.exitCode !== null || r.signalCode !== null) return;
  try {
    r.stdin?.end('disarm\n');
  } catch {
    // already gone
  }
}

function disableIpv6(dev: string): void {
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
  } catch {
    // no IPv6 in the root namespace: nothing to disable
  }
}

/** Builds the network; throws (after removing whatever it made) when a step fails. */
export function createDemoNetwork(options: DemoNetworkOptions = {}): DemoNetwork {
  const tag = options.tag ?? defaultTag();
  if (!/^[a-z0-9]{1,6}$/.test(tag)) throw new BpfkitError('ERR_BPFKIT_DEMO', `demo network tag "${tag}" must be 1-6 lowercase letters or digits`);
  const n = options.clientsPerFamily ?? 3;
  const clientNs = `bpfkit-${tag}-clients`;
  const serverNs = `bpfkit-${tag}-servers`;
  const clientLink = `bpfkit-${tag}a`;
  const serverLink = `bpfkit-${tag}b`;
  const bridge = `bpfkit-${tag}br`;
  const links = [clientLink, serverLink, bridge];
  const namespaces = [clientNs, serverNs];
  const server = { v4: '10.77.0.1', v6: 'fd77::1' };
  const clients = {
    v4: Array.from({ length: n }, (_, i) => `10.77.0.${11 + i}`),
    v6: Array.from({ length: n }, (_, i) => `fd77::${(0x11 + i).toString(16)}`),
  };
  const reaper = options.reaper === false ? undefined : startReaper(links, namespaces);
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    for (const l of links) spawnSync('ip', ['link', 'del', l], { stdio: 'ignore' });
    for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    disarmReaper(reaper);
  };
  try {
    ipCommand(['-batch', '-'], [
      `netns add ${clientNs}`,
      `netns add ${serverNs}`,
      `link add ${bridge} type bridge`,
      `link add ${clientLink} type veth peer name veth0 netns ${clientNs}`,
      `link add ${serverLink} type veth peer name veth0 netns ${serverNs}`,
      `link set ${clientLink} master ${bridge}`,
      `link set ${serverLink} master ${bridge}`,
      '',
    ].join('\n'));
    for (const dev of links) disableIpv6(dev);
    ipCommand(['-batch', '-'], [`link set ${bridge} up`, `link set ${clientLink} up`, `link set ${serverLink} up`, ''].join('\n'));
    // nodad: the addresses are usable at once instead of after duplicate address detection.
    ipCommand(['-n', clientNs, '-batch', '-'], [
      'link set lo up',
      ...clients.v4.map((a) => `addr add ${a}/24 dev veth0`),
      ...clients.v6.map((a) => `addr add ${a}/64 dev veth0 nodad`),
      'link set veth0 up',
      '',
    ].join('\n'));
    ipCommand(['-n', serverNs, '-batch', '-'], [
      'link set lo up',
      `addr add ${server.v4}/24 dev veth0`,
      `addr add ${server.v6}/64 dev veth0 nodad`,
      'link set veth0 up',
      '',
    ].join('\n'));
  } catch (e) {
    destroy();
    throw e;
  }
  return { tag, clientNs, serverNs, bridge, clientLink, serverLink, server, clients, namespaces, links, destroy };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes demo networks whose process is gone and whose reaper could not clean up (it was killed
 * too, or the machine lacked sh): the tag starts with the owner's pid in base 36. Returns the tags
 * removed.
 */
export function removeStaleDemoNetworks(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = /^bpfkit-([a-z0-9]{2,6})-clients$/.exec(ns);
    if (!m) continue;
    const tag = m[1]!;
    const pid = Number.parseInt(tag.slice(0, -1), 36);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    for (const l of [`bpfkit-${tag}a`, `bpfkit-${tag}b`, `bpfkit-${tag}br`]) spawnSync('ip', ['link', 'del', l], { stdio: 'ignore' });
    for (const n of [`bpfkit-${tag}-clients`, `bpfkit-${tag}-servers`]) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    removed.push(tag);
  }
  return removed;
}

/** Network namespaces that exist now. */
export function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]!).filter((s) => s !== '');
}
