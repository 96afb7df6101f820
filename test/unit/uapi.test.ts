// The generated uapi layouts (src/sys/uapi.ts) are what the committed BTF (scripts/abi/uapi.btf)
// says, and the comparison that guards them against a kernel's BTF can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Btf } from '../../src/btf/btf.js';
import type { BtfEnum, BtfStruct, BtfType } from '../../src/btf/types.js';
import { bpf_attr, perf_event_attr } from '../../src/abi/uapi.js';
import { ROOT } from '../helpers/index.js';

const GEN = join(ROOT, 'scripts/gen-abi.mjs');
const BTF_FILE = join(ROOT, 'scripts/abi/uapi.btf');

function gen(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [GEN, ...args], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('src/sys/uapi.ts is exactly what scripts/abi/uapi.btf generates', () => {
  const r = gen('--check');
  assert.equal(r.status, 0, r.out);
});

test('the layouts carry the kernel ABI: a few offsets every kernel since 5.x agrees on', () => {
  // Spot checks against uapi linux/bpf.h and linux/perf_event.h, independent of the generator.
  assert.equal(bpf_attr.map_create.map_name, 28);
  assert.equal(bpf_attr.prog_load.fd_array, 120);
  assert.equal(bpf_attr.link_create.kprobe_multi.cookies, 40);
  assert.deepEqual(perf_event_attr.$bits.precise_ip, [335, 2]);
});

test('--compare finds a field that a kernel places elsewhere, and names it (sentinel counts like __MAX_BPF_CMD aside)', () => {
  const btf = Btf.parse(readFileSync(BTF_FILE));
  const attr = btf.byName('bpf_attr', 'union')[0] as BtfStruct;
  // The first anonymous struct of union bpf_attr is BPF_MAP_CREATE's; move its key_size.
  const mapCreate = btf.resolve(attr.members[0]!.type) as BtfStruct;
  const moved: BtfStruct = {
    ...mapCreate,
    members: mapCreate.members.map((m) => (m.name === 'key_size' ? { ...m, bitOffset: m.bitOffset + 32 } : m)),
  };
  // A kernel with fewer commands has a smaller __MAX_BPF_CMD: a count, not a disagreement.
  const cmd = btf.byName('bpf_cmd', 'enum')[0] as BtfEnum;
  const fewer: BtfEnum = { ...cmd, values: cmd.values.map((v) => (v.name === '__MAX_BPF_CMD' ? { ...v, value: v.value - 1n } : v)) };
  const types: BtfType[] = btf.types.map((t) => (t.id === mapCreate.id ? moved : t.id === cmd.id ? fewer : t));
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-uapi-'));
  try {
    const file = join(dir, 'moved.btf');
    writeFileSync(file, Btf.fromTypes(types).marshal());
    const r = gen('--compare', file);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /bpf_attr\.map_create\.key_size: offset 4 committed, 8 in the kernel/);
    assert.match(r.out, /1 disagreements/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
