// The dashboard talks to the same native API as the CLI. Answers are cached by request with their
// ETag, so polling a page that did not change costs the server a 304 and the browser no redraw.

const cache = new Map();

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function errorOf(response) {
  let text = '';
  try { text = await response.text(); } catch { /* the body is optional */ }
  try {
    const body = JSON.parse(text);
    return new ApiError(body.detail || body.message || body.title || text || response.statusText, response.status);
  } catch {
    return new ApiError(text || `${response.status} ${response.statusText}`, response.status);
  }
}

/** GET or POST JSON; resolves to {data, changed}. */
export async function request(path, { method = 'GET', body, signal } = {}) {
  const key = method + ' ' + path + (body === undefined ? '' : ' ' + JSON.stringify(body));
  const cached = cache.get(key);
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (cached?.etag) headers['If-None-Match'] = cached.etag;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (response.status === 304 && cached) return { data: cached.data, changed: false };
  if (!response.ok) throw await errorOf(response);
  const data = response.status === 204 ? null : await response.json();
  const etag = response.headers.get('ETag');
  if (etag) {
    if (cache.size > 200) cache.clear();
    cache.set(key, { etag, data });
  }
  return { data, changed: true };
}

export async function get(path, options) { return (await request(path, options)).data; }

export async function post(path, body, options) { return (await request(path, { ...options, method: 'POST', body })).data; }

export const enc = encodeURIComponent;

/** Streams a text response line by line into onText until it ends or the signal aborts. */
export async function stream(path, onText, signal) {
  const response = await fetch(path, { signal, headers: { Accept: 'text/plain' } });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
}

/** Every run of a search, page by page (for tuning trials and lineage; capped). */
export async function searchAllRuns(experimentIds, filter, cap = 5000) {
  const runs = [];
  let pageToken;
  do {
    const page = await post('/api/v1/runs/search', { experimentIds, filter, maxResults: 1000, pageToken });
    runs.push(...(page.items || []));
    pageToken = page.nextPageToken;
  } while (pageToken && runs.length < cap);
  return runs;
}
