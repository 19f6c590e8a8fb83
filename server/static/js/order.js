/**
 * Order page `/orders/{code}#token=READ_TOKEN`. The read token stays in the URL fragment,
 * which browsers never send to the server, and goes out only as the `X-Read-Token` header.
 */

import { ApiError, getOrder } from './api.js';
import { el, setMessage } from './dom.js';
import { formatCents } from './money.js';
import { formatCount } from './numbers.js';
import { findSavedOrder } from './saved-orders.js';
import { formatTaxId } from './tax-id.js';

const STATUS_LABELS = { new: 'New' };

const dateFormat = new Intl.DateTimeFormat('pt-BR', { dateStyle: 'short', timeStyle: 'short' });

const code = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] ?? '');
const page = {
  title: document.getElementById('order-title'),
  status: document.getElementById('order-status'),
  message: document.getElementById('order-message'),
  content: document.getElementById('order-content'),
  meta: document.getElementById('order-meta'),
  items: document.getElementById('order-items'),
  buyer: document.getElementById('order-buyer'),
  backLink: document.getElementById('back-to-live'),
};

/** Returns the read token from `#token=...`, or the one saved when this browser placed the order. */
function readToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  return fromHash || findSavedOrder(code)?.read_token || null;
}

/** Renders the whole order. Safe to call again with a newer version of the order. */
function renderOrder(order) {
  const money = (cents) => formatCents(cents, order.currency);
  document.title = `Order ${order.code} · Vitrine`;
  page.title.textContent = `Order ${order.code}`;
  renderStatus(order.status);
  page.meta.textContent = `Placed ${formatTime(order.created_at)} · last updated ${formatTime(order.updated_at)}`;

  page.items.replaceChildren(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col' }, 'Product'),
        el('th', { scope: 'col', class: 'sku' }, 'SKU'),
        el('th', { scope: 'col', class: 'number' }, 'Qty'),
        el('th', { scope: 'col', class: 'number' }, 'Unit price'),
        el('th', { scope: 'col', class: 'number' }, 'Total'),
      ),
    ),
    el(
      'tbody',
      {},
      order.items.map((item) =>
        el(
          'tr',
          {},
          el('td', {}, item.name),
          el('td', { class: 'sku' }, item.sku),
          el('td', { class: 'number' }, formatCount(item.quantity)),
          el('td', { class: 'number' }, money(item.unit_price_cents)),
          el('td', { class: 'number' }, money(item.line_total_cents)),
        ),
      ),
    ),
    el(
      'tfoot',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'row' }, 'Total'),
        el('td', { class: 'sku' }),
        el('td', { class: 'number' }, formatCount(order.item_count)),
        el('td', {}),
        el('td', { class: 'number' }, money(order.total_cents)),
      ),
    ),
  );

  const buyer = order.buyer ?? {};
  const details = [
    ['Company', buyer.company_name],
    ['CNPJ', formatTaxId(buyer.tax_id)],
    ['Contact', buyer.contact_name],
    ['Phone', buyer.phone],
    ['Email', buyer.email],
    ['Notes', buyer.notes],
  ].filter(([, value]) => value);
  page.buyer.replaceChildren(...details.flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, value)]));

  page.backLink.href = `/live/${encodeURIComponent(order.live_slug)}`;
  page.backLink.hidden = false;
  page.content.hidden = false;
}

/** Shows the status badge. A later `order:{code}` subscription can call this alone. */
function renderStatus(status) {
  page.status.textContent = STATUS_LABELS[status] ?? status.replaceAll('_', ' ');
  page.status.className = `badge badge--${status}`;
  page.status.hidden = false;
}

function formatTime(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : dateFormat.format(date);
}

function errorText(error) {
  if (!(error instanceof ApiError)) {
    return 'Could not show this order. Reload the page to try again.';
  }
  if (error.status === 401) {
    return 'This link is missing its access token. Open the full order link you received after checkout, including the part after "#".';
  }
  if (error.status === 403) {
    return 'This link does not open the order. Check that you copied the whole link, including the part after "#".';
  }
  return `Could not load the order: ${error.message}`;
}

async function start() {
  page.title.textContent = code ? `Order ${code}` : 'Order';
  const token = readToken();
  if (!code || !token) {
    setMessage(page.message, errorText(new ApiError({ status: 401, code: 'missing_token', message: '' })));
    return;
  }
  try {
    renderOrder(await getOrder(code, token));
  } catch (error) {
    setMessage(page.message, errorText(error));
  }
  // NOTE: live status updates will subscribe to topic `order:{code}` here with the
  // shared RealtimeClient and pass each new order or status to renderOrder/renderStatus.
}

start();
