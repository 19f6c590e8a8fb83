/**
 * Sales dashboard: revenue, orders, units, orders per minute, viewers, top products
 * and a revenue-per-minute chart drawn as inline SVG. Refetched at most once a second
 * after order events; viewer counts update from `viewers.changed` directly.
 */

import { managerApi } from '../api.js';
import { formatTime, h, replaceChildren } from '../dom.js';
import { formatCents, formatInteger } from '../format.js';
import { follow } from '../realtime.js';

const REFETCH_INTERVAL_MS = 1000;
const SVG_NS = 'http://www.w3.org/2000/svg';

export function mountDashboard(container, { slug, store, hub }) {
  let data = null;
  let lastFetch = 0;
  let refetchTimer = null;
  const body = h('div', { class: 'dashboard' }, h('p', { class: 'muted' }, 'Loading…'));
  replaceChildren(container, body);

  const currency = () => store.live?.currency;

  const render = () => {
    if (!data) return;
    const viewers = store.viewers ?? data.viewers ?? { now: 0, peak: 0 };
    replaceChildren(
      body,
      h('div', { class: 'metrics' },
        metric('Revenue', formatCents(data.revenue_cents, currency())),
        metric('Orders', formatInteger(data.orders)),
        metric('Units', formatInteger(data.units)),
        metric('Orders per minute', Number(data.orders_per_minute ?? 0).toFixed(1), 'last 5 minutes'),
        metric('Viewers now', formatInteger(viewers.now), `peak ${formatInteger(viewers.peak)}`),
      ),
      h('div', { class: 'grid-2 grid-2--wide-first' },
        h('section', { class: 'card' }, h('h2', {}, 'Revenue per minute'), revenueChart(data.revenue_series ?? [], currency())),
        h('section', { class: 'card' }, h('h2', {}, 'Top products'), topProducts(data.top_products ?? [], currency())),
      ),
      h('p', { class: 'muted small' }, 'Cancelled orders are not counted.'),
    );
  };

  const load = async () => {
    lastFetch = Date.now();
    data = await managerApi.dashboard(slug);
    render();
  };

  // At most one fetch a second however many orders arrive.
  const scheduleRefetch = () => {
    if (refetchTimer !== null) return;
    const wait = Math.max(0, lastFetch + REFETCH_INTERVAL_MS - Date.now());
    refetchTimer = setTimeout(async () => {
      refetchTimer = null;
      try {
        await load();
      } catch (error) {
        console.warn('panel: dashboard refetch failed', error);
      }
    }, wait);
  };

  const feed = follow(hub, [`managers:${slug}`], {
    load,
    apply: (event) => {
      if (event.type === 'order.created' || event.type === 'order.updated') scheduleRefetch();
    },
    onLoadError: (error) => replaceChildren(body, h('p', { class: 'form-error', role: 'alert' }, `Could not load the dashboard: ${error.message}`)),
  });

  const onChange = (event) => {
    if (event.detail.kind === 'viewers' || event.detail.kind === 'loaded') render();
  };
  store.addEventListener('change', onChange);

  return () => {
    feed.stop();
    clearTimeout(refetchTimer);
    store.removeEventListener('change', onChange);
  };
}

function metric(label, value, note = null) {
  return h('div', { class: 'metric card' },
    h('span', { class: 'metric__label' }, label),
    h('strong', { class: 'metric__value' }, value),
    note ? h('span', { class: 'metric__note muted small' }, note) : null);
}

function topProducts(products, currency) {
  if (products.length === 0) return h('p', { class: 'muted' }, 'No sales yet.');
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table table--compact' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', { class: 'col-number' }, 'Units'), h('th', { class: 'col-number' }, 'Revenue'))),
      h('tbody', {}, products.map((product) => h('tr', {},
        h('td', {}, h('strong', {}, product.name), h('div', { class: 'muted small' }, product.sku)),
        h('td', { class: 'col-number' }, formatInteger(product.units)),
        h('td', { class: 'col-number' }, formatCents(product.revenue_cents, currency)),
      ))),
    ));
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  for (const child of children) {
    if (typeof child === 'string') node.append(document.createTextNode(child));
    else if (child) node.append(child);
  }
  return node;
}

/** Draws a bar chart of revenue per minute, one bar per point of `series`, scaled to its max. */
function revenueChart(series, currency) {
  if (series.length === 0) return h('p', { class: 'muted' }, 'No sales yet.');
  const width = 640;
  const height = 220;
  const padding = { top: 12, right: 8, bottom: 28, left: 8 };
  const plotWidth = width - padding.left - padding.right;
  const plotHeight = height - padding.top - padding.bottom;
  const max = Math.max(1, ...series.map((point) => point.revenue_cents));
  const slot = plotWidth / series.length;
  const barWidth = Math.max(1, Math.min(24, slot * 0.8));
  // Label about six minutes along the axis, whatever the series length.
  const labelEvery = Math.max(1, Math.ceil(series.length / 6));

  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': `Revenue per minute, highest ${formatCents(max, currency)}` });
  chart.append(svg('line', { x1: padding.left, x2: width - padding.right, y1: padding.top + plotHeight, y2: padding.top + plotHeight, class: 'chart__axis' }));
  chart.append(svg('text', { x: padding.left, y: padding.top + 10, class: 'chart__label' }, formatCents(max, currency)));
  series.forEach((point, index) => {
    const barHeight = (point.revenue_cents / max) * plotHeight;
    const x = padding.left + index * slot + (slot - barWidth) / 2;
    const y = padding.top + plotHeight - barHeight;
    chart.append(svg('rect', { x, y, width: barWidth, height: Math.max(barHeight, point.revenue_cents > 0 ? 1 : 0), class: 'chart__bar', rx: 2 },
      svg('title', {}, `${formatTime(point.minute)}: ${formatCents(point.revenue_cents, currency)}, ${point.orders} orders`)));
    if (index % labelEvery === 0) {
      chart.append(svg('text', { x: x + barWidth / 2, y: height - 8, class: 'chart__label', 'text-anchor': 'middle' }, formatTime(point.minute)));
    }
  });
  return chart;
}
