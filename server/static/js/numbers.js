/** Formatting of plain counts and quantities. Money amounts go through money.js instead. */

// The page text is English, so counts use English separators: "3,600 in stock". With
// pt-BR separators the same count reads "3.600", which an English reader takes for 3.6.
const countFormat = new Intl.NumberFormat('en-US');

/** Formats a count or quantity of units, e.g. 3600 -> "3,600". */
export function formatCount(value) {
  return countFormat.format(value);
}
