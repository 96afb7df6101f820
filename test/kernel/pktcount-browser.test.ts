/**
 * The leaderboard page in a real browser: Debian's chromium, headless, driven by playwright-core,
 * against a running pktcount demo with live traffic. The table shows the flows (TCP and UDP), the
 * numbers change between two reads, the rows move with CSS transitions, the chart draws, and when
 * pktcount restarts on the same port the page reconnects by itself. A screenshot goes to
 * /tmp/pktcount-leaderboard.png for a person to look at.
 *
 * Needs root (the demo) and /usr/bin/chromium (apt-get install chromium); skipped without them
 * except on CI, where both must be there.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { isRoot, onCI } from '../helpers/index.js';
import { sleep, startPktcount, waitFor, type Running } from '../fixtures/pktcount-run.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = '/tmp/pktcount-leaderboard.png';

const skip = onCI ? false : !isRoot ? 'needs root (runs on CI)' : !existsSync(CHROMIUM) ? 'needs chromium (apt-get install chromium)' : false;

interface Row {
  flow: string;
  rank: string;
  packets: number;
  proto: string;
}

// Code run in the page is given as text: this project compiles without the DOM's types.
async function readRows(page: Page): Promise<Row[]> {
  return page.evaluate<Row[]>(`[...document.querySelectorAll('#rows .row:not(.leaving)')].map((r) => ({
    flow: r.dataset.flow || '',
    rank: r.querySelector('.c-rank')?.textContent || '',
    packets: Number((r.querySelector('.c-packets')?.textContent || '').replace(/,/g, '')),
    proto: r.querySelector('.c-proto')?.textContent || '',
  }))`);
}

/**
 * Waits until `expr` is true in the page. Evaluated from outside (DevTools protocol), not with
 * page.waitForFunction, which would need 'unsafe-eval' that the page's CSP rightly forbids.
 */
async function waitInPage(page: Page, what: string, expr: string, ms: number): Promise<void> {
  await waitFor(what, () => page.evaluate<boolean>(expr), ms, 100);
}

/** Pixels of the chart that are clearly coloured (lines), not background or grid. */
const CHART_PIXELS = `(() => {
  const canvas = document.querySelector('#chart');
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const max = Math.max(d[i], d[i + 1], d[i + 2]);
    const min = Math.min(d[i], d[i + 1], d[i + 2]);
    if (d[i + 3] > 200 && max - min > 60) n++;
  }
  return n;
})()`;

describe('pktcount leaderboard in chromium', { skip }, () => {
  let p: Running | undefined;
  let ctx: BrowserContext | undefined;
  let profile = '';
  const pageErrors: string[] = [];

  before(async () => {
    profile = mkdtempSync(join(tmpdir(), 'bpfkit-chromium-'));
    p = await startPktcount(['--interval', '1s', '--listen', '127.0.0.1:0', '--quiet']);
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 900 },
    });
  });

  after(async () => {
    await ctx?.close();
    await p?.stop('SIGINT');
    rmSync(profile, { recursive: true, force: true });
  });

  it('at 1280 px wide, every source address and port shows in full', async () => {
    const page = await ctx!.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    try {
      await page.goto(p!.url!);
      await page.waitForSelector('#status.live', { timeout: 10_000 });
      await waitInPage(page, 'five rows', `document.querySelectorAll('#rows .row').length >= 5`, 15_000);
      // The demo's clients use ephemeral (5-digit) source ports: the case that used to be cut.
      await waitInPage(page, 'a row with a 5-digit source port',
        `[...document.querySelectorAll('#rows .row .c-src .port')].some((e) => /^:\\d{5}$/.test(e.textContent))`, 30_000);
      const cells = await page.evaluate<{ shown: string; full: string; clipped: boolean }[]>(`[...document.querySelectorAll('#rows .row .c-src')].map((c) => {
        const addr = c.querySelector('.addr');
        const port = c.querySelector('.port');
        const r = c.getBoundingClientRect();
        const pr = port.getBoundingClientRect();
        return {
          shown: addr.textContent + port.textContent, full: c.title,
          clipped: addr.scrollWidth > addr.clientWidth || c.scrollWidth > c.clientWidth || pr.right > r.right + 0.5,
        };
      })`);
      assert.ok(cells.length >= 5);
      for (const c of cells) {
        // The row's title is the whole flow: "<addr>:<port> => :<dport> (<proto>)".
        assert.equal(c.full.slice(0, c.full.indexOf(' => ')), c.shown, 'the row shows its whole flow source');
        assert.equal(c.clipped, false, `${c.full} is not cut at 1280 px`);
      }
    } finally {
      await page.close();
    }
  });

  it('shows the flows live, re-sorts with transitions, draws the chart, reconnects', async () => {
    const page = await ctx!.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // Reconnect attempts while pktcount is down are expected to fail; anything else is a bug.
      if (m.type() === 'error' && !/^WebSocket connection to .* failed/.test(m.text())) pageErrors.push(m.text());
    });
    await page.goto(p!.url!);
    assert.equal(await page.title().then((t) => t.startsWith('pktcount')), true);

    await page.waitForSelector('#status.live', { timeout: 10_000 });
    await waitInPage(page, 'five rows', `document.querySelectorAll('#rows .row').length >= 5`, 15_000);
    assert.equal(await page.textContent('#iface'), p!.iface, 'the page names the interface');
    assert.match((await page.textContent('#uptime')) ?? '', /^\d+s$|^\d+m \d\ds$/);

    // Both protocols show up in the table within a while (DNS-like UDP is quieter than the TCP).
    const protos = await waitFor('TCP and UDP rows', async () => {
      const set = new Set((await readRows(page)).map((r) => r.proto));
      return set.has('tcp') && set.has('udp') ? set : undefined;
    }, 30_000, 250);
    assert.ok(protos.has('tcp') && protos.has('udp'));

    const first = await readRows(page);
    assert.ok(first.length >= 5 && first.length <= 10, `top 10 rows (${first.length})`);
    assert.deepEqual(first.map((r) => r.rank).sort((a, b) => Number(a) - Number(b)), first.map((_, i) => String(i + 1)));
    const total1 = Number(((await page.textContent('#packets')) ?? '').replace(/,/g, ''));
    await sleep(3000);
    const second = await readRows(page);
    const total2 = Number(((await page.textContent('#packets')) ?? '').replace(/,/g, ''));
    assert.ok(total2 > total1, `the packet total grows (${total1} -> ${total2})`);
    const before = new Map(first.map((r) => [r.flow, r.packets]));
    const grew = second.filter((r) => before.has(r.flow) && r.packets > before.get(r.flow)!);
    const changed = grew.length > 0 || second.some((r) => !before.has(r.flow));
    assert.ok(changed, 'the numbers in the table change between two reads');

    // Rows are placed with transforms that transition: re-sorting glides.
    const transition = await page.evaluate<string>(`getComputedStyle(document.querySelector('#rows .row')).transitionProperty`);
    assert.match(transition, /transform/);

    // The chart has drawn lines (pixels that are neither background nor grid).
    const coloured = await page.evaluate<number>(CHART_PIXELS);
    assert.ok(coloured > 200, `the chart drew its lines (${coloured} coloured pixels)`);
    assert.ok((await page.$$('#legend li')).length >= 3, 'a legend for the top sources');

    // The picture for a person: just after an update has settled (rows glide for 650 ms).
    const stamp = await page.textContent('#updated');
    await waitFor('the next update', async () => (await page.textContent('#updated')) !== stamp, 5000, 50);
    await sleep(800);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Stop pktcount: the page says so; start it again on the same port: the page comes back.
    const port = new URL(p!.url!).port;
    await p!.stop('SIGINT');
    await page.waitForSelector('#status.down', { timeout: 10_000 });
    p = await startPktcount(['--interval', '500ms', '--listen', `127.0.0.1:${port}`, '--quiet']);
    await waitInPage(page, 'the page to reconnect to the new pktcount',
      `document.querySelector('#iface')?.textContent === ${JSON.stringify(p.iface)} && document.querySelector('#status.live') !== null`, 20_000);
    assert.deepEqual(pageErrors, [], 'no errors in the page');
  });

  it('--aggregate src and dport: the fields summed away show as *, never 0', async () => {
    const cellsOf = (page: Page) => page.evaluate<{ addr: string; port: string; dport: string }[]>(
      `[...document.querySelectorAll('#rows .row:not(.leaving)')].map((r) => ({
        addr: r.querySelector('.c-src .addr')?.textContent || '',
        port: r.querySelector('.c-src .port')?.textContent || '',
        dport: r.querySelector('.c-dst .dport')?.textContent || '',
      }))`);
    for (const aggregate of ['src', 'dport'] as const) {
      const run = await startPktcount(['--aggregate', aggregate, '--interval', '500ms', '--listen', '127.0.0.1:0', '--quiet']);
      const page = await ctx!.newPage();
      try {
        await page.goto(run.url!);
        await page.waitForSelector('#status.live', { timeout: 10_000 });
        await waitInPage(page, 'two rows', `document.querySelectorAll('#rows .row').length >= 2`, 30_000);
        const cells = await cellsOf(page);
        for (const c of cells) {
          assert.equal(c.port, ':*', `${aggregate}: the source port is summed away (${JSON.stringify(c)})`);
          if (aggregate === 'src') {
            assert.equal(c.dport, ':*', `src: the destination port is summed away (${JSON.stringify(c)})`);
            assert.match(c.addr, /^(10\.77\.0\.\d+|\[fd77::[0-9a-f]+\])$/, 'src: rows are the demo clients\' addresses');
          } else {
            assert.equal(c.addr, '*', `dport: the source is summed away (${JSON.stringify(c)})`);
            assert.match(c.dport, /^:\d+$/, 'dport: rows are destination ports');
          }
        }
      } finally {
        await page.close();
        await run.stop('SIGINT');
      }
    }
  });
});
