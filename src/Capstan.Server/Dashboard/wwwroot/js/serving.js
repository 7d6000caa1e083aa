// A service's live serving figures: its server's /metrics scraped through the dashboard API every
// 2 s; two scrapes give each interval's request rate per version and latency percentiles from the
// histogram's bucket deltas (interpolated inside a bucket, as PromQL's histogram_quantile does).
import { h, replace, fmtNumber, table } from './dom.js';
import { get, enc } from './api.js';
import { metricChart } from './charts.js';

const keep = 150; // samples: 5 minutes at one per 2 s

/** The q-quantile (0..1) of one interval from cumulative buckets [[le, count]], or null without requests. */
export function quantile(q, buckets, total) {
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) return count === below ? le : lower + (le - lower) * (rank - below) / (count - below);
    lower = le; below = count;
  }
  return lower; // in the +Inf bucket: the largest finite bound, as histogram_quantile answers
}

const versionKey = v => `${v.model} v${v.version}`;
const sum = obj => Object.values(obj || {}).reduce((a, b) => a + b, 0);

/** The interval between two scrapes: per version rate, error share, percentiles; and all versions together. */
export function interval(before, after) {
  const seconds = (after.time - before.time) / 1000;
  const previous = new Map(before.versions.map(v => [versionKey(v), v]));
  const rows = [];
  let allBuckets = null, allCount = 0;
  for (const v of after.versions) {
    const p = previous.get(versionKey(v)) || { requests: {}, latencyBuckets: v.latencyBuckets.map(([le]) => [le, 0]), latencyCount: 0 };
    const requests = Math.max(0, sum(v.requests) - sum(p.requests));
    const failed = Math.max(0, requests - ((v.requests.success || 0) - (p.requests.success || 0)));
    const buckets = v.latencyBuckets.map(([le, c], i) => [le, Math.max(0, c - (p.latencyBuckets[i]?.[1] || 0))]);
    const count = Math.max(0, v.latencyCount - p.latencyCount);
    allBuckets = allBuckets ? allBuckets.map(([le, c], i) => [le, c + (buckets[i]?.[1] || 0)]) : buckets;
    allCount += count;
    rows.push({
      name: versionKey(v), rate: seconds > 0 ? requests / seconds : 0, errors: requests > 0 ? failed / requests : 0,
      p50: quantile(0.5, buckets, count), p95: quantile(0.95, buckets, count), p99: quantile(0.99, buckets, count), queue: v.queueDepth,
    });
  }
  return {
    rows,
    p50: quantile(0.5, allBuckets || [], allCount), p95: quantile(0.95, allBuckets || [], allCount), p99: quantile(0.99, allBuckets || [], allCount),
  };
}

const ms = seconds => (seconds === null ? null : seconds * 1000);
const text = value => (value === null || value === undefined ? '–' : fmtNumber(Number(value.toPrecision(3))));

/** The serving card: figures of the last interval, request rate per version and latency percentiles over time. */
export function servingFigures(ctx, ns, name) {
  const figures = h('div', { id: 'serving-figures' }, h('p', { class: 'muted' }, 'Waiting for the server\'s metrics…'));
  const charts = h('div', { class: 'charts' });
  const el = h('div', null, figures, charts);
  const samples = [];
  const points = []; // {time, rates: {version: rate}, p50, p95, p99}
  let rateChart = null, latencyChart = null;
  const seriesOf = () => {
    const names = [...new Set(points.flatMap(p => Object.keys(p.rates)))].sort();
    const timestamps = points.map(p => p.time);
    return {
      rates: names.map(n => ({ label: n, timestamps, steps: timestamps, values: points.map(p => p.rates[n] ?? null) })),
      latency: ['p50', 'p95', 'p99'].map(q => ({ label: q, timestamps, steps: timestamps, values: points.map(p => ms(p[q])) })),
    };
  };
  const refresh = async () => {
    const scrape = await get(`/api/v1/dashboard/services/${enc(ns)}/${enc(name)}/metrics`, { signal: ctx.signal });
    if (!scrape.available) { replace(figures, h('p', { class: 'muted' }, scrape.reason)); return; }
    samples.push(scrape);
    if (samples.length > keep) samples.shift();
    if (samples.length < 2) return;
    const last = interval(samples[samples.length - 2], scrape);
    points.push({ time: scrape.time, rates: Object.fromEntries(last.rows.map(r => [r.name, r.rate])), p50: last.p50, p95: last.p95, p99: last.p99 });
    if (points.length > keep) points.shift();
    replace(figures, table([
      { label: 'Version', value: r => r.name },
      { label: 'Requests/s', value: r => r.rate.toFixed(1) },
      { label: 'Errors', value: r => `${fmtNumber(Number((r.errors * 100).toPrecision(2)))} %` },
      { label: 'p50 ms', value: r => text(ms(r.p50)) },
      { label: 'p95 ms', value: r => text(ms(r.p95)) },
      { label: 'p99 ms', value: r => text(ms(r.p99)) },
      { label: 'Queue', value: r => fmtNumber(r.queue) },
    ], last.rows, () => ({ class: 'serving-row' })));
    if (points.length < 2) return; // a line needs two points; one alone spans the time axis over years
    const series = seriesOf();
    if (!rateChart) {
      rateChart = metricChart('Requests per second', series.rates, { x: 'time' });
      latencyChart = metricChart('Latency (ms)', series.latency, { x: 'time' });
      replace(charts, rateChart.el, latencyChart.el);
    } else {
      rateChart.update(series.rates);
      latencyChart.update(series.latency);
    }
  };
  return { el, refresh };
}
