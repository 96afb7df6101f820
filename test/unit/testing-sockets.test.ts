/**
 * Declared sockets of the emulated kernel: bad declarations are refused with a clear error, and
 * the lookup helpers find what is declared (also what is pushed to `kernel.sockets` later).
 * test/kernel/emulator-helpers.test.ts compares the lookups with the kernel's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { asm, label, loadAssembly, useEmulatedKernel, type EmulatedSocket, type Item } from '../../src/testing/index.js';
import { InvalidArgumentError } from '../../src/errors.js';

/** tc: r0 = sk_lookup_tcp(127.0.0.1:5555 -> 127.0.0.1:port)'s state, or 0xff when nothing is found. */
function lookupState(port: number): number {
  const tuple = new Uint8Array(16);
  tuple.set([127, 0, 0, 1, 127, 0, 0, 1, 0x15, 0xb3, port >> 8, port & 0xff]);
  const v = new DataView(tuple.buffer);
  const items: Item[] = [asm.mov64('r6', 'r1'), ...asm.ld64('r1', v.getBigUint64(0, true)), asm.stx('dw', 'r10', -16, 'r1'), ...asm.ld64('r1', v.getBigUint64(8, true)), asm.stx('dw', 'r10', -8, 'r1'),
    asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -16), asm.mov64('r3', 12), ...asm.ld64('r4', -1), asm.mov64('r5', 0), asm.call(84),
    asm.mov64('r8', 0xff), asm.jmp('eq', 'r0', 0, 'out'), asm.mov64('r7', 'r0'), asm.ldx('w', 'r8', 'r7', 72), asm.mov64('r1', 'r7'), asm.call(86),
    label('out'), asm.mov64('r0', 'r8'), asm.exit()];
  const p = loadAssembly(items, { type: 'sched_cls', name: 'lookup' });
  try {
    return p.testRun({ data: new Uint8Array(60) }).retval;
  } finally {
    p.close();
  }
}

describe('emulated sockets', () => {
  it('refuses declarations with bad addresses, ports, protocols or a missing peer, naming the problem', () => {
    const bad: [EmulatedSocket, RegExp][] = [
      [{ protocol: 'tcp', localAddress: '127.0.0.300', localPort: 80 }, /localAddress "127\.0\.0\.300" is not an IPv4 or IPv6 address/],
      [{ protocol: 'tcp', localAddress: '127.0.0.1', localPort: 70000 }, /localPort 70000 is not a port number/],
      [{ protocol: 'sctp' as 'tcp', localAddress: '127.0.0.1', localPort: 80 }, /protocol "sctp" is not "tcp" or "udp"/],
      [{ protocol: 'tcp', localAddress: '127.0.0.1', localPort: 80, state: 'established' }, /needs remoteAddress and remotePort/],
      [{ protocol: 'udp', localAddress: '::1', localPort: 80, remoteAddress: '127.0.0.1', remotePort: 1 }, /different families/],
    ];
    for (const [s, message] of bad) {
      assert.throws(() => useEmulatedKernel({ sockets: [s] }).restore(), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message));
    }
  });

  it('finds a declared listener, an established socket before it, and one pushed later', () => {
    const emu = useEmulatedKernel({ sockets: [{ protocol: 'tcp', localAddress: '0.0.0.0', localPort: 8080 }] });
    try {
      assert.equal(lookupState(8080), 10, 'TCP_LISTEN');
      assert.equal(lookupState(8081), 0xff, 'nothing on 8081');
      emu.sockets.push({ protocol: 'tcp', localAddress: '127.0.0.1', localPort: 8080, remoteAddress: '127.0.0.1', remotePort: 5555 });
      assert.equal(lookupState(8080), 1, 'TCP_ESTABLISHED: the four-tuple matches first');
    } finally {
      emu.restore();
    }
  });
});
