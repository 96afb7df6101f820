/**
 * Turning C identifiers into TypeScript ones for generated bindings: PascalCase for types,
 * lowerCamelCase for the maps, programs and variables of an object, and a registry that hands out
 * each name once so two C spellings that meet on the same TS name (`foo_bar` and `fooBar`, or
 * `struct x` and `union x`) never collide silently.
 */

/** Words that cannot name a binding (a type, function or const) in strict-mode ES modules. */
const RESERVED = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof',
  'new', 'null', 'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void',
  'while', 'with', 'yield', 'let', 'static', 'implements', 'interface', 'package', 'private',
  'protected', 'public', 'await', 'arguments', 'eval', 'undefined', 'NaN', 'Infinity',
  // Type names TypeScript itself reserves.
  'any', 'unknown', 'never', 'number', 'bigint', 'boolean', 'string', 'symbol', 'object',
]);

/**
 * Globals the generated code relies on, which a generated declaration must not shadow (a C
 * `struct data_view` would otherwise become a type `DataView` and break every decoder).
 */
export const GLOBAL_NAMES: readonly string[] = [
  'Array', 'ArrayBuffer', 'BigInt', 'Boolean', 'DataView', 'Disposable', 'Error', 'Number', 'Object',
  'Partial', 'Promise', 'RangeError', 'Readonly', 'Record', 'String', 'Symbol', 'TextDecoder',
  'TextEncoder', 'TypeError', 'URL', 'Uint8Array', 'Map', 'Set', 'Math', 'JSON',
];

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Whether `s` can be written bare as a property name or binding. */
export function isIdentifier(s: string): boolean {
  return IDENT.test(s);
}

/** A JavaScript string literal in single quotes (the generated code's style). */
export function jsString(s: string): string {
  return `'${JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

/** A property key as written in an object type or literal: bare when possible, else quoted. */
export function propertyKey(s: string): string {
  return isIdentifier(s) ? s : jsString(s);
}

/** Splits a C name on underscores, dots, dashes and other non-alphanumerics. */
function words(name: string): string[] {
  return name.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
}

function capitalise(w: string): string {
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/** `flow_key` -> `FlowKey`, `__u32` -> `U32`, `xdp_md` -> `XdpMd`. */
export function pascalCase(name: string): string {
  const ws = words(name);
  let s = ws.map(capitalise).join('');
  if (s === '') s = 'Anon';
  if (/^[0-9]/.test(s)) s = `T${s}`;
  return s;
}

/** `xdp_stats_map` -> `xdpStatsMap`, `.rodata` -> `rodata`, `XDP_prog` -> `xdpProg`. */
export function camelCase(name: string): string {
  const ws = words(name);
  if (ws.length === 0) return 'anon';
  const first = ws[0]!;
  const head = first === first.toUpperCase() ? first.toLowerCase() : first.charAt(0).toLowerCase() + first.slice(1);
  let s = head + ws.slice(1).map(capitalise).join('');
  if (/^[0-9]/.test(s)) s = `_${s}`;
  return s;
}

/**
 * Hands out unique names. `take` returns the wanted name when free, else the name with a
 * numeric suffix (`Foo2`, `Foo3`, ...), so output stays deterministic.
 */
export class NameRegistry {
  private readonly used = new Set<string>();

  constructor(reserved: Iterable<string> = []) {
    for (const r of reserved) this.used.add(r);
    for (const r of RESERVED) this.used.add(r);
  }

  has(name: string): boolean {
    return this.used.has(name);
  }

  reserve(name: string): void {
    this.used.add(name);
  }

  /** Gives a name taken with `take` back. */
  release(name: string): void {
    this.used.delete(name);
  }

  take(wanted: string): string {
    let name = wanted;
    for (let n = 2; this.used.has(name); n++) name = `${wanted}${n}`;
    this.used.add(name);
    return name;
  }
}

/**
 * Unique keys within one object type (maps, programs, variables): camelCase of the C name, with
 * a numeric suffix when two C names meet on the same key.
 */
export function camelKeys(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const n of names) {
    const base = camelCase(n);
    let key = base;
    for (let i = 2; used.has(key); i++) key = `${base}${i}`;
    used.add(key);
    out.set(n, key);
  }
  return out;
}
