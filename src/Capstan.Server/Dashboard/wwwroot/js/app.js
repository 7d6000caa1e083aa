// The dashboard's router: hash URLs (#/runs/ID), one page at a time. A page gets a context whose
// signal aborts its requests and whose every() polls only while the tab is visible, both stopped
// when the user navigates away.
import { h, replace } from './dom.js';
import { experimentsPage, runsPage, runPage, comparePage } from './runs.js';
import { tuningListPage, tuningPage } from './tuning.js';
import { modelsPage, modelPage } from './registry.js';
import { jobsPage, jobPage, servicesPage, servicePage } from './resources.js';

const routes = [
  [/^\/?$/, experimentsPage, 'experiments'],
  [/^\/experiments\/([^/]+)$/, runsPage, 'experiments'],
  [/^\/runs\/([^/]+)$/, runPage, 'experiments'],
  [/^\/compare$/, comparePage, 'experiments'],
  [/^\/tuning$/, tuningListPage, 'tuning'],
  [/^\/tuning\/run\/([^/]+)$/, tuningPage, 'tuning'],
  [/^\/models$/, modelsPage, 'models'],
  [/^\/models\/([^/]+)$/, modelPage, 'models'],
  [/^\/jobs$/, jobsPage, 'jobs'],
  [/^\/jobs\/([^/]+)\/([^/]+)$/, jobPage, 'jobs'],
  [/^\/services$/, servicesPage, 'services'],
  [/^\/services\/([^/]+)\/([^/]+)$/, servicePage, 'services'],
];

let current;

function parseHash() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  return { path, query: new URLSearchParams(query) };
}

/** A page's lifetime: requests abort and polls stop when the user leaves it. */
class PageContext {
  constructor() { this.controller = new AbortController(); }
  get signal() { return this.controller.signal; }
  get active() { return !this.controller.signal.aborted; }
  /** Runs fn every ms (a number, or a function of the page's state), skipping while the tab is hidden. */
  every(ms, fn) {
    let timer;
    const delay = () => (typeof ms === 'function' ? ms() : ms);
    const tick = async () => {
      if (!this.active) return;
      if (!document.hidden) {
        try { await fn(); } catch (e) { if (e.name !== 'AbortError') console.warn('refresh failed', e); }
      }
      if (this.active) timer = setTimeout(tick, delay());
    };
    timer = setTimeout(tick, delay());
    this.controller.signal.addEventListener('abort', () => clearTimeout(timer));
  }
  dispose() { this.controller.abort(); }
}

export function navigate(hash) { location.hash = hash; }

export function setQuery(params) {
  const { path } = parseHash();
  const query = new URLSearchParams(params).toString();
  history.replaceState(null, '', '#' + path + (query ? '?' + query : ''));
}

async function render() {
  current?.dispose();
  const context = new PageContext();
  current = context;
  const view = document.getElementById('view');
  const { path, query } = parseHash();
  for (const [pattern, page, nav] of routes) {
    const match = pattern.exec(path);
    if (!match) continue;
    for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.nav === nav);
    try {
      await page(view, context, query, ...match.slice(1).map(decodeURIComponent));
    } catch (e) {
      if (e.name === 'AbortError' || !context.active) return;
      replace(view, h('h1', null, 'Something went wrong'), h('p', { class: 'error' }, e.message));
    }
    return;
  }
  replace(view, h('h1', null, 'Not found'), h('p', null, 'No page at ', path, '. ', h('a', { href: '#/' }, 'Back to experiments')));
}

document.addEventListener('visibilitychange', () => document.getElementById('live')?.classList.toggle('off', document.hidden));
window.addEventListener('hashchange', render);
// uPlot loads as a deferred classic script, which runs before module scripts; the DOM is parsed by then.
render();
