// A hand-written SVG sparkline: the trend of one count, scaled from zero to its peak.
import { svg } from './util.js';

/**
 * Draws `points` ([{t: ms, v: number}], oldest first) into a fixed-size SVG. The y axis starts at zero so
 * that a flat line near the bottom means "few", and the peak is labelled; `label` is the text alternative.
 */
export function sparkline(points, { width = 260, height = 56, label = '' } = {}) {
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, class: 'spark', role: 'img',
    'aria-label': label, preserveAspectRatio: 'none',
  });
  const title = svg('title');
  title.textContent = label;
  root.append(title);
  const pts = points.filter((p) => Number.isFinite(p.v) && Number.isFinite(p.t));
  if (pts.length < 2) {
    root.append(svg('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: 'spark-base' }));
    return root;
  }
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  const max = Math.max(1, ...pts.map((p) => p.v));
  const pad = 3;
  const x = (t) => (t1 === t0 ? width : ((t - t0) / (t1 - t0)) * (width - 2 * pad) + pad);
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  root.append(
    svg('line', { x1: 0, y1: height - pad, x2: width, y2: height - pad, class: 'spark-base' }),
    svg('polygon', { points: `${x(t0).toFixed(1)},${height - pad} ${line} ${x(t1).toFixed(1)},${height - pad}`, class: 'spark-area' }),
    svg('polyline', { points: line, class: 'spark-line' }),
    svg('circle', { cx: x(t1).toFixed(1), cy: y(pts[pts.length - 1].v).toFixed(1), r: 3, class: 'spark-dot' }),
  );
  return root;
}
