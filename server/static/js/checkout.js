/** Checkout form of the live page: collects the buyer's details and places the order. */

import { ApiError, checkout } from './api.js';
import { el, setMessage } from './dom.js';
import { orderLink, saveOrder } from './saved-orders.js';

const FIELDS = ['company_name', 'tax_id', 'contact_name', 'phone', 'email', 'notes'];
const REQUIRED_FIELDS = {
  company_name: 'Enter the company name.',
  tax_id: 'Enter the CNPJ.',
  contact_name: 'Enter the contact name.',
  phone: 'Enter a phone number.',
  email: 'Enter an email address.',
};

/** Returns a random UUID v4, also on plain http pages where crypto.randomUUID is missing. */
export function randomUuid() {
  if (typeof crypto.randomUUID === 'function') {
    return crypto.randomUUID();
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Connects the checkout `form` to the cart. On success the stored cart is dropped, the
 * order link is saved and the page navigates to the order.
 *
 * A submission keeps its `Idempotency-Key` while its outcome is unknown (no response or
 * a 5xx), and resubmitting the same details reuses that key, so a retry cannot create a
 * second order.
 */
export function setupCheckout({ form, store, panel, navigate = (url) => location.assign(url) }) {
  const submitButton = form.querySelector('button[type="submit"]');
  const formMessage = form.querySelector('[data-role="form-message"]');
  // The last submission whose outcome is unknown: {key, bodyJson}
  let unconfirmed = null;
  // Drops a cart that is already checked out, so the next add creates a new cart.
  const startNewCart = () => {
    unconfirmed = null;
    setMessage(formMessage, '');
    store.forget();
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    setMessage(formMessage, '');
    const buyer = readBuyer(form);
    if (!validateRequired(form, buyer)) {
      return;
    }

    if (!store.credentials) {
      setMessage(formMessage, 'Your cart is empty. Add products before placing an order.');
      return;
    }
    const bodyJson = JSON.stringify(buyer);
    const key = unconfirmed?.bodyJson === bodyJson ? unconfirmed.key : randomUuid();
    submitButton.disabled = true;
    submitButton.textContent = 'Placing order…';
    try {
      let result;
      try {
        result = await checkout(store.credentials, buyer, key);
      } catch (error) {
        // The earlier submission with other details may have created the order, which
        // closed the cart. Resending it with its own key returns that order.
        if (error.code !== 'cart_closed' || !unconfirmed || unconfirmed.key === key) {
          throw error;
        }
        result = await checkout(store.credentials, JSON.parse(unconfirmed.bodyJson), unconfirmed.key);
      }
      unconfirmed = null;
      saveOrder(result.order, result.read_token);
      store.forget();
      navigate(orderLink(result.order.code, result.read_token));
    } catch (error) {
      if (error instanceof ApiError && error.retryable) {
        unconfirmed = unconfirmed?.bodyJson === bodyJson ? unconfirmed : { key, bodyJson };
      } else if (!(error instanceof ApiError && error.code === 'cart_closed')) {
        unconfirmed = null;
      }
      await showCheckoutError(error, { form, formMessage, store, panel, startNewCart });
    } finally {
      submitButton.disabled = false;
      submitButton.textContent = 'Place order';
    }
  });
}

function readBuyer(form) {
  const buyer = {};
  for (const name of FIELDS) {
    const value = form.elements[name].value.trim();
    if (name !== 'notes' || value !== '') {
      buyer[name] = value;
    }
  }
  return buyer;
}

function validateRequired(form, buyer) {
  let firstInvalid = null;
  for (const [name, message] of Object.entries(REQUIRED_FIELDS)) {
    if (!buyer[name]) {
      showFieldError(form, name, message);
      firstInvalid ??= form.elements[name];
    }
  }
  firstInvalid?.focus();
  return firstInvalid === null;
}

async function showCheckoutError(error, { form, formMessage, store, panel, startNewCart }) {
  if (!(error instanceof ApiError)) {
    console.error('checkout failed', error);
    setMessage(formMessage, 'Something went wrong while placing the order. Try again.');
    return;
  }

  if (error.status === 400 && FIELDS.includes(error.field)) {
    showFieldError(form, error.field, error.message);
    form.elements[error.field].focus();
    return;
  }

  if (error.code === 'stock_short' || error.code === 'price_changed') {
    for (const line of error.lines ?? []) {
      if (error.code === 'stock_short') {
        panel.noteStockShort(line.product_id, line.available);
      } else {
        panel.notePriceChange(line.product_id, line.previous_unit_price_cents, line.unit_price_cents);
      }
    }
    setMessage(
      formMessage,
      error.code === 'stock_short'
        ? 'Some products have less stock than your cart holds. Lower the marked quantities and place the order again.'
        : 'Some prices changed. Review the new prices above and place the order again to accept them.',
    );
    await refreshCart(store);
    return;
  }

  if (error.code === 'product_unavailable') {
    for (const productId of error.productIds ?? []) {
      panel.noteUnavailable(productId);
    }
    setMessage(
      formMessage,
      'Some products in your cart are no longer on sale. Remove the marked lines and place the order again.',
    );
    await refreshCart(store);
    return;
  }

  if (error.code === 'cart_empty') {
    setMessage(formMessage, 'Your cart has no products, so there is nothing to order. Add products from the live first.');
    // The cart was probably emptied in another tab, so show the cart the server stores.
    await refreshCart(store);
    return;
  }

  if (error.code === 'live_ended') {
    setMessage(formMessage, 'This live has ended, so it no longer takes orders.');
    return;
  }

  if (error.status === 0) {
    setMessage(formMessage, `${error.message} Your order may already be placed: press "Place order" again, and it will not be placed twice.`);
    return;
  }
  if (error.retryable) {
    const wait = error.retryAfterSeconds ? `in ${error.retryAfterSeconds} s` : 'in a moment';
    setMessage(
      formMessage,
      `The server did not confirm the order. ${error.message} Press "Place order" again ${wait}: the retry will not create a second order.`,
    );
    return;
  }
  if (error.code === 'cart_closed') {
    setMessage(
      formMessage,
      'This cart was already checked out, maybe in another tab, so it takes no more orders. Start a new cart to keep shopping. ',
    );
    formMessage.append(el('button', { type: 'button', class: 'button', onclick: startNewCart }, 'Start a new cart'));
    return;
  }
  // items[2].quantity and other fields outside the form, 401, 403, 413, 422
  setMessage(formMessage, error.message);
}

/**
 * Reads the cart after a rejected checkout, because it may now contain new prices or
 * fewer lines. The refreshed lines keep the notes recorded from the error.
 */
async function refreshCart(store) {
  await store.refresh().catch((refreshError) => console.warn('cart refresh failed', refreshError));
}

function showFieldError(form, name, message) {
  const target = form.querySelector(`[data-error-for="${name}"]`);
  setMessage(target, message);
  form.elements[name].setAttribute('aria-invalid', 'true');
}

function clearFieldErrors(form) {
  for (const target of form.querySelectorAll('[data-error-for]')) {
    setMessage(target, '');
  }
  for (const name of FIELDS) {
    form.elements[name].removeAttribute('aria-invalid');
  }
}
