// The model registry: models, their versions and aliases, each version's lineage (run, data set
// digest) and where it is served (InferenceServices whose spec names it).
import { h, replace, badge, fmtTime, table } from './dom.js';
import { get, enc } from './api.js';

export async function modelsPage(view, ctx) {
  const page = await get('/api/v1/models?maxResults=1000', { signal: ctx.signal });
  const items = page.items || [];
  replace(view, h('h1', null, 'Registered models'), h('div', { class: 'card', id: 'models' }, items.length === 0
    ? h('p', { class: 'muted' }, 'No registered models yet. ./capstan quickstart registers iris-classifier.')
    : table([
      { label: 'Name', value: m => h('a', { href: `#/models/${enc(m.name)}` }, m.name) },
      { label: 'Latest version', value: m => String(Math.max(0, ...(m.latestVersions || []).map(v => v.version)) || '') },
      { label: 'Aliases', value: m => (m.aliases || []).map(a => badge(`@${a.alias} → v${a.version}`, 'alias')) },
      { label: 'Updated', value: m => fmtTime(m.lastUpdatedTimestamp) },
      { label: 'Description', value: m => m.description || '' },
    ], items, () => ({ class: 'model-row' }))));
}

/** Whether an InferenceService's spec points at this version: models:/name/v, models:/name@alias, or {model|name, version}. */
export function servesVersion(service, name, version, aliases) {
  const wanted = new Set([`models:/${name}/${version}`, ...aliases.map(a => `models:/${name}@${a}`)]);
  // What the service resolved and serves (status.traffic: model reference, version), else what its spec names.
  const served = (service.status?.traffic || []).some(t => typeof t.model === 'string'
    && (t.model === `models:/${name}` || t.model.startsWith(`models:/${name}/`) || t.model.startsWith(`models:/${name}@`))
    && String(t.version) === String(version) && Number(t.percent ?? 100) > 0);
  if (served) return true;
  let found = false;
  const walk = node => {
    if (found || node === null || node === undefined) return;
    if (typeof node === 'string') { if (wanted.has(node)) found = true; return; }
    if (Array.isArray(node)) { node.forEach(walk); return; }
    if (typeof node === 'object') {
      const model = node.model ?? node.modelName ?? node.registeredModel;
      const v = node.version ?? node.modelVersion;
      if (model === name && v !== undefined && String(v) === String(version)) { found = true; return; }
      if (model === name && node.alias && aliases.includes(node.alias)) { found = true; return; }
      Object.values(node).forEach(walk);
    }
  };
  walk(service.spec);
  return found;
}

export async function modelPage(view, ctx, query, name) {
  const model = await get(`/api/v1/models/${enc(name)}`, { signal: ctx.signal });
  const filter = `name = '${name.replace(/'/g, "\\'")}'`;
  const versions = ((await get(`/api/v1/model-versions?maxResults=1000&filter=${enc(filter)}`, { signal: ctx.signal })).items || []).sort((a, b) => b.version - a.version);
  const services = await get('/api/v1/dashboard/resources/inferenceservices', { signal: ctx.signal }).catch(() => ({ items: [], supported: false }));
  const runs = new Map();
  await Promise.all([...new Set(versions.slice(0, 50).map(v => v.runId).filter(Boolean))].map(async id => {
    runs.set(id, await get(`/api/v1/runs/${enc(id)}`, { signal: ctx.signal }).catch(() => null));
  }));
  const aliasesOf = v => (model.aliases || []).filter(a => a.version === v.version).map(a => a.alias);
  replace(view,
    h('h1', null, h('a', { href: '#/models' }, 'Models'), ' / ', model.name),
    model.description ? h('p', null, model.description) : null,
    h('div', { class: 'card' }, h('h2', null, 'Aliases'), (model.aliases || []).length === 0 ? h('p', { class: 'muted' }, 'None.') : (model.aliases || []).map(a => badge(`@${a.alias} → v${a.version}`, 'alias'))),
    h('div', { class: 'card', id: 'versions' }, h('h2', null, 'Versions'), table([
      { label: 'Version', value: v => 'v' + v.version },
      { label: 'Aliases', value: v => aliasesOf(v).map(a => badge('@' + a, 'alias')) },
      { label: 'Status', value: v => badge(v.status) },
      { label: 'Created', value: v => fmtTime(v.creationTimestamp) },
      { label: 'Run', value: v => (v.runId ? h('a', { href: `#/runs/${enc(v.runId)}` }, runs.get(v.runId)?.info.runName || v.runId) : '') },
      { label: 'Data set', value: v => (runs.get(v.runId)?.inputs || []).map(i => h('div', null, i.dataset.name, ' ', h('code', null, i.dataset.digest))) },
      { label: 'Source', value: v => v.source },
      { label: 'Served by', value: v => {
        const serving = (services.items || []).filter(s => servesVersion(s, model.name, v.version, aliasesOf(v)));
        return serving.length ? serving.map(s => h('a', { href: `#/services/${enc(s.metadata.namespace)}/${enc(s.metadata.name)}` }, `${s.metadata.namespace}/${s.metadata.name} `)) : h('span', { class: 'muted' }, services.supported ? 'not served' : '—');
      } },
    ], versions, () => ({ class: 'version-row' }))));
}
