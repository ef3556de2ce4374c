//! The product search read model's tantivy index: its schema, where it lives, its documents
//! (one per product, keyed by product id, holding a `CatalogRow`), and its commits, each
//! carrying the projector's checkpoint as the commit payload, so the index and the position
//! it covers are one atomic fact on disk. The reader reloads by hand right after each commit
//! (`ReloadPolicy::Manual`): what it shows is exactly the last commit, and the moment it shows
//! it is known (freshness).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::collector::DocSetCollector;
use tantivy::query::{AllQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TantivyDocument, Value, STORED, TEXT,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, Term};

use super::SearchError;
use crate::db::Db;
use crate::projection::event_source::Position;
use crate::projection::CatalogRow;

/// Memory the index writer may use before it flushes a segment (one indexing thread).
const WRITER_HEAP: usize = 32 * 1024 * 1024;

/// The index's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub id: Field,
    pub name: Field,
    pub category_id: Field,
    pub category_name: Field,
    pub price_cents: Field,
    pub stock: Field,
    pub version: Field,
    pub review_count: Field,
    pub rating_sum: Field,
    /// `rating_sum / review_count` rounded down (0 when unrated): "average at least r stars"
    /// for a whole r is `rating_floor >= r`, which an index can filter on.
    pub rating_floor: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let filter = NumericOptions::default()
        .set_indexed()
        .set_stored()
        .set_fast();
    let stored = NumericOptions::default().set_stored();
    let fields = Fields {
        id: b.add_i64_field("id", filter.clone()),
        name: b.add_text_field("name", TEXT | STORED),
        category_id: b.add_i64_field("category_id", filter.clone()),
        category_name: b.add_text_field("category_name", STORED),
        price_cents: b.add_i64_field("price_cents", filter.clone()),
        stock: b.add_i64_field("stock", filter.clone()),
        version: b.add_i64_field("version", stored.clone()),
        review_count: b.add_i64_field("review_count", stored.clone()),
        rating_sum: b.add_i64_field("rating_sum", stored),
        rating_floor: b.add_i64_field("rating_floor", filter),
    };
    (b.build(), fields)
}

/// Where a database's search index lives: `given`, else beside a SQLite file
/// (`bench.db` → `bench.db.search`), else (PostgreSQL) in the temporary directory under the
/// schema's name.
pub fn index_dir(db: &Db, given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    if let Some(file) = db.url.sqlite_path() {
        let mut name = file.clone().into_os_string();
        name.push(".search");
        return PathBuf::from(name);
    }
    std::env::temp_dir().join(format!(
        "cqrs-bench-search-{}",
        db.schema.as_deref().unwrap_or("public")
    ))
}

/// An open search index: a reader always, the single writer once something is written.
pub struct SearchIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    pub fields: Fields,
    writer: Mutex<Option<IndexWriter<TantivyDocument>>>,
    /// The checkpoint of the commit the reader shows.
    searchable: Mutex<Position>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish()
    }
}

impl SearchIndex {
    /// Whether `dir` holds an index (a commit was made there).
    pub fn exists(dir: &Path) -> bool {
        dir.join("meta.json").exists()
    }

    /// Opens the index in `dir`, creating an empty one (checkpoint at the start) if there is
    /// none.
    pub fn open(dir: &Path) -> Result<Arc<SearchIndex>, SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
        let (schema, fields) = schema();
        let created = !Self::exists(dir);
        let index = if created {
            Index::create_in_dir(dir, schema)?
        } else {
            let index = Index::open_in_dir(dir)?;
            if index.schema() != schema {
                return Err(SearchError::Schema(dir.to_path_buf()));
            }
            index
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let me = SearchIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            writer: Mutex::new(None),
            searchable: Mutex::new(Position::default()),
        };
        if created {
            // The first commit writes meta.json with the start as its checkpoint.
            me.commit_with(|_, _| Ok(()), Position::default())?;
        } else {
            *me.searchable.lock().expect("searchable lock") = me.committed()?;
        }
        Ok(Arc::new(me))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint of the last commit on disk (by whichever process made it).
    pub fn committed(&self) -> Result<Position, SearchError> {
        let metas = self.index.load_metas()?;
        match metas.payload {
            None => Ok(Position::default()),
            Some(p) => serde_json::from_str(&p).map_err(|e| SearchError::Payload(p, e.to_string())),
        }
    }

    /// The checkpoint of what searches see now.
    pub fn searchable(&self) -> Position {
        *self.searchable.lock().expect("searchable lock")
    }

    /// A searcher over what the reader shows.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Takes the writer (an error while another process holds the index's writer lock; the
    /// projector retries, and a `kill -9`ed holder's lock goes with it), runs `change` on it, and commits with `checkpoint` as the
    /// payload; on any failure nothing of `change` is committed. Then reloads the reader, so
    /// the commit is searchable when this returns.
    pub fn commit_with(
        &self,
        change: impl FnOnce(&IndexWriter<TantivyDocument>, &Fields) -> Result<(), SearchError>,
        checkpoint: Position,
    ) -> Result<(), SearchError> {
        let mut guard = self.writer.lock().expect("writer lock");
        if guard.is_none() {
            *guard = Some(self.index.writer_with_num_threads(1, WRITER_HEAP)?);
        }
        let writer = guard.as_mut().expect("writer just set");
        let result = change(writer, &self.fields).and_then(|()| {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&serde_json::to_string(&checkpoint).expect("positions serialize"));
            prepared.commit()?;
            Ok(())
        });
        if let Err(e) = result {
            // Drops what `change` added; a writer that cannot even roll back is reopened.
            if writer.rollback().is_err() {
                *guard = None;
            }
            return Err(e);
        }
        drop(guard);
        self.reader.reload()?;
        *self.searchable.lock().expect("searchable lock") = checkpoint;
        Ok(())
    }

    /// Lets go of the writer (and its lock on the index), so another process can write; the
    /// next commit here takes it again.
    pub fn release_writer(&self) {
        *self.writer.lock().expect("writer lock") = None;
    }

    /// The index document of `row`.
    pub fn document(&self, row: &CatalogRow) -> TantivyDocument {
        let f = &self.fields;
        let floor = if row.review_count > 0 {
            row.rating_sum / row.review_count
        } else {
            0
        };
        doc!(
            f.id => row.product_id,
            f.name => row.name.as_str(),
            f.category_id => row.category_id,
            f.category_name => row.category_name.as_str(),
            f.price_cents => row.price_cents,
            f.stock => row.stock,
            f.version => row.version,
            f.review_count => row.review_count,
            f.rating_sum => row.rating_sum,
            f.rating_floor => floor,
        )
    }

    /// The term that names product `id`'s document (for replacing it).
    pub fn id_term(&self, id: i64) -> Term {
        Term::from_field_i64(self.fields.id, id)
    }

    /// A stored document read back as the row it holds.
    pub fn row(&self, d: &TantivyDocument) -> Result<CatalogRow, SearchError> {
        let f = &self.fields;
        let int = |field: Field| {
            d.get_first(field)
                .and_then(|v| v.as_i64())
                .ok_or(SearchError::Document)
        };
        let text = |field: Field| {
            d.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .ok_or(SearchError::Document)
        };
        Ok(CatalogRow {
            product_id: int(f.id)?,
            name: text(f.name)?,
            category_id: int(f.category_id)?,
            category_name: text(f.category_name)?,
            price_cents: int(f.price_cents)?,
            stock: int(f.stock)?,
            version: int(f.version)?,
            review_count: int(f.review_count)?,
            rating_sum: int(f.rating_sum)?,
        })
    }

    /// The documents of products `ids` as the reader shows them (absent ones left out). A
    /// product with more than one document (which a correct index never has) is an error.
    pub fn rows(&self, ids: &[i64]) -> Result<HashMap<i64, CatalogRow>, SearchError> {
        let searcher = self.searcher();
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            let q = TermQuery::new(self.id_term(id), IndexRecordOption::Basic);
            let hits = searcher.search(&q, &DocSetCollector)?;
            if hits.len() > 1 {
                return Err(SearchError::Duplicate(id, hits.len()));
            }
            if let Some(addr) = hits.into_iter().next() {
                out.insert(id, self.row(&searcher.doc(addr)?)?);
            }
        }
        Ok(out)
    }

    /// Every document, by product id, and how many documents there are (more than the map's
    /// length if a product has two).
    pub fn all_rows(&self) -> Result<(BTreeMap<i64, CatalogRow>, usize), SearchError> {
        let searcher = self.searcher();
        let hits = searcher.search(&AllQuery, &DocSetCollector)?;
        let mut out = BTreeMap::new();
        for addr in &hits {
            let row = self.row(&searcher.doc(*addr)?)?;
            out.insert(row.product_id, row);
        }
        Ok((out, hits.len()))
    }
}
