// Charts: uPlot for series (fast with many points and series), plain canvas for the parallel
// coordinates and Pareto plots. Charts are drawn when they scroll into view, so a run with
// hundreds of metrics shows its first charts at once.
import { h, fmtNumber } from './dom.js';

export const palette = ['#1f6fb2', '#d9480f', '#2b8a3e', '#862e9c', '#e67700', '#0b7285', '#c2255c', '#5c940d', '#364fc7', '#a61e4d'];

const observer = 'IntersectionObserver' in window
  ? new IntersectionObserver(entries => {
    for (const entry of entries) {
      if (entry.isIntersecting && entry.target.draw) {
        observer.unobserve(entry.target);
        const draw = entry.target.draw;
        entry.target.draw = null;
        draw();
      }
    }
  }, { rootMargin: '200px' })
  : null;

function lazily(el, draw) {
  if (observer) { el.draw = draw; observer.observe(el); } else draw();
}

/** Marks the moment the first chart of a page is drawn, for the benchmark and the tests. */
function markDrawn(el) {
  el.dataset.drawn = 'true';
  if (!document.body.dataset.firstChartAt) document.body.dataset.firstChartAt = String(performance.now());
}

/**
 * A metric chart: series [{label, steps, timestamps, values}], x 'step' | 'time' | 'relative', log y.
 * Returns {el, update(series)}; the plot keeps its zoom when it is updated with new points.
 */
export function metricChart(title, series, options = {}) {
  const el = h('div', { class: 'chart', dataset: { key: title } }, h('div', { class: 'title' }, title));
  const holder = h('div');
  el.appendChild(holder);
  let plot = null;
  let latest = series;
  const xOf = s => {
    if (options.x === 'time') return s.timestamps.map(t => t / 1000);
    if (options.x === 'relative') { const t0 = s.timestamps[0] ?? 0; return s.timestamps.map(t => (t - t0) / 1000); }
    return s.steps;
  };
  const data = list => {
    if (list.length === 1) return [xOf(list[0]), list[0].values];
    return window.uPlot.join(list.map(s => [xOf(s), s.values]));
  };
  const draw = () => {
    const width = Math.max(300, holder.clientWidth || el.clientWidth - 14 || 400);
    const log = !!options.log && latest.every(s => s.values.every(v => v === null || v > 0));
    plot = new window.uPlot({
      width,
      height: 220,
      scales: { x: { time: options.x === 'time' }, y: { distr: log ? 3 : 1 } },
      axes: [{ label: options.x === 'time' ? '' : options.x === 'relative' ? 'seconds' : 'step' }, { size: 60, values: (u, ticks) => ticks.map(fmtNumber) }],
      cursor: { drag: { x: true, y: true, uni: 30 } },
      legend: { show: latest.length > 1 || true },
      series: [{}, ...latest.map((s, i) => ({
        label: s.label,
        stroke: palette[i % palette.length],
        width: 1.5,
        spanGaps: true,
        points: { show: s.values.length < 60 },
        value: (u, v) => fmtNumber(v),
      }))],
    }, data(latest), holder);
    markDrawn(el);
  };
  lazily(el, draw);
  return {
    el,
    update(next) {
      if (!plot || next.length !== latest.length) { latest = next; if (plot) { plot.destroy(); draw(); } return; }
      latest = next;
      plot.setData(data(next), false);
      plot.redraw();
    },
    get plot() { return plot; },
  };
}

/** The trials over time: each trial's objective, the best so far, and the best trial marked. */
export function objectiveChart(points, goal, bestIndex) {
  const el = h('div', { class: 'chart', dataset: { key: 'objective' } }, h('div', { class: 'title' }, 'Objective over trials'));
  const holder = h('div');
  el.appendChild(holder);
  const xs = points.map((_, i) => i + 1);
  const ys = points.map(p => p.value);
  let best = null;
  const bestSoFar = ys.map(v => { if (v !== null && (best === null || (goal === 'minimize' ? v < best : v > best))) best = v; return best; });
  const marked = ys.map((v, i) => (i === bestIndex ? v : null));
  lazily(el, () => {
    new window.uPlot({
      width: Math.max(300, holder.clientWidth || 560),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: 'trial' }, { size: 60, values: (u, ticks) => ticks.map(fmtNumber) }],
      series: [{}, { label: 'objective', stroke: '#1f6fb2', width: 0, points: { show: true, size: 6, fill: '#1f6fb2' }, value: (u, v) => fmtNumber(v) },
        { label: 'best so far', stroke: '#2b8a3e', width: 2, paths: window.uPlot.paths?.stepped?.({ align: 1 }), points: { show: false }, value: (u, v) => fmtNumber(v) },
        { label: 'best trial', stroke: '#d9480f', width: 0, points: { show: true, size: 14, fill: '#d9480f' }, value: (u, v) => fmtNumber(v) }],
    }, [xs, ys, bestSoFar, marked], holder);
    markDrawn(el);
  });
  return el;
}

function setupCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = height + 'px';
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  return ctx;
}

function colourFor(t) {
  // A blue-to-orange ramp: low objective blue, high orange.
  const a = [31, 111, 178], b = [230, 119, 0];
  return `rgb(${a.map((x, i) => Math.round(x + (b[i] - x) * t)).join(',')})`;
}

/** An axis over numbers (linear, or log when they span decades) or over categories. */
function axisOf(name, values) {
  const present = values.filter(v => v !== null && v !== undefined && v !== '');
  const numeric = present.length > 0 && present.every(v => typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))));
  if (numeric) {
    const nums = present.map(Number);
    let min = Math.min(...nums), max = Math.max(...nums);
    const log = min > 0 && max / min > 100;
    if (min === max) { min -= 0.5; max += 0.5; }
    const f = log ? Math.log10 : x => x;
    const lo = f(min), hi = f(max);
    return { name, numeric: true, log, min, max, pos: v => (v === null || v === undefined || v === '' ? null : (f(Number(v)) - lo) / (hi - lo)) };
  }
  const categories = [...new Set(present.map(String))].sort();
  return { name, numeric: false, categories, pos: v => (v === null || v === undefined ? null : categories.length === 1 ? 0.5 : categories.indexOf(String(v)) / (categories.length - 1)) };
}

/**
 * Parallel coordinates: one vertical axis per dimension, one polyline per trial, coloured by the
 * colour dimension; the best trial drawn last, thick. rows: [{values: {dim: v}, best}].
 */
export function parallelCoordinates(dimensions, rows, colourBy) {
  const canvas = h('canvas', { class: 'plot', 'aria-label': 'Parallel coordinates of the trials' });
  const el = h('div', { class: 'chart', dataset: { key: 'parallel' } }, h('div', { class: 'title' }, 'Parallel coordinates'), canvas,
    h('div', { class: 'legend-note' }, `${rows.length} trials; colour: ${colourBy} (blue low, orange high); the best trial is the thick red line.`));
  lazily(el, () => {
    const width = Math.max(400, canvas.clientWidth || 800), height = 320, top = 36, bottom = 30, left = 50, right = 50;
    const ctx = setupCanvas(canvas, width, height);
    const axes = dimensions.map(d => axisOf(d, rows.map(r => r.values[d])));
    const colourAxis = axes.find(a => a.name === colourBy);
    const x = i => left + (axes.length === 1 ? 0 : (i * (width - left - right)) / (axes.length - 1));
    const y = p => top + (1 - p) * (height - top - bottom);
    const line = (row, colour, widthPx) => {
      ctx.strokeStyle = colour; ctx.lineWidth = widthPx; ctx.beginPath();
      let started = false;
      axes.forEach((axis, i) => {
        const p = axis.pos(row.values[axis.name]);
        if (p === null || Number.isNaN(p)) { started = false; return; }
        if (started) ctx.lineTo(x(i), y(p)); else { ctx.moveTo(x(i), y(p)); started = true; }
      });
      ctx.stroke();
    };
    ctx.globalAlpha = rows.length > 200 ? 0.35 : 0.7;
    for (const row of rows) {
      if (row.best) continue;
      const t = colourAxis ? colourAxis.pos(row.values[colourBy]) : 0.5;
      line(row, colourFor(t ?? 0.5), 1.2);
    }
    ctx.globalAlpha = 1;
    for (const row of rows.filter(r => r.best)) line(row, '#c92a2a', 3.5);
    ctx.fillStyle = '#1d2733'; ctx.font = '12px system-ui, sans-serif'; ctx.textAlign = 'center';
    axes.forEach((axis, i) => {
      ctx.strokeStyle = '#667385'; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(x(i), y(0)); ctx.lineTo(x(i), y(1)); ctx.stroke();
      ctx.fillText(axis.name + (axis.log ? ' (log)' : ''), x(i), 16);
      ctx.fillStyle = '#667385';
      if (axis.numeric) {
        ctx.fillText(fmtNumber(axis.max), x(i), top - 6);
        ctx.fillText(fmtNumber(axis.min), x(i), height - 12);
      } else {
        axis.categories.slice(0, 12).forEach((c, k) => ctx.fillText(c, x(i) + 18, y(axis.pos(c)) + 4));
      }
      ctx.fillStyle = '#1d2733';
    });
    markDrawn(el);
  });
  return el;
}

/** Trials on two objectives with the Pareto-optimal ones joined. points: [{a, b, label, pareto}] */
export function paretoChart(nameA, nameB, points) {
  const canvas = h('canvas', { class: 'plot', 'aria-label': 'Pareto front' });
  const el = h('div', { class: 'chart', dataset: { key: 'pareto' } }, h('div', { class: 'title' }, `Pareto front: ${nameA} vs ${nameB}`), canvas,
    h('div', { class: 'legend-note' }, `${points.filter(p => p.pareto).length} of ${points.length} trials on the front (red).`));
  lazily(el, () => {
    const width = Math.max(360, canvas.clientWidth || 560), height = 300, pad = 48, left = 76;
    const ctx = setupCanvas(canvas, width, height);
    const as = points.map(p => p.a), bs = points.map(p => p.b);
    const [amin, amax] = [Math.min(...as), Math.max(...as)], [bmin, bmax] = [Math.min(...bs), Math.max(...bs)];
    const sx = v => left + ((v - amin) / ((amax - amin) || 1)) * (width - left - pad);
    const sy = v => height - pad + -((v - bmin) / ((bmax - bmin) || 1)) * (height - 2 * pad);
    ctx.strokeStyle = '#667385'; ctx.beginPath(); ctx.moveTo(left, pad / 2); ctx.lineTo(left, height - pad); ctx.lineTo(width - pad / 2, height - pad); ctx.stroke();
    ctx.fillStyle = '#1d2733'; ctx.font = '12px system-ui, sans-serif'; ctx.textAlign = 'center';
    ctx.fillText(nameA, width / 2, height - 10);
    ctx.fillText(fmtNumber(amin), left, height - pad + 14); ctx.fillText(fmtNumber(amax), width - pad, height - pad + 14);
    ctx.save(); ctx.translate(14, height / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(nameB, 0, 0); ctx.restore();
    ctx.textAlign = 'right'; ctx.fillText(fmtNumber(bmax), left - 4, pad); ctx.fillText(fmtNumber(bmin), left - 4, height - pad);
    const front = points.filter(p => p.pareto).sort((p, q) => p.a - q.a);
    ctx.strokeStyle = '#c92a2a'; ctx.lineWidth = 2; ctx.beginPath();
    front.forEach((p, i) => (i ? ctx.lineTo(sx(p.a), sy(p.b)) : ctx.moveTo(sx(p.a), sy(p.b))));
    ctx.stroke();
    for (const p of points) {
      ctx.fillStyle = p.pareto ? '#c92a2a' : '#1f6fb2';
      ctx.beginPath(); ctx.arc(sx(p.a), sy(p.b), p.pareto ? 5 : 3.5, 0, 2 * Math.PI); ctx.fill();
    }
    markDrawn(el);
  });
  return el;
}

/** Indices of the points no other point beats on both objectives. goals: 'maximize' | 'minimize'. */
export function paretoFront(points, goalA, goalB) {
  const better = (x, y, goal) => (goal === 'minimize' ? x <= y : x >= y);
  const strictly = (x, y, goal) => (goal === 'minimize' ? x < y : x > y);
  return points.map((p, i) => !points.some((q, j) => j !== i
    && better(q.a, p.a, goalA) && better(q.b, p.b, goalB)
    && (strictly(q.a, p.a, goalA) || strictly(q.b, p.b, goalB))));
}
