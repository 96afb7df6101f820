/**
 * `generate`: a BPF object in, the text of a TypeScript module out. The module declares a type and
 * a decode/encode pair for every struct, union and enum the object's maps hold (and every type
 * asked for by name), names for its maps, programs and variables, and `load<Ident>()`, which loads
 * the object and hands back the maps as `BpfMap<Key, Value>`, the programs, and the global
 * variables with typed `get`/`set`. Output is a pure function of the object's types and the
 * options, so regenerating from an unchanged object changes nothing.
 *
 * The object itself is read at run time from the file next to the module
 * (`new URL('./<file>.o', import.meta.url)`) rather than embedded: the TypeScript stays small and
 * diffable, it does not change when only code (or clang's version, or the build directory written
 * into DWARF) changes, and the object is a build artifact that ships beside it anyway. `embed: true`
 * puts it into the module as base64 instead, for bundlers that would not copy the file.
 *
 * Given the program compiled for both byte orders (`otherByteOrder`, `bpfkit gen --target both`),
 * the module carries both objects (by file name, or both embedded) and picks the one of the host's
 * byte order when it is loaded: `<ident>Target` says which, and the codecs bind the helpers of that
 * byte order (src/gen/byte-order.ts checks that the two objects hold the same program).
 *
 * What the module does at run time beyond that (range-checked encoding, bitfields, unions, the
 * loading helpers) is not written into it: it calls bpfkit's `genRuntime` (src/gen/runtime.ts),
 * imported from the same specifier as the rest of bpfkit, so every module shares one tested copy.
 */
import { CollectionSpec, type MapSpec, type ProgramSpec, type VariableSpec } from '../spec/collection-spec.js';
import { InvalidArgumentError } from '../errors.js';
import type { Btf } from '../btf/btf.js';
import { checkSameProgram, targetOf } from './byte-order.js';
import { CodecEmitter, RUNTIME_NAMESPACE, runtimeSpecifier } from './codec-emit.js';
import { camelCase, camelKeys, GLOBAL_NAMES, jsString, NameRegistry, pascalCase, propertyKey } from './names.js';

/**
 * Options of {@link generate}: the object, the names to generate under, extra types, and where the
 * generated module imports bpfkit from.
 */
export interface GenerateOptions {
  /** Names the module: `load<Ident>`, `<ident>MapNames`, ... (letters, digits and underscores). */
  readonly ident: string;
  /** The BPF object (as clang -target bpf writes it). */
  readonly object: Uint8Array;
  /** File name of the object, resolved next to the generated module at run time. */
  readonly objectFileName: string;
  /** What the header says the module was generated from (default: objectFileName). */
  readonly source?: string;
  /** Extra types (struct, union, enum or typedef names) to declare with decode/encode functions. */
  readonly types?: readonly string[];
  /**
   * The module specifier to import bpfkit from (default 'bpfkit'): the package's main entry (or a
   * path to it, ending in /index.js), which the module takes its types and `cString` from; it
   * imports `genRuntime` (src/gen/runtime.ts) from the `internal` entry beside it (runtimeSpecifier).
   */
  readonly importFrom?: string;
  /** Embed the object as base64 instead of reading it from `objectFileName` at run time. */
  readonly embed?: boolean;
  /**
   * The same C compiled for the other byte order (bpfeb when `object` is bpfel, or the other way
   * round), which must hold the same program: the same types, maps, programs and variables.
   * With a file name, the module carries both objects and loads the one of the host's byte order,
   * binding its codecs to that order (`bpfkit gen --target both`). Without one, it is only read in
   * place of `object` for the maps, programs and types when `object` is big-endian, which bpfkit
   * does not parse (`bpfkit gen --target bpfeb` on a little-endian host); the module loads
   * `object`, with big-endian codecs.
   */
  readonly otherByteOrder?: { readonly object: Uint8Array; readonly objectFileName?: string };
}

/** An object the module loads, by file name or embedded. */
interface ObjectFile {
  readonly object: Uint8Array;
  readonly fileName: string;
}

/**
 * What the module loads: one object, whose codecs use its byte order, or one of each byte order,
 * chosen by the host's when the module is loaded.
 */
type Layout =
  | { readonly kind: 'one'; readonly littleEndian: boolean }
  | { readonly kind: 'both'; readonly bpfel: ObjectFile; readonly bpfeb: ObjectFile };

const PER_CPU = new Set(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage']);
const KEYLESS = new Set(['queue', 'stack', 'bloom_filter']);
const NO_VALUES = new Set(['ringbuf', 'user_ringbuf']);

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks a name `bpfkit gen` builds identifiers from (letters, digits and underscores, not
 * starting
 * with a digit), before any work is done.
 * @throws InvalidArgumentError (`ERR_BPFKIT_INVALID_ARG`, exported from `bpfkit`) for any other name.
 */
export function checkIdent(ident: string): void {
  if (!IDENT.test(ident)) {
    throw new InvalidArgumentError(`ident ${JSON.stringify(ident)} must be letters, digits and underscores, not starting with a digit`);
  }
}

function docLine(text: string, indent = ''): string {
  return `${indent}/** ${text.replace(/\*\//g, '*\\/')} */`;
}

interface MapEntry { readonly spec: MapSpec; readonly key: string; readonly keyType: string; readonly valueType: string }
interface VarEntry { readonly spec: VariableSpec; readonly key: string; readonly type: string; readonly constant: boolean }

/** Generates the TypeScript bindings module for a BPF object. */
export function generate(options: GenerateOptions): string {
  checkIdent(options.ident);
  if (!(options.object instanceof Uint8Array)) throw new InvalidArgumentError('generate: object must be a Uint8Array');
  const other = options.otherByteOrder;
  if (other === undefined) {
    const spec = CollectionSpec.fromBuffer(options.object);
    return new ModuleWriter(spec, options, { kind: 'one', littleEndian: spec.btf?.littleEndian ?? true }).render();
  }
  if (!(other.object instanceof Uint8Array)) throw new InvalidArgumentError('generate: otherByteOrder.object must be a Uint8Array');
  const target = targetOf(options.object);
  if (targetOf(other.object) === target) {
    throw new InvalidArgumentError(`generate: object and otherByteOrder.object are both ${target} objects: one must be bpfel, the other bpfeb`);
  }
  const [bpfel, bpfeb] = target === 'bpfel' ? [options.object, other.object] : [other.object, options.object];
  checkSameProgram(options.ident, bpfel, bpfeb);
  // bpfkit parses little-endian objects only; the two hold the same program, so either will do.
  const spec = CollectionSpec.fromBuffer(bpfel);
  if (other.objectFileName === undefined) return new ModuleWriter(spec, options, { kind: 'one', littleEndian: target === 'bpfel' }).render();
  if (other.objectFileName === options.objectFileName) {
    throw new InvalidArgumentError(`generate: the bpfel and bpfeb objects need different file names, not both ${options.objectFileName}`);
  }
  const own: ObjectFile = { object: options.object, fileName: options.objectFileName };
  const theirs: ObjectFile = { object: other.object, fileName: other.objectFileName };
  const [el, eb] = target === 'bpfel' ? [own, theirs] : [theirs, own];
  return new ModuleWriter(spec, options, { kind: 'both', bpfel: el, bpfeb: eb }).render();
}

class ModuleWriter {
  private readonly spec: CollectionSpec;
  private readonly options: GenerateOptions;
  private readonly layout: Layout;
  /** The object file(s), for comments. */
  private readonly label: string;
  private readonly ident: string;
  private readonly registry: NameRegistry;
  private readonly emitter: CodecEmitter | undefined;
  private readonly api: {
    maps: string; programs: string; variables: string; objects: string; loadOptions: string;
    rodata: string; data: string; variable: string; constant: string; load: string; specFn: string;
    mapNames: string; programNames: string; variableNames: string; target: string;
  };

  constructor(spec: CollectionSpec, options: GenerateOptions, layout: Layout) {
    this.spec = spec;
    this.options = options;
    this.layout = layout;
    this.label = layout.kind === 'both' ? `${layout.bpfel.fileName} or ${layout.bpfeb.fileName}` : options.objectFileName;
    const I = pascalCase(options.ident);
    this.ident = camelCase(options.ident);
    this.api = {
      maps: `${I}Maps`, programs: `${I}Programs`, variables: `${I}Variables`, objects: `${I}Objects`,
      loadOptions: `${I}LoadOptions`, rodata: `${I}Rodata`, data: `${I}Data`, variable: `${I}Variable`,
      constant: `${I}Constant`, load: `load${I}`, specFn: `spec${I}`, mapNames: `${this.ident}MapNames`,
      programNames: `${this.ident}ProgramNames`, variableNames: `${this.ident}VariableNames`,
      target: `${this.ident}Target`,
    };
    const { target, ...api } = this.api;
    const reserved = [
      ...GLOBAL_NAMES, ...Object.values(api),
      'BpfMap', 'Collection', 'CollectionOptions', 'CollectionSpec', 'InvalidArgumentError', 'Program', 'SpecError',
      'cString', 'readFileSync', 'objectBytes', 'cachedSpec', 'bindings', 'mapOf', 'programOf', 'variableOf', 'setInitial',
      RUNTIME_NAMESPACE,
      // Only modules for both byte orders have these, so that the others' names stay as they were.
      ...(layout.kind === 'both' ? [target, 'endianness', 'bpfelBase64', 'bpfebBase64'] : []),
    ];
    this.registry = new NameRegistry(reserved);
    const btf = spec.btf;
    this.emitter = btf
      ? new CodecEmitter(btf, {
        littleEndian: layout.kind === 'one' ? layout.littleEndian : true, registry: this.registry,
        ...(layout.kind === 'both' ? { hostByteOrder: `${target} === 'bpfel'` } : {}),
      })
      : undefined;
  }

  private get btf(): Btf | undefined {
    return this.spec.btf;
  }

  /** The TS type of BTF type `id`, or `fallback` when it cannot be decoded from BTF. */
  private typeOrFallback(id: number, fallback: string, indent = 0): string {
    if (!this.emitter || id === 0) return fallback;
    try {
      if (this.emitter.isDatasec(id)) return this.emitter.datasecType(id, indent);
      this.emitter.root(id);
      return this.emitter.tsType(id, indent);
    } catch {
      return fallback;
    }
  }

  private sizeType(size: number): string {
    if (size === 1 || size === 2 || size === 4) return 'number';
    if (size === 8) return 'bigint';
    return 'Uint8Array';
  }

  private mapEntries(): MapEntry[] {
    const specs = [...this.spec.maps.values()].sort((a, b) => cmp(a.name, b.name));
    const keys = camelKeys(specs.map((m) => m.name));
    return specs.map((m) => {
      let keyType: string;
      let valueType: string;
      if (NO_VALUES.has(m.type)) {
        keyType = 'never';
        valueType = 'never';
      } else {
        keyType = KEYLESS.has(m.type) ? 'never' : this.typeOrFallback(m.btf ? m.keyTypeId : 0, this.sizeType(m.keySize), 1);
        valueType = this.typeOrFallback(m.btf ? m.valueTypeId : 0, this.sizeType(m.valueSize), 1);
        if (PER_CPU.has(m.type)) valueType = arrayOf(valueType);
      }
      return { spec: m, key: keys.get(m.name)!, keyType, valueType };
    });
  }

  private varEntries(): VarEntry[] {
    const specs = [...this.spec.variables.values()].sort((a, b) => cmp(a.name, b.name));
    const keys = camelKeys(specs.map((v) => v.name));
    return specs.map((v) => ({
      spec: v, key: keys.get(v.name)!, type: this.typeOrFallback(v.typeId, 'unknown', 1), constant: v.constant,
    }));
  }

  private declareTypes(): void {
    const btf = this.btf;
    for (const name of this.options.types ?? []) {
      if (!btf || !this.emitter) throw new InvalidArgumentError(`--type ${name}: the object has no BTF`);
      const found = ['struct', 'union', 'enum', 'enum64', 'typedef'].flatMap((k) => btf.byName(name, k as 'struct'));
      const t = found[0];
      if (t === undefined) {
        // clang emits BTF only for types something in the object refers to. A global variable
        // does (it costs 8 bytes of .bss); a type cast or sizeof inside a function does not.
        throw new InvalidArgumentError(
          `--type ${name}: no struct, union, enum or typedef named "${name}" in the object's BTF: clang keeps only types ` +
            `the object refers to; keep it with a global in the C, e.g. \`struct ${name} *unused_${name} __attribute__((unused));\` ` +
            `(union/enum ${name} or ${name} alike), as bpf2go users do`,
        );
      }
      const declared = this.emitter.root(t.id, t.kind === 'typedef' ? name : undefined);
      if (declared === undefined) {
        const alias = this.registry.take(pascalCase(name));
        this.extraAliases.push(`${docLine(this.emitter.display(t.id))}\nexport type ${alias} = ${this.emitter.tsType(t.id)};`);
      }
    }
  }

  private readonly extraAliases: string[] = [];

  render(): string {
    const { api, options } = this;
    const ident = options.ident;
    const maps = this.mapEntries();
    const vars = this.varEntries();
    this.declareTypes();
    const programs = [...this.spec.programs.values()].sort((a, b) => cmp(a.name, b.name));
    const progKeys = camelKeys(programs.map((p) => p.name));
    const rodata = vars.filter((v) => v.constant);
    const data = vars.filter((v) => !v.constant);
    const importFrom = options.importFrom ?? 'bpfkit';

    const decls = this.emitter?.declarations() ?? '';
    const helpers = this.emitter?.helpers() ?? '';
    const layout = this.layout;
    const both = layout.kind === 'both' ? layout : undefined;
    const label = this.label;

    const out: string[] = [];
    out.push(`// Code generated by bpfkit gen from ${options.source ?? (both ? `${both.bpfel.fileName} and ${both.bpfeb.fileName}` : options.objectFileName)}; DO NOT EDIT.`);
    out.push('');
    out.push(`/**`);
    if (both) {
      out.push(` * Typed bindings for ${both.bpfel.fileName} and ${both.bpfeb.fileName}, one program compiled for each`);
      out.push(` * byte order: \`${api.load}()\` loads the one of this host's (\`${api.target}\`) and returns its maps,`);
      out.push(` * programs and global variables by lowerCamelCase name; \`${api.specFn}()\` returns its CollectionSpec.`);
    } else {
      out.push(` * Typed bindings for ${options.objectFileName}: \`${api.load}()\` loads it and returns its maps,`);
      out.push(` * programs and global variables by lowerCamelCase name; \`${api.specFn}()\` returns the CollectionSpec.`);
    }
    out.push(' */');
    if (!options.embed) out.push(`import { readFileSync } from 'node:fs';`);
    if (both) out.push(`import { endianness } from 'node:os';`);
    out.push(`import { ${RUNTIME_NAMESPACE} } from ${jsString(runtimeSpecifier(importFrom))};`);
    const typeImports = [...(maps.length > 0 ? ['BpfMap'] : []), 'CollectionSpec', ...(programs.length > 0 ? ['Program'] : [])];
    out.push(`import type { ${typeImports.join(', ')} } from ${jsString(importFrom)};`);
    out.push('');
    out.push(`export { cString } from ${jsString(importFrom)};`);
    out.push('');
    if (both) {
      out.push(`/**`);
      out.push(` * The BPF target of this host's byte order (os.endianness()): \`${api.load}()\` loads the object`);
      out.push(' * compiled for it, and every decode and encode function in this module uses its byte order.');
      out.push(' */');
      out.push(`export const ${api.target}: 'bpfel' | 'bpfeb' = endianness() === 'BE' ? 'bpfeb' : 'bpfel';`);
      out.push('');
    }
    if (helpers) out.push(helpers, '');

    if (decls || this.extraAliases.length) {
      out.push('// ---- Types ' + '-'.repeat(88));
      out.push('');
      if (decls) out.push(decls, '');
      for (const a of this.extraAliases) out.push(a, '');
    }

    out.push('// ---- Names ' + '-'.repeat(88));
    out.push('');
    out.push(`/** The maps of ${label}: property name -> name in the object. */`);
    out.push(`export const ${api.mapNames} = {`);
    for (const m of maps) out.push(`  ${propertyKey(m.key)}: ${jsString(m.spec.name)},`);
    out.push('} as const;');
    out.push('');
    out.push(`/** The programs of ${label}: property name -> C function name. */`);
    out.push(`export const ${api.programNames} = {`);
    for (const p of programs) out.push(`  ${propertyKey(progKeys.get(p.name)!)}: ${jsString(p.name)},`);
    out.push('} as const;');
    out.push('');
    out.push(`/** The global variables of ${label}: property name -> C name. */`);
    out.push(`export const ${api.variableNames} = {`);
    for (const v of vars) out.push(`  ${propertyKey(v.key)}: ${jsString(v.spec.name)},`);
    out.push('} as const;');
    out.push('');

    out.push('// ---- Objects ' + '-'.repeat(86));
    out.push('');
    out.push(`export interface ${api.maps} {`);
    for (const m of maps) {
      out.push(docLine(mapDoc(m.spec, this.btf), '  '));
      out.push(`  readonly ${propertyKey(m.key)}: BpfMap<${m.keyType}, ${m.valueType}>;`);
    }
    out.push('}');
    out.push('');
    out.push(`export interface ${api.programs} {`);
    for (const p of programs) {
      out.push(docLine(programDoc(p), '  '));
      out.push(`  readonly ${propertyKey(progKeys.get(p.name)!)}: Program${p.autoload ? '' : ' | undefined'};`);
    }
    out.push('}');
    out.push('');
    out.push(`/** A global variable of a writable section (.data, .bss), read and written through its map. */`);
    out.push(`export type ${api.variable}<T> = ${RUNTIME_NAMESPACE}.GeneratedVariable<T>;`);
    out.push('');
    out.push(`/** A .rodata variable: fixed once loaded (give it through \`rodata\` when loading). */`);
    out.push(`export type ${api.constant}<T> = ${RUNTIME_NAMESPACE}.GeneratedConstant<T>;`);
    out.push('');
    out.push(`export interface ${api.variables} {`);
    for (const v of vars) {
      out.push(docLine(`${v.spec.name}: ${v.spec.typeName} in ${v.spec.mapName}, offset ${v.spec.offset}`, '  '));
      out.push(`  readonly ${propertyKey(v.key)}: ${v.constant ? api.constant : api.variable}<${v.type}>;`);
    }
    out.push('}');
    out.push('');
    out.push(`/** Values for .rodata variables, written into the object before it is loaded. */`);
    out.push(`export interface ${api.rodata} {`);
    for (const v of rodata) {
      out.push(docLine(`${v.spec.name}: ${v.spec.typeName}`, '  '));
      out.push(`  ${propertyKey(v.key)}: ${v.type};`);
    }
    out.push('}');
    out.push('');
    out.push(`/** Initial values for .data and .bss variables. */`);
    out.push(`export interface ${api.data} {`);
    for (const v of data) {
      out.push(docLine(`${v.spec.name}: ${v.spec.typeName} in ${v.spec.mapName}`, '  '));
      out.push(`  ${propertyKey(v.key)}: ${v.type};`);
    }
    out.push('}');
    out.push('');
    const instead = both
      ? `${options.embed ? 'the embedded copy' : `./${both.bpfel.fileName} or ./${both.bpfeb.fileName}`}, of ${api.target}'s byte order, which the codecs use`
      : options.embed ? 'the embedded copy' : `./${options.objectFileName}`;
    out.push('/**');
    out.push(` * The options of \`${api.load}()\`: CollectionOptions, \`rodata\` (constants to give the program before load),`);
    out.push(` * \`data\` (initial values of writable globals) and \`object\` (the object's bytes, to use instead of ${instead}).`);
    out.push(' */');
    out.push(`export type ${api.loadOptions} = ${RUNTIME_NAMESPACE}.GeneratedLoadOptions<${api.rodata}, ${api.data}>;`);
    out.push('');
    out.push(`/** What \`${api.load}()\` returns: the typed maps, programs and variables, the collection, close(). */`);
    out.push(`export type ${api.objects} = ${RUNTIME_NAMESPACE}.GeneratedObjects<${api.maps}, ${api.programs}, ${api.variables}>;`);
    out.push('');

    // ---- loading
    out.push('// ---- Loading ' + '-'.repeat(86));
    out.push('');
    const embedded = (name: string, file: ObjectFile): void => {
      const b64 = Buffer.from(file.object).toString('base64');
      out.push(`/** ${file.fileName}, ${file.object.length} bytes. */`);
      out.push(`const ${name} = [`);
      for (let i = 0; i < b64.length; i += 96) out.push(`  '${b64.slice(i, i + 96)}',`);
      out.push("].join('');");
      out.push('');
    };
    if (both && options.embed) {
      embedded('bpfelBase64', both.bpfel);
      embedded('bpfebBase64', both.bpfeb);
      out.push(`/** The object of ${api.target}. */`);
      out.push('function objectBytes(): Uint8Array {');
      out.push(`  return Buffer.from(${api.target} === 'bpfel' ? bpfelBase64 : bpfebBase64, 'base64');`);
      out.push('}');
    } else if (both) {
      out.push(`/** The object of ${api.target}, next to this module. */`);
      out.push('function objectBytes(): Uint8Array {');
      out.push(`  return readFileSync(${api.target} === 'bpfel'`);
      out.push(`    ? new URL(${jsString(`./${both.bpfel.fileName}`)}, import.meta.url)`);
      out.push(`    : new URL(${jsString(`./${both.bpfeb.fileName}`)}, import.meta.url));`);
      out.push('}');
    } else if (options.embed) {
      embedded('objectBase64', { object: options.object, fileName: options.objectFileName });
      out.push('function objectBytes(): Uint8Array {');
      out.push("  return Buffer.from(objectBase64, 'base64');");
      out.push('}');
    } else {
      out.push('function objectBytes(): Uint8Array {');
      out.push(`  return readFileSync(new URL(${jsString(`./${options.objectFileName}`)}, import.meta.url));`);
      out.push('}');
    }
    out.push('');
    const optional = programs.filter((p) => !p.autoload).map((p) => jsString(p.name));
    out.push(`/** The load wiring of ${label}, with "${ident}" in its messages: bpfkit's src/gen/runtime.ts. */`);
    out.push(`const bindings = ${RUNTIME_NAMESPACE}.bindings<${api.rodata}, ${api.data}, ${api.maps}, ${api.programs}, ${api.variables}>({`);
    out.push(`  ident: ${jsString(ident)}, objectBytes, rodata: ${rodata.length > 0}, data: ${data.length > 0},`);
    out.push(`  maps: ${api.mapNames}, programs: ${api.programNames}, variables: ${api.variableNames},`);
    if (optional.length > 0) out.push(`  optionalPrograms: [${optional.join(', ')}],`);
    out.push('});');
    out.push('');
    out.push(`/** The CollectionSpec of ${both ? `this host's object, ${label}` : label} (a fresh copy each call), for settings the typed loader does not cover. */`);
    out.push(`export function ${api.specFn}(object?: Uint8Array): CollectionSpec {`);
    out.push('  return bindings.spec(object);');
    out.push('}');
    out.push('');
    out.push(`/** Loads ${both ? `this host's object, ${label},` : label} into the kernel: creates its maps, loads its programs. */`);
    out.push(`export async function ${api.load}(options: ${api.loadOptions} = {}): Promise<${api.objects}> {`);
    out.push('  return bindings.load(options);');
    out.push('}');
    return `${out.join('\n')}\n`;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function arrayOf(t: string): string {
  return /[|&]/.test(t) && !t.startsWith('{') ? `(${t})[]` : `${t}[]`;
}

function mapDoc(m: MapSpec, btf: Btf | undefined): string {
  const parts = [`${m.name}: ${m.type}`];
  const kb = m.btf ?? btf;
  if (kb && m.keyTypeId) parts.push(`key ${kb.typeName(m.keyTypeId)} (${m.keySize} B)`);
  else if (m.keySize) parts.push(`key ${m.keySize} B`);
  if (kb && m.valueTypeId) parts.push(`value ${kb.typeName(m.valueTypeId)} (${m.valueSize} B)`);
  else if (m.valueSize) parts.push(`value ${m.valueSize} B`);
  parts.push(`max ${m.maxEntries} ${m.maxEntries === 1 ? 'entry' : 'entries'}`);
  return parts.join(', ');
}

function programDoc(p: ProgramSpec): string {
  return `${p.name}: ${p.type}, section ${JSON.stringify(p.sectionName)}${p.autoload ? '' : ' (not loaded unless asked for)'}`;
}
