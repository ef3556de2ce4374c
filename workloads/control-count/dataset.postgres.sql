-- Pages 1..=pages, and views spread over them (the identity numbers the views, and new ones
-- after them).
INSERT INTO pages (id, title)
SELECT i, 'page ' || i FROM generate_series(1, :pages) AS i;

INSERT INTO views (page_id)
SELECT 1 + (i - 1) % :pages FROM generate_series(1, :views) AS i;
