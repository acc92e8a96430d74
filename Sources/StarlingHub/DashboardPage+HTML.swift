extension DashboardPage {
    /// The page source. `{{NONCE}}` marks where the per-response CSP nonce goes. Data only ever enters the DOM
    /// through `textContent` and `setAttribute` on SVG geometry, never through `innerHTML`.
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Starling hub</title>
<style nonce="{{NONCE}}">
:root {
  --bg: #f4f6f9; --panel: #ffffff; --ink: #1c2430; --muted: #667085; --line: #e2e6ec;
  --accent: #2f6fde; --ok: #1f9d55; --warn: #d98b0b; --bad: #d64545; --changed: #fff1c2; --changed-ink: #7a5300;
  --mono: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
header.top { display: flex; align-items: center; gap: 24px; padding: 12px 24px; background: #16202e; color: #e8edf5; }
header.top h1 { font-size: 18px; margin: 0; letter-spacing: .5px; }
header.top h1 span { color: #7fb0ff; }
.kpis { display: flex; gap: 22px; flex: 1; }
.kpi { display: flex; flex-direction: column; }
.kpi b { font-size: 17px; font-variant-numeric: tabular-nums; }
.kpi small { color: #9aa8bb; font-size: 11px; text-transform: uppercase; letter-spacing: .6px; }
.session { display: flex; gap: 8px; align-items: center; font-size: 12px; color: #9aa8bb; }
button { font: inherit; border: 1px solid var(--line); background: #fff; color: var(--ink); border-radius: 6px;
  padding: 5px 12px; cursor: pointer; }
button:hover { border-color: var(--accent); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--bad); }
header.top button { background: transparent; color: #e8edf5; border-color: #3a4a60; }
main { padding: 18px 24px 40px; display: grid; gap: 18px; max-width: 1600px; }
section.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px; }
section.panel > h2 { margin: 0 0 10px; font-size: 15px; display: flex; align-items: center; gap: 12px; }
section.panel > h2 .hint { font-weight: normal; color: var(--muted); font-size: 12px; }
.spacer { flex: 1; }
table.grid { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.grid th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; border-bottom: 1px solid var(--line);
  padding: 6px 8px; white-space: nowrap; }
table.grid td { padding: 6px 8px; border-bottom: 1px solid #f0f2f5; vertical-align: top; }
table.grid td.num, table.grid th.num { text-align: right; }
td.err { color: var(--bad); max-width: 320px; overflow-wrap: anywhere; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.pill.healthy { background: #e3f6ea; color: var(--ok); }
.pill.lagging { background: #fdf1dc; color: var(--warn); }
.pill.silent { background: #fbe4e4; color: var(--bad); }
.pill.stuck { background: #fbe4e4; color: var(--bad); }
.pill.open { background: #fbe4e4; color: var(--bad); }
.pill.auto { background: #eef1f5; color: var(--muted); }
.pill.resolved { background: #e3f6ea; color: var(--ok); }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.chart h3 { margin: 0 0 4px; font-size: 13px; color: var(--muted); font-weight: 600; }
.chart svg { width: 100%; height: 200px; display: block; }
.chart svg text { font-size: 10px; fill: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.conflicts { display: grid; gap: 12px; }
article.conflict { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
article.conflict > .meta { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; padding: 8px 12px;
  background: #f8f9fb; border-bottom: 1px solid var(--line); font-size: 13px; }
.meta code, .mono { font-family: var(--mono); font-size: 12px; }
.meta .muted { color: var(--muted); }
.sides { display: grid; grid-template-columns: 1fr 1fr; }
.side { padding: 8px 12px; }
.side + .side { border-left: 1px solid var(--line); }
.side h4 { margin: 0 0 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .5px; color: var(--muted); }
.side.winner h4::after { content: "  ✓ winner"; color: var(--ok); }
.side table { width: 100%; border-collapse: collapse; font-family: var(--mono); font-size: 12px; }
.side td { padding: 2px 6px; border-bottom: 1px dotted #eceff3; overflow-wrap: anywhere; }
.side td.col { color: var(--muted); width: 35%; }
.side tr.changed td { background: var(--changed); color: var(--changed-ink); }
.side .none { color: var(--muted); font-style: italic; }
.actions { display: flex; gap: 8px; align-items: center; padding: 8px 12px; border-top: 1px solid var(--line); }
.actions textarea { width: 100%; min-height: 110px; font-family: var(--mono); font-size: 12px; }
.editor { padding: 0 12px 10px; display: grid; gap: 6px; }
.note { color: var(--muted); }
.message { font-size: 13px; }
.message.bad { color: var(--bad); }
.message.ok { color: var(--ok); }
.banner { padding: 10px 14px; border-radius: 8px; background: #fbe4e4; color: var(--bad); }
.hidden { display: none !important; }
#login { display: flex; gap: 8px; align-items: center; }
#login input { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; width: 320px; }
pre.json { background: #f8f9fb; border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow: auto;
  font-family: var(--mono); font-size: 12px; max-height: 320px; }
select { font: inherit; padding: 3px 6px; border-radius: 6px; border: 1px solid var(--line); background: #fff; }
section.panel > h2 select, section.panel > h2 button { font-size: 13px; font-weight: normal; }
</style>
</head>
<body>
<header class="top">
  <h1>Starling <span>hub</span></h1>
  <div class="kpis">
    <div class="kpi"><b id="kpi-head">–</b><small>head seq</small></div>
    <div class="kpi"><b id="kpi-rate">–</b><small>entries / s</small></div>
    <div class="kpi"><b id="kpi-regions">–</b><small>regions healthy</small></div>
    <div class="kpi"><b id="kpi-open">–</b><small>open conflicts</small></div>
    <div class="kpi"><b id="kpi-total">–</b><small>conflicts total</small></div>
  </div>
  <div class="session"><span id="updated">not connected</span><button id="logout" type="button">Sign out</button></div>
</header>
<main>
  <div id="banner" class="banner hidden"></div>
  <section class="panel hidden" id="login-panel">
    <h2>Admin token</h2>
    <form id="login">
      <input id="token-input" type="password" autocomplete="off" placeholder="the hub's admin_token">
      <button class="primary" type="submit">Connect</button>
      <span class="note">Kept in this tab's session storage only; sent as a bearer token to this hub.</span>
    </form>
  </section>
  <section class="panel" id="regions-panel">
    <h2>Regions <span class="hint" id="regions-hint">healthy: heard from within 60 s and under 10 s behind</span></h2>
    <table class="grid" id="regions">
      <thead><tr><th>Region</th><th>State</th><th class="num">Cursor</th><th class="num">Lag (entries)</th>
        <th class="num">Lag (s)</th><th class="num">Outbox</th><th class="num">Apply lag (s)</th>
        <th>Last push</th><th>Last pull</th><th>Last error</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="panel">
    <h2>Throughput and lag <span class="hint">sampled from /v1/status every 2 s while this page is open</span></h2>
    <div class="charts">
      <div class="chart"><h3>Log throughput (entries / s)</h3><svg id="chart-rate" viewBox="0 0 640 200"
        preserveAspectRatio="none"></svg><div class="legend" id="legend-rate"></div></div>
      <div class="chart"><h3>Replication lag per region (s)</h3><svg id="chart-lag" viewBox="0 0 640 200"
        preserveAspectRatio="none"></svg><div class="legend" id="legend-lag"></div></div>
    </div>
  </section>
  <section class="panel">
    <h2>Conflicts <span class="hint" id="conflicts-hint"></span><span class="spacer"></span>
      <select id="conflict-filter"><option value="open">open</option><option value="all">all (newest 50)</option></select>
      <button id="conflicts-refresh" type="button">Refresh</button></h2>
    <div id="conflicts-message" class="message"></div>
    <div class="conflicts" id="conflicts"></div>
  </section>
  <section class="panel">
    <h2>Reconciliation</h2>
    <div id="reconcile"><p class="note">Loading…</p></div>
  </section>
</main>
<script nonce="{{NONCE}}">
'use strict';
const POLL_MS = 2000, CONFLICT_POLL_MS = 10000, RECONCILE_POLL_MS = 30000, HISTORY = 150;
const SILENT_AFTER_S = 60, LAGGING_AFTER_S = 10;
const PALETTE = ['#2f6fde', '#d64545', '#1f9d55', '#d98b0b', '#8e44ad', '#0f9bb5', '#c2185b', '#5d6d7e',
  '#7cb342', '#6d4c41'];
const TOKEN_KEY = 'starling.session';
const $ = (id) => document.getElementById(id);
const samples = [];
let editing = false;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

// The token: taken once from #token=… (then removed from the address bar), else typed in; per tab only.
function takeFragmentToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
}
const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

function showLogin(reason) {
  $('login-panel').classList.remove('hidden');
  setBanner(reason);
}

function setBanner(text) {
  $('banner').textContent = text || '';
  $('banner').classList.toggle('hidden', !text);
}

async function api(method, path, body) {
  const headers = { authorization: 'Bearer ' + token() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    return { status: 0, json: null, error: 'hub unreachable: ' + error.message };
  }
  let json = null;
  try { json = await response.json(); } catch (_) { json = null; }
  if (response.status === 401 || response.status === 403) {
    showLogin('The hub refused the admin token (' + response.status + '). Enter it again.');
  }
  return { status: response.status, json, error: json && json.error ? json.error.message : null };
}

function parseTime(text) {
  if (!text) return 0;
  const ms = Date.parse(String(text).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(ms) ? ms : 0;
}

function age(text, now) {
  const ms = parseTime(text);
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function regionState(region, now) {
  if (region.busy) return 'stuck';
  const last = Math.max(parseTime(region.last_push_at), parseTime(region.last_pull_at));
  if (!last || now - last > SILENT_AFTER_S * 1000) return 'silent';
  if ((Number(region.lag_seconds) || 0) > LAGGING_AFTER_S) return 'lagging';
  return 'healthy';
}

const fmt = (value, digits) => value === null || value === undefined ? '–'
  : (typeof value === 'number' ? value.toLocaleString('en-US', { maximumFractionDigits: digits || 0 }) : String(value));

// ---- status, regions, charts ----

async function pollStatus() {
  if (!token()) { showLogin(''); return; }
  const result = await api('GET', '/v1/status');
  if (result.status !== 200 || !result.json) {
    if (result.status !== 401 && result.status !== 403) setBanner(result.error || ('status ' + result.status));
    return;
  }
  setBanner('');
  $('login-panel').classList.add('hidden');
  const status = result.json, now = Date.now();
  samples.push({ t: now, head: Number(status.head) || 0,
    lags: Object.fromEntries((status.regions || []).map((r) => [r.name, Number(r.lag_seconds) || 0])) });
  while (samples.length > HISTORY) samples.shift();
  renderKPIs(status, now);
  renderRegions(status.regions || [], now);
  renderCharts();
  $('updated').textContent = 'updated ' + new Date(now).toLocaleTimeString('en-GB');
}

function currentRate() {
  if (samples.length < 2) return null;
  const a = samples[samples.length - 2], b = samples[samples.length - 1];
  return b.t > a.t ? Math.max(0, (b.head - a.head) * 1000 / (b.t - a.t)) : null;
}

function renderKPIs(status, now) {
  const regions = status.regions || [];
  $('kpi-head').textContent = fmt(status.head);
  $('kpi-rate').textContent = fmt(currentRate(), 1);
  $('kpi-regions').textContent = regions.filter((r) => regionState(r, now) === 'healthy').length + ' / ' + regions.length;
  $('kpi-open').textContent = fmt(status.conflicts ? status.conflicts.open : null);
  $('kpi-total').textContent = fmt(status.conflicts ? status.conflicts.total : null);
}

function renderRegions(regions, now) {
  const body = $('regions').tBodies[0];
  const rows = regions.map((region) => {
    const row = el('tr');
    row.dataset.region = region.name;
    const state = regionState(region, now);
    const cells = [
      el('td', 'name', region.name), null,
      el('td', 'num', fmt(region.cursor)), el('td', 'num', fmt(region.lag_entries)),
      el('td', 'num', fmt(Number(region.lag_seconds), 1)), el('td', 'num', fmt(region.outbox_depth)),
      el('td', 'num', region.apply_lag_seconds ?? region.apply_lag ?? '–'),
      el('td', null, age(region.last_push_at, now)), el('td', null, age(region.last_pull_at, now)),
      el('td', 'err', [region.busy ? region.busy.what + ' running for ' + fmt(Number(region.busy.seconds)) + ' s'
        : '', region.last_error || ''].filter(Boolean).join(' · ')),
    ];
    const stateCell = el('td');
    stateCell.append(el('span', 'pill ' + state, state));
    cells[1] = stateCell;
    row.append(...cells);
    return row;
  });
  body.replaceChildren(...rows);
  if (regions.length === 0) {
    const row = el('tr'), cell = el('td', 'note', 'No regions configured.');
    cell.colSpan = 10;
    row.append(cell);
    body.append(row);
  }
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 4, 6, 8, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

// Draws line series [{name, color, points: [[t, v]]}] into an SVG of viewBox 640 × 200.
function drawChart(target, legend, series, unit) {
  const W = 640, H = 200, L = 48, R = 10, T = 10, B = 22;
  const points = series.flatMap((s) => s.points);
  const now = Date.now();
  const span = Math.max(60000, points.length ? now - Math.min(...points.map((p) => p[0])) : 60000);
  const max = niceMax(Math.max(0, ...points.map((p) => p[1])));
  const x = (t) => L + (W - L - R) * (1 - (now - t) / span);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const nodes = [];
  for (let i = 0; i <= 4; i++) {
    const value = max * i / 4, yy = y(value);
    nodes.push(svg('line', { x1: L, x2: W - R, y1: yy, y2: yy, stroke: i ? '#eef0f4' : '#c9ced6', 'stroke-width': 1 }));
    const label = svg('text', { x: L - 6, y: yy + 3, 'text-anchor': 'end' });
    label.textContent = fmt(value, value < 1 ? 2 : (value < 10 ? 1 : 0)) + (i === 4 ? ' ' + unit : '');
    nodes.push(label);
  }
  for (let i = 0; i <= 4; i++) {
    const seconds = Math.round(span / 1000 * (4 - i) / 4);
    const label = svg('text', { x: L + (W - L - R) * i / 4, y: H - 6, 'text-anchor': i === 0 ? 'start' : (i === 4 ? 'end' : 'middle') });
    label.textContent = seconds === 0 ? 'now' : (seconds >= 120 ? '−' + Math.round(seconds / 60) + ' min' : '−' + seconds + ' s');
    nodes.push(label);
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
    nodes.push(svg('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
    const last = s.points[s.points.length - 1];
    nodes.push(svg('circle', { cx: x(last[0]), cy: y(last[1]), r: 3, fill: s.color }));
  }
  if (points.length === 0) {
    const empty = svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' });
    empty.textContent = 'collecting samples…';
    nodes.push(empty);
  }
  target.replaceChildren(...nodes);
  legend.replaceChildren(...series.map((s) => {
    const item = el('span'), swatch = el('i');
    swatch.setAttribute('data-color', s.color);
    item.append(swatch, s.name);
    return item;
  }));
  // Swatch colours through the CSSOM (allowed by the CSP), not style attributes (which are not).
  for (const swatch of legend.querySelectorAll('i')) swatch.style.background = swatch.getAttribute('data-color');
}

function renderCharts() {
  const rate = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    if (b.t > a.t) rate.push([b.t, Math.max(0, (b.head - a.head) * 1000 / (b.t - a.t))]);
  }
  drawChart($('chart-rate'), $('legend-rate'), [{ name: 'head seq rate', color: PALETTE[0], points: rate }], '/s');
  const names = samples.length ? Object.keys(samples[samples.length - 1].lags) : [];
  const lag = names.map((name, i) => ({ name, color: PALETTE[i % PALETTE.length],
    points: samples.filter((s) => name in s.lags).map((s) => [s.t, s.lags[name]]) }));
  drawChart($('chart-lag'), $('legend-lag'), lag, 's');
}

// ---- conflicts ----

function valueText(value) {
  if (value === null) return 'NULL';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function sideTable(row, other, keyColumns) {
  if (!row) return el('div', 'none', 'no row image (deleted)');
  const table = el('table');
  const columns = [...new Set([...keyColumns, ...Object.keys(row), ...Object.keys(other || {})])];
  for (const column of columns) {
    const tr = el('tr');
    const has = Object.prototype.hasOwnProperty.call(row, column);
    const changed = !other || !has || !Object.prototype.hasOwnProperty.call(other, column)
      || JSON.stringify(row[column]) !== JSON.stringify(other[column]);
    if (changed && other) tr.className = 'changed';
    const value = el('td', has ? null : 'none', has ? valueText(row[column]) : '(absent)');
    tr.append(el('td', 'col', column), value);
    table.append(tr);
  }
  return table;
}

function conflictCard(conflict) {
  const card = el('article', 'conflict');
  card.dataset.conflict = String(conflict.id);
  const meta = el('div', 'meta');
  meta.append(el('b', null, '#' + conflict.id), el('code', null, conflict.table), el('code', null, JSON.stringify(conflict.key)),
    el('span', 'muted', 'policy ' + conflict.policy), el('span', 'pill ' + conflict.status, conflict.status),
    el('span', 'muted', 'winner: ' + conflict.winner), el('span', 'muted', conflict.detected_at || ''));
  const keyColumns = Object.keys(conflict.key || {});
  const current = conflict.current || {}, incoming = conflict.incoming || {};
  const sides = el('div', 'sides');
  const left = el('section', 'side current' + (conflict.winner === 'current' ? ' winner' : ''));
  left.append(el('h4', null, 'Current · ' + current.origin + ' @ seq ' + current.seq + ' · ' + current.op),
    sideTable(current.row, incoming.row, keyColumns));
  const right = el('section', 'side incoming' + (conflict.winner === 'incoming' ? ' winner' : ''));
  right.append(el('h4', null, 'Incoming · ' + incoming.origin + ' · ' + incoming.id + ' · base ' + incoming.base + ' · '
    + incoming.op), sideTable(incoming.row, current.row, keyColumns));
  sides.append(left, right);
  card.append(meta, sides);
  if (conflict.status === 'open') card.append(...resolveControls(conflict));
  return card;
}

function resolveControls(conflict) {
  const actions = el('div', 'actions');
  const editor = el('div', 'editor hidden');
  const text = el('textarea');
  text.spellcheck = false;
  text.value = JSON.stringify(conflict.incoming.row || conflict.current.row || conflict.key, null, 2);
  const submit = el('button', 'primary', 'Resolve with this row');
  const cancel = el('button', null, 'Cancel');
  editor.append(text, el('div'));
  editor.lastChild.append(submit, ' ', cancel);
  const pickCurrent = el('button', null, 'Keep current');
  const pickIncoming = el('button', 'primary', 'Take incoming');
  const edit = el('button', null, 'Edit row…');
  const message = el('span', 'message');
  for (const button of [pickCurrent, pickIncoming, edit, submit, cancel]) button.type = 'button';
  pickCurrent.addEventListener('click', () => resolve(conflict.id, { pick: 'current' }, message));
  pickIncoming.addEventListener('click', () => resolve(conflict.id, { pick: 'incoming' }, message));
  edit.addEventListener('click', () => { editor.classList.remove('hidden'); editing = true; text.focus(); });
  cancel.addEventListener('click', () => { editor.classList.add('hidden'); editing = false; });
  submit.addEventListener('click', () => {
    let row;
    try { row = JSON.parse(text.value); } catch (error) {
      message.className = 'message bad';
      message.textContent = 'not valid JSON: ' + error.message;
      return;
    }
    resolve(conflict.id, { row }, message);
  });
  actions.append(pickCurrent, pickIncoming, edit, message);
  return [actions, editor];
}

async function resolve(id, body, message) {
  message.className = 'message';
  message.textContent = 'resolving…';
  const result = await api('POST', '/v1/conflicts/' + encodeURIComponent(id) + '/resolve', body);
  if (result.status === 200) {
    editing = false;
    const seq = result.json && result.json.entry ? result.json.entry.seq : '?';
    $('conflicts-message').className = 'message ok';
    $('conflicts-message').textContent = 'Conflict #' + id + ' resolved (resolution entry seq ' + seq + ').';
    await loadConflicts();
    await pollStatus();
  } else {
    message.className = 'message bad';
    message.textContent = result.error || ('status ' + result.status);
  }
}

async function loadConflicts() {
  if (!token() || editing) return;
  const filter = $('conflict-filter').value;
  const result = await api('GET', '/v1/conflicts?status=' + filter + '&limit=1000');
  if (result.status !== 200 || !result.json) {
    if (result.status !== 401 && result.status !== 403) {
      $('conflicts-message').className = 'message bad';
      $('conflicts-message').textContent = result.error || ('status ' + result.status);
    }
    return;
  }
  const all = result.json.conflicts || [];
  const shown = all.slice(-50).reverse();
  $('conflicts-hint').textContent = all.length === 0 ? ''
    : (shown.length < all.length ? 'newest ' + shown.length + ' of ' + all.length : String(all.length));
  const list = $('conflicts');
  if (shown.length === 0) {
    list.replaceChildren(el('p', 'note', filter === 'open' ? 'No open conflicts.' : 'No conflicts recorded.'));
    return;
  }
  list.replaceChildren(...shown.map(conflictCard));
}

// ---- reconciliation ----

async function loadReconcile() {
  if (!token()) return;
  const target = $('reconcile');
  const result = await api('GET', '/v1/reconcile/latest');
  if (result.status === 404 || result.status === 405) {
    target.replaceChildren(el('p', 'note', 'No reconciliation yet.'));
    return;
  }
  if (result.status !== 200 || !result.json) {
    target.replaceChildren(el('p', 'message bad', result.error || ('status ' + result.status)));
    return;
  }
  const pre = el('pre', 'json', JSON.stringify(result.json, null, 2));
  target.replaceChildren(pre);
}

// ---- start ----

function start() {
  takeFragmentToken();
  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-input').value = '';
    setBanner('');
    refreshAll();
  });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('conflicts').replaceChildren();
    showLogin('Signed out.');
  });
  $('conflict-filter').addEventListener('change', () => { editing = false; loadConflicts(); });
  $('conflicts-refresh').addEventListener('click', () => { editing = false; loadConflicts(); });
  refreshAll();
  setInterval(pollStatus, POLL_MS);
  setInterval(loadConflicts, CONFLICT_POLL_MS);
  setInterval(loadReconcile, RECONCILE_POLL_MS);
}

async function refreshAll() {
  await pollStatus();
  await Promise.all([loadConflicts(), loadReconcile()]);
}

start();
</script>
</body>
</html>
"""#
}
