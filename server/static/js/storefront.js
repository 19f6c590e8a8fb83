/**
 * Live page `/live/{slug}`: loads the live over HTTP, then applies the events of topic
 * `live:{slug}` from the returned epoch and offset, so no change is missed in between.
 */

import { ApiError, getLive, serverNow } from './api.js';
import { renderBanners } from './banners.js';
import { CartStore } from './cart.js';
import { CartPanel } from './cart-panel.js';
import { ProductCatalog } from './catalog.js';
import { setupCheckout } from './checkout.js';
import { el, safeUrl, setMessage } from './dom.js';
import { FlashCountdown, runningFlashPrice } from './flash-offer.js';
import { formatCents } from './money.js';
import { formatCount } from './numbers.js';
import { renderProductCard, updateCardCartQuantity } from './product-card.js';
import { backoffDelay, RealtimeClient } from './realtime.js';
import { loadSavedOrders, orderLink } from './saved-orders.js';

const STATUS_LABELS = { scheduled: 'Scheduled', live: 'Live now', ended: 'Ended' };

const slug = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] ?? '');
const page = {
  title: document.getElementById('live-title'),
  status: document.getElementById('live-status'),
  connection: document.getElementById('connection-status'),
  pageError: document.getElementById('page-error'),
  bannerStrip: document.getElementById('banner-strip'),
  video: document.getElementById('video'),
  pinnedSection: document.getElementById('pinned-section'),
  pinnedList: document.getElementById('pinned-list'),
  grid: document.getElementById('product-grid'),
  savedOrders: document.getElementById('saved-orders'),
  cartButton: document.getElementById('cart-button'),
  cartDialog: document.getElementById('cart-dialog'),
};

const state = {
  live: null,
  catalog: new ProductCatalog(),
  topicName: null,
  selectedQuantities: new Map(), // product id -> quantity chosen on the card
  cards: new Map(), // product id -> {product, pinned, canBuy, flashPrice, element}
  renderedVideoUrl: undefined,
};

const store = new CartStore(slug);
const panel = new CartPanel({
  store,
  elements: {
    lines: document.getElementById('cart-lines'),
    summary: document.getElementById('cart-summary'),
    message: document.getElementById('cart-message'),
    checkoutSection: document.getElementById('checkout-section'),
    headerCount: document.getElementById('cart-count'),
    headerTotal: document.getElementById('cart-total'),
  },
  getProduct: (id) => state.catalog.products.get(id),
  getCurrency: () => state.live?.currency ?? 'BRL',
});
const realtime = new RealtimeClient();
// When a flash offer ends the server publishes `product.updated`, but with the version
// the page already stores, so the catalog drops it and the page ends the offer itself.
const flashCountdown = new FlashCountdown({ root: document, now: serverNow, onExpire: () => renderProducts() });

// Live state and rendering

function applySnapshot(snapshot) {
  state.live = snapshot.live;
  state.catalog.load(snapshot.products);
  state.topicName = snapshot.topic.name;
  renderLive();
  renderProducts();
  renderBanners(page.bannerStrip, snapshot.banners ?? []);
  if (snapshot.viewers) {
    renderViewers(snapshot.viewers.now);
  }
}

function renderLive() {
  const live = state.live;
  document.title = `${live.title} · Vitrine`;
  page.title.textContent = live.title;
  page.status.textContent = STATUS_LABELS[live.status] ?? live.status;
  page.status.className = `badge badge--${live.status}`;
  page.status.hidden = false;

  // Rebuilding the iframe restarts the video, so only a new URL replaces it.
  const videoUrl = safeUrl(live.video_url);
  if (videoUrl !== state.renderedVideoUrl) {
    state.renderedVideoUrl = videoUrl;
    page.video.replaceChildren(
      videoUrl
        ? el('iframe', {
            src: videoUrl,
            title: `Video of ${live.title}`,
            allow: 'autoplay; encrypted-media; picture-in-picture; fullscreen',
            referrerpolicy: 'strict-origin-when-cross-origin',
          })
        : el('div', { class: 'video__placeholder' }, videoPlaceholderText(live.status)),
    );
  } else if (!videoUrl) {
    page.video.firstElementChild.textContent = videoPlaceholderText(live.status);
  }
}

function videoPlaceholderText(status) {
  if (status === 'ended') {
    return 'This live has ended. You can still browse the products.';
  }
  return status === 'live' ? 'The video will appear here shortly.' : 'The video starts when the live begins.';
}

function sortedProducts() {
  return [...state.catalog.products.values()].sort((a, b) => a.position - b.position || a.id - b.id);
}

/**
 * Renders pinned products (in pinned order) at the top and the other products in the
 * grid. A card is rebuilt only when its product, pinned state, buyability or running
 * flash price changed.
 */
function renderProducts() {
  const products = state.catalog.products;
  const pinnedIds = (state.live.pinned_product_ids ?? []).filter((id) => products.has(id));
  const canBuy = state.live.status !== 'ended';
  const now = serverNow();

  for (const id of state.cards.keys()) {
    if (!products.has(id)) {
      state.cards.delete(id);
    }
  }
  const cardFor = (product, pinned) => {
    const cached = state.cards.get(product.id);
    const flashPrice = runningFlashPrice(product, now);
    if (
      cached &&
      cached.product === product &&
      cached.pinned === pinned &&
      cached.canBuy === canBuy &&
      cached.flashPrice === flashPrice
    ) {
      return cached.element;
    }
    const element = renderProductCard(product, {
      currency: state.live.currency,
      canBuy,
      pinned,
      now,
      quantity: state.selectedQuantities.get(product.id),
      cartQuantity: store.quantityOf(product.id),
      onQuantityChange: (changed, quantity) => state.selectedQuantities.set(changed.id, quantity),
      onAdd: addToCart,
    });
    if (cached) {
      moveFocus(cached.element, element);
    }
    state.cards.set(product.id, { product, pinned, canBuy, flashPrice, element });
    return element;
  };

  const pinned = pinnedIds.map((id) => cardFor(products.get(id), true));
  const others = sortedProducts()
    .filter((product) => !pinnedIds.includes(product.id))
    .map((product) => cardFor(product, false));

  replaceChildrenIfChanged(page.pinnedList, pinned);
  page.pinnedSection.hidden = pinned.length === 0;
  replaceChildrenIfChanged(
    page.grid,
    others.length ? others : [el('p', { class: 'empty' }, pinned.length ? 'No other products yet.' : 'No products yet.')],
  );
  flashCountdown.refresh();
}

/** Replaces the children only when they differ, so a focused element is not detached. */
function replaceChildrenIfChanged(container, children) {
  const current = [...container.children];
  if (current.length !== children.length || current.some((child, index) => child !== children[index])) {
    container.replaceChildren(...children);
  }
}

/** Moves focus from a card that is about to be replaced to the same control in its new card. */
function moveFocus(oldCard, newCard) {
  const focused = document.activeElement;
  if (!focused || !oldCard.contains(focused)) {
    return;
  }
  const selector = focused.dataset.focusKey ? `[data-focus-key="${focused.dataset.focusKey}"]` : focused.tagName;
  queueMicrotask(() => newCard.querySelector(selector)?.focus());
}

function renderSavedOrders() {
  const saved = loadSavedOrders().filter((order) => order.live_slug === slug);
  page.savedOrders.hidden = saved.length === 0;
  page.savedOrders.querySelector('ul').replaceChildren(
    ...saved.map((order) =>
      el(
        'li',
        {},
        el('a', { href: orderLink(order.code, order.read_token) }, `Order ${order.code}`),
        order.total_cents !== undefined ? ` · ${formatCents(order.total_cents, order.currency)}` : '',
      ),
    ),
  );
}

// Realtime events

function handleEvent(message) {
  const { type, data } = message;
  switch (type) {
    case 'product.created':
    case 'product.updated':
      if (state.catalog.applyProduct(data, { created: type === 'product.created' })) {
        renderProducts();
      }
      // The update that ends a flash offer keeps the product's version, so the catalog
      // drops it, but the cart's unit prices changed all the same.
      refreshCartIfItContains(data.id);
      break;
    case 'product.removed':
      state.catalog.remove(data.id);
      renderProducts();
      refreshCartIfItContains(data.id);
      break;
    case 'stock.changed':
      if (state.catalog.applyStock(data)) {
        renderProducts();
        panel.render();
        refreshCartIfItContains(data.product_id);
      }
      break;
    case 'live.updated':
      state.live = data;
      renderLive();
      renderProducts();
      break;
    case 'banners.changed':
      renderBanners(page.bannerStrip, data.banners ?? []);
      break;
    case 'viewers.changed':
      renderViewers(data.viewers);
      break;
    case 'topic.resynced':
      // Announces a new epoch of the topic. The `reset` that follows refetches the state.
      break;
    default:
      console.info('storefront: ignored event type', type);
  }
}

/**
 * Reads the cart again when it has a line for `productId`, so a changed price, stock or
 * availability shows in the lines and totals before checkout.
 */
function refreshCartIfItContains(productId) {
  if (store.contains(productId)) {
    store.scheduleRefresh();
  }
}

function renderViewers(count) {
  if (typeof count !== 'number') {
    return;
  }
  const element = document.getElementById('live-viewers');
  element.textContent = `${formatCount(count)} watching`;
  element.hidden = count <= 0;
}

/** Refetches the live after a `reset` and subscribes again from the fetched state. */
async function handleReset() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const snapshot = await getLive(slug);
      applySnapshot(snapshot);
      realtime.subscribe(snapshot.topic.name, { epoch: snapshot.topic.epoch, offset: snapshot.topic.offset });
      return;
    } catch (error) {
      console.warn('storefront: refetch after reset failed, retrying', error);
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt)));
    }
  }
}

function showConnectionStatus(status) {
  const labels = { connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: 'Offline' };
  setMessage(page.connection, labels[status] ?? '');
}

// Cart

async function addToCart(product, quantity, card) {
  const error = card.querySelector('.field-error');
  const button = card.querySelector('[data-focus-key="add"]');
  setMessage(error, '');
  button.disabled = true;
  try {
    await store.addQuantity(product.id, quantity);
    button.textContent = 'Added ✓';
    setTimeout(() => {
      button.textContent = 'Add to cart';
    }, 1500);
  } catch (failure) {
    setMessage(error, failure instanceof ApiError ? failure.message : 'Could not add the product. Try again.');
  } finally {
    button.disabled = false;
  }
}

function updateCardsCartQuantity() {
  for (const [id, cached] of state.cards) {
    updateCardCartQuantity(cached.element, store.quantityOf(id));
  }
}

function setupCartDialog() {
  page.cartButton.addEventListener('click', () => {
    page.cartDialog.showModal();
  });
  page.cartDialog.querySelector('[data-role="close"]').addEventListener('click', () => page.cartDialog.close());
  // A click on the backdrop lands on the dialog element itself.
  page.cartDialog.addEventListener('click', (event) => {
    if (event.target === page.cartDialog) {
      page.cartDialog.close();
    }
  });
}

// Startup

async function start() {
  if (!slug) {
    setMessage(page.pageError, 'The address has no live name in it. Open the link the seller shared with you.');
    return;
  }
  realtime.addEventListener('status', (event) => showConnectionStatus(event.detail.status));
  showConnectionStatus(realtime.status);
  store.addEventListener('change', updateCardsCartQuantity);
  setupCartDialog();
  setupCheckout({ form: document.getElementById('checkout-form'), store, panel });
  renderSavedOrders();
  panel.render();

  let snapshot;
  try {
    snapshot = await getLive(slug);
  } catch (error) {
    const message =
      error instanceof ApiError && error.status === 404
        ? 'This live does not exist. Check the link the seller shared with you.'
        : `Could not load the live: ${error.message}`;
    setMessage(page.pageError, message);
    page.title.textContent = 'Live not available';
    for (const element of document.querySelectorAll('[data-live-content]')) {
      element.hidden = true;
    }
    return;
  }
  applySnapshot(snapshot);
  realtime.subscribe(snapshot.topic.name, { epoch: snapshot.topic.epoch, offset: snapshot.topic.offset }, handleEvent, handleReset);

  try {
    await store.restore();
  } catch (error) {
    panel.setMessage(`Could not load your cart: ${error.message}`);
  }
}

start();
