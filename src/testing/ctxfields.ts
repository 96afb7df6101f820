/**
 * Context fields as [offset, size] spans taken from the generated uapi layouts, so the emulator's
 * context rules name `__sk_buff` / `xdp_md` fields instead of repeating their byte offsets.
 */
import type { Layout } from '../abi/layout.js';
import type { FieldOf } from './attr.js';

/** A field's bytes: [offset, size]. */
export type Span = readonly [at: number, len: number];

/** The span of one field of a generated layout. */
export function span<L extends Layout>(layout: L, field: FieldOf<L>): Span {
  return [layout[field] as number, layout.$sizeof[field]!];
}

/** The spans of several fields. */
export function spans<L extends Layout>(layout: L, ...fields: FieldOf<L>[]): Span[] {
  return fields.map((f) => span(layout, f));
}

/** Whether [o, o+size) lies inside one of the spans. */
export function inSpans(list: readonly Span[], o: number, size: number): boolean {
  return list.some(([at, len]) => o >= at && o + size <= at + len);
}
