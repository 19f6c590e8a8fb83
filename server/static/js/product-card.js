/**
 * Product card of the live page: price tiers, a running flash offer, order rules, stock
 * and the add-to-cart control.
 */

import { el, safeUrl } from './dom.js';
import { flashEndsAtMs, renderCountdownTime, runningFlashPrice } from './flash-offer.js';
import { formatCents } from './money.js';
import { formatCount } from './numbers.js';
import { maxValidQuantity, minValidQuantity, priceRows, snapQuantity, unitPriceCents } from './quantity.js';
import { renderStepper } from './stepper.js';

/**
 * Returns the card element of `product`.
 *
 * @param {object} product a product from the API
 * @param {object} context `currency`, `canBuy` (false when the live has ended),
 *   `quantity` (the quantity selected on the card), `cartQuantity`, `pinned`, `now`
 *   (the server time in epoch milliseconds, which decides whether the flash offer
 *   runs), `onQuantityChange(product, quantity)` and `onAdd(product, quantity, card)`.
 *   The card shows the flash offer as it runs at `now`, so the page renders it again
 *   when the offer ends.
 */
export function renderProductCard(product, context) {
  const money = (cents) => formatCents(cents, context.currency);
  const soldOut = product.stock === 0;
  const minimum = minValidQuantity(product);
  const belowMinimum = !soldOut && maxValidQuantity(product) < minimum;
  const quantity = snapQuantity(product, context.quantity ?? minimum);
  const flashPrice = runningFlashPrice(product, context.now);

  const subtotal = el('p', { class: 'card__subtotal', 'aria-live': 'polite' });
  const priceTable = renderPriceTable(product, flashPrice, money);
  const showQuantity = (value) => {
    const unitPrice = unitPriceCents(product, value, flashPrice);
    subtotal.textContent = `${formatCount(value)} × ${money(unitPrice)} = ${money(unitPrice * value)}`;
    for (const row of priceTable.querySelectorAll('tr[data-min]')) {
      row.classList.toggle('is-active', Number(row.dataset.min) === activeTierMinimum(product, value));
    }
  };

  const canAdd = context.canBuy && !soldOut && !belowMinimum;
  const stepper = renderStepper({
    value: quantity,
    min: minimum,
    max: maxValidQuantity(product),
    step: product.step || 1,
    label: `Quantity of ${product.name}`,
    disabled: !canAdd,
    normalize: (value) => snapQuantity(product, value),
    onChange: (value) => {
      showQuantity(value);
      context.onQuantityChange(product, value);
    },
  });

  const error = el('p', { class: 'field-error', role: 'alert', hidden: true });
  const addButton = el(
    'button',
    { type: 'button', class: 'button button--primary', disabled: !canAdd, dataset: { focusKey: 'add' } },
    addButtonLabel(context.canBuy, soldOut),
  );

  const card = el(
    'article',
    {
      class: `card${soldOut ? ' is-sold-out' : ''}${context.pinned ? ' card--pinned' : ''}`,
      dataset: { productId: product.id },
      'aria-label': product.name,
    },
    renderMedia(product, soldOut),
    el(
      'div',
      { class: 'card__body' },
      el('h3', { class: 'card__name' }, product.name),
      el('p', { class: 'card__sku' }, `SKU ${product.sku}`),
      product.description ? el('p', { class: 'card__description' }, product.description) : null,
      flashPrice === null ? null : renderFlashNote(product, context.now),
      renderPrice(product, flashPrice, money),
      priceTable,
      el('p', { class: 'card__rules' }, orderRules(product)),
      el('p', { class: `card__stock${soldOut ? ' is-empty' : ''}` }, stockText(product, belowMinimum)),
      el('div', { class: 'card__buy' }, stepper, addButton),
      canAdd ? subtotal : null,
      el('p', { class: 'card__in-cart', hidden: !context.cartQuantity }, inCartText(context.cartQuantity)),
      error,
    ),
  );

  addButton.addEventListener('click', () => {
    const value = Number.parseInt(stepper.querySelector('input').value, 10);
    context.onAdd(product, snapQuantity(product, value), card);
  });
  showQuantity(quantity);
  return card;
}

/** Updates the "in cart" note of a rendered card without rebuilding it. */
export function updateCardCartQuantity(card, cartQuantity) {
  const note = card.querySelector('.card__in-cart');
  note.textContent = inCartText(cartQuantity);
  note.hidden = !cartQuantity;
}

function inCartText(cartQuantity) {
  return cartQuantity ? `In cart: ${formatCount(cartQuantity)} units` : '';
}

function addButtonLabel(canBuy, soldOut) {
  if (soldOut) {
    return 'Sold out';
  }
  return canBuy ? 'Add to cart' : 'Live ended';
}

function renderMedia(product, soldOut) {
  const imageUrl = safeUrl(product.image_url);
  return el(
    'div',
    { class: 'card__media' },
    imageUrl
      ? el('img', { src: imageUrl, alt: '', loading: 'lazy', decoding: 'async' })
      : el('div', { class: 'card__placeholder', 'aria-hidden': 'true' }, product.sku),
    soldOut ? el('span', { class: 'badge badge--sold-out' }, 'Sold out') : null,
  );
}

/** Renders the headline unit price: the flash price, when lower, before the struck regular price. */
function renderPrice(product, flashPrice, money) {
  const unit = el('span', { class: 'card__unit' }, ' / unit');
  if (flashPrice === null || flashPrice >= product.price_cents) {
    return el('p', { class: 'card__price' }, money(product.price_cents), unit);
  }
  return el(
    'p',
    { class: 'card__price card__price--flash' },
    el('span', { class: 'visually-hidden' }, 'Flash price '),
    money(flashPrice),
    unit,
    ' ',
    renderRegularPrice(product.price_cents, money),
  );
}

/** Renders a price that a flash offer replaces, struck through and named for screen readers. */
function renderRegularPrice(cents, money) {
  return el('s', { class: 'regular-price' }, el('span', { class: 'visually-hidden' }, 'regular price '), money(cents));
}

/**
 * Renders the flash offer label and its countdown. The countdown changes every second,
 * so it is not a live region, and a screen reader reads it when the buyer reaches it.
 */
function renderFlashNote(product, now) {
  return el(
    'p',
    { class: 'card__flash' },
    el('span', { class: 'badge badge--flash' }, 'Flash offer'),
    el(
      'span',
      { class: 'card__countdown', role: 'timer', 'aria-live': 'off' },
      'ends in ',
      renderCountdownTime(product.id, flashEndsAtMs(product), now),
    ),
  );
}

function renderPriceTable(product, flashPrice, money) {
  return el(
    'table',
    { class: 'tiers' },
    el('caption', { class: 'visually-hidden' }, `Volume prices of ${product.name}`),
    el(
      'tbody',
      {},
      priceRows(product, flashPrice).map((row) =>
        el(
          'tr',
          { dataset: { min: row.min_quantity } },
          el('th', { scope: 'row' }, `from ${formatCount(row.min_quantity)} units`),
          el(
            'td',
            {},
            row.price_cents < row.regular_price_cents ? [renderRegularPrice(row.regular_price_cents, money), ' '] : null,
            money(row.price_cents),
          ),
        ),
      ),
    ),
  );
}

function activeTierMinimum(product, quantity) {
  let active = minValidQuantity(product);
  for (const row of priceRows(product)) {
    if (row.min_quantity <= quantity) {
      active = row.min_quantity;
    }
  }
  return active;
}

function orderRules(product) {
  const parts = [`Min. ${formatCount(minValidQuantity(product))} units`];
  if ((product.step || 1) > 1) {
    parts.push(`packs of ${formatCount(product.step)}`);
  }
  if (product.max_quantity !== null && product.max_quantity !== undefined) {
    parts.push(`max. ${formatCount(product.max_quantity)}`);
  }
  return parts.join(' · ');
}

function stockText(product, belowMinimum) {
  if (product.stock === 0) {
    return 'Sold out';
  }
  if (product.stock === null || product.stock === undefined) {
    return '';
  }
  const left = `${formatCount(product.stock)} in stock`;
  return belowMinimum ? `${left}, fewer than the minimum order` : left;
}
