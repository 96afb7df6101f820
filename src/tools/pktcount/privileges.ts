/**
 * Which capabilities pktcount needs (loading BPF, attaching XDP, and for the demo making network
 * namespaces), and the message that names what this process lacks and how to run the tool. The
 * capability set itself is read by src/tools/common/privileges.ts.
 */
import { lackingWho, type Need } from '../common/privileges.js';

/** What pktcount needs: loading BPF and attaching XDP; the demo also makes network namespaces. */
export function pktcountNeeds(demo: boolean): Need[] {
  const needs: Need[] = [
    { cap: 'BPF', or: 'SYS_ADMIN', why: 'to load the XDP program and create its maps' },
    { cap: 'NET_ADMIN', why: 'to attach XDP to an interface' },
  ];
  if (demo) needs.push({ cap: 'SYS_ADMIN', why: 'to create the demo\'s network namespaces' });
  return needs;
}

/** One message naming each missing capability, what it is for, and how to run the tool. */
export function privilegeMessage(lacking: readonly Need[], example: string): string {
  const list = lacking.map((n) => `CAP_${n.cap} (${n.why})`).join(', ');
  return `pktcount needs ${list}; ${lackingWho(process.getuid?.(), lacking.length, 'them')}. Run it as root: sudo ${example}`;
}
