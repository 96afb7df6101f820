/**
 * Traffic for the pktcount demo and its tests, run inside the demo's namespaces with
 * `ip netns exec <ns> node traffic.js <mode> ...`:
 *
 *   serve <v4> <v6>                  TCP 7 (echo), 22 (echo), 80 (a web page, then close),
 *                                    443 (as many bytes as asked for); UDP 7, 53, 123, 5004 (echo);
 *                                    on both addresses. Prints "ready" once listening.
 *   clients <server4> <server6> <src>...
 *                                    the demo's mix from each source address: an interactive
 *                                    session on :22, downloads on :443, short page loads on :80,
 *                                    DNS-like queries on :53, NTP-like polls on :123 and
 *                                    RTP-like calls on :5004, each
 *                                    source busier or quieter over time so the ranking moves.
 *   burst tcp|udp <src> <sport> <dst> <dport> <count>
 *                                    exactly `count` request/echo rounds from src:sport (tests);
 *                                    prints "done <echoes>".
 *
 * serve and clients stop when their standard input closes, i.e. when the pktcount that started
 * them is gone, however it ended.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const TCP_ECHO = [7, 22];
const UDP_ECHO = [7, 53, 123, 5004];

function family(addr: string): 'udp4' | 'udp6' {
  return addr.includes(':') ? 'udp6' : 'udp4';
}

function exitWithStdin(cleanup: () => void): void {
  const stop = (): void => {
    try {
      cleanup();
    } finally {
      process.exit(0);
    }
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---- serve -------------------------------------------------------------------------------------

const PAGE = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 1800\r\nconnection: close\r\n\r\n${'<p>pktcount demo</p>'.repeat(90)}`);

function serve(addrs: string[]): void {
  const closers: (() => void)[] = [];
  let pending = 0;
  const listening = (): void => {
    if (--pending === 0) process.stdout.write('ready\n');
  };
  for (const addr of addrs) {
    for (const port of [...TCP_ECHO, 80, 443]) {
      pending++;
      const srv = net.createServer((sock) => {
        sock.on('error', () => sock.destroy());
        sock.setNoDelay(true);
        if (port === 80) {
          sock.once('data', () => sock.end(PAGE));
        } else if (port === 443) {
          let buf = '';
          sock.on('data', (d) => {
            buf += d.toString('latin1');
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const n = Math.min(Number(/\d+/.exec(buf.slice(0, nl))?.[0] ?? 0), 1 << 20);
              buf = buf.slice(nl + 1);
              if (n > 0) sock.write(Buffer.alloc(n, 0x2e));
            }
          });
        } else {
          sock.on('data', (d) => sock.write(d));
        }
      });
      srv.on('error', (e) => {
        process.stderr.write(`traffic serve: TCP ${addr}:${port}: ${e.message}\n`);
        process.exit(1);
      });
      srv.listen({ host: addr, port }, listening);
      closers.push(() => srv.close());
    }
    for (const port of UDP_ECHO) {
      pending++;
      const s = dgram.createSocket(family(addr));
      s.on('message', (msg, r) => s.send(msg, r.port, r.address));
      s.on('error', (e) => {
        process.stderr.write(`traffic serve: UDP ${addr}:${port}: ${e.message}\n`);
        process.exit(1);
      });
      s.bind(port, addr, listening);
      closers.push(() => s.close());
    }
  }
  exitWithStdin(() => closers.forEach((c) => c()));
}

// ---- clients -----------------------------------------------------------------------------------

function rand(min: number, max: number): number {
  return min + Math.random() * (max - min);
}

/** One source address and how busy it is: a base weight that swells and ebbs over a period. */
class Host {
  readonly src: string;
  readonly server: string;
  readonly weight: number;
  readonly period: number;
  readonly phase: number;
  readonly born = Date.now();
  readonly timers = new Set<NodeJS.Timeout>();
  readonly sockets = new Set<net.Socket | dgram.Socket>();
  stopped = false;

  constructor(src: string, server: string, weight: number) {
    this.src = src;
    this.server = server;
    this.weight = weight;
    this.period = rand(25_000, 70_000);
    this.phase = rand(0, 2 * Math.PI);
  }

  /** Between about 0.1 and 1.5 times the base weight, changing smoothly. */
  activity(): number {
    const t = (Date.now() - this.born) / this.period;
    return this.weight * (0.8 + 0.7 * Math.sin(2 * Math.PI * t + this.phase));
  }

  /** Runs `fn` after `ms` (scaled down when the host is busy), unless stopped. */
  later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const scaled = ms / Math.max(this.activity(), 0.1);
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, Math.min(scaled, 15_000));
    this.timers.add(t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) {
      if (s instanceof net.Socket) s.destroy();
      else s.close();
    }
  }

  /** A TCP connection from this host; on error or close, `onGone` (after a pause). */
  connect(port: number, onGone: () => void): net.Socket {
    const sock = net.connect({ host: this.server, port, localAddress: this.src });
    this.sockets.add(sock);
    sock.setNoDelay(true);
    let gone = false;
    const done = (): void => {
      if (gone) return;
      gone = true;
      this.sockets.delete(sock);
      sock.destroy();
      this.later(rand(500, 2000), onGone);
    };
    sock.on('error', done);
    sock.on('close', done);
    sock.on('data', () => { /* replies are only there to make the client ACK */ });
    return sock;
  }

  /** An interactive session: small writes, echoed; reconnects (a new source port) now and then. */
  ssh(): void {
    const sock = this.connect(22, () => this.ssh());
    const until = Date.now() + rand(20_000, 60_000);
    const type = (): void => {
      if (sock.destroyed) return;
      if (Date.now() > until) {
        sock.end();
        return;
      }
      sock.write('ls -la\n'.slice(0, 1 + Math.floor(Math.random() * 7)));
      this.later(rand(60, 300), type);
    };
    sock.once('connect', type);
  }

  /** A long-lived connection that downloads now and then. */
  https(): void {
    const sock = this.connect(443, () => this.https());
    const until = Date.now() + rand(30_000, 90_000);
    const fetch = (): void => {
      if (sock.destroyed) return;
      if (Date.now() > until) {
        sock.end();
        return;
      }
      sock.write(`GET ${Math.floor(rand(4, 48)) * 1024}\n`);
      this.later(rand(400, 1800), fetch);
    };
    sock.once('connect', fetch);
  }

  /** Short page loads, each on a new connection. */
  http(): void {
    this.later(rand(1500, 5000), () => {
      const sock = this.connect(80, () => { /* the next load is already scheduled */ });
      sock.once('connect', () => sock.write('GET / HTTP/1.1\r\nhost: demo\r\n\r\n'));
      sock.on('end', () => sock.end());
      this.http();
    });
  }

  /** Calls: a steady stream of small datagrams (RTP-like) from a new port per call, then a pause. */
  rtp(): void {
    this.later(rand(1000, 6000), () => {
      const s = dgram.createSocket(family(this.src));
      this.sockets.add(s);
      s.on('error', () => { /* a lost datagram is fine */ });
      s.on('message', () => { /* the echo */ });
      const until = Date.now() + rand(15_000, 40_000);
      const frame = Buffer.alloc(172, 0x80);
      const tick = (): void => {
        if (this.stopped) return;
        if (Date.now() > until) {
          this.sockets.delete(s);
          s.close();
          this.rtp();
          return;
        }
        s.send(frame, 5004, this.server, () => { /* ignore errors */ });
        this.later(rand(30, 60), tick);
      };
      s.bind(0, this.src, tick);
    });
  }

  /** Datagrams from one bound port, as a resolver or time client would send them. */
  udp(port: number, minMs: number, maxMs: number, size: number): void {
    const s = dgram.createSocket(family(this.src));
    this.sockets.add(s);
    s.on('error', () => { /* a lost datagram is fine */ });
    s.on('message', () => { /* the echo */ });
    s.bind(0, this.src, () => {
      const send = (): void => {
        s.send(Buffer.alloc(size, 0x61), port, this.server, () => { /* ignore errors */ });
        this.later(rand(minMs, maxMs), send);
      };
      send();
    });
  }
}

function clients(server4: string, server6: string, sources: string[]): void {
  const weights = [1.2, 0.9, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12];
  const hosts = sources.map((src, i) => new Host(src, src.includes(':') ? server6 : server4, weights[i % weights.length]!));
  hosts.forEach((h, i) => {
    // Stagger the start so the first seconds already show a ranking rather than a tie.
    setTimeout(() => {
      h.ssh();
      h.https();
      h.http();
      h.udp(53, 150, 900, 40);
      if (i % 2 === 0) h.udp(123, 1500, 3000, 48);
      if (i % 3 === 1) h.rtp();
    }, i * 150);
  });
  exitWithStdin(() => hosts.forEach((h) => h.stop()));
}

// ---- burst -------------------------------------------------------------------------------------

function burst(proto: string, src: string, sport: number, dst: string, dport: number, count: number): void {
  let got = 0;
  const finish = (): void => {
    process.stdout.write(`done ${got}\n`);
    process.exit(got === count ? 0 : 1);
  };
  setTimeout(finish, 20_000).unref();
  if (proto === 'udp') {
    const s = dgram.createSocket(family(src));
    let timer: NodeJS.Timeout | undefined;
    let waiting = -1;
    const next = (i: number): void => {
      if (i === count) {
        s.close();
        finish();
        return;
      }
      waiting = i;
      timer = setTimeout(() => {
        waiting = -1;
        next(i + 1);
      }, 1000);
      s.send(`ping ${i}`, dport, dst);
    };
    s.on('message', () => {
      if (waiting < 0) return;
      const i = waiting;
      waiting = -1;
      got++;
      clearTimeout(timer);
      next(i + 1);
    });
    s.bind(sport, src, () => next(0));
    return;
  }
  const sock = net.connect({ host: dst, port: dport, localAddress: src, localPort: sport });
  sock.setNoDelay(true);
  sock.on('error', (e) => {
    process.stderr.write(`traffic burst: ${e.message}\n`);
    finish();
  });
  let i = 0;
  sock.on('connect', () => sock.write(`ping ${i}\n`));
  sock.on('data', () => {
    got++;
    if (++i < count) sock.write(`ping ${i}\n`);
    else sock.end(finish);
  });
}

// ---- main --------------------------------------------------------------------------------------

export function trafficMain(argv: string[]): void {
  const [mode, ...args] = argv;
  if (mode === 'serve' && args.length >= 1) {
    serve(args);
  } else if (mode === 'clients' && args.length >= 3) {
    clients(args[0]!, args[1]!, args.slice(2));
  } else if (mode === 'burst' && args.length === 6) {
    const [proto, src, sport, dst, dport, count] = args as [string, string, string, string, string, string];
    burst(proto, src, Number(sport), dst, Number(dport), Number(count));
  } else {
    process.stderr.write('usage: traffic.js serve <addr>... | clients <server4> <server6> <src>... | burst tcp|udp <src> <sport> <dst> <dport> <count>\n');
    process.exit(2);
  }
}

/** The path of this module as a script, for `node <path> ...`. */
export const TRAFFIC_SCRIPT = fileURLToPath(import.meta.url);

if (process.argv[1] === TRAFFIC_SCRIPT) trafficMain(process.argv.slice(2));
