-- The forum's write model on SQLite: INTEGER PRIMARY KEY is the rowid, which numbers new
-- threads and posts by itself.
CREATE TABLE authors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE threads (
    id INTEGER PRIMARY KEY,
    author_id BIGINT NOT NULL REFERENCES authors (id),
    title TEXT NOT NULL,
    locked BIGINT NOT NULL DEFAULT 0,   -- 1: no more replies
    posts BIGINT NOT NULL DEFAULT 0     -- bumped by every post in the same transaction
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    thread_id BIGINT NOT NULL REFERENCES threads (id),
    author_id BIGINT NOT NULL REFERENCES authors (id),
    body TEXT NOT NULL
);
CREATE INDEX posts_thread ON posts (thread_id);
CREATE INDEX posts_author ON posts (author_id);
CREATE INDEX threads_author ON threads (author_id);
