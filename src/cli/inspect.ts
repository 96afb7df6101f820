/**
 * `bpfkit inspect <object>`: what an object holds, read without the kernel.
 */
import { BtfError, CollectionSpec, ElfError, SpecError } from '../index.js';
import { parseCommandArgs } from './args.js';

const usage = `usage: bpfkit inspect <object.bpf.o> [--json]

Shows the maps, programs and global variables of a BPF object, read from the file alone (no
kernel, no root, no native addon needed).
  --json        one JSON document instead of the table
  -h, --help    show this help
`;
/** Errors that mean the file itself is bad, and what to do about it. */
const CORRUPT_HINT = 'the object is corrupt or was not built by clang -target bpf: rebuild it';

/** One line: the file, what is wrong, and the hint (main prints it after "bpfkit: "). */
function badObject(file: string, e: unknown): never {
  if (!(e instanceof BtfError || e instanceof ElfError || e instanceof SpecError)) throw e;
  const message = e.message.startsWith(file) ? e.message : `${file}: ${e.message}`;
  if (e instanceof SpecError) throw new SpecError(message);
  throw new (e.constructor as typeof BtfError)(`${message}; ${CORRUPT_HINT}`);
}

export async function runInspect(argv: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs('inspect', usage, argv, { json: { type: 'boolean' } }, true);
  if (values === 'help') return 0;
  const file = positionals[0];
  if (!file || positionals.length > 1) {
    process.stderr.write(`bpfkit inspect: ${file ? `one object at most, got ${positionals.length}` : 'needs an object file'}\n${usage}`);
    return 2;
  }
  let spec: CollectionSpec;
  try {
    spec = await CollectionSpec.fromFile(file);
  } catch (e) {
    badObject(file, e);
  }
  process.stdout.write(describeObject(spec, file, values.json === true));
  return 0;
}

/** What `bpfkit inspect` prints for an object: text, or JSON with `json`. */
export function describeObject(spec: CollectionSpec, file: string, json = false): string {
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
  if (json) return `${JSON.stringify({ license: spec.license, maps, programs, variables }, null, 2)}\n`;
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
  return `${out.join('\n')}\n`;
}
