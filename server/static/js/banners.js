/** Banner strip of the live page: the banners shown now, from the live response and `banners.changed`. */

import { el, safeUrl } from './dom.js';

/**
 * Replaces the banners in `strip` with `banners` (`{id, text, image_url, link_url, ...}`)
 * and hides the strip when none is left. Text is inserted as text, and an image or link
 * whose URL is neither http(s) nor same-origin is left out.
 */
export function renderBanners(strip, banners) {
  const items = (Array.isArray(banners) ? banners : [])
    .filter((banner) => banner && typeof banner === 'object')
    .map(renderBanner)
    .filter((item) => item !== null);
  strip.querySelector('ul').replaceChildren(...items);
  strip.hidden = items.length === 0;
}

function renderBanner(banner) {
  const text = typeof banner.text === 'string' ? banner.text.trim() : '';
  const imageUrl = safeUrl(banner.image_url);
  if (!text && !imageUrl) {
    return null;
  }
  const content = [
    imageUrl
      ? el('img', {
          class: 'banner__image',
          src: imageUrl,
          alt: '',
          decoding: 'async',
          // A broken image would leave an empty box in the strip.
          onerror: (event) => event.target.remove(),
        })
      : null,
    text ? el('span', { class: 'banner__text' }, text) : null,
  ];
  const linkUrl = safeUrl(banner.link_url);
  return el(
    'li',
    { class: 'banner', dataset: { bannerId: banner.id } },
    linkUrl
      ? el(
          'a',
          { class: 'banner__link', href: linkUrl, target: '_blank', rel: 'noopener' },
          content,
          el('span', { class: 'visually-hidden' }, ' (opens in a new tab)'),
        )
      : content,
  );
}
