/**
 * The product form in a side drawer: every product field, the price tiers, the
 * quantity rules and an image upload. Creates a product when `product` is null.
 */

import { ApiError, managerApi } from '../api.js';
import { clearErrors, field, h, replaceChildren, safeUrl, showError } from '../dom.js';
import { centsToInput, parseAmount, parseCount } from '../format.js';
import { openDrawer } from './drawer.js';

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

export function openProductEditor({ slug, store, product }) {
  const currency = store.live?.currency;
  const tiersBody = h('tbody');
  const imageUrl = h('input', { name: 'image_url', type: 'url', value: product?.image_url ?? '' });
  const preview = h('img', { class: 'thumb thumb--large', alt: '', hidden: !safeUrl(product?.image_url) , src: safeUrl(product?.image_url) ?? '' });
  const fileInput = h('input', { type: 'file', accept: IMAGE_TYPES.join(','), name: 'image_file' });
  const uploadStatus = h('p', { class: 'muted small', role: 'status' });

  const addTierRow = (tier = { min_quantity: '', price_cents: null }) => {
    const row = h('tr', {},
      h('td', {}, h('input', { class: 'inline-input', name: 'tier_min', inputmode: 'numeric', value: String(tier.min_quantity ?? ''), 'aria-label': 'Minimum quantity' })),
      h('td', {}, h('input', { class: 'inline-input', name: 'tier_price', inputmode: 'decimal', value: centsToInput(tier.price_cents, currency), 'aria-label': 'Unit price' })),
      h('td', {}, h('button', { type: 'button', class: 'button button--small button--ghost', onclick: () => row.remove() }, 'Remove')),
    );
    tiersBody.append(row);
  };
  (product?.tiers ?? []).forEach(addTierRow);

  const numberInput = (name, value) => h('input', { name, inputmode: 'numeric', value: value == null ? '' : String(value) });
  const form = h(
    'form',
    { class: 'product-form', novalidate: true },
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'grid-2 grid-2--tight' },
      field('SKU', h('input', { name: 'sku', value: product?.sku ?? '', required: true, maxlength: 64 })),
      field('Name', h('input', { name: 'name', value: product?.name ?? '', required: true, maxlength: 200 })),
    ),
    field('Description', h('textarea', { name: 'description', rows: 3 }, product?.description ?? '')),
    h('div', { class: 'image-field' },
      preview,
      h('div', { class: 'stack stack--tight' },
        field('Image', fileInput, 'JPEG, PNG or WebP, at most 5 MB. Uploaded at once and saved with the product.'),
        uploadStatus,
        field('Image URL', imageUrl),
      ),
    ),
    h('div', { class: 'grid-3' },
      field('Price', h('input', { name: 'price_cents', inputmode: 'decimal', value: centsToInput(product?.price_cents, currency), required: true })),
      field(product ? 'Stock' : 'Initial stock', numberInput('stock', product?.stock ?? 0), product ? 'Saved as a change from the stock shown, so sales meanwhile are kept.' : null),
      field('Low stock alert at', numberInput('low_stock_threshold', product?.low_stock_threshold ?? 0), 'Alerts when a sale leaves this many units or fewer, so 0 alerts when it sells out.'),
      field('Min quantity', numberInput('min_quantity', product?.min_quantity ?? 1)),
      field('Step', numberInput('step', product?.step ?? 1)),
      field('Max quantity', numberInput('max_quantity', product?.max_quantity), 'Empty for no limit.'),
    ),
    h('fieldset', { class: 'tiers' },
      h('legend', {}, 'Price tiers'),
      h('p', { class: 'muted small' }, 'A line of at least the minimum quantity gets the tier’s unit price.'),
      h('table', { class: 'table table--compact' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Min quantity'), h('th', {}, 'Unit price'), h('th', {}, ''))),
        tiersBody,
      ),
      h('p', { class: 'field-error', role: 'alert', hidden: true, dataset: { errorFor: 'tiers' } }),
      h('button', { type: 'button', class: 'button button--small', onclick: () => addTierRow() }, 'Add tier'),
    ),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'visible', checked: product ? product.visible : true }), h('span', {}, 'Visible to buyers')),
    h('div', { class: 'button-row' },
      h('button', { type: 'submit', class: 'button button--primary' }, product ? 'Save product' : 'Create product'),
      product ? h('button', { type: 'button', class: 'button button--danger', onclick: (event) => remove(event.currentTarget) }, 'Delete product') : null,
    ),
  );

  const drawer = openDrawer(product ? `Edit ${product.sku}` : 'New product', form);

  fileInput.addEventListener('change', async () => {
    const file = fileInput.files?.[0];
    clearErrors(form);
    if (!file) return;
    if (!IMAGE_TYPES.includes(file.type)) {
      showError(form, { field: 'image_file', message: `${file.name} is ${file.type || 'of an unknown type'}; choose a JPEG, PNG or WebP image.` });
      return;
    }
    if (file.size > MAX_IMAGE_BYTES) {
      showError(form, { field: 'image_file', message: `${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the maximum is 5 MB.` });
      return;
    }
    uploadStatus.textContent = `Uploading ${file.name}…`;
    try {
      const url = await uploadImage(file);
      imageUrl.value = url;
      preview.src = safeUrl(url) ?? '';
      preview.hidden = !safeUrl(url);
      if (product) {
        store.upsertProduct(await managerApi.updateProduct(slug, product.id, { image_url: url }));
        uploadStatus.textContent = 'Image uploaded and saved.';
      } else {
        uploadStatus.textContent = 'Image uploaded; it is saved with the new product.';
      }
    } catch (error) {
      uploadStatus.textContent = '';
      showError(form, { field: 'image_file', message: error.message });
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const fields = readFields(form, tiersBody, currency);
    if (fields instanceof Error) {
      showError(form, fields);
      return;
    }
    const current = product ? store.products.get(product.id) ?? product : null;
    let body = fields;
    if (current) {
      body = changedFields(current, fields);
      if ('stock' in body) {
        body.stock_delta = body.stock - product.stock;
        delete body.stock;
      }
      if (Object.keys(body).length === 0) {
        drawer.close();
        return;
      }
      body.version = current.version;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const saved = product
        ? await managerApi.updateProduct(slug, product.id, body)
        : await managerApi.createProduct(slug, body);
      store.upsertProduct(saved);
      drawer.close();
    } catch (error) {
      button.disabled = false;
      if (error.code === 'version_conflict') {
        showError(form, { message: `${error.message} Someone changed this product meanwhile: close the form and open it again to see the current values.` });
      } else {
        showError(form, error);
      }
    }
  });

  async function remove(button) {
    if (button.dataset.confirm !== 'yes') {
      button.dataset.confirm = 'yes';
      button.textContent = 'Tap again to delete';
      return;
    }
    button.disabled = true;
    clearErrors(form);
    try {
      await managerApi.deleteProduct(slug, product.id);
      store.removeProduct(product.id);
      drawer.close();
    } catch (error) {
      button.disabled = false;
      showError(form, error);
    }
  }
}

/** Reads the form into API fields, or returns an Error with `field` for the first invalid one. */
function readFields(form, tiersBody, currency) {
  const data = new FormData(form);
  const invalid = (fieldName, message) => Object.assign(new Error(message), { field: fieldName });
  const text = (name) => String(data.get(name) ?? '').trim();

  const fields = {
    sku: text('sku'),
    name: text('name'),
    description: text('description'),
    image_url: text('image_url'),
    visible: data.get('visible') === 'on',
  };
  if (!fields.sku) return invalid('sku', 'Enter a SKU.');
  if (!fields.name) return invalid('name', 'Enter a name.');
  const price = parseAmount(text('price_cents'), currency);
  if (price === null || Number.isNaN(price)) return invalid('price_cents', 'Enter a price such as 29.90.');
  fields.price_cents = price;

  for (const name of ['stock', 'min_quantity', 'step', 'max_quantity', 'low_stock_threshold']) {
    const value = parseCount(text(name));
    if (Number.isNaN(value)) return invalid(name, 'Enter a whole number, 0 or more.');
    fields[name] = value;
  }
  if (fields.stock === null) return invalid('stock', 'Enter the stock, 0 or more.');
  // The server stores a threshold for every product (0 when none is given) and rejects null.
  if (fields.low_stock_threshold === null) fields.low_stock_threshold = 0;
  if (!fields.min_quantity) return invalid('min_quantity', 'Enter a minimum quantity of 1 or more.');
  if (!fields.step) return invalid('step', 'Enter a step of 1 or more.');
  if (fields.max_quantity !== null && fields.max_quantity < fields.min_quantity) {
    return invalid('max_quantity', 'The maximum must be at least the minimum quantity.');
  }

  const tiers = [];
  for (const [index, row] of [...tiersBody.querySelectorAll('tr')].entries()) {
    const minimum = parseCount(row.querySelector('[name=tier_min]').value);
    const tierPrice = parseAmount(row.querySelector('[name=tier_price]').value, currency);
    if (minimum === null && tierPrice === null) continue;
    if (!minimum) return invalid('tiers', `Tier ${index + 1}: enter a minimum quantity of 1 or more.`);
    if (tierPrice === null || Number.isNaN(tierPrice)) return invalid('tiers', `Tier ${index + 1}: enter a unit price such as 25.90.`);
    tiers.push({ min_quantity: minimum, price_cents: tierPrice });
  }
  tiers.sort((a, b) => a.min_quantity - b.min_quantity);
  fields.tiers = tiers;
  return fields;
}

function changedFields(current, fields) {
  const changes = {};
  for (const [name, value] of Object.entries(fields)) {
    const before = current[name] ?? null;
    const same = name === 'tiers' ? JSON.stringify(before ?? []) === JSON.stringify(value) : before === value;
    if (!same) changes[name] = value;
  }
  return changes;
}

/**
 * Uploads `file` to the storage URL that `POST /uploads` returns and resolves with the
 * image URL to save on the product. A POST target takes a multipart form with the
 * returned fields first and the file last; a PUT target takes the raw file.
 */
async function uploadImage(file) {
  const target = await managerApi.createUpload(file);
  const init = { method: target.method };
  if (target.method === 'POST') {
    const form = new FormData();
    for (const [name, value] of Object.entries(target.fields ?? {})) {
      form.append(name, value);
    }
    form.append('file', file);
    init.body = form;
  } else {
    init.headers = { ...(target.headers ?? {}) };
    init.body = file;
  }
  let response;
  try {
    response = await fetch(target.url, init);
  } catch {
    throw new ApiError({ status: 0, code: 'network_error', message: `Could not reach the image storage to upload ${file.name}.` });
  }
  if (!response.ok) {
    const detail = await response.text().catch(() => '');
    const serverMessage = /^\s*\{/.test(detail) ? (JSON.parse(detail)?.error?.message ?? '') : '';
    throw new ApiError({ status: response.status, code: 'upload_failed', message: `The image upload failed with HTTP ${response.status}. ${serverMessage}`.trim() });
  }
  return target.image_url;
}
