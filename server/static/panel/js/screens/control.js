/**
 * Live control: title, video URL and start time, the status buttons, pinned products,
 * flash offers with a countdown, and banners.
 */

import { managerApi } from '../api.js';
import {
  clearErrors,
  field,
  formatCountdown,
  formatDateTime,
  fromLocalInputValue,
  h,
  replaceChildren,
  showError,
  toLocalInputValue,
} from '../dom.js';
import { centsToInput, formatCents, formatInteger, parseAmount } from '../format.js';
import { mountBanners } from './banners.js';

const MAX_PINNED = 3;
const NEXT_STATUS = {
  scheduled: [
    { status: 'live', label: 'Start live', kind: 'primary' },
    { status: 'ended', label: 'End without starting', kind: 'danger' },
  ],
  live: [{ status: 'ended', label: 'End live', kind: 'danger' }],
  ended: [],
};

export function mountControl(container, { slug, store }) {
  const settings = h('section', { class: 'card' });
  const status = h('section', { class: 'card' });
  const pins = h('section', { class: 'card' });
  const offers = h('section', { class: 'card' });
  const bannersSection = h('section', { class: 'card' });
  replaceChildren(
    container,
    h('div', { class: 'grid-2' }, h('div', { class: 'stack' }, status, settings), h('div', { class: 'stack' }, pins, offers)),
    bannersSection,
  );

  let settingsDirty = false;
  const renderAll = () => {
    if (store.loadError && !store.live) {
      replaceChildren(status, h('p', { class: 'form-error', role: 'alert' }, `Could not load the live: ${store.loadError.message}`));
      return;
    }
    if (!store.live) {
      replaceChildren(status, h('p', { class: 'muted' }, 'Loading…'));
      return;
    }
    renderStatus(status, slug, store);
    if (!settingsDirty) {
      renderSettings(settings, slug, store, () => {
        settingsDirty = true;
      }, () => {
        settingsDirty = false;
      });
    }
    if (!pins.contains(document.activeElement)) {
      renderPins(pins, slug, store);
    }
    if (!offers.contains(document.activeElement)) {
      renderOffers(offers, slug, store);
    }
  };

  const onChange = (event) => {
    if (['loaded', 'live', 'products', 'error'].includes(event.detail.kind)) {
      renderAll();
    }
  };
  store.addEventListener('change', onChange);
  renderAll();

  // One timer updates every countdown on the screen.
  const countdownTimer = setInterval(() => updateCountdowns(container), 1000);
  const unmountBanners = mountBanners(bannersSection, { slug, store });

  return () => {
    store.removeEventListener('change', onChange);
    clearInterval(countdownTimer);
    unmountBanners();
  };
}

function renderStatus(section, slug, store) {
  const live = store.live;
  const viewers = store.viewers;
  const buttons = NEXT_STATUS[live.status] ?? [];
  const errorSlot = h('p', { class: 'form-error', role: 'alert', hidden: true });
  replaceChildren(
    section,
    h('h2', {}, 'Status'),
    h('p', { class: 'status-line' },
      h('span', { class: `badge badge--${live.status}` }, live.status),
      live.starts_at ? h('span', { class: 'muted' }, ` Starts ${formatDateTime(live.starts_at)}`) : null,
      viewers ? h('span', { class: 'muted' }, ` · ${formatInteger(viewers.now)} watching now, peak ${formatInteger(viewers.peak)}`) : null,
    ),
    h('p', {}, h('a', { href: `/live/${encodeURIComponent(slug)}`, target: '_blank', rel: 'noopener' }, `Buyers’ page: /live/${slug}`)),
    errorSlot,
    h('div', { class: 'button-row' },
      buttons.map((step) =>
        h('button', {
          type: 'button',
          class: `button button--${step.kind}`,
          onclick: (event) => changeStatus(event.currentTarget, step, slug, store, section),
        }, step.label),
      ),
      buttons.length === 0 ? h('span', { class: 'muted' }, 'This live has ended; its status cannot change.') : null,
    ),
  );
}

async function changeStatus(button, step, slug, store, section) {
  // Ending cannot be undone, so it takes a second tap.
  if (step.status === 'ended' && button.dataset.confirm !== 'yes') {
    button.dataset.confirm = 'yes';
    button.textContent = 'Tap again to end the live';
    setTimeout(() => {
      if (button.isConnected) {
        button.dataset.confirm = '';
        button.textContent = step.label;
      }
    }, 5000);
    return;
  }
  clearErrors(section);
  button.disabled = true;
  try {
    store.setLive(await managerApi.updateLive(slug, { status: step.status }));
  } catch (error) {
    button.disabled = false;
    showError(section, error);
  }
}

function renderSettings(section, slug, store, markDirty, markClean) {
  const live = store.live;
  const form = h(
    'form',
    { novalidate: true, oninput: markDirty },
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    field('Title', h('input', { name: 'title', value: live.title ?? '', required: true, maxlength: 200 })),
    field('Video URL', h('input', { name: 'video_url', type: 'url', value: live.video_url ?? '', placeholder: 'https://www.youtube.com/embed/…' }), 'The embed URL that buyers watch.'),
    field('Scheduled start', h('input', { name: 'starts_at', type: 'datetime-local', value: toLocalInputValue(live.starts_at) }), 'Your local time. Leave empty for no announced start.'),
    h('div', { class: 'button-row' },
      h('button', { type: 'submit', class: 'button button--primary' }, 'Save settings'),
      h('button', { type: 'button', class: 'button button--ghost', onclick: () => { markClean(); renderSettings(section, slug, store, markDirty, markClean); } }, 'Discard changes'),
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const title = data.get('title').trim();
    if (!title) {
      showError(form, { field: 'title', message: 'Enter a title.' });
      return;
    }
    const changes = {};
    if (title !== live.title) changes.title = title;
    const videoUrl = data.get('video_url').trim() || null;
    if (videoUrl !== (live.video_url ?? null)) changes.video_url = videoUrl;
    const startsAt = fromLocalInputValue(data.get('starts_at'));
    if (startsAt !== (live.starts_at ? new Date(live.starts_at).toISOString() : null)) changes.starts_at = startsAt;
    if (Object.keys(changes).length === 0) {
      markClean();
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const updated = await managerApi.updateLive(slug, changes);
      markClean();
      store.setLive(updated);
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
    }
  });
  replaceChildren(section, h('h2', {}, 'Settings'), form);
}

function renderPins(section, slug, store) {
  const live = store.live;
  const pinned = new Set(live.pinned_product_ids ?? []);
  const visible = store.sortedProducts().filter((product) => product.visible);
  const errorSlot = h('p', { class: 'form-error', role: 'alert', hidden: true });

  const save = async (productId, checked, checkbox) => {
    clearErrors(section);
    const next = (live.pinned_product_ids ?? []).filter((id) => id !== productId);
    if (checked) {
      next.push(productId);
    }
    if (next.length > MAX_PINNED) {
      checkbox.checked = false;
      showError(section, { message: `At most ${MAX_PINNED} products can be pinned. Unpin one first.` });
      return;
    }
    checkbox.disabled = true;
    try {
      store.setLive(await managerApi.updateLive(slug, { pinned_product_ids: next }));
    } catch (error) {
      checkbox.checked = !checked;
      checkbox.disabled = false;
      showError(section, error);
    }
  };

  replaceChildren(
    section,
    h('h2', {}, `Pinned products (${pinned.size}/${MAX_PINNED})`),
    h('p', { class: 'muted' }, 'Pinned products show first on the buyers’ page. Only visible products can be pinned.'),
    errorSlot,
    visible.length === 0
      ? h('p', { class: 'muted' }, 'No visible products yet.')
      : h('ul', { class: 'check-list' },
        visible.map((product) => {
          const checkbox = h('input', {
            type: 'checkbox',
            checked: pinned.has(product.id),
            disabled: !pinned.has(product.id) && pinned.size >= MAX_PINNED,
          });
          checkbox.addEventListener('change', () => save(product.id, checkbox.checked, checkbox));
          return h('li', {}, h('label', { class: 'check' }, checkbox, h('span', {}, `${product.sku} · ${product.name}`)));
        })),
  );
}

/** Whether `product` has a flash offer whose end time is still ahead. */
export function activeFlash(product, now = Date.now()) {
  return product.flash_price_cents != null && product.flash_ends_at && new Date(product.flash_ends_at).getTime() > now;
}

function renderOffers(section, slug, store) {
  const currency = store.live.currency;
  const products = store.sortedProducts();
  const active = products.filter((product) => activeFlash(product));

  const productSelect = h('select', { name: 'product_id' },
    products.map((product) => h('option', { value: String(product.id) }, `${product.sku} · ${product.name} (${formatCents(product.price_cents, currency)})`)));
  const defaultEnd = toLocalInputValue(new Date(Date.now() + 15 * 60_000).toISOString());
  const form = h(
    'form',
    { novalidate: true },
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    field('Product', productSelect),
    h('div', { class: 'grid-2 grid-2--tight' },
      field('Flash price', h('input', { name: 'flash_price_cents', inputmode: 'decimal', placeholder: '0.00' })),
      field('Ends at', h('input', { name: 'flash_ends_at', type: 'datetime-local', value: defaultEnd })),
    ),
    h('button', { type: 'submit', class: 'button button--primary' }, 'Start offer'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const productId = Number(data.get('product_id'));
    const product = store.products.get(productId);
    const price = parseAmount(data.get('flash_price_cents'), currency);
    if (price === null || Number.isNaN(price) || price <= 0) {
      showError(form, { field: 'flash_price_cents', message: 'Enter a price above zero, e.g. 19.90.' });
      return;
    }
    if (product && price >= product.price_cents) {
      showError(form, { field: 'flash_price_cents', message: `The flash price must be below the regular price, ${formatCents(product.price_cents, currency)}.` });
      return;
    }
    const endsAt = fromLocalInputValue(data.get('flash_ends_at'));
    if (!endsAt || new Date(endsAt).getTime() <= Date.now()) {
      showError(form, { field: 'flash_ends_at', message: 'Pick an end time in the future.' });
      return;
    }
    try {
      store.upsertProduct(await managerApi.updateProduct(slug, productId, { flash_price_cents: price, flash_ends_at: endsAt }));
      renderOffers(section, slug, store);
    } catch (error) {
      showError(form, error);
    }
  });

  const endOffer = async (product, button) => {
    button.disabled = true;
    clearErrors(section);
    try {
      store.upsertProduct(await managerApi.updateProduct(slug, product.id, { flash_price_cents: null, flash_ends_at: null }));
      renderOffers(section, slug, store);
    } catch (error) {
      button.disabled = false;
      showError(section, error);
    }
  };

  replaceChildren(
    section,
    h('h2', {}, 'Flash offers'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    active.length === 0
      ? h('p', { class: 'muted' }, 'No offer running.')
      : h('ul', { class: 'offer-list' },
        active.map((product) => h('li', { class: 'offer' },
          h('div', {},
            h('strong', {}, `${product.sku} · ${product.name}`),
            h('div', { class: 'muted' }, `${formatCents(product.flash_price_cents, currency)} instead of ${formatCents(product.price_cents, currency)} · ends ${formatDateTime(product.flash_ends_at)}`),
          ),
          h('span', { class: 'countdown', dataset: { endsAt: product.flash_ends_at } }, formatCountdown(new Date(product.flash_ends_at) - Date.now())),
          h('button', { type: 'button', class: 'button button--small', onclick: (event) => endOffer(product, event.currentTarget) }, 'End now'),
        ))),
    h('h3', {}, 'New offer'),
    products.length === 0 ? h('p', { class: 'muted' }, 'Add products in the catalog first.') : form,
  );
  // Prefill the price field when the product changes, as a hint of the regular price.
  productSelect.addEventListener('change', () => {
    const product = store.products.get(Number(productSelect.value));
    form.querySelector('[name=flash_price_cents]').placeholder = product ? centsToInput(product.price_cents, currency) : '';
  });
  productSelect.dispatchEvent(new Event('change'));
}

function updateCountdowns(container) {
  for (const node of container.querySelectorAll('.countdown[data-ends-at]')) {
    const remaining = new Date(node.dataset.endsAt).getTime() - Date.now();
    node.textContent = remaining > 0 ? formatCountdown(remaining) : 'ended';
    node.classList.toggle('countdown--ended', remaining <= 0);
  }
}
