/**
 * One live's state for the panel screens: the live, its products (hidden ones too) and
 * the viewer counts, kept current from the `live:{slug}` and `managers:{slug}` topics.
 * Dispatches `change` events whose `detail.kind` is 'loaded', 'live', 'products',
 * 'viewers', 'banners' or 'error'.
 */

import { managerApi } from './api.js';
import { debounce } from './dom.js';
import { follow } from './realtime.js';

export class LiveStore extends EventTarget {
  constructor(slug, hub) {
    super();
    this.slug = slug;
    this.hub = hub;
    this.live = null;
    this.products = new Map();
    this.viewers = null;
    this.loadError = null;
    // product id -> {stock, threshold} from the latest `stock.low` event.
    this.lowStock = new Map();
    // `product.removed` means deleted or hidden, and hidden products stay in the
    // manager's catalog, so the catalog is refetched to tell which.
    this.refetchSoon = debounce(() => this.feed.reload(), 500);
    this.feed = follow(hub, [`live:${slug}`, `managers:${slug}`], {
      load: () => this.load(),
      apply: (event) => this.apply(event),
      onLoadError: (error) => {
        this.loadError = error;
        this.emit('error');
      },
    });
    this.ready = this.feed.ready;
  }

  async load() {
    const { live, products } = await managerApi.getLive(this.slug);
    this.loadError = null;
    this.live = live;
    this.products = new Map(products.map((product) => [product.id, product]));
    this.emit('loaded');
  }

  emit(kind, extra = {}) {
    this.dispatchEvent(new CustomEvent('change', { detail: { kind, ...extra } }));
  }

  /**
   * Products ordered as buyers see them: by position, then id. `positions` (product id
   * to position) replaces the stored position of the products it names.
   */
  sortedProducts(positions = new Map()) {
    const position = (product) => positions.get(product.id) ?? product.position;
    return [...this.products.values()].sort((a, b) => position(a) - position(b) || a.id - b.id);
  }

  /**
   * Stores `product` unless the store already has a newer version, keeping fields that
   * only the manager API returns (`low_stock_threshold`) when the update lacks them.
   */
  upsertProduct(product) {
    const known = this.products.get(product.id);
    if (known && typeof known.version === 'number' && product.version < known.version) {
      return false;
    }
    this.products.set(product.id, { ...known, ...product });
    this.emit('products', { productId: product.id });
    return true;
  }

  removeProduct(id) {
    if (this.products.delete(id)) {
      this.emit('products', { productId: id });
    }
  }

  setLive(live) {
    this.live = { ...this.live, ...live };
    this.emit('live');
  }

  apply(event) {
    const data = event.data ?? {};
    switch (event.type) {
      case 'product.created':
      case 'product.updated':
        this.upsertProduct(data);
        break;
      case 'product.removed': {
        const known = this.products.get(data.id);
        if (known && !known.visible) {
          break; // hidden by this manager already
        }
        this.refetchSoon();
        break;
      }
      case 'stock.changed':
      case 'stock.low': {
        const known = this.products.get(data.product_id);
        if (known && data.version > known.version) {
          this.products.set(known.id, { ...known, stock: data.stock, version: data.version });
          this.emit('products', { productId: known.id });
        }
        if (event.type === 'stock.low') {
          this.lowStock.set(data.product_id, { stock: data.stock, threshold: data.threshold });
          this.emit('stock.low', { productId: data.product_id, stock: data.stock, threshold: data.threshold });
        }
        break;
      }
      case 'live.updated':
        this.setLive(data);
        break;
      case 'viewers.changed':
        this.viewers = { now: data.viewers, peak: data.peak };
        this.emit('viewers');
        break;
      case 'banners.changed':
        this.emit('banners');
        break;
      case 'order.created':
      case 'order.updated':
      case 'order.counts':
        this.emit('orders', { event });
        break;
      default:
        break;
    }
  }

  close() {
    this.refetchSoon.cancel();
    this.feed.stop();
  }
}
