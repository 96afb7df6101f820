/**
 * tc counter (goebpf's tc example): counts the packets and bytes an interface receives (tc
 * ingress) and sends (tc egress), and prints both every second with the rate since the last
 * print. Ctrl-C (or SIGTERM) detaches and exits.
 *
 *   sudo node dist/examples/tc-counter/main.js --iface veth0
 *
 * The kernel side is tc_counter.bpf.c: count_ingress and count_egress add to a per-CPU array.
 * They attach as tcx links (Linux 6.6+), or with --attach clsact as cls_bpf filters on a clsact
 * qdisc (the way `tc filter add ... bpf da` does it; older kernels get this automatically).
 */
import { attachTc, Collection, CollectionSpec, type Link, type TcDirection } from '../../src/index.js';
import {
  announce, countUntilAborted, COUNTER_FLAGS, grouped, interfaceArg, intervalArg, isMain, objectPath, parseCommandLine,
  readCounter, requireCapabilities, requireMap, requireProgram, runCommand, table, UsageError, type Counter, type RunOptions,
} from '../common.js';

const TOOL = 'tc-counter';

export const usage = `usage: node dist/examples/tc-counter/main.js --iface IF [options]

Counts the packets and bytes IF receives (tc ingress) and sends (tc egress), and
prints them every second. Ctrl-C detaches and exits.

options:
  --iface IF          the interface to attach to (required)
  --attach HOW        tcx (bpf_link, Linux 6.6+; the default, falling back to clsact on
                      older kernels) or clsact (clsact qdisc + cls_bpf filters, via netlink)
  --interval SECONDS  how often to print (default 1)
  --json              print one JSON object per line instead of tables
  --object PATH       the compiled programs (default test/bpf/build/tc_counter.bpf.o)
  -h, --help          show this help
`;

/** Keys of "counts" in tc_counter.bpf.c, and the program for each direction. */
const DIRECTIONS: readonly { dir: TcDirection; key: number; program: string }[] = [
  { dir: 'ingress', key: 0, program: 'count_ingress' },
  { dir: 'egress', key: 1, program: 'count_egress' },
];

export type Snapshot = Record<TcDirection, Counter>;

function attachArg(text: string | undefined): 'tcx' | 'clsact' {
  if (text === undefined || text === 'tcx') return 'tcx';
  if (text === 'clsact' || text === 'netlink') return 'clsact';
  throw new UsageError(`invalid --attach "${text}": use tcx or clsact`);
}

/** "1,234 (+56/s)", the rate since `before`; "1,234" without it. */
function withRate(now: number, before: number | undefined, seconds: number): string {
  if (before === undefined) return grouped(now);
  const rate = seconds > 0 ? Math.round((now - before) / seconds) : 0;
  return `${grouped(now)} (+${grouped(rate)}/s)`;
}

/** Runs the counter until options.signal aborts; returns the exit code. */
export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const values = parseCommandLine(argv, usage, out, { attach: { type: 'string' }, ...COUNTER_FLAGS });
  if (values === undefined) return 0;
  const how = attachArg(values.attach);
  const intervalMs = intervalArg(values.interval);
  const iface = interfaceArg(values.iface);
  const path = objectPath('tc_counter', values.object);
  requireCapabilities(TOOL, ['CAP_BPF', 'CAP_NET_ADMIN']);

  const coll = await Collection.load(await CollectionSpec.fromFile(path));
  const links: Link[] = [];
  const detach = (): void => {
    // Newest first: with clsact, the last filter to go also removes the qdisc this process made.
    while (links.length > 0) links.pop()!.close();
  };
  try {
    const counts = requireMap(coll.maps, 'counts', path);
    const attached: { direction: TcDirection; program: string; id: number; link: string }[] = [];
    for (const { dir, program } of DIRECTIONS) {
      const prog = requireProgram(coll.programs, program, path);
      const link = attachTc(prog, iface.name, { direction: dir, ...(how === 'clsact' ? { forceNetlink: true } : {}) });
      links.push(link);
      attached.push({ direction: dir, program, id: prog.info().id, link: link.kind });
    }

    const json = values.json === true;
    const hooks = attached.map((a) => `${a.direction}: ${a.program} id ${a.id} (${a.link === 'tcx' ? 'tcx link' : 'clsact + cls_bpf'})`).join(', ');
    announce(out, json, iface, { programs: attached }, `${TOOL}: counting on ${iface.name} (ifindex ${iface.index}); ${hooks}; Ctrl-C to detach`);

    await countUntilAborted<Snapshot>({
      tool: TOOL, iface, intervalMs, json, out, signal: options.signal, totals: 'counted',
      snapshot: () => ({ ingress: readCounter(counts, 0), egress: readCounter(counts, 1) }),
      render: (s, title, since) => `${title}\n${table([
        ['DIRECTION', 'PACKETS', 'BYTES'],
        ...DIRECTIONS.map(({ dir }) => [
          dir,
          withRate(s[dir].packets, since?.previous[dir].packets, since?.seconds ?? 0),
          withRate(s[dir].bytes, since?.previous[dir].bytes, since?.seconds ?? 0),
        ]),
      ])}\n`,
      detach,
    });
    return 0;
  } finally {
    try {
      detach();
    } finally {
      coll.close();
    }
  }
}

if (isMain(import.meta.url)) runCommand(TOOL, usage, run);
