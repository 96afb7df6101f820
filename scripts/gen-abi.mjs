#!/usr/bin/env node
// Generates src/abi/uapi.ts, the byte layouts of the kernel structures bpfkit encodes and decodes
// (union bpf_attr per command, the info structs, perf_event_attr, netlink headers, program
// contexts) and the uapi enums, from the kernel's own type information: BTF.
//
// The source is scripts/abi/uapi.btf, a small BTF blob of just those types and what they refer to,
// cut out of a kernel's vmlinux BTF and committed, so that generation does not depend on the kernel
// of the machine it runs on. Commands:
//   node scripts/gen-abi.mjs                    regenerate src/abi/uapi.ts from scripts/abi/uapi.btf
//   node scripts/gen-abi.mjs --check            exit 1 if src/abi/uapi.ts differs from what it would write
//   node scripts/gen-abi.mjs --compare [FILE]   exit 1 if a kernel's BTF (default: the running kernel's)
//                                               places a field or enum value elsewhere than the committed BTF
//   node scripts/gen-abi.mjs --refresh [FILE]   cut scripts/abi/uapi.btf anew out of FILE
//                                               (default /sys/kernel/btf/vmlinux), then regenerate
// Needs `npm run build` first (it parses and writes BTF with bpfkit's own dist/src/btf).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const BTF_FILE = join(repo, 'scripts/abi/uapi.btf');
const OUT_FILE = join(repo, 'src/abi/uapi.ts');

// The structures bpfkit lays out, as the kernel names them.
const ROOTS = [
  'union bpf_attr',
  'struct bpf_prog_info', 'struct bpf_map_info', 'struct bpf_btf_info', 'struct bpf_link_info',
  'struct bpf_insn', 'struct btf_header', 'struct bpf_func_info', 'struct bpf_line_info', 'struct bpf_core_relo',
  'union bpf_iter_link_info',
  'struct perf_event_attr', 'struct perf_event_header', 'struct perf_event_mmap_page',
  'struct nlmsghdr', 'struct nlmsgerr', 'struct nlattr', 'struct rtattr', 'struct ifinfomsg', 'struct tcmsg',
  'struct sockaddr_nl',
  'struct __sk_buff', 'struct xdp_md', 'struct bpf_sock', 'struct bpf_sock_addr', 'struct bpf_sock_ops',
  'struct sk_msg_md', 'struct sk_reuseport_md', 'struct bpf_sk_lookup', 'struct bpf_flow_keys',
  'struct bpf_sysctl', 'struct bpf_sockopt', 'struct bpf_cgroup_dev_ctx', 'struct bpf_fib_lookup',
  'struct bpf_tunnel_key', 'struct bpf_perf_event_value', 'struct bpf_stack_build_id',
  'struct bpf_devmap_val', 'struct bpf_cpumap_val',
  'enum bpf_cmd', 'enum bpf_map_type', 'enum bpf_prog_type', 'enum bpf_attach_type', 'enum bpf_link_type',
  'enum bpf_stats_type', 'enum perf_type_id', 'enum perf_sw_ids', 'enum perf_event_sample_format', 'enum perf_event_type',
  'struct bpf_ringbuf_hdr',
  // uapi's anonymous enums, by the name of their first value (named in ANONYMOUS_ENUM).
  'enum BPF_ANY', 'enum BPF_F_NO_PREALLOC', 'enum BPF_RB_NO_WAKEUP', 'enum BPF_RB_AVAIL_DATA', 'enum BPF_RINGBUF_BUSY_BIT',
];

// An anonymous enum has no name in C: the module names it after what its values are for.
const ANONYMOUS_ENUM = {
  BPF_ANY: 'bpf_update_flags', BPF_F_NO_PREALLOC: 'bpf_map_create_flags', BPF_RB_NO_WAKEUP: 'bpf_rb_wakeup_flags',
  BPF_RB_AVAIL_DATA: 'bpf_rb_query_flags', BPF_RINGBUF_BUSY_BIT: 'bpf_ringbuf_hdr_bits',
};

/** A root's type in `btf`: by kind and name, or an anonymous enum by its first value's name. */
function findRoot(btf, kind, name) {
  if (kind === 'enum' && name in ANONYMOUS_ENUM) {
    return btf.types.find((t) => (t.kind === 'enum' || t.kind === 'enum64') && !t.name && t.values[0]?.name === name);
  }
  return btf.byName(name).find((x) => x.kind === kind || (kind === 'enum' && x.kind === 'enum64'));
}

// union bpf_attr's anonymous structs have no name in C; the kernel's comments name them by the
// commands that use them. Keyed by the name of their first field. A kernel that adds another
// anonymous struct stops the generator here until it is named.
const ANONYMOUS_ATTR = {
  map_type: 'map_create', map_fd: 'map_elem', prog_type: 'prog_load', pathname: 'obj',
  target_fd: 'prog_attach', start_id: 'get_id', btf: 'btf_load',
};

function usage(msg) {
  if (msg) process.stderr.write(`gen-abi: ${msg}\n`);
  process.stderr.write('usage: node scripts/gen-abi.mjs [--check | --refresh [VMLINUX_BTF]]\n');
  process.exit(2);
}

async function btfModule() {
  const path = join(repo, 'dist/src/btf/btf.js');
  if (!existsSync(path)) usage('run `npm run build` first (the generator uses bpfkit\'s own BTF parser)');
  return import(path);
}

function splitRoot(root) {
  const [kind, name] = root.split(' ');
  return { kind, name };
}

/** Every type reachable from `ids`, as a list of old ids in first-seen order. */
function closure(btf, ids) {
  const seen = new Set();
  const order = [];
  const visit = (id) => {
    if (id === 0 || seen.has(id)) return;
    seen.add(id);
    order.push(id);
    for (const ref of refsOf(btf.type(id))) visit(ref);
  };
  for (const id of ids) visit(id);
  return order;
}

function refsOf(t) {
  switch (t.kind) {
    case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag': case 'func': case 'var':
      return [t.type];
    case 'array': return [t.type, t.indexType];
    case 'struct': case 'union': return t.members.map((m) => m.type);
    case 'func_proto': return [t.returnType ?? t.type ?? 0, ...t.params.map((p) => p.type)];
    case 'decl_tag': return [t.type];
    default: return [];
  }
}

function renumber(t, map) {
  const r = (id) => (id === 0 ? 0 : map.get(id));
  const id = map.get(t.id);
  switch (t.kind) {
    case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag': case 'func': case 'var': case 'decl_tag':
      return { ...t, id, type: r(t.type) };
    case 'array': return { ...t, id, type: r(t.type), indexType: r(t.indexType) };
    case 'struct': case 'union': return { ...t, id, members: t.members.map((m) => ({ ...m, type: r(m.type) })) };
    case 'func_proto': return { ...t, id, ...(t.returnType !== undefined ? { returnType: r(t.returnType) } : { type: r(t.type) }), params: t.params.map((p) => ({ ...p, type: r(p.type) })) };
    default: return { ...t, id };
  }
}

/** Cuts the ROOTS (and everything they refer to) out of a kernel's BTF into a standalone blob. */
function cut(Btf, kernel) {
  const ids = ROOTS.map((root) => {
    const { kind, name } = splitRoot(root);
    const found = findRoot(kernel, kind, name);
    if (!found) throw new Error(`${root} is not in this kernel's BTF`);
    return found.id;
  });
  const order = closure(kernel, ids);
  const map = new Map(order.map((old, i) => [old, i + 1]));
  const types = [kernel.type(0), ...order.map((old) => renumber(kernel.type(old), map))];
  return Btf.fromTypes(types).marshal({ littleEndian: true });
}

// ---- layout ----

function isBitfield(btf, m) {
  if (m.bitfieldSize > 0) return true;
  const t = btf.resolve(m.type);
  return m.bitOffset % 8 !== 0 || (t.kind === 'int' && t.bits !== t.size * 8);
}

/**
 * One structure's layout as nested plain data: every field's byte offset from the start of the
 * root (so a nested struct's fields can be written straight into the root's buffer), `$size` of
 * each struct, `$sizeof` of each field, and `$bits` (bit offset from the root and width) for
 * bitfields. Anonymous members are flattened into their parent, as C reaches them.
 */
function layoutOf(btf, t, base, path) {
  const out = { $off: base, $size: t.size, $sizeof: {}, $bits: {}, fields: {}, nested: {} };
  // `bit` is the member's offset from this structure's start, in bits.
  const add = (m, bit) => {
    const mt = btf.resolve(m.type);
    if (isBitfield(btf, m)) {
      const width = m.bitfieldSize || (mt.kind === 'int' ? mt.bits : mt.size * 8);
      out.$bits[m.name] = [base * 8 + bit, width];
      return;
    }
    if ((mt.kind === 'struct' || mt.kind === 'union') && m.name === '') {
      for (const inner of mt.members) add(inner, bit + inner.bitOffset);
      return;
    }
    if (m.name in out.fields || m.name in out.nested) throw new Error(`${path}.${m.name} appears twice`);
    if (mt.kind === 'struct' || mt.kind === 'union') {
      out.nested[m.name] = layoutOf(btf, mt, base + bit / 8, `${path}.${m.name}`);
      return;
    }
    out.fields[m.name] = base + bit / 8;
    out.$sizeof[m.name] = btf.sizeof(m.type);
  };
  for (const m of t.members) add(m, m.bitOffset);
  return out;
}

function firstField(btf, t) {
  const m = t.members[0];
  if (!m) return '';
  if (m.name) return m.name;
  const mt = btf.resolve(m.type);
  return mt.members ? firstField(btf, mt) : '';
}

function emitLayout(l, indent) {
  const pad = '  '.repeat(indent + 1);
  const lines = [];
  lines.push(`${pad}$size: ${l.$size},`);
  for (const [name, off] of Object.entries(l.fields)) lines.push(`${pad}${name}: ${off},`);
  for (const [name, inner] of Object.entries(l.nested)) {
    lines.push(`${pad}${name}: {`);
    lines.push(...emitLayout(inner, indent + 1));
    lines.push(`${pad}},`);
  }
  const sizes = Object.entries(l.$sizeof).map(([n, s]) => `${n}: ${s}`).join(', ');
  if (sizes) lines.push(`${pad}$sizeof: { ${sizes} },`);
  const bits = Object.entries(l.$bits).map(([n, [o, w]]) => `${n}: [${o}, ${w}]`).join(', ');
  if (bits) lines.push(`${pad}$bits: { ${bits} },`);
  if (l.$off !== 0) lines.push(`${pad}$off: ${l.$off},`);
  return lines;
}

/** Every root's layout (or an enum's values), by the name it gets in the module. */
function collect(btf, { lenient = false } = {}) {
  const out = [];
  for (const root of ROOTS) {
    const { kind, name } = splitRoot(root);
    const t = findRoot(btf, kind, name);
    if (!t) {
      if (lenient) continue;
      throw new Error(`${root} is missing from the BTF: run --refresh`);
    }
    if (kind === 'enum') {
      out.push({ root, name: ANONYMOUS_ENUM[name] ?? name, values: t.values.map((v) => [v.name, v.value]) });
    } else if (name === 'bpf_attr') {
      const groups = [];
      for (const m of t.members) {
        const mt = btf.resolve(m.type);
        let key = m.name;
        if (key === '') {
          const first = firstField(btf, mt);
          key = ANONYMOUS_ATTR[first];
          if (!key) throw new Error(`union bpf_attr has a new anonymous struct starting with ${first}: name it in ANONYMOUS_ATTR`);
        }
        groups.push([key, layoutOf(btf, mt, 0, `bpf_attr.${key}`)]);
      }
      out.push({ root, name, groups });
    } else {
      out.push({ root, name, layout: layoutOf(btf, t, 0, name) });
    }
  }
  return out;
}

function emit(collected) {
  const out = [
    '// Generated by scripts/gen-abi.mjs from scripts/abi/uapi.btf (the kernel\'s own BTF of these',
    '// types): do not edit. Offsets are bytes from the start of the outermost structure; `$size` is a',
    '// structure\'s size, `$sizeof` its fields\' sizes, `$bits` [bit offset, width] of its bitfields.',
    '// Regenerate with `node scripts/gen-abi.mjs`; the suite fails when this file and the BTF disagree.',
    '',
  ];
  for (const c of collected) {
    if (c.values) {
      const what = c.root.split(' ')[1] in ANONYMOUS_ENUM ? `uapi's anonymous enum of ${c.root.split(' ')[1]}` : `\`enum ${c.name}\``;
      out.push(`/** ${what}. */`, `export const ${c.name} = {`);
      for (const [n, v] of c.values) out.push(`  ${n}: ${v},`);
      out.push('} as const;', '');
    } else if (c.groups) {
      out.push('/** `union bpf_attr`, one layout per command group (the kernel\'s anonymous structs named by their commands). */', 'export const bpf_attr = {');
      for (const [key, l] of c.groups) out.push(`  ${key}: {`, ...emitLayout(l, 1), '  },');
      out.push('} as const;', '');
    } else {
      out.push(`/** \`${c.root}\`. */`, `export const ${c.name} = {`, ...emitLayout(c.layout, 0), '} as const;', '');
    }
  }
  return out.join('\n');
}

/**
 * Where a kernel's BTF disagrees with the committed one: a field, bitfield or enum value both have
 * at different places. Fields only one side has are expected (kernels add them at the end).
 */
const SENTINEL = /^_*MAX_/;

function compare(committed, kernel) {
  const problems = [];
  const byRoot = new Map(committed.map((c) => [c.root, c]));
  const layouts = (a, b, path) => {
    for (const [n, off] of Object.entries(b.fields)) {
      if (n in a.fields && a.fields[n] !== off) problems.push(`${path}.${n}: offset ${a.fields[n]} committed, ${off} in the kernel`);
    }
    for (const [n, bits] of Object.entries(b.$bits)) {
      const mine = a.$bits[n];
      if (mine && (mine[0] !== bits[0] || mine[1] !== bits[1])) problems.push(`${path}.${n}: bits ${mine} committed, ${bits} in the kernel`);
    }
    for (const [n, inner] of Object.entries(b.nested)) if (a.nested[n]) layouts(a.nested[n], inner, `${path}.${n}`);
  };
  for (const k of kernel) {
    const c = byRoot.get(k.root);
    if (!c) continue;
    if (k.values) {
      const mine = new Map(c.values);
      for (const [n, v] of k.values) {
        // __MAX_BPF_CMD and friends count the values a kernel knows: they differ by design.
        if (SENTINEL.test(n)) continue;
        if (mine.has(n) && mine.get(n) !== v) problems.push(`${k.name}.${n}: ${mine.get(n)} committed, ${v} in the kernel`);
      }
    } else if (k.groups) {
      const mine = new Map(c.groups);
      for (const [key, l] of k.groups) if (mine.has(key)) layouts(mine.get(key), l, `bpf_attr.${key}`);
    } else {
      layouts(c.layout, k.layout, k.name);
    }
  }
  return problems;
}

async function main() {
  const args = process.argv.slice(2);
  const { Btf } = await btfModule();
  const mode = args[0];
  if (mode === '--refresh') {
    const source = args[1] ?? '/sys/kernel/btf/vmlinux';
    writeFileSync(BTF_FILE, cut(Btf, Btf.parse(readFileSync(source))));
    process.stderr.write(`gen-abi: wrote ${BTF_FILE} from ${source}\n`);
  } else if (mode !== undefined && mode !== '--check' && mode !== '--compare') {
    usage(`unknown argument ${mode}`);
  }
  const btf = Btf.parse(readFileSync(BTF_FILE));
  btf.validate();
  const committed = collect(btf);
  if (mode === '--compare') {
    // The committed layouts against a kernel's own BTF (vmlinux of the running kernel by default).
    const source = args[1] ?? '/sys/kernel/btf/vmlinux';
    const kernel = collect(Btf.parse(readFileSync(source)), { lenient: true });
    const problems = compare(committed, kernel);
    for (const p of problems) process.stdout.write(`${p}\n`);
    process.stdout.write(`gen-abi: ${kernel.length} of ${ROOTS.length} structures and enums compared with ${source}: ${problems.length} disagreements\n`);
    process.exit(problems.length === 0 ? 0 : 1);
  }
  const text = emit(committed);
  if (mode === '--check') {
    const current = existsSync(OUT_FILE) ? readFileSync(OUT_FILE, 'utf8') : '';
    if (current !== text) {
      process.stderr.write('gen-abi: src/abi/uapi.ts is not what scripts/abi/uapi.btf generates: run `node scripts/gen-abi.mjs` and commit\n');
      process.exit(1);
    }
    return;
  }
  writeFileSync(OUT_FILE, text);
  process.stderr.write(`gen-abi: wrote ${OUT_FILE}\n`);
}

main().catch((e) => {
  process.stderr.write(`gen-abi: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
