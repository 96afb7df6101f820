/**
 * The glob patterns of multi-probe sections (`kprobe.multi/tcp_*`, `uprobe.multi/<bin>:fn_?`):
 * `*` matches any run of characters, `?` exactly one, everything else itself, as libbpf matches
 * kernel and ELF symbol names. No character classes or escapes: symbol names have no use for them.
 */

/** True when the text has a wildcard, so it names a set of symbols rather than one. */
export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** Whether `name` matches `pattern` as a whole. Iterative, with one backtrack point per `*`. */
export function globMatch(name: string, pattern: string): boolean {
  let n = 0;
  let p = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = p++;
      starN = n;
    } else if (c !== undefined && (c === '?' || c === name[n])) {
      p++;
      n++;
    } else if (starP >= 0) {
      // Let the last '*' take one more character and retry from there.
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
