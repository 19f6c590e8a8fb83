/** Display of the buyer's tax id. */

// A CNPJ once `.`, `/`, `-` and spaces are removed: 12 letters or digits, then 2 check
// digits. The server takes any 14-character tax id as a CNPJ (docs/API.md).
const CNPJ = /^([0-9A-Z]{2})([0-9A-Z]{3})([0-9A-Z]{3})([0-9A-Z]{4})([0-9]{2})$/;

/**
 * Formats a CNPJ as 11.222.333/0001-81, also an alphanumeric one (12.ABC.345/01DE-35).
 * Returns any other tax id unchanged.
 */
export function formatTaxId(taxId) {
  if (typeof taxId !== 'string') {
    return taxId;
  }
  const match = CNPJ.exec(taxId.replace(/[./\-\s]/g, '').toUpperCase());
  return match ? `${match[1]}.${match[2]}.${match[3]}/${match[4]}-${match[5]}` : taxId;
}
