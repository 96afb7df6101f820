/**
 * XDP firewall (goebpf's xdp example): drops IPv4 packets arriving on an interface when their
 * source address is in one of the --drop networks, and prints how many packets and bytes each
 * rule dropped, every second, summed over the CPUs. Ctrl-C (or SIGTERM) detaches and exits.
 *
 *   sudo node dist/examples/xdp-firewall/main.js --iface veth0 --drop 10.0.0.0/8 --drop 192.0.2.7
 *
 * The kernel side is firewall.bpf.c: an LPM trie maps each network to its rule index, per-CPU
 * arrays count the drops per rule and in total.
 */
import {
  attachXdp, Collection, CollectionSpec, formatLpmKey, InvalidArgumentError, lpmKey, parseCidr, type Link,
} from '../../src/index.js';
import {
  announce, countUntilAborted, COUNTER_FLAGS, grouped, interfaceArg, intervalArg, isMain, objectPath, parseCommandLine,
  readCounter, requireCapabilities, requireMap, requireProgram, runCommand, table, UsageError, xdpModeArg, type Counter,
  type RunOptions,
} from '../common.js';

const TOOL = 'xdp-firewall';

export const usage = `usage: node dist/examples/xdp-firewall/main.js --iface IF --drop CIDR [--drop CIDR]... [options]

Drops IPv4 packets arriving on IF whose source address is in one of the CIDRs, and
prints what each rule dropped every second. Ctrl-C detaches and exits.

options:
  --iface IF          the interface to attach to (required)
  --drop CIDR         an IPv4 network ("10.0.0.0/8") or address ("192.0.2.7") to drop;
                      repeatable, at least one
  --mode MODE         XDP mode: native or skb (default: native where the driver has it)
  --interval SECONDS  how often to print (default 1)
  --json              print one JSON object per line instead of tables
  --object PATH       the compiled program (default test/bpf/build/firewall.bpf.o)
  -h, --help          show this help
`;

/** MAX_RULES of firewall.bpf.c: the size of drop_rules and rule_drops. */
export const MAX_RULES = 64;
/** "rule_drops" of firewall.bpf.c is indexed by rule, "totals" by these slots. */
const TOTAL_DROPPED = 0;
const TOTAL_PASSED = 1;

export interface Rule {
  /** The network as the kernel matches it (host bits cleared), e.g. "10.0.0.0/8". */
  cidr: string;
  /** As given on the command line. */
  given: string;
}

/** Validates the --drop values: IPv4 only, no network twice. */
export function parseRules(values: readonly string[], maxRules = MAX_RULES): Rule[] {
  if (values.length === 0) throw new UsageError('give at least one --drop CIDR (for example --drop 192.0.2.0/24)');
  if (values.length > maxRules) throw new UsageError(`at most ${maxRules} --drop rules fit in the firewall's LPM trie, got ${values.length}`);
  const rules: Rule[] = [];
  for (const given of values) {
    let family: 4 | 6;
    try {
      family = parseCidr(given).family;
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw new UsageError(`--drop: ${e.message}`);
      throw e;
    }
    if (family !== 4) throw new UsageError(`--drop ${JSON.stringify(given)}: this firewall matches IPv4 source addresses only`);
    const cidr = formatLpmKey(lpmKey(given, 8));
    const twin = rules.find((r) => r.cidr === cidr);
    if (twin) {
      throw new UsageError(`--drop ${JSON.stringify(given)} and --drop ${JSON.stringify(twin.given)} are the same network (${cidr}): give it once`);
    }
    rules.push({ cidr, given });
  }
  return rules;
}

export interface Snapshot {
  rules: (Counter & { cidr: string })[];
  dropped: Counter;
  passed: Counter;
}

function render(s: Snapshot, title: string): string {
  const row = (name: string, c: Counter): string[] => [name, grouped(c.packets), grouped(c.bytes)];
  return `${title}\n${table([
    ['RULE', 'PACKETS', 'BYTES'],
    ...s.rules.map((r) => row(r.cidr, r)),
    row('total dropped', s.dropped),
    row('passed (IPv4)', s.passed),
  ])}\n`;
}

/** Runs the firewall until options.signal aborts; returns the exit code. */
export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const values = parseCommandLine(argv, usage, out, {
    drop: { type: 'string', multiple: true },
    mode: { type: 'string' },
    ...COUNTER_FLAGS,
  });
  if (values === undefined) return 0;
  // The command line first: its mistakes are reported without root and before anything is loaded.
  const mode = xdpModeArg(values.mode);
  const intervalMs = intervalArg(values.interval);
  const rules = parseRules(values.drop ?? []);
  const iface = interfaceArg(values.iface);
  const path = objectPath('firewall', values.object);
  requireCapabilities(TOOL, ['CAP_BPF', 'CAP_NET_ADMIN']);

  const coll = await Collection.load(await CollectionSpec.fromFile(path));
  let link: Link | undefined;
  try {
    const trie = requireMap(coll.maps, 'drop_rules', path);
    const ruleDrops = requireMap(coll.maps, 'rule_drops', path);
    const totals = requireMap(coll.maps, 'totals', path);
    const prog = requireProgram(coll.programs, 'xdp_firewall', path);
    const room = Math.min(trie.maxEntries, ruleDrops.maxEntries);
    if (rules.length > room) throw new UsageError(`at most ${room} --drop rules fit in ${path}, got ${rules.length}`);

    // The rules go in before the program is attached: no packet sees an empty trie.
    rules.forEach((r, i) => trie.update(r.cidr, i));
    link = attachXdp(prog, iface.name, mode ? { mode } : {});
    const progId = prog.info().id;

    const json = values.json === true;
    announce(out, json, iface, {
      link: link.kind, mode: mode ?? 'default', program: { name: prog.name, id: progId }, rules: rules.map((r) => r.cidr),
    }, `${TOOL}: dropping IPv4 sources in ${rules.map((r) => r.cidr).join(', ')} on ${iface.name} ` +
      `(ifindex ${iface.index}, ${link.kind === 'xdp' ? 'XDP link' : 'netlink'}, mode ${mode ?? 'default'}, program ${prog.name} id ${progId}); Ctrl-C to detach`);

    await countUntilAborted<Snapshot>({
      tool: TOOL, iface, intervalMs, json, out, signal: options.signal, totals: 'dropped',
      snapshot: () => ({
        rules: rules.map((r, i) => ({ cidr: r.cidr, ...readCounter(ruleDrops, i) })),
        dropped: readCounter(totals, TOTAL_DROPPED),
        passed: readCounter(totals, TOTAL_PASSED),
      }),
      render,
      detach: () => {
        link?.close();
        link = undefined;
      },
    });
    return 0;
  } finally {
    link?.close();
    coll.close();
  }
}

if (isMain(import.meta.url)) runCommand(TOOL, usage, run);
