/**
 * The emulator agrees with the kernel on public programs it was not written against: the
 * compiled XDP objects Debian ships in xdp-tools (xdp-filter's ten variants, xdpdump's capture
 * program) and libxdp (its multi-program dispatcher, the AF_XDP default program, both
 * versions), loaded from /usr/lib/x86_64-linux-gnu/bpf at test time, and the kernel's own
 * samples/bpf network programs (XDP, tc, socket filters), built from Debian's linux-source-6.1 by
 * scripts/build-kernel-samples.sh (scripts/setup.sh installs the packages; nothing is vendored). Each runs on generated frames in several map or
 * configuration set-ups; every input's verdict and packet, and the maps and perf records after,
 * must be the same in both backends.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { Collection } from '../../src/load/collection.js';
import { possibleCpus } from '../../src/sys/cpus.js';
import type { Program } from '../../src/objects/program.js';
import { mulberry32 } from '../../src/testing/fuzz.js';
import { kernelTest, ROOT } from '../helpers/index.js';
import type { ProgType } from '../../src/abi/constants.js';
import { both, differences, PerfRings, show } from '../helpers/emulator-diff.js';
import { compareInNamespace } from '../helpers/fib-net.js';
import { FIB_TOPOLOGY, FWD_INPUTS, cloneRedirectRuns, xdpFwdRuns } from '../helpers/fib-scenarios.js';

/** Where Debian's libxdp1 and xdp-tools put their BPF objects. */
const BPF_DIR = '/usr/lib/x86_64-linux-gnu/bpf';
const object = (name: string): string => {
  const path = join(BPF_DIR, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/setup.sh (apt-get install xdp-tools libxdp1)`);
  return path;
};

/**
 * The object's spec with by-name pinning turned off: xdp-filter pins its maps under /sys/fs/bpf,
 * and a test leaves nothing behind (nor shares state between set-ups through a pin).
 */
async function specOf(name: string): Promise<CollectionSpec> {
  const spec = await CollectionSpec.fromFile(object(name));
  for (const m of spec.maps.values()) m.pinning = 'none';
  return spec;
}

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const bytes = (rnd: Rnd, n: number): number[] => Array.from({ length: n }, () => Math.floor(rnd() * 256));

// Small pools the frames draw from, so that map keys and packets meet often.
const MACS = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x33, 0x33, 0, 0, 0, 1]];
const IPV4 = [[10, 0, 0, 1], [10, 0, 0, 2], [192, 168, 1, 7], [127, 0, 0, 1]];
const IPV6 = [[0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1], [0xfe, 0x80, ...Array(13).fill(0), 2], [...Array(15).fill(0), 1]];
const PORTS = [22, 53, 80, 443, 8080, 0x1600, 0x5000];

/** An Ethernet frame: IPv4, IPv6, VLAN-tagged, ARP or other, TCP/UDP/ICMP or other, sometimes cut short or malformed. */
function frame(rnd: Rnd): Uint8Array {
  const b: number[] = [];
  const mac = () => (rnd() < 0.8 ? pick(rnd, MACS) : bytes(rnd, 6));
  b.push(...mac(), ...mac());
  const kind = rnd();
  let ethertype = kind < 0.45 ? 0x0800 : kind < 0.72 ? 0x86dd : kind < 0.78 ? 0x0806 : kind < 0.86 ? 0x8100 : kind < 0.9 ? 0x88a8 : kind < 0.93 ? 0x8847 : Math.floor(rnd() * 0x10000);
  if (ethertype === 0x8100 || ethertype === 0x88a8) {
    b.push(ethertype >> 8, ethertype & 0xff, ...bytes(rnd, 2));
    ethertype = rnd() < 0.2 ? 0x8100 : rnd() < 0.5 ? 0x0800 : 0x86dd;
  } else if (ethertype === 0x8847) {
    // MPLS: one or two labels, then IPv4 (or junk).
    b.push(0x88, 0x47, ...bytes(rnd, 2), 0, 64);
    if (rnd() < 0.5) b.push(...bytes(rnd, 2), 1, 64);
    else b[b.length - 2] = 1;
    ethertype = 0x0800;
    const ip = b.length;
    b.push(0x45, 0, 0, 0, ...bytes(rnd, 4), 64, 17, 0, 0, ...pick(rnd, IPV4), ...pick(rnd, IPV4), 0, 53, 0, 53, 0, 8, 0, 0);
    return Uint8Array.from(b.slice(0, rnd() < 0.2 ? ip + Math.floor(rnd() * 28) : b.length));
  }
  b.push(ethertype >> 8, ethertype & 0xff);
  let proto = pick(rnd, [6, 6, 17, 17, 1, 58, 0, 44, Math.floor(rnd() * 256)]);
  const addr4 = () => (rnd() < 0.85 ? pick(rnd, IPV4) : bytes(rnd, 4));
  const addr6 = () => (rnd() < 0.85 ? pick(rnd, IPV6) : bytes(rnd, 16));
  if (ethertype === 0x0800) {
    const ihl = rnd() < 0.9 ? 5 : pick(rnd, [0, 4, 6, 15]);
    const frag = rnd() < 0.1 ? bytes(rnd, 2) : [0x40, 0];
    b.push(0x40 | ihl, 0, 0, 0, ...bytes(rnd, 2), ...frag, 64, proto, 0, 0, ...addr4(), ...addr4());
    for (let i = 5; i < ihl; i++) b.push(...bytes(rnd, 4));
  } else if (ethertype === 0x86dd) {
    if (proto === 1) proto = 58;
    b.push(0x60, 0, 0, 0, 0, 0, proto, 64, ...addr6(), ...addr6());
  }
  const port = () => {
    const p = rnd() < 0.85 ? pick(rnd, PORTS) : Math.floor(rnd() * 0x10000);
    return [p >> 8, p & 0xff];
  };
  if (proto === 6) b.push(...port(), ...port(), ...bytes(rnd, 8), 0x50, pick(rnd, [2, 0x10, 0x12, 0x11, 4]), ...bytes(rnd, 6));
  else if (proto === 17) b.push(...port(), ...port(), 0, 8, 0, 0);
  else if (proto === 1 || proto === 58) b.push(pick(rnd, [0, 8, 128, 129, 135]), 0, 0, 0, ...bytes(rnd, 4));
  b.push(...bytes(rnd, Math.floor(rnd() * 48)));
  // Truncated frames exercise every bounds check on the way down (XDP needs ETH_HLEN).
  const len = rnd() < 0.2 ? 14 + Math.floor(rnd() * (b.length - 13)) : b.length;
  return Uint8Array.from(b.slice(0, len));
}

/** struct xdp_md for ctx_in: data 0, data_end `n`, the ingress device and its RX queue. */
function xdpMd(ifindex: number, queue: number, n: number): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(4, n, true);
  v.setUint32(12, ifindex, true);
  v.setUint32(16, queue, true);
  return b;
}

/** A test run's outcome per input: verdict and packet, or the error code. */
type Outcome = { retval: number; data: string; ctx?: string } | string;

function run(p: Program, data: Uint8Array, ctx?: Uint8Array): Outcome {
  try {
    const r = p.testRun({ data, ctx });
    return { retval: r.retval, data: Buffer.from(r.data ?? []).toString('hex'), ...(ctx ? { ctx: Buffer.from(r.ctx ?? []).toString('hex') } : {}) };
  } catch (e) {
    // An emulator fault names the instruction: keep the message, the kernel never raises one.
    const { code, message } = e as { code?: string; message?: string };
    return code === 'ERR_BPFKIT_EMULATOR_FAULT' ? `${code}: ${message}` : code ?? String(e);
  }
}

/** Per-CPU values summed (a test run's CPU is not compared), as decimal strings. */
function sumPerCpu(v: unknown): unknown {
  if (!Array.isArray(v)) return show(v);
  if (typeof v[0] === 'bigint') return `${(v as bigint[]).reduce((a, b) => a + b, 0n)}`;
  const out: Record<string, bigint> = {};
  for (const cpu of v as Record<string, bigint>[]) for (const [k, x] of Object.entries(cpu)) out[k] = (out[k] ?? 0n) + BigInt(x);
  return show(out);
}

/**
 * Runs `scenario` in both backends; each returns one entry per input plus a final state. Reports
 * how many inputs agreed, and fails naming every input that did not.
 */
async function compare(t: TestContext, what: string, scenario: () => Promise<{ inputs: unknown[]; after: unknown }>): Promise<void> {
  const r = await both(scenario);
  const n = r.kernel.inputs.length;
  assert.equal(r.emulator.inputs.length, n);
  let same = 0;
  for (let i = 0; i < n; i++) if (show(r.kernel.inputs[i]) === show(r.emulator.inputs[i])) same++;
  // The kernel's verdicts, to show the inputs reach more than one path through the program.
  const verdicts = new Map<string, number>();
  for (const x of r.kernel.inputs.flat()) {
    const v = typeof x === 'object' && x && 'retval' in x ? `${x.retval}` : typeof x === 'string' && x.startsWith('ERR') ? x : undefined;
    if (v !== undefined) verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
  }
  const hist = [...verdicts].sort().map(([v, k]) => `${v}:${k}`).join(' ');
  t.diagnostic(`${what}: ${same}/${n} inputs agree; state after ${show(r.kernel.after) === show(r.emulator.after) ? 'agrees' : 'differs'}; kernel verdicts ${hist}`);
  if (same !== n) assert.fail(`${what}: ${differences(r.emulator.inputs, r.kernel.inputs)}`);
  if (show(r.kernel.after) !== show(r.emulator.after)) assert.fail(`${what}, state after the runs: ${differences(r.emulator.after, r.kernel.after)}`);
}

const INPUTS = 1000;
const FILTERS = ['alw', 'dny'].flatMap((mode) => ['all', 'eth', 'ip', 'tcp', 'udp'].map((what) => `xdpfilt_${mode}_${what}`));

describe('xdp-tools: xdp-filter (10 variants)', kernelTest, () => {
  for (const name of FILTERS) {
    it(`${name}.o: ${INPUTS} frames in each of 3 filter set-ups`, async (t) => {
      const frames = Array.from({ length: INPUTS }, (_, i) => frame(mulberry32(i * 7919 + name.length)));
      const cpus = possibleCpus();
      for (const setup of [1, 2, 3]) {
        await compare(t, `${name} set-up ${setup}`, async () => {
          const coll = await Collection.load(await specOf(`${name}.o`));
          try {
            // The same flags on every CPU: which CPU a test run takes is not part of the comparison.
            const rnd = mulberry32(setup * 104729);
            const flags = () => {
              const f = BigInt(rnd() < 0.8 ? Math.floor(rnd() * 16) : Math.floor(rnd() * 2 ** 20));
              return Array.from({ length: cpus }, () => f);
            };
            const fill = (map: string, keys: Uint8Array[]) => {
              const m = coll.maps.get(map);
              if (!m) return;
              for (const k of keys) if (rnd() < 0.7) m.update(k, flags());
            };
            const u32 = (x: number) => new Uint8Array(new Uint32Array([x]).buffer);
            // Ports as a program may read them: network and host byte order.
            fill('filter_ports', PORTS.flatMap((p) => [u32(p), u32(((p & 0xff) << 8) | (p >> 8))]));
            fill('filter_ipv4', IPV4.map((a) => Uint8Array.from(a)));
            fill('filter_ipv6', IPV6.map((a) => Uint8Array.from(a)));
            fill('filter_ethernet', MACS.map((a) => Uint8Array.from(a)));
            const p = coll.programs.get(name)!;
            const inputs = frames.map((f) => run(p, f));
            const stats = [...coll.maps.get('xdp_stats_map')!.entries()].map(([k, v]) => [k, sumPerCpu(v)]);
            return { inputs, after: stats };
          } finally {
            coll.close();
          }
        });
      }
    });
  }
});

/**
 * An xdpdump sample cut to what the program wrote: struct pkt_trace_metadata (20 bytes, cap_len at
 * 10) and cap_len packet bytes. The padding after them is skipped by the kernel, not written: it
 * holds what an earlier record left in the ring of the CPU the run happened on, and the test
 * process migrates between CPUs where the emulator runs on one.
 */
function xdpdumpSample(rec: string): string {
  if (!rec.startsWith('09000000')) return rec;
  const b = Buffer.from(rec, 'hex');
  const capLen = b.readUInt16LE(12 + 10);
  return b.subarray(0, 12 + 20 + capLen).toString('hex');
}

describe('xdp-tools: xdpdump capture program', kernelTest, () => {
  it(`xdpdump_xdp.o: ${INPUTS} frames, 4 capture configurations, perf records per input`, async (t) => {
    const frames = Array.from({ length: INPUTS }, (_, i) => frame(mulberry32(i * 31 + 5)));
    const cpus = possibleCpus();
    // [capture ifindex, snap length, frames' ingress ifindex (lo is 1)]
    for (const [ifindex, snaplen, ingress] of [[0, 65535, 0], [0, 40, 0], [1, 16, 1], [1, 9000, 0]] as const) {
      await compare(t, `xdpdump if ${ifindex} snaplen ${snaplen} ingress ${ingress}`, async () => {
        const spec = await specOf('xdpdump_xdp.o');
        spec.variables.get('trace_cfg')!.set({ capture_if_ifindex: ifindex, capture_snaplen: snaplen, capture_prog_index: 3 });
        const coll = await Collection.load(spec);
        const rings = new PerfRings(cpus, 9);
        try {
          const perf = coll.maps.get('xdpdump_perf_map')!;
          rings.fds.forEach((fd, cpu) => perf.update(cpu, new Uint8Array(new Uint32Array([fd]).buffer)));
          const p = coll.programs.get('xdpdump')!;
          const inputs = frames.map((f) => [run(p, f, ingress ? xdpMd(ingress, 0, f.length) : undefined), rings.read().map(xdpdumpSample)]);
          return { inputs, after: null };
        } finally {
          rings.close();
          coll.close();
        }
      });
    }
  });
});

describe('libxdp: dispatcher and AF_XDP default program', kernelTest, () => {
  it('xdp-dispatcher.o: 12 configurations (programs enabled, chain-call actions), 200 frames each', async (t) => {
    const frames = Array.from({ length: 200 }, (_, i) => frame(mulberry32(i + 77)));
    for (let c = 0; c < 12; c++) {
      const rnd = mulberry32(c * 15485863 + 1);
      const enabled = c < 11 ? c : 10;
      const chain = Array.from({ length: 10 }, () => (rnd() < 0.3 ? 0xffffffff : rnd() < 0.5 ? 2 ** 31 : Math.floor(rnd() * 2 ** 32) >>> 0));
      await compare(t, `xdp-dispatcher ${enabled} programs`, async () => {
        const spec = await specOf('xdp-dispatcher.o');
        const conf = spec.variables.get('conf')!;
        const value = conf.get() as Record<string, unknown>;
        conf.set({ ...value, magic: 236, dispatcher_version: 2, num_progs_enabled: enabled, is_xdp_frags: c & 1, chain_call_actions: chain });
        const coll = await Collection.load(spec);
        try {
          const inputs = frames.map((f) => [run(coll.programs.get('xdp_dispatcher')!, f), run(coll.programs.get('xdp_pass')!, f)]);
          return { inputs, after: null };
        } finally {
          coll.close();
        }
      });
    }
  });

  for (const name of ['xsk_def_xdp_prog.o', 'xsk_def_xdp_prog_5.3.o']) {
    it(`${name}: 300 frames with contexts naming no device, lo and bad queues`, async (t) => {
      const rnd = mulberry32(name.length);
      const inputs = Array.from({ length: 300 }, () => {
        const f = frame(rnd);
        const [ifindex, queue] = pick(rnd, [[0, 0], [1, 0], [1, 1], [0, 3], [0x7ffffff0, 0], [-1, 0]] as const);
        return [f, ifindex < 0 ? undefined : xdpMd(ifindex, queue, f.length)] as const;
      });
      await compare(t, name, async () => {
        const coll = await Collection.load(await specOf(name));
        try {
          const p = coll.programs.get('xsk_def_prog')!;
          return { inputs: inputs.map(([f, ctx]) => run(p, f, ctx)), after: [...coll.variables].map(([n, v]) => [n, show(v.get())]) };
        } finally {
          coll.close();
        }
      });
    });
  }
});

/** The kernel's samples/bpf objects, built by scripts/build-kernel-samples.sh. */
const sample = (name: string): string => {
  const path = join(ROOT, 'test', 'bpf', 'build', 'kernel-samples', `${name}.o`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run build:bpf (needs apt-get install linux-source-6.1)`);
  return path;
};

/** Every map's entries after the runs: per-CPU values summed, raw bytes in hex. */
function dumpMaps(coll: Collection): unknown[] {
  const out: unknown[] = [];
  for (const [name, m] of coll.maps) {
    if (['prog_array', 'devmap', 'devmap_hash'].includes(m.info().type)) continue;
    const rows: [string, unknown][] = [];
    for (const k of m.keys()) {
      const key = k instanceof Uint8Array ? Buffer.from(k).toString('hex') : show(k);
      rows.push([key, m.isPerCpu ? sumPerCpu(m.lookup(k as never)) : show(m.lookup(k as never))]);
    }
    out.push([name, rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))]);
  }
  return out;
}

/** The samples' sections predate libbpf's names: the type each program has in its loader. */
const SAMPLES: [string, ProgType, number, Record<string, number>?][] = [
  // xdp_adjust_tail answers IPv4 frames over max_pcktsz with ICMP "fragmentation needed" (XDP_TX).
  ['xdp1_kern', 'xdp', 2000], ['xdp2_kern', 'xdp', 2000], ['xdp_adjust_tail_kern', 'xdp', 2000, { max_pcktsz: 80 }], ['xdp_tx_iptunnel_kern', 'xdp', 2000],
  ['tcbpf1_kern', 'sched_cls', 1000], ['parse_simple', 'sched_cls', 2000], ['parse_varlen', 'sched_cls', 2000], ['parse_ldabs', 'sched_cls', 2000],
  ['sockex1_kern', 'socket_filter', 2000], ['sockex2_kern', 'socket_filter', 2000], ['sockex3_kern', 'socket_filter', 2000],
];

describe('the kernel\'s samples/bpf network programs, built from linux-source-6.1', kernelTest, () => {
  for (const [name, type, count, vars] of SAMPLES) {
    it(`${name}: ${count} frames through every program of the object`, async (t) => {
      const frames = Array.from({ length: count }, (_, i) => frame(mulberry32(i * 7 + name.length * 1009)));
      await compare(t, name, async () => {
        const spec = await CollectionSpec.fromFile(sample(name));
        for (const p of spec.programs.values()) p.type = type;
        for (const [v, x] of Object.entries(vars ?? {})) spec.variables.get(v)!.set(x);
        // bpf_clone_redirect transmits a copy of the packet on a real device: those two programs run
        // in a namespace of their own below.
        for (const n of [...spec.programs.keys()]) if (n.includes('clone_redirect')) spec.programs.delete(n);
        const coll = await Collection.load(spec);
        try {
          // sockex3: the parsers are tail calls at the index their section names (socket/N).
          const jmp = coll.maps.get('jmp_table');
          if (jmp) {
            for (const [n, p] of coll.programs) {
              const at = /\/(\d+)$/.exec(spec.programs.get(n)!.sectionName);
              if (at && at[1] !== '0') jmp.update(Number(at[1]), new Uint8Array(new Uint32Array([p.fd]).buffer));
            }
          }
          // xdp_tx_iptunnel: a tunnel for two of the pool's addresses (struct vip -> struct iptnl_info).
          const tnl = coll.maps.get('vip2tnl');
          if (tnl) {
            for (const [addr, port, proto] of [[IPV4[0]!, 80, 6], [IPV4[2]!, 53, 17], [IPV4[1]!, 443, 6]] as const) {
              const key = new Uint8Array(24);
              key.set(addr, 0);
              new DataView(key.buffer).setUint16(16, port, false);
              new DataView(key.buffer).setUint16(18, 2, true);
              key[20] = proto;
              const val = new Uint8Array(40);
              val.set([172, 16, 0, 1], 0);
              val.set([172, 16, 0, 2], 16);
              new DataView(val.buffer).setUint16(32, 2, true);
              val.set([2, 0, 0, 0, 0, 9], 34);
              tnl.update(key, val);
            }
          }
          const progs = [...coll.programs].filter(([n]) => !/\/[1-9]\d*$/.test(spec.programs.get(n)!.sectionName));
          const inputs = frames.map((f) => progs.map(([, p]) => run(p, f)));
          return { inputs, after: dumpMaps(coll) };
        } finally {
          coll.close();
        }
      });
    });
  }
});

describe('samples/bpf programs that need a FIB or devices: run in a network namespace the test creates', kernelTest, () => {
  it(`xdp_fwd_kern: ${FWD_INPUTS} frames through both programs (bpf_fib_lookup, devmap redirect), arriving on every device`, async (t) => {
    const { agreed, kernel } = await compareInNamespace(FIB_TOPOLOGY, 'fwd', 'xdpFwdRuns', xdpFwdRuns);
    const verdicts = new Map<string, number>();
    for (const o of kernel as unknown[][]) for (const r of o) verdicts.set(show(Array.isArray(r) ? r[0] : r), (verdicts.get(show(Array.isArray(r) ? r[0] : r)) ?? 0) + 1);
    t.diagnostic(`xdp_fwd: ${agreed}/${kernel.length} frames agree; kernel verdicts ${[...verdicts].sort().map(([v, n]) => `${v}:${n}`).join(' ')}`);
    // Both XDP_PASS (not forwarded, TTL expiring, no TX port) and XDP_REDIRECT (forwarded) occur.
    for (const v of ['2', '4']) assert.ok(verdicts.has(v), `some frame gets verdict ${v}`);
  });

  it('tcbpf1_kern: clone_redirect_xmit and clone_redirect_recv on 200 frames, with and without a device in the context', async (t) => {
    const { agreed, kernel } = await compareInNamespace(FIB_TOPOLOGY, 'clone', 'cloneRedirectRuns', cloneRedirectRuns);
    t.diagnostic(`tcbpf1 clone_redirect: ${agreed}/${kernel.length} agree`);
  });
});
