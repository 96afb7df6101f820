/**
 * The child fib-net.ts starts under `ip netns exec`: imports a compiled test module, runs one of
 * its exported scenarios with the ifindexes read from stdin, and prints the result (show()).
 * Usage: node netns-child.js MODULE.js EXPORT < ifindexes.json
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { show } from './emulator-diff.js';

const [module, fn] = process.argv.slice(2);
if (!module || !fn) throw new Error('usage: netns-child.js MODULE.js EXPORT < ifindexes.json');
const mod = (await import(pathToFileURL(module).href)) as Record<string, (ifindex: Record<string, number>) => unknown>;
const scenario = mod[fn];
if (typeof scenario !== 'function') throw new Error(`${module} exports no function ${fn}`);
const ifindex = JSON.parse(readFileSync(0, 'utf8')) as Record<string, number>;
process.stdout.write(show(await scenario(ifindex)));
