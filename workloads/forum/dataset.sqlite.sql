-- Authors 1..=authors; threads 1..=threads, every 20th locked; posts 1..=posts: the
-- first in each thread, the rest spread unevenly (i² mod threads: some threads are much
-- longer than others, many tie) and over the authors (recursive CTEs count them). Then
-- each thread's post count.
WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :authors >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :authors
)
INSERT INTO authors (id, name)
SELECT i, 'author ' || i FROM n;

WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :threads >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :threads
)
INSERT INTO threads (id, author_id, title, locked, posts)
SELECT i, 1 + i % :authors, 'thread ' || i, CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END, 0 FROM n;

WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :posts >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :posts
)
INSERT INTO posts (id, thread_id, author_id, body)
SELECT i, CASE WHEN i <= :threads THEN i ELSE 1 + ((i % :threads) * (i % :threads)) % :threads END,
       1 + ((i % :authors) * 31) % :authors, 'post ' || i FROM n;

UPDATE threads SET posts = (SELECT count(*) FROM posts p WHERE p.thread_id = threads.id);
