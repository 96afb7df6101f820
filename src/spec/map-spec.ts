/**
 * What a map will be, before it exists: read from an object's `.maps` (BTF-defined), legacy `maps`
 * section, or a global data section, or written by hand. Plain data, freely edited before load
 * (`spec.maps.get('counts')!.maxEntries = 65536`).
 */
import type { Btf } from '../btf/btf.js';
import type { MapType } from '../abi/constants.js';

/** A map's pinning (libbpf's LIBBPF_PIN_*): 'by_name' pins it at `<pinPath>/<name>` and reuses a compatible pin. */
export type Pinning = 'none' | 'by_name';

/** An initial value of a prog array or map-in-map slot: the name of a program or map. */
export interface MapSlotInit {
  readonly index: number;
  readonly target: string;
}

/**
 * A map as the object declares it (its `.maps` entry, or a global data section): type, sizes,
 * flags, pinning, BTF types, initial contents. Change it before loading to resize or retype the
 * map.
 */
export interface MapSpec {
  /** The name in the object (the C variable, or the section for global data). */
  name: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number;
  mapExtra: bigint;
  pinning: Pinning;
  /** BTF of key and value when the object declares them (`__type(key, ...)`); 0 when unknown. */
  btf: Btf | undefined;
  keyTypeId: number;
  valueTypeId: number;
  /** The template of the maps an array_of_maps / hash_of_maps holds. */
  innerMap: MapSpec | undefined;
  /** Initial slots of prog arrays and maps of maps (`.values = { [0] = &prog }`). */
  contents: MapSlotInit[];
  /** Initial bytes of a global data map (its single value), written before programs load. */
  data: Uint8Array | undefined;
  /** Freeze after writing `data` (.rodata), so the verifier can treat values as constants. */
  freeze: boolean;
  /** The ELF section the map came from. */
  readonly section: string;
}

export function copyMapSpec(m: MapSpec): MapSpec {
  return {
    ...m,
    innerMap: m.innerMap ? copyMapSpec(m.innerMap) : undefined,
    contents: m.contents.map((c) => ({ ...c })),
    data: m.data ? new Uint8Array(m.data) : undefined,
  };
}
