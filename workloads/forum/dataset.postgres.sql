-- Authors 1..=authors; threads 1..=threads, every 20th locked; posts 1..=posts: the
-- first in each thread, the rest spread unevenly (i² mod threads: some threads are much
-- longer than others, many tie) and over the authors. Then each thread's post count, and
-- the identities go on after the seeded rows.
INSERT INTO authors (id, name)
SELECT i, 'author ' || i
FROM generate_series(1, :authors) AS i;

INSERT INTO threads (id, author_id, title, locked, posts)
SELECT i, 1 + i % :authors, 'thread ' || i, CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END, 0
FROM generate_series(1, :threads) AS i;

INSERT INTO posts (id, thread_id, author_id, body)
SELECT i, CASE WHEN i <= :threads THEN i ELSE 1 + ((i % :threads) * (i % :threads)) % :threads END,
       1 + ((i % :authors) * 31) % :authors, 'post ' || i
FROM generate_series(1, :posts) AS i;

UPDATE threads SET posts = (SELECT count(*) FROM posts p WHERE p.thread_id = threads.id);

SELECT setval(pg_get_serial_sequence('threads', 'id'), :threads + 1, false);

SELECT setval(pg_get_serial_sequence('posts', 'id'), :posts + 1, false);
