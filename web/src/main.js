// The sluice dashboard: the dataset graph (dagre lays it out), a page per dataset and the SLA
// view (uPlot charts), kept live by the server's event stream (/api/stream). Everything it
// shows comes from the JSON API of the same server; nothing is fetched from elsewhere.
import dagre from '@dagrejs/dagre';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { openEventStream } from './event_stream.js';

// What the page holds, also read by the browser tests (tests/integration/test_dashboard.py).
const state = {
  pipeline: null,
  graph: { nodes: [], edges: [] },
  datasets: {},        // name -> status row (/api/datasets)
  progress: {},        // dataset -> its flow_progress events, oldest first
  eventsReceived: 0,   // events that arrived on the live stream
  lastEventId: null,
  renders: 0,          // graph renders
  chartUpdates: 0,     // chart data updates from live events
  kpiUpdates: 0,       // KPI charts redrawn after their dataset committed
  alertsReceived: 0,   // alert events that arrived on the live stream
  liveHandled: 0,      // live events handled (in arrival order, one after another)
  errors: [],          // failed requests, shown and kept for the tests
};
window.sluice = state;

const RATE_WINDOW_MS = 60_000;
const MAX_PROGRESS = 1000;  // per dataset, what /api/events returns at most

// The token of a server that requires one: given once as #token=... (a fragment never reaches
// the server or its logs), then kept for this tab.
const fragmentToken = new URLSearchParams(location.hash.replace(/^#\/?/, '').split('?')[0]).get('token');
if (fragmentToken) {
  sessionStorage.setItem('sluice.token', fragmentToken);
  history.replaceState(null, '', location.pathname + '#/');
}
const token = sessionStorage.getItem('sluice.token');
const authHeaders = token ? { Authorization: `Bearer ${token}` } : {};

async function api(path) {
  const res = await fetch(path, { headers: authHeaders });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${body && body.error ? body.error : res.statusText}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function showError(where, err) {
  state.errors.push(String(err.message || err));
  where.append(el('p', { class: 'error', text: String(err.message || err) }));
}

function seconds(s) {
  if (s == null) return '-';
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// --- what the progress events say -----------------------------------------------------------

function flowProgress(e) { return (e.details && e.details.flow_progress) || {}; }

const seen = new Set();  // event ids: the history and the stream may overlap

// Puts `e` into `list` (oldest first) at its place by time: the stream delivers events in the
// order the log committed them, and a later commit may hold older events (scale-out workers
// flush every 2 s), while a chart's x values must be sorted.
function insertByTime(list, e) {
  let i = list.length;
  while (i > 0 && list[i - 1].timestamp_ms > e.timestamp_ms) i -= 1;
  list.splice(i, 0, e);
}

function addProgress(e) {
  if (e.event_type !== 'flow_progress' || !e.dataset || !flowProgress(e).status || seen.has(e.id)) return false;
  seen.add(e.id);
  const list = state.progress[e.dataset] || (state.progress[e.dataset] = []);
  insertByTime(list, e);
  if (list.length > MAX_PROGRESS) list.shift();
  return true;
}

// Rows a dataset read per second over the last minute of its updates (its input rate: the
// label of the edges into it).
function inputRate(name) {
  const list = state.progress[name] || [];
  if (!list.length) return null;
  const newest = list[list.length - 1].timestamp_ms;
  let rows = 0;
  for (const e of list) {
    if (e.timestamp_ms > newest - RATE_WINDOW_MS) rows += (flowProgress(e).metrics || {}).num_input_rows || 0;
  }
  return rows / (RATE_WINDOW_MS / 1000);
}

function latestStatus(name) {
  const list = state.progress[name] || [];
  if (list.length) return flowProgress(list[list.length - 1]).status;
  const row = state.datasets[name];
  return row ? row.state : 'unknown';
}

// --- the graph ------------------------------------------------------------------------------

const STATE_COLOURS = { COMPLETED: '#2e9d57', RUNNING: '#2f6fd1', FAILED: '#d33c3c', SKIPPED: '#d98c1a' };
const KIND_COLOURS = { kafka: '#5b4a8b', file: '#5b4a8b' };

function renderGraph(container) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 90, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of state.graph.nodes) g.setNode(n.name, { width: Math.max(120, n.name.length * 7.5 + 24), height: 34 });
  for (const e of state.graph.edges) g.setEdge(e.from, e.to, { width: 70, height: 14, labelpos: 'c' });
  dagre.layout(g);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const size = g.graph();
  svg.setAttribute('viewBox', `0 0 ${size.width} ${size.height}`);
  svg.setAttribute('height', String(size.height));
  svg.dataset.datasets = state.graph.nodes.filter((n) => !n.source).map((n) => n.name).join(',');
  const add = (parent, tag, attrs) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    parent.append(e);
    return e;
  };
  for (const edge of state.graph.edges) {
    const info = g.edge(edge.from, edge.to);
    const group = add(svg, 'g', { class: 'edge', 'data-from': edge.from, 'data-to': edge.to });
    add(group, 'path', { d: 'M' + info.points.map((p) => `${p.x},${p.y}`).join(' L'), 'marker-end': 'url(#arrow)' });
    const rate = inputRate(edge.to);
    const label = add(group, 'text', { x: info.x, y: info.y, 'text-anchor': 'middle' });
    label.textContent = rate == null ? '' : `${rate.toFixed(rate < 10 ? 1 : 0)} rows/s`;
    group.dataset.rate = rate == null ? '' : String(rate);
  }
  const defs = add(svg, 'defs', {});
  const marker = add(defs, 'marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7,
                                       markerHeight: 7, orient: 'auto' });
  add(marker, 'path', { d: 'M0,0 L10,5 L0,10 z', fill: '#7d8792' });
  for (const n of state.graph.nodes) {
    const box = g.node(n.name);
    const status = n.source ? n.kind : latestStatus(n.name);
    const group = add(svg, 'g', { class: 'node', 'data-name': n.name, 'data-state': status,
                                  transform: `translate(${box.x - box.width / 2},${box.y - box.height / 2})` });
    add(group, 'rect', { width: box.width, height: box.height,
                         fill: KIND_COLOURS[n.kind] || STATE_COLOURS[status] || '#9aa4ae' });
    const text = add(group, 'text', { x: box.width / 2, y: 21, 'text-anchor': 'middle' });
    text.textContent = n.name;
    const title = add(group, 'title', {});
    title.textContent = `${n.name} (${n.kind}): ${status}`;
    if (!n.source) group.addEventListener('click', () => { location.hash = `#/dataset/${encodeURIComponent(n.name)}`; });
  }
  container.replaceChildren(svg);
  state.renders += 1;
}

// The alert events (README "Alerts": each FIRING and RESOLVED of a rule on a dataset), newest
// first: the latest ALERTS_SHOWN from /api/events, then each one the live stream brings.
const ALERTS_SHOWN = 20;

function alertsPanel(box) {
  const table = el('table', { id: 'alert-events' });
  const ids = new Set();  // of the rows kept: a duplicate of one of them is not added again
  const rows = [];        // newest first, at most ALERTS_SHOWN
  let changed = false;
  const draw = () => {
    changed = false;
    table.replaceChildren(el('tr', {}, ...['time', 'state', 'rule', 'dataset', 'message'].map((h) => el('th', { text: h }))),
                          ...rows);
  };
  // Whether the event was kept (an alert, not shown yet, among the newest ALERTS_SHOWN).
  const add = (e) => {
    if (e.event_type !== 'alert' || ids.has(e.id)) return false;
    const a = (e.details && e.details.alert) || {};
    let i = 0;  // newest first, by time (a later commit may hold an older event)
    while (i < rows.length && rows[i].timestampMs > e.timestamp_ms) i += 1;
    if (i >= ALERTS_SHOWN) return false;
    const row = el('tr', { 'data-id': e.id, 'data-state': a.state || '', 'data-rule': a.rule || '',
                           'data-dataset': a.dataset || e.dataset || '' },
      el('td', { text: e.timestamp }),
      el('td', {}, el('span', { class: `state ${a.state === 'FIRING' ? 'FAILED' : 'COMPLETED'}`, text: a.state || '' })),
      el('td', { text: a.rule || '' }), el('td', { text: a.dataset || e.dataset || '' }), el('td', { text: e.message }));
    row.timestampMs = e.timestamp_ms;
    row.eventId = e.id;
    rows.splice(i, 0, row);
    ids.add(e.id);
    for (const dropped of rows.splice(ALERTS_SHOWN)) ids.delete(dropped.eventId);
    return true;
  };
  box.replaceChildren(el('h3', { text: 'Alerts' }), table);
  draw();
  api(`/api/events?type=alert&limit=${ALERTS_SHOWN}`)
    .then((page) => { page.events.forEach(add); draw(); box.dataset.loaded = 'true'; })
    .catch((err) => showError(box, err));
  // A live alert is added at once; the table is redrawn once per batch of live events.
  return { onEvent(e) { if (add(e)) changed = true; }, redraw() { if (changed) draw(); } };
}

function graphView(view) {
  const box = el('div', { id: 'graph', class: 'panel' });
  const table = el('table', { id: 'datasets' });
  const kpiBox = el('div', { id: 'graph-kpis' });
  const alertsBox = el('div', { id: 'alerts', class: 'panel' });
  view.replaceChildren(el('h2', { text: 'Datasets' }), box, el('div', { class: 'panel' }, table), alertsBox, kpiBox);
  const alerts = alertsPanel(alertsBox);
  // The KPI charts under the graph when pipeline.yaml has some (all of them on #/kpis).
  let kpis = {};
  api('/api/kpis').then(({ kpis: list }) => (list.length ? kpiPanels(kpiBox) : {}))
    .then((k) => { kpis = k; }).catch((err) => showError(kpiBox, err));
  const draw = () => {
    renderGraph(box);
    const rows = Object.values(state.datasets).map((d) => {
      // The rules firing on it now (`active_alerts` of /api/datasets, as `sluice status` lists them).
      const firing = (d.active_alerts || []).map((a) => a.rule);
      return el('tr', { 'data-dataset': d.name },
        el('td', {}, el('a', { href: `#/dataset/${encodeURIComponent(d.name)}`, text: d.name })),
        el('td', { text: d.kind }),
        el('td', {}, el('span', { class: `state ${latestStatus(d.name)}`, text: latestStatus(d.name) })),
        el('td', { text: d.rows == null ? '-' : String(d.rows) }),
        el('td', { text: seconds(d.freshness_seconds) }),
        el('td', { text: d.kafka_lag == null ? '-' : String(d.kafka_lag) }),
        el('td', { class: 'alerts', 'data-alerts': firing.join(',') },
           firing.length ? el('span', { class: 'state FAILED', text: firing.join(', ') }) : '-'));
    });
    table.replaceChildren(el('tr', {}, ...['dataset', 'kind', 'state', 'rows', 'freshness', 'kafka lag', 'alerts firing']
      .map((h) => el('th', { text: h }))), ...rows);
  };
  draw();
  // The graph and table are laid out again once per batch of live events (redraw), not per event.
  let stale = false;
  return {
    onEvent(e) {
      if (e.event_type === 'alert') { alerts.onEvent(e); stale = true; }
      if (addProgressSeen(e)) stale = true;
      if (kpis.onEvent) kpis.onEvent(e);  // starts a read, does not wait for it
    },
    redraw(datasetsRead) {
      alerts.redraw();
      if (stale || datasetsRead) draw();
      stale = false;
    },
  };
}

// --- charts ---------------------------------------------------------------------------------

function chart(parent, title, seriesNames, data, yLabel) {
  const panel = el('div', { class: 'panel chart', 'data-title': title });
  parent.append(panel);
  const colours = ['#2f6fd1', '#2e9d57', '#d98c1a', '#d33c3c', '#7a4fb5', '#1aa3a3'];
  const opts = {
    title, width: Math.max(380, panel.clientWidth - 20), height: 220,
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 60 }],
    series: [{}, ...seriesNames.map((label, i) => ({ label, stroke: colours[i % colours.length], width: 1.5,
                                                      points: { show: true, size: 4 }, spanGaps: true }))],
  };
  const plot = new uPlot(opts, data, panel);
  // The x values drawn, for the browser test (uPlot needs them sorted, or it cuts points off).
  const shown = (d) => { panel.dataset.points = String(d[0].length); panel.xs = d[0]; panel.ys = d.slice(1); };
  shown(data);
  return { update(next) { plot.setData(next); shown(next); } };
}

// [x, series...] for uPlot from the events: x in seconds, one value per event and series.
function columns(events, pick) {
  const x = events.map((e) => e.timestamp_ms / 1000);
  const series = pick.map((f) => events.map((e) => { const v = f(e); return v == null ? null : v; }));
  return [x, ...series];
}

// Seconds between this commit and the previous one that wrote rows: how stale the table was
// just before it (the freshness a reader saw at worst).
function staleness(events) {
  let previous = null;
  return events.map((e) => {
    const p = flowProgress(e);
    const wrote = ((p.metrics || {}).num_output_rows || 0) > 0;
    const end = p.end_time_ms || e.timestamp_ms;
    const out = previous == null ? null : (end - previous) / 1000;
    if (wrote) previous = end;
    return out;
  });
}

function progressCharts(events) {
  const m = (e) => flowProgress(e).metrics || {};
  const stale = staleness(events);
  const index = new Map(events.map((e, i) => [e, i]));
  return {
    throughput: columns(events, [(e) => m(e).processed_rows_per_second, (e) => m(e).num_output_rows]),
    latency: columns(events, [(e) => flowProgress(e).duration_ms, (e) => (flowProgress(e).commits || {}).max_duration_ms]),
    freshness: columns(events, [(e) => stale[index.get(e)],
                                (e) => (m(e).watermark_micros ? (e.timestamp_ms - m(e).watermark_micros / 1000) / 1000 : null),
                                (e) => (m(e).end_to_end_latency_max_ms != null ? m(e).end_to_end_latency_max_ms / 1000 : null)]),
    backlog: columns(events, [(e) => m(e).backlog_records]),
  };
}

function expectationColumns(rows) {
  const names = [...new Set(rows.map((r) => r.expectation))];
  const times = [...new Set(rows.map((r) => r.timestamp_ms))].sort((a, b) => a - b);
  const at = new Map(times.map((t, i) => [t, i]));
  const series = names.map(() => times.map(() => null));
  rows.forEach((r) => {
    if (r.pass_rate != null) series[names.indexOf(r.expectation)][at.get(r.timestamp_ms)] = r.pass_rate * 100;
  });
  return { names, data: [times.map((t) => t / 1000), ...series] };
}

function expectationRows(events) {
  const rows = [];
  for (const e of events) {
    for (const x of ((flowProgress(e).data_quality || {}).expectations || [])) {
      const total = x.passed_records + x.failed_records;
      rows.push({ expectation: x.name, timestamp_ms: e.timestamp_ms, pass_rate: total > 0 ? x.passed_records / total : null });
    }
  }
  return rows;
}

// A point of the schema history (as /api/schema_history gives it) from a live progress event:
// COMPLETED updates that committed rows or changed columns, FAILED ones whose landed commits
// changed columns or wrote rows with a _rescued_data column; null for others.
function schemaHistoryRow(e) {
  const p = flowProgress(e);
  const change = p.schema_change || null;
  const written = (p.metrics || {}).num_output_rows || 0;
  const r = p.rescued_data || null;
  if (p.status === 'FAILED') {
    if (!change && !(r && r.num_rows > 0)) return null;
  } else if (p.status !== 'COMPLETED' || (written <= 0 && !change)) {
    return null;
  }
  return {
    status: p.status, rescue_rows_written: r ? r.num_rows : null,
    timestamp: e.timestamp, timestamp_ms: e.timestamp_ms, table_version: p.table_version, rows_written: written,
    columns_added: (change && change.columns_added) || [], columns_removed: (change && change.columns_removed) || [],
    types_changed: (change && change.types_changed) || [],
    rescued_rows: r ? r.num_rescued_rows : null,
    rescued_rate: r && r.num_rows > 0 ? r.num_rescued_rows / r.num_rows : null,
  };
}

// The rescued-data rate per update, in % (a chart); the updates that changed columns (a table).
function schemaHistoryPanel(parent, rows) {
  const panel = el('div', { class: 'panel', id: 'schema-history' }, el('h3', { text: 'Schema history' }));
  parent.append(panel);
  const charts = el('div', { class: 'charts' });
  const table = el('table', { id: 'schema-changes' });
  panel.append(charts, table);
  const data = () => [rows.map((r) => r.timestamp_ms / 1000), rows.map((r) => (r.rescued_rate == null ? null : r.rescued_rate * 100))];
  const rescued = rows.some((r) => r.rescued_rows != null);
  const plot = chart(charts, 'Rescued-data rate', ['rows with _rescued_data (%)'], data(), '%');
  const drawTable = () => {
    const changed = rows.filter((r) => r.columns_added.length || r.columns_removed.length || r.types_changed.length);
    table.replaceChildren(el('tr', {}, ...['version', 'time', 'columns added', 'columns removed', 'types changed',
                                           'rescued rows'].map((h) => el('th', { text: h }))),
      ...changed.map((r) => el('tr', { 'data-version': String(r.table_version) },
        el('td', { text: String(r.table_version) }), el('td', { text: r.timestamp }),
        el('td', { text: r.columns_added.join(', ') || '-' }), el('td', { text: r.columns_removed.join(', ') || '-' }),
        el('td', { text: r.types_changed.join(', ') || '-' }),
        el('td', { text: r.rescued_rows == null ? '-' : `${r.rescued_rows} (${(r.rescued_rate * 100).toFixed(1)} %)` }))));
    if (!changed.length) table.append(el('tr', {}, el('td', { class: 'muted', text: 'No column changed in these updates.' })));
  };
  drawTable();
  if (!rescued) charts.append(el('p', { class: 'muted', text: 'No _rescued_data column: the rate is recorded for Kafka flows decoding JSON or Avro with rescue.' }));
  return {
    add(row) {
      let i = rows.length;
      while (i > 0 && rows[i - 1].timestamp_ms > row.timestamp_ms) i -= 1;
      rows.splice(i, 0, row);
      if (rows.length > MAX_PROGRESS) rows.shift();  // as /api/schema_history's default limit
      plot.update(data());
      drawTable();
    },
  };
}

async function datasetView(view, name) {
  view.replaceChildren(el('h2', { text: name }), el('p', { class: 'muted', text: 'loading…' }));
  const q = encodeURIComponent(name);
  let detail, progress, failures, schemaHistory;
  try {
    [detail, progress, failures, schemaHistory] = await Promise.all([
      api(`/api/datasets/${q}`),
      api(`/api/events?dataset=${q}&type=flow_progress&limit=1000`),
      api(`/api/events?dataset=${q}&level=ERROR&limit=20`),
      api(`/api/schema_history?dataset=${q}`),
    ]);
  } catch (err) {
    view.replaceChildren(el('h2', { text: name }));
    showError(view, err);
    return {};
  }
  const events = progress.events.filter((e) => flowProgress(e).status);
  const ids = new Set(progress.events.map((e) => e.id).concat(failures.events.map((e) => e.id)));
  const status = detail.status || {};
  const head = el('div', { class: 'panel' },
    el('span', { class: `state ${status.state || ''}`, text: status.state || 'unknown' }), ' ',
    el('span', { class: 'muted', text: `${detail.kind || ''} · ${status.rows ?? '-'} rows · version ${detail.version ?? '-'}` +
                                        ` · freshness ${seconds(status.freshness_seconds)}` }));
  const charts = el('div', { class: 'charts' });
  view.replaceChildren(el('h2', { text: name }), head, charts);
  const c = progressCharts(events);
  const plots = {
    throughput: chart(charts, 'Throughput', ['rows read/s', 'rows written per update'], c.throughput, 'rows'),
    latency: chart(charts, 'Update latency', ['update (ms)', 'longest commit (ms)'], c.latency, 'ms'),
    freshness: chart(charts, 'Freshness', ['staleness before commit (s)', 'event-time lag (s)',
                                           'end-to-end, oldest record (s)'], c.freshness, 's'),
    backlog: chart(charts, 'Kafka backlog', ['records behind'], c.backlog, 'records'),
  };
  const ex = expectationColumns(expectationRows(events));
  const quality = ex.names.length ? chart(charts, 'Expectation pass rate', ex.names, ex.data, '%') : null;
  if (!quality) charts.append(el('div', { class: 'panel muted', text: 'No expectations on this dataset.' }));

  const columnsTable = el('table', { id: 'schema' }, el('tr', {}, el('th', { text: 'column' }), el('th', { text: 'type' }),
                                                       el('th', { text: 'nullable' })));
  for (const col of detail.columns || []) {
    columnsTable.append(el('tr', {}, el('td', { text: col.name }), el('td', { text: JSON.stringify(col.type).replace(/^"|"$/g, '') }),
                               el('td', { text: col.nullable === false ? 'no' : 'yes' })));
  }
  const partitions = (detail.partition_columns || []).join(', ');
  view.append(el('div', { class: 'panel' }, el('h3', { text: 'Schema' }), columnsTable,
                 el('p', { class: 'muted', text: partitions ? `partitioned by ${partitions}` : 'not partitioned' })));
  const history = schemaHistoryPanel(view, schemaHistory.schema_history);
  const errorsBox = el('div', { class: 'panel', id: 'errors' }, el('h3', { text: 'Recent errors' }));
  const addError = (e) => {
    const details = e.details && (e.details.flow_progress || {}).error ? e.details.flow_progress.error : e.details && e.details.error;
    errorsBox.append(el('div', { class: 'error-entry' }, el('div', { text: `${e.timestamp} ${e.message}` }),
                        details ? el('pre', { text: JSON.stringify(details, null, 2) }) : ''));
  };
  failures.events.slice().reverse().forEach(addError);
  if (!failures.events.length) errorsBox.append(el('p', { class: 'muted', text: 'None in the event log.' }));
  view.append(errorsBox);

  return {
    onEvent(e) {
      if (e.dataset !== name || ids.has(e.id)) return;
      ids.add(e.id);
      if (e.level === 'ERROR') addError(e);
      if (!(e.event_type === 'flow_progress' && flowProgress(e).status)) return;
      insertByTime(events, e);
      const row = schemaHistoryRow(e);
      if (row) history.add(row);
      const next = progressCharts(events);
      for (const k of Object.keys(plots)) plots[k].update(next[k]);
      if (quality) quality.update(expectationColumns(expectationRows(events)).data);
      state.chartUpdates += 1;
    },
  };
}

// --- business KPIs ---------------------------------------------------------------------------

// A chart of a KPI (pipeline.yaml serve.kpis): its columns as /api/kpis/<name> reads them from the
// materialized view's latest snapshot; x on a time, number or category axis, a line or bars.
function kpiChart(parent, kpi, series) {
  const panel = el('div', { class: 'panel chart kpi', 'data-kpi': kpi.name, 'data-title': kpi.title });
  parent.append(panel);
  const colours = ['#2f6fd1', '#2e9d57', '#d98c1a', '#d33c3c', '#7a4fb5', '#1aa3a3'];
  let labels = [];  // category axis: the x strings, charted at 0, 1, 2...
  const toPlot = (s) => {
    if (s.axis !== 'category') return s.data.length ? s.data : [[], ...kpi.y.map(() => [])];
    labels = s.data[0] || [];
    return [labels.map((_, i) => i), ...s.data.slice(1)];
  };
  // Bars side by side when there are two y columns; a second y column has its own scale and
  // axis on the right (revenue and order counts differ by orders of magnitude).
  const barKind = kpi.kind === 'bar';
  const bars = (i) => (barKind ? uPlot.paths.bars({ size: [kpi.y.length > 1 ? 0.4 : 0.6, 60],
                                                     align: kpi.y.length === 2 ? (i === 0 ? -1 : 1) : 0 }) : undefined);
  const scaleOf = (i) => (i === 0 ? 'y' : 'y2');
  const timeAxis = series.axis === 'time';
  const opts = {
    title: kpi.title, width: Math.max(380, panel.clientWidth - 20), height: 240,
    // A DATE or TIMESTAMP_NTZ x is shown as written (UTC), a TIMESTAMP in the browser's zone.
    ...(series.x_utc ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') } : {}),
    scales: { x: { time: timeAxis, ...(barKind && !timeAxis ? { range: (u, min, max) => [min - 0.6, max + 0.6] } : {}) } },
    axes: [series.axis === 'category'
      ? { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? labels[t] ?? '' : '')) } : {},
    { scale: 'y', size: 70, label: kpi.y[0] },
    ...(kpi.y.length > 1 ? [{ scale: 'y2', side: 1, size: 70, grid: { show: false }, label: kpi.y.slice(1).join(', ') }] : [])],
    series: [{ label: kpi.x }, ...kpi.y.map((label, i) => ({
      label, scale: scaleOf(i), stroke: colours[i % colours.length], width: 1.5, spanGaps: true,
      fill: barKind ? colours[i % colours.length] + '99' : undefined, paths: bars(i),
      points: { show: !barKind, size: 4 } }))],
  };
  const shown = (s, data) => {
    panel.dataset.points = String(data[0].length);
    panel.dataset.version = s.version == null ? '' : String(s.version);
    panel.dataset.truncated = String(!!s.truncated);
    panel.xs = s.data[0] || [];
    panel.ys = s.data.slice(1);
  };
  const data = toPlot(series);
  const plot = new uPlot(opts, data, panel);
  shown(series, data);
  return { update(next) { const d = toPlot(next); plot.setData(d); shown(next, d); } };
}

// Every KPI's chart in `box`; each is read again when its dataset commits (a COMPLETED
// flow_progress event of it arrives on the live stream).
async function kpiPanels(box) {
  const { kpis } = await api('/api/kpis');
  if (!kpis.length) {
    box.append(el('p', { class: 'panel muted', text: 'No KPIs: list them in pipeline.yaml under serve.kpis '
                                                    + '(name, dataset: a materialized view, x, y: [columns]).' }));
    return {};
  }
  const charts = el('div', { class: 'charts', id: 'kpis' });
  box.append(charts);
  const drawn = {};
  for (const kpi of kpis) {
    try {
      const series = await api(`/api/kpis/${encodeURIComponent(kpi.name)}`);
      drawn[kpi.name] = { kpi, chart: kpiChart(charts, kpi, series), version: series.version,
                          inFlight: false, dirty: false };
    } catch (err) {
      showError(charts, err);
    }
  }
  // One read in flight per KPI; a commit arriving meanwhile marks it dirty (read once more when
  // the read ends, however many commits came). Not awaited by the live queue.
  const refresh = (entry) => {
    if (entry.inFlight) {
      entry.dirty = true;
      return;
    }
    entry.inFlight = true;
    (async () => {
      try {
        do {
          entry.dirty = false;
          const next = await api(`/api/kpis/${encodeURIComponent(entry.kpi.name)}`);
          if (next.version !== entry.version) {
            entry.chart.update(next);
            entry.version = next.version;
            state.kpiUpdates += 1;
          }
        } while (entry.dirty);
      } catch (err) {
        console.warn(`KPI ${entry.kpi.name}: ${err.message}`);
      } finally {
        entry.inFlight = false;
      }
    })();
  };
  return {
    onEvent(e) {
      if (e.event_type !== 'flow_progress' || flowProgress(e).status !== 'COMPLETED') return;
      const version = flowProgress(e).table_version;
      for (const entry of Object.values(drawn)) {
        if (entry.kpi.dataset !== e.dataset) continue;
        if (version != null && version === entry.version) continue;  // the table did not change
        refresh(entry);
      }
    },
  };
}

async function kpisView(view) {
  view.replaceChildren(el('h2', { text: 'Business KPIs' }));
  return kpiPanels(view);
}

// --- SLA ------------------------------------------------------------------------------------

async function slaView(view) {
  view.replaceChildren(el('h2', { text: 'Freshness SLA' }));
  const targets = (state.pipeline && state.pipeline.freshness_targets) || {};
  if (!Object.keys(targets).length) {
    view.append(el('p', { class: 'panel muted',
                          text: 'No freshness targets: set serve.freshness_targets in pipeline.yaml (dataset: duration).' }));
    return {};
  }
  const table = el('table', { id: 'sla' });
  view.append(el('div', { class: 'panel' }, table));
  const draw = () => {
    table.replaceChildren(el('tr', {}, ...['dataset', 'target', 'actual', 'now', 'breaches in history', 'worst']
      .map((h) => el('th', { text: h }))));
    for (const [name, target] of Object.entries(targets)) {
      const row = state.datasets[name] || {};
      const actual = row.freshness_seconds;
      const stale = staleness(state.progress[name] || []).filter((s) => s != null);
      const breaches = stale.filter((s) => s > target).length;
      const ok = actual != null && actual <= target;
      table.append(el('tr', { 'data-dataset': name, 'data-breach': String(!ok) },
        el('td', {}, el('a', { href: `#/dataset/${encodeURIComponent(name)}`, text: name })),
        el('td', { text: seconds(target) }), el('td', { text: seconds(actual) }),
        el('td', {}, el('span', { class: `state ${ok ? 'ok' : 'breach'}`, text: ok ? 'met' : 'breached' })),
        el('td', { text: String(breaches) }), el('td', { text: stale.length ? seconds(Math.max(...stale)) : '-' })));
    }
  };
  draw();
  let stale = false;
  return {
    onEvent: (e) => { if (addProgressSeen(e)) stale = true; },
    redraw: (datasetsRead) => { if (stale || datasetsRead) draw(); stale = false; },
  };
}

// --- wiring ---------------------------------------------------------------------------------

let current = {};
// A live event the views see: progress was already added (onLive) by the time they look.
function addProgressSeen(e) { return e.event_type === 'flow_progress' && !!e.dataset; }

async function refreshDatasets() {
  const status = await api('/api/datasets');
  state.datasets = Object.fromEntries(status.datasets.map((d) => [d.name, d]));
}

async function route() {
  const view = document.getElementById('view');
  const hash = location.hash.replace(/^#/, '') || '/';
  try {
    if (hash.startsWith('/dataset/')) current = await datasetView(view, decodeURIComponent(hash.slice(9)));
    else if (hash === '/sla') current = await slaView(view);
    else if (hash === '/kpis') current = await kpisView(view);
    else current = graphView(view);
  } catch (err) {
    showError(view, err);
    current = {};
  }
}

// Every live event is handled in arrival order, after the ones before it: one chain, so an event
// that waits for /api/datasets never lets the events behind it overtake it.
let liveQueue = Promise.resolve();
let pending = 0;  // live events queued and not handled yet

function enqueue(task) {
  liveQueue = liveQueue.then(task).catch((err) => console.warn(`live event: ${err.message}`));
}

function onLive(e) {
  state.eventsReceived += 1;
  state.lastEventId = e.stream_id;
  pending += 1;
  enqueue(async () => {
    try {
      await handleLive(e);
    } finally {
      pending -= 1;
    }
    if (pending === 0) await endOfBatch();
  });
}

// Rows, freshness and the firing alerts come from /api/datasets. A live event that may change
// them (a commit's progress, an alert) marks them stale; they are read once the events that came
// together are handled (the queue drained), and at most once a second (a continuous run reports
// every trigger interval): 200 alerts arriving together cost one read and one redraw, not 200.
// A stale mark always gets its read: a timer brings it when the last one was under a second ago
// (a read that failed is tried again at the next batch's end).
let datasetsStale = false;
let lastRefresh = 0;
let refreshTimer = null;

async function endOfBatch() {
  let datasetsRead = false;
  if (datasetsStale) {
    const wait = lastRefresh + 1000 - Date.now();
    if (wait > 0) {
      if (!refreshTimer) {
        refreshTimer = setTimeout(() => {
          refreshTimer = null;
          // Behind the events queued meanwhile; the last of them ends their batch and reads.
          enqueue(() => (pending === 0 ? endOfBatch() : undefined));
        }, wait);
      }
    } else {
      datasetsStale = false;
      lastRefresh = Date.now();
      datasetsRead = await refreshDatasets().then(() => true, () => { datasetsStale = true; return false; });
    }
  }
  if (current.redraw) current.redraw(datasetsRead);
}

async function handleLive(e) {
  if (e.event_type === 'flow_progress' && seen.has(e.id)) return;  // already in the history
  if (e.event_type === 'alert') state.alertsReceived += 1;
  addProgress(e);
  if (e.event_type === 'update_progress' && e.details && e.details.update_progress) {
    document.getElementById('pipeline-state').textContent = e.details.update_progress.state || '';
  }
  if (e.event_type === 'flow_progress' || e.event_type === 'alert') datasetsStale = true;
  if (current.onEvent) await current.onEvent(e);
  state.liveHandled += 1;
}

async function start() {
  const live = document.getElementById('live');
  let history;
  try {
    const [pipeline, graph] = await Promise.all([api('/api/pipeline'), api('/api/graph')]);
    state.pipeline = pipeline;
    state.graph = graph;
    await refreshDatasets();
    // The stream starts after the log's version this history was read from (stream_after): what
    // later commits append, whatever its events' times. The history and the stream may overlap
    // (ids remove the duplicates), never leave a gap.
    history = await api('/api/events?type=flow_progress&limit=1000');
    state.lastEventId = history.stream_after;
  } catch (err) {
    showError(document.getElementById('view'), err);
    live.textContent = 'offline';
    live.className = 'live off';
    return;
  }
  document.getElementById('pipeline-name').textContent = state.pipeline.name;
  document.getElementById('pipeline-state').textContent = state.pipeline.state;
  history.events.forEach(addProgress);
  window.addEventListener('hashchange', route);
  await route();
  openEventStream('/api/stream', {
    headers: authHeaders,
    after: () => state.lastEventId,
    onEvent: onLive,
    onState: (open) => { live.textContent = open ? 'live' : 'reconnecting'; live.className = `live ${open ? 'on' : 'off'}`; },
  });
}

start();
