-- Pages and their views on SQLite: INTEGER PRIMARY KEY is the rowid, which numbers new views.
CREATE TABLE pages (
    id BIGINT PRIMARY KEY,
    title TEXT NOT NULL
);
CREATE TABLE views (
    id INTEGER PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES pages (id)
);
CREATE INDEX views_page ON views (page_id);
