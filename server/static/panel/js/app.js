/**
 * Manager panel entry point: hash routing, the page shell, the socket and the live
 * screens' shared store.
 *
 * Routes: #/login, #/lives, #/lives/{slug} (control), #/lives/{slug}/catalog,
 * #/lives/{slug}/orders[/{code}], #/lives/{slug}/dashboard.
 */

import { logout } from './api.js';
import { h, replaceChildren, toast } from './dom.js';
import { formatCents } from './format.js';
import { LiveStore } from './live-store.js';
import { ManagerRealtimeClient, TopicHub } from './realtime.js';
import { getManager, getSession, sessionEvents } from './session.js';
import { mountLogin } from './screens/login.js';
import { mountLives } from './screens/lives.js';
import { mountControl } from './screens/control.js';
import { mountCatalog } from './screens/catalog.js';
import { mountOrders } from './screens/orders.js';
import { mountDashboard } from './screens/dashboard.js';

const LIVE_TABS = [
  { path: '', label: 'Control', mount: mountControl },
  { path: 'catalog', label: 'Catalog', mount: mountCatalog },
  { path: 'orders', label: 'Orders', mount: mountOrders },
  { path: 'dashboard', label: 'Dashboard', mount: mountDashboard },
];

const root = document.getElementById('app');
const state = {
  client: null,
  hub: null,
  store: null,
  storeUnsubscribe: null,
  unmountScreen: null,
  screenKey: null,
};

export function navigate(hash) {
  if (location.hash === hash) {
    route();
  } else {
    location.hash = hash;
  }
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'login') {
    return { name: 'login' };
  }
  if (parts[0] === 'lives' && parts[1]) {
    const tab = LIVE_TABS.find((candidate) => candidate.path === (parts[2] ?? '')) ?? LIVE_TABS[0];
    return { name: 'live', slug: parts[1], tab, rest: parts.slice(3) };
  }
  return { name: 'lives' };
}

function ensureSocket() {
  if (state.client) {
    return;
  }
  state.client = new ManagerRealtimeClient();
  state.hub = new TopicHub(state.client);
  state.client.addEventListener('status', renderConnection);
  state.client.addEventListener('forbidden', () =>
    toast('The server closed the live updates: this account may not follow them.', { kind: 'error', timeoutMs: 15000 }),
  );
}

function closeSocket() {
  closeStore();
  state.client?.close();
  state.client = null;
  state.hub = null;
}

function closeStore() {
  state.storeUnsubscribe?.();
  state.storeUnsubscribe = null;
  state.store?.close();
  state.store = null;
}

function unmountScreen() {
  state.unmountScreen?.();
  state.unmountScreen = null;
  state.screenKey = null;
}

function route() {
  const target = parseRoute();
  if (!getSession()) {
    unmountScreen();
    closeSocket();
    if (target.name !== 'login') {
      sessionStorage.setItem('vitrine.panel.after-login', location.hash);
      location.hash = '#/login';
      return;
    }
    renderShell(null);
    state.unmountScreen = mountLogin(document.getElementById('screen'), {
      onSignedIn: () => navigate(sessionStorage.getItem('vitrine.panel.after-login') || '#/lives'),
    });
    state.screenKey = 'login';
    return;
  }
  if (target.name === 'login') {
    navigate('#/lives');
    return;
  }
  ensureSocket();

  if (target.name === 'lives') {
    unmountScreen();
    closeStore();
    renderShell(null);
    state.unmountScreen = mountLives(document.getElementById('screen'), { navigate });
    state.screenKey = 'lives';
    return;
  }

  // A live's screen: keep the store while moving between its tabs.
  if (state.store?.slug !== target.slug) {
    unmountScreen();
    closeStore();
    openStore(target.slug);
  }
  const screenKey = `${target.slug}/${target.tab.path}`;
  renderShell(target);
  if (state.screenKey === screenKey && state.routeHandler) {
    state.routeHandler(target.rest);
    return;
  }
  unmountScreen();
  const screen = document.getElementById('screen');
  const result = target.tab.mount(screen, {
    slug: target.slug,
    store: state.store,
    hub: state.hub,
    manager: getManager(),
    navigate,
    rest: target.rest,
  });
  state.unmountScreen = result.unmount ?? result;
  state.routeHandler = result.onRoute ?? null;
  state.screenKey = screenKey;
}

function openStore(slug) {
  const store = new LiveStore(slug, state.hub);
  state.store = store;
  const onChange = (event) => {
    const { kind } = event.detail;
    if (kind === 'live' || kind === 'loaded' || kind === 'error') {
      renderLiveHeading();
    } else if (kind === 'orders') {
      notifyOrder(store, event.detail.event);
    } else if (kind === 'stock.low') {
      const product = store.products.get(event.detail.productId);
      toast(`Low stock: ${product?.sku ?? `product ${event.detail.productId}`} has ${event.detail.stock} left (alert at ${event.detail.threshold}).`, { kind: 'warning' });
    }
  };
  store.addEventListener('change', onChange);
  state.storeUnsubscribe = () => store.removeEventListener('change', onChange);
}

function notifyOrder(store, event) {
  if (event.type !== 'order.created') {
    return;
  }
  const order = event.data;
  const currency = order.currency ?? store.live?.currency;
  toast(`New order ${order.code} · ${order.company_name ?? ''} · ${formatCents(order.total_cents, currency)}`, {
    kind: 'success',
    action: { label: 'Open', run: () => navigate(`#/lives/${encodeURIComponent(store.slug)}/orders/${encodeURIComponent(order.code)}`) },
  });
}

function renderShell(target) {
  let shell = document.getElementById('shell');
  if (!shell) {
    shell = h(
      'div',
      { id: 'shell', class: 'shell' },
      h('header', { class: 'topbar' },
        h('a', { class: 'brand', href: '#/lives' }, 'Vitrine', h('span', { class: 'brand__sub' }, 'manager')),
        h('div', { id: 'live-heading', class: 'live-heading' }),
        h('span', { id: 'connection', class: 'connection', role: 'status' }),
        h('div', { id: 'account', class: 'account' }),
      ),
      h('nav', { id: 'tabs', class: 'tabs', 'aria-label': 'Live screens' }),
      h('main', { id: 'screen', class: 'screen' }),
    );
    replaceChildren(root, shell);
  }
  renderAccount();
  renderConnection();
  renderTabs(target);
  renderLiveHeading();
}

function renderAccount() {
  const manager = getManager();
  const account = document.getElementById('account');
  if (!manager || !getSession()) {
    replaceChildren(account);
    return;
  }
  replaceChildren(
    account,
    h('span', { class: 'account__name' }, `${manager.username} (${manager.role})`),
    h('button', { type: 'button', class: 'button button--ghost', onclick: () => logout() }, 'Sign out'),
  );
}

function renderConnection() {
  const node = document.getElementById('connection');
  if (!node) {
    return;
  }
  const status = state.client?.status ?? 'closed';
  const labels = { open: 'Live updates on', connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: '' };
  node.dataset.status = status;
  node.textContent = state.client ? labels[status] ?? status : '';
}

function renderTabs(target) {
  const nav = document.getElementById('tabs');
  if (!target || target.name !== 'live') {
    nav.hidden = true;
    replaceChildren(nav);
    return;
  }
  nav.hidden = false;
  const base = `#/lives/${encodeURIComponent(target.slug)}`;
  replaceChildren(
    nav,
    LIVE_TABS.map((tab) =>
      h(
        'a',
        {
          class: 'tab',
          href: tab.path ? `${base}/${tab.path}` : base,
          'aria-current': tab === target.tab ? 'page' : null,
        },
        tab.label,
      ),
    ),
  );
}

function renderLiveHeading() {
  const node = document.getElementById('live-heading');
  if (!node) {
    return;
  }
  const store = state.store;
  if (!store || parseRoute().name !== 'live') {
    replaceChildren(node);
    return;
  }
  const live = store.live;
  replaceChildren(
    node,
    h('a', { href: '#/lives', class: 'crumb' }, 'Lives'),
    h('span', { class: 'crumb-separator', 'aria-hidden': 'true' }, '/'),
    h('strong', { class: 'live-heading__title' }, live?.title ?? store.slug),
    live ? h('span', { class: `badge badge--${live.status}` }, live.status) : null,
  );
}

sessionEvents.addEventListener('ended', (event) => {
  closeSocket();
  if (event.detail.reason === 'expired') {
    toast('Your login has expired. Sign in again.', { kind: 'warning' });
  }
  navigate('#/login');
});

window.addEventListener('hashchange', route);
route();
