/**
 * The syscall seam: with a fake `Native` installed by setNative(), Collection.load runs without
 * root, a kernel or the addon, and the errors it reports come from what the fake answered. A
 * fake that refuses BPF_MAP_CREATE with EPERM gives a BpfSyscallError that says what to do; one
 * that creates the map but refuses BPF_PROG_LOAD with a verifier log gives a VerifierError. Every
 * descriptor the fake handed out is closed again.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfSyscallError, Collection, CollectionSpec, VerifierError } from '../../src/index.js';
import { setNative, type Native } from '../../src/internal.js';
import { BPF_CMD } from '../../src/abi/constants.js';
import { objBytes } from '../helpers/index.js';

const EPERM = 1;
const EACCES = 13;

type PointerRefs = Parameters<Native['bpf']>[2];

interface BpfCall {
  readonly cmd: number;
  readonly attr: Uint8Array;
  readonly refs: PointerRefs;
}

/** A Native whose bpf() answers through `answer` and records every call; other syscalls fail loudly. */
function fakeNative(answer: (call: BpfCall) => number) {
  const calls: BpfCall[] = [];
  const closed: number[] = [];
  const unexpected = (what: string) => () => {
    throw new Error(`fake native: unexpected ${what}()`);
  };
  const native: Native = {
    bpf(cmd, attr, refs) {
      const call = { cmd, attr: attr.slice(), refs };
      calls.push(call);
      return answer(call);
    },
    close(fd) {
      closed.push(fd);
      return 0;
    },
    getrlimit: () => [0n, 0n],
    setrlimit: () => 0,
    strerror: (errno) => `errno ${errno}`,
    perfEventOpen: unexpected('perfEventOpen'),
    ioctl: unexpected('ioctl'),
    mmap: unexpected('mmap'),
    munmap: unexpected('munmap'),
    socket: unexpected('socket'),
    bind: unexpected('bind'),
    connect: unexpected('connect'),
    sendto: unexpected('sendto'),
    recv: unexpected('recv'),
    setsockopt: unexpected('setsockopt'),
    getsockopt: unexpected('getsockopt'),
    Poller: class {
      constructor() {
        throw new Error('fake native: unexpected Poller');
      }
    } as unknown as Native['Poller'],
    constants: {
      PROT_READ: 1, PROT_WRITE: 2, MAP_SHARED: 1, PAGE_SIZE: 4096, UV_READABLE: 1, UV_WRITABLE: 2, UV_PRIORITIZED: 4,
      RLIMIT_MEMLOCK: 8, NR_CPUS_ONLINE: 1,
    },
  };
  return { native, calls, closed };
}

/** The buffer a pointer field at `offset` of the attribute points to. */
function pointee(call: BpfCall, offset: number): ArrayBufferView | null {
  const refs = call.refs ?? [];
  for (let i = 0; i < refs.length; i += 3) {
    if (refs[i] === null && refs[i + 1] === offset) return refs[i + 2] as ArrayBufferView | null;
  }
  return null;
}

const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);

let original: Native | undefined;
let installed = false;
function install(fake: Native): void {
  const prev = setNative(fake);
  if (!installed) {
    original = prev;
    installed = true;
  }
}

after(() => {
  // Back to the real addon (or to "not loaded yet", so native() loads it on first use).
  if (installed) setNative(original);
});

const spec = () => CollectionSpec.fromBuffer(objBytes('packet_count'));

test('EPERM from BPF_MAP_CREATE is a BpfSyscallError that says to run as root', async () => {
  const fake = fakeNative(() => -EPERM);
  install(fake.native);
  await assert.rejects(Collection.load(spec()), (e: unknown) => {
    assert.ok(e instanceof BpfSyscallError, String(e));
    assert.equal(e.code, 'EPERM');
    assert.equal(e.errno, -EPERM);
    assert.equal(e.syscall, 'bpf(BPF_MAP_CREATE)');
    assert.ok(e.hint, 'a hint is given');
    assert.match(e.hint, /root|CAP_BPF/);
    assert.match(e.message, /xdp_stats_map/);
    assert.match(e.message, /EPERM/);
    return true;
  });
  const cmds = fake.calls.map((c) => c.cmd);
  assert.ok(cmds.includes(BPF_CMD.MAP_CREATE), `commands: ${cmds.join(', ')}`);
  assert.ok(!cmds.includes(BPF_CMD.PROG_LOAD), 'no program load once the map failed');
  // The map request carried the object's definition: LRU_HASH (9), u32 -> u32, 1024 entries.
  const create = fake.calls.find((c) => c.cmd === BPF_CMD.MAP_CREATE)!;
  assert.deepEqual([u32(create.attr, 0), u32(create.attr, 4), u32(create.attr, 8), u32(create.attr, 12)], [9, 4, 4, 1024]);
  assert.deepEqual(fake.closed, [], 'nothing was opened, nothing closed');
});

test('a verifier refusal from the fake is a VerifierError carrying its log; its fds are closed', async () => {
  const log = [
    '0: R1=ctx() R10=fp0',
    '0: (61) r1 = *(u32 *)(r1 +0)          ; R1=pkt(r=0)',
    '1: (71) r1 = *(u8 *)(r1 +0)',
    'invalid access to packet, off=0 size=1, R1(id=0,off=0,r=0)',
    'R1 offset is outside of the packet',
    'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
    '',
  ].join('\n');
  let nextFd = 100;
  const opened: number[] = [];
  const fake = fakeNative((call) => {
    switch (call.cmd) {
      case BPF_CMD.BTF_LOAD:
      case BPF_CMD.MAP_CREATE:
        opened.push(nextFd);
        return nextFd++;
      case BPF_CMD.PROG_LOAD: {
        const buf = pointee(call, 32);
        const logLevel = u32(call.attr, 24);
        if (buf && logLevel > 0) {
          const out = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
          out.set(new TextEncoder().encode(log).subarray(0, out.length - 1));
        }
        return -EACCES;
      }
      default:
        return -22;
    }
  });
  install(fake.native);
  await assert.rejects(Collection.load(spec()), (e: unknown) => {
    assert.ok(e instanceof VerifierError, String(e));
    assert.equal(e.program, 'xdp_prog_func');
    assert.equal(e.errno, -EACCES);
    assert.equal(e.log.trim(), log.trim());
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, /xdp_prog_func/);
    assert.match(e.message, /R1 offset is outside of the packet/);
    return true;
  });
  const loads = fake.calls.filter((c) => c.cmd === BPF_CMD.PROG_LOAD);
  assert.ok(loads.length >= 1);
  // The program load saw the map's fd in its ld_imm64 and the BTF's fd.
  const withLog = loads[loads.length - 1]!;
  assert.ok(u32(withLog.attr, 24) > 0, 'the failed load was retried with a log');
  assert.equal(u32(withLog.attr, 0), 6, 'BPF_PROG_TYPE_XDP');
  assert.equal(u32(withLog.attr, 72), 100, 'the BTF fd');
  const insns = pointee(withLog, 8) as Uint8Array;
  let mapFdSeen = false;
  for (let i = 0; i + 8 <= insns.length; i += 8) {
    if (insns[i] === 0x18 && (insns[i + 1]! >> 4) === 1 && u32(insns, i + 4) === 101) mapFdSeen = true;
  }
  assert.ok(mapFdSeen, 'an ld_imm64 carries BPF_PSEUDO_MAP_FD with the map fd 101');
  assert.deepEqual([...fake.closed].sort(), [...opened].sort(), 'every fd the fake handed out was closed');
});
