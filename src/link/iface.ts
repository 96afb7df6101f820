/**
 * Network interface names to indexes: /sys/class/net/<name>/ifindex, then rtnetlink (which follows
 * the caller's network namespace even where sysfs was mounted for another one). An unknown name is
 * an error that lists the interfaces that do exist.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { interfaceIndex, listInterfaces } from './netlink.js';

const IFNAMSIZ = 16;

function existingInterfaces(): string[] {
  try {
    return listInterfaces().map((i) => i.name);
  } catch {
    try { return readdirSync('/sys/class/net').sort(); } catch { return []; }
  }
}

/** The interface index of a name, or the index itself when a number is given. */
export function resolveInterface(iface: number | string): number {
  if (typeof iface === 'number') {
    if (!Number.isInteger(iface) || iface <= 0) throw new InvalidArgumentError(`interface index must be a positive integer, got ${iface}`);
    return iface;
  }
  if (/^\d+$/.test(iface)) return resolveInterface(Number(iface));
  if (iface === '' || iface.length >= IFNAMSIZ || iface.includes('/') || iface === '.' || iface === '..') {
    throw new InvalidArgumentError(`bad interface name "${iface}": names are 1 to ${IFNAMSIZ - 1} characters without '/'`);
  }
  let fromSysfs: number | undefined;
  try {
    const n = Number.parseInt(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8').trim(), 10);
    if (Number.isInteger(n) && n > 0) fromSysfs = n;
  } catch {
    /* not in sysfs */
  }
  // sysfs shows the namespace it was mounted for, rtnetlink the caller's: rtnetlink wins when it answers.
  let fromNetlink: number | undefined;
  let netlinkAnswered = true;
  try {
    fromNetlink = interfaceIndex(iface);
  } catch {
    netlinkAnswered = false;
  }
  if (fromNetlink !== undefined) return fromNetlink;
  if (!netlinkAnswered && fromSysfs !== undefined) return fromSysfs;
  const names = existingInterfaces();
  throw new InvalidArgumentError(`no network interface named "${iface}"; existing interfaces: ${names.length ? names.join(', ') : '(none found)'}`);
}
