// Jobs and services, read generically through the resource API: kind, spec, status with its
// conditions, events, and the log where the kind has one. Pages refresh while they are open.
import { h, replace, badge, fmtTime, fmtNumber, kvList, table } from './dom.js';
import { get, request, enc } from './api.js';
import { followLog } from './runs.js';
import { servingFigures } from './serving.js';

export function conditionsTable(conditions) {
  if (!conditions || conditions.length === 0) return h('p', { class: 'muted' }, 'No conditions reported yet.');
  return table([
    { label: 'Type', value: c => c.type },
    { label: 'Status', value: c => badge(c.status) },
    { label: 'Reason', value: c => c.reason || '' },
    { label: 'Message', value: c => c.message || '' },
    { label: 'Since', value: c => fmtTime(c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0) },
  ], conditions, () => ({ class: 'condition-row' }));
}

function eventsTable(events) {
  if (!events || events.length === 0) return h('p', { class: 'muted' }, 'No events.');
  return table([
    { label: 'Type', value: e => badge(e.type) },
    { label: 'Reason', value: e => e.reason },
    { label: 'Message', value: e => e.message },
    { label: 'Count', value: e => String(e.count ?? 1) },
    { label: 'Last seen', value: e => fmtTime(Date.parse(e.lastTimestamp || e.timestamp || e.firstTimestamp || '') || 0) },
  ], events.slice().reverse(), () => ({ class: 'event-row' }));
}

function phaseOf(resource) {
  if (resource.status?.phase) return resource.status.phase;
  const ready = (resource.status?.conditions || []).find(c => c.type === 'Ready');
  return ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Pending';
}

/** A value from status as text: numbers formatted, objects as compact JSON (escaped as text). */
function statusValue(v) {
  if (typeof v === 'number') return fmtNumber(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

async function resourceList(view, ctx, title, plural, route, columns, emptyNote) {
  const card = h('div', { class: 'card', id: plural });
  replace(view, h('h1', null, title), card);
  const refresh = async () => {
    const r = await request(`/api/v1/dashboard/resources/${plural}`, { signal: ctx.signal });
    if (!r.changed) return;
    const list = r.data;
    replace(card, !list.supported ? h('p', { class: 'muted' }, `This server does not run ${list.kind.replace(/List$/, '')} resources yet.`)
      : list.items.length === 0 ? h('p', { class: 'muted' }, emptyNote)
        : table([
          { label: 'Name', value: x => h('a', { href: `#/${route}/${enc(x.metadata.namespace)}/${enc(x.metadata.name)}` }, x.metadata.name) },
          { label: 'Namespace', value: x => x.metadata.namespace },
          { label: 'Phase', value: x => badge(phaseOf(x)) },
          ...columns,
          { label: 'Message', value: x => x.status?.message || '' },
        ], list.items, () => ({ class: 'resource-row' })));
  };
  await refresh();
  ctx.every(3000, refresh);
}

export function jobsPage(view, ctx) {
  return resourceList(view, ctx, 'Train jobs', 'trainjobs', 'jobs', [
    { label: 'Attempts', value: x => String(x.status?.attempts ?? '') },
    { label: 'Started', value: x => fmtTime(Date.parse(x.status?.startTime || '') || 0) },
    { label: 'Run', value: x => (x.status?.runId ? h('a', { href: `#/runs/${enc(x.status.runId)}` }, 'run') : '') },
  ], 'No train jobs. ./capstan apply -f examples/trainjob-tabular.yaml submits one.');
}

export function servicesPage(view, ctx) {
  return resourceList(view, ctx, 'Inference services', 'inferenceservices', 'services', [
    { label: 'URL', value: x => x.status?.url || x.status?.address?.url || '' },
    { label: 'Canary', value: x => trafficText(x) },
  ], 'No inference services.');
}

/** The canary split from status (traffic list) or spec (canary.trafficPercent). */
function trafficOf(resource) {
  const traffic = resource.status?.traffic;
  if (Array.isArray(traffic) && traffic.length) {
    return traffic.map(t => ({
      name: [t.tag, t.version !== undefined ? 'v' + t.version : (t.revisionName || t.name)].filter(Boolean).join(' ') || '?',
      percent: Number(t.percent ?? t.trafficPercent ?? 0),
    }));
  }
  const canary = resource.spec?.canary || resource.spec?.predictor?.canary;
  const percent = Number(canary?.trafficPercent ?? resource.spec?.canaryTrafficPercent ?? resource.status?.canaryTrafficPercent);
  if (Number.isFinite(percent) && percent > 0) return [{ name: 'stable', percent: 100 - percent }, { name: 'canary', percent }];
  return null;
}

function trafficText(resource) {
  const split = trafficOf(resource);
  return split ? split.map(s => `${s.name} ${s.percent}%`).join(' / ') : '';
}

async function resourcePage(view, ctx, plural, ns, name, backRoute, backTitle, extra) {
  const base = `/api/v1/namespaces/${enc(ns)}/${plural}/${enc(name)}`;
  const header = h('div');
  const status = h('div', { class: 'card', id: 'status' });
  const conditions = h('div', { class: 'card', id: 'conditions' });
  const events = h('div', { class: 'card', id: 'events' });
  const log = h('pre', { class: 'log', id: 'log' });
  const logCard = h('div', { class: 'card' }, h('h2', null, 'Log'), log);
  replace(view, header, status, extra?.el, conditions, events, extra?.noLog ? null : logCard);
  let last = '';
  const refresh = async () => {
    const resource = await get(base, { signal: ctx.signal });
    const text = JSON.stringify(resource);
    if (text !== last) {
      last = text;
      replace(header, h('h1', null, h('a', { href: '#/' + backRoute }, backTitle), ' / ', ns, '/', name, ' ', badge(phaseOf(resource))));
      const fields = Object.entries(resource.status || {}).filter(([k]) => k !== 'conditions');
      replace(status, h('h2', null, 'Status'), fields.length ? kvList(fields.map(([k, v]) => [k, k === 'runId' ? h('a', { href: `#/runs/${enc(v)}` }, v) : statusValue(v)])) : h('p', { class: 'muted' }, 'No status yet.'),
        h('details', null, h('summary', null, 'Spec'), h('pre', { class: 'preview' }, JSON.stringify(resource.spec, null, 2))));
      replace(conditions, h('h2', null, 'Conditions'), conditionsTable(resource.status?.conditions));
      extra?.draw(resource);
    }
    const list = await get(`${base}/events`, { signal: ctx.signal }).catch(() => ({ items: [] }));
    replace(events, h('h2', null, 'Events'), eventsTable(list.items));
  };
  await refresh();
  ctx.every(2000, refresh);
  if (!extra?.noLog) followLog(ctx, `${base}/log?follow=true`, log);
}

export function jobPage(view, ctx, query, ns, name) {
  return resourcePage(view, ctx, 'trainjobs', ns, name, 'jobs', 'Jobs');
}

export function servicePage(view, ctx, query, ns, name) {
  const split = h('div');
  const serving = servingFigures(ctx, ns, name);
  const el = h('div', { class: 'card', id: 'serving' }, h('h2', null, 'Serving'), split, serving.el);
  ctx.every(2000, serving.refresh);
  serving.refresh().catch(e => console.warn('serving figures', e));
  return resourcePage(view, ctx, 'inferenceservices', ns, name, 'services', 'Services', {
    el,
    draw(resource) {
      const traffic = trafficOf(resource);
      replace(split, traffic ? [h('p', null, 'Traffic split'), h('div', { class: 'splitbar' }, traffic.map(s => { const span = h('span', { title: `${s.name} ${s.percent}%` }, `${s.name} ${s.percent}%`); span.style.flex = String(Math.max(s.percent, 0.5)); return span; }))] : h('p', { class: 'muted' }, 'No canary: all traffic to one version.'));
    },
  });
}
