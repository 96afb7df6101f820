/**
 * Socket filters and cgroup programs for real. The socket filter goes on a UDP socket made with
 * the native socket() call and bound to 127.0.0.1; node:dgram sends to it. The cgroup_skb egress
 * program goes on a child cgroup of the cgroup2 mount (found in /proc/mounts) that a child process joins before it
 * sends UDP to 127.0.0.1. Everything made here (sockets, cgroups, links) is removed again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { attach, attachCgroup, attachSocketFilter, BpfSyscallError, FdLink, NotSupportedError, type Link } from '../../src/index.js';
import { native } from '../../src/sys/native.js';
import { kernelTest, patient } from '../helpers/index.js';
import { assertProgramGone, count, LINK_TEST_PORT, loadCounters, prog, SLOT, sleep, UDP_FIXTURE } from '../fixtures/link-env.js';
import { createCgroup, removeCgroup } from '../fixtures/net.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const MSG_DONTWAIT = 0x40;

function sockaddrIn(addr: string, port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  b.set(addr.split('.').map(Number), 4);
  return b;
}

/** A UDP socket from the native socket() call, bound to 127.0.0.1 on a free port. */
function nativeUdpSocket(): { fd: number; port: number } {
  const n = native();
  const fd = n.socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw new BpfSyscallError(fd, 'socket');
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const r = n.bind(fd, sockaddrIn('127.0.0.1', port));
    if (r === 0) return { fd, port };
    if (r !== -98) { n.close(fd); throw new BpfSyscallError(r, 'bind'); } // EADDRINUSE: try another port
  }
  n.close(fd);
  throw new Error('no free UDP port on 127.0.0.1');
}

function drain(fd: number): number {
  const buf = new Uint8Array(2048);
  let got = 0;
  while (native().recv(fd, buf, MSG_DONTWAIT) >= 0) got++;
  return got;
}

async function sendUdp(port: number, n: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  try {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => s.send(`d${i}`, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    }
  } finally {
    s.close();
  }
}

async function waitFor(pred: () => boolean, ms = patient(2000)): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(10);
}

describe('socket filters', () => {
  it('counts the datagrams a test socket receives, and stops after close', kernelTest, async () => {
    const coll = await loadCounters();
    const p = prog(coll, 'socket_count');
    const id = p.info().id;
    const sock = nativeUdpSocket();
    let link: Link | undefined;
    try {
      link = attachSocketFilter(p, sock.fd);
      assert.equal(link.kind, 'socket-filter');
      assert.equal(link.fd, undefined);
      assert.equal(link.info().progId, id);
      assert.throws(() => link!.pin('/sys/fs/bpf/never'), NotSupportedError);
      await sendUdp(sock.port, 6);
      await waitFor(() => count(coll, SLOT.socket) >= 6n);
      assert.equal(count(coll, SLOT.socket), 6n);
      assert.equal(drain(sock.fd), 6, 'the filter kept every datagram (it returns skb->len)');

      link.close();
      await sendUdp(sock.port, 3);
      await waitFor(() => drain(sock.fd) > 0);
      assert.equal(count(coll, SLOT.socket), 6n, 'nothing counted after close');

      // attach() takes the socket from the options.
      link = attach(p, { socket: { fd: sock.fd } });
      await sendUdp(sock.port, 2);
      await waitFor(() => count(coll, SLOT.socket) >= 8n);
      assert.equal(count(coll, SLOT.socket), 8n);
    } finally {
      link?.close();
      native().close(sock.fd);
      coll.close();
    }
    await assertProgramGone(id);
  });

  it('a bad fd is explained', kernelTest, async () => {
    const coll = await loadCounters();
    try {
      assert.throws(() => attachSocketFilter(prog(coll, 'socket_count'), 0x7ffffff0),
        (e: unknown) => (e as { code?: string }).code === 'EBADF');
    } finally {
      coll.close();
    }
  });
});

describe('cgroup programs', () => {

  /** Runs the UDP sender inside `cgroup` (it joins the cgroup before exec'ing node). */
  function sendFromCgroup(cgroup: string, n: number): Promise<number | null> {
    const child = spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" send 127.0.0.1 "$4" "$5"', 'sh',
      cgroup, process.execPath, UDP_FIXTURE, String(LINK_TEST_PORT), String(n)], { stdio: ['ignore', 'ignore', 'inherit'] });
    return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  for (const mode of ['link', 'prog-attach'] as const) {
    it(`cgroup_skb/egress (${mode}) counts UDP sent by processes in a test cgroup only`, kernelTest, async () => {
      const dir = createCgroup(`bpfkit-test-${mode}-${process.pid}`);
      let coll: Awaited<ReturnType<typeof loadCounters>> | undefined;
      let id = 0;
      let link: Link | undefined;
      try {
        coll = await loadCounters();
        const p = prog(coll, 'cgroup_egress_udp');
        id = p.info().id;
        link = mode === 'link' ? attachCgroup(p, dir) : attachCgroup(p, dir, undefined, { forceProgAttach: true });
        if (mode === 'link') {
          assert.ok(link instanceof FdLink);
          const info = link.info();
          assert.equal(info.type, 'cgroup');
          assert.equal(info.attachType, 'cgroup_inet_egress');
          assert.equal(info.progId, id);
        } else {
          assert.equal(link.kind, 'cgroup-prog-attach');
          assert.equal(link.info().attachType, 'cgroup_inet_egress');
        }
        assert.equal(await sendFromCgroup(dir, 5), 0);
        assert.equal(count(coll, SLOT.cgroupEgress), 5n, 'the 5 datagrams of the process in the cgroup');
        await sendUdp(LINK_TEST_PORT, 3);
        assert.equal(count(coll, SLOT.cgroupEgress), 5n, 'traffic of processes outside the cgroup is not seen');
        link.close();
        assert.equal(await sendFromCgroup(dir, 2), 0);
        assert.equal(count(coll, SLOT.cgroupEgress), 5n, 'nothing counted after close');
      } finally {
        link?.close();
        coll?.close();
        await removeCgroup(dir);
      }
      assert.equal(existsSync(dir), false, 'the test cgroup is removed');
      await assertProgramGone(id);
    });
  }

  it('attach() uses the section attach type with { cgroup }', kernelTest, async () => {
    const dir = createCgroup(`bpfkit-test-auto-${process.pid}`);
    let coll: Awaited<ReturnType<typeof loadCounters>> | undefined;
    try {
      coll = await loadCounters();
      const link = attach(prog(coll, 'cgroup_egress_udp'), { cgroup: dir });
      try {
        assert.equal(link.info().attachType, 'cgroup_inet_egress');
        assert.equal(await sendFromCgroup(dir, 1), 0);
        assert.equal(count(coll, SLOT.cgroupEgress), 1n);
      } finally {
        link.close();
      }
    } finally {
      coll?.close();
      await removeCgroup(dir);
    }
    assert.equal(existsSync(dir), false);
  });
});
