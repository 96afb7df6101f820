#!/usr/bin/env node
// npm's install step for bpfkit. The package ships the native addon prebuilt (prebuilds/, see
// scripts/prebuild.sh); this only checks that one loads here. When none does (another
// architecture or libc, or a checkout without prebuilds) it builds from source with the node-gyp
// that npm bundles, as a fallback. A failed build does not fail the install: everything that needs
// no syscall works without the addon, and the first syscall then says why it cannot run.
//
//   npm install bpfkit --build-from-source   build even when a prebuild loads
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function loads() {
  try {
    require(require('node-gyp-build').resolve(root));
    return true;
  } catch {
    return false;
  }
}

if (process.env.npm_config_build_from_source !== 'true' && loads()) process.exit(0);

// npm puts the path of its own node-gyp in npm_config_node_gyp for install scripts.
const gyp = process.env.npm_config_node_gyp;
const cmd = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
console.error('bpfkit: no prebuilt native addon loads on this machine: building it from source with node-gyp');
const r = spawnSync(cmd[0], cmd[1], { cwd: root, stdio: 'inherit' });
if (r.status === 0 && loads()) process.exit(0);
console.error(
  'bpfkit: warning: the native addon could not be built (node-gyp needs python3, make, a C compiler and ' +
    "Node's headers; offline, set npm_config_nodedir to them). bpfkit's parsing, gen, inspect, btf dump and " +
    'bpfkit/testing work without it; loading programs into the kernel needs it: install those and run ' +
    '`npm rebuild bpfkit --build-from-source`.',
);
