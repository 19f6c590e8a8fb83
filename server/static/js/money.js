/** Money formatting for integer amounts in the currency's minor unit ("cents"). */

export const DEFAULT_LOCALE = 'pt-BR';

const formatters = new Map();

function formatterFor(currency, locale) {
  const key = `${locale}|${currency}`;
  let formatter = formatters.get(key);
  if (!formatter) {
    formatter = new Intl.NumberFormat(locale, { style: 'currency', currency });
    formatters.set(key, formatter);
  }
  return formatter;
}

/**
 * Formats `cents` as an amount of `currency`, e.g. 2990 BRL -> "R$ 29,90".
 * The number of minor-unit digits comes from Intl (2 for BRL, 0 for JPY), so the
 * amount is divided by 10 to that power.
 */
export function formatCents(cents, currency, locale = DEFAULT_LOCALE) {
  const formatter = formatterFor(currency || 'BRL', locale);
  const digits = formatter.resolvedOptions().maximumFractionDigits;
  return formatter.format(cents / 10 ** digits);
}
