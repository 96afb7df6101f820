/**
 * The kernel side of pktcount, through the bindings `bpfkit gen` made from bpf/pktcount.bpf.c:
 * load the object with the flow table sized by --max-entries (set on the spec before the map is
 * created), fill the exclusion tries, attach the XDP program with a bpf_link (so a killed process
 * leaves nothing attached: the link dies with its last file descriptor), and read the counts.
 */
import { type BpfMap, Collection, attachXdp, type Link, SpecError } from '../../index.js';
import {
  pktcountMapNames, pktcountProgramNames, specPktcount,
  type FlowKey, type FlowValue, type PktcountStats,
} from './gen/pktcount.js';
import type { Exclusion } from './exclude.js';
import type { FlowSample, Totals } from './snapshot.js';

/** What one row counts: each flow, each source address (ports 0), or each destination port (source zeroed). */
export type Aggregate = 'flow' | 'src' | 'dport';

/** bpf/pktcount.bpf.c's AGGREGATE_* values. */
const AGGREGATE: Record<Aggregate, number> = { flow: 0, src: 1, dport: 2 };

export interface CounterOptions {
  /** Capacity of the flow table (LRU hash). */
  readonly maxEntries: number;
  readonly exclusions?: readonly Exclusion[];
  /** Counted in the kernel under this key (default: 'flow'). */
  readonly aggregate?: Aggregate;
}

function mapOf<K, V>(c: Collection, name: string): BpfMap<K, V> {
  const m = c.maps.get(name);
  if (!m) throw new SpecError(`pktcount: map ${name} is missing from the loaded object`);
  return m as BpfMap<K, V>;
}

function toNumber(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

const FLOW_KEY_SIZE = 24;
const FLOW_VALUE_SIZE = 16;

/** A little-endian u64 as a number without a BigInt, saturating as toNumber(). */
function u64(v: DataView, at: number): number {
  const hi = v.getUint32(at + 4, true);
  if (hi >= 0x200000) return Number.MAX_SAFE_INTEGER;
  return hi * 0x1_0000_0000 + v.getUint32(at, true);
}

export class PacketCounter implements Disposable {
  readonly collection: Collection;
  readonly flows: BpfMap<FlowKey, FlowValue>;
  readonly stats: BpfMap<number, PktcountStats[]>;
  readonly excludedV4: BpfMap<Uint8Array, number>;
  readonly excludedV6: BpfMap<Uint8Array, number>;
  readonly maxEntries: number;
  #link: Link | undefined;
  #iface: string | undefined;

  private constructor(c: Collection, maxEntries: number) {
    this.collection = c;
    this.maxEntries = maxEntries;
    this.flows = mapOf(c, pktcountMapNames.flows);
    this.stats = mapOf(c, pktcountMapNames.stats);
    this.excludedV4 = mapOf(c, pktcountMapNames.excludedV4);
    this.excludedV6 = mapOf(c, pktcountMapNames.excludedV6);
  }

  /** Loads the program and its maps; the exclusions are in the tries before anything is attached. */
  static async load(options: CounterOptions): Promise<PacketCounter> {
    const spec = specPktcount();
    const flows = spec.maps.get(pktcountMapNames.flows);
    const v4 = spec.maps.get(pktcountMapNames.excludedV4);
    const v6 = spec.maps.get(pktcountMapNames.excludedV6);
    if (!flows || !v4 || !v6) throw new SpecError('pktcount: the object lacks the flows or excluded_* maps');
    flows.maxEntries = options.maxEntries;
    const exclusions = options.exclusions ?? [];
    const n4 = exclusions.filter((e) => e.family === 4).length;
    const n6 = exclusions.length - n4;
    // The tries hold every exclusion, however long the file.
    v4.maxEntries = Math.max(v4.maxEntries, n4);
    v6.maxEntries = Math.max(v6.maxEntries, n6);
    const aggregate = spec.variables.get('aggregate');
    if (!aggregate) throw new SpecError('pktcount: the object lacks its aggregate setting');
    aggregate.set(AGGREGATE[options.aggregate ?? 'flow']);
    const c = await Collection.load(spec, { programs: { only: [pktcountProgramNames.xdpPktcount] } });
    try {
      const counter = new PacketCounter(c, options.maxEntries);
      for (const e of exclusions) (e.family === 4 ? counter.excludedV4 : counter.excludedV6).update(e.key, 1);
      return counter;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /** Attaches the XDP program to `iface` through a bpf_link. */
  attach(iface: string, mode?: 'skb' | 'native'): void {
    if (this.#link) throw new SpecError(`pktcount is already attached to ${this.#iface}`);
    const prog = this.collection.programs.get(pktcountProgramNames.xdpPktcount);
    if (!prog) throw new SpecError('pktcount: the XDP program was not loaded');
    this.#link = attachXdp(prog, iface, mode ? { mode } : {});
    this.#iface = iface;
  }

  get attachedTo(): string | undefined {
    return this.#link ? this.#iface : undefined;
  }

  /**
   * Every flow in the table: one BPF_MAP_LOOKUP_BATCH pass (4,096 flows a call) decoded straight
   * from the returned bytes, as 50,000 flows must be read well within an interval.
   */
  readFlows(): FlowSample[] {
    const raw = this.flows.keySize === FLOW_KEY_SIZE && this.flows.valueSize === FLOW_VALUE_SIZE
      ? this.flows.lookupBatchRaw({ batchSize: 4096 })
      : undefined;
    if (!raw) return this.#readFlowsDecoded();
    const { keys, values, count } = raw;
    const kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
    const vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
    const out: FlowSample[] = new Array(count);
    for (let i = 0; i < count; i++) {
      // struct flow_key {u8 saddr[16]; u16 sport, dport; u8 proto, family; u8 pad[2]} and
      // struct flow_value {u64 packets, bytes}, in the BPF target's (little-endian) order.
      const k = i * FLOW_KEY_SIZE;
      const v = i * FLOW_VALUE_SIZE;
      out[i] = {
        family: keys[k + 21] === 6 ? 6 : 4,
        saddr: keys.subarray(k, k + 16),
        srcPort: kv.getUint16(k + 16, true),
        dstPort: kv.getUint16(k + 18, true),
        proto: keys[k + 20]!,
        packets: u64(vv, v),
        bytes: u64(vv, v + 8),
      };
    }
    return out;
  }

  /** readFlows() through the map's BTF codecs, where batch lookup is not available. */
  #readFlowsDecoded(): FlowSample[] {
    const out: FlowSample[] = [];
    for (const [k, v] of this.flows.lookupBatch({ batchSize: 4096 })) {
      out.push({
        family: k.family === 6 ? 6 : 4,
        saddr: k.saddr,
        srcPort: k.sport,
        dstPort: k.dport,
        proto: k.proto,
        packets: toNumber(v.packets),
        bytes: toNumber(v.bytes),
      });
    }
    return out;
  }

  /** The per-CPU counters, summed. */
  readTotals(): Totals {
    const perCpu = this.stats.lookup(0) ?? [];
    const sum = (f: keyof PktcountStats): number => toNumber(perCpu.reduce((a, s) => a + s[f], 0n));
    return {
      packets: sum('packets'), counted: sum('counted'), excluded: sum('excluded'), nonIp: sum('non_ip'),
      otherL4: sum('other_l4'), malformed: sum('malformed'), untracked: sum('untracked'),
    };
  }

  /** Detaches the program (idempotent). */
  detach(): void {
    const l = this.#link;
    this.#link = undefined;
    l?.close();
  }

  close(): void {
    try {
      this.detach();
    } finally {
      this.collection.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
