/**
 * Products of the live page, updated from the events of topic `live:{slug}`.
 *
 * Events can reach the page out of commit order. Each product and `stock.changed` event
 * carries the product row's `version`, which grows with every change of the row, so an
 * event whose version is not above the one the page stores is stale and is dropped.
 */
export class ProductCatalog {
  constructor() {
    /** Visible products by id. */
    this.products = new Map();
    // product id -> version of the last applied state. Kept after a removal, so that a
    // late event from before the removal is still recognised as stale.
    this._versions = new Map();
    // Ids removed by `product.removed` or hidden, and not shown again since.
    this._removed = new Set();
  }

  /**
   * Replaces the products with those of a `GET /api/v1/lives/{slug}` response. That
   * state is newer than every event the page received before it, so its versions
   * replace the stored ones.
   */
  load(products) {
    this.products = new Map(products.map((product) => [product.id, product]));
    for (const product of products) {
      this._removed.delete(product.id);
      this._recordVersion(product.id, product.version);
    }
    for (const id of this._versions.keys()) {
      if (!this.products.has(id)) {
        this._removed.add(id);
      }
    }
  }

  /**
   * Applies the product of a `product.created` (`created` true) or `product.updated`
   * event and returns whether the page's products changed.
   *
   * A product the page never stored is applied. After a removal only `product.created`
   * brings the product back, because the server announces a product shown again as
   * created, and `product.removed` carries no version to compare a late update with.
   */
  applyProduct(product, { created }) {
    if (this._removed.has(product.id) && !created) {
      // NOTE: when the update that follows a re-show overtakes the `product.created`,
      // the update is dropped here and the page shows the created state until the next
      // change of that product.
      return false;
    }
    if (!this._isNewer(product.id, product.version)) {
      return false;
    }
    this._recordVersion(product.id, product.version);
    if (product.visible === false) {
      this._removed.add(product.id);
      return this.products.delete(product.id);
    }
    this._removed.delete(product.id);
    this.products.set(product.id, product);
    return true;
  }

  /** Applies `product.removed`, which carries no version and is never stale. */
  remove(id) {
    this._removed.add(id);
    return this.products.delete(id);
  }

  /**
   * Applies `stock.changed` data `{product_id, stock, version}` to a product on the page
   * and returns whether it changed. Stock of a product the page does not show is dropped.
   */
  applyStock({ product_id: productId, stock, version }) {
    const product = this.products.get(productId);
    if (!product || !this._isNewer(productId, version)) {
      return false;
    }
    this._recordVersion(productId, version);
    this.products.set(productId, { ...product, stock, version: version ?? product.version });
    return true;
  }

  _isNewer(id, version) {
    // An event without a version, from a server that predates the field, is applied
    // in arrival order.
    if (typeof version !== 'number') {
      return true;
    }
    const stored = this._versions.get(id);
    return stored === undefined || version > stored;
  }

  _recordVersion(id, version) {
    if (typeof version === 'number') {
      this._versions.set(id, version);
    }
  }
}
