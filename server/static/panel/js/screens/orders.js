/**
 * Order desk: status tabs with counts, search, a keyset-paged list, a detail drawer
 * with items and history, status changes, assignment and CSV export. Kept current by
 * `order.created`, `order.updated` and `order.counts` events; never polls.
 */

import { managerApi } from '../api.js';
import { clearErrors, debounce, formatDateTime, h, replaceChildren, saveBlob, showError, toast } from '../dom.js';
import { formatCents, formatInteger } from '../format.js';
import { follow } from '../realtime.js';
import { openDrawer } from './drawer.js';

const PAGE_SIZE = 50;
const STATUS_TABS = [
  { status: '', label: 'All', countKey: 'total' },
  { status: 'new', label: 'New', countKey: 'new' },
  { status: 'in_service', label: 'In service', countKey: 'in_service' },
  { status: 'done', label: 'Done', countKey: 'done' },
  { status: 'cancelled', label: 'Cancelled', countKey: 'cancelled' },
];
const STATUS_LABELS = { new: 'New', in_service: 'In service', done: 'Done', cancelled: 'Cancelled' };
const TRANSITIONS = {
  new: [{ status: 'in_service', label: 'Start service', kind: 'primary' }, { status: 'cancelled', label: 'Cancel order', kind: 'danger' }],
  in_service: [{ status: 'done', label: 'Mark done', kind: 'primary' }, { status: 'cancelled', label: 'Cancel order', kind: 'danger' }],
  done: [],
  cancelled: [],
};

export function mountOrders(container, { slug, store, hub, manager, navigate, rest }) {
  const view = {
    status: '',
    q: '',
    orders: [],
    nextBefore: null,
    counts: null,
    managers: new Map(),
    loadError: null,
  };
  let drawer = null;
  let drawerCode = null;
  let generation = 0;

  const tabs = h('div', { class: 'status-tabs', role: 'tablist' });
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Code, tax id or company', 'aria-label': 'Search orders', class: 'search' });
  const list = h('div', { class: 'order-list' });
  const more = h('button', { type: 'button', class: 'button button--wide', hidden: true }, 'Load more');
  const listError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const exportButton = h('button', { type: 'button', class: 'button' }, 'Export CSV');

  replaceChildren(
    container,
    h('section', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, 'Orders'), h('div', { class: 'button-row' }, search, exportButton)),
      tabs,
      listError,
      list,
      more,
    ),
  );

  const currency = () => store.live?.currency;
  const params = () => ({ status: view.status, q: view.q });

  const renderTabs = () => {
    replaceChildren(tabs, STATUS_TABS.map((tab) =>
      h('button', {
        type: 'button',
        role: 'tab',
        class: 'status-tab',
        'aria-selected': String(tab.status === view.status),
        onclick: () => {
          view.status = tab.status;
          renderTabs();
          feed.reload();
        },
      }, tab.label, h('span', { class: 'count' }, view.counts ? formatInteger(view.counts[tab.countKey] ?? 0) : '…'))));
  };

  const renderList = () => {
    if (view.orders.length === 0) {
      replaceChildren(list, h('p', { class: 'muted empty' }, view.loadError ? '' : view.q || view.status ? 'No orders match.' : 'No orders yet. New orders appear here as buyers check out.'));
    } else {
      replaceChildren(list, view.orders.map(renderRow));
    }
    more.hidden = view.nextBefore === null || view.nextBefore === undefined;
  };

  const assigneeName = (id) => {
    if (id === null || id === undefined) return null;
    if (id === manager?.id) return 'me';
    return view.managers.get(id) ?? `manager ${id}`;
  };

  const renderRow = (order) => h('button', {
    type: 'button',
    class: `order-row${order.code === drawerCode ? ' is-open' : ''}`,
    dataset: { code: order.code },
    onclick: () => navigate(`#/lives/${encodeURIComponent(slug)}/orders/${encodeURIComponent(order.code)}`),
  },
  h('span', { class: 'order-row__code' }, order.code),
  h('span', { class: 'order-row__company' }, order.company_name, h('span', { class: 'muted small' }, order.tax_id)),
  h('span', { class: 'order-row__total' }, formatCents(order.total_cents, order.currency ?? currency()), h('span', { class: 'muted small' }, `${formatInteger(order.item_count)} units`)),
  h('span', { class: `badge badge--${order.status}` }, STATUS_LABELS[order.status] ?? order.status),
  h('span', { class: 'order-row__meta muted small' }, formatDateTime(order.created_at), assigneeName(order.assigned_manager_id) ? ` · ${assigneeName(order.assigned_manager_id)}` : ''),
  );

  const load = async () => {
    const current = ++generation;
    listError.hidden = true;
    view.loadError = null;
    const [page, counts] = await Promise.all([
      managerApi.listOrders(slug, { ...params(), limit: PAGE_SIZE }),
      managerApi.orderCounts(slug, view.q),
    ]);
    if (current !== generation) return;
    view.orders = page.orders;
    view.nextBefore = page.next_before;
    view.counts = counts;
    renderTabs();
    renderList();
  };

  const matchesFilter = (order) => {
    if (view.status && order.status !== view.status) return false;
    if (!view.q) return true;
    // Mirrors the server's search roughly: code, tax id prefix or part of the company.
    const q = view.q.toLowerCase();
    const digits = (value) => String(value ?? '').replace(/[^0-9a-z]/gi, '').toLowerCase();
    return order.code.toLowerCase() === q
      || (digits(q) !== '' && digits(order.tax_id).startsWith(digits(q)))
      || String(order.company_name ?? '').toLowerCase().includes(q);
  };

  // The newest-first list contains every order down to the last loaded one, so an order
  // belongs in it when it is at least as new as that one or the list is complete.
  const withinLoadedRange = (order) => {
    if (view.nextBefore === null || view.nextBefore === undefined) return true;
    const last = view.orders[view.orders.length - 1];
    return !last || order.created_at >= last.created_at;
  };

  const upsertOrder = (order) => {
    const index = view.orders.findIndex((candidate) => candidate.code === order.code);
    if (index >= 0) {
      const known = view.orders[index];
      if (known.updated_at && order.updated_at && order.updated_at < known.updated_at) return;
      if (matchesFilter(order)) view.orders[index] = { ...known, ...order };
      else view.orders.splice(index, 1);
    } else if (matchesFilter(order) && withinLoadedRange(order)) {
      view.orders.push(order);
      view.orders.sort(compareNewestFirst);
    }
    renderList();
  };

  // Counts events carry the counts of every order; a search shows its own counts, so
  // those are fetched again once the events calm down.
  const refetchSearchCounts = debounce(async () => {
    try {
      view.counts = await managerApi.orderCounts(slug, view.q);
      renderTabs();
    } catch (error) {
      console.warn('panel: order counts refetch failed', error);
    }
  }, 1000);

  const apply = (event) => {
    switch (event.type) {
      case 'order.created':
      case 'order.updated':
        upsertOrder(event.data);
        if (drawerCode === event.data.code) refreshDrawer();
        if (view.q) refetchSearchCounts();
        break;
      case 'order.counts':
        if (!view.q) {
          view.counts = event.data;
          renderTabs();
        }
        break;
      default:
        break;
    }
  };

  const feed = follow(hub, [`managers:${slug}`], {
    load,
    apply,
    onLoadError: (error) => {
      view.loadError = error;
      showError(listError.parentElement, error);
      renderList();
    },
  });

  more.addEventListener('click', async () => {
    more.disabled = true;
    const current = generation;
    try {
      const page = await managerApi.listOrders(slug, { ...params(), limit: PAGE_SIZE, before: view.nextBefore });
      if (current !== generation) return;
      const known = new Set(view.orders.map((order) => order.code));
      view.orders.push(...page.orders.filter((order) => !known.has(order.code)));
      view.nextBefore = page.next_before;
      renderList();
    } catch (error) {
      showError(listError.parentElement, error);
    } finally {
      more.disabled = false;
    }
  });

  search.addEventListener('input', debounce(() => {
    view.q = search.value.trim();
    feed.reload();
  }, 300));

  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    try {
      saveBlob(await managerApi.exportOrders(slug, params()), `${slug}-orders${view.status ? `-${view.status}` : ''}.csv`);
    } catch (error) {
      toast(`Could not export the orders: ${error.message}`, { kind: 'error' });
    } finally {
      exportButton.disabled = false;
    }
  });

  if (manager?.role === 'admin') {
    managerApi.listManagers().then(
      (payload) => {
        view.managers = new Map((payload.managers ?? []).map((account) => [account.id, account.username]));
        renderList();
      },
      (error) => console.warn('panel: managers list failed', error),
    );
  }

  // The detail drawer follows the route #/lives/{slug}/orders/{code}.
  const drawerContent = h('div', { class: 'order-detail' });
  const showDrawer = (code) => {
    if (!code) {
      drawerCode = null;
      drawer?.close();
      return;
    }
    if (drawerCode === code && drawer) return;
    drawerCode = code;
    replaceChildren(drawerContent, h('p', { class: 'muted' }, 'Loading…'));
    drawer?.close();
    drawer = openDrawer(`Order ${code}`, drawerContent, {
      onClose: () => {
        drawer = null;
        if (drawerCode === code) {
          drawerCode = null;
          navigate(`#/lives/${encodeURIComponent(slug)}/orders`);
        }
      },
    });
    refreshDrawer();
    renderList();
  };

  const refreshDrawer = async () => {
    const code = drawerCode;
    try {
      const order = await managerApi.getOrder(slug, code);
      if (code === drawerCode) renderDetail(order);
    } catch (error) {
      if (code === drawerCode) replaceChildren(drawerContent, h('p', { class: 'form-error', role: 'alert' }, `Could not load order ${code}: ${error.message}`));
    }
  };

  const renderDetail = (order) => {
    const orderCurrency = order.currency ?? currency();
    const actions = h('div', { class: 'button-row' });
    const changeStatus = async (button, status) => {
      if (status === 'cancelled' && button.dataset.confirm !== 'yes') {
        button.dataset.confirm = 'yes';
        button.textContent = 'Tap again to cancel (stock goes back)';
        return;
      }
      clearErrors(drawerContent);
      button.disabled = true;
      try {
        upsertOrder(await managerApi.updateOrder(slug, order.code, { status }));
        await refreshDrawer();
      } catch (error) {
        button.disabled = false;
        showError(drawerContent, error);
        if (error.code === 'invalid_transition') refreshDrawer();
      }
    };
    for (const step of TRANSITIONS[order.status] ?? []) {
      actions.append(h('button', { type: 'button', class: `button button--${step.kind}`, onclick: (event) => changeStatus(event.currentTarget, step.status) }, step.label));
    }
    replaceChildren(
      drawerContent,
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      h('div', { class: 'detail-head' },
        h('span', { class: `badge badge--${order.status}` }, STATUS_LABELS[order.status] ?? order.status),
        h('strong', { class: 'detail-total' }, formatCents(order.total_cents, orderCurrency)),
        h('span', { class: 'muted' }, `${formatInteger(order.item_count)} units · ${formatDateTime(order.created_at)}`),
      ),
      actions,
      assignControl(order),
      h('h3', {}, 'Buyer'),
      h('dl', { class: 'details' },
        detailRow('Company', order.company_name),
        detailRow('Tax id', order.tax_id),
        detailRow('Contact', order.contact_name),
        detailRow('Phone', order.phone ? h('a', { href: `tel:${order.phone}` }, order.phone) : null),
        detailRow('Email', order.email ? h('a', { href: `mailto:${order.email}` }, order.email) : null),
        detailRow('Notes', order.notes),
      ),
      h('h3', {}, 'Items'),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table table--compact' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', { class: 'col-number' }, 'Qty'), h('th', { class: 'col-number' }, 'Unit'), h('th', { class: 'col-number' }, 'Total'))),
          h('tbody', {}, (order.items ?? []).map((item) => h('tr', {},
            h('td', {}, h('strong', {}, item.name), h('div', { class: 'muted small' }, item.sku)),
            h('td', { class: 'col-number' }, formatInteger(item.quantity)),
            h('td', { class: 'col-number' }, formatCents(item.unit_price_cents, orderCurrency)),
            h('td', { class: 'col-number' }, formatCents(item.line_total_cents, orderCurrency)),
          ))),
        ),
      ),
      h('h3', {}, 'History'),
      h('ol', { class: 'history' },
        h('li', {}, h('span', { class: 'muted small' }, formatDateTime(order.created_at)), ' Order placed'),
        (order.history ?? []).map((entry) => h('li', {},
          h('span', { class: 'muted small' }, formatDateTime(entry.created_at)), ' ', historyText(entry, assigneeName),
        )),
      ),
    );
  };

  const assignControl = (order) => {
    const wrap = h('div', { class: 'assign field' });
    const save = async (managerId, control) => {
      clearErrors(wrap);
      control.disabled = true;
      try {
        upsertOrder(await managerApi.updateOrder(slug, order.code, { assigned_manager_id: managerId }));
        await refreshDrawer();
      } catch (error) {
        control.disabled = false;
        showError(wrap, error);
      }
    };
    const label = h('span', { class: 'muted' }, `Assigned to ${assigneeName(order.assigned_manager_id) ?? 'nobody'}`);
    if (manager?.role === 'admin' && view.managers.size > 0) {
      const select = h('select', { name: 'assigned_manager_id', 'aria-label': 'Assign to' },
        h('option', { value: '' }, 'Nobody'),
        [...view.managers].map(([id, username]) => h('option', { value: String(id) }, username)));
      select.value = order.assigned_manager_id == null ? '' : String(order.assigned_manager_id);
      select.addEventListener('change', () => save(select.value === '' ? null : Number(select.value), select));
      wrap.append(h('label', {}, 'Assigned to'), select);
    } else {
      wrap.append(label);
      const mine = order.assigned_manager_id === manager?.id;
      const button = h('button', { type: 'button', class: 'button button--small' }, mine ? 'Unassign me' : 'Assign to me');
      button.addEventListener('click', () => save(mine ? null : manager.id, button));
      wrap.append(button);
    }
    wrap.append(h('p', { class: 'field-error', role: 'alert', hidden: true }), h('p', { class: 'form-error', role: 'alert', hidden: true }));
    return wrap;
  };

  renderTabs();
  renderList();
  showDrawer(rest?.[0] ?? null);

  return {
    onRoute: (nextRest) => showDrawer(nextRest?.[0] ?? null),
    unmount: () => {
      feed.stop();
      refetchSearchCounts.cancel();
      drawerCode = null;
      drawer?.close();
    },
  };
}

function compareNewestFirst(a, b) {
  if (a.created_at === b.created_at) return 0;
  return a.created_at < b.created_at ? 1 : -1;
}

function detailRow(label, value) {
  if (value === null || value === undefined || value === '') return null;
  return [h('dt', {}, label), h('dd', {}, value)];
}

function historyText(entry, assigneeName) {
  const actor = entry.manager ? ` by ${entry.manager}` : '';
  if (entry.kind === 'assignment') {
    const target = assigneeName(entry.assigned_manager_id);
    return target ? `Assigned to ${target}${actor}` : `Unassigned${actor}`;
  }
  const from = STATUS_LABELS[entry.from_status] ?? entry.from_status;
  const to = STATUS_LABELS[entry.to_status] ?? entry.to_status;
  return from ? `${from} → ${to}${actor}` : `${to}${actor}`;
}
