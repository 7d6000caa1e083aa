// Tuning: an Experiment resource's trials (runs nested under its parent run through the
// mlflow.parentRunId tag) as parallel coordinates, objective over trials, and the Pareto front.
import { h, replace, badge, fmtNumber, fmtTime, table } from './dom.js';
import { get, post, enc, searchAllRuns } from './api.js';
import { objectiveChart, parallelCoordinates, paretoChart, paretoFront } from './charts.js';
import { conditionsTable } from './resources.js';

const parentTag = 'mlflow.parentRunId';
const experimentTag = 'capstan.experiment';

export async function tuningListPage(view, ctx) {
  const resources = h('div', { class: 'card', id: 'tuning-resources' }, h('p', { class: 'muted' }, 'Loading…'));
  const studies = h('div', { class: 'card', id: 'tuning-studies' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(view, h('h1', null, 'Tuning'), h('h2', null, 'Experiment resources'), resources, h('h2', null, 'Parent runs with trials'), studies);
  const list = await get('/api/v1/dashboard/resources/experiments', { signal: ctx.signal });
  replace(resources, !list.supported ? h('p', { class: 'muted' }, 'This server does not run Experiment resources yet; tuning runs logged by any client are listed below.')
    : list.items.length === 0 ? h('p', { class: 'muted' }, 'No Experiment resources. capstan apply -f an Experiment to start a search.')
      : table([
        { label: 'Name', value: r => (r.status?.parentRunId || r.status?.runId) ? h('a', { href: `#/tuning/run/${enc(r.status.parentRunId || r.status.runId)}` }, r.metadata.name) : r.metadata.name },
        { label: 'Namespace', value: r => r.metadata.namespace },
        { label: 'Phase', value: r => badge(r.status?.phase || (r.status?.conditions || []).find(c => c.status === 'True')?.type || 'Pending') },
        { label: 'Trials', value: r => String(r.status?.trials ?? r.status?.trialsSucceeded ?? '') },
        { label: 'Message', value: r => r.status?.message || '' },
      ], list.items));

  const experiments = (await get('/api/v1/experiments?maxResults=1000', { signal: ctx.signal })).items || [];
  const children = experiments.length === 0 ? [] : (await post('/api/v1/runs/search', { experimentIds: experiments.map(e => e.experimentId), filter: `tags.\`${parentTag}\` LIKE '%'`, maxResults: 5000 }, { signal: ctx.signal })).items || [];
  const parents = new Map();
  for (const run of children) {
    const parent = run.data.tags.find(t => t.key === parentTag)?.value;
    if (!parent) continue;
    const entry = parents.get(parent) || { id: parent, experimentId: run.info.experimentId, trials: 0, running: 0, latest: 0 };
    entry.trials++;
    if (run.info.status === 'Running') entry.running++;
    entry.latest = Math.max(entry.latest, run.info.startTime);
    parents.set(parent, entry);
  }
  const rows = [...parents.values()].sort((a, b) => b.latest - a.latest);
  const names = new Map(experiments.map(e => [e.experimentId, e.name]));
  const parentRuns = await Promise.all(rows.slice(0, 100).map(r => get(`/api/v1/runs/${enc(r.id)}`, { signal: ctx.signal }).catch(() => null)));
  replace(studies, rows.length === 0 ? h('p', { class: 'muted' }, 'No runs with trials yet.') : table([
    { label: 'Parent run', value: r => h('a', { href: `#/tuning/run/${enc(r.id)}` }, parentRuns[rows.indexOf(r)]?.info.runName || r.id) },
    { label: 'Experiment', value: r => names.get(r.experimentId) || r.experimentId },
    { label: 'Trials', value: r => String(r.trials) },
    { label: 'Running', value: r => String(r.running) },
    { label: 'Latest trial', value: r => fmtTime(r.latest) },
  ], rows, () => ({ class: 'study-row' })));
}

/**
 * Objectives from the Experiment resource (Katib's objective, or its multi-objective list), else from
 * the parent run's capstan.experiment.objective tag as the reconciler writes it: "maximize accuracy, minimize cost".
 */
function objectivesOf(resource, parent) {
  const objective = resource?.spec?.objective;
  const goalOf = type => (String(type || 'maximize').toLowerCase() === 'minimize' ? 'minimize' : 'maximize');
  if (objective) {
    const list = Array.isArray(objective.objectives) && objective.objectives.length
      ? objective.objectives.map(o => ({ metric: o.metricName || o.name, goal: goalOf(o.type) }))
      : [{ metric: objective.objectiveMetricName, goal: goalOf(objective.type) }];
    return list.filter(o => o.metric);
  }
  const tag = parent.data.tags.find(t => t.key === 'capstan.experiment.objective')?.value;
  if (!tag) return [];
  return tag.split(',').map(part => part.trim().split(/\s+/)).filter(p => p.length === 2).map(([goal, metric]) => ({ metric, goal: goalOf(goal) }));
}

/** Katib's observations from the resource's status: per run, per metric, {min, max, latest}. */
function observationsOf(resource) {
  const byRun = new Map();
  for (const trial of resource?.status?.trialResults || []) {
    if (!trial.runId || !trial.observation?.metrics) continue;
    byRun.set(trial.runId, new Map(trial.observation.metrics.map(m => [m.name, m])));
  }
  return byRun;
}

/** Which value of a metric's history counts: the spec's metricStrategies, else min when minimizing, max when maximizing. */
function strategyOf(resource, metric, goal) {
  const strategy = (resource?.spec?.objective?.metricStrategies || []).find(m => m.name === metric)?.value;
  return String(strategy || (goal === 'minimize' ? 'min' : 'max')).toLowerCase();
}

export async function tuningPage(view, ctx, query, parentId) {
  const parent = await get(`/api/v1/runs/${enc(parentId)}`, { signal: ctx.signal });
  const owner = parent.data.tags.find(t => t.key === experimentTag)?.value;
  let resource = null;
  if (owner && owner.includes('/')) {
    const [ns, name] = owner.split('/', 2);
    // Listed rather than fetched by name, so a server without the kind (or without this one) answers 200, not 404.
    const list = await get(`/api/v1/dashboard/resources/experiments?namespace=${enc(ns)}`, { signal: ctx.signal }).catch(() => ({ items: [] }));
    resource = list.items.find(r => r.metadata.name === name) || null;
  }

  let trials = [];
  const loadTrials = async () => {
    trials = await searchAllRuns([parent.info.experimentId], `tags.\`${parentTag}\` = '${parentId.replace(/'/g, "\\'")}'`);
    trials.sort((a, b) => a.info.startTime - b.info.startTime || a.info.runId.localeCompare(b.info.runId));
  };
  await loadTrials();

  const metricKeys = () => [...new Set(trials.flatMap(t => t.data.metrics.map(m => m.key)))].sort();
  const configured = objectivesOf(resource, parent);
  const keys = metricKeys();
  const first = configured[0] || { metric: keys[0], goal: 'maximize' };
  const second = configured[1] || null;
  const goalSelect = value => h('select', null, ['maximize', 'minimize'].map(g => h('option', { value: g, selected: g === value }, g)));
  const metricSelect = (value, allowNone) => h('select', null, allowNone ? h('option', { value: '' }, '(none)') : null, keys.map(k => h('option', { value: k, selected: k === value }, k)));
  const objective = metricSelect(first.metric, false); objective.setAttribute('aria-label', 'Objective metric');
  const goal = goalSelect(first.goal); goal.setAttribute('aria-label', 'Objective goal');
  const objective2 = metricSelect(second?.metric || '', true); objective2.setAttribute('aria-label', 'Second objective');
  const goal2 = goalSelect(second?.goal || 'minimize'); goal2.setAttribute('aria-label', 'Second objective goal');
  const summary = h('div', { class: 'card', id: 'tuning-summary' });
  const plots = h('div', { class: 'charts', id: 'tuning-plots' });
  const trialTable = h('div', { class: 'scroll', id: 'trials' });

  replace(view,
    h('h1', null, h('a', { href: '#/tuning' }, 'Tuning'), ' / ', resource ? resource.metadata.name : parent.info.runName),
    resource ? h('div', { class: 'card' }, h('h2', null, 'Experiment ', resource.metadata.namespace, '/', resource.metadata.name), conditionsTable(resource.status?.conditions)) : null,
    h('div', { class: 'toolbar' }, 'Objective', objective, goal, 'Second objective', objective2, goal2,
      h('a', { href: `#/runs/${enc(parentId)}` }, 'parent run'), configured.length ? h('span', { class: 'muted' }, resource ? '(from the Experiment resource)' : '(from the parent run\'s tags)') : null),
    summary, plots, h('h2', null, 'Trials'), trialTable);

  const draw = () => {
    const metric = objective.value, direction = goal.value;
    const observed = observationsOf(resource);
    const valueOf = (t, key, keyGoal = direction) => {
      const o = observed.get(t.info.runId)?.get(key);
      if (o) { const v = o[strategyOf(resource, key, keyGoal)] ?? o.latest; if (Number.isFinite(v)) return v; }
      const m = t.data.metrics.find(x => x.key === key);
      return m && Number.isFinite(m.value) ? m.value : null;
    };
    const values = trials.map(t => valueOf(t, metric));
    let bestIndex = -1;
    values.forEach((v, i) => { if (v !== null && (bestIndex < 0 || (direction === 'minimize' ? v < values[bestIndex] : v > values[bestIndex]))) bestIndex = i; });
    const best = bestIndex >= 0 ? trials[bestIndex] : null;
    const statuses = {};
    for (const t of trials) statuses[t.info.status] = (statuses[t.info.status] || 0) + 1;
    replace(summary,
      h('p', null, `${trials.length} trials: `, Object.entries(statuses).map(([s, n]) => [badge(s), String(n), ' '])),
      best ? h('p', { id: 'best-trial' }, 'Best trial: ', h('a', { href: `#/runs/${enc(best.info.runId)}` }, best.info.runName), ` — ${metric} = ${fmtNumber(values[bestIndex])} (${direction}); `,
        best.data.params.map(p => `${p.key}=${p.value}`).join(', ')) : h('p', { class: 'muted' }, `No trial has reported ${metric || 'an objective'} yet.`));

    const paramKeys = [...new Set(trials.flatMap(t => t.data.params.map(p => p.key)))].sort()
      .filter(k => new Set(trials.map(t => t.data.params.find(p => p.key === k)?.value)).size > 1 || trials.length === 1);
    const metric2 = objective2.value;
    const dims = [...paramKeys, metric, ...(metric2 && metric2 !== metric ? [metric2] : [])].filter(Boolean);
    const rows = trials.map((t, i) => ({
      best: i === bestIndex,
      values: Object.fromEntries([...t.data.params.map(p => [p.key, p.value]), [metric, values[i]], ...(metric2 ? [[metric2, valueOf(t, metric2, goal2.value)]] : [])]),
    }));
    const pareto = new Set();
    const charts = [];
    if (trials.length > 0) {
      charts.push(objectiveChart(trials.map((t, i) => ({ value: values[i] })), direction, bestIndex));
      charts.push(parallelCoordinates(dims, rows, metric));
    }
    if (metric2 && metric2 !== metric) {
      const points = trials.map((t, i) => ({ i, a: values[i], b: valueOf(t, metric2, goal2.value) })).filter(p => p.a !== null && p.b !== null);
      const front = paretoFront(points, direction, goal2.value);
      points.forEach((p, k) => { p.pareto = front[k]; if (front[k]) pareto.add(p.i); });
      if (points.length > 0) charts.push(paretoChart(metric, metric2, points));
    }
    replace(plots, charts);
    const order = trials.map((t, i) => i).sort((a, b) => (values[a] === null) - (values[b] === null) || (direction === 'minimize' ? values[a] - values[b] : values[b] - values[a]));
    replace(trialTable, table([
      { label: '#', value: i => String(i + 1) },
      { label: 'Trial', value: i => h('a', { href: `#/runs/${enc(trials[i].info.runId)}` }, trials[i].info.runName) },
      { label: 'Status', value: i => badge(trials[i].info.status) },
      { label: metric || 'objective', value: i => fmtNumber(values[i]), class: 'num' },
      ...(metric2 ? [{ label: metric2, value: i => fmtNumber(valueOf(trials[i], metric2, goal2.value)), class: 'num' }, { label: 'Pareto', value: i => (pareto.has(i) ? '●' : '') }] : []),
      ...paramKeys.map(k => ({ label: k, value: i => trials[i].data.params.find(p => p.key === k)?.value ?? '' })),
    ], order, i => ({ class: 'trial-row' + (i === bestIndex ? ' best' : '') })));
  };
  for (const control of [objective, goal, objective2, goal2]) control.addEventListener('change', draw);
  draw();

  let fingerprint = JSON.stringify(trials.map(t => [t.info.runId, t.info.status, t.data.metrics.length]));
  ctx.every(() => (trials.some(t => t.info.status === 'Running') ? 3000 : 15000), async () => {
    await loadTrials();
    const next = JSON.stringify(trials.map(t => [t.info.runId, t.info.status, t.data.metrics.map(m => m.value)]));
    if (next !== fingerprint) { fingerprint = next; draw(); }
  });
}
