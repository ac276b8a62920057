// The dashboard of wasmlet's admin listener. Every second it reads what the admin API serves
// (GET /wasm/list, /wasm/stats, /logs), turns the counters into rates and draws them; the forms
// call POST /wasm/install, /wasm/update and /wasm/uninstall, as the CLI does. No libraries: the
// page must work on a machine that reaches nothing but this server.
'use strict';

const POLL_MS = 1000;
const HISTORY = 120;  // points per chart: two minutes
const PALETTE = ['#2f6fde', '#e8730c', '#1f8a4c', '#a63fd0', '#c9372c', '#0f9aa8', '#8a6d1f', '#d4409b'];
const STATUS_COLOURS = { '4xx': '#e8730c', '5xx': '#c9372c' };

const state = {
  previous: null,       // the last /wasm/stats answer and when it came
  history: new Map(),   // id -> { rps: [], p50: [], p99: [] }
  errors: { '4xx': [], '5xx': [] },
  colours: new Map(),   // id -> colour, kept while the page lives
  logAfter: 0,
  problemsAfter: 0,
  polls: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'className') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function colourOf(id) {
  if (!state.colours.has(id)) state.colours.set(id, PALETTE[state.colours.size % PALETTE.length]);
  return state.colours.get(id);
}

function push(series, value) {
  series.push(value);
  if (series.length > HISTORY) series.shift();
}

function formatRate(value) {
  if (value === null || value === undefined) return '-';
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(0);
  return value.toFixed(1);
}

// An axis label: at most two decimals, none that are zeros (12.5, 3.75, 50).
function formatTick(value) {
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(Number(value.toFixed(2)));
}

function formatMs(value) {
  if (value === null || value === undefined) return '-';
  if (value >= 100) return value.toFixed(0) + ' ms';
  if (value >= 1) return value.toFixed(1) + ' ms';
  return value.toFixed(2) + ' ms';
}

function formatBytes(bytes) {
  if (!bytes) return '0';
  const mib = bytes / (1024 * 1024);
  return mib >= 10 ? mib.toFixed(0) + ' MiB' : mib.toFixed(1) + ' MiB';
}

// The q-quantile, in ms, of the requests counted between two cumulative histograms: the bucket
// it falls in, interpolated linearly inside it (as Prometheus' histogram_quantile does).
function quantileMs(bounds, before, after, q) {
  if (!after || !after.counts || after.counts.length === 0) return null;
  const total = after.count - (before ? before.count : 0);
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < bounds.length; i++) {
    const count = after.counts[i] - (before && before.counts.length ? before.counts[i] : 0);
    if (count >= rank) {
      const inBucket = count - lowerCount;
      const fraction = inBucket > 0 ? (rank - lowerCount) / inBucket : 1;
      return (lowerBound + (bounds[i] - lowerBound) * fraction) * 1000;
    }
    lowerBound = bounds[i];
    lowerCount = count;
  }
  return bounds[bounds.length - 1] * 1000;  // past the last bound: at least that
}

function sumRequests(byStatus, predicate = () => true) {
  let n = 0;
  for (const [status, count] of Object.entries(byStatus || {})) if (predicate(Number(status))) n += count;
  return n;
}

// Rates per function id over the interval since the previous poll.
function rates(stats, now) {
  const out = new Map();
  const before = state.previous;
  const seconds = before ? (now - before.at) / 1000 : 0;
  const errors = { '4xx': 0, '5xx': 0 };
  for (const [id, traffic] of Object.entries(stats.functions)) {
    const old = before ? before.stats.functions[id] : undefined;
    const delta = (predicate) =>
      sumRequests(traffic.requests_by_status, predicate) - sumRequests(old && old.requests_by_status, predicate);
    const r = { rps: null, p50: null, p99: null, errorsByStatus: {} };
    if (before && seconds > 0) {
      r.rps = delta(() => true) / seconds;
      errors['4xx'] += delta((s) => s >= 400 && s < 500) / seconds;
      errors['5xx'] += delta((s) => s >= 500) / seconds;
      r.p50 = quantileMs(stats.latency_buckets_seconds, old && old.latency, traffic.latency, 0.5);
      r.p99 = quantileMs(stats.latency_buckets_seconds, old && old.latency, traffic.latency, 0.99);
    }
    for (const [status, count] of Object.entries(traffic.requests_by_status)) {
      if (Number(status) >= 400) r.errorsByStatus[status] = count;
    }
    out.set(id, r);
  }
  return { byId: out, errors, measured: Boolean(before && seconds > 0) };
}

// ---- charts ----

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

// Lines over the last HISTORY polls; `series` is [{ label, colour, values, dashed }].
function drawChart(canvas, series, formatTick) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 52;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;

  let max = 0;
  let latest = 0;
  for (const s of series) {
    for (const v of s.values) if (v !== null && v > max) max = v;
    const last = s.values[s.values.length - 1];
    if (last !== null && last !== undefined) latest += last;
  }
  max = niceMax(max);
  canvas.dataset.max = String(max);
  canvas.dataset.latest = String(latest);
  canvas.dataset.points = String(series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0));

  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#6b7384';
  g.strokeStyle = '#e1e4ea';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = top + plotHeight - (plotHeight * i) / 4;
    g.beginPath();
    g.moveTo(left, Math.round(y) + 0.5);
    g.lineTo(left + plotWidth, Math.round(y) + 0.5);
    g.stroke();
    g.fillText(formatTick((max * i) / 4), left - 6, y);
  }
  g.textBaseline = 'top';
  const seconds = (HISTORY * POLL_MS) / 1000;
  const labels = [[0, `-${seconds / 60} min`, 'left'], [0.5, `-${seconds / 120} min`, 'center'], [1, 'now', 'right']];
  for (const [fraction, label, align] of labels) {
    g.textAlign = align;
    g.fillText(label, left + plotWidth * fraction, top + plotHeight + 5);
  }

  const step = plotWidth / (HISTORY - 1);
  for (const s of series) {
    g.strokeStyle = s.colour;
    g.lineWidth = 1.6;
    g.setLineDash(s.dashed ? [4, 3] : []);
    g.beginPath();
    let drawing = false;
    const offset = HISTORY - s.values.length;
    s.values.forEach((v, i) => {
      if (v === null) {
        drawing = false;
        return;
      }
      const x = left + (offset + i) * step;
      const y = top + plotHeight - (Math.min(v, max) / max) * plotHeight;
      if (drawing) g.lineTo(x, y);
      else g.moveTo(x, y);
      drawing = true;
    });
    g.stroke();
  }
  g.setLineDash([]);
}

function drawLegend(container, entries) {
  container.replaceChildren(
    ...entries.map(({ label, colour }) => {
      const item = el('span', {}, label);
      item.style.setProperty('--swatch', colour);
      return item;
    }),
  );
}

function drawCharts() {
  const ids = [...state.history.keys()];
  drawChart(
    $('chart-rps'),
    ids.map((id) => ({ label: id, colour: colourOf(id), values: state.history.get(id).rps })),
    formatTick,
  );
  drawLegend($('legend-rps'), ids.map((id) => ({ label: id, colour: colourOf(id) })));
  const latency = [];
  for (const id of ids) {
    const h = state.history.get(id);
    latency.push({ label: id + ' p99', colour: colourOf(id), values: h.p99 });
    latency.push({ label: id + ' p50', colour: colourOf(id), values: h.p50, dashed: true });
  }
  drawChart($('chart-latency'), latency, formatTick);
  drawLegend($('legend-latency'), ids.map((id) => ({ label: id, colour: colourOf(id) })));
  const classes = Object.keys(state.errors);
  drawChart(
    $('chart-errors'),
    classes.map((c) => ({ label: c, colour: STATUS_COLOURS[c], values: state.errors[c] })),
    formatTick,
  );
  drawLegend($('legend-errors'), classes.map((c) => ({ label: c, colour: STATUS_COLOURS[c] })));
}

// ---- the functions table ----

function showResult(node, ok, text) {
  node.textContent = text;
  node.className = 'result ' + (ok ? 'ok' : 'error');
}

async function adminCall(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    return { ok: false, message: 'the admin API did not answer: ' + e.message };
  }
  let answer = {};
  try {
    answer = await response.json();
  } catch (e) {
    // not JSON: the status line says enough
  }
  if (!response.ok) return { ok: false, message: answer.error || `HTTP ${response.status}` };
  return { ok: true, answer };
}

function makeRow(id) {
  const cells = {};
  const cell = (name, className = '') => (cells[name] = el('td', { className: (className + ' ' + name).trim() }));
  const row = el('tr', { 'data-id': id });
  const swatch = el('span', { className: 'swatch' });
  swatch.style.background = colourOf(id);
  const idCell = cell('id');
  idCell.append(swatch, id);
  row.append(
    idCell, cell('plugin'), cell('file'), cell('md5'), cell('placement'), cell('instances', 'number'),
    cell('memory'), cell('rps', 'number'), cell('p50', 'number'), cell('p99', 'number'),
    cell('requests', 'number'), cell('errors'),
  );

  const count = el('input', { type: 'number', min: '0', max: '4096', 'aria-label': 'instances of ' + id });
  const set = el('button', { type: 'button', className: 'update' }, 'Set');
  set.addEventListener('click', async () => {
    if (count.value === '') return;
    set.disabled = true;
    const result = await adminCall('/wasm/update', { name: id, instance_num: Number(count.value) });
    set.disabled = false;
    showResult($('action-result'), result.ok,
      result.ok ? `${id}: ${count.value === '0' ? 'one instance per core' : count.value + ' instances'}` : `${id}: ${result.message}`);
    if (result.ok) count.value = '';
    poll();
  });
  row.append(el('td', {}, count, ' ', set));

  // Two clicks: the first arms the button for five seconds, the second uninstalls.
  const remove = el('button', { type: 'button', className: 'danger uninstall' }, 'Uninstall');
  let armed = null;
  remove.addEventListener('click', async () => {
    if (!armed) {
      remove.classList.add('armed');
      remove.textContent = 'Confirm uninstall';
      armed = setTimeout(() => {
        armed = null;
        remove.classList.remove('armed');
        remove.textContent = 'Uninstall';
      }, 5000);
      return;
    }
    clearTimeout(armed);
    remove.disabled = true;
    const result = await adminCall('/wasm/uninstall', { name: id });
    showResult($('action-result'), result.ok, result.ok ? `uninstalled ${id}` : `${id}: ${result.message}`);
    remove.disabled = false;
    poll();
  });
  row.append(el('td', {}, remove));
  return { row, cells };
}

const rows = new Map();  // id -> { row, cells }

function renderFunctions(list, rateById) {
  const body = document.querySelector('#functions tbody');
  const seen = new Set();
  let busy = 0;
  let all = 0;
  for (const f of list) {
    seen.add(f.id);
    if (!rows.has(f.id)) {
      const made = makeRow(f.id);
      rows.set(f.id, made);
      body.append(made.row);
    }
    const { cells } = rows.get(f.id);
    const idle = Math.max(0, f.instances - f.busy);
    busy += f.busy;
    all += f.instances;
    cells.plugin.textContent = f.name;
    cells.file.textContent = f.file;
    cells.file.title = f.file;
    cells.md5.textContent = (f.md5 || '').slice(0, 12);
    cells.md5.title = f.md5 || '';
    cells.placement.textContent = f.placement;
    cells.instances.textContent = `${f.busy} / ${idle} / ${f.retiring || 0}`;
    const share = f.memory_limit_bytes ? f.memory_bytes / f.memory_limit_bytes : 0;
    const meter = el('span', { className: 'meter' + (share > 0.8 ? ' high' : '') }, el('span'));
    meter.firstChild.style.width = Math.min(100, share * 100).toFixed(1) + '%';
    cells.memory.replaceChildren(meter, `${formatBytes(f.memory_bytes)} of ${formatBytes(f.memory_limit_bytes)}`);
    const r = rateById.get(f.id) || {};
    cells.rps.textContent = formatRate(r.rps);
    cells.p50.textContent = formatMs(r.p50);
    cells.p99.textContent = formatMs(r.p99);
    cells.requests.textContent = f.requests.toLocaleString('en-US');
    const errors = Object.entries(r.errorsByStatus || {});
    cells.errors.textContent = errors.length ? errors.map(([s, n]) => `${s}: ${n}`).join('  ') : '-';
    cells.errors.className = 'errors-cell' + (errors.length ? ' errors' : '');
  }
  for (const [id, { row }] of rows) {
    if (!seen.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  $('no-functions').hidden = list.length > 0;
  $('function-count').textContent = String(list.length);
  $('instance-count').textContent = `${busy} / ${all}`;
}

// ---- logs ----

function appendLines(list, lines, keep) {
  for (const line of lines) {
    const item = el('li', { className: line.level },
      el('span', { className: 'time' }, line.time.replace('T', ' ').replace('Z', '')),
      el('span', { className: 'level' }, line.level),
      line.message);
    list.prepend(item);
  }
  while (list.children.length > keep) list.lastChild.remove();
}

// ---- polling ----

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (response.status === 401) {
    location.reload();  // the session ended: the server shows its login page
    throw new Error('signed out');
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [list, stats, logs, problems] = await Promise.all([
      getJson('/wasm/list'),
      getJson('/wasm/stats'),
      getJson('/logs?after=' + state.logAfter),
      getJson('/logs?level=warning&after=' + state.problemsAfter),
    ]);
    const now = performance.now();
    const measured = rates(stats, now);
    state.previous = { stats, at: now };

    const listed = new Set(list.map((f) => f.id));
    for (const id of listed) if (!state.history.has(id)) state.history.set(id, { rps: [], p50: [], p99: [] });
    for (const id of [...state.history.keys()]) if (!listed.has(id)) state.history.delete(id);
    if (measured.measured) {
      for (const [id, h] of state.history) {
        const r = measured.byId.get(id) || { rps: 0, p50: null, p99: null };
        push(h.rps, r.rps);
        push(h.p50, r.p50);
        push(h.p99, r.p99);
      }
      push(state.errors['4xx'], measured.errors['4xx']);
      push(state.errors['5xx'], measured.errors['5xx']);
      let total = 0;
      for (const r of measured.byId.values()) total += r.rps || 0;
      $('total-rps').textContent = formatRate(total);
      $('total-eps').textContent = formatRate(measured.errors['4xx'] + measured.errors['5xx']);
    }
    renderFunctions(list, measured.byId);
    drawCharts();
    appendLines($('log'), logs.lines, 200);
    appendLines($('problems'), problems.lines, 50);
    state.logAfter = logs.next;
    state.problemsAfter = problems.next;

    $('status').textContent = 'live';
    $('status').className = 'status live';
    $('updated').textContent = 'updated ' + stats.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    state.polls++;
    document.body.dataset.polls = String(state.polls);
  } catch (e) {
    $('status').textContent = 'admin API unreachable';
    $('status').className = 'status down';
    $('status').title = e.message;
  } finally {
    polling = false;
  }
}

function setUpInstallForm() {
  const form = $('install-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const vm = { engine: 'v8', path: data.get('path').trim() };
    if (data.get('cpu')) vm.cpu = Number(data.get('cpu'));
    if (data.get('mem')) vm.mem = Number(data.get('mem'));
    const item = { name: data.get('id').trim(), vm_config: vm };
    if (data.get('instances') !== '') item.instance_num = Number(data.get('instances'));
    const button = form.querySelector('button');
    button.disabled = true;
    showResult($('install-result'), true, 'installing ' + item.name + '...');
    const result = await adminCall('/wasm/install', item);
    button.disabled = false;
    if (result.ok) {
      const id = result.answer.id;
      showResult($('install-result'), true,
        id === item.name ? `installed ${item.name}` : `installed ${item.name}: requests reach it with the header 'id: ${id}'`);
      form.reset();
    } else {
      showResult($('install-result'), false, result.message);
    }
    poll();
  });
}

document.addEventListener('DOMContentLoaded', () => {
  setUpInstallForm();
  poll();
  setInterval(poll, POLL_MS);
  window.addEventListener('resize', drawCharts);
});
