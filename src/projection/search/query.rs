//! `text_search` answered from the search index: the words of the query (`domain::text`) as
//! term queries scoring 1 each, so a product's relevance is how many distinct words its name
//! holds, exactly as the SQL backends count them; the filters as zero-scoring clauses; the
//! first `limit` by price or relevance with ties broken by product id, from fast fields.

use std::cmp::Reverse;
use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, Score, SegmentReader, Term};

use super::{SearchError, SearchIndex};
use crate::domain::{SearchHit, TextSort};

/// What `text_search` asks, with its words already split (`domain::text::words`).
#[derive(Debug, Clone)]
pub struct TextQuery<'a> {
    pub words: &'a [String],
    pub category_id: i64,
    pub min_cents: i64,
    pub max_cents: i64,
    pub min_rating: i64,
    pub in_stock: bool,
    pub sort: TextSort,
    pub limit: i64,
}

fn at_least(field: Field, min: i64) -> Box<dyn Query> {
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(field, min)),
        Bound::Unbounded,
    ))
}

fn filter(q: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
}

/// A fast field's value per document of one segment (every document has it).
fn column(
    reader: &SegmentReader,
    name: &str,
) -> std::sync::Arc<dyn tantivy::columnar::ColumnValues<i64>> {
    reader
        .fast_fields()
        .i64(name)
        .map(|c| c.first_or_default_col(0))
        .unwrap_or_else(|_| panic!("{name} is a fast field of the search schema"))
}

/// The hits of `q`, in order.
pub fn text_search(index: &SearchIndex, q: &TextQuery<'_>) -> Result<Vec<SearchHit>, SearchError> {
    let f = index.fields;
    let words: Vec<(Occur, Box<dyn Query>)> = q
        .words
        .iter()
        .map(|w| {
            let term = TermQuery::new(Term::from_field_text(f.name, w), IndexRecordOption::Basic);
            (
                Occur::Should,
                Box::new(ConstScoreQuery::new(Box::new(term), 1.0)) as Box<dyn Query>,
            )
        })
        .collect();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, Box::new(BooleanQuery::new(words)))];
    if q.category_id != 0 {
        clauses.push(filter(Box::new(TermQuery::new(
            Term::from_field_i64(f.category_id, q.category_id),
            IndexRecordOption::Basic,
        ))));
    }
    clauses.push(filter(Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(f.price_cents, q.min_cents)),
        Bound::Included(Term::from_field_i64(f.price_cents, q.max_cents)),
    ))));
    if q.in_stock {
        clauses.push(filter(at_least(f.stock, 1)));
    }
    if q.min_rating > 0 {
        clauses.push(filter(at_least(f.rating_floor, q.min_rating)));
    }
    let query = BooleanQuery::new(clauses);
    let searcher = index.searcher();
    let limit = q.limit.max(0) as usize;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let top = TopDocs::with_limit(limit);
    let addrs: Vec<tantivy::DocAddress> = match q.sort {
        // Highest first: most words, then the lowest id.
        TextSort::Relevance => searcher
            .search(
                &query,
                &top.tweak_score(move |reader: &SegmentReader| {
                    let id = column(reader, "id");
                    move |doc: DocId, score: Score| (score, Reverse(id.get_val(doc)))
                }),
            )?
            .into_iter()
            .map(|(_, a)| a)
            .collect(),
        // Highest first: the lowest (price, id).
        TextSort::Price => searcher
            .search(
                &query,
                &top.custom_score(move |reader: &SegmentReader| {
                    let id = column(reader, "id");
                    let price = column(reader, "price_cents");
                    move |doc: DocId| Reverse((price.get_val(doc), id.get_val(doc)))
                }),
            )?
            .into_iter()
            .map(|(_, a)| a)
            .collect(),
    };
    addrs
        .into_iter()
        .map(|a| {
            let row = index.row(&searcher.doc(a)?)?;
            Ok(SearchHit {
                product_id: row.product_id,
                name: row.name,
                price_cents: row.price_cents,
                stock: row.stock,
                review_count: row.review_count,
                rating_sum: row.rating_sum,
            })
        })
        .collect()
}
