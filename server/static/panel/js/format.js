/** Money and number formatting and parsing for the panel. */

import { formatCents } from '/static/js/money.js';

export { formatCents };

const integerFormat = new Intl.NumberFormat();

export function formatInteger(value) {
  return value === null || value === undefined ? '' : integerFormat.format(value);
}

/** Returns the number of minor-unit digits of `currency` (2 for BRL, 0 for JPY). */
export function currencyDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency: currency || 'BRL' }).resolvedOptions()
      .maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** Formats cents as a plain decimal for an input, e.g. 2990 -> "29.90". */
export function centsToInput(cents, currency) {
  if (cents === null || cents === undefined) {
    return '';
  }
  const digits = currencyDigits(currency);
  return (cents / 10 ** digits).toFixed(digits);
}

/**
 * Parses an amount typed by a manager ("29,90", "29.90", "1.234,50", "1,234.50") into
 * integer cents. The last `.` or `,` followed by at most the currency's digits is the
 * decimal separator. Returns null for an empty value and NaN for an invalid one.
 */
export function parseAmount(text, currency) {
  const value = String(text ?? '').trim().replace(/\s/g, '');
  if (value === '') {
    return null;
  }
  const digits = currencyDigits(currency);
  const match = /^(\d[\d.,]*?)(?:[.,](\d{1,3}))?$/.exec(value);
  if (!match) {
    return Number.NaN;
  }
  let [, whole, fraction = ''] = match;
  if (fraction.length > digits) {
    // "1.234" in a 2-digit currency is a thousands separator, not a decimal part.
    if (fraction.length === 3) {
      whole = `${whole}${fraction}`;
      fraction = '';
    } else {
      return Number.NaN;
    }
  }
  whole = whole.replace(/[.,]/g, '');
  if (!/^\d+$/.test(whole)) {
    return Number.NaN;
  }
  return Number(whole) * 10 ** digits + Number(fraction.padEnd(digits, '0') || 0);
}

/** Parses a non-negative integer input; null when empty, NaN when invalid. */
export function parseCount(text) {
  const value = String(text ?? '').trim();
  if (value === '') {
    return null;
  }
  return /^\d+$/.test(value) ? Number(value) : Number.NaN;
}
