/**
 * The kernel release the emulator imitates, where releases differ in what user space can see. Only
 * differences measured on real kernels are modelled (6.18 on our machines, Debian's 6.1 and 6.12
 * under QEMU): the program tag's hash, the XDP metadata limit, and what bpf_probe_read_*_str
 * returns for an empty string.
 */
import { InvalidArgumentError } from '../errors.js';

export interface KernelBehaviour {
  /** The release imitated, e.g. "6.18". */
  readonly release: string;
  /** bpf_prog_calc_tag: SHA-256 from 6.18 (signed programs), SHA-1 before. */
  readonly tagHash: 'sha1' | 'sha256';
  /** xdp_metalen_invalid: the most metadata an XDP packet may carry (a multiple of 4). */
  readonly maxMetalen: number;
  /** What bpf_probe_read_{user,kernel}_str returns for "" (1 on 6.18, 0 on 6.1 and 6.12). */
  readonly emptyStrLen: 0 | 1;
  /** bpf_csum_diff folds its result to 16 bits and takes any sizes (6.13), or returns the 32-bit sum of whole words. */
  readonly csumDiffFolded: boolean;
  /** XDP test runs: ctx_in's data_end may end the linear part before the data's end (6.18), or must equal it. */
  readonly xdpLinearFromCtx: boolean;
}

export const DEFAULT_RELEASE = '6.18';

/** Parses "6.12", "6.1.0-28-amd64", "6.18.44-fc-v1272" (what `uname -r` gives) into [major, minor]. */
export function parseRelease(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) throw new InvalidArgumentError(`kernel release ${JSON.stringify(release)} is not of the form "6.12" or "6.12.3-..." (pass what \`uname -r\` prints)`);
  return [Number(m[1]), Number(m[2])];
}

export function kernelBehaviour(release: string = DEFAULT_RELEASE): KernelBehaviour {
  const [major, minor] = parseRelease(release);
  const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);
  const since618 = atLeast(6, 18);
  return {
    release,
    tagHash: since618 ? 'sha256' : 'sha1',
    maxMetalen: since618 ? 255 : 32,
    emptyStrLen: since618 ? 1 : 0,
    xdpLinearFromCtx: since618,
    csumDiffFolded: atLeast(6, 13),
  };
}
