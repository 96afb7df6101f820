/**
 * The leaderboard server (the seed's `srv.Submit(m)`), with what the seed's lacked: it listens on
 * one address (127.0.0.1:8080 by default), refuses websockets from foreign origins, keeps a bounded
 * history, and drops no client for being slow but skips snapshots it cannot take yet.
 *
 *   GET /           the page (web/index.html, app.js, style.css, files of the package)
 *   GET /json       the latest snapshot
 *   GET /ws         websocket: the current snapshot (with the recent history for the chart) on
 *                   connect, then every new one
 *   GET /metrics    Prometheus text format
 *   GET /healthz    "ok"
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { BpfkitError } from '../../index.js';
import { createMetrics, type PktcountMetrics } from './metrics.js';
import type { Snapshot } from './snapshot.js';

export interface ServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The snapshot served before the first submit. */
  readonly initial: Snapshot;
  /** Snapshots kept for the chart (default 300). */
  readonly historyLength?: number;
  /** Origins allowed besides the server's own (e.g. a reverse proxy's). */
  readonly allowOrigins?: readonly string[];
  /**
   * Host header values answered besides the names the server listens as (e.g. a reverse proxy's
   * or a DNS name of this machine): `name` (with the server's port, or none on port 80) or
   * `name:port`. The hosts of `allowOrigins` are added too.
   */
  readonly allowedHosts?: readonly string[];
  /** Websocket clients at once (default 64). */
  readonly maxClients?: number;
  /** Directory of index.html, app.js and style.css (default: ./web next to this module). */
  readonly webRoot?: URL | string;
  /** Websocket keepalive ping interval (default 30 s). */
  readonly pingIntervalMs?: number;
}

/** A point of the chart's history: packets per second, overall and per top source. */
export interface HistoryPoint {
  readonly t: number;
  readonly total: number;
  readonly sources: Readonly<Record<string, number>>;
}

/** Why the server could not start: the address is taken, not ours, or not allowed. */
export class ListenError extends BpfkitError {
  constructor(message: string, cause: unknown) {
    super('ERR_BPFKIT_LISTEN', message, { cause });
  }
}

const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** Slow clients: skip a snapshot above this much unsent data, drop the client far above it. */
const SKIP_ABOVE = 1 << 20;
const DROP_ABOVE = 16 << 20;

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Host header values the server answers: each name it is reached by (as for ownOrigins), with its
 * port, and without a port when that is 80. Anything else is a request for another site, such as
 * a DNS-rebinding page in the user's browser that resolved its own name to this address: it must
 * not read /json or /metrics.
 */
export function ownHosts(host: string, port: number, extra: readonly string[] = []): Set<string> {
  const out = new Set<string>();
  for (const origin of ownOrigins(host, port)) out.add(new URL(origin).host);
  for (const e of extra) {
    const h = e.trim().toLowerCase();
    if (h === '') continue;
    if (/^\[.*\]:\d+$|^[^:]+:\d+$/.test(h)) {
      out.add(h);
      continue;
    }
    const bare = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
    out.add(`${bare}:${port}`);
    if (port === 80) out.add(bare);
  }
  return out;
}

/**
 * The origins a page served by this server has: http://<name>:<port> for each name the server is
 * reached by (the listen address; the loopback names on loopback; every local address and the
 * host name on a wildcard address).
 */
export function ownOrigins(host: string, port: number): Set<string> {
  const names = new Set<string>();
  if (isWildcardHost(host)) {
    names.add('localhost');
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) names.add(a.address.toLowerCase().replace(/%.*$/, ''));
    }
  } else {
    names.add(host.toLowerCase());
    if (isLoopbackHost(host)) {
      names.add('localhost');
      names.add('127.0.0.1');
      names.add('::1');
    }
  }
  const out = new Set<string>();
  for (const n of names) {
    out.add(`http://${hostPort(n, port)}`);
    if (port === 80) out.add(`http://${n.includes(':') ? `[${n}]` : n}`);
  }
  return out;
}

function listenHint(e: NodeJS.ErrnoException, host: string, port: number): string {
  const where = hostPort(host, port);
  switch (e.code) {
    case 'EADDRINUSE':
      return `${where} is already in use (another pktcount, or another server): choose another address with --listen ${hostPort(host === '::' ? '::1' : host, port === 0 ? 8081 : port + 1)}, or turn the page off with --no-web`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine: give one of its addresses to --listen (127.0.0.1:${port} serves this machine only)`;
    case 'EACCES':
      return `listening on port ${port} needs privilege (ports below 1024): choose a port above 1023 with --listen`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the --listen host "${host}" does not resolve`;
    default:
      return `cannot listen on ${where}: ${e.message}`;
  }
}

export class LeaderboardServer {
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #metrics: PktcountMetrics;
  readonly #files: Map<string, { body: Buffer; type: string }>;
  readonly #history: HistoryPoint[] = [];
  readonly #historyLength: number;
  readonly #maxClients: number;
  readonly #allowed: Set<string>;
  readonly #alive = new WeakMap<WebSocket, boolean>();
  /** Host header values answered (see ownHosts). */
  readonly #hosts: Set<string>;
  #latest: Snapshot;
  #latestText: string;
  /** /metrics as rendered for the latest snapshot: every scrape within an interval gets it. */
  #metricsText: Promise<string> | undefined;
  #skipped = 0;
  #ping: NodeJS.Timeout | undefined;
  #closed = false;
  readonly host: string;
  readonly port: number;

  private constructor(http: Server, options: ServerOptions, files: Map<string, { body: Buffer; type: string }>, port: number) {
    this.#http = http;
    this.host = options.host;
    this.port = port;
    this.#files = files;
    this.#historyLength = options.historyLength ?? 300;
    this.#maxClients = options.maxClients ?? 64;
    this.#latest = options.initial;
    this.#latestText = JSON.stringify(options.initial);
    this.#allowed = new Set([...ownOrigins(options.host, port), ...(options.allowOrigins ?? []).map((o) => o.toLowerCase())]);
    this.#hosts = ownHosts(options.host, port, options.allowedHosts);
    // A proxy serving an allowed origin may pass its Host through (e.g. dash.example for https).
    for (const o of options.allowOrigins ?? []) this.#hosts.add(new URL(o).host);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
    this.#metrics = createMetrics({
      latest: () => this.#latest,
      clients: () => this.#wss.clients.size,
      skippedSends: () => this.#skipped,
    });
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#onRequest(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`internal error: ${(e as Error).message}\n`);
      });
    });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    const interval = options.pingIntervalMs ?? 30_000;
    this.#ping = setInterval(() => {
      for (const ws of this.#wss.clients) {
        if (this.#alive.get(ws) === false) {
          ws.terminate();
          continue;
        }
        this.#alive.set(ws, false);
        ws.ping();
      }
    }, interval);
    this.#ping.unref();
  }

  /** Reads the page's files and listens; rejects with a ListenError that says what to do. */
  static async start(options: ServerOptions): Promise<LeaderboardServer> {
    const root = options.webRoot ?? new URL('./web/', import.meta.url);
    const files = new Map<string, { body: Buffer; type: string }>();
    for (const [path, { file, type }] of Object.entries(STATIC_FILES)) {
      const url = typeof root === 'string' ? new URL(file, `file://${root.endsWith('/') ? root : `${root}/`}`) : new URL(file, root);
      try {
        files.set(path, { body: readFileSync(url), type });
      } catch {
        throw new BpfkitError('ERR_BPFKIT_WEB_FILES', `the leaderboard page ${url.pathname} is missing: build with \`npm run build\` (it copies src/tools/pktcount/web into dist), or run with --no-web`);
      }
    }
    const http = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 });
    http.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(new ListenError(`leaderboard: ${listenHint(e, options.host, options.port)}`, e));
      };
      http.once('error', onError);
      http.listen({ host: options.host, port: options.port, exclusive: true }, () => {
        http.off('error', onError);
        resolve();
      });
    });
    http.on('error', () => { /* after listening: per-connection errors only */ });
    const port = (http.address() as AddressInfo).port;
    return new LeaderboardServer(http, options, files, port);
  }

  /** Where the page is, e.g. http://127.0.0.1:8080/ */
  get url(): string {
    const h = isWildcardHost(this.host) ? '127.0.0.1' : this.host;
    return `http://${hostPort(h, this.port)}/`;
  }

  get latest(): Snapshot {
    return this.#latest;
  }

  get history(): readonly HistoryPoint[] {
    return this.#history;
  }

  get clientCount(): number {
    return this.#wss.clients.size;
  }

  /** A new snapshot: kept as the latest, added to the history, sent to every websocket client. */
  submit(s: Snapshot): void {
    if (this.#closed) return;
    this.#latest = s;
    this.#latestText = JSON.stringify(s);
    this.#metricsText = undefined;
    const sources: Record<string, number> = {};
    for (const src of s.sources) sources[src.src] = src.rate;
    this.#history.push({ t: Date.parse(s.time), total: s.rates.packets, sources });
    if (this.#history.length > this.#historyLength) this.#history.splice(0, this.#history.length - this.#historyLength);
    const msg = `{"type":"snapshot",${this.#latestText.slice(1)}`;
    for (const ws of this.#wss.clients) this.#send(ws, msg);
  }

  #send(ws: WebSocket, msg: string): void {
    if (ws.readyState !== 1) return;
    if (ws.bufferedAmount > DROP_ABOVE) {
      ws.terminate();
      return;
    }
    if (ws.bufferedAmount > SKIP_ABOVE) {
      this.#skipped++;
      return;
    }
    ws.send(msg);
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
      res.end('method not allowed\n');
      return;
    }
    const send = (status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void => {
      const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      res.writeHead(status, { 'content-type': type, 'content-length': String(buf.length), 'cache-control': 'no-cache', ...SECURITY_HEADERS, ...extra });
      res.end(req.method === 'HEAD' ? undefined : buf);
    };
    if (!this.hostAllowed(req.headers.host)) {
      send(421, 'text/plain; charset=utf-8', `misdirected request: this server answers as ${[...this.#hosts].join(', ')} (add names with --allowed-host)\n`);
      return;
    }
    const file = this.#files.get(path);
    if (file) {
      send(200, file.type, file.body);
      return;
    }
    switch (path) {
      case '/json':
        send(200, 'application/json; charset=utf-8', `${this.#latestText}\n`);
        return;
      case '/metrics':
        send(200, this.#metrics.contentType, await this.#renderMetrics());
        return;
      case '/healthz':
        send(200, 'text/plain; charset=utf-8', 'ok\n');
        return;
      case '/ws':
        send(426, 'text/plain; charset=utf-8', 'this is a websocket endpoint\n', { upgrade: 'websocket' });
        return;
      case '/favicon.ico':
        res.writeHead(204, SECURITY_HEADERS);
        res.end();
        return;
      default:
        send(404, 'text/plain; charset=utf-8', `not found: ${path}\nendpoints: / /json /ws /metrics\n`);
    }
  }

  /** Renders /metrics once per snapshot (a failed render is tried again by the next scrape). */
  #renderMetrics(): Promise<string> {
    if (!this.#metricsText) {
      const text = this.#metrics.render();
      this.#metricsText = text;
      text.catch(() => {
        if (this.#metricsText === text) this.#metricsText = undefined;
      });
    }
    return this.#metricsText;
  }

  #refuse(socket: Duplex, status: number, reason: string): void {
    const body = `${reason}\n`;
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  /** Whether a Host header names this server (HTTP/1.1 requires one; without it, no). */
  hostAllowed(host: string | undefined): boolean {
    if (host === undefined) return false;
    const h = host.trim().toLowerCase();
    return this.#hosts.has(h) || this.#hosts.has(h.replace(/\.(?=(:\d+)?$)/, ''));
  }

  /** Whether a websocket handshake may proceed: no Origin (not a browser) or one of ours. */
  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    return this.#allowed.has(origin.toLowerCase());
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (this.#closed) return this.#refuse(socket, 503, 'Service Unavailable');
    if (path !== '/ws') return this.#refuse(socket, 404, 'Not Found');
    if (!this.hostAllowed(req.headers.host)) return this.#refuse(socket, 421, 'Misdirected Request');
    const origin = req.headers.origin;
    if (!this.originAllowed(origin)) return this.#refuse(socket, 403, 'Forbidden');
    if (this.#wss.clients.size >= this.#maxClients) return this.#refuse(socket, 503, 'Service Unavailable');
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#alive.set(ws, true);
      ws.on('pong', () => this.#alive.set(ws, true));
      ws.on('error', () => ws.terminate());
      ws.on('message', () => { /* the page sends nothing we need */ });
      const hello = `{"type":"snapshot","history":${JSON.stringify(this.#history)},${this.#latestText.slice(1)}`;
      this.#send(ws, hello);
    });
  }

  /** Closes every websocket (1001 going away) and stops listening. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ping) clearInterval(this.#ping);
    for (const ws of this.#wss.clients) ws.close(1001, 'pktcount is stopping');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const ws of this.#wss.clients) ws.terminate();
        resolve();
      }, 500);
      timer.unref();
      const check = (): void => {
        if (this.#wss.clients.size === 0) {
          clearTimeout(timer);
          resolve();
        } else {
          setTimeout(check, 10).unref();
        }
      };
      check();
    });
    this.#wss.close();
    await new Promise<void>((resolve) => {
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
  }
}
