/** Cart drawer of the live page: lines, notes about price and stock, and the totals. */

import { el, safeUrl, setMessage } from './dom.js';
import { formatCents } from './money.js';
import { minValidQuantity, quantityStep, snapQuantity } from './quantity.js';
import { renderStepper } from './stepper.js';

const countFormat = new Intl.NumberFormat('pt-BR');

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
    // product id -> {price, stock, error}: notes shown under a line until the buyer changes it
    this.notes = new Map();
    store.addEventListener('change', (event) => {
      this._recordPriceChanges(event.detail?.cart);
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
            el('dd', {}, countFormat.format(cart.item_count)),
            el('dt', { class: 'cart__total-label' }, 'Total'),
            el('dd', { class: 'cart__total' }, money(cart.total_cents)),
          ),
    );
    this.elements.checkoutSection.hidden = lines.length === 0;
    this.elements.headerCount.textContent = countFormat.format(cart?.item_count ?? 0);
    this.elements.headerTotal.textContent = lines.length ? money(cart.total_cents) : '';
  }

  _renderLine(line, money) {
    const product = this.getProduct(line.product_id);
    const note = this.notes.get(line.product_id) ?? {};
    const imageUrl = safeUrl(line.image_url);
    const step = quantityStep(product);
    const label = `Quantity of ${line.name}`;

    const stepper = renderStepper({
      value: line.quantity,
      min: product ? minValidQuantity(product) : step,
      max: Infinity,
      step,
      label,
      normalize: (value) => {
        if (value <= 0) {
          return 0;
        }
        return product ? snapQuantity(product, value) : value;
      },
      onChange: (quantity) => this._change(line.product_id, () => this.store.setQuantity(line.product_id, quantity)),
    });

    return el(
      'li',
      { class: 'line', dataset: { productId: line.product_id } },
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
        stepper,
        el(
          'button',
          {
            type: 'button',
            class: 'button button--quiet',
            'aria-label': `Remove ${line.name}`,
            onclick: () => this._change(line.product_id, () => this.store.remove(line.product_id)),
          },
          'Remove',
        ),
      ),
      el('p', { class: 'line__total' }, money(line.line_total_cents)),
      this._renderNotes(line, product, note, money),
    );
  }

  _renderNotes(line, product, note, money) {
    const notes = [];
    if (note.price) {
      notes.push(
        el(
          'p',
          { class: 'note note--price' },
          `Price changed from ${money(note.price.previousCents)} to ${money(note.price.currentCents)}`,
        ),
      );
    }
    const available = note.stock ?? (product && product.stock < line.quantity ? product.stock : null);
    if (available !== null && available !== undefined) {
      notes.push(
        el(
          'p',
          { class: 'note note--warning' },
          available === 0 ? 'Sold out: remove this line to place the order' : `Only ${countFormat.format(available)} left`,
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

  _recordPriceChanges(cart) {
    for (const line of cart?.lines ?? []) {
      if (line.previous_unit_price_cents !== undefined && line.previous_unit_price_cents !== null) {
        this.notePriceChange(line.product_id, line.previous_unit_price_cents, line.unit_price_cents);
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
