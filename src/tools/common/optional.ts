/**
 * The tools' own npm dependencies (ws and prom-client for pktcount) are optionalDependencies of
 * bpfkit: the library does not need them, and `npm install --omit=optional` leaves them out. A
 * tool checks for them before it starts, so their absence is one clear line, not a module-loader
 * stack trace.
 */
import { createRequire } from 'node:module';
import { BpfkitError } from '../../index.js';

export function requireOptional(tool: string, packages: readonly string[]): void {
  const require = createRequire(import.meta.url);
  const missing = packages.filter((p) => {
    try {
      require.resolve(p);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) {
    throw new BpfkitError(
      'ERR_BPFKIT_MISSING_DEPENDENCY',
      `bpfkit ${tool} needs the npm package${missing.length > 1 ? 's' : ''} ${missing.join(' and ')} (optional dependencies of bpfkit, ` +
        `left out by --omit=optional): run \`npm install ${missing.join(' ')}\` beside bpfkit`,
    );
  }
}
