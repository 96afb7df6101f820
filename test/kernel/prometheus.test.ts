/**
 * pktcount at fleet scale, with the tool people already run: a real Prometheus server (Debian's
 * package, installed by scripts/setup.sh) scrapes two pktcount instances, each in a network
 * namespace of its own, and a PromQL query over both gives what each counted.
 *
 *    root namespace                                   bpfkit-<tag>-<i> (i = 1, 2)
 *    prometheus on 127.0.0.1:<free port>
 *    [ bpfkit-<tag>h<i> 10.78.<i>.1 ] <-- veth --> [ veth0 10.78.<i>.2, pktcount (XDP) + /metrics :9464 ]
 *
 * Prometheus scrapes each instance over its veth; the test sends a known number of UDP datagrams
 * into each namespace. Everything (processes, namespaces, links, the storage dir) is removed in
 * `after`, which also runs when a test fails.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelTest, patient, PATIENCE } from '../helpers/index.js';
import { addNamespace, assertNetworkGone, deleteNamespaces, ip, ipQuiet } from '../fixtures/net.js';
import { startPktcount, waitFor, type Running } from '../fixtures/pktcount-run.js';

const METRICS_PORT = 9464;
const DPORT = 5353;
/** Datagrams sent into each instance's namespace: different, so the instances cannot be confused. */
const SENT = [7, 13] as const;

interface Instance {
  readonly ns: string;
  readonly hostLink: string;
  readonly hostAddr: string;
  readonly nsAddr: string;
  readonly target: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `count` UDP datagrams from the root namespace's end of the veth into the instance's namespace. */
async function sendDatagrams(inst: Instance, sport: number, count: number): Promise<void> {
  const sock = createSocket('udp4');
  sock.on('error', () => { /* ICMP port unreachable from the namespace: nothing listens on DPORT */ });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(sport, inst.hostAddr, () => resolve());
  });
  try {
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => sock.send(`datagram ${i}`, DPORT, inst.nsAddr, (e) => (e ? reject(e) : resolve())));
    }
  } finally {
    sock.close();
  }
}

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(base: string, promql: string): Promise<VectorSample[]> {
  const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = await r.json() as { status: string; data?: { resultType: string; result: VectorSample[] }; error?: string };
  assert.equal(body.status, 'success', `query ${promql}: ${body.error}`);
  assert.equal(body.data!.resultType, 'vector');
  return body.data!.result;
}

describe('Prometheus scrapes two pktcount instances in their own namespaces', kernelTest, () => {
  const tag = `${process.pid.toString(36).slice(-4)}p`;
  const instances: Instance[] = [1, 2].map((i) => ({
    ns: `bpfkit-${tag}-${i}`,
    hostLink: `bpfkit-${tag}h${i}`,
    hostAddr: `10.78.${i}.1`,
    nsAddr: `10.78.${i}.2`,
    target: `10.78.${i}.2:${METRICS_PORT}`,
  }));
  const counters: Running[] = [];
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let dir: string | undefined;
  let base = '';

  before(async () => {
    if (spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status !== 0) {
      throw new Error("no 'prometheus' command: run scripts/setup.sh as root (it installs Debian's prometheus)");
    }
    for (const inst of instances) {
      addNamespace(inst.ns);
      ip(['link', 'add', inst.hostLink, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', inst.ns]);
      ip(['addr', 'add', `${inst.hostAddr}/24`, 'dev', inst.hostLink]);
      ip(['link', 'set', inst.hostLink, 'up']);
      ip(['-n', inst.ns, '-batch', '-'], `addr add ${inst.nsAddr}/24 dev veth0\nlink set veth0 up\n`);
    }
    for (const inst of instances) {
      counters.push(await startPktcount([
        '--iface', 'veth0', '--interval', '200ms', '--top', '50', '--quiet', '--listen', inst.target,
      ], { netns: inst.ns }));
    }

    dir = mkdtempSync(join(tmpdir(), 'bpfkit-prometheus-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // YAML is a superset of JSON: the configuration is written as JSON. A scrape may take longer in
    // a slow (emulated) guest: the interval and timeout grow with the patience.
    const every = `${Math.max(1, Math.ceil(PATIENCE))}s`;
    writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify({
      global: { scrape_interval: every, scrape_timeout: every, evaluation_interval: every },
      scrape_configs: [{ job_name: 'pktcount', static_configs: [{ targets: instances.map((i) => i.target) }] }],
    }));
    prometheus = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Series a scrape no longer returns go stale at once rather than after 5 minutes.
      '--query.lookback-delta=30s',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    prometheus.stderr!.on('data', (d: Buffer) => { prometheusLog += d.toString(); });
    const server = prometheus;
    await waitFor('Prometheus to be ready', async () => {
      if (server.exitCode !== null) throw new Error(`prometheus exited (${server.exitCode}):\n${prometheusLog}`);
      return (await fetch(`${base}/-/ready`)).status === 200;
    }, patient(30_000), 200);
  });

  after(async () => {
    for (const c of counters) await c.stop('SIGINT');
    if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
      const gone = new Promise<void>((r) => prometheus!.once('exit', () => r()));
      prometheus.kill('SIGTERM');
      const t = setTimeout(() => prometheus!.kill('SIGKILL'), patient(10_000));
      await gone;
      clearTimeout(t);
    }
    // Deleting a namespace deletes its end of the veth, and with it the root namespace's end.
    for (const inst of instances) {
      deleteNamespaces(inst.ns);
      ipQuiet(['link', 'del', inst.hostLink]);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    assertNetworkGone({ namespaces: instances.map((i) => i.ns), links: instances.map((i) => i.hostLink) });
    assert.ok(!dir || !existsSync(dir), 'the storage dir is removed');
  });

  it('both targets are up, and sum by instance of the UDP flow counter is what each namespace received', async () => {
    try {
      await waitFor('Prometheus to scrape both instances', async () => {
        const up = await query(base, 'up{job="pktcount"} == 1');
        return up.length === 2;
      }, patient(30_000), 250);
    } catch (e) {
      // Say why: Prometheus keeps each target's last scrape error.
      const targets = await (await fetch(`${base}/api/v1/targets`)).json() as { data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] } };
      const why = targets.data.activeTargets.map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`).join('; ');
      const logs = counters.map((c) => c.stderr().trim().split('\n').slice(-3).join(' | ')).join('\n');
      throw new Error(`${(e as Error).message}: ${why}\npktcount:\n${logs}`);
    }

    await sendDatagrams(instances[0]!, 41001, SENT[0]);
    await sendDatagrams(instances[1]!, 41002, SENT[1]);

    const promql = `sum by (instance) (pktcount_flow_packets_total{job="pktcount",proto="udp",dst_port="${DPORT}"})`;
    const byInstance = await waitFor(`${promql} to reach ${SENT.join(' and ')}`, async () => {
      const result = await query(base, promql);
      const got = new Map(result.map((s) => [s.metric['instance'], Number(s.value[1])]));
      return got.get(instances[0]!.target) === SENT[0] && got.get(instances[1]!.target) === SENT[1] ? got : undefined;
    }, patient(30_000), 250);
    assert.equal(byInstance.size, 2, 'one series per instance');

    // Each instance saw only its own namespace's traffic: its source, its port.
    const flows = await query(base, `pktcount_flow_packets_total{job="pktcount",proto="udp",dst_port="${DPORT}"}`);
    const seen = flows.map((s) => `${s.metric['instance']} ${s.metric['src']}:${s.metric['src_port']}`).sort();
    assert.deepEqual(seen, [
      `${instances[0]!.target} ${instances[0]!.hostAddr}:41001`,
      `${instances[1]!.target} ${instances[1]!.hostAddr}:41002`,
    ]);

    // And over both: the fleet's total.
    const total = await query(base, `sum(pktcount_flow_packets_total{job="pktcount",proto="udp",dst_port="${DPORT}"})`);
    assert.equal(Number(total[0]?.value[1]), SENT[0] + SENT[1]);
  });
});
