import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CollectionSpec, disassembleInstructions, disassembleSpec } from '../../src/index.js';
import { objBytes } from '../helpers/index.js';

test('instructions disassemble in the verifier log notation, ld_imm64 as one line', () => {
  // r1 = 7; r2 = 0x100000002 ll; r0 = r1; exit
  const bytes = new Uint8Array([
    0xb7, 0x01, 0, 0, 7, 0, 0, 0,
    0x18, 0x02, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0xbf, 0x10, 0, 0, 0, 0, 0, 0,
    0x95, 0, 0, 0, 0, 0, 0, 0,
  ]);
  assert.equal(disassembleInstructions(bytes), [
    '    0: r1 = 7',
    '    1: r2 = 0x100000002 ll',
    '    3: r0 = r1',
    '    4: exit',
  ].join('\n'));
});

test('a spec disassembles with function labels, source lines, map references and CO-RE records', () => {
  const spec = CollectionSpec.fromBuffer(objBytes('core_task'));
  const text = disassembleSpec(spec.programs.get('core_current')!);
  assert.match(text, /^core_current:$/m);
  assert.match(text, /; struct task_struct \*task = .*\[core_task\.bpf\.c:\d+\]/);
  assert.match(text, /r1 = 0x0 ll {4}; map out/);
  assert.match(text, /; CO-RE field_byte_offset struct task_struct access 0:\d+/);
  const sub = disassembleSpec(CollectionSpec.fromBuffer(objBytes('subprog')).programs.get('xdp_subprog')!);
  assert.ok((sub.match(/^\w+:$/gm) ?? []).length >= 3, 'the entry and the functions linked after it are labelled');
  assert.match(sub, /call pc[+-]\d+/);
});
