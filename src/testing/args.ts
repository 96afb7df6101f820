/** Argument and result plumbing shared by the helper implementations. */
import { Trap, type Vm } from './interpreter.js';
import type { EmuMap } from './maps.js';
import { helperName } from '../asm/isa.js';


export function u32(vm: Vm, i: number): number {
  return vm.rl[i]!;
}

export function u64(vm: Vm, i: number): bigint {
  return vm.reg64(i);
}

/** A size argument; anything past 32 bits is as good as infinite. */
export function size(vm: Vm, i: number): number {
  return vm.rh[i] ? Number.MAX_SAFE_INTEGER : vm.rl[i]!;
}

export function ret(vm: Vm, n: number): void {
  if (n >= 0 && n <= 0xffffffff) {
    vm.rl[0] = n;
    vm.rh[0] = 0;
  } else if (n < 0 && n >= -0x80000000) {
    vm.rl[0] = n >>> 0;
    vm.rh[0] = 0xffffffff;
  } else {
    ret64(vm, BigInt(n));
  }
}

export function ret64(vm: Vm, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  vm.rl[0] = Number(u & 0xffffffffn);
  vm.rh[0] = Number(u >> 32n);
}

export function mapArg(vm: Vm, i: number, helper: number): EmuMap {
  const r = vm.regionOf(i);
  if (!r || r.kind !== 'map' || !r.map) throw new Trap(`${helperName(helper)}: R${i} is not a pointer to a map`);
  return r.map;
}

/** `n` bytes of memory at register `i` (an empty view for n = 0). */
export function mem(vm: Vm, i: number, n: number, write: boolean, helper: number, what: string): Uint8Array {
  if (n === 0) return new Uint8Array(0);
  try {
    const r = vm.access(vm.rh[i]!, vm.rl[i]!, 0, n, write);
    return r.bytes.subarray(vm.ao, vm.ao + n);
  } catch (e) {
    if (e instanceof Trap) throw new Trap(`${helperName(helper)}: ${what} (R${i}, ${n} bytes): ${e.message}`);
    throw e;
  }
}

