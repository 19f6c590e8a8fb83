/** Small DOM helpers shared by the storefront and order pages. */

/**
 * Creates an element. `props` keys set attributes, except `class` (className),
 * `dataset` (data-* attributes) and `on<event>` (listeners). Null, undefined and false
 * props and children are skipped. Children are nodes or strings, and strings become
 * text nodes, so server data is never parsed as HTML.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      node.className = value;
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key.startsWith('on')) {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
  return node;
}

/**
 * Returns `value` when it is an http(s) URL or a same-origin path, otherwise null.
 * Guards iframe and image sources against `javascript:` and `data:` URLs.
 */
export function safeUrl(value) {
  if (typeof value !== 'string' || value.trim() === '') {
    return null;
  }
  try {
    const url = new URL(value, globalThis.location?.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Shows `message` in `element`, or hides the element when `message` is empty. */
export function setMessage(element, message) {
  element.textContent = message || '';
  element.hidden = !message;
}
