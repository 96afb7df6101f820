/**
 * GET /metrics: the latest snapshot in the Prometheus text format, with prom-client. Values are
 * the kernel's own counters (absolute, so counters survive missed scrapes and never double-count);
 * they are filled in from the snapshot, so a scrape costs no syscall. The server renders the text
 * once per snapshot and hands every scrape of that interval the same text (process and websocket
 * figures are then as of the interval's first scrape).
 *
 * Per-flow series are limited to the top N flows (--top): a flow that leaves the top N stops
 * being exported, so the number of label sets stays bounded however many flows the host sees.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Snapshot, Totals } from './snapshot.js';

export interface PktcountMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  render(): Promise<string>;
}

export interface MetricsSource {
  latest(): Snapshot;
  /** Websocket clients connected now. */
  clients(): number;
  /** Snapshots not sent to a slow websocket client. */
  skippedSends(): number;
}

export function createMetrics(source: MetricsSource): PktcountMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const totalCounter = (name: string, help: string, field: keyof Totals): void => {
    new Counter({
      name, help, registers: [registry],
      collect() {
        this.reset();
        this.inc(source.latest().totals[field]);
      },
    });
  };
  totalCounter('pktcount_packets_total', 'Frames the XDP program saw on the interface.', 'packets');
  totalCounter('pktcount_counted_packets_total', 'TCP and UDP packets counted in the flow table.', 'counted');
  totalCounter('pktcount_excluded_packets_total', 'Packets from an excluded source prefix, not counted in flows.', 'excluded');
  totalCounter('pktcount_dropped_packets_total',
    'TCP and UDP packets that could not be counted because the flow table refused the new flow (the packets themselves pass).', 'untracked');
  new Counter({
    name: 'pktcount_skipped_packets_total',
    help: 'Packets that are not counted in flows, by reason: non_ip (ARP, ...), other_l4 (ICMP, fragments, ...), malformed.',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const t = source.latest().totals;
      this.labels({ reason: 'non_ip' }).inc(t.nonIp);
      this.labels({ reason: 'other_l4' }).inc(t.otherL4);
      this.labels({ reason: 'malformed' }).inc(t.malformed);
    },
  });
  new Counter({
    name: 'pktcount_flow_packets_total',
    help: 'Packets per flow, for the top flows by packets only (see --top).',
    labelNames: ['src', 'src_port', 'dst_port', 'proto'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const e of source.latest().entries) {
        this.labels({ src: e.src, src_port: String(e.srcPort), dst_port: String(e.dstPort), proto: e.proto }).inc(e.packets);
      }
    },
  });
  new Counter({
    name: 'pktcount_flow_bytes_total',
    help: 'Bytes (whole frames) per flow, for the top flows by packets only (see --top).',
    labelNames: ['src', 'src_port', 'dst_port', 'proto'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const e of source.latest().entries) {
        this.labels({ src: e.src, src_port: String(e.srcPort), dst_port: String(e.dstPort), proto: e.proto }).inc(e.bytes);
      }
    },
  });
  new Gauge({
    name: 'pktcount_flows',
    help: 'Flows in the kernel flow table.',
    registers: [registry],
    collect() {
      this.set(source.latest().flows);
    },
  });
  new Gauge({
    name: 'pktcount_flow_table_capacity',
    help: 'Size of the kernel flow table (--max-entries); when full, the least recently seen flows make room.',
    registers: [registry],
    collect() {
      this.set(source.latest().maxEntries);
    },
  });
  new Gauge({
    name: 'pktcount_info',
    help: 'The interface and XDP mode pktcount counts on (always 1).',
    labelNames: ['iface', 'mode'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const s = source.latest();
      this.labels({ iface: s.iface, mode: s.mode }).set(1);
    },
  });
  new Gauge({
    name: 'pktcount_uptime_seconds',
    help: 'Seconds since pktcount attached.',
    registers: [registry],
    collect() {
      this.set(source.latest().uptimeMs / 1000);
    },
  });
  new Gauge({
    name: 'pktcount_websocket_clients',
    help: 'Leaderboard pages connected over the websocket.',
    registers: [registry],
    collect() {
      this.set(source.clients());
    },
  });
  new Counter({
    name: 'pktcount_websocket_skipped_total',
    help: 'Snapshots not sent to a websocket client because it was still behind on earlier ones.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(source.skippedSends());
    },
  });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
