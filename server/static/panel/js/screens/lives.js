/** The lives list, a form to create a live, and a box to open one by its slug. */

import { managerApi } from '../api.js';
import { clearErrors, field, formatDateTime, h, replaceChildren, showError } from '../dom.js';

const SLUG_PATTERN = '[a-z0-9][a-z0-9\\-]{0,62}';

export function mountLives(container, { navigate }) {
  let disposed = false;
  const list = h('section', { class: 'card' }, h('h2', {}, 'Lives'), h('p', { class: 'muted' }, 'Loading…'));

  const openLive = (slug) => navigate(`#/lives/${encodeURIComponent(slug)}`);

  const renderList = (lives) => {
    if (lives.length === 0) {
      replaceChildren(list, h('h2', {}, 'Lives'), h('p', { class: 'muted' }, 'No lives yet. Create the first one below.'));
      return;
    }
    replaceChildren(
      list,
      h('h2', {}, 'Lives'),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Title'), h('th', {}, 'Slug'), h('th', {}, 'Status'), h('th', {}, 'Currency'), h('th', {}, 'Starts'), h('th', {}, ''))),
          h('tbody', {}, lives.map((live) =>
            h('tr', { class: 'row-link', onclick: () => openLive(live.slug) },
              h('td', {}, h('a', { href: `#/lives/${encodeURIComponent(live.slug)}` }, live.title)),
              h('td', {}, h('code', {}, live.slug)),
              h('td', {}, h('span', { class: `badge badge--${live.status}` }, live.status)),
              h('td', {}, live.currency),
              h('td', {}, formatDateTime(live.starts_at)),
              h('td', { class: 'actions' },
                h('a', { class: 'button button--small', href: `#/lives/${encodeURIComponent(live.slug)}/orders`, onclick: (event) => event.stopPropagation() }, 'Orders'),
              ),
            ))),
        ),
      ),
    );
  };

  managerApi.listLives().then(
    (payload) => !disposed && renderList(payload.lives ?? []),
    (error) => {
      if (disposed) {
        return;
      }
      replaceChildren(list, h('h2', {}, 'Lives'), h('p', { class: 'form-error', role: 'alert' }, `Could not load the lives: ${error.message}`));
    },
  );

  replaceChildren(container, h('div', { class: 'stack' }, list, h('div', { class: 'grid-2' }, createForm(openLive), openForm(openLive))));
  return () => {
    disposed = true;
  };
}

function createForm(openLive) {
  const currency = h('input', { name: 'currency', value: 'BRL', maxlength: 3, autocapitalize: 'characters', pattern: '[A-Z]{3}' });
  const form = h(
    'form',
    { class: 'card', novalidate: true },
    h('h2', {}, 'New live'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    field('Title', h('input', { name: 'title', required: true, maxlength: 200 })),
    field('Slug', h('input', { name: 'slug', required: true, pattern: SLUG_PATTERN, autocapitalize: 'off' }), 'Lowercase letters, digits and dashes; part of the buyers’ link /live/{slug}.'),
    field('Video URL', h('input', { name: 'video_url', type: 'url', placeholder: 'https://www.youtube.com/embed/…' })),
    field('Currency', currency, 'ISO 4217 code, e.g. BRL.'),
    h('button', { type: 'submit', class: 'button button--primary' }, 'Create live'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const fields = { slug: data.get('slug').trim(), title: data.get('title').trim() };
    if (!fields.title) {
      showError(form, { field: 'title', message: 'Enter a title.' });
      return;
    }
    if (!new RegExp(`^${SLUG_PATTERN}$`).test(fields.slug)) {
      showError(form, { field: 'slug', message: 'Use 1 to 63 lowercase letters, digits or dashes, starting with a letter or digit.' });
      return;
    }
    if (data.get('video_url').trim()) {
      fields.video_url = data.get('video_url').trim();
    }
    if (data.get('currency').trim()) {
      fields.currency = data.get('currency').trim().toUpperCase();
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const live = await managerApi.createLive(fields);
      openLive(live.slug);
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function openForm(openLive) {
  const slug = h('input', { name: 'open_slug', required: true, pattern: SLUG_PATTERN, autocapitalize: 'off' });
  const form = h(
    'form',
    { class: 'card', novalidate: true },
    h('h2', {}, 'Open a live by slug'),
    field('Slug', slug),
    h('button', { type: 'submit', class: 'button' }, 'Open'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    const value = slug.value.trim();
    if (!new RegExp(`^${SLUG_PATTERN}$`).test(value)) {
      showError(form, { field: 'open_slug', message: 'Enter a live’s slug, e.g. summer-24.' });
      return;
    }
    openLive(value);
  });
  return form;
}
