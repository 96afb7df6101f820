/**
 * XDP and tc for real, both the bpf_link way (XDP links, tcx) and the netlink way (IFLA_XDP,
 * clsact + cls_bpf). Traffic is UDP between two network namespaces this file creates, joined by
 * veth pairs through a bridge in the root namespace (see test/fixtures/link-env.ts); programs
 * attach to the root-side veth end of namespace A. Nothing touches eth0 or any existing
 * interface, and each test removes its namespaces, interfaces and qdiscs even when it fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  attach, attachTc, attachXdp, Collection, CollectionSpec, FdLink, InvalidArgumentError, NotSupportedError, type Link,
} from '../../src/index.js';
import { tcFilterList, TC_H_EGRESS_PARENT, TC_H_INGRESS_PARENT, xdpQuery } from '../../src/link/netlink.js';
import { haveTcx } from '../../src/kernel/features.js';
import { kernelTest, obj } from '../helpers/index.js';
import {
  assertProgramGone, assertTopologyGone, count, createTwoNamespaces, hasClsact, loadCounters, pingUdp, prog, SLOT,
  startEcho, stopChild, type TwoNamespaces,
} from '../fixtures/link-env.js';

interface Env {
  t: TwoNamespaces;
  coll: Collection;
  echo: ChildProcess;
  ifindex: number;
}

/** Builds the network, loads the counters and starts the echo server; always tears all of it down. */
async function withNetwork(tag: string, fn: (env: Env) => Promise<void> | void): Promise<void> {
  const t = createTwoNamespaces(tag);
  let coll: Collection | undefined;
  let echo: ChildProcess | undefined;
  const ids: number[] = [];
  try {
    coll = await loadCounters();
    for (const p of coll.programs.values()) ids.push(p.info().id);
    echo = await startEcho(t);
    const ifindex = Number(readFileSync(`/sys/class/net/${t.rootA}/ifindex`, 'utf8').trim());
    // The network works before anything is attached.
    assert.equal(pingUdp(t, 1), 1, 'UDP echo between the namespaces works');
    await fn({ t, coll, echo, ifindex });
  } finally {
    await stopChild(echo);
    coll?.close();
    t.destroy();
  }
  assertTopologyGone(t);
  for (const id of ids) await assertProgramGone(id);
}

describe('XDP', () => {
  it('a bpf_link counts the datagrams namespace A sends to B, and detaches on close', kernelTest, async () => {
    await withNetwork('x', ({ t, coll, ifindex }) => {
      const p = prog(coll, 'xdp_udp');
      const link = attachXdp(p, t.rootA);
      try {
        assert.ok(link instanceof FdLink);
        assert.equal(link.kind, 'xdp');
        const info = link.info();
        assert.equal(info.type, 'xdp');
        assert.equal(info.ifindex, ifindex);
        assert.equal(info.progId, p.info().id);
        assert.equal(xdpQuery(ifindex).progId, p.info().id, 'the interface reports the program');
        const before = count(coll, SLOT.xdpUdp);
        assert.equal(pingUdp(t, 5), 5, 'traffic still flows (XDP_PASS)');
        assert.equal(count(coll, SLOT.xdpUdp) - before, 5n, 'each datagram from A seen once');
      } finally {
        link.close();
      }
      assert.equal(xdpQuery(ifindex).attached, 0, 'no XDP program after close');
      const after = count(coll, SLOT.xdpUdp);
      assert.equal(pingUdp(t, 2), 2);
      assert.equal(count(coll, SLOT.xdpUdp), after, 'nothing counted after close');
    });
  });

  it('a bpf_link swaps its program with update() and detaches with detach() while open', kernelTest, async () => {
    const other = await Collection.load(await CollectionSpec.fromFile(obj('progtypes')));
    const otherId = other.programs.get('xdp_prog')!.info().id;
    try {
      await withNetwork('u', ({ t, coll, ifindex }) => {
        const p = prog(coll, 'xdp_udp');
        const link = attachXdp(p, t.rootA) as FdLink;
        try {
          link.update(other.programs.get('xdp_prog')!, p);
          assert.equal(link.info().progId, otherId);
          assert.equal(xdpQuery(ifindex).progId, otherId);
          assert.equal(pingUdp(t, 3), 3);
          assert.equal(count(coll, SLOT.xdpUdp), 0n, 'the replaced program no longer runs');
          const hits = other.maps.get('hits')!.lookupBytes(new Uint8Array(4))!; // slot 0: xdp_prog
          assert.ok(new DataView(hits.buffer, hits.byteOffset).getBigUint64(0, true) >= 3n, 'the new program runs');
          link.detach();
          assert.equal(xdpQuery(ifindex).attached, 0, 'detached although the fd is open');
        } finally {
          link.close();
        }
      });
    } finally {
      other.close();
    }
    await assertProgramGone(otherId);
  });

  it('the netlink path (forceNetlink) counts the same, cannot be pinned, and detaches on close', kernelTest, async () => {
    await withNetwork('n', ({ t, coll, ifindex }) => {
      const p = prog(coll, 'xdp_udp');
      const link = attachXdp(p, t.rootA, { forceNetlink: true, mode: 'skb' });
      try {
        assert.equal(link.kind, 'xdp-netlink');
        assert.equal(link.fd, undefined);
        const info = link.info();
        assert.equal(info.progId, p.info().id);
        assert.equal(info.ifindex, ifindex);
        const q = xdpQuery(ifindex);
        assert.equal(q.attached, 2, 'attached in generic (skb) mode');
        assert.equal(q.progId, p.info().id);
        assert.throws(() => link.pin('/sys/fs/bpf/never'), NotSupportedError);
        // A second attach must not replace the first.
        assert.throws(() => attachXdp(p, t.rootA, { forceNetlink: true, mode: 'skb' }), (e: unknown) => (e as { code?: string }).code === 'EBUSY');
        const before = count(coll, SLOT.xdpUdp);
        assert.equal(pingUdp(t, 4), 4);
        assert.equal(count(coll, SLOT.xdpUdp) - before, 4n);
      } finally {
        link.close();
      }
      assert.equal(xdpQuery(ifindex).attached, 0, 'detached');
      link.close(); // idempotent
      const after = count(coll, SLOT.xdpUdp);
      assert.equal(pingUdp(t, 2), 2);
      assert.equal(count(coll, SLOT.xdpUdp), after);
    });
  });

  it('attach() dispatches on the xdp section with { iface }; unknown interfaces list the existing ones', kernelTest, async () => {
    await withNetwork('d', ({ t, coll, ifindex }) => {
      const p = prog(coll, 'xdp_udp');
      assert.throws(() => attach(p), (e: unknown) => e instanceof InvalidArgumentError && /pass \{ iface \}/.test(e.message));
      const link = attach(p, { iface: ifindex });
      try {
        assert.equal(link.kind, 'xdp');
        const before = count(coll, SLOT.xdpUdp);
        assert.equal(pingUdp(t, 3), 3);
        assert.equal(count(coll, SLOT.xdpUdp) - before, 3n);
      } finally {
        link.close();
      }
      assert.throws(() => attachXdp(p, 'bkNoSuchIf0'), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /no network interface named "bkNoSuchIf0"; existing interfaces: .*\blo\b/);
        assert.ok(e.message.includes(t.rootA), 'the list includes the test interface');
        return true;
      });
    });
  });
});

describe('tc', () => {
  // tcx links came in 6.6. Where the probe finds none, attachTc() without forceNetlink falls back
  // to clsact + cls_bpf, and the same traffic must be counted through that.
  it('tcx links (or, on kernels without tcx, the cls_bpf fallback) on ingress and egress count requests and replies', kernelTest, async () => {
    const tcx = haveTcx();
    await withNetwork('t', ({ t, coll, ifindex }) => {
      const p = prog(coll, 'tc_udp');
      const id = p.info().id;
      const links: Link[] = [];
      try {
        links.push(attachTc(p, t.rootA, { direction: 'ingress' }));
        const ingressInfo = links[0]!.info();
        if (tcx) {
          assert.equal(links[0]!.kind, 'tcx');
          assert.equal(ingressInfo.type, 'tcx');
          assert.equal(ingressInfo.ifindex, ifindex);
          assert.equal(ingressInfo.attachType, 'tcx_ingress');
        } else {
          assert.equal(links[0]!.kind, 'tc-netlink', 'no tcx on this kernel: the netlink fallback');
          assert.equal(ingressInfo.progId, id);
          assert.ok(hasClsact(t.rootA), 'the fallback added a clsact qdisc');
          assert.deepEqual(tcFilterList(ifindex, TC_H_INGRESS_PARENT).map((f) => [f.kind, f.progId]), [['bpf', id]]);
        }

        // Ingress of the root-side end of A sees A's datagrams to the port, not B's replies.
        assert.equal(pingUdp(t, 3), 3);
        assert.equal(count(coll, SLOT.tcToPort), 3n);
        assert.equal(count(coll, SLOT.tcFromPort), 0n);

        links.push(attachTc(p, ifindex, { direction: 'egress' }));
        if (tcx) assert.equal(links[1]!.info().attachType, 'tcx_egress');
        else assert.deepEqual(tcFilterList(ifindex, TC_H_EGRESS_PARENT).map((f) => [f.kind, f.progId]), [['bpf', id]]);
        assert.equal(pingUdp(t, 4), 4);
        assert.equal(count(coll, SLOT.tcToPort), 7n);
        assert.equal(count(coll, SLOT.tcFromPort), 4n, 'egress sees the echoes going back to A');
      } finally {
        for (const l of links) l.close();
      }
      assert.equal(pingUdp(t, 2), 2);
      assert.equal(count(coll, SLOT.tcToPort), 7n, 'nothing counted after close');
      assert.equal(count(coll, SLOT.tcFromPort), 4n);
      assert.equal(hasClsact(t.rootA), false, tcx ? 'tcx needs no qdisc' : 'the fallback removed the qdisc it added');
    });
  });

  it('the netlink path adds clsact + cls_bpf filters, and removes them and the qdisc on close', kernelTest, async () => {
    await withNetwork('c', ({ t, coll, ifindex }) => {
      const p = prog(coll, 'tc_udp');
      const id = p.info().id;
      assert.equal(hasClsact(t.rootA), false);
      const ingress = attachTc(p, t.rootA, { direction: 'ingress', forceNetlink: true });
      let egress: Link | undefined;
      try {
        assert.equal(ingress.kind, 'tc-netlink');
        assert.equal(ingress.info().progId, id);
        assert.ok(hasClsact(t.rootA), 'a clsact qdisc was added');
        egress = attachTc(p, t.rootA, { direction: 'egress', forceNetlink: true, priority: 7 });
        const inFilters = tcFilterList(ifindex, TC_H_INGRESS_PARENT);
        const egFilters = tcFilterList(ifindex, TC_H_EGRESS_PARENT);
        assert.equal(inFilters.length, 1);
        assert.equal(inFilters[0]!.kind, 'bpf');
        assert.equal(inFilters[0]!.progId, id);
        assert.equal(egFilters.length, 1);
        assert.equal(egFilters[0]!.priority, 7);

        assert.equal(pingUdp(t, 5), 5);
        assert.equal(count(coll, SLOT.tcToPort), 5n);
        assert.equal(count(coll, SLOT.tcFromPort), 5n);

        ingress.close();
        assert.equal(tcFilterList(ifindex, TC_H_INGRESS_PARENT).length, 0, 'ingress filter removed');
        assert.ok(hasClsact(t.rootA), 'the qdisc stays while the egress filter uses it');
      } finally {
        ingress.close();
        egress?.close();
      }
      assert.equal(hasClsact(t.rootA), false, 'the qdisc bpfkit created is removed with its last filter');
      assert.equal(pingUdp(t, 2), 2);
      assert.equal(count(coll, SLOT.tcToPort), 5n, 'nothing counted after close');
    });
  });

  it('attach() takes the direction from the options for a plain "tc" section', kernelTest, async () => {
    await withNetwork('a', ({ t, coll }) => {
      const p = prog(coll, 'tc_udp');
      assert.throws(() => attach(p, { iface: t.rootA }), (e: unknown) => e instanceof InvalidArgumentError && /direction/.test(e.message));
      const link = attach(p, { iface: t.rootA, direction: 'ingress' });
      try {
        assert.equal(pingUdp(t, 2), 2);
        assert.equal(count(coll, SLOT.tcToPort), 2n);
      } finally {
        link.close();
      }
    });
  });
});
