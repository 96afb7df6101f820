/**
 * CollectionSpec: everything an object file describes (maps, programs, global variables), read
 * without touching the kernel. Edit it freely, then hand it to `Collection.load`.
 */
import { readFile } from 'node:fs/promises';
import type { Btf } from '../btf/btf.js';
import { codecFor } from '../btf/codec.js';
import type { BtfExt } from '../btf/types.js';
import { BpfkitError, InvalidArgumentError, SpecError } from '../errors.js';
import { copyMapSpec, type MapSpec } from './map-spec.js';
import { copyProgramSpec, type ProgramSpec } from './program-spec.js';
import { parseObject, type ParsedObject, type VariableLocation } from './elf-collection.js';

export type { MapSpec } from './map-spec.js';
export type { ProgramSpec } from './program-spec.js';

/**
 * A global variable of the object (`.data`, `.rodata`, `.bss` and their `.*` variants). Setting it
 * before load writes the map's initial value: this is how `const volatile` configuration in
 * `.rodata` is given, and the verifier then sees the value as a constant.
 */
export class VariableSpec {
  readonly name: string;
  /** The map (data section) holding the variable. */
  readonly mapName: string;
  readonly offset: number;
  readonly size: number;
  readonly typeId: number;
  readonly #map: MapSpec;

  constructor(loc: VariableLocation, map: MapSpec) {
    this.name = loc.name;
    this.mapName = loc.map;
    this.offset = loc.offset;
    this.size = loc.size;
    this.typeId = loc.typeId;
    this.#map = map;
  }

  /** True for `.rodata` variables: constant once loaded. */
  get constant(): boolean {
    return this.#map.section.startsWith('.rodata');
  }

  /** C spelling of the type, e.g. `__u32` or `char[16]`. */
  get typeName(): string {
    return this.#btf().typeName(this.typeId);
  }

  /** The initial value, decoded by the variable's BTF type. */
  get(): unknown {
    return codecFor(this.#btf(), this.typeId, { path: this.name }).decode(this.#data(), this.offset);
  }

  /** Sets the initial value; the value is checked against the variable's BTF type. */
  set(value: unknown): void {
    const codec = codecFor(this.#btf(), this.typeId, { path: this.name });
    if (codec.size !== this.size) throw new SpecError(`variable ${this.name}: BTF says ${codec.size} bytes, the section ${this.size}`);
    const data = this.#data();
    const tmp = codec.encode(value as never);
    data.set(tmp, this.offset);
  }

  #btf(): Btf {
    const btf = this.#map.btf;
    if (!btf) throw new SpecError(`variable ${this.name} has no BTF`);
    return btf;
  }

  #data(): Uint8Array {
    const data = this.#map.data;
    if (!data) throw new SpecError(`variable ${this.name}: map ${this.mapName} has no data`);
    return data;
  }
}

/**
 * What a BPF object (as `clang -target bpf` writes it) declares: its maps, programs and global
 * variables, with their BTF, read without the kernel. Change it before loading (map sizes,
 * program types, `.rodata` constants through `variables`), then hand it to
 * {@link Collection.load}. Pure: needs no kernel and no privileges.
 *
 * @throws {@link ElfError} (`ERR_BPFKIT_ELF`) when the bytes are not a BPF ELF object.
 * @throws {@link BtfError} (`ERR_BPFKIT_BTF`) when the object's BTF is malformed.
 * @throws {@link SpecError} (`ERR_BPFKIT_SPEC`) when a map, program or relocation in it makes no
 *   sense.
 * @throws {@link BpfkitError} (`ERR_BPFKIT_OBJECT_FILE`) from fromFile() when the file cannot be read.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) from fromBuffer() when the input is
 *   not bytes.
 * @example
 * ```ts
 * import { CollectionSpec } from 'bpfkit';
 *
 * const spec = await CollectionSpec.fromFile('firewall.bpf.o');
 * spec.maps.get('blocked')!.maxEntries = 65536;       // size the map before it is created
 * spec.variables.get('port')!.set(8080);              // a const volatile in .rodata
 * for (const [name, prog] of spec.programs) console.log(name, prog.type, prog.sectionName);
 * ```
 */
export class CollectionSpec {
  readonly maps: Map<string, MapSpec>;
  readonly programs: Map<string, ProgramSpec>;
  readonly variables: Map<string, VariableSpec>;
  readonly btf: Btf | undefined;
  readonly btfExt: BtfExt | undefined;
  readonly license: string;
  readonly kernelVersion: number;

  private constructor(parts: ParsedObject) {
    this.maps = parts.maps;
    this.programs = parts.programs;
    this.btf = parts.btf;
    this.btfExt = parts.btfExt;
    this.license = parts.license;
    this.kernelVersion = parts.kernelVersion;
    this.variables = new Map();
    for (const [name, loc] of parts.variables) {
      const map = this.maps.get(loc.map);
      if (map) this.variables.set(name, new VariableSpec(loc, map));
    }
  }

  /** Reads a BPF object (as clang -target bpf writes it) from bytes. Pure: no kernel, no files. */
  static fromBuffer(bytes: Uint8Array): CollectionSpec {
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('CollectionSpec.fromBuffer takes a Uint8Array (or Buffer)');
    return new CollectionSpec(parseObject(bytes));
  }

  /** Reads a BPF object file. */
  static async fromFile(path: string): Promise<CollectionSpec> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new BpfkitError('ERR_BPFKIT_OBJECT_FILE', `cannot read BPF object ${path}: ${err.code ?? ''} ${err.message}`, { cause: e });
    }
    try {
      return CollectionSpec.fromBuffer(bytes);
    } catch (e) {
      if (e instanceof BpfkitError) {
        e.message = `${path}: ${e.message}`;
      }
      throw e;
    }
  }

  /** A deep copy, so one parsed object can be loaded several times with different settings. */
  copy(): CollectionSpec {
    const maps = new Map([...this.maps].map(([k, v]) => [k, copyMapSpec(v)]));
    const programs = new Map([...this.programs].map(([k, v]) => [k, copyProgramSpec(v)]));
    const variables = new Map<string, VariableLocation>();
    for (const [k, v] of this.variables) {
      variables.set(k, { name: v.name, map: v.mapName, offset: v.offset, size: v.size, typeId: v.typeId });
    }
    return new CollectionSpec({
      maps, programs, btf: this.btf, btfExt: this.btfExt, license: this.license, kernelVersion: this.kernelVersion, variables,
    });
  }
}
