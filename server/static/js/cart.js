/**
 * The buyer's cart for one live. The cart is created on the first add, and its
 * `{session_id, session_token}` is kept in localStorage per live slug so a reload
 * keeps the cart.
 */

import { ApiError, createCart, getCart, removeCartItem, setCartItem } from './api.js';

/** Minimum time in milliseconds between the cart reads that scheduleRefresh() starts. */
export const REFRESH_INTERVAL_MS = 500;

function storageKey(slug) {
  return `vitrine.cart.${slug}`;
}

/**
 * Cart state plus the calls that change it. Dispatches `change` after every new cart
 * response and after the cart is dropped. Changes run one at a time, in call order, so
 * a slow response never overwrites a newer one.
 */
export class CartStore extends EventTarget {
  constructor(slug) {
    super();
    this.slug = slug;
    /** The last cart response, or null before the first add. */
    this.cart = null;
    this.credentials = this._loadCredentials();
    this._queue = Promise.resolve();
    this._refreshTimer = null;
    this._refreshWaiting = false;
  }

  /**
   * Loads the stored cart. A stored cart that returns 401, 403 or 404, or that is
   * already checked out, is dropped. Other errors are thrown and the stored cart kept.
   */
  restore() {
    return this._enqueue(() => this._reload());
  }

  /** Returns whether the cart has a line for `productId`. */
  contains(productId) {
    return this.cart?.lines.some((line) => line.product_id === productId) ?? false;
  }

  quantityOf(productId) {
    return this.cart?.lines.find((line) => line.product_id === productId)?.quantity ?? 0;
  }

  /** Sets the quantity of a line, creating the cart first when there is none. Quantity 0 removes the line. */
  setQuantity(productId, quantity) {
    return this._enqueue(() => this._withCart((credentials) => setCartItem(credentials, productId, quantity)));
  }

  /** Adds `quantity` units to the line of `productId`, or creates the line. */
  addQuantity(productId, quantity) {
    return this._enqueue(() =>
      this._withCart((credentials) => setCartItem(credentials, productId, this.quantityOf(productId) + quantity)),
    );
  }

  remove(productId) {
    return this._enqueue(async () => {
      if (!this.credentials) {
        return null;
      }
      return this._setCart(await removeCartItem(this.credentials, productId));
    });
  }

  /** Reads the cart again, like restore(). */
  refresh() {
    return this._enqueue(() => this._reload());
  }

  /**
   * Reads the cart again soon, e.g. after an event changed the price or stock of one of
   * its products, so the lines and total show the new prices. Calls within
   * REFRESH_INTERVAL_MS of the first one share one read, which starts after that
   * interval, so scheduled reads start at least that far apart. The read waits in the
   * change queue like every change.
   */
  scheduleRefresh() {
    if (!this.credentials || this._refreshTimer !== null) {
      return;
    }
    this._refreshTimer = setTimeout(() => {
      this._refreshTimer = null;
      // A read still waiting in the queue starts later and covers this call too.
      if (this._refreshWaiting) {
        return;
      }
      this._refreshWaiting = true;
      this._enqueue(() => {
        this._refreshWaiting = false;
        return this._reload();
      }).catch((error) => console.warn('cart: reading the cart after a product change failed', error));
    }, REFRESH_INTERVAL_MS);
  }

  /** Drops the cart from memory and localStorage, e.g. after checkout. */
  forget() {
    this.credentials = null;
    this.cart = null;
    try {
      localStorage.removeItem(storageKey(this.slug));
    } catch (error) {
      console.warn('Could not remove the cart from localStorage', error);
    }
    this.dispatchEvent(new CustomEvent('change'));
  }

  /**
   * Runs `call` with the cart credentials, creating a cart when there is none. When the
   * stored cart is gone (401, 403 or 404) or already checked out in another tab (409
   * `cart_closed`), drops it and runs `call` once more on a new cart.
   */
  async _withCart(call) {
    const hadCart = this.credentials !== null;
    if (!hadCart) {
      await this._create();
    }
    try {
      return this._setCart(await call(this.credentials));
    } catch (error) {
      if (!hadCart || !(isCartGone(error) || error.code === 'cart_closed')) {
        throw error;
      }
      this.forget();
      await this._create();
      return this._setCart(await call(this.credentials));
    }
  }

  async _reload() {
    if (!this.credentials) {
      return null;
    }
    try {
      const cart = await getCart(this.credentials);
      if (cart.status === 'checked_out') {
        this.forget();
        return null;
      }
      return this._setCart(cart);
    } catch (error) {
      if (isCartGone(error)) {
        this.forget();
        return null;
      }
      throw error;
    }
  }

  async _create() {
    const created = await createCart(this.slug);
    this.credentials = { session_id: created.session_id, session_token: created.session_token };
    try {
      localStorage.setItem(storageKey(this.slug), JSON.stringify(this.credentials));
    } catch (error) {
      // The cart still works in this tab, but a reload starts a new one.
      console.warn('Could not store the cart in localStorage', error);
    }
  }

  _setCart(cart) {
    this.cart = cart;
    this.dispatchEvent(new CustomEvent('change', { detail: { cart } }));
    return cart;
  }

  _enqueue(task) {
    const result = this._queue.then(task);
    // A failed change must not block the changes queued after it.
    this._queue = result.catch(() => {});
    return result;
  }

  _loadCredentials() {
    try {
      const stored = JSON.parse(localStorage.getItem(storageKey(this.slug)) ?? 'null');
      return stored?.session_id && stored?.session_token ? stored : null;
    } catch {
      return null;
    }
  }
}

function isCartGone(error) {
  return error instanceof ApiError && [401, 403, 404].includes(error.status);
}
