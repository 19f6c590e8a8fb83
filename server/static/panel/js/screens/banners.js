/**
 * Banners of a live: shown or hidden by hand (`visible`) or on a schedule
 * (`show_at`, `hide_at`). Refetched on each `banners.changed` event.
 */

import { managerApi } from '../api.js';
import {
  clearErrors,
  field,
  formatDateTime,
  fromLocalInputValue,
  h,
  replaceChildren,
  safeUrl,
  showError,
  toLocalInputValue,
} from '../dom.js';

export function mountBanners(section, { slug, store }) {
  let banners = [];
  let editingId = null;
  let disposed = false;

  const load = async () => {
    try {
      const payload = await managerApi.listBanners(slug);
      if (disposed) return;
      banners = payload.banners ?? [];
      render();
    } catch (error) {
      if (disposed) return;
      replaceChildren(section, h('h2', {}, 'Banners'), h('p', { class: 'form-error', role: 'alert' }, `Could not load the banners: ${error.message}`));
    }
  };

  const render = () => {
    if (section.contains(document.activeElement) && editingId !== null) {
      return; // keep the form being edited
    }
    replaceChildren(
      section,
      h('h2', {}, 'Banners'),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      banners.length === 0 ? h('p', { class: 'muted' }, 'No banners.') : h('ul', { class: 'banner-list' }, banners.map(renderBanner)),
      h('h3', {}, editingId === null ? 'New banner' : 'Edit banner'),
      bannerForm(banners.find((banner) => banner.id === editingId) ?? null),
    );
  };

  const renderBanner = (banner) => {
    const image = safeUrl(banner.image_url);
    const toggle = h('input', { type: 'checkbox', checked: banner.visible });
    toggle.addEventListener('change', async () => {
      toggle.disabled = true;
      clearErrors(section);
      try {
        replaceBanner(await managerApi.updateBanner(slug, banner.id, { visible: toggle.checked }));
      } catch (error) {
        toggle.checked = !toggle.checked;
        showError(section, error);
      } finally {
        toggle.disabled = false;
      }
    });
    return h('li', { class: 'banner' },
      image ? h('img', { src: image, alt: '', class: 'thumb', loading: 'lazy' }) : h('span', { class: 'thumb thumb--empty' }),
      h('div', { class: 'banner__text' },
        h('strong', {}, banner.text || '(no text)'),
        h('div', { class: 'muted' }, scheduleText(banner)),
        banner.link_url ? h('div', { class: 'muted small' }, banner.link_url) : null,
      ),
      h('label', { class: 'check' }, toggle, h('span', {}, 'Visible')),
      h('button', { type: 'button', class: 'button button--small', onclick: () => { editingId = banner.id; render(); } }, 'Edit'),
      h('button', { type: 'button', class: 'button button--small button--danger', onclick: (event) => removeBanner(banner, event.currentTarget) }, 'Delete'),
    );
  };

  const replaceBanner = (updated) => {
    const index = banners.findIndex((banner) => banner.id === updated.id);
    if (index >= 0) banners[index] = updated;
    else banners.push(updated);
    render();
  };

  const removeBanner = async (banner, button) => {
    if (button.dataset.confirm !== 'yes') {
      button.dataset.confirm = 'yes';
      button.textContent = 'Tap again to delete';
      return;
    }
    button.disabled = true;
    clearErrors(section);
    try {
      await managerApi.deleteBanner(slug, banner.id);
      banners = banners.filter((candidate) => candidate.id !== banner.id);
      if (editingId === banner.id) editingId = null;
      render();
    } catch (error) {
      button.disabled = false;
      showError(section, error);
    }
  };

  const bannerForm = (banner) => {
    const form = h(
      'form',
      { novalidate: true, class: 'banner-form' },
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      field('Text', h('input', { name: 'text', value: banner?.text ?? '', maxlength: 300 })),
      h('div', { class: 'grid-2 grid-2--tight' },
        field('Image URL', h('input', { name: 'image_url', type: 'url', value: banner?.image_url ?? '' })),
        field('Link URL', h('input', { name: 'link_url', type: 'url', value: banner?.link_url ?? '' })),
        field('Show at', h('input', { name: 'show_at', type: 'datetime-local', value: toLocalInputValue(banner?.show_at) }), 'Optional, your local time.'),
        field('Hide at', h('input', { name: 'hide_at', type: 'datetime-local', value: toLocalInputValue(banner?.hide_at) }), 'Optional, your local time.'),
      ),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'visible', checked: banner ? banner.visible : true }), h('span', {}, 'Visible')),
      h('div', { class: 'button-row' },
        h('button', { type: 'submit', class: 'button button--primary' }, banner ? 'Save banner' : 'Add banner'),
        banner ? h('button', { type: 'button', class: 'button button--ghost', onclick: () => { editingId = null; render(); } }, 'Cancel') : null,
      ),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      const data = new FormData(form);
      const fields = {
        text: data.get('text').trim(),
        // The server stores '' for no URL and rejects null.
        image_url: data.get('image_url').trim(),
        link_url: data.get('link_url').trim(),
        visible: data.get('visible') === 'on',
        show_at: fromLocalInputValue(data.get('show_at')),
        hide_at: fromLocalInputValue(data.get('hide_at')),
      };
      if (!fields.text) {
        showError(form, { field: 'text', message: 'Enter the banner text.' });
        return;
      }
      if (fields.show_at && fields.hide_at && fields.hide_at <= fields.show_at) {
        showError(form, { field: 'hide_at', message: 'The hide time must be after the show time.' });
        return;
      }
      try {
        const saved = banner
          ? await managerApi.updateBanner(slug, banner.id, fields)
          : await managerApi.createBanner(slug, fields);
        editingId = null;
        document.activeElement?.blur();
        replaceBanner(saved);
      } catch (error) {
        showError(form, error);
      }
    });
    return form;
  };

  const onChange = (event) => {
    if (event.detail.kind === 'banners') load();
  };
  store.addEventListener('change', onChange);
  replaceChildren(section, h('h2', {}, 'Banners'), h('p', { class: 'muted' }, 'Loading…'));
  load();
  return () => {
    disposed = true;
    store.removeEventListener('change', onChange);
  };
}

function scheduleText(banner) {
  const parts = [banner.visible ? 'Shown' : 'Hidden'];
  if (banner.show_at) parts.push(`from ${formatDateTime(banner.show_at)}`);
  if (banner.hide_at) parts.push(`until ${formatDateTime(banner.hide_at)}`);
  return parts.join(' ');
}
