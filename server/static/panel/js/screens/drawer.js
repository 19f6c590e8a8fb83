/** A side drawer over the screen, closed by its button, Escape or the backdrop. */

import { h } from '../dom.js';

export function openDrawer(title, content, { onClose = () => {} } = {}) {
  document.querySelector('.drawer-backdrop')?.remove();
  const previousFocus = document.activeElement;
  const close = () => {
    backdrop.remove();
    document.removeEventListener('keydown', onKey);
    previousFocus?.focus?.();
    onClose();
  };
  const onKey = (event) => {
    if (event.key === 'Escape') close();
  };
  const body = h('div', { class: 'drawer__body' }, content);
  const heading = h('h2', { class: 'drawer__title', tabindex: '-1' }, title);
  const panel = h('aside', { class: 'drawer', role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
    h('header', { class: 'drawer__header' },
      heading,
      h('button', { type: 'button', class: 'button button--ghost', onclick: close, 'aria-label': 'Close' }, 'Close'),
    ),
    body,
  );
  const backdrop = h('div', { class: 'drawer-backdrop', onclick: (event) => event.target === backdrop && close() }, panel);
  document.body.append(backdrop);
  document.addEventListener('keydown', onKey);
  heading.focus();
  return {
    close,
    body,
    setTitle: (text) => {
      heading.textContent = text;
    },
  };
}
