/**
 * Builds BTF by hand for unit tests: each call appends a type and returns its id, so a layout reads
 * like the C it stands for.
 */
import { Btf } from '../../src/btf/btf.js';
import type { BtfMember, BtfType } from '../../src/btf/types.js';

export class BtfBuilder {
  readonly types: BtfType[] = [{ kind: 'void', id: 0, name: '' }];
  add(make: (id: number) => BtfType): number {
    const id = this.types.length;
    this.types.push(make(id));
    return id;
  }
  int(name: string, size: number, signed: boolean, extra: { char?: boolean; bool?: boolean; bits?: number; bitOffset?: number } = {}): number {
    return this.add((id) => ({
      kind: 'int', id, name, size, signed, char: extra.char ?? false, bool: extra.bool ?? false,
      bits: extra.bits ?? size * 8, bitOffset: extra.bitOffset ?? 0,
    }));
  }
  float(name: string, size: number): number {
    return this.add((id) => ({ kind: 'float', id, name, size }));
  }
  ptr(type: number): number {
    return this.add((id) => ({ kind: 'ptr', id, name: '', type }));
  }
  array(type: number, nelems: number): number {
    return this.add((id) => ({ kind: 'array', id, name: '', type, indexType: 0, nelems }));
  }
  typedef(name: string, type: number): number {
    return this.add((id) => ({ kind: 'typedef', id, name, type }));
  }
  qual(kind: 'const' | 'volatile', type: number): number {
    return this.add((id) => ({ kind, id, name: '', type }));
  }
  /** Members as [name, type, bitOffset, bitfieldSize?]; kind_flag is set when a member is a bitfield unless given. */
  struct(kind: 'struct' | 'union', name: string, size: number, members: Array<[string, number, number, number?]>, kindFlag?: boolean): number {
    const ms: BtfMember[] = members.map(([n, type, bitOffset, bitfieldSize]) => ({ name: n, type, bitOffset, bitfieldSize: bitfieldSize ?? 0 }));
    const flag = kindFlag ?? ms.some((m) => m.bitfieldSize !== 0);
    return this.add((id) => ({ kind, id, name, size, members: ms, kindFlag: flag }));
  }
  enum(kind: 'enum' | 'enum64', name: string, size: number, signed: boolean, values: Array<[string, bigint]>): number {
    return this.add((id) => ({ kind, id, name, size, signed, values: values.map(([n, value]) => ({ name: n, value })) }));
  }
  fwd(name: string): number {
    return this.add((id) => ({ kind: 'fwd', id, name, fwdKind: 'struct' }));
  }
  func(name: string): number {
    const proto = this.add((id) => ({ kind: 'func_proto', id, name: '', returnType: 0, params: [] }));
    return this.add((id) => ({ kind: 'func', id, name, type: proto, linkage: 'global' }));
  }
  variable(name: string, type: number): number {
    return this.add((id) => ({ kind: 'var', id, name, type, linkage: 'global' }));
  }
  datasec(name: string, size: number, vars: Array<[number, number, number]>): number {
    return this.add((id) => ({ kind: 'datasec', id, name, size, vars: vars.map(([type, offset, sz]) => ({ type, offset, size: sz })) }));
  }
  build(): Btf {
    return Btf.fromTypes(this.types);
  }
}

