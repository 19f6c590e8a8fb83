/** DOM helpers for the manager panel: element builder, form errors, toasts, dates. */

/**
 * Creates an element. `props` keys set attributes, except `class` (className),
 * `dataset` (data-* attributes), `value`/`checked` (properties) and `on<event>`
 * (listeners). Null, undefined and false props and children are skipped. Strings become
 * text nodes, so server data is never parsed as HTML.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      node.className = value;
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key === 'value' || key === 'checked') {
      node[key] = value;
    } else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  appendChildren(node, children);
  return node;
}

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
}

/** Replaces the children of `node` with `children`. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  appendChildren(node, children);
}

/**
 * Returns `value` when it is an http(s) URL or a same-origin path, otherwise null, so
 * `javascript:` and `data:` URLs never reach an `src` or `href`.
 */
export function safeUrl(value) {
  if (typeof value !== 'string' || value.trim() === '') {
    return null;
  }
  try {
    const url = new URL(value, globalThis.location.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Removes every error message that `showError` put into `container`. */
export function clearErrors(container) {
  for (const node of container.querySelectorAll('.field-error, .form-error')) {
    node.textContent = '';
    node.hidden = true;
  }
  for (const node of container.querySelectorAll('[aria-invalid]')) {
    node.removeAttribute('aria-invalid');
  }
}

/**
 * Shows an ApiError in `container`: next to the control named by `error.field` when
 * there is one (the `.field-error` after an input with that `name`, or a
 * `[data-error-for=field]` element), otherwise in the container's `.form-error`.
 * Field names such as `tiers[1].price_cents` also match a control named `tiers`.
 */
export function showError(container, error) {
  const message = error?.message || String(error);
  const field = error?.field ?? null;
  const slot = field ? findFieldSlot(container, field) : null;
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
    slot.previousElementSibling?.setAttribute?.('aria-invalid', 'true');
    return;
  }
  let formError = container.querySelector('.form-error');
  if (!formError) {
    formError = h('p', { class: 'form-error', role: 'alert' });
    container.prepend(formError);
  }
  formError.textContent = field ? `${field}: ${message}` : message;
  formError.hidden = false;
}

function findFieldSlot(container, field) {
  const candidates = [field, field.replace(/\[\d+\].*$/, ''), field.split('.')[0]];
  for (const name of candidates) {
    const slot = container.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) {
      return slot;
    }
    const control = container.querySelector(`[name="${CSS.escape(name)}"]`);
    const next = control?.closest('.field')?.querySelector('.field-error');
    if (next) {
      return next;
    }
  }
  return null;
}

/**
 * A labelled form control with an error slot under it. `control` is the input,
 * select or textarea element; its `name` is the API field that errors refer to.
 */
export function field(label, control, hint = null) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { class: 'hint' }, hint) : null,
    h('p', { class: 'field-error', role: 'alert', hidden: true }),
  );
}

/**
 * Shows a short notification at the bottom of the screen for `timeoutMs`.
 * `action` is an optional `{label, run}` button.
 */
export function toast(message, { kind = 'info', action = null, timeoutMs = 6000 } = {}) {
  let region = document.getElementById('toasts');
  if (!region) {
    region = h('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const item = h('div', { class: `toast toast--${kind}`, role: kind === 'error' ? 'alert' : 'status' });
  const dismiss = () => item.remove();
  item.append(h('span', { class: 'toast__text' }, message));
  if (action) {
    item.append(h('button', { type: 'button', class: 'button button--small', onclick: () => { dismiss(); action.run(); } }, action.label));
  }
  item.append(h('button', { type: 'button', class: 'toast__close', 'aria-label': 'Dismiss', onclick: dismiss }, '×'));
  region.append(item);
  setTimeout(dismiss, timeoutMs);
  return item;
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** Formats an ISO 8601 timestamp as a local date and time, or '' for null. */
export function formatDateTime(iso) {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : dateTimeFormat.format(date);
}

/** Formats an ISO 8601 timestamp as a local hour and minute. */
export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : timeFormat.format(date);
}

/** Converts an ISO 8601 timestamp to the local `YYYY-MM-DDTHH:MM` of a datetime-local input. */
export function toLocalInputValue(iso) {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

/** Converts a datetime-local input value (local time) to ISO 8601 UTC, or null when empty. */
export function fromLocalInputValue(value) {
  if (!value) {
    return null;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** Formats a duration in milliseconds as `H:MM:SS` or `M:SS`. */
export function formatCountdown(milliseconds) {
  const total = Math.max(0, Math.ceil(milliseconds / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** Returns a function that runs `callback` once `delayMs` after its last call. */
export function debounce(callback, delayMs) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => callback(...args), delayMs);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** Saves `blob` as a download named `filename`. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
