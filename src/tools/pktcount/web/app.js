// pktcount leaderboard: live over the websocket at /ws (reconnecting by itself), a ranked table
// whose rows glide to their new places when the ranking changes, and a hand-drawn canvas chart of
// packets per second for the top sources. No libraries: the page must work without the internet.
// Every value from the server is put in with textContent, never as HTML.

const WINDOW_MS = 120_000;
const MIN_WINDOW_MS = 30_000;
const SMOOTH = 3;
const MAX_POINTS = 600;
const CHART_SERIES = 5;
const PALETTE = ['#4cc9f0', '#f7a8ff', '#3ddc97', '#ffb547', '#ff5d73', '#a78bfa', '#7aa2ff', '#f4f482'];

const $ = (id) => document.getElementById(id);

const state = {
  snapshot: null,
  receivedAt: 0,
  /** [{ t, total, sources: { src: rate } }], oldest first */
  history: [],
  rows: new Map(),
  colors: new Map(),
  ws: null,
  retry: 0,
  retryTimer: 0,
  lastMessage: 0,
};

// ---- formatting --------------------------------------------------------------------------------

const nf = new Intl.NumberFormat('en-US');

function fmtInt(n) {
  return nf.format(Math.round(n));
}

function fmtRate(r) {
  if (r >= 100) return nf.format(Math.round(r));
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(1);
}

function fmtCompact(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return fmtInt(n);
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (x) => String(x).padStart(2, '0');
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(sec)}s`;
  if (m > 0) return `${m}m ${pad(sec)}s`;
  return `${sec}s`;
}

function endpoint(src, port) {
  return src.includes(':') ? `[${src}]:${port}` : `${src}:${port}`;
}

function flowId(e) {
  return `${e.proto}|${e.src}|${e.srcPort}|${e.dstPort}`;
}

function colorOf(src) {
  let c = state.colors.get(src);
  if (!c) {
    const used = new Set(state.colors.values());
    c = PALETTE.find((p) => !used.has(p));
    if (!c) {
      let h = 0;
      for (const ch of src) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
      c = PALETTE[h % PALETTE.length];
    }
    state.colors.set(src, c);
  }
  return c;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- connection --------------------------------------------------------------------------------

function setStatus(kind, text) {
  const s = $('status');
  s.className = `status ${kind}`;
  $('status-text').textContent = text;
  document.body.classList.toggle('offline', kind === 'down' || kind === 'connecting');
}

function connect() {
  clearTimeout(state.retryTimer);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/ws`);
  } catch {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  setStatus('connecting', state.snapshot ? 'reconnecting…' : 'connecting…');
  ws.addEventListener('open', () => {
    state.retry = 0;
    setStatus('live', 'live');
  });
  ws.addEventListener('message', (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg && msg.type === 'snapshot') onSnapshot(msg);
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    state.ws = null;
    scheduleReconnect();
  });
  ws.addEventListener('error', () => {
    // 'close' follows and schedules the retry.
  });
}

function scheduleReconnect() {
  const delay = Math.min(500 * 2 ** state.retry, 5000);
  state.retry++;
  setStatus('down', `disconnected, retrying in ${Math.ceil(delay / 1000)}s`);
  state.retryTimer = setTimeout(connect, delay);
}

// ---- snapshots ---------------------------------------------------------------------------------

function onSnapshot(s) {
  state.snapshot = s;
  state.receivedAt = Date.now();
  state.lastMessage = state.receivedAt;
  const t = Date.parse(s.time);
  if (Array.isArray(s.history)) {
    state.history = s.history.filter((p) => p && typeof p.t === 'number').slice(-MAX_POINTS);
  } else {
    const sources = {};
    for (const src of s.sources || []) sources[src.src] = src.rate;
    const last = state.history[state.history.length - 1];
    if (!last || last.t < t) state.history.push({ t, total: s.rates ? s.rates.packets : 0, sources });
    if (state.history.length > MAX_POINTS) state.history.splice(0, state.history.length - MAX_POINTS);
  }
  if (state.ws) setStatus('live', 'live');
  renderFacts(s);
  renderRows(s);
  renderLegend(s);
}

function renderFacts(s) {
  const t = s.totals || {};
  $('iface').textContent = s.iface || '–';
  $('mode').textContent = `${s.demo ? 'demo · ' : ''}XDP ${s.mode} mode`;
  $('mode').title = s.mode === 'auto' ? 'the kernel chose the XDP mode (native where the driver has it)' : '';
  $('started').textContent = s.startedAt ? `since ${new Date(s.startedAt).toLocaleTimeString()}` : '';
  $('packets').textContent = fmtInt(t.packets || 0);
  $('rate').textContent = `${fmtRate(s.rates ? s.rates.packets : 0)} packets/s`;
  $('flows').textContent = fmtInt(s.flows || 0);
  $('capacity').textContent = `of ${fmtCompact(s.maxEntries || 0)} the table holds`;
  $('excluded').textContent = fmtInt(t.excluded || 0);
  $('excluded-list').textContent = s.excluded && s.excluded.length ? s.excluded.join(', ') : 'no exclusions';
  $('other').textContent = fmtInt((t.nonIp || 0) + (t.otherL4 || 0));
  $('other-note').textContent = `${fmtInt(t.nonIp || 0)} non-IP · ${fmtInt(t.otherL4 || 0)} other IP`;
  $('updated').textContent = `updated ${new Date(s.time).toLocaleTimeString()} · every ${s.intervalMs} ms`;
  document.title = `pktcount · ${s.iface} · ${fmtRate(s.rates ? s.rates.packets : 0)}/s`;
  tickUptime();
}

function tickUptime() {
  const s = state.snapshot;
  if (!s) return;
  $('uptime').textContent = fmtDuration(s.uptimeMs + (Date.now() - state.receivedAt));
  if (state.ws && s.intervalMs && Date.now() - state.lastMessage > Math.max(3 * s.intervalMs, 3000)) {
    setStatus('stalled', 'no update lately');
  }
}

function makeRow(e) {
  const row = el('div', 'row entering');
  row.setAttribute('role', 'row');
  const rank = el('span', 'c-rank');
  const src = el('span', 'c-src');
  const swatch = el('span', 'swatch');
  const addr = el('span', 'addr');
  const port = el('span', 'port');
  src.append(swatch, addr, port);
  const dst = el('span', 'c-dst');
  dst.append(el('span', 'arrow', '→'), el('span', 'dport'));
  const proto = el('span', 'c-proto');
  proto.append(el('span', `proto-${e.proto}`, e.proto));
  const packets = el('span', 'c-packets');
  const rate = el('span', 'c-rate');
  const share = el('span', 'c-share');
  share.append(el('span', 'bar'));
  for (const c of [rank, src, dst, proto, packets, rate, share]) c.setAttribute('role', 'cell');
  row.append(rank, src, dst, proto, packets, rate, share);
  const label = endpoint(e.src, e.srcPort);
  const cut = label.lastIndexOf(':');
  addr.textContent = label.slice(0, cut);
  port.textContent = label.slice(cut);
  src.title = `${label} => :${e.dstPort} (${e.proto})`;
  dst.lastChild.textContent = `:${e.dstPort}`;
  row.dataset.flow = flowId(e);
  return { el: row, rank, swatch, packets, rate, bar: share.firstChild, lastPackets: -1, lastIndex: -1 };
}

function renderRows(s) {
  const box = $('rows');
  const rowH = parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--row-h')) || 44;
  const entries = s.entries || [];
  const max = entries.reduce((m, e) => Math.max(m, e.packets), 0) || 1;
  const seen = new Set();
  const charted = new Set(chartSources(s));
  entries.forEach((e, i) => {
    const id = flowId(e);
    seen.add(id);
    let r = state.rows.get(id);
    const fresh = !r || r.leaving;
    if (!r || r.leaving) {
      if (r) r.el.remove();
      r = makeRow(e);
      state.rows.set(id, r);
      r.el.style.transform = `translateY(${i * rowH}px)`;
      box.append(r.el);
      // Let the browser place it below the table first, then glide in.
      requestAnimationFrame(() => requestAnimationFrame(() => r.el.classList.remove('entering')));
    }
    r.rank.textContent = String(i + 1);
    if (r.lastPackets !== e.packets) {
      r.packets.textContent = fmtInt(e.packets);
      if (r.lastPackets >= 0) {
        r.packets.classList.remove('bump');
        void r.packets.offsetWidth;
        r.packets.classList.add('bump');
      }
      r.lastPackets = e.packets;
    }
    r.rate.textContent = `${fmtRate(e.rate)}/s`;
    r.bar.style.width = `${Math.max(2, (e.packets / max) * 100)}%`;
    r.swatch.style.background = charted.has(e.src) ? colorOf(e.src) : 'transparent';
    if (!fresh && r.lastIndex >= 0 && i < r.lastIndex) {
      // A row that climbed glows for a moment.
      r.el.classList.add('up');
      clearTimeout(r.flash);
      r.flash = setTimeout(() => r.el.classList.remove('up'), 900);
    }
    r.lastIndex = i;
    r.el.style.transform = `translateY(${i * rowH}px)`;
    r.el.style.zIndex = String(1000 - i);
  });
  for (const [id, r] of state.rows) {
    if (seen.has(id) || r.leaving) continue;
    // A row that dropped out of the top fades where it is, under the rows moving in.
    r.leaving = true;
    r.el.classList.add('leaving');
    r.el.style.zIndex = '0';
    setTimeout(() => {
      if (state.rows.get(id) === r) state.rows.delete(id);
      r.el.remove();
    }, 350);
  }
  box.style.height = `${entries.length * rowH}px`;
  $('empty').hidden = entries.length > 0;
}

/** The sources the chart shows: the top ones by packets in the latest snapshot. */
function chartSources(s) {
  return (s.sources || []).slice(0, CHART_SERIES).map((x) => x.src);
}

function renderLegend(s) {
  const ul = $('legend');
  ul.textContent = '';
  for (const src of s.sources ? s.sources.slice(0, CHART_SERIES) : []) {
    const li = el('li');
    const sw = el('span', 'swatch');
    sw.style.background = colorOf(src.src);
    li.append(sw, el('span', 'name', src.src), el('span', 'val', `${fmtRate(src.rate)}/s · ${fmtCompact(src.packets)}`));
    ul.append(li);
  }
}

// ---- chart -------------------------------------------------------------------------------------

function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  return nice * mag;
}

function drawChart() {
  const canvas = $('chart');
  const box = canvas.parentElement.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, Math.floor(box.width));
  const h = Math.max(50, Math.floor(box.height));
  if (canvas.width !== w * dpr || canvas.height !== h * dpr) {
    canvas.width = w * dpr;
    canvas.height = h * dpr;
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);

  const pad = { l: 46, r: 12, t: 10, b: 24 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const s = state.snapshot;
  // Slide smoothly: the right edge is "now" on the server's clock, interpolated between snapshots.
  const serverNow = s ? Date.parse(s.time) + (Date.now() - state.receivedAt) : Date.now();
  // The window grows with the data, from 30 s to 2 minutes, so a fresh page is not mostly empty.
  const first = state.history.length ? state.history[0].t : serverNow;
  const windowMs = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, serverNow - first));
  const t0 = serverNow - windowMs;
  const pts = state.history.filter((p) => p.t >= t0 - 5000);
  const series = s ? chartSources(s) : [];
  // A short moving average: one-second rates of a few packets are jumpy.
  const smooth = (src) => pts.map((p, i) => {
    let sum = 0;
    let n = 0;
    for (let j = Math.max(0, i - SMOOTH + 1); j <= i; j++) {
      sum += pts[j].sources[src] || 0;
      n++;
    }
    return [p.t, sum / n];
  });
  const lines = new Map(series.map((src) => [src, smooth(src)]));

  let max = 1;
  for (const line of lines.values()) for (const [, v] of line) max = Math.max(max, v);
  const step = niceStep(max * 1.1, 4);
  const top = Math.max(step, Math.ceil((max * 1.1) / step) * step);
  const x = (t) => pad.l + ((t - t0) / windowMs) * pw;
  const y = (v) => pad.t + ph - (v / top) * ph;
  const tickSec = [5, 10, 15, 30, 60].find((d) => windowMs / 1000 / d <= 5) || 60;

  // Grid and axes.
  g.font = '11px ui-monospace, "DejaVu Sans Mono", monospace';
  g.fillStyle = '#5b6b80';
  g.strokeStyle = 'rgba(255,255,255,0.06)';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let v = 0; v <= top + 1e-9; v += step) {
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath();
    g.moveTo(pad.l, yy);
    g.lineTo(w - pad.r, yy);
    g.stroke();
    g.fillText(v >= 1000 ? fmtCompact(v) : String(Math.round(v * 10) / 10), pad.l - 6, yy);
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (let sec = 0; sec <= windowMs / 1000; sec += tickSec) {
    const xx = Math.round(x(serverNow - sec * 1000)) + 0.5;
    g.beginPath();
    g.moveTo(xx, pad.t);
    g.lineTo(xx, pad.t + ph);
    g.stroke();
    g.fillText(sec === 0 ? 'now' : `-${sec}s`, Math.min(Math.max(xx, pad.l + 12), w - pad.r - 12), pad.t + ph + 6);
  }

  g.save();
  g.beginPath();
  g.rect(pad.l, pad.t - 2, pw, ph + 4);
  g.clip();
  // One line per top source, with a soft fill under it.
  for (const src of [...series].reverse()) {
    const line = lines.get(src).map(([t, v]) => [x(t), y(v)]);
    if (line.length === 0) continue;
    const color = colorOf(src);
    g.beginPath();
    line.forEach(([px, py], i) => {
      if (i === 0) g.moveTo(px, py);
      else {
        const [qx, qy] = line[i - 1];
        const mx = (qx + px) / 2;
        g.bezierCurveTo(mx, qy, mx, py, px, py);
      }
    });
    g.lineWidth = 2;
    g.strokeStyle = color;
    g.lineJoin = 'round';
    g.stroke();
    const last = line[line.length - 1];
    g.lineTo(last[0], y(0));
    g.lineTo(line[0][0], y(0));
    g.closePath();
    const grad = g.createLinearGradient(0, pad.t, 0, pad.t + ph);
    grad.addColorStop(0, `${color}33`);
    grad.addColorStop(1, `${color}00`);
    g.fillStyle = grad;
    g.fill();
    g.beginPath();
    g.arc(last[0], last[1], 3, 0, Math.PI * 2);
    g.fillStyle = color;
    g.fill();
  }
  g.restore();

  if (pts.length < 2) {
    g.fillStyle = '#5b6b80';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.font = '13px system-ui, sans-serif';
    g.fillText('collecting…', pad.l + pw / 2, pad.t + ph / 2);
  }
}

function frame() {
  if (!document.hidden) drawChart();
  setTimeout(() => requestAnimationFrame(frame), 1000 / 30);
}

// ---- start -------------------------------------------------------------------------------------

function start() {
  setInterval(tickUptime, 1000);
  requestAnimationFrame(frame);
  connect();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
