/**
 * The helper functions the emulator implements, by BPF_FUNC_* number, each following its kernel
 * counterpart's contract (arguments, return values, errno on failure, what happens to the output
 * buffer on failure). A helper the verifier would refuse for the map type or arguments it got
 * stops the run with the reason; a helper not listed here stops it too ("not implemented").
 */
import { EFAULT, EINVAL, E2BIG, EACCES, ERANGE } from '../abi/errno.js';
import { Region, Trap, type Vm, type HelperFn } from './interpreter.js';
import type { Code } from './loader.js';
import { EmuMap, FdArrayMap, type Found } from './maps.js';
import { PerfEvent, RingbufMap, perfSlotError } from './rings.js';
import { helperName } from '../asm/isa.js';
import { metalenInvalid } from './testrun.js';
import { mapArg, mem, ret, ret64, size, u32, u64 } from './args.js';
import { NET_HELPERS } from './nethelpers.js';
import { SKB_HELPERS } from './skbhelpers.js';
import { SOCKET_HELPERS } from './sockets.js';
import { fibLookup } from './fiblookup.js';
import { checkMtu } from './checkmtu.js';
import { RedirectMap } from './devmaps.js';

const XDP_ABORTED = 0;
const XDP_REDIRECT = 4;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const BPF_F_INGRESS = 1n;
const BPF_F_CURRENT_CPU = 0xffffffff;
const ETH_HLEN = 14;
const PAGE_SIZE = 4096;

/** Reads `n` bytes at a 64-bit address from anywhere a probe_read may read; undefined on a fault. */
function probe(vm: Vm, address: bigint, n: number): Uint8Array | undefined {
  if (n === 0) return new Uint8Array(0);
  const hi = Number(address >> 32n);
  const lo = Number(address & 0xffffffffn);
  try {
    const r = vm.access(hi, lo, 0, n, false);
    return r.bytes.subarray(vm.ao, vm.ao + n);
  } catch (e) {
    if (e instanceof Trap) return undefined;
    throw e;
  }
}

/** A NUL-terminated string at `address`, at most `max` bytes before the NUL; undefined on a fault. */
function probeString(vm: Vm, address: bigint, max: number): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < max; i++) {
    const b = probe(vm, address + BigInt(i), 1);
    if (!b) return undefined;
    if (b[0] === 0) break;
    out.push(b[0]!);
  }
  return Uint8Array.from(out);
}

function forbid(map: EmuMap, allowed: readonly string[], helper: number): void {
  if (!allowed.includes(map.type)) {
    throw new Trap(`${helperName(helper)} cannot be used with map ${map.name} of type ${map.type} (the verifier refuses it)`);
  }
}

const KEYED = ['hash', 'array', 'percpu_hash', 'percpu_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie'];
const STACKS = ['queue', 'stack', 'bloom_filter'];

function found(vm: Vm, map: EmuMap, f: Found): void {
  if (f === null) ret(vm, 0);
  else if (f instanceof Uint8Array) vm.setValuePtr(0, f, map);
  else vm.setPtr(0, vm.mapRegion(f), 0);
}

// ---- maps ---------------------------------------------------------------------------------------

function mapLookup(vm: Vm): void {
  const map = mapArg(vm, 1, 1);
  // Device and socket maps answer lookups too (check_map_func_compatibility); the socket maps
  // of the emulator hold no socket, so theirs find nothing.
  forbid(map, [...KEYED, 'array_of_maps', 'hash_of_maps', 'devmap', 'devmap_hash', 'xskmap', 'sockmap', 'sockhash'], 1);
  found(vm, map, map.lookup(mem(vm, 2, map.keySize, false, 1, 'key'), vm.cpu));
}

function mapUpdate(vm: Vm): void {
  const map = mapArg(vm, 1, 2);
  forbid(map, KEYED, 2);
  if (map.progReadOnly) throw new Trap(`bpf_map_update_elem: write into map ${map.name} forbidden (BPF_F_RDONLY_PROG)`);
  const key = mem(vm, 2, map.keySize, false, 2, 'key');
  const value = mem(vm, 3, map.valueSize, false, 2, 'value');
  const flags = vm.rh[4] ? 0xffff : vm.rl[4]!;
  ret(vm, map.update(key, value, flags, vm.cpu));
}

function mapDelete(vm: Vm): void {
  const map = mapArg(vm, 1, 3);
  forbid(map, KEYED, 3);
  if (map.progReadOnly) throw new Trap(`bpf_map_delete_elem: write into map ${map.name} forbidden (BPF_F_RDONLY_PROG)`);
  ret(vm, map.delete(mem(vm, 2, map.keySize, false, 3, 'key')));
}

function mapPush(vm: Vm): void {
  const map = mapArg(vm, 1, 87);
  forbid(map, STACKS, 87);
  const flags = vm.rh[3] ? 0xffff : vm.rl[3]!;
  ret(vm, map.push(mem(vm, 2, map.valueSize, false, 87, 'value'), flags));
}

function mapPop(vm: Vm): void {
  const map = mapArg(vm, 1, 88);
  forbid(map, ['queue', 'stack'], 88);
  ret(vm, map.pop(mem(vm, 2, map.valueSize, true, 88, 'value')));
}

function mapPeek(vm: Vm): void {
  const map = mapArg(vm, 1, 89);
  forbid(map, STACKS, 89);
  ret(vm, map.peek(mem(vm, 2, map.valueSize, map.type !== 'bloom_filter', 89, 'value')));
}

function mapLookupPercpu(vm: Vm): void {
  const map = mapArg(vm, 1, 195);
  forbid(map, ['percpu_hash', 'percpu_array', 'lru_percpu_hash'], 195);
  const cpu = u32(vm, 3);
  if (cpu >= vm.env.cpus) return ret(vm, 0);
  found(vm, map, map.lookup(mem(vm, 2, map.keySize, false, 195, 'key'), cpu));
}

function forEachMapElem(vm: Vm): void {
  const map = mapArg(vm, 1, 164);
  forbid(map, ['hash', 'percpu_hash', 'lru_hash', 'lru_percpu_hash', 'array', 'percpu_array'], 164);
  const cb = vm.regionOf(2);
  if (!cb || cb.kind !== 'func') throw new Trap('bpf_for_each_map_elem: R2 is not a BPF function');
  if (u64(vm, 4) !== 0n) return ret(vm, -EINVAL);
  const ctx = u64(vm, 3);
  const mapAddr = vm.addressOf(vm.mapRegion(map), 0);
  let n = 0;
  for (const [k, v] of map.forEach(vm.cpu)) {
    n++;
    const key = new Region('key', k.slice(), `a key of map ${map.name}`);
    key.writable = false;
    const r = vm.callFunction(cb, [mapAddr, vm.addressOf(key, 0), vm.valueAddress(v, map), ctx]);
    if (r !== 0n) break;
  }
  ret(vm, n);
}

function tailCall(vm: Vm): void {
  const map = mapArg(vm, 2, 12);
  if (!(map instanceof FdArrayMap) || map.type !== 'prog_array') throw new Trap(`bpf_tail_call: map ${map.name} is not a prog array`);
  const index = u32(vm, 3);
  if (index >= map.maxEntries) return;
  if (vm.tailCalls >= 33) return;
  vm.tailCalls++;
  const prog = map.slots[index] as { code: Code } | null;
  if (!prog) return;
  vm.tailTarget = prog.code;
}

// ---- time, identity, randomness -----------------------------------------------------------------

const clock = (kind: 'monotonic' | 'boot' | 'coarse' | 'tai') => (vm: Vm) => ret64(vm, vm.env.clock(kind));

function jiffies64(vm: Vm): void {
  ret64(vm, vm.env.clock('monotonic') / 4_000_000n); // CONFIG_HZ=250
}

function pidTgid(vm: Vm): void {
  const t = vm.env.task;
  ret64(vm, (BigInt(t.tgid) << 32n) | BigInt(t.pid));
}

function uidGid(vm: Vm): void {
  const t = vm.env.task;
  ret64(vm, (BigInt(t.gid) << 32n) | BigInt(t.uid));
}

function currentComm(vm: Vm): void {
  const n = size(vm, 2);
  const buf = mem(vm, 1, n, true, 16, 'buf');
  const comm = new TextEncoder().encode(vm.env.task.comm).subarray(0, 15);
  buf.fill(0);
  buf.set(comm.subarray(0, Math.max(0, n - 1)));
  ret(vm, 0);
}

function currentTask(vm: Vm): void {
  ret64(vm, vm.env.memory?.currentTask ?? 0n);
}

// ---- probe reads --------------------------------------------------------------------------------

const TASK_SIZE_MAX = 0x00007ffffffff000n;
const KERNEL_HALF = 0xffff800000000000n;

/**
 * Why a probe read of `address` failed, as x86_64 answers: kernel reads of addresses outside the
 * kernel half are refused with -ERANGE (copy_from_kernel_nofault_allowed), everything else that
 * is not mapped faults with -EFAULT. The legacy helpers read user memory below TASK_SIZE.
 */
function probeErrno(id: number, address: bigint): number {
  const kernelRead = id === 113 || id === 115 || ((id === 4 || id === 45) && address >= TASK_SIZE_MAX);
  return kernelRead && BigInt.asUintN(64, address) < KERNEL_HALF ? -ERANGE : -EFAULT;
}

function probeRead(id: number) {
  return (vm: Vm) => {
    const n = size(vm, 2);
    const dst = mem(vm, 1, n, true, id, 'dst');
    const address = u64(vm, 3);
    const src = probe(vm, address, n);
    if (!src) {
      dst.fill(0);
      return ret(vm, probeErrno(id, address));
    }
    dst.set(src);
    ret(vm, 0);
  };
}

function probeReadStr(id: number) {
  return (vm: Vm) => {
    const n = size(vm, 2);
    const dst = mem(vm, 1, n, true, id, 'dst');
    if (n === 0) return ret(vm, 0);
    const address = u64(vm, 3);
    const s = probeString(vm, address, n - 1);
    if (!s) {
      dst.fill(0);
      return ret(vm, probeErrno(id, address));
    }
    dst.set(s);
    dst[s.length] = 0;
    // An empty user string: 6.18 counts the NUL, 6.1 and 6.12 (strncpy_from_user_nofault) return 0.
    const user = id === 114 || (id === 45 && address < TASK_SIZE_MAX);
    ret(vm, s.length === 0 && user ? vm.env.kernel.emptyStrLen : s.length + 1);
  };
}

// ---- printing -----------------------------------------------------------------------------------

/**
 * The kernel's bpf printf: %d %i %u %x %X %c %s %p (and %pK %px %ks %us), l/ll sizes, flags
 * "0+- " and a width. Returns the text, or -EINVAL for a format the kernel would refuse.
 */
export function bpfFormat(fmt: string, args: readonly bigint[], readStr: (address: bigint) => string | undefined, maxArgs: number): string | number {
  let out = '';
  let next = 0;
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i]!;
    if (ch !== '%') {
      out += ch;
      continue;
    }
    i++;
    if (fmt[i] === '%') {
      out += '%';
      continue;
    }
    let flags = '';
    while (i < fmt.length && '0+- '.includes(fmt[i]!)) flags += fmt[i++];
    let width = 0;
    while (i < fmt.length && fmt[i]! >= '0' && fmt[i]! <= '9') width = width * 10 + Number(fmt[i++]);
    let longs = 0;
    while (fmt[i] === 'l') {
      longs++;
      i++;
    }
    const conv = fmt[i];
    if (conv === undefined || longs > 2) return -EINVAL;
    if (next >= maxArgs || next >= args.length) return -EINVAL;
    const arg = args[next++]!;
    let text: string;
    switch (conv) {
      case 'd':
      case 'i':
        text = (longs ? BigInt.asIntN(64, arg) : BigInt.asIntN(32, arg)).toString();
        break;
      case 'u':
        text = (longs ? BigInt.asUintN(64, arg) : BigInt.asUintN(32, arg)).toString();
        break;
      case 'x':
      case 'X':
        text = (longs ? BigInt.asUintN(64, arg) : BigInt.asUintN(32, arg)).toString(16);
        if (conv === 'X') text = text.toUpperCase();
        break;
      case 'c':
        text = String.fromCharCode(Number(arg & 0xffn));
        break;
      case 's': {
        const s = readStr(arg);
        text = s ?? '(efault)';
        break;
      }
      case 'p': {
        const suffix = fmt[i + 1];
        if (suffix === 'K' || suffix === 'x') i++;
        else if ((suffix === 'k' || suffix === 'u') && fmt[i + 2] === 's') {
          i += 2;
          text = readStr(arg) ?? '(efault)';
          break;
        }
        text = `0x${BigInt.asUintN(64, arg).toString(16)}`;
        break;
      }
      default:
        return -EINVAL;
    }
    if (text.length < width) {
      const pad = flags.includes('0') && !flags.includes('-') && conv !== 's' ? '0' : ' ';
      if (flags.includes('-')) text = text.padEnd(width, ' ');
      else if (pad === '0' && text.startsWith('-')) text = `-${text.slice(1).padStart(width - 1, '0')}`;
      else text = text.padStart(width, pad);
    }
    out += text;
  }
  return out;
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder('latin1').decode(end < 0 ? b : b.subarray(0, end));
}

function strReader(vm: Vm) {
  return (address: bigint) => {
    const s = probeString(vm, address, 1024);
    return s ? new TextDecoder('latin1').decode(s) : undefined;
  };
}

function tracePrintk(vm: Vm): void {
  const n = size(vm, 2);
  const fmt = mem(vm, 1, n, false, 6, 'fmt');
  if (n === 0 || fmt[n - 1] !== 0) return ret(vm, -EINVAL);
  const text = bpfFormat(cString(fmt), [u64(vm, 3), u64(vm, 4), u64(vm, 5)], strReader(vm), 3);
  if (typeof text === 'number') return ret(vm, text);
  vm.env.trace(text);
  ret(vm, text.length);
}

function argArray(vm: Vm, reg: number, lenReg: number, id: number): bigint[] | number {
  const len = size(vm, lenReg);
  if (len % 8 !== 0 || len > 8 * 12) return -EINVAL;
  const data = mem(vm, reg, len, false, id, 'data');
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: bigint[] = [];
  for (let o = 0; o < len; o += 8) out.push(v.getBigUint64(o, true));
  return out;
}

function traceVprintk(vm: Vm): void {
  const n = size(vm, 2);
  const fmt = mem(vm, 1, n, false, 177, 'fmt');
  if (n === 0 || fmt[n - 1] !== 0) return ret(vm, -EINVAL);
  const args = argArray(vm, 3, 4, 177);
  if (typeof args === 'number') return ret(vm, args);
  const text = bpfFormat(cString(fmt), args, strReader(vm), 12);
  if (typeof text === 'number') return ret(vm, text);
  vm.env.trace(text);
  ret(vm, text.length);
}

function snprintf(vm: Vm): void {
  const n = size(vm, 2);
  const out = mem(vm, 1, n, true, 165, 'str');
  const fmt = probeString(vm, u64(vm, 3), 4096);
  if (!fmt) throw new Trap('bpf_snprintf: fmt is not a readable string');
  const args = argArray(vm, 4, 5, 165);
  if (typeof args === 'number') return ret(vm, args);
  const text = bpfFormat(new TextDecoder('latin1').decode(fmt), args, strReader(vm), 12);
  if (typeof text === 'number') return ret(vm, text);
  const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  if (n > 0) {
    const k = Math.min(bytes.length, n - 1);
    out.set(bytes.subarray(0, k));
    out[k] = 0;
  }
  ret(vm, bytes.length + 1);
}

function strncmp(vm: Vm): void {
  const n = size(vm, 2);
  const s1 = mem(vm, 1, n, false, 182, 's1');
  const s2 = probeString(vm, u64(vm, 3), n);
  if (!s2) throw new Trap('bpf_strncmp: s2 is not a readable string');
  for (let i = 0; i < n; i++) {
    const a = s1[i]!;
    const b = s2[i] ?? 0;
    if (a !== b) return ret(vm, a < b ? -1 : 1);
    if (a === 0) break;
  }
  ret(vm, 0);
}

// ---- packets ------------------------------------------------------------------------------------

function packet(vm: Vm, id: number) {
  const p = vm.packet;
  if (!p) throw new Trap(`${helperName(id)} needs a packet (XDP or skb program run with data)`);
  return p;
}

function xdpOnly(vm: Vm, id: number) {
  if (!vm.isXdp) throw new Trap(`${helperName(id)} is only for XDP programs`);
  return packet(vm, id);
}

function xdpAdjustHead(vm: Vm): void {
  const p = xdpOnly(vm, 44);
  const delta = u32(vm, 2) | 0;
  const metalen = p.data - p.meta;
  const data = p.data + delta;
  if (data < p.minStart + metalen || data > p.end - ETH_HLEN) return ret(vm, -EINVAL);
  if (metalen) p.buf.copyWithin(p.meta + delta, p.meta, p.data);
  p.meta += delta;
  p.data = data;
  p.sync();
  ret(vm, 0);
}

function xdpAdjustMeta(vm: Vm): void {
  const p = xdpOnly(vm, 54);
  const meta = p.meta + (u32(vm, 2) | 0);
  const metalen = p.data - meta;
  if (meta < p.minStart || meta > p.data) return ret(vm, -EINVAL);
  if (metalenInvalid(metalen, vm.env.kernel.maxMetalen)) return ret(vm, -EACCES);
  p.meta = meta;
  p.sync();
  ret(vm, 0);
}

function xdpAdjustTail(vm: Vm): void {
  const p = xdpOnly(vm, 65);
  const delta = u32(vm, 2) | 0;
  if (p.frags.length) {
    // Fragments: grow into the last page's room, shrink from the end (never below ETH_HLEN).
    if (delta > 0) {
      const last = p.frags.length % PAGE_SIZE || PAGE_SIZE;
      if (delta > PAGE_SIZE - last) return ret(vm, -EINVAL);
      const grown = new Uint8Array(p.frags.length + delta);
      grown.set(p.frags);
      p.frags = grown;
      return ret(vm, 0);
    }
    const cut = -delta;
    if (cut > p.total - ETH_HLEN) return ret(vm, -EINVAL);
    const fromFrags = Math.min(cut, p.frags.length);
    p.frags = p.frags.slice(0, p.frags.length - fromFrags);
    p.end -= cut - fromFrags;
    p.sync();
    return ret(vm, 0);
  }
  const end = p.end + delta;
  if (end > p.maxEnd || end < p.data + ETH_HLEN) return ret(vm, -EINVAL);
  if (delta > 0) p.buf.fill(0, p.end, end);
  p.end = end;
  p.sync();
  ret(vm, 0);
}

function xdpBuffLen(vm: Vm): void {
  ret(vm, xdpOnly(vm, 188).total);
}

function xdpLoadStore(id: number, store: boolean) {
  return (vm: Vm) => {
    const p = xdpOnly(vm, id);
    const offset = u32(vm, 2);
    const len = u32(vm, 4);
    const buf = mem(vm, 3, len, !store, id, 'buf');
    if (offset > 0xffff || len > 0xffff) return ret(vm, -EFAULT);
    if (offset + len > p.total) return ret(vm, -EINVAL);
    if (store) p.write(offset, buf);
    else buf.set(p.read(offset, len));
    ret(vm, 0);
  };
}

function skbLoadBytes(vm: Vm): void {
  if (!vm.isSkb) throw new Trap('bpf_skb_load_bytes is only for skb programs');
  const p = packet(vm, 26);
  const offset = u32(vm, 2);
  const len = size(vm, 4);
  const to = mem(vm, 3, len, true, 26, 'to');
  if (offset > 0x7fffffff || offset + len > p.length) {
    to.fill(0);
    return ret(vm, -EFAULT);
  }
  to.set(p.buf.subarray(p.data + offset, p.data + offset + len));
  ret(vm, 0);
}

function skbStoreBytes(vm: Vm): void {
  if (!vm.isSkb) throw new Trap('bpf_skb_store_bytes is only for skb programs');
  const p = packet(vm, 9);
  const offset = u32(vm, 2);
  const len = size(vm, 4);
  const from = mem(vm, 3, len, false, 9, 'from');
  if (u64(vm, 5) & ~3n) return ret(vm, -EINVAL);
  if (offset > 0xffff || offset + len > p.length) return ret(vm, -EFAULT);
  p.buf.set(from, p.data + offset);
  ret(vm, 0);
}

function redirect(vm: Vm): void {
  const ifindex = u32(vm, 1);
  const flags = u64(vm, 2);
  if (vm.isXdp) {
    if (flags !== 0n) return ret(vm, XDP_ABORTED);
    vm.env.redirect({ ifindex, flags });
    return ret(vm, XDP_REDIRECT);
  }
  if (flags & ~BPF_F_INGRESS) return ret(vm, TC_ACT_SHOT);
  vm.env.redirect({ ifindex, flags });
  ret(vm, TC_ACT_REDIRECT);
}

/**
 * bpf_clone_redirect: a copy of the packet is sent out of (or, with BPF_F_INGRESS, received on) an
 * existing device; the program keeps the original. Emulated devices are up, and the ones besides
 * loopback behave as a veth whose peer has the same MTU: a transmitted clone longer than the MTU
 * plus an Ethernet and a VLAN header is dropped by the peer (veth_xmit's NET_XMIT_DROP, 1);
 * loopback takes anything, and a received clone is not checked against the MTU
 * (____dev_forward_skb without check_mtu). The clone is recorded in `redirects`.
 */
function cloneRedirect(vm: Vm): void {
  if (!vm.isSkb || !vm.packet) throw new Trap('bpf_clone_redirect is only for skb programs (tc, lwt)');
  const ifindex = u32(vm, 2);
  const flags = u64(vm, 3);
  if (flags & ~BPF_F_INGRESS) return ret(vm, -EINVAL);
  const dev = vm.env.netdev(ifindex);
  if (!dev) return ret(vm, -EINVAL);
  const p = vm.packet;
  const data = p.buf.slice(p.data, p.end);
  vm.env.redirect({ ifindex, flags, kind: 'clone', data });
  const mtu = vm.env.fib.devices.get(ifindex)?.mtu ?? 1500;
  const dropped = !(flags & BPF_F_INGRESS) && ifindex !== 1 && data.length > mtu + 14 + 4;
  ret(vm, dropped ? 1 : 0);
}

const BPF_F_BROADCAST = 1n << 3n;
const BPF_F_EXCLUDE_INGRESS = 1n << 4n;

/** bpf_redirect_map (XDP): XDP_REDIRECT to the map's entry, or the flags' low bits when it has none. */
function redirectMap(vm: Vm): void {
  const map = mapArg(vm, 1, 51);
  if (!vm.isXdp) throw new Trap('bpf_redirect_map is only for XDP programs here (sk_skb programs are not emulated)');
  if (!(map instanceof RedirectMap) && map.type !== 'xskmap') {
    throw new Trap(`bpf_redirect_map cannot be used with map ${map.name} of type ${map.type} (the verifier refuses it)`);
  }
  const key = u32(vm, 2);
  const flags = u64(vm, 3);
  const multi = map instanceof RedirectMap && !map.cpu ? BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS : 0n;
  if (flags & ~(3n | multi)) return ret(vm, XDP_ABORTED);
  const target = map instanceof RedirectMap ? map.target(key) : undefined;
  if (target === undefined && !(flags & BPF_F_BROADCAST)) return ret(vm, Number(flags & 3n));
  vm.env.redirect({ ifindex: map instanceof RedirectMap && map.cpu ? 0 : target ?? 0, flags, map: map.name, key });
  ret(vm, XDP_REDIRECT);
}

/** bpf_redirect_peer and bpf_redirect_neigh (tc): TC_ACT_REDIRECT, the target recorded. */
function redirectTc(kind: 'peer' | 'neigh') {
  return (vm: Vm): void => {
    if (!vm.isSkb) throw new Trap(`bpf_redirect_${kind} is only for tc programs`);
    const ifindex = u32(vm, 1);
    if (kind === 'peer') {
      if (u64(vm, 2)) return ret(vm, TC_ACT_SHOT);
      vm.env.redirect({ ifindex, flags: 0n, kind });
      return ret(vm, TC_ACT_REDIRECT);
    }
    const plen = size(vm, 3);
    if ((plen && plen < 20) || u64(vm, 4)) return ret(vm, TC_ACT_SHOT);
    vm.env.redirect({ ifindex, flags: 0n, kind });
    ret(vm, TC_ACT_REDIRECT);
  };
}

// ---- perf and ring buffers ----------------------------------------------------------------------

function perfEventOutput(vm: Vm): void {
  const map = mapArg(vm, 2, 25);
  if (!(map instanceof FdArrayMap) || map.type !== 'perf_event_array') throw new Trap(`bpf_perf_event_output: map ${map.name} is not a perf event array`);
  const flags = u64(vm, 3);
  const n = size(vm, 5);
  const data = mem(vm, 4, n, false, 25, 'data');
  const packetProg = vm.isXdp || vm.isSkb;
  const allowed = packetProg ? 0xfffff_ffffffffn : 0xffffffffn;
  if (flags & ~allowed) return ret(vm, -EINVAL);
  const ctxLen = Number(flags >> 32n);
  let sample = data;
  if (ctxLen > 0) {
    const p = packet(vm, 25);
    if (ctxLen > p.total) return ret(vm, -EFAULT);
    sample = new Uint8Array(n + ctxLen);
    sample.set(data);
    sample.set(p.read(0, ctxLen), n);
  }
  const field = Number(flags & 0xffffffffn);
  const index = field === BPF_F_CURRENT_CPU ? vm.cpu : field;
  const event = (index < map.maxEntries ? map.slots[index] : null) as PerfEvent | null;
  const err = perfSlotError(event, index, map.maxEntries, vm.cpu);
  if (err) return ret(vm, err);
  ret(vm, event!.output(sample.slice()));
}

function ringArg(vm: Vm, id: number): RingbufMap {
  const map = mapArg(vm, 1, id);
  if (!(map instanceof RingbufMap)) throw new Trap(`${helperName(id)}: map ${map.name} is not a ring buffer`);
  return map;
}

function ringbufOutput(vm: Vm): void {
  const ring = ringArg(vm, 130);
  const n = size(vm, 3);
  const data = mem(vm, 2, n, false, 130, 'data');
  ret(vm, ring.output(data, vm.rh[4] ? 0x100 : vm.rl[4]!));
}

function ringbufReserve(vm: Vm): void {
  const ring = ringArg(vm, 131);
  const n = size(vm, 2);
  if (u64(vm, 3) !== 0n) return ret(vm, 0);
  const pos = ring.reserve(n);
  if (pos < 0) return ret(vm, 0);
  const r = new Region('ringbuf_sample', new Uint8Array(n), `a record of ring buffer ${ring.name}`);
  r.sample = { ring, pos, done: false };
  vm.setPtr(0, r, 0);
}

function ringbufCommit(id: number, discard: boolean) {
  return (vm: Vm) => {
    const r = vm.regionOf(1);
    if (!r || r.kind !== 'ringbuf_sample' || vm.ao !== 0 || !r.sample) {
      throw new Trap(`${helperName(id)}: R1 is not a record returned by bpf_ringbuf_reserve`);
    }
    if (r.sample.done) throw new Trap(`${helperName(id)}: the record was already submitted or discarded`);
    r.sample.done = true;
    r.readable = false;
    r.writable = false;
    r.sample.ring.commit(r.sample.pos, r.bytes, discard, vm.rl[2]!);
    ret(vm, 0);
  };
}

function ringbufQuery(vm: Vm): void {
  ret(vm, ringArg(vm, 134).query(u32(vm, 2)));
}

// ---- loops --------------------------------------------------------------------------------------

function loop(vm: Vm): void {
  const nr = u32(vm, 1);
  const cb = vm.regionOf(2);
  if (!cb || cb.kind !== 'func') throw new Trap('bpf_loop: R2 is not a BPF function');
  if (u64(vm, 4) !== 0n) return ret(vm, -EINVAL);
  if (nr > 1 << 23) {
    // With flags 0 the verifier inlines bpf_loop, and the inlined code sets -E2BIG with a 32-bit move.
    vm.rl[0] = -E2BIG >>> 0;
    vm.rh[0] = 0;
    return;
  }
  const ctx = u64(vm, 3);
  for (let i = 0; i < nr; i++) {
    if (vm.callFunction(cb, [BigInt(i), ctx]) !== 0n) return ret(vm, i + 1);
  }
  ret(vm, nr);
}

function numaNode(vm: Vm): void {
  ret(vm, 0);
}

function cgroupId(vm: Vm): void {
  ret64(vm, vm.env.task.cgroupId);
}

export const HELPERS: (HelperFn | undefined)[] = [];
const table: Record<number, HelperFn> = {
  1: mapLookup, 2: mapUpdate, 3: mapDelete, 4: probeRead(4), 5: clock('monotonic'), 6: tracePrintk,
  7: (vm) => ret(vm, vm.env.random()), 8: (vm) => ret(vm, vm.cpu), 9: skbStoreBytes, 12: tailCall, 14: pidTgid,
  15: uidGid, 16: currentComm, 23: redirect, 25: perfEventOutput, 26: skbLoadBytes, 35: currentTask, 42: numaNode,
  44: xdpAdjustHead, 45: probeReadStr(45), 54: xdpAdjustMeta, 65: xdpAdjustTail, 80: cgroupId, 87: mapPush,
  88: mapPop, 89: mapPeek, 112: probeRead(112), 113: probeRead(113), 114: probeReadStr(114), 115: probeReadStr(115),
  118: jiffies64, 125: clock('boot'), 130: ringbufOutput, 131: ringbufReserve, 132: ringbufCommit(132, false),
  133: ringbufCommit(133, true), 134: ringbufQuery, 158: currentTask, 160: clock('coarse'), 164: forEachMapElem,
  165: snprintf, 177: traceVprintk, 181: loop, 182: strncmp, 188: xdpBuffLen, 189: xdpLoadStore(189, false),
  190: xdpLoadStore(190, true), 195: mapLookupPercpu, 208: clock('tai'), 51: redirectMap, 13: cloneRedirect, 69: fibLookup, 163: checkMtu, 152: redirectTc('neigh'), 155: redirectTc('peer'),
};
Object.assign(table, NET_HELPERS, SKB_HELPERS, SOCKET_HELPERS);
for (const [id, fn] of Object.entries(table)) HELPERS[Number(id)] = fn;

/** Helper numbers the emulator implements. */
export const IMPLEMENTED_HELPERS: readonly number[] = Object.keys(table).map(Number);
