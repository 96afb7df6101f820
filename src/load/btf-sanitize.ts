/**
 * An object's BTF as the kernel will take it. clang describes `__kconfig` and `__ksym` externs as
 * VARs (and FUNCs) with extern linkage inside `.kconfig` / `.ksyms` DATASECs whose sizes and
 * offsets are left at 0: BPF_BTF_LOAD refuses all of that. `sanitizeBtfForKernel` rewrites those
 * records the way the loader lays the externs out (`.kconfig` as the data map holding their values,
 * `.ksyms` as 4-byte placeholders), and replaces kinds an older kernel lacks with look-alikes it
 * has. Type ids never change (new types are only appended), so map key/value ids, func_info and
 * CO-RE results computed on the original BTF stay valid for the sanitized one.
 *
 * Also here, because both the sanitizer and the extern resolver need it: the layout of `.kconfig`.
 */
import { Btf, isAttributeTag } from '../btf/btf.js';
import { btfLoadRaw } from '../sys/bpf.js';
import { FD } from '../sys/fd.js';
import type { BtfDatasec, BtfFuncProto, BtfInt, BtfType, BtfVar } from '../btf/types.js';

/** BTF kinds and encodings that appeared over time; a kernel without one refuses BTF that uses it. */
export interface KernelBtfFeatures {
  /** BTF_KIND_FUNC / FUNC_PROTO (4.20 / 5.0). */
  readonly func: boolean;
  /** Global function linkage (5.6). */
  readonly globalFunc: boolean;
  /** BTF_KIND_VAR / DATASEC (5.2). */
  readonly datasec: boolean;
  /** BTF_KIND_FLOAT (5.13). */
  readonly float: boolean;
  /** BTF_KIND_DECL_TAG (5.16). */
  readonly declTag: boolean;
  /** BTF_KIND_TYPE_TAG (5.17). */
  readonly typeTag: boolean;
  /** BTF_KIND_ENUM64 and signed enums (6.0). */
  readonly enum64: boolean;
  /** decl_tag/type_tag with kind_flag set: `__attribute__((...))` tags (6.14). */
  readonly attributeTags: boolean;
}

/** A kernel that takes every kind (6.14 and later). */
export const ALL_BTF_FEATURES: KernelBtfFeatures = Object.freeze({
  func: true, globalFunc: true, datasec: true, float: true, declTag: true, typeTag: true, enum64: true, attributeTags: true,
});

/** Where each `.kconfig` extern lives in the `.kconfig` map's single value. */
export interface KconfigLayout {
  /** The DATASEC's type id in the object's BTF. */
  readonly datasecId: number;
  /** Bytes of the map value (at least 1). */
  readonly size: number;
  readonly vars: ReadonlyMap<string, KconfigSlot>;
}

/** One `.kconfig` extern's place in the map value: its name, C type, offset and size. */
export interface KconfigSlot {
  readonly name: string;
  /** The VAR's type (the extern's C type) in the object's BTF. */
  readonly typeId: number;
  readonly offset: number;
  readonly size: number;
}

/**
 * Lays out the `.kconfig` externs: sorted by alignment (largest first), then size (smallest
 * first), then name, each at the next offset aligned for it. This is the order libbpf uses, so
 * the map (and so the translated program) comes out the same whichever loader made it.
 * Undefined when the BTF has no `.kconfig` DATASEC.
 */
export function kconfigLayout(btf: Btf): KconfigLayout | undefined {
  const sec = btf.byName('.kconfig', 'datasec')[0] as BtfDatasec | undefined;
  if (!sec) return undefined;
  const entries: { name: string; typeId: number; size: number; align: number }[] = [];
  for (const v of sec.vars) {
    const t = btf.type(v.type);
    if (t.kind !== 'var') continue;
    entries.push({ name: t.name, typeId: t.type, size: btf.sizeof(t.type), align: btf.alignof(t.type) });
  }
  entries.sort((a, b) => b.align - a.align || a.size - b.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const vars = new Map<string, KconfigSlot>();
  let off = 0;
  for (const e of entries) {
    off = Math.ceil(off / e.align) * e.align;
    vars.set(e.name, { name: e.name, typeId: e.typeId, offset: off, size: e.size });
    off += e.size;
  }
  return { datasecId: sec.id, size: Math.max(off, 1), vars };
}

/** Name given to placeholder variables and to unnamed parameters of extern functions. */
const PLACEHOLDER = '__bpfkit_ksym';
const PARAM = '__bpfkit_arg';

/**
 * The BTF to hand BPF_BTF_LOAD: extern VARs and FUNCs get allocated/global linkage, `.kconfig`
 * gets the layout of kconfigLayout(), `.ksyms` entries become 4-byte int variables (a FUNC entry
 * is replaced by one shared placeholder VAR), unnamed parameters of extern FUNCs get names, and
 * kinds missing from `features` are replaced. Returns `btf` itself when nothing needed changing.
 */
export function sanitizeBtfForKernel(btf: Btf, features: KernelBtfFeatures = ALL_BTF_FEATURES): Btf {
  const first = btf.base?.length ?? 1;
  const types: BtfType[] = btf.types.slice();
  let changed = false;
  const set = (t: BtfType): void => {
    types[t.id] = t;
    changed = true;
  };
  const append = (make: (id: number) => BtfType): number => {
    const id = types.length;
    types.push(make(id));
    changed = true;
    return id;
  };
  let int32: number | undefined;
  const intType = (): number => {
    if (int32 !== undefined) return int32;
    const found = types.find((t, id) => id >= 1 && t.kind === 'int' && t.size === 4 && t.bitOffset === 0 && t.bits === 32);
    int32 = found ? found.id : append((id) => ({
      kind: 'int', id, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32,
    } satisfies BtfInt));
    return int32;
  };
  let placeholder: number | undefined;
  const placeholderVar = (): number => {
    if (placeholder === undefined) {
      const type = intType();
      placeholder = append((id) => ({ kind: 'var', id, name: PLACEHOLDER, type, linkage: 'global' } satisfies BtfVar));
    }
    return placeholder;
  };

  // Extern linkage: the kernel takes only static and global(-allocated) variables and functions.
  for (let id = first; id < btf.types.length; id++) {
    const t = types[id]!;
    if (t.kind === 'var' && t.linkage === 'extern') set({ ...t, linkage: 'global' });
    if (t.kind === 'func' && t.linkage === 'extern') {
      set({ ...t, linkage: 'global' });
      const proto = types[t.type];
      if (proto?.kind === 'func_proto' && proto.params.some((p) => p.name === '' && p.type !== 0)) {
        set({ ...proto, params: proto.params.map((p, i) => (p.name === '' && p.type !== 0 ? { ...p, name: `${PARAM}${i}` } : p)) } satisfies BtfFuncProto);
      }
    }
  }

  for (let id = first; id < btf.types.length; id++) {
    const t = types[id]!;
    if (t.kind !== 'datasec') continue;
    if (t.name === '.ksyms') {
      const vars = t.vars.map((v, i) => {
        const entry = types[v.type]!;
        let type = v.type;
        if (entry.kind === 'var') set({ ...entry, type: intType() });
        else type = placeholderVar();
        return { type, offset: i * 4, size: 4 };
      });
      set({ ...t, size: Math.max(vars.length * 4, 4), vars } satisfies BtfDatasec);
    } else if (t.name === '.kconfig') {
      const layout = kconfigLayout(btf);
      if (!layout) continue;
      const vars = t.vars.map((v) => {
        const entry = types[v.type]!;
        const slot = entry.kind === 'var' ? layout.vars.get(entry.name) : undefined;
        return slot ? { type: v.type, offset: slot.offset, size: slot.size } : v;
      }).sort((a, b) => a.offset - b.offset);
      set({ ...t, size: layout.size, vars } satisfies BtfDatasec);
    }
  }

  replaceMissingKinds(types, first, features, set);
  return changed ? btf.withTypes(types) : btf;
}

/** Swaps kinds the kernel lacks for ones it has, keeping sizes (so maps keep their layout). */
function replaceMissingKinds(types: BtfType[], first: number, f: KernelBtfFeatures, set: (t: BtfType) => void): void {
  const end = types.length;
  for (let id = first; id < end; id++) {
    const t = types[id]!;
    switch (t.kind) {
      case 'decl_tag':
        if (!f.declTag || (!f.attributeTags && isAttributeTag(t))) {
          set({ kind: 'int', id, name: '', size: 1, signed: false, char: false, bool: false, bitOffset: 0, bits: 8 });
        }
        break;
      case 'type_tag':
        if (!f.typeTag || (!f.attributeTags && isAttributeTag(t))) set({ kind: 'const', id, name: '', type: t.type });
        break;
      case 'float':
        if (!f.float) set({ kind: 'struct', id, name: t.name, size: t.size, members: [], kindFlag: false });
        break;
      case 'enum64':
        if (!f.enum64) set({ kind: 'union', id, name: t.name, size: t.size, members: [], kindFlag: false });
        break;
      case 'enum':
        if (!f.enum64 && t.signed) set({ ...t, signed: false });
        break;
      case 'func':
        if (!f.func) set({ kind: 'typedef', id, name: t.name, type: t.type });
        else if (!f.globalFunc && t.linkage !== 'static') set({ ...t, linkage: 'static' });
        break;
      case 'func_proto':
        if (!f.func) set({ kind: 'enum', id, name: '', size: 4, signed: false, values: [] });
        break;
      case 'var':
        if (!f.datasec) set({ kind: 'int', id, name: t.name, size: 1, signed: false, char: false, bool: false, bitOffset: 0, bits: 8 });
        break;
      case 'datasec':
        if (!f.datasec) set({ kind: 'struct', id, name: t.name.replace(/[^A-Za-z0-9_]/g, '_'), size: t.size, members: [], kindFlag: false });
        break;
      default:
        break;
    }
  }
}

let probed: KernelBtfFeatures | undefined;

/**
 * Which kinds the running kernel's BPF_BTF_LOAD accepts, found by loading one tiny BTF blob per
 * kind (once per process). Needs the privileges BPF_BTF_LOAD needs; a refusal reads as "no".
 */
export function probeKernelBtfFeatures(): KernelBtfFeatures {
  if (probed) return probed;
  const int: BtfInt = { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 };
  const blob = (extra: (start: number) => BtfType[]): Uint8Array => {
    const types: BtfType[] = [{ kind: 'void', id: 0, name: '' }, int, ...extra(2)];
    return Btf.fromTypes(types).marshal();
  };
  const accepts = (bytes: Uint8Array): boolean => {
    try {
      const fd = btfLoadRaw(bytes, null, 0);
      if (fd < 0) return false;
      new FD(fd, 'BTF probe').close();
      return true;
    } catch {
      return false;
    }
  };
  const proto = (id: number): BtfType => ({ kind: 'func_proto', id, name: '', returnType: 1, params: [{ name: 'x', type: 1 }] });
  const tagged = (s: number): BtfType[] => [
    { kind: 'var', id: s, name: 'v', type: 1, linkage: 'static' },
    { kind: 'decl_tag', id: s + 1, name: 'tag', type: s, componentIdx: -1 },
  ];
  // The same decl_tag with kind_flag set (an attribute tag): the model cannot say so, the bytes can.
  // Types: int (16 bytes), var (16), then the decl_tag whose info word is at +4.
  const attribute = blob(tagged);
  attribute[24 + 16 + 16 + 4 + 3]! |= 0x80;
  probed = Object.freeze({
    func: accepts(blob((s) => [proto(s), { kind: 'func', id: s + 1, name: 'f', type: s, linkage: 'static' }])),
    globalFunc: accepts(blob((s) => [proto(s), { kind: 'func', id: s + 1, name: 'f', type: s, linkage: 'global' }])),
    datasec: accepts(blob((s) => [
      { kind: 'var', id: s, name: 'v', type: 1, linkage: 'static' },
      { kind: 'datasec', id: s + 1, name: '.data', size: 4, vars: [{ type: s, offset: 0, size: 4 }] },
    ])),
    float: accepts(blob((s) => [{ kind: 'float', id: s, name: 'float', size: 4 }])),
    declTag: accepts(blob(tagged)),
    typeTag: accepts(blob((s) => [{ kind: 'type_tag', id: s, name: 'tag', type: 1 }, { kind: 'ptr', id: s + 1, name: '', type: s }])),
    enum64: accepts(blob((s) => [{ kind: 'enum64', id: s, name: 'e', size: 8, signed: false, values: [{ name: 'A', value: 1n << 40n }] }])),
    attributeTags: accepts(attribute),
  });
  return probed;
}
