/**
 * `bpfkit inspect <object>`: what an object holds, read without the kernel.
 */
import { CollectionSpec } from '../collection-spec.js';
import { parseCommandArgs } from './args.js';

const usage = `usage: bpfkit inspect <object.bpf.o> [--json]

Shows the maps, programs and global variables of a BPF object, read from the file alone (no
kernel, no root, no native addon needed).
  --json        one JSON document instead of the table
  -h, --help    show this help
`;

export async function runInspect(argv: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs('inspect', usage, argv, { json: { type: 'boolean' } }, true);
  if (values === 'help') return 0;
  const file = positionals[0];
  if (!file || positionals.length > 1) {
    process.stderr.write(`bpfkit inspect: ${file ? `one object at most, got ${positionals.length}` : 'needs an object file'}\n${usage}`);
    return 2;
  }
  const spec = await CollectionSpec.fromFile(file);
  const maps = [...spec.maps.values()].map((m) => ({
    name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries,
    flags: m.flags, pinning: m.pinning,
    key: m.btf && m.keyTypeId ? m.btf.typeName(m.keyTypeId) : undefined,
    value: m.btf && m.valueTypeId ? m.btf.typeName(m.valueTypeId) : undefined,
  }));
  const programs = [...spec.programs.values()].map((p) => ({
    name: p.name, section: p.sectionName, type: p.type, attachType: p.attachType, instructions: p.instructions.length / 8,
    autoload: p.autoload,
  }));
  const variables = [...spec.variables.values()].map((v) => ({ name: v.name, section: v.mapName, type: v.typeName, size: v.size }));
  if (values['json']) {
    process.stdout.write(`${JSON.stringify({ license: spec.license, maps, programs, variables }, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [`${file}: license ${JSON.stringify(spec.license)}`, 'maps:'];
  for (const m of maps) {
    const types = m.key || m.value ? `  ${m.key ?? '?'} -> ${m.value ?? '?'}` : '';
    out.push(`  ${m.name.padEnd(20)} ${m.type.padEnd(16)} key ${m.keySize} B, value ${m.valueSize} B, max ${m.maxEntries}${types}`);
  }
  out.push('programs:');
  for (const p of programs) {
    out.push(`  ${p.name.padEnd(20)} ${p.type.padEnd(16)} section ${p.section}, ${p.instructions} instructions${p.autoload ? '' : ' (not loaded by default)'}`);
  }
  if (variables.length) out.push('variables:');
  for (const v of variables) out.push(`  ${v.name.padEnd(20)} ${v.section.padEnd(16)} ${v.type} (${v.size} B)`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
