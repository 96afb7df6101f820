/**
 * Helpers over the generated uapi layouts (./uapi.ts). Pure data, no syscalls: the object parsers,
 * the syscall layer and the emulator all read kernel structures through these.
 */
/** A generated layout (./uapi.ts): field offsets and their sizes. */
export interface Layout {
  readonly $size: number;
  readonly $sizeof: Readonly<Record<string, number>>;
}

/**
 * The byte just past `field`: the attr size that reaches it, as libbpf's offsetofend. Sending no
 * more than the fields used keeps kernels that predate the later fields from refusing the call.
 */
export function offsetofend<L extends Layout>(layout: L, field: keyof L['$sizeof'] & keyof L): number {
  return (layout[field] as number) + layout.$sizeof[field as string]!;
}
