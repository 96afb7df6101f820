/**
 * The hook probes now live in src/features.ts, the one probe module; this file keeps the import
 * path of their importers working until the tree is reorganised.
 */
export * from './features.js';
