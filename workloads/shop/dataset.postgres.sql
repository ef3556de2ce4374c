-- The shop's dataset from its sizes, as the built-in generator shapes it (src/dataset/):
-- products in categories round-robin, priced 199..=19999 cents with 100..=1000 in stock;
-- price changes, orders and reviews spread evenly over the `days` before the workload's
-- start (2026-01-01T00:00:00Z = 1767225600000000 µs); orders 10% placed, 20% paid, 60%
-- shipped, 10% cancelled; ratings mostly good. Values come from multiplicative hashes of
-- the row number instead of the built-in's random streams, and every order has one line
-- (the pack's place_order orders one product). Then the identities go on after the rows.
INSERT INTO categories (id, name)
SELECT i, 'category ' || i
FROM generate_series(1, :categories) AS i;

INSERT INTO products (id, category_id, name, price_cents, stock, version)
SELECT i, (i - 1) % :categories + 1, 'product ' || i, 199 + (i * 7919) % 19801,
       100 + (i * 104729) % 901, 1
FROM generate_series(1, :products) AS i;

INSERT INTO users (id, name, segment)
SELECT i, 'user ' || i, (i * 7) % 4
FROM generate_series(1, :users) AS i;

-- Each change's old price is the one before it (the product's seeded price for its first),
-- and each product ends at its last change's price, one version per change.
INSERT INTO price_history (id, product_id, old_cents, new_cents, changed_at)
SELECT i, 1 + (i * 6151) % :products, 0, 199 + (i * 3571) % 19801,
       1767225600000000 - :days * 86400000000 + (:days * 86400000000 / (:price_changes + 1)) * i
FROM generate_series(1, :price_changes) AS i;

UPDATE price_history SET old_cents = COALESCE(
    (SELECT h.new_cents FROM price_history h
     WHERE h.product_id = price_history.product_id AND h.id < price_history.id
     ORDER BY h.id DESC LIMIT 1),
    (SELECT p.price_cents FROM products p WHERE p.id = price_history.product_id));

UPDATE products SET
    price_cents = COALESCE(
        (SELECT h.new_cents FROM price_history h WHERE h.product_id = products.id
         ORDER BY h.id DESC LIMIT 1),
        price_cents),
    version = 1 + (SELECT count(*) FROM price_history h WHERE h.product_id = products.id);

INSERT INTO orders (id, user_id, status, placed_at, updated_at, version)
SELECT i, 1 + (i * 7919) % :users,
       CASE (i * 37) % 10 WHEN 0 THEN 'placed' WHEN 1 THEN 'paid' WHEN 2 THEN 'paid'
                          WHEN 9 THEN 'cancelled' ELSE 'shipped' END,
       at,
       at + 3600000000 * CASE (i * 37) % 10 WHEN 0 THEN 0 WHEN 1 THEN 1 WHEN 2 THEN 1
                                            WHEN 9 THEN 1 ELSE 2 END,
       CASE (i * 37) % 10 WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 2 WHEN 9 THEN 2 ELSE 3 END
FROM (SELECT i, 1767225600000000 - :days * 86400000000 + (:days * 86400000000 / (:orders + 1)) * i AS at
      FROM generate_series(1, :orders) AS i) AS o;

INSERT INTO order_items (order_id, product_id, qty, unit_cents)
SELECT o.id, p.id, 1 + o.id % 3, p.price_cents
FROM orders o JOIN products p ON p.id = 1 + (o.id * 4099) % :products;

INSERT INTO reviews (id, product_id, user_id, rating, created_at)
SELECT i, 1 + (i * 2029) % :products, 1 + (i * 7907) % :users,
       CASE (i * 3) % 8 WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 3 WHEN 3 THEN 4 WHEN 4 THEN 4
                        ELSE 5 END,
       1767225600000000 - :days * 86400000000 + (:days * 86400000000 / (:reviews + 1)) * i
FROM generate_series(1, :reviews) AS i;

SELECT setval(pg_get_serial_sequence('orders', 'id'), :orders + 1, false);

SELECT setval(pg_get_serial_sequence('reviews', 'id'), :reviews + 1, false);

SELECT setval(pg_get_serial_sequence('price_history', 'id'), :price_changes + 1, false);
