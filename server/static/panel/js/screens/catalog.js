/**
 * Catalog: a table with inline edits of price, stock and visibility, drag to reorder,
 * a product form (tiers, quantity rules, image upload), and CSV import and export.
 */

import { managerApi } from '../api.js';
import { clearErrors, h, replaceChildren, safeUrl, saveBlob, showError, toast } from '../dom.js';
import { centsToInput, formatCents, parseAmount, parseCount } from '../format.js';
import { openProductEditor } from './product-editor.js';

export function mountCatalog(container, { slug, store }) {
  const csvResult = h('div', { class: 'csv-result', hidden: true });
  const tbody = h('tbody');
  const fileInput = h('input', { type: 'file', accept: '.csv,text/csv', hidden: true });
  const toolbar = h('div', { class: 'toolbar' },
    h('h2', {}, 'Catalog'),
    h('div', { class: 'button-row' },
      h('button', { type: 'button', class: 'button button--primary', onclick: () => openProductEditor({ slug, store, product: null }) }, 'Add product'),
      h('button', { type: 'button', class: 'button', onclick: () => fileInput.click() }, 'Import CSV'),
      h('button', { type: 'button', class: 'button', onclick: (event) => exportCsv(event.currentTarget) }, 'Export CSV'),
      fileInput,
    ),
  );
  const table = h('div', { class: 'table-wrap' },
    h('table', { class: 'table catalog' },
      h('thead', {}, h('tr', {},
        h('th', { class: 'col-handle' }, h('span', { class: 'visually-hidden' }, 'Order')),
        h('th', {}, 'Product'),
        h('th', { class: 'col-number' }, 'Price'),
        h('th', { class: 'col-number' }, 'Stock'),
        h('th', {}, 'Visible'),
        h('th', {}, ''),
      )),
      tbody,
    ),
  );
  const emptyNote = h('p', { class: 'muted' });
  replaceChildren(container, h('section', { class: 'card' }, toolbar, csvResult, table, emptyNote));

  const rows = new Map();

  // Positions the manager set that the server has not confirmed yet, by product id.
  // The table sorts by them, so a response or event for an earlier move does not put a
  // row back while later moves are still being saved.
  const pendingPositions = new Map();
  // The position last sent per product. One the server confirmed and someone else then
  // changed is not sent again, so two managers moving rows cannot loop forever.
  const sentPositions = new Map();
  let savingPositions = false;
  // While a row is dragged the table keeps the order under the pointer, so an event
  // that arrives meanwhile does not undo the drag.
  let dragging = false;

  const render = () => {
    if (store.loadError && !store.live) {
      emptyNote.textContent = `Could not load the catalog: ${store.loadError.message}`;
      return;
    }
    if (!store.live) {
      emptyNote.textContent = 'Loading…';
      return;
    }
    const products = store.sortedProducts(pendingPositions);
    emptyNote.textContent = products.length === 0 ? 'No products yet. Add one or import a CSV file.' : '';
    const focused = tbody.contains(document.activeElement) ? document.activeElement : null;
    const seen = new Set();
    for (const [index, product] of products.entries()) {
      seen.add(product.id);
      let row = rows.get(product.id);
      if (!row) {
        row = h('tr', { dataset: { id: String(product.id) } });
        rows.set(product.id, row);
      }
      // A row being edited keeps its inputs; it catches up when the edit ends.
      if (!row.contains(document.activeElement)) {
        fillRow(row, product);
      } else {
        row.dataset.stale = 'yes';
      }
      if (dragging) {
        if (!row.parentElement) tbody.append(row);
      } else if (tbody.children[index] !== row) {
        tbody.insertBefore(row, tbody.children[index] ?? null);
      }
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    // Moving a row takes the focus off the element in it, such as its drag handle.
    if (focused?.isConnected && document.activeElement !== focused) {
      focused.focus();
    }
  };

  const fillRow = (row, product) => {
    row.dataset.stale = '';
    const currency = store.live.currency;
    const image = safeUrl(product.image_url);
    const low = product.low_stock_threshold != null && product.stock <= product.low_stock_threshold;

    const price = h('input', { class: 'inline-input', name: 'price_cents', inputmode: 'decimal', value: centsToInput(product.price_cents, currency), 'aria-label': `Price of ${product.sku}` });
    const stock = h('input', { class: 'inline-input', name: 'stock', inputmode: 'numeric', value: String(product.stock), 'aria-label': `Stock of ${product.sku}` });
    const visible = h('input', { type: 'checkbox', name: 'visible', checked: product.visible, 'aria-label': `${product.sku} visible to buyers` });
    const errorSlot = h('p', { class: 'form-error', role: 'alert', hidden: true });

    // The stock shown when the edit began; the change is sent as a delta from it, so a
    // sale made meanwhile is not overwritten.
    let stockBaseline = product.stock;
    // The last price sent. Enter and the change event that follows it (on blur, or when
    // save() disables the focused input) must send an edit only once.
    let priceBaseline = product.price_cents;
    stock.addEventListener('focus', () => {
      stockBaseline = store.products.get(product.id)?.stock ?? product.stock;
    });

    /** Sends `fields` and resolves true when the server saved them, false on an error. */
    const save = async (fields, input) => {
      clearErrors(row);
      input.disabled = true;
      try {
        store.upsertProduct(await managerApi.updateProduct(slug, product.id, fields));
        input.classList.add('saved');
        setTimeout(() => input.classList.remove('saved'), 1200);
        return true;
      } catch (error) {
        showError(row, error);
        if (error.code === 'version_conflict') {
          showError(row, { message: `${error.message} The row now shows the current values; edit again if needed.` });
          store.feed.reload();
        }
        return false;
      } finally {
        input.disabled = false;
      }
    };

    const commitPrice = () => {
      const cents = parseAmount(price.value, currency);
      if (cents === priceBaseline) return;
      if (cents === null || Number.isNaN(cents)) {
        showError(row, { field: 'price_cents', message: 'Enter a price such as 29.90.' });
        return;
      }
      const previous = priceBaseline;
      priceBaseline = cents;
      save({ price_cents: cents, version: product.version }, price).then((saved) => {
        if (!saved) priceBaseline = previous;
      });
    };
    const commitStock = () => {
      const value = parseCount(stock.value);
      if (value === stockBaseline) return;
      if (value === null || Number.isNaN(value)) {
        showError(row, { field: 'stock', message: 'Enter a whole number of units, 0 or more.' });
        return;
      }
      // Moved before the request, so a second commit of the same value sends nothing.
      const previous = stockBaseline;
      stockBaseline = value;
      save({ stock_delta: value - previous }, stock).then((saved) => {
        if (!saved) stockBaseline = previous;
      });
    };
    const onKey = (commit, input) => (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        commit();
      } else if (event.key === 'Escape') {
        input.blur();
        fillRow(row, store.products.get(product.id) ?? product);
      }
    };
    price.addEventListener('change', commitPrice);
    price.addEventListener('keydown', onKey(commitPrice, price));
    stock.addEventListener('change', commitStock);
    stock.addEventListener('keydown', onKey(commitStock, stock));
    visible.addEventListener('change', () => save({ visible: visible.checked, version: product.version }, visible));
    row.addEventListener('focusout', () => {
      setTimeout(() => {
        if (row.dataset.stale === 'yes' && !row.contains(document.activeElement)) {
          fillRow(row, store.products.get(product.id) ?? product);
        }
      });
    });

    const handle = h('button', {
      type: 'button',
      class: 'drag-handle',
      'aria-label': `Move ${product.sku}: drag, or use the arrow keys`,
    }, '⠿');
    enableDrag(handle, row);

    row.classList.toggle('is-hidden', !product.visible);
    replaceChildren(
      row,
      h('td', { class: 'col-handle' }, handle),
      h('td', {},
        h('div', { class: 'product-cell' },
          image ? h('img', { src: image, alt: '', class: 'thumb', loading: 'lazy' }) : h('span', { class: 'thumb thumb--empty' }),
          h('div', {},
            h('strong', {}, product.name),
            h('div', { class: 'muted small' }, product.sku,
              ` · min ${product.min_quantity}, step ${product.step}${product.max_quantity ? `, max ${product.max_quantity}` : ''}`,
              product.tiers?.length ? ` · ${product.tiers.length} tier${product.tiers.length > 1 ? 's' : ''}` : '',
            ),
            product.flash_price_cents != null && product.flash_ends_at && new Date(product.flash_ends_at) > Date.now()
              ? h('div', { class: 'small flash-note' }, `Flash ${formatCents(product.flash_price_cents, currency)}`)
              : null,
            errorSlot,
          ),
        ),
      ),
      h('td', { class: 'col-number' }, h('div', { class: 'field field--inline' }, price, h('p', { class: 'field-error', role: 'alert', hidden: true }))),
      h('td', { class: 'col-number' },
        h('div', { class: 'field field--inline' }, stock, h('p', { class: 'field-error', role: 'alert', hidden: true })),
        low ? h('span', { class: 'badge badge--warning' }, 'low') : null,
      ),
      h('td', {}, h('div', { class: 'field field--inline' }, h('label', { class: 'check check--bare' }, visible), h('p', { class: 'field-error', role: 'alert', hidden: true }))),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'button button--small', onclick: () => openProductEditor({ slug, store, product: store.products.get(product.id) ?? product }) }, 'Edit'),
      ),
    );
  };

  // Reordering: a pointer drag on the handle (mouse, pen or touch) or arrow keys on it.
  const enableDrag = (handle, row) => {
    handle.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      const pointerId = event.pointerId;
      const before = [...tbody.children];
      const startPositions = new Map([...store.products.values()].map((product) => [product.id, product.position]));
      dragging = true;
      row.classList.add('dragging');
      // The listeners sit on the document, because moving the row detaches the handle
      // for a moment and the browser then releases its pointer capture.
      const onMove = (moveEvent) => {
        if (moveEvent.pointerId !== pointerId) return;
        const target = document.elementFromPoint(moveEvent.clientX, moveEvent.clientY)?.closest('tr');
        if (!target || target === row || target.parentElement !== tbody) return;
        const box = target.getBoundingClientRect();
        if (moveEvent.clientY < box.top + box.height / 2) target.before(row);
        else target.after(row);
      };
      const onUp = (upEvent) => {
        if (upEvent.pointerId !== pointerId) return;
        document.removeEventListener('pointermove', onMove);
        document.removeEventListener('pointerup', onUp);
        document.removeEventListener('pointercancel', onUp);
        row.classList.remove('dragging');
        dragging = false;
        if ([...tbody.children].some((node, index) => node !== before[index])) {
          placeAmongUnchanged(row, startPositions);
          savePositions();
        } else {
          render();
        }
      };
      document.addEventListener('pointermove', onMove);
      document.addEventListener('pointerup', onUp);
      document.addEventListener('pointercancel', onUp);
    });
    handle.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowUp' && row.previousElementSibling) {
        event.preventDefault();
        row.previousElementSibling.before(row);
      } else if (event.key === 'ArrowDown' && row.nextElementSibling) {
        event.preventDefault();
        row.nextElementSibling.after(row);
      } else {
        return;
      }
      handle.focus();
      savePositions();
    });
  };

  // The table kept its order during the drag, so changes made elsewhere meanwhile are
  // not in it. The rows go back to the current order. The dropped row goes after the
  // nearest row above it whose position did not change during the drag, or before the
  // nearest such row below it, which is where the manager saw it land.
  const placeAmongUnchanged = (row, startPositions) => {
    const unchanged = (node) => {
      const id = Number(node.dataset.id);
      return store.products.has(id) && store.products.get(id).position === startPositions.get(id);
    };
    const droppedId = Number(row.dataset.id);
    const ids = store.sortedProducts(pendingPositions)
      .map((product) => product.id)
      .filter((id) => id !== droppedId);
    let index = ids.length;
    let above = row.previousElementSibling;
    while (above && !unchanged(above)) above = above.previousElementSibling;
    let below = row.nextElementSibling;
    while (below && !unchanged(below)) below = below.nextElementSibling;
    if (above) {
      index = ids.indexOf(Number(above.dataset.id)) + 1;
    } else if (below) {
      index = ids.indexOf(Number(below.dataset.id));
    }
    ids.splice(index, 0, droppedId);
    for (const id of ids) {
      const other = rows.get(id);
      if (other) tbody.append(other);
    }
  };

  // Moves are saved one request at a time, so two quick moves cannot reach the server
  // swapped. The requests carry no `version`, so a sale in the meantime does not fail
  // the move.
  const savePositions = async () => {
    const order = [...tbody.children]
      .map((row) => Number(row.dataset.id))
      .filter((id) => store.products.has(id));
    // The rows take the positions they already have, in the new order, so a move
    // rewrites only the rows it passes. Positions shared by two rows become 0..n-1.
    const positions = order
      .map((id) => pendingPositions.get(id) ?? store.products.get(id).position)
      .sort((a, b) => a - b);
    const distinct = positions.every((position, index) => index === 0 || position > positions[index - 1]);
    order.forEach((id, index) => {
      const position = distinct ? positions[index] : index;
      if (pendingPositions.get(id) !== position) sentPositions.delete(id);
      pendingPositions.set(id, position);
    });
    if (savingPositions) return;
    savingPositions = true;
    try {
      for (;;) {
        const change = [...pendingPositions].find(([id, position]) =>
          store.products.has(id)
          && store.products.get(id).position !== position
          && sentPositions.get(id) !== position);
        if (!change) break;
        const [id, position] = change;
        sentPositions.set(id, position);
        try {
          store.upsertProduct(await savePosition(id, position));
        } catch (error) {
          // A product deleted meanwhile is skipped, and the other rows' moves are saved.
          if (error.status !== 404) throw error;
          pendingPositions.delete(id);
        }
      }
    } catch (error) {
      toast(`Could not save the new order: ${error.message}`, { kind: 'error' });
      store.feed.reload();
    } finally {
      pendingPositions.clear();
      sentPositions.clear();
      savingPositions = false;
      render();
    }
  };

  // A lost connection or a server error is retried a few times, so a short outage
  // does not leave the order half saved.
  const savePosition = async (id, position) => {
    for (const delayMs of [500, 1000, 2000]) {
      try {
        return await managerApi.updateProduct(slug, id, { position });
      } catch (error) {
        if (error.status !== 0 && error.status < 500) throw error;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
    return managerApi.updateProduct(slug, id, { position });
  };

  const exportCsv = async (button) => {
    button.disabled = true;
    try {
      saveBlob(await managerApi.exportProducts(slug), `${slug}-products.csv`);
    } catch (error) {
      toast(`Could not export the catalog: ${error.message}`, { kind: 'error' });
    } finally {
      button.disabled = false;
    }
  };

  fileInput.addEventListener('change', async () => {
    const file = fileInput.files?.[0];
    fileInput.value = '';
    if (!file) return;
    csvResult.hidden = false;
    replaceChildren(csvResult, h('p', { class: 'muted' }, `Importing ${file.name}…`));
    try {
      const result = await managerApi.importProducts(slug, file);
      replaceChildren(csvResult,
        h('p', { class: 'notice notice--success', role: 'status' }, `Imported ${file.name}: ${result.created} created, ${result.updated} updated.`));
      store.feed.reload();
    } catch (error) {
      replaceChildren(csvResult, csvErrors(file.name, error));
    }
  });

  const onChange = (event) => {
    if (['loaded', 'products', 'error'].includes(event.detail.kind)) render();
  };
  store.addEventListener('change', onChange);
  render();
  return () => store.removeEventListener('change', onChange);
}

function csvErrors(filename, error) {
  const lines = error.errors ?? [];
  return h('div', { class: 'notice notice--error', role: 'alert' },
    h('p', {}, h('strong', {}, `${filename} was not imported: ${error.message}`),
      lines.length ? ' Nothing was changed. Fix these lines and import the file again:' : ''),
    lines.length
      ? h('ul', { class: 'csv-errors' }, lines.map((line) =>
        h('li', {}, h('span', { class: 'csv-errors__line' }, `Line ${line.line ?? '?'}`), line.field ? h('code', {}, line.field) : null, ` ${line.message}`)))
      : null,
  );
}
