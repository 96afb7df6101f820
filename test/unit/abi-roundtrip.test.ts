/**
 * The library and the emulated kernel agree on every bpf() attr, field by field: each command the
 * library issues is encoded by the library's own syscall functions (src/sys/bpf.ts, src/sys/link.ts)
 * into a recording Native, then decoded by the emulator's decoder (src/testing/attr.ts: the layout
 * it picks for the command, read field by field) and compared with the values given. A field that
 * either side places elsewhere, a command mapped to the wrong union member, or a library command
 * number that is not the kernel's fails here.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setNative, type Native } from '../../src/sys/native.js';
import {
  btfLoadRaw, enableStats, getFdById, getNextId, mapBatch, mapCreateAttr, mapDeleteElem, mapFreeze, mapGetNextKey,
  mapLookupAndDeleteElem, mapLookupElem, mapUpdateElem, objGet, objGetInfoByFd, objPin, progLoadRaw, progTestRun, bpfRaw,
} from '../../src/sys/bpf.js';
import { linkCreateRaw, linkDetachRaw, linkUpdate, progAttachRaw, progDetachRaw, rawTracepointOpenRaw } from '../../src/sys/link.js';
import { Attr } from '../../src/sys/attr.js';
import { ATTACH_TYPES, BPF_CMD, LINK_TYPES, MAP_TYPES, PROG_TYPES, attachType } from '../../src/abi/constants.js';
import {
  bpf_attach_type, bpf_attr, bpf_cmd, bpf_link_type, bpf_map_type, bpf_prog_info, bpf_prog_type, perf_event_attr,
} from '../../src/abi/uapi.js';
import { perfEventAttr } from '../../src/sys/perf-event.js';
import { ATTR_OF_CMD, AttrReader, attrOf, type AttrCmd, type FieldValue } from '../../src/testing/attr.js';

type PointerRefs = Parameters<Native['bpf']>[2];
interface Call {
  cmd: number;
  attr: Uint8Array;
  refs: PointerRefs;
}

const calls: Call[] = [];
const FD = 7;
const fail = (what: string) => () => {
  throw new Error(`recording native: unexpected ${what}()`);
};
const recorder: Native = {
  bpf(cmd, attr, refs) {
    calls.push({ cmd, attr, refs });
    return cmd === bpf_cmd.BPF_MAP_LOOKUP_BATCH ? 0 : FD;
  },
  close: () => 0,
  getrlimit: () => [0n, 0n],
  setrlimit: () => 0,
  strerror: (e) => `errno ${e}`,
  bpffsMounts: () => ['/sys/fs/bpf'],
  perfEventOpen: fail('perfEventOpen'), ioctl: fail('ioctl'), mmap: fail('mmap'), munmap: fail('munmap'), socket: fail('socket'),
  bind: fail('bind'), connect: fail('connect'), sendto: fail('sendto'), recv: fail('recv'), setsockopt: fail('setsockopt'),
  getsockopt: fail('getsockopt'),
  Poller: class {} as unknown as Native['Poller'],
  constants: {
    PROT_READ: 1, PROT_WRITE: 2, MAP_SHARED: 1, PAGE_SIZE: 4096, UV_READABLE: 1, UV_WRITABLE: 2, UV_PRIORITIZED: 4,
    RLIMIT_MEMLOCK: 8, NR_CPUS_ONLINE: 1,
  },
} as Native;
const previous = setNative(recorder);
after(() => setNative(previous));

/** Runs `issue` (one library call) and returns the one bpf() call it made. */
function issued(issue: () => unknown): Call {
  calls.length = 0;
  issue();
  assert.equal(calls.length, 1, `expected one bpf() call, got ${calls.length}`);
  return calls[0]!;
}

/** Same memory: the emulator resolved a pointer field to the very buffer the library passed. */
function sameBuffer(got: FieldValue | Record<string, FieldValue> | undefined, want: ArrayBufferView): boolean {
  return got instanceof Uint8Array && got.buffer === want.buffer && got.byteOffset === want.byteOffset && got.byteLength === want.byteLength;
}

/** Where the emulator's decoding of `call` differs from `want` (pointer fields compared by identity). */
function differences(decoded: Record<string, unknown>, want: Record<string, unknown>, path = ''): string[] {
  const out: string[] = [];
  for (const [name, w] of Object.entries(want)) {
    const got = decoded[name];
    const where = `${path}${name}`;
    if (w !== null && typeof w === 'object' && !ArrayBuffer.isView(w)) {
      out.push(...differences((got ?? {}) as Record<string, unknown>, w as Record<string, unknown>, `${where}.`));
    } else if (ArrayBuffer.isView(w)) {
      if (!sameBuffer(got as FieldValue, w)) out.push(`${where}: not the buffer the library passed`);
    } else if (got !== w) {
      out.push(`${where}: ${String(got)} decoded, ${String(w)} encoded`);
    }
  }
  return out;
}

/** Decodes `call` with the emulator's layout for its command and checks every field in `want`. */
function roundTrip(name: keyof typeof BPF_CMD, call: Call, want: Record<string, unknown>): void {
  assert.equal(call.cmd, bpf_cmd[`BPF_${name}`], `BPF_${name}: the library sends ${call.cmd}`);
  assert.ok(call.cmd in ATTR_OF_CMD, `the emulator has no attr layout for BPF_${name}`);
  const fields = attrOf(call.cmd as AttrCmd, call.attr, call.refs).fields();
  assert.deepEqual(differences(fields, want), [], `BPF_${name}`);
}

const buf = (n: number) => new Uint8Array(n);

test('the type names the library and the emulator look numbers up in sit at the kernel\'s enum values', () => {
  const check = (names: readonly string[], enumeration: Record<string, number>, prefix: string) => {
    names.forEach((name, i) => assert.equal(enumeration[`${prefix}${name.toUpperCase()}`], i, `${prefix}${name.toUpperCase()}`));
  };
  check(MAP_TYPES, bpf_map_type, 'BPF_MAP_TYPE_');
  check(PROG_TYPES, bpf_prog_type, 'BPF_PROG_TYPE_');
  check(LINK_TYPES, bpf_link_type, 'BPF_LINK_TYPE_');
  check(ATTACH_TYPES, bpf_attach_type, 'BPF_');
});

test('the library\'s command numbers are the kernel\'s (enum bpf_cmd), and the emulator has a layout for each', () => {
  for (const [name, n] of Object.entries(BPF_CMD)) {
    assert.equal(n, bpf_cmd[`BPF_${name}` as keyof typeof bpf_cmd], name);
    assert.ok(n in ATTR_OF_CMD, `BPF_${name}`);
  }
});

test('map commands: BPF_MAP_CREATE, the element commands, BPF_MAP_FREEZE and the batch commands', () => {
  roundTrip('MAP_CREATE', issued(() => bpfRaw('MAP_CREATE', mapCreateAttr({
    mapType: 9, keySize: 0x11, valueSize: 0x22, maxEntries: 0x33, flags: 0x44, innerMapFd: 0x55, numaNode: 0x66, name: 'round_trip',
    ifindex: 0x77, btfFd: 0x88, btfKeyTypeId: 0x99, btfValueTypeId: 0xaa, btfVmlinuxValueTypeId: 0xbb, mapExtra: 0xccddn,
  }))), {
    map_type: 9, key_size: 0x11, value_size: 0x22, max_entries: 0x33, map_flags: 0x44, inner_map_fd: 0x55, numa_node: 0x66,
    map_name: 'round_trip', map_ifindex: 0x77, btf_fd: 0x88, btf_key_type_id: 0x99, btf_value_type_id: 0xaa,
    btf_vmlinux_value_type_id: 0xbb, map_extra: 0xccddn,
  });
  const key = buf(4);
  const value = buf(8);
  roundTrip('MAP_LOOKUP_ELEM', issued(() => mapLookupElem(3, key, value, 4)), { map_fd: 3, key, value, flags: 4n });
  roundTrip('MAP_UPDATE_ELEM', issued(() => mapUpdateElem(4, key, value, 2)), { map_fd: 4, key, value, flags: 2n });
  roundTrip('MAP_UPDATE_ELEM', issued(() => mapUpdateElem(4, key, value, 1n << 40n)), { map_fd: 4, flags: 1n << 40n });
  roundTrip('MAP_DELETE_ELEM', issued(() => mapDeleteElem(5, key)), { map_fd: 5, key });
  roundTrip('MAP_GET_NEXT_KEY', issued(() => mapGetNextKey(6, key, value)), { map_fd: 6, key, next_key: value });
  roundTrip('MAP_LOOKUP_AND_DELETE_ELEM', issued(() => mapLookupAndDeleteElem(8, key, value, 4)), { map_fd: 8, key, value, flags: 4n });
  roundTrip('MAP_FREEZE', issued(() => mapFreeze(9)), { map_fd: 9 });
  const [inB, outB, keys, values] = [buf(4), buf(4), buf(16), buf(32)];
  for (const cmd of ['MAP_LOOKUP_BATCH', 'MAP_LOOKUP_AND_DELETE_BATCH', 'MAP_UPDATE_BATCH', 'MAP_DELETE_BATCH'] as const) {
    roundTrip(cmd, issued(() => mapBatch(cmd, { fd: 10, inBatch: inB, outBatch: outB, keys, values, count: 4, elemFlags: 4, flags: 0 })), {
      map_fd: 10, in_batch: inB, out_batch: outB, keys, values, count: 4, elem_flags: 4n, flags: 0n,
    });
  }
});

test('program and BTF loading: BPF_PROG_LOAD, BPF_BTF_LOAD', () => {
  const insns = buf(16);
  const log = buf(64);
  const funcInfo = buf(16);
  const lineInfo = buf(32);
  const fdArray = new Int32Array(2);
  const call = issued(() => progLoadRaw({
    progType: 6, insns, license: 'GPL', logLevel: 1, logBuf: log, kernVersion: 0x60100, progFlags: 0x20, name: 'rt_prog', ifindex: 3,
    expectedAttachType: 37, btfFd: 11, funcInfo, funcInfoRecSize: 8, funcInfoCnt: 2, lineInfo, lineInfoRecSize: 16, lineInfoCnt: 2,
    attachBtfId: 1234, attachProgFd: 12, fdArray,
  }));
  roundTrip('PROG_LOAD', call, {
    prog_type: 6, insn_cnt: 2, insns, log_level: 1, log_size: 64, log_buf: log, kern_version: 0x60100, prog_flags: 0x20,
    prog_name: 'rt_prog', prog_ifindex: 3, expected_attach_type: 37, prog_btf_fd: 11, func_info_rec_size: 8, func_info: funcInfo,
    func_info_cnt: 2, line_info_rec_size: 16, line_info: lineInfo, line_info_cnt: 2, attach_btf_id: 1234, attach_prog_fd: 12,
    fd_array: fdArray,
  });
  // The license is a C string the library made: the emulator finds it NUL-terminated.
  const license = attrOf(bpf_cmd.BPF_PROG_LOAD, call.attr, call.refs).ptr('license');
  assert.equal(new TextDecoder().decode(license!.subarray(0, license!.indexOf(0))), 'GPL');

  const btf = buf(40);
  roundTrip('BTF_LOAD', issued(() => btfLoadRaw(btf, log, 2)), { btf, btf_log_buf: log, btf_size: 40, btf_log_size: 64, btf_log_level: 2 });
});

test('objects: BPF_OBJ_PIN, BPF_OBJ_GET, the id commands, BPF_OBJ_GET_INFO_BY_FD, BPF_ENABLE_STATS', () => {
  const pinned = (c: Call) => {
    const p = attrOf(bpf_cmd.BPF_OBJ_PIN, c.attr, c.refs).ptr('pathname')!;
    return new TextDecoder().decode(p.subarray(0, p.indexOf(0)));
  };
  const pin = issued(() => objPin(13, '/sys/fs/bpf/rt'));
  roundTrip('OBJ_PIN', pin, { bpf_fd: 13, file_flags: 0 });
  assert.equal(pinned(pin), '/sys/fs/bpf/rt');
  const get = issued(() => objGet('/sys/fs/bpf/rt2', 8).close());
  roundTrip('OBJ_GET', get, { file_flags: 8 });
  assert.equal(pinned(get), '/sys/fs/bpf/rt2');

  for (const [kind, id] of [['PROG', 'prog_id'], ['MAP', 'map_id'], ['BTF', 'btf_id'], ['LINK', 'link_id']] as const) {
    roundTrip(`${kind}_GET_NEXT_ID`, issued(() => getNextId(kind, 41)), { start_id: 41 });
    roundTrip(`${kind}_GET_FD_BY_ID`, issued(() => getFdById(kind, 42, kind === 'MAP' ? 8 : 0).close()), { [id]: 42, open_flags: kind === 'MAP' ? 8 : 0 });
  }

  const plain = buf(88);
  roundTrip('OBJ_GET_INFO_BY_FD', issued(() => objGetInfoByFd(14, plain)), { bpf_fd: 14, info_len: 88, info: plain });
  // A bpf_prog_info whose own pointer fields the kernel fills: the emulator finds them inside it.
  const info = new Attr(bpf_prog_info.$size);
  const xlated = buf(64);
  const mapIds = buf(8);
  info.u32(bpf_prog_info.xlated_prog_len, 64).ptr(bpf_prog_info.xlated_prog_insns, xlated)
    .u32(bpf_prog_info.nr_map_ids, 2).ptr(bpf_prog_info.map_ids, mapIds);
  const call = issued(() => objGetInfoByFd(15, info));
  roundTrip('OBJ_GET_INFO_BY_FD', call, { bpf_fd: 15, info_len: bpf_prog_info.$size, info: info.bytes });
  const a = attrOf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, call.attr, call.refs);
  const inner = a.inner(bpf_prog_info, a.ptr('info')!).fields();
  assert.deepEqual(differences(inner, { xlated_prog_len: 64, xlated_prog_insns: xlated, nr_map_ids: 2, map_ids: mapIds }), []);

  roundTrip('ENABLE_STATS', issued(() => enableStats(0).close()), { type: 0 });
});

test('BPF_PROG_TEST_RUN', () => {
  const [dataIn, dataOut, ctxIn, ctxOut] = [buf(60), buf(128), buf(24), buf(24)];
  roundTrip('PROG_TEST_RUN', issued(() => progTestRun({ progFd: 16, dataIn, dataOut, ctxIn, ctxOut, repeat: 5, flags: 1, cpu: 1, batchSize: 0 })), {
    prog_fd: 16, data_size_in: 60, data_size_out: 128, data_in: dataIn, data_out: dataOut, repeat: 5, ctx_size_in: 24, ctx_size_out: 24,
    ctx_in: ctxIn, ctx_out: ctxOut, flags: 1, cpu: 1, batch_size: 0,
  });
});

test('attaching: BPF_LINK_CREATE (with its per-link-type members), BPF_LINK_UPDATE/DETACH, BPF_RAW_TRACEPOINT_OPEN, BPF_PROG_ATTACH/DETACH', () => {
  roundTrip('LINK_CREATE', issued(() => linkCreateRaw({
    progFd: 17, target: 18, attachType: 'tcx_ingress', flags: 0x10, relative: 19, expectedRevision: 20n,
  })), { prog_fd: 17, target_fd: 18, attach_type: attachType.number('tcx_ingress'), flags: 0x10, tcx: { relative_fd: 19, expected_revision: 20n } });
  roundTrip('LINK_CREATE', issued(() => linkCreateRaw({ progFd: 17, target: 21, attachType: 'perf_event', perfEventCookie: 0xabcn })), {
    prog_fd: 17, target_fd: 21, perf_event: { bpf_cookie: 0xabcn },
  });
  const multi = issued(() => linkCreateRaw({ progFd: 17, target: 0, attachType: 'trace_kprobe_multi', kprobeMulti: { flags: 1, addresses: [1n, 2n], cookies: [3n, 4n] } }));
  roundTrip('LINK_CREATE', multi, { kprobe_multi: { flags: 1, cnt: 2 } });
  const km = attrOf(bpf_cmd.BPF_LINK_CREATE, multi.attr, multi.refs).fields()['kprobe_multi'] as Record<string, FieldValue>;
  assert.deepEqual([...new BigUint64Array((km['addrs'] as Uint8Array).slice().buffer)], [1n, 2n]);
  assert.deepEqual([...new BigUint64Array((km['cookies'] as Uint8Array).slice().buffer)], [3n, 4n]);
  const up = issued(() => linkCreateRaw({ progFd: 17, target: 0, attachType: 'trace_uprobe_multi', uprobeMulti: { path: '/bin/true', offsets: [5n], flags: 1, pid: 77 } }));
  roundTrip('LINK_CREATE', up, { uprobe_multi: { cnt: 1, flags: 1, pid: 77 } });

  roundTrip('LINK_UPDATE', issued(() => linkUpdate(22, 23, 24)), { link_fd: 22, new_prog_fd: 23, flags: 4, old_prog_fd: 24 });
  roundTrip('LINK_DETACH', issued(() => linkDetachRaw(25)), { link_fd: 25 });
  const tp = issued(() => rawTracepointOpenRaw('sched_switch', 26, 27n));
  roundTrip('RAW_TRACEPOINT_OPEN', tp, { prog_fd: 26, cookie: 27n });
  roundTrip('PROG_ATTACH', issued(() => progAttachRaw({ targetFd: 28, progFd: 29, attachType: 'cgroup_inet_egress', flags: 2, replaceFd: 30 })), {
    target_fd: 28, attach_bpf_fd: 29, attach_type: attachType.number('cgroup_inet_egress'), attach_flags: 2, replace_bpf_fd: 30,
  });
  roundTrip('PROG_DETACH', issued(() => progDetachRaw(31, 32, 'cgroup_inet_ingress')), {
    target_fd: 31, attach_bpf_fd: 32, attach_type: attachType.number('cgroup_inet_ingress'),
  });
});

test('perf_event_open: the attr the library lays out reads back in the emulator, bitfield flags included', () => {
  const attr = perfEventAttr({ type: 1, config: 10, sampleType: 1 << 10, wakeupEvents: 3, flags: { disabled: true, writeBackward: true } });
  const a = new AttrReader(perf_event_attr, attr.bytes, attr.refs);
  assert.deepEqual(differences(a.fields(), { type: 1, config: 10n, sample_type: 1024n, wakeup_events: 3, size: attr.bytes.length }), []);
  assert.deepEqual(['disabled', 'write_backward', 'watermark', 'inherit'].map((b) => a.bit(b)), [true, true, false, false]);
  const watermark = new AttrReader(perf_event_attr, perfEventAttr({ type: 1, wakeupWatermark: 4096 }).bytes, undefined);
  assert.deepEqual([watermark.bit('watermark'), watermark.bit('disabled'), watermark.u32('wakeup_watermark')], [true, false, 4096]);
});

test('the comparison fails when a side places a field elsewhere (the decoder given a layout with key_size moved)', () => {
  const call = issued(() => bpfRaw('MAP_CREATE', mapCreateAttr({ mapType: 1, keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 })));
  const moved = { ...bpf_attr.map_create, key_size: bpf_attr.map_create.key_size + 4 };
  const fields = new AttrReader(moved, call.attr, call.refs).fields();
  assert.deepEqual(differences(fields, { map_type: 1, key_size: 4 }), ['key_size: 8 decoded, 4 encoded']);
});
