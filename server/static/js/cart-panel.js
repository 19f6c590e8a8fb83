/** Cart drawer of the live page: lines, notes about price and stock, and the totals. */

import { el, safeUrl, setMessage } from './dom.js';
import { formatCents } from './money.js';
import { formatCount } from './numbers.js';
import { minValidQuantity, quantityStep, snapQuantity } from './quantity.js';
import { renderStepper } from './stepper.js';

/**
 * Renders the cart of a CartStore into the drawer elements and sends the buyer's
 * quantity changes to the store.
 */
export class CartPanel {
  /**
   * @param {object} options `store` (CartStore), `elements` ({lines, summary, message,
   *   checkoutSection, headerCount, headerTotal}), `getProduct(id)` (the live product or
   *   undefined) and `getCurrency()`
   */
  constructor({ store, elements, getProduct, getCurrency }) {
    this.store = store;
    this.elements = elements;
    this.getProduct = getProduct;
    this.getCurrency = getCurrency;
    // product id -> {price, stock, unavailable, error}: notes shown under a line until
    // the buyer changes it
    this.notes = new Map();
    store.addEventListener('change', (event) => {
      this._recordLineChanges(event.detail?.cart);
      this.render();
    });
  }

  /** Shows "price changed from X to Y" under a line. */
  notePriceChange(productId, previousCents, currentCents) {
    this._note(productId).price = { previousCents, currentCents };
  }

  /** Shows "only N left" under a line, after a checkout returned `stock_short`. */
  noteStockShort(productId, available) {
    this._note(productId).stock = available;
  }

  /** Marks a line as no longer on sale, after a checkout returned `product_unavailable`. */
  noteUnavailable(productId) {
    this._note(productId).unavailable = true;
  }

  setMessage(message) {
    setMessage(this.elements.message, message);
  }

  render() {
    const cart = this.store.cart;
    const lines = cart?.lines ?? [];
    const currency = cart?.currency ?? this.getCurrency();
    const money = (cents) => formatCents(cents, currency);

    for (const productId of this.notes.keys()) {
      if (!lines.some((line) => line.product_id === productId)) {
        this.notes.delete(productId);
      }
    }

    this.elements.lines.replaceChildren(...lines.map((line) => this._renderLine(line, money)));
    this.elements.summary.replaceChildren(
      lines.length === 0
        ? el('p', { class: 'cart__empty' }, 'Your cart is empty. Add products from the live to start an order.')
        : el(
            'dl',
            { class: 'cart__totals' },
            el('dt', {}, 'Units'),
            el('dd', {}, formatCount(cart.item_count)),
            el('dt', { class: 'cart__total-label' }, 'Total'),
            el('dd', { class: 'cart__total' }, money(cart.total_cents)),
          ),
    );
    this.elements.checkoutSection.hidden = lines.length === 0;
    this.elements.headerCount.textContent = formatCount(cart?.item_count ?? 0);
    this.elements.headerTotal.textContent = lines.length ? money(cart.total_cents) : '';
  }

  _renderLine(line, money) {
    const product = this.getProduct(line.product_id);
    const note = this.notes.get(line.product_id) ?? {};
    const unavailable = line.available === false || note.unavailable === true;
    const imageUrl = safeUrl(line.image_url);

    return el(
      'li',
      { class: `line${unavailable ? ' line--unavailable' : ''}`, dataset: { productId: line.product_id } },
      imageUrl
        ? el('img', { class: 'line__image', src: imageUrl, alt: '', loading: 'lazy' })
        : el('div', { class: 'line__image line__image--empty', 'aria-hidden': 'true' }),
      el(
        'div',
        { class: 'line__info' },
        el('p', { class: 'line__name' }, line.name),
        el('p', { class: 'line__sku' }, `SKU ${line.sku} · ${money(line.unit_price_cents)} / unit`),
      ),
      el(
        'div',
        { class: 'line__controls' },
        // The server rejects a new quantity for a product that is off sale (404), so
        // such a line offers only its removal.
        unavailable
          ? el('p', { class: 'line__quantity' }, `${formatCount(line.quantity)} units`)
          : this._renderStepper(line, product),
        el(
          'button',
          {
            type: 'button',
            class: unavailable ? 'button button--danger' : 'button button--quiet',
            'aria-label': `Remove ${line.name}`,
            onclick: () => this._change(line.product_id, () => this.store.remove(line.product_id)),
          },
          'Remove',
        ),
      ),
      el('p', { class: 'line__total' }, money(line.line_total_cents)),
      this._renderNotes(line, product, note, unavailable, money),
    );
  }

  _renderStepper(line, product) {
    const step = quantityStep(product);
    return renderStepper({
      value: line.quantity,
      min: product ? minValidQuantity(product) : step,
      max: Infinity,
      step,
      label: `Quantity of ${line.name}`,
      normalize: (value) => {
        if (value <= 0) {
          return 0;
        }
        return product ? snapQuantity(product, value) : value;
      },
      onChange: (quantity) => this._change(line.product_id, () => this.store.setQuantity(line.product_id, quantity)),
    });
  }

  _renderNotes(line, product, note, unavailable, money) {
    const notes = [];
    if (unavailable) {
      notes.push(el('p', { class: 'note note--danger' }, 'No longer on sale — remove it to place the order'));
    }
    if (note.price) {
      notes.push(
        el(
          'p',
          { class: 'note note--price' },
          `Price changed from ${money(note.price.previousCents)} to ${money(note.price.currentCents)}`,
        ),
      );
    }
    // The live product follows stock events, so it is usually newer than the cart line.
    const stock = product?.stock ?? line.stock;
    const available = note.stock ?? (typeof stock === 'number' && stock < line.quantity ? stock : null);
    if (!unavailable && available !== null && available !== undefined) {
      notes.push(
        el(
          'p',
          { class: 'note note--warning' },
          available === 0 ? 'Sold out: remove this line to place the order' : `Only ${formatCount(available)} left`,
        ),
      );
    }
    if (note.error) {
      notes.push(el('p', { class: 'field-error', role: 'alert' }, note.error));
    }
    return notes.length ? el('div', { class: 'line__notes' }, notes) : null;
  }

  async _change(productId, update) {
    this.notes.delete(productId);
    this.setMessage('');
    try {
      await update();
    } catch (error) {
      this._note(productId).error = error.message;
      this.render();
    }
  }

  /** Records the price changes of a new cart response and drops notes it proves stale. */
  _recordLineChanges(cart) {
    for (const line of cart?.lines ?? []) {
      if (line.previous_unit_price_cents !== undefined && line.previous_unit_price_cents !== null) {
        this.notePriceChange(line.product_id, line.previous_unit_price_cents, line.unit_price_cents);
      }
      // The product is on sale again since a checkout reported it unavailable.
      if (line.available === true && this.notes.get(line.product_id)?.unavailable) {
        delete this.notes.get(line.product_id).unavailable;
      }
    }
  }

  _note(productId) {
    if (!this.notes.has(productId)) {
      this.notes.set(productId, {});
    }
    return this.notes.get(productId);
  }
}
