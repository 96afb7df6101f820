#!/usr/bin/env node
// The public surface of the package, one report per entry point, written with api-extractor from
// the compiled declarations (dist/, so `npm run build` first) into etc/<name>.api.md:
//
//   node scripts/api-report.mjs           regenerate etc/*.api.md (npm run api)
//   node scripts/api-report.mjs --check   exit 1 when an entry's surface differs from its report
//   --etc DIR                             compare with / write the reports in DIR instead of etc/
//   --only NAME                           just the report NAME (e.g. bpfkit, bpfkit-testing)
//
// The reports are committed: a change to what users can import shows up in review as a diff of
// etc/, and the unit test test/unit/api-report.test.ts (CI) fails until the report is regenerated.
// Entries come from package.json "exports", so a new subpath gets a report without editing this.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const check = args.includes('--check');
const etcAt = args.indexOf('--etc');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const ETC = etcAt >= 0 && args[etcAt + 1] ? args[etcAt + 1] : join(ROOT, 'etc');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/** [report name, declaration file] per entry: "." -> bpfkit, "./testing" -> bpfkit-testing. */
const entries = Object.entries(pkg.exports)
  .filter(([, target]) => typeof target === 'object' && typeof target.types === 'string')
  .map(([subpath, target]) => [subpath === '.' ? pkg.name : `${pkg.name}-${subpath.slice(2).replace(/\//g, '-')}`, target.types])
  .filter(([name]) => only === undefined || name === only);
if (entries.length === 0) {
  console.error(`api-report: no entry point named ${only}`);
  process.exit(2);
}

// Where api-extractor writes the report it compares with the committed one.
const TEMP = etcAt >= 0 ? join(ETC, '.temp') : join(ROOT, '.scratch', 'api');
mkdirSync(join(TEMP, 'out'), { recursive: true });
mkdirSync(join(TEMP, 'tmp'), { recursive: true });
mkdirSync(ETC, { recursive: true });

let differs = 0;
for (const [name, types] of entries) {
  const entry = join(ROOT, types);
  if (!existsSync(entry)) {
    console.error(`api-report: ${types} is missing: run \`npm run build\` first`);
    process.exit(2);
  }
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: ROOT,
      newlineKind: 'lf',
      mainEntryPointFilePath: entry,
      compiler: {
        overrideTsconfig: {
          compilerOptions: { target: 'ES2022', lib: ['ES2022', 'ESNext.Disposable'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, types: ['node'] },
          files: [entry],
        },
      },
      // api-extractor writes into TEMP; this script then drops its "(undocumented)" notes and
      // compares with (or writes) ETC itself, so the report holds signatures only.
      apiReport: { enabled: true, reportFileName: `${name}.api.md`, reportFolder: join(TEMP, 'out'), reportTempFolder: join(TEMP, 'tmp') },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: 'warning' } },
        // Release tags (@public/@beta) are not used: every export of an entry point is public.
        extractorMessageReporting: {
          default: { logLevel: 'warning' },
          'ae-missing-release-tag': { logLevel: 'none' },
          'ae-forgotten-export': { logLevel: 'none', addToApiReportFile: true },
          'ae-unresolved-link': { logLevel: 'none' },
          'ae-internal-missing-underscore': { logLevel: 'none' },
          // Comments are test/unit/api-docs.test.ts's business: the report shows signatures only,
          // so a comment edit needs no new report (and branches that only document don't collide).
          'ae-undocumented': { logLevel: 'none', addToApiReportFile: false },
        },
        // The comments are TypeDoc's dialect (checked by TypeDoc, test/unit/api-docs.test.ts).
        tsdocMessageReporting: { default: { logLevel: 'none' } },
      },
    },
    configObjectFullPath: join(ROOT, 'api-extractor.json'),
    packageJsonFullPath: join(ROOT, 'package.json'),
  });
  const result = Extractor.invoke(config, {
    localBuild: true, showVerboseMessages: false,
    messageCallback: (m) => { if (m.logLevel === 'info' || m.logLevel === 'verbose' || String(m.messageId).startsWith('console-api-report')) m.handled = true; },
  });
  if (!result.succeeded) {
    console.error(`api-report: ${name}: api-extractor reported ${result.errorCount} errors, ${result.warningCount} warnings`);
    process.exit(2);
  }
  const report = signaturesOnly(readFileSync(join(TEMP, 'out', `${name}.api.md`), 'utf8'));
  const file = join(ETC, `${name}.api.md`);
  const committed = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const label = name === pkg.name ? pkg.name : `${pkg.name}/${name.slice(pkg.name.length + 1)}`;
  if (check) {
    if (committed !== report) {
      differs++;
      writeFileSync(join(TEMP, `${name}.api.md`), report);
      console.error(`api-report: the public surface of ${label} differs from etc/${name}.api.md: run \`npm run api\` and commit etc/ (the new report is ${join(TEMP, `${name}.api.md`)})`);
    }
  } else {
    if (committed !== report) writeFileSync(file, report);
    console.log(`api-report: etc/${name}.api.md${committed === report ? ' (unchanged)' : ' (updated)'}`);
  }
}

/** The report without api-extractor's "(undocumented)" notes: comments are api-docs.test's business. */
function signaturesOnly(text) {
  return text.replace(/\r\n/g, '\n').replace(/^ *\/\/ \(undocumented\)\n/gm, '').replace(/ \(undocumented\)$/gm, '');
}
process.exit(differs ? 1 : 0);
