// The committed uapi layouts (scripts/abi/uapi.btf -> src/sys/uapi.ts) against the running kernel's
// own BTF: every field and enum value both know sits at the same place. In the kernel matrix this
// checks the layouts against Debian's 6.1 and 6.12 as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/index.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';

test('the generated uapi layouts agree with this kernel\'s BTF', () => {
  assert.ok(existsSync(VMLINUX), `${VMLINUX} is missing: this kernel was built without CONFIG_DEBUG_INFO_BTF, which bpfkit's CO-RE needs too`);
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/gen-abi.mjs'), '--compare', VMLINUX], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /: 0 disagreements/);
});
