/**
 * `bpfkit demo`: the seeds' packet counter, end to end except attaching. Loads the XDP program and
 * its LRU hash, runs the program in the kernel on crafted IPv4 frames from a few sources
 * (BPF_PROG_TEST_RUN), and prints the map the way the seed's user space does.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfkitError, Collection, CollectionSpec } from '../index.js';
import { parseCommandArgs } from './args.js';

const usage = `usage: bpfkit demo [--object FILE]

Loads the seeds' XDP packet counter, runs it in the kernel on crafted IPv4 frames from a few
sources (BPF_PROG_TEST_RUN, nothing is attached) and prints its map. Needs root.
  --object FILE   another build of packet_count.bpf.o (default: the one shipped with bpfkit)
  -h, --help      show this help
`;

/**
 * The demo's object: shipped beside this module in the package (scripts/copy-objects.mjs puts it
 * there), or in a checkout the build of test/bpf/packet_count.bpf.c.
 */
function defaultObject(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const shipped = join(here, 'packet_count.bpf.o');
  if (existsSync(shipped)) return shipped;
  let dir = here;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'test', 'bpf', 'build', 'packet_count.bpf.o');
}

/** An Ethernet + IPv4 + TCP frame from `src`. */
function frame(src: readonly number[], sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(60);
  const v = new DataView(b.buffer);
  v.setUint16(12, 0x0800);
  b[14] = 0x45;
  v.setUint16(16, 40);
  b[22] = 64;
  b[23] = 6;
  b.set(src, 26);
  b.set([10, 0, 0, 1], 30);
  v.setUint16(34, sport);
  v.setUint16(36, dport);
  b[46] = 0x50;
  return b;
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('demo', usage, argv, { object: { type: 'string' } }, false);
  if (values === 'help') return 0;
  const path = (values['object'] as string | undefined) ?? defaultObject();
  if (!existsSync(path)) {
    throw new BpfkitError(
      'ERR_BPFKIT_DEMO',
      values['object'] !== undefined
        ? `${path} does not exist: give --object a packet_count.bpf.o`
        : `${path} is not built: run \`npm run build:bpf\` in the bpfkit checkout (needs clang and libbpf-dev)`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new BpfkitError('ERR_BPFKIT_PRIVILEGE', 'loading BPF programs needs root (CAP_BPF and CAP_NET_ADMIN): run `sudo npx bpfkit demo`');
  }
  const spec = await CollectionSpec.fromFile(path);
  const coll = await Collection.load(spec);
  try {
    const out: string[] = [`bpfkit demo: the seeds' packet counter (${path})`, '', 'maps:'];
    for (const m of coll.maps.values()) {
      const i = m.info();
      out.push(`  ${m.name}: ${m.type}, key ${m.keySize} B, value ${m.valueSize} B, max_entries ${m.maxEntries} (kernel id ${i.id})`);
    }
    out.push('programs:');
    for (const p of coll.programs.values()) {
      const i = p.info();
      out.push(`  ${p.name}: ${p.type}, section "${p.sectionName}", ${i.xlatedLength / 8} instructions after verification (kernel id ${i.id}, tag ${i.tag})`);
    }
    const prog = coll.programs.get('xdp_prog_func')!;
    const sources: [number[], number][] = [[[192, 168, 5, 2], 51], [[192, 168, 5, 7], 12], [[10, 1, 2, 3], 30], [[172, 16, 0, 9], 3]];
    let runs = 0;
    for (const [src, n] of sources) {
      const r = prog.testRun({ data: frame(src, 58597, 22), repeat: n });
      if (r.retval !== 2) throw new BpfkitError('ERR_BPFKIT_DEMO', `xdp_prog_func returned ${r.retval}, expected XDP_PASS (2)`);
      runs += n;
    }
    out.push('', `ran xdp_prog_func ${runs} times in the kernel (BPF_PROG_TEST_RUN) on frames from ${sources.length} sources`, '', 'xdp_stats_map (source IP => packets):');
    const rows = [...coll.maps.get('xdp_stats_map')!.entries()]
      .map(([k, v]) => [ipv4(k as number), Number(v)] as const)
      .sort((a, b) => b[1] - a[1]);
    for (const [ip, n] of rows) out.push(`\t${ip} => ${n}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    coll.close();
  }
}

/** The key is the IPv4 source address as the program read it: network order in memory. */
function ipv4(key: number): string {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, key, true);
  return [...b].join('.');
}
