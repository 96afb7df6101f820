/**
 * What kprobe_multi and uprobe_multi links share: which attach type a program needs (multi or
 * session) and the check that it was loaded with it, as the kernel takes no other.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Program } from '../objects/program.js';

/**
 * The attach type of a `kprobe`/`uprobe` multi or session attachment, checked against the one the
 * program was loaded with; `session` defaults to what the program's section said.
 */
export function multiProbeAttachType(prog: Program, probe: 'kprobe' | 'uprobe', fn: string, options: { session?: boolean; retprobe?: boolean }):
  { session: boolean; attachType: 'trace_kprobe_multi' | 'trace_kprobe_session' | 'trace_uprobe_multi' | 'trace_uprobe_session' } {
  const session = options.session ?? prog.attachType === `trace_${probe}_session`;
  const attachType = session ? (`trace_${probe}_session` as const) : (`trace_${probe}_multi` as const);
  if (session && options.retprobe) throw new InvalidArgumentError(`${fn}: a ${probe} session already runs at entry and return; drop { retprobe }`);
  if (prog.attachType !== attachType) {
    throw new InvalidArgumentError(`${fn}: ${prog.name || 'the program'} was loaded with attach type ${prog.attachType ?? 'none'}, ` +
      `not ${attachType}: the kernel takes only programs loaded for it (put the program in a ${session ? `${probe}.session` : `${probe}.multi or ${probe === 'kprobe' ? 'k' : 'u'}retprobe.multi`} section)`);
  }
  return { session, attachType };
}
