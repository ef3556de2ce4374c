-- The built-in shop's write model (src/db/schema.rs) on SQLite, with its table and column
-- names: INTEGER PRIMARY KEY is the rowid, which numbers new orders, reviews and price
-- changes by itself. Times are µs since the epoch, money integer cents, as the shop's.
CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    category_id BIGINT NOT NULL REFERENCES categories (id),
    name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    stock BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX products_category ON products (category_id, price_cents);
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, segment BIGINT NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, placed_at);
CREATE INDEX orders_placed ON orders (placed_at);
CREATE TABLE order_items (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    qty BIGINT NOT NULL,
    unit_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX order_items_product ON order_items (product_id);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    rating BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    created_at BIGINT NOT NULL
);
CREATE INDEX reviews_product ON reviews (product_id);
CREATE TABLE price_history (
    id INTEGER PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products (id),
    old_cents BIGINT NOT NULL,
    new_cents BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX price_history_product ON price_history (product_id, id);
