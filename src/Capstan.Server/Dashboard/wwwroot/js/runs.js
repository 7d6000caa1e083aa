// Experiments, the runs table, a run's page and the comparison of runs.
import { h, replace, clear, badge, fmtNumber, fmtTime, fmtDuration, kvList, table } from './dom.js';
import { get, post, request, enc, stream } from './api.js';
import { metricChart } from './charts.js';
import { setQuery } from './app.js';

export async function experimentsPage(view, ctx) {
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, 'Loading experiments…'));
  replace(view, h('h1', null, 'Experiments'), list);
  const draw = page => {
    const items = page.items || [];
    replace(list, items.length === 0
      ? h('p', { class: 'muted' }, 'No experiments yet. Run ./capstan quickstart, or log runs with an MLflow client.')
      : table([
        { label: 'Name', value: e => h('a', { href: `#/experiments/${enc(e.experimentId)}` }, e.name) },
        { label: 'ID', value: e => e.experimentId },
        { label: 'Created', value: e => fmtTime(e.creationTime) },
        { label: 'Last update', value: e => fmtTime(e.lastUpdateTime) },
        { label: 'Description', value: e => (e.tags || []).find(t => t.key === 'mlflow.note.content')?.value ?? '' },
      ], items, () => ({ class: 'experiment-row' })));
  };
  const refresh = async () => { const r = await request('/api/v1/experiments?maxResults=1000', { signal: ctx.signal }); if (r.changed) draw(r.data); };
  await refresh();
  ctx.every(10000, refresh);
}

const attributeColumns = [
  { id: 'run_name', label: 'Run', order: 'attributes.run_name' },
  { id: 'status', label: 'Status', order: 'attributes.status' },
  { id: 'start_time', label: 'Started', order: 'attributes.start_time' },
  { id: 'duration', label: 'Duration', order: null },
];

const quote = key => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : '`' + key.replace(/`/g, '') + '`');

export async function runsPage(view, ctx, query, experimentId) {
  const title = h('span', null, '…');
  const stored = JSON.parse(localStorage.getItem('capstan.columns.' + experimentId) || 'null');
  const state = {
    filter: query.get('filter') || '',
    orderBy: query.get('order') || '',
    pageSize: Number(query.get('size')) || 100,
    tokens: [null],
    page: 0,
    columns: stored, // null: the server picks the first keys
    selected: new Set(),
    keys: null,
    table: null,
  };

  const filterInput = h('input', { type: 'text', class: 'filter', placeholder: "metrics.accuracy > 0.9 and params.lr = '0.01'", value: state.filter, 'aria-label': 'Filter runs' });
  const error = h('div', { class: 'error', role: 'alert' });
  const status = h('span', { class: 'muted', id: 'runs-status' });
  const compare = h('button', { disabled: true, onclick: () => { location.hash = '#/compare?runs=' + [...state.selected].map(enc).join(','); } }, 'Compare selected');
  const chooserBody = h('div', { class: 'columns' }, h('span', { class: 'muted' }, 'Loading keys…'));
  const chooserSearch = h('input', { type: 'search', placeholder: 'Find a column…', 'aria-label': 'Find a column' });
  const chooser = h('details', { class: 'card chooser' }, h('summary', null, 'Columns'), h('div', { class: 'toolbar' }, chooserSearch,
    h('button', { onclick: () => { state.columns = { metrics: [], params: [], tags: [] }; saveColumns(); load(); } }, 'None'),
    h('button', { onclick: () => { state.columns = null; localStorage.removeItem('capstan.columns.' + experimentId); load(); } }, 'Default')), chooserBody);
  const holder = h('div', { class: 'scroll', id: 'runs-table' });
  const prev = h('button', { onclick: () => { if (state.page > 0) { state.page--; load(); } } }, '‹ Previous');
  const next = h('button', { onclick: () => { if (state.tokens[state.page + 1]) { state.page++; load(); } } }, 'Next ›');
  const size = h('select', { 'aria-label': 'Runs per page', onchange: () => { state.pageSize = Number(size.value); resetPages(); load(); } },
    [25, 50, 100, 250, 500, 1000].map(n => h('option', { value: String(n), selected: n === state.pageSize }, `${n} per page`)));

  const apply = () => { state.filter = filterInput.value.trim(); resetPages(); load(); };
  filterInput.addEventListener('keydown', e => { if (e.key === 'Enter') apply(); });
  chooserSearch.addEventListener('input', () => drawChooser());

  replace(view,
    h('h1', null, h('a', { href: '#/' }, 'Experiments'), ' / ', title),
    h('div', { class: 'toolbar' }, filterInput, h('button', { class: 'primary', onclick: apply }, 'Search'),
      h('button', { onclick: () => { filterInput.value = ''; apply(); } }, 'Clear'), compare, status),
    error, chooser, holder, h('div', { class: 'pager' }, prev, next, size));

  function resetPages() { state.tokens = [null]; state.page = 0; }
  function saveColumns() { localStorage.setItem('capstan.columns.' + experimentId, JSON.stringify(state.columns)); }

  function body() {
    const b = { experimentIds: [experimentId], filter: state.filter || null, orderBy: state.orderBy ? [state.orderBy] : null, maxResults: state.pageSize, pageToken: state.tokens[state.page] };
    if (state.columns) Object.assign(b, state.columns);
    return b;
  }

  async function load(poll = false) {
    let result;
    try {
      result = await request('/api/v1/dashboard/run-table', { method: 'POST', body: body(), signal: ctx.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (!poll) { error.textContent = e.message; clear(holder); status.textContent = ''; }
      return;
    }

    error.textContent = '';
    setQuery(Object.fromEntries(Object.entries({ filter: state.filter, order: state.orderBy, size: state.pageSize === 100 ? '' : state.pageSize }).filter(([, v]) => v)));
    if (!result.changed && poll) return;
    state.table = result.data;
    state.tokens[state.page + 1] = result.data.nextPageToken || null;
    drawTable();
    if (!state.keys) drawChooser();
  }

  function drawTable() {
    const data = state.table;
    const columns = data.columns;
    const rows = data.rows;
    const first = state.page * state.pageSize;
    status.textContent = rows.length === 0 ? 'No runs match.' : `Runs ${first + 1}–${first + rows.length}${data.nextPageToken ? ' (more)' : ''}`;
    prev.disabled = state.page === 0;
    next.disabled = !data.nextPageToken;
    const sortHeader = (label, order, kind) => {
      const active = state.orderBy.startsWith(order + ' ') ? (state.orderBy.endsWith('ASC') ? ' ▲' : ' ▼') : '';
      return h('th', {
        class: 'sortable', title: order ? 'Sort by ' + order : undefined, dataset: { order: order || '' },
        onclick: order ? () => { state.orderBy = state.orderBy === order + ' DESC' ? order + ' ASC' : order + ' DESC'; resetPages(); load(); } : undefined,
      }, kind ? h('span', { class: 'kind' }, kind) : null, label, active);
    };
    const head = h('tr', null, h('th', null, ''),
      attributeColumns.map(c => sortHeader(c.label, c.order)),
      columns.metrics.map(k => sortHeader(k, 'metrics.' + quote(k), 'm')),
      columns.params.map(k => sortHeader(k, 'params.' + quote(k), 'p')),
      columns.tags.map(k => sortHeader(k, 'tags.' + quote(k), 't')));
    const tbody = h('tbody');
    const fragment = document.createDocumentFragment();
    for (const row of rows) {
      const box = h('input', { type: 'checkbox', 'aria-label': 'Select ' + row.runName, checked: state.selected.has(row.runId) });
      box.addEventListener('change', () => { if (box.checked) state.selected.add(row.runId); else state.selected.delete(row.runId); compare.disabled = state.selected.size < 2; });
      fragment.appendChild(h('tr', { class: 'run-row', dataset: { runId: row.runId } },
        h('td', null, box),
        h('td', null, h('a', { href: `#/runs/${enc(row.runId)}` }, row.runName || row.runId)),
        h('td', null, badge(row.status)),
        h('td', null, fmtTime(row.startTime)),
        h('td', null, fmtDuration(row.startTime, row.endTime)),
        row.metrics.map(v => h('td', { class: 'num' }, fmtNumber(v))),
        row.params.map(v => h('td', null, v ?? '')),
        row.tags.map(v => h('td', null, v ?? ''))));
    }
    tbody.appendChild(fragment);
    replace(holder, h('table', { class: 'grid' }, h('thead', null, head), tbody));
    compare.disabled = state.selected.size < 2;
    document.body.dataset.runsShownAt ||= String(performance.now());
  }

  function drawChooser() {
    const keys = state.keys || state.table?.pageKeys;
    if (!keys || !state.table) return;
    const chosen = state.table.columns;
    const needle = chooserSearch.value.trim().toLowerCase();
    const group = (kind, list, label) => list.filter(k => !needle || k.toLowerCase().includes(needle)).slice(0, 500).map(k => {
      const box = h('input', { type: 'checkbox', checked: chosen[kind].includes(k), dataset: { kind, key: k } });
      box.addEventListener('change', () => {
        const columns = state.columns || { metrics: [...chosen.metrics], params: [...chosen.params], tags: [...chosen.tags] };
        columns[kind] = box.checked ? [...columns[kind], k] : columns[kind].filter(x => x !== k);
        state.columns = columns;
        saveColumns();
        load();
      });
      return h('label', null, box, ' ', h('span', { class: 'kind' }, label), k);
    });
    replace(chooserBody, group('metrics', keys.metrics, 'metric '), group('params', keys.params, 'param '), group('tags', keys.tags, 'tag '),
      keys.sampled ? h('p', { class: 'muted' }, `Keys from the newest runs.`) : null);
  }

  // The name and the first page load together.
  const named = get(`/api/v1/experiments/${enc(experimentId)}`, { signal: ctx.signal }).then(e => { title.textContent = e.name; });
  await Promise.all([load(), named]);
  // The full key list loads after the first rows are on screen.
  get(`/api/v1/dashboard/experiments/${enc(experimentId)}/keys`, { signal: ctx.signal }).then(keys => { state.keys = keys; drawChooser(); }).catch(() => {});
  ctx.every(() => (state.table?.rows.some(r => r.status === 'Running') ? 3000 : 15000), () => load(true));
}

function seriesBy(list) {
  const byKey = new Map();
  for (const s of list) {
    if (!byKey.has(s.key)) byKey.set(s.key, []);
    byKey.get(s.key).push(s);
  }
  return byKey;
}

/**
 * The chart grid for one or more runs: a chart per metric key, x axis and log scale switchable, keys
 * filterable. The first keys' series load first, so the charts in view draw before the rest arrive.
 */
function chartPanel(ctx, runIds, labelOf, firstKeys) {
  const x = h('select', { 'aria-label': 'X axis' }, h('option', { value: 'step' }, 'x: step'), h('option', { value: 'relative' }, 'x: relative time'), h('option', { value: 'time' }, 'x: wall time'));
  const log = h('input', { type: 'checkbox', 'aria-label': 'Log scale' });
  const find = h('input', { type: 'search', placeholder: 'Find a metric…', 'aria-label': 'Find a metric' });
  const grid = h('div', { class: 'charts', id: 'charts' });
  const note = h('span', { class: 'muted' });
  const el = h('section', null, h('div', { class: 'toolbar' }, x, h('label', null, log, ' log scale'), find, note,
    h('span', { class: 'muted' }, 'Drag to zoom, double-click to reset.')), grid);
  let series = [];
  let charts = new Map();
  const labelled = list => list.map(s => ({ ...s, label: labelOf(s.runId) }));
  const add = (key, list) => {
    const chart = metricChart(key, labelled(list), { x: x.value, log: log.checked });
    charts.set(key, chart);
    grid.appendChild(chart.el);
  };
  const matches = key => { const needle = find.value.trim().toLowerCase(); return !needle || key.toLowerCase().includes(needle); };
  const draw = () => {
    clear(grid);
    charts = new Map();
    const byKey = seriesBy(series);
    if (byKey.size === 0) { grid.appendChild(h('p', { class: 'muted' }, 'No metrics logged yet.')); note.textContent = ''; return; }
    for (const [key, list] of byKey) if (matches(key)) add(key, list);
    note.textContent = `${byKey.size} metric${byKey.size === 1 ? '' : 's'}`;
  };
  x.addEventListener('change', draw);
  log.addEventListener('change', draw);
  find.addEventListener('input', draw);
  let phased = Array.isArray(firstKeys) && firstKeys.length > 12;
  const load = async () => {
    if (phased) {
      // The first charts from a small answer, then the rest appended below them.
      phased = false;
      const head = firstKeys.slice(0, 12);
      series = (await post('/api/v1/dashboard/metric-series', { runIds, keys: head }, { signal: ctx.signal })).series;
      draw();
      const rest = (await post('/api/v1/dashboard/metric-series', { runIds, keys: firstKeys.slice(12) }, { signal: ctx.signal })).series;
      series = series.concat(rest);
      for (const [key, list] of seriesBy(rest)) if (matches(key)) add(key, list);
      note.textContent = `${seriesBy(series).size} metrics`;
      return;
    }
    const result = await request('/api/v1/dashboard/metric-series', { method: 'POST', body: { runIds }, signal: ctx.signal });
    if (!result.changed) return;
    const keysBefore = [...seriesBy(series).keys()].sort().join('\n');
    series = result.data.series;
    if ([...seriesBy(series).keys()].sort().join('\n') !== keysBefore || charts.size === 0) { draw(); return; }
    for (const [key, list] of seriesBy(series)) charts.get(key)?.update(labelled(list));
  };
  return { el, load };
}

function trainJobOf(run) {
  const tag = run.data.tags.find(t => t.key === 'capstan.trainjob')?.value;
  if (!tag || !tag.includes('/')) return null;
  const [ns, name] = tag.split('/', 2);
  return { ns, name };
}

export async function runPage(view, ctx, query, runId) {
  let run = await get(`/api/v1/runs/${enc(runId)}`, { signal: ctx.signal });
  const experimentLoad = get(`/api/v1/experiments/${enc(run.info.experimentId)}`, { signal: ctx.signal });
  const header = h('div');
  const summary = h('div', { class: 'card' });
  const params = h('div', { class: 'card', id: 'params' });
  const tags = h('div', { class: 'card', id: 'tags' });
  const charts = chartPanel(ctx, [runId], () => run.info.runName, run.data.metrics.map(m => m.key).sort());
  const chartsLoad = charts.load();
  const experiment = await experimentLoad;
  const job = trainJobOf(run);
  const parent = run.data.tags.find(t => t.key === 'mlflow.parentRunId')?.value;

  const drawInfo = () => {
    replace(header, h('h1', null, h('a', { href: `#/experiments/${enc(experiment.experimentId)}` }, experiment.name), ' / ', run.info.runName, ' ', badge(run.info.status)));
    replace(summary, kvList([
      ['Run ID', run.info.runId],
      ['Started', fmtTime(run.info.startTime)],
      ['Duration', fmtDuration(run.info.startTime, run.info.endTime)],
      ['User', run.info.userId || ''],
      ['Artifacts', run.info.artifactUri],
      ...(job ? [['Train job', h('a', { href: `#/jobs/${enc(job.ns)}/${enc(job.name)}` }, `${job.ns}/${job.name}`)]] : []),
      ...(parent ? [['Parent run', h('a', { href: `#/runs/${enc(parent)}` }, parent), ' ', h('a', { href: `#/tuning/run/${enc(parent)}` }, '(tuning)')]] : []),
      ...(run.inputs || []).map(i => ['Dataset', `${i.dataset.name} (digest ${i.dataset.digest}, ${i.dataset.sourceType})`]),
    ]));
    replace(params, h('h2', null, 'Parameters'), run.data.params.length ? table([{ label: 'Name', value: p => p.key }, { label: 'Value', value: p => p.value }], run.data.params) : h('p', { class: 'muted' }, 'None.'));
    replace(tags, h('h2', null, 'Tags'), run.data.tags.length ? table([{ label: 'Name', value: t => t.key }, { label: 'Value', value: t => t.value }], run.data.tags) : h('p', { class: 'muted' }, 'None.'));
  };
  drawInfo();

  const artifacts = artifactBrowser(ctx, runId);
  const log = job ? h('pre', { class: 'log', id: 'job-log' }) : null;
  replace(view, header, summary, h('h2', null, 'Metrics'), charts.el, h('div', { class: 'split' }, h('div', null, params, tags), h('div', { class: 'card' }, h('h2', null, 'Artifacts'), artifacts.el)),
    log ? h('div', { class: 'card' }, h('h2', null, 'Log of train job ', `${job.ns}/${job.name}`), log) : null);
  await chartsLoad;
  artifacts.load('');
  if (log) followLog(ctx, `/api/v1/namespaces/${enc(job.ns)}/trainjobs/${enc(job.name)}/log?follow=true`, log);
  ctx.every(() => (run.info.status === 'Running' ? 2000 : 15000), async () => {
    const r = await request(`/api/v1/runs/${enc(runId)}`, { signal: ctx.signal });
    if (r.changed) { run = r.data; drawInfo(); }
    await charts.load();
  });
}

export function followLog(ctx, path, pre) {
  pre.textContent = '';
  stream(path, text => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(text));
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }, ctx.signal).catch(e => { if (e.name !== 'AbortError') pre.appendChild(document.createTextNode(`\n[log unavailable: ${e.message}]`)); });
}

const textTypes = /\.(txt|log|json|ya?ml|md|csv|tsv|py|cs|sh|toml|ini|cfg|xml|html|js|ts|mlmodel)$|(^|\/)(MLmodel|requirements\.txt|Dockerfile|[^./]+)$/i;
const imageTypes = /\.(png|jpe?g|gif|svg|webp|bmp)$/i;

function artifactBrowser(ctx, runId) {
  const crumbs = h('div', { class: 'toolbar' });
  const list = h('ul');
  const preview = h('div', { id: 'artifact-preview' });
  const el = h('div', { class: 'artifacts' }, crumbs, list, preview);
  const url = p => `/api/v1/runs/${enc(runId)}/artifacts/${p.split('/').map(enc).join('/')}`;
  const load = async path => {
    const page = await get(`/api/v1/runs/${enc(runId)}/artifacts${path ? '?path=' + enc(path) : ''}`, { signal: ctx.signal });
    const parts = path ? path.split('/') : [];
    replace(crumbs, h('button', { onclick: () => load('') }, 'root'), parts.map((p, i) => [' / ', h('button', { onclick: () => load(parts.slice(0, i + 1).join('/')) }, p)]));
    const items = page.items || [];
    replace(list, items.length === 0 ? h('li', { class: 'muted' }, 'No artifacts.') : items.map(f => h('li', null,
      f.isDir ? h('button', { onclick: () => load(f.path) }, f.path.split('/').pop() + '/')
        : h('button', { onclick: () => show(f) }, f.path.split('/').pop()),
      f.isDir ? null : h('span', { class: 'muted' }, ' ', f.fileSize != null ? `${fmtNumber(f.fileSize)} B` : ''))));
  };
  const show = async f => {
    const name = f.path.split('/').pop();
    const download = h('a', { href: url(f.path), download: name }, 'Download ', name);
    if (imageTypes.test(name)) { replace(preview, h('h2', null, name), h('img', { class: 'preview', src: url(f.path), alt: name }), h('p', null, download)); return; }
    if (textTypes.test(name) && (f.fileSize == null || f.fileSize < 2_000_000)) {
      const response = await fetch(url(f.path), { signal: ctx.signal });
      const text = await response.text();
      replace(preview, h('h2', null, name), h('pre', { class: 'preview' }, text.length > 200_000 ? text.slice(0, 200_000) + '\n… (truncated)' : text), h('p', null, download));
      return;
    }
    replace(preview, h('h2', null, name), h('p', { class: 'muted' }, 'No preview for this file type.'), h('p', null, download));
  };
  return { el, load };
}

export async function comparePage(view, ctx, query) {
  const ids = (query.get('runs') || '').split(',').filter(Boolean);
  if (ids.length < 2) { replace(view, h('h1', null, 'Compare runs'), h('p', { class: 'error' }, 'Choose at least two runs in an experiment\'s table.')); return; }
  const runs = await Promise.all(ids.map(id => get(`/api/v1/runs/${enc(id)}`, { signal: ctx.signal })));
  const names = new Map(runs.map(r => [r.info.runId, r.info.runName || r.info.runId]));
  const paramKeys = [...new Set(runs.flatMap(r => r.data.params.map(p => p.key)))].sort();
  const valueOf = (r, key) => r.data.params.find(p => p.key === key)?.value;
  const differing = paramKeys.filter(k => new Set(runs.map(r => valueOf(r, k) ?? '\u0000')).size > 1);
  const all = h('input', { type: 'checkbox', 'aria-label': 'Show all parameters' });
  const paramTable = h('div', { id: 'param-diff' });
  const drawParams = () => {
    const keys = all.checked ? paramKeys : differing;
    replace(paramTable, keys.length === 0 ? h('p', { class: 'muted' }, all.checked ? 'No parameters.' : 'All parameters are the same.')
      : table([{ label: 'Parameter', value: k => k }, ...runs.map(r => ({ label: names.get(r.info.runId), value: k => valueOf(r, k) ?? '—' }))], keys, () => ({ class: 'param-row' })));
  };
  all.addEventListener('change', drawParams);
  const metricKeys = [...new Set(runs.flatMap(r => r.data.metrics.map(m => m.key)))].sort();
  const metricOf = (r, key) => r.data.metrics.find(m => m.key === key)?.value;
  const charts = chartPanel(ctx, ids, id => names.get(id));
  replace(view, h('h1', null, 'Compare ', String(runs.length), ' runs'),
    h('div', { class: 'card' }, table([{ label: 'Run', value: r => h('a', { href: `#/runs/${enc(r.info.runId)}` }, names.get(r.info.runId)) }, { label: 'Status', value: r => badge(r.info.status) }, { label: 'Started', value: r => fmtTime(r.info.startTime) }], runs)),
    h('div', { class: 'card' }, h('h2', null, 'Parameters that differ'), h('label', null, all, ' show all'), paramTable),
    h('div', { class: 'card' }, h('h2', null, 'Latest metrics'), table([{ label: 'Metric', value: k => k }, ...runs.map(r => ({ label: names.get(r.info.runId), value: k => fmtNumber(metricOf(r, k)), class: 'num' }))], metricKeys)),
    h('h2', null, 'Metrics'), charts.el);
  drawParams();
  await charts.load();
  ctx.every(5000, charts.load);
}
