/**
 * Flash offers of the live page: a product's `flash_price_cents` applies until
 * `flash_ends_at`, and both are null when no offer runs.
 */

import { el } from './dom.js';

const COUNTDOWN_SELECTOR = '[data-flash-ends-at]';
const TICK_MS = 1000;

/**
 * Returns `flash_ends_at` of `product` in epoch milliseconds, or null when it has none.
 * The server sends microseconds, which are cut to milliseconds before parsing, because
 * the ECMAScript date format that Date.parse() must accept has three fraction digits.
 */
export function flashEndsAtMs(product) {
  if (typeof product.flash_ends_at !== 'string') {
    return null;
  }
  const trimmed = product.flash_ends_at.replace(/(\.\d{3})\d+/, '$1');
  const time = Date.parse(trimmed);
  return Number.isNaN(time) ? null : time;
}

/** Returns the flash price of `product` when its offer runs at `now` (epoch ms), otherwise null. */
export function runningFlashPrice(product, now) {
  const endsAt = flashEndsAtMs(product);
  if (typeof product.flash_price_cents !== 'number' || endsAt === null || now >= endsAt) {
    return null;
  }
  return product.flash_price_cents;
}

/** Formats a remaining time as "mm:ss", or "h:mm:ss" from one hour on, rounded up to whole seconds. */
export function formatCountdown(remainingMs) {
  const totalSeconds = Math.max(0, Math.ceil(remainingMs / 1000));
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const pad = (value) => String(value).padStart(2, '0');
  return hours > 0 ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${pad(minutes)}:${pad(seconds)}`;
}

/**
 * Returns the countdown element of an offer, whose text FlashCountdown updates.
 * `productId` is passed to the `onExpire` callback when the offer ends.
 */
export function renderCountdownTime(productId, endsAtMs, now) {
  return el(
    'time',
    {
      class: 'countdown',
      datetime: new Date(endsAtMs).toISOString(),
      dataset: { flashEndsAt: endsAtMs, flashProductId: productId },
    },
    formatCountdown(endsAtMs - now),
  );
}

/**
 * One page-wide timer for every flash countdown under `root`. The timer runs only while
 * a countdown is on the page, so call `refresh()` after each render.
 *
 * Each tick reads the clock instead of counting ticks, so a tab that the browser
 * throttled in the background shows the right time on its next tick. When a countdown
 * reaches zero, `onExpire(productIds)` runs once per tick with the ids whose offer ended,
 * and the page is expected to render those products at their regular price.
 */
export class FlashCountdown {
  /**
   * @param {{root: ParentNode, now: () => number, onExpire: (productIds: number[]) => void}} options
   *   `now` returns the current time in epoch milliseconds
   */
  constructor({ root, now, onExpire }) {
    this._root = root;
    this._now = now;
    this._onExpire = onExpire;
    this._timer = null;
  }

  /** Starts the timer when a countdown is on the page and stops it when none is. */
  refresh() {
    const hasCountdown = this._root.querySelector(COUNTDOWN_SELECTOR) !== null;
    if (hasCountdown && this._timer === null) {
      this._timer = setInterval(() => this.tick(), TICK_MS);
    } else if (!hasCountdown && this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  /** Updates every countdown and reports the offers that ended. */
  tick() {
    const now = this._now();
    const expired = new Set();
    for (const element of this._root.querySelectorAll(COUNTDOWN_SELECTOR)) {
      const remaining = Number(element.dataset.flashEndsAt) - now;
      if (remaining <= 0) {
        expired.add(Number(element.dataset.flashProductId));
      }
      const text = formatCountdown(remaining);
      if (element.textContent !== text) {
        element.textContent = text;
      }
    }
    if (expired.size > 0) {
      this._onExpire([...expired]);
    }
    this.refresh();
  }
}
