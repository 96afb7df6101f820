/**
 * The leaderboard server without a kernel: snapshots are made up and submitted by hand. The page
 * and its files, /json, /metrics (with per-flow series bounded by the top N), the websocket (the
 * snapshot and history on connect, every submit after, foreign origins refused), the bounded
 * history, and the message when the port is taken.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { LeaderboardServer, ListenError, ownHosts, ownOrigins } from '../../src/tools/pktcount/server.js';
import { parsePktcountArgs } from '../../src/tools/pktcount/options.js';
import { SnapshotBuilder, type FlowSample, type Snapshot } from '../../src/tools/pktcount/snapshot.js';
import { ROOT } from '../helpers/index.js';

const WEB = join(ROOT, 'src', 'tools', 'pktcount', 'web');

function snapshotAt(n: number, top = 3): Snapshot {
  const b = new SnapshotBuilder({ iface: 'veth-test', mode: 'skb', demo: false, intervalMs: 1000, maxEntries: 4096, top, excluded: ['10.9.0.0/16'], startedAt: 0 });
  const flows: FlowSample[] = [];
  for (let i = 0; i < 6; i++) {
    const saddr = new Uint8Array(16);
    saddr.set([0xff, 0xff, 192, 168, 5, 2 + i], 10);
    flows.push({ family: 4, saddr, srcPort: 40000 + i, dstPort: i % 2 ? 53 : 22, proto: i % 2 ? 17 : 6, packets: (i + 1) * 10 * n, bytes: 1000 * n });
  }
  return b.build(flows, { packets: 500 * n, counted: 210 * n, excluded: 7 * n, nonIp: 3, otherL4: 4, malformed: 0, untracked: 1 }, 1000 * n);
}

interface WsClient {
  ws: WebSocket;
  messages: unknown[];
  next(): Promise<Record<string, unknown>>;
}

function openWs(url: string, origin?: string): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, origin ? { origin } : {});
    const messages: unknown[] = [];
    const waiters: ((m: unknown) => void)[] = [];
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as unknown;
      const w = waiters.shift();
      if (w) w(m);
      else messages.push(m);
    });
    ws.once('open', () => resolve({
      ws, messages,
      next: () => new Promise((r, j) => {
        const m = messages.shift();
        if (m !== undefined) return r(m as Record<string, unknown>);
        const t = setTimeout(() => j(new Error('no websocket message within 3 s')), 3000);
        waiters.push((x) => { clearTimeout(t); r(x as Record<string, unknown>); });
      }),
    }));
    ws.once('error', reject);
  });
}

function wsRefusal(url: string, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      ws.close();
      reject(new Error(`a websocket from ${origin} was accepted`));
    });
    ws.on('error', () => { /* follows the refusal */ });
  });
}

/** GET `path` from 127.0.0.1:`port` with this Host header (fetch does not let a caller set one). */
function getWithHost(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('pktcount: leaderboard server', () => {
  let srv: LeaderboardServer;
  let base = '';

  before(async () => {
    srv = await LeaderboardServer.start({ host: '127.0.0.1', port: 0, initial: snapshotAt(1), webRoot: WEB, historyLength: 5 });
    base = `http://127.0.0.1:${srv.port}`;
    assert.equal(srv.url, `${base}/`);
  });
  after(async () => {
    await srv.close();
  });

  it('serves the page, its script and style, with a strict content security policy', async () => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script src="app\.js" type="module"><\/script>/);
    assert.match(html, /id="rows"/);
    assert.match(html, /<canvas id="chart"/);
    const js = await fetch(`${base}/app.js`);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(await js.text(), /new WebSocket\(/);
    const css = await fetch(`${base}/style.css`);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    assert.match(await css.text(), /transition: transform/);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/json`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/ws`)).status, 426);
  });

  it('GET /json is the latest snapshot', async () => {
    srv.submit(snapshotAt(2));
    const r = await fetch(`${base}/json`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    const j = await r.json() as Snapshot;
    assert.equal(j.iface, 'veth-test');
    assert.equal(j.intervalMs, 1000);
    assert.equal(typeof j.time, 'string');
    assert.equal(j.entries.length, 3);
    assert.deepEqual(Object.keys(j.entries[0]!).sort(), ['bytes', 'dstPort', 'family', 'packets', 'proto', 'rate', 'src', 'srcPort']);
    assert.deepEqual(j.entries[0], { src: '192.168.5.7', srcPort: 40005, dstPort: 53, proto: 'udp', family: 4, packets: 120, bytes: 2000, rate: 60 });
  });

  it('GET /metrics has totals and only the top flows', async () => {
    srv.submit(snapshotAt(3));
    const r = await fetch(`${base}/metrics`);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await r.text();
    assert.match(text, /^# TYPE pktcount_packets_total counter$/m);
    assert.match(text, /^pktcount_packets_total 1500$/m);
    assert.match(text, /^pktcount_excluded_packets_total 21$/m);
    assert.match(text, /^pktcount_dropped_packets_total 1$/m);
    assert.match(text, /^pktcount_skipped_packets_total\{reason="non_ip"\} 3$/m);
    assert.match(text, /^pktcount_flow_packets_total\{src="192\.168\.5\.7",src_port="40005",dst_port="53",proto="udp"\} 180$/m);
    assert.equal(text.match(/^pktcount_flow_packets_total\{/gm)?.length, 3, 'one series per top flow, no more');
    assert.match(text, /^pktcount_flows 6$/m);
    assert.match(text, /^pktcount_flow_table_capacity 4096$/m);
    assert.match(text, /^pktcount_info\{iface="veth-test",mode="skb"\} 1$/m);
  });

  it('GET /ws sends the snapshot with the history on connect, then each new one', async () => {
    const c = await openWs(`ws://127.0.0.1:${srv.port}/ws`, `http://127.0.0.1:${srv.port}`);
    try {
      const first = await c.next();
      assert.equal(first['type'], 'snapshot');
      assert.equal(first['iface'], 'veth-test');
      assert.ok(Array.isArray(first['history']), 'the first message carries the history');
      assert.ok((first['entries'] as unknown[]).length > 0);
      srv.submit(snapshotAt(4));
      const second = await c.next();
      assert.equal(second['type'], 'snapshot');
      assert.equal(second['history'], undefined);
      assert.equal((second['totals'] as { packets: number }).packets, 2000);
      assert.equal(srv.clientCount, 1);
    } finally {
      c.ws.close();
    }
  });

  it('accepts the loopback names and clients without an Origin; refuses foreign origins', async () => {
    for (const origin of [`http://localhost:${srv.port}`, `http://[::1]:${srv.port}`]) {
      const c = await openWs(`ws://127.0.0.1:${srv.port}/ws`, origin);
      c.ws.close();
    }
    const plain = await openWs(`ws://127.0.0.1:${srv.port}/ws`);
    plain.ws.close();
    assert.equal(await wsRefusal(`ws://127.0.0.1:${srv.port}/ws`, 'http://evil.example'), 403);
    assert.equal(await wsRefusal(`ws://127.0.0.1:${srv.port}/ws`, `http://127.0.0.1:${srv.port + 1}`), 403);
    assert.equal(await wsRefusal(`ws://127.0.0.1:${srv.port}/ws`, `https://127.0.0.1:${srv.port}`), 403);
    assert.equal(await wsRefusal(`ws://127.0.0.1:${srv.port}/other`, `http://127.0.0.1:${srv.port}`), 404);
  });

  it('answers only requests for its own host names (DNS rebinding): 421 for any other Host', async () => {
    const port = srv.port;
    for (const path of ['/', '/json', '/metrics', '/app.js']) {
      const evil = await getWithHost(port, path, `evil.example:${port}`);
      assert.equal(evil.status, 421, path);
      assert.match(evil.body, /misdirected request: this server answers as .*--allowed-host/);
      assert.doesNotMatch(evil.body, /veth-test|pktcount_/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST.:${port}`, `[::1]:${port}`]) {
      assert.equal((await getWithHost(port, '/json', host)).status, 200, host);
    }
    assert.equal((await getWithHost(port, '/json', '127.0.0.1')).status, 421, 'another port (80) is another site');
    assert.equal((await getWithHost(port, '/json', `127.0.0.1:${port + 1}`)).status, 421);
    // The websocket too, even from a client that sends no Origin.
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host: `evil.example:${port}` } });
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('open', () => { ws.close(); resolve(101); });
      ws.on('error', () => { /* follows the refusal */ });
    });
    assert.equal(refused, 421);
  });

  it('keeps a bounded history', () => {
    for (let i = 5; i < 20; i++) srv.submit(snapshotAt(i));
    assert.equal(srv.history.length, 5);
    assert.equal(srv.history.at(-1)!.t, 19_000);
  });
});

describe('pktcount: leaderboard server errors', () => {
  it('says the port is in use and suggests --listen', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        LeaderboardServer.start({ host: '127.0.0.1', port, initial: snapshotAt(1), webRoot: WEB }),
        (e: unknown) => e instanceof ListenError && e.message.includes(`127.0.0.1:${port} is already in use`) && e.message.includes('--listen') && e.message.includes('--no-web'),
      );
    } finally {
      blocker.close();
    }
  });

  it('says when the page files are missing', async () => {
    await assert.rejects(
      LeaderboardServer.start({ host: '127.0.0.1', port: 0, initial: snapshotAt(1), webRoot: join(ROOT, 'no-such-dir') }),
      /the leaderboard page .*index\.html is missing/,
    );
  });

  it('answers the hosts given with allowedHosts (and those of allowed origins)', async () => {
    const srv2 = await LeaderboardServer.start({
      host: '127.0.0.1', port: 0, initial: snapshotAt(1), webRoot: WEB,
      allowedHosts: ['stats.example'], allowOrigins: ['https://dash.example'],
    });
    try {
      const port = srv2.port;
      assert.equal((await getWithHost(port, '/json', `stats.example:${port}`)).status, 200);
      assert.equal((await getWithHost(port, '/json', 'dash.example')).status, 200);
      assert.equal((await getWithHost(port, '/json', 'stats.example')).status, 421, 'the port is part of the host');
      assert.equal((await getWithHost(port, '/json', `evil.example:${port}`)).status, 421);
    } finally {
      await srv2.close();
    }
    const o = parsePktcountArgs(['--allowed-host', 'Stats.Example:8443', '--allowed-host', 'box']);
    assert.ok(o !== 'help');
    assert.deepEqual(o.allowedHosts, ['stats.example:8443', 'box']);
    assert.throws(() => parsePktcountArgs(['--allowed-host', 'http://x/']), /--allowed-host: .* is not a host name/);
    assert.throws(() => parsePktcountArgs(['--allowed-host', 'a b']), /--allowed-host/);
  });

  it('knows its own host names', () => {
    const h = ownHosts('127.0.0.1', 8080, ['stats.example', 'other:9000', '::2']);
    for (const x of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080', 'stats.example:8080', 'other:9000', '[::2]:8080']) assert.ok(h.has(x), x);
    assert.ok(!h.has('evil.example:8080') && !h.has('stats.example'));
    assert.ok(ownHosts('0.0.0.0', 80).has('localhost'));
  });

  it('knows its own origins', () => {
    const o = ownOrigins('127.0.0.1', 8080);
    assert.ok(o.has('http://127.0.0.1:8080') && o.has('http://localhost:8080') && o.has('http://[::1]:8080'));
    assert.ok(!o.has('http://evil.example:8080'));
    const any = ownOrigins('0.0.0.0', 80);
    assert.ok(any.has('http://localhost') && any.has('http://127.0.0.1:80'));
  });
});
