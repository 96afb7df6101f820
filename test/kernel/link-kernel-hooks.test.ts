/**
 * Hooks that attach to kernel objects rather than events: BPF iterators (iter/task, and
 * iter/bpf_map_elem walking one map), sk_lookup on a network namespace (steering loopback TCP
 * connections to a socket in a sockmap). Iterators follow the haveIterator probe: some kernels
 * refuse some iterators to root by policy (iter/bpf_map_elem here, while iter/task loads), and
 * there loading must fail with a NotSupportedError saying so. fentry/fexit/fmod_ret and LSM
 * programs are in link-hooks.test.ts, which follows the probes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import {
  attach, attachIter, attachLsm, attachSkLookup, BpfSyscallError, Collection, CollectionSpec, FdLink, InvalidArgumentError,
  haveIterator, IterLink, NotSupportedError, readIterator, readPinnedIterator,
} from '../../src/index.js';
import { bpffsDir, kernelTest, obj } from '../helpers/index.js';
import { assertProgramGone } from '../fixtures/link-env.js';

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function u64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

function readU64(coll: Collection, map: string, slot: number): bigint {
  const v = coll.maps.get(map)!.lookupBytes(u32(slot))!;
  return new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0, true);
}

/** Lines "<tgid> <pid> <comm>" of the task iterator's output, by pid. */
function tasks(text: string): Map<number, { tgid: number; comm: string }> {
  const lines = text.split('\n');
  assert.equal(lines[0], 'tgid pid comm', 'the header comes first');
  const out = new Map<number, { tgid: number; comm: string }>();
  for (const line of lines.slice(1)) {
    const m = /^(\d+) (\d+) (.*)$/.exec(line);
    if (m) out.set(Number(m[2]), { tgid: Number(m[1]), comm: m[3]! });
  }
  return out;
}

describe('BPF iterators', () => {
  /** Where the probe says an iterator is refused, loading it must fail with the NotSupportedError saying so. */
  async function assertRefused(target: string, prog: string): Promise<void> {
    await assert.rejects(Collection.load(await CollectionSpec.fromFile(obj('link_iter')), { programs: { only: [prog] } }), (e: unknown) => {
      assert.ok(e instanceof NotSupportedError, `NotSupportedError, got ${String(e)}`);
      assert.match(e.message, new RegExp(`BPF iterators over ${target} \\(iter/${target}\\) is not supported by this kernel`));
      assert.match(e.message, /refused|no such iterator/);
      return true;
    });
  }

  it('iter/task lists every task, this process among them, through a stream, a sync read and a pin', kernelTest, async () => {
    if (!haveIterator('task')) return assertRefused('task', 'dump_task');
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('link_iter')), { programs: { only: ['dump_task'] } });
    const p = coll.programs.get('dump_task')!;
    const id = p.info().id;
    const dir = bpffsDir('link-iter');
    const pin = join(dir, 'tasks');
    let link: IterLink | undefined;
    try {
      link = attachIter(p);
      assert.equal(link.kind, 'iter');
      assert.equal(link.target, 'task');
      assert.equal(link.info().type, 'iter');
      assert.equal(link.info().progId, id);

      // A stream (an async iterable of Buffers): each open() runs the iterator again.
      const chunks: Buffer[] = [];
      for await (const c of readIterator(link)) chunks.push(c as Buffer);
      const seen = tasks(Buffer.concat(chunks).toString());
      assert.ok(seen.size > 1, `more than one task listed (got ${seen.size})`);
      const me = seen.get(process.pid);
      assert.ok(me, `this process (pid ${process.pid}) is listed`);
      assert.equal(me.tgid, process.pid);
      assert.match(me.comm, /node|MainThread/);

      const sync = tasks(link.readAllSync().toString());
      assert.ok(sync.has(process.pid));
      assert.ok(tasks((await link.readAll()).toString()).has(process.pid));

      // A pinned iterator is a file: reading it runs the program.
      link.pin(pin);
      assert.ok(tasks(readPinnedIterator(pin).toString()).has(process.pid));
      link.unpin();
      assert.equal(existsSync(pin), false);

      // attach() knows iter sections.
      const again = attach(p);
      assert.ok(again instanceof IterLink);
      again.close();
    } finally {
      link?.close();
      coll.close();
      rmSync(pin, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
    await assertProgramGone(id);
  });

  it('iter/bpf_map_elem walks the map it is attached for; without { map } the kernel refuses, with a hint', kernelTest, async () => {
    if (!haveIterator('bpf_map_elem')) return assertRefused('bpf_map_elem', 'dump_elems');
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('link_iter')), { programs: { only: ['dump_elems'] } });
    const p = coll.programs.get('dump_elems')!;
    const values = coll.maps.get('iter_values')!;
    try {
      for (let i = 0; i < 4; i++) values.update(u32(i), u64(BigInt(i * 10 + 1)));
      const link = attachIter(p, { map: values });
      try {
        assert.equal((await link.readAll()).toString(), '0=1\n1=11\n2=21\n3=31\ntotal=64\n');
        values.update(u32(2), u64(1000n));
        assert.match(link.readAllSync().toString(), /^0=1\n1=11\n2=1000\n3=31\ntotal=1043\n$/, 'each read walks the map as it is now');
      } finally {
        link.close();
      }
      assert.throws(() => attachIter(p), (e: unknown) => e instanceof BpfSyscallError && /need \{ map \}/.test(e.message));
      assert.throws(() => attachIter(p, { map: values, task: { pid: 1 } }), InvalidArgumentError);
      assert.throws(() => attachIter(coll.programs.get('dump_elems')!, { task: { pid: 1, tid: 1 } }), /one of tid, pid or pidFd/);
    } finally {
      coll.close();
    }
  });
});

describe('sk_lookup', () => {
  it('steers loopback connections for a port with no listener to a socket from a sockmap, until the link closes', kernelTest, async () => {
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('link_sk_lookup')));
    const p = coll.programs.get('steer')!;
    const id = p.info().id;
    const server = net.createServer((c) => c.end(`served by ${(server.address() as net.AddressInfo).port}`));
    let link: FdLink | undefined;
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      // Node keeps the listening socket's fd on its (internal) handle.
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      assert.ok(Number.isInteger(fd) && fd > 2, 'the server socket has an fd');
      coll.maps.get('steer_map')!.update(u32(0), u64(BigInt(fd)));

      const connect = () => new Promise<string>((resolve) => {
        const c = net.connect(47113, '127.0.0.1');
        let data = '';
        c.on('data', (d) => { data += d.toString(); });
        c.on('end', () => resolve(data));
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.equal(await connect(), 'ECONNREFUSED', 'nothing listens on 47113');

      link = attachSkLookup(p);
      const info = link.info();
      assert.equal(info.type, 'netns');
      assert.equal(info.attachType, 'sk_lookup');
      assert.ok(info.netnsIno! > 0);
      assert.equal(await connect(), `served by ${port}`, 'the program handed the connection to the server');
      assert.ok(readU64(coll, 'sk_lookup_counts', 2) >= 1n, 'counted as steered');
      assert.ok(readU64(coll, 'sk_lookup_counts', 0) >= readU64(coll, 'sk_lookup_counts', 1));

      link.close();
      assert.equal(await connect(), 'ECONNREFUSED', 'no steering after close()');
    } finally {
      link?.close();
      server.close();
      coll.close();
    }
    await assertProgramGone(id);
  });

  it('attach() uses the caller\'s namespace or { netns }; bad namespaces and program types are explained', kernelTest, async () => {
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('link_sk_lookup')));
    const p = coll.programs.get('steer')!;
    try {
      const a = attach(p);
      assert.equal(a.info().attachType, 'sk_lookup');
      const b = attach(p, { netns: `/proc/${process.pid}/ns/net` });
      assert.equal(b.info().netnsIno, a.info().netnsIno, 'two programs may share a namespace');
      a.close();
      b.close();
      assert.throws(() => attachSkLookup(p, '/nonexistent/ns'), (e: unknown) => e instanceof InvalidArgumentError && /cannot open network namespace/.test(e.message));
      assert.throws(() => attachSkLookup(p, '/proc/self/ns/mnt'), (e: unknown) => e instanceof BpfSyscallError && /not a network namespace/.test(e.message));
    } finally {
      coll.close();
    }
    const counters = await Collection.load(await CollectionSpec.fromFile(obj('link_counters')), { programs: { only: ['tp_execve'] } });
    try {
      assert.throws(() => attachSkLookup(counters.programs.get('tp_execve')!), /needs a sk_lookup program/);
      assert.throws(() => attachLsm(counters.programs.get('tp_execve')!), /needs a lsm program/);
      assert.throws(() => attachIter(counters.programs.get('tp_execve')!), /needs a tracing program/);
    } finally {
      counters.close();
    }
  });
});
