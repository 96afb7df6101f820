/**
 * deploy/: what can be checked without a container engine (there is none on the build machines).
 * The DaemonSet manifest parses; every container's arguments parse with bpfkit's own command line
 * parsers (a renamed or removed flag fails here); ports, annotations, mounts and capabilities agree
 * with those arguments and with what the tools check for; the Dockerfile's COPY sources exist in the
 * build context (the repository root) and its entrypoint is the package's command.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parsePktcountArgs } from '../../src/tools/pktcount/options.js';
import { pktcountNeeds } from '../../src/tools/pktcount/privileges.js';
import { parseExecsnoopArgs } from '../../src/tools/execsnoop/options.js';
import { CAP, missing, missingTracingCaps, type CapName } from '../../src/tools/common/privileges.js';

const root = new URL('../../..', import.meta.url).pathname;

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
}

interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string } }[];
}

interface DaemonSet {
  kind: 'DaemonSet';
  metadata: { name: string };
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
}

function manifests(): { kind: string }[] {
  const docs = parseAllDocuments(readFileSync(join(root, 'deploy', 'daemonset.yaml'), 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], 'deploy/daemonset.yaml parses');
  return docs.map((d) => d.toJS() as { kind: string });
}

function daemonSets(): DaemonSet[] {
  return manifests().filter((m): m is DaemonSet => m.kind === 'DaemonSet');
}

/** The DaemonSet running `bpfkit <tool>`, its pod, its container and the tool's arguments (after the subcommand). */
function toolSet(tool: string): { set: DaemonSet; pod: PodSpec; c: Container; args: string[] } {
  const set = daemonSets().find((s) => s.spec.template.spec.containers[0]!.args?.[0] === tool);
  assert.ok(set, `a DaemonSet runs bpfkit ${tool}`);
  const pod = set.spec.template.spec;
  const c = pod.containers[0]!;
  return { set, pod, c, args: expandedArgs(c).slice(1) };
}

/** The container's arguments as Kubernetes passes them: $(VAR) replaced from its env. */
function expandedArgs(c: Container): string[] {
  const env = new Map((c.env ?? []).map((e) => [e.name, e.value ?? '']));
  return (c.args ?? []).map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => {
    assert.ok(env.has(name), `${c.name}: ${whole} has no env entry`);
    return env.get(name)!;
  }));
}

/** The effective capability set a container gets: what it adds (after dropping ALL). */
function capSet(c: Container): bigint {
  assert.ok(!c.securityContext?.privileged, `${c.name} asks for exact capabilities, not privileged`);
  assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${c.name} drops every capability it does not add`);
  let caps = 0n;
  for (const name of c.securityContext?.capabilities?.add ?? []) {
    if (name in CAP) caps |= 1n << BigInt(CAP[name as CapName]);
  }
  return caps;
}

function mountsOf(pod: PodSpec, c: Container): Map<string, string> {
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v.hostPath?.path]));
  const out = new Map<string, string>();
  for (const m of c.volumeMounts ?? []) {
    const host = volumes.get(m.name);
    assert.ok(host, `${c.name}: volume ${m.name} is defined as a hostPath`);
    out.set(m.mountPath, host);
  }
  return out;
}

describe('deploy/daemonset.yaml', () => {
  it('has a DaemonSet for pktcount and one for execsnoop, each selecting its own pods', () => {
    const sets = daemonSets();
    assert.deepEqual(sets.map((s) => s.spec.template.spec.containers[0]!.args?.[0]).sort(), ['execsnoop', 'pktcount']);
    for (const s of sets) {
      for (const [k, v] of Object.entries(s.spec.selector.matchLabels)) {
        assert.equal(s.spec.template.metadata.labels[k], v, `${s.metadata.name}: the selector matches its pods`);
      }
      for (const c of s.spec.template.spec.containers) {
        assert.equal(c.command, undefined, `${c.name} runs the image's entrypoint (bpfkit)`);
      }
    }
  });

  it('pktcount: its arguments parse, and the port, annotations, probe and capabilities follow from them', () => {
    const { set, pod, c, args } = toolSet('pktcount');
    const opts = parsePktcountArgs(args);
    assert.notEqual(opts, 'help');
    if (opts === 'help') return;
    assert.ok(opts.iface, 'it counts on a node interface (not the demo, which makes namespaces)');
    assert.ok(opts.listen, 'it serves /metrics');
    assert.equal(opts.listen.host, '0.0.0.0', 'reachable by Prometheus from outside the node');
    const port = c.ports?.find((p) => p.containerPort === opts.listen!.port);
    assert.ok(port, `a container port ${opts.listen.port} matches --listen`);
    assert.equal(port.hostPort, opts.listen.port, 'with hostNetwork the host port is the listen port');
    assert.equal(pod.hostNetwork, true, 'XDP needs the node\'s own interface');
    const ann = set.spec.template.metadata.annotations ?? {};
    assert.equal(ann['prometheus.io/scrape'], 'true');
    assert.equal(ann['prometheus.io/port'], String(opts.listen.port));
    assert.equal(ann['prometheus.io/path'], '/metrics');
    const probe = c.readinessProbe?.httpGet;
    if (probe) assert.ok(probe.port === port.name || probe.port === opts.listen.port, 'the probe asks the listen port');
    assert.deepEqual(missing(pktcountNeeds(false), capSet(c)), [], 'the capabilities pktcount checks for are granted');
    assert.equal(mountsOf(pod, c).get('/sys/fs/bpf'), '/sys/fs/bpf');
  });

  it('execsnoop: its arguments parse (JSON lines), in the host pid namespace, with tracefs and debugfs', () => {
    const { pod, c, args } = toolSet('execsnoop');
    const opts = parseExecsnoopArgs(args);
    assert.notEqual(opts, 'help');
    if (opts === 'help') return;
    assert.equal(opts.json, true);
    assert.equal(pod.hostPID, true);
    assert.deepEqual(missingTracingCaps(capSet(c)), [], 'the capabilities execsnoop checks for are granted');
    const mounts = mountsOf(pod, c);
    for (const path of ['/sys/fs/bpf', '/sys/kernel/tracing', '/sys/kernel/debug']) {
      assert.equal(mounts.get(path), path, `${path} is the host's`);
    }
  });

  it('a renamed flag would fail: the parsers refuse what they do not know', () => {
    assert.throws(() => parsePktcountArgs(['--iface', 'eth0', '--metrics-port', '9100']), /metrics-port/);
    assert.throws(() => parseExecsnoopArgs(['--jsonl']), /jsonl/);
  });
});

describe('deploy/Dockerfile', () => {
  const lines = readFileSync(join(root, 'deploy', 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it('builds FROM a Debian image and runs the package\'s command', () => {
    const from = lines.filter((l) => /^FROM\s/i.test(l));
    assert.equal(from.length, 1);
    assert.match(from[0]!, /(bookworm|bullseye|trixie|debian)/, 'a Debian base');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const entry = lines.find((l) => /^ENTRYPOINT\s/i.test(l));
    assert.ok(entry);
    assert.deepEqual(JSON.parse(entry.replace(/^ENTRYPOINT\s+/i, '')), Object.keys(pkg.bin));
  });

  it('every COPY source exists in the build context (a glob: at least one source of the line matches)', () => {
    const copies = lines.filter((l) => /^(COPY|ADD)\s/i.test(l) && !/--from=/.test(l));
    assert.ok(copies.length > 0);
    for (const line of copies) {
      const parts = line.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
      const sources = parts.slice(0, -1);
      assert.ok(sources.length > 0, `${line}: has a source`);
      const present = sources.filter((s) => {
        if (!/[*?[]/.test(s)) return existsSync(join(root, s));
        const dir = join(root, s.includes('/') ? s.slice(0, s.lastIndexOf('/')) : '.');
        const glob = new RegExp(`^${s.slice(s.lastIndexOf('/') + 1).replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
        return existsSync(dir) && readdirSync(dir).some((f) => glob.test(f));
      });
      const plain = sources.filter((s) => !/[*?[]/.test(s));
      for (const s of plain) assert.ok(existsSync(join(root, s)), `${line}: ${s} exists in the build context`);
      assert.ok(present.length > 0, `${line}: at least one source exists (Docker refuses a COPY with none)`);
    }
  });
});
