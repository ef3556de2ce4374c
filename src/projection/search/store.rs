//! The search index as a `ReadStore`: a batch's events are folded into the documents of the
//! products they touch with the product catalog's pure fold (`fold::apply_to`, the same
//! definition the SQL read model is tested against), each document replaced by product id
//! (`delete_term` + `add_document`), and the index committed with the batch's end as its
//! payload. A crash before the commit loses the batch and its checkpoint together; after it,
//! both are there: exactly once, with no ledger. Events a batch redelivers are at or before
//! the checkpoint (delivery is in position order), so they are counted as duplicates and
//! skipped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::{SearchError, SearchIndex};
use crate::db::Db;
use crate::domain::Event;
use crate::projection::error::ProjectorError;
use crate::projection::event_source::{Fetched, Position};
use crate::projection::read_store::{read_checkpoints, ReadStore};
use crate::projection::sql::Delivered;
use crate::projection::{fold, CatalogRow, ProjectionName, ReadModels};

/// The read model this store holds.
pub const MODEL: ProjectionName = ProjectionName::ProductSearch;

#[derive(Clone, Debug)]
pub struct SearchStore {
    index: Arc<SearchIndex>,
}

impl SearchStore {
    pub fn new(index: Arc<SearchIndex>) -> Self {
        SearchStore { index }
    }

    pub fn index(&self) -> &Arc<SearchIndex> {
        &self.index
    }

    /// Fills an empty index from the product catalog read model of `db` and its checkpoint
    /// (the projector then carries on from there): read between two equal readings of the
    /// checkpoint, so the rows are the ones that checkpoint covers on either engine.
    pub async fn seed_from_catalog(&self, db: &Db) -> Result<u64, ProjectorError> {
        let (rows, checkpoint) = loop {
            let mut conn = db.read.acquire().await.map_err(crate::db::DbError::from)?;
            let before = read_checkpoints(&mut conn).await?;
            let models = crate::projection::truth::load_catalog(&mut conn).await?;
            let after = read_checkpoints(&mut conn).await?;
            if before == after {
                let cp = after
                    .get(&ProjectionName::ProductCatalog)
                    .copied()
                    .unwrap_or_default();
                break (models, cp);
            }
        };
        let n = rows.len() as u64;
        let index = self.index.clone();
        blocking(move || {
            index.commit_with(
                |w, _| {
                    w.delete_all_documents()?;
                    for row in rows.values() {
                        w.add_document(index.document(row))?;
                    }
                    Ok(())
                },
                checkpoint,
            )
        })
        .await?;
        Ok(n)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SearchError> + Send + 'static,
) -> Result<T, ProjectorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SearchError::Task(e.to_string()))?
        .map_err(ProjectorError::from)
}

/// The products whose search document `event` changes.
fn products_of(event: &Event) -> Vec<i64> {
    let mut ids: Vec<i64> = event
        .product_states()
        .iter()
        .map(|s| s.product_id)
        .collect();
    match event {
        Event::ProductAdded { product_id, .. }
        | Event::ReviewAdded { product_id, .. }
        | Event::PriceChanged { product_id, .. }
        | Event::StockAdjusted { product_id, .. } => ids.push(*product_id),
        _ => {}
    }
    ids
}

/// Folds `due` into the documents they touch and replaces those documents, committing with
/// `checkpoint` (after `hold`, for fault drills).
fn apply_events(
    index: &SearchIndex,
    due: &[Delivered],
    checkpoint: Position,
    hold: Duration,
) -> Result<(), SearchError> {
    let ids: Vec<i64> = due
        .iter()
        .flat_map(|d| products_of(&d.event))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let current: HashMap<i64, CatalogRow> = index.rows(&ids)?;
    let mut models = ReadModels {
        product_catalog: current.into_iter().collect(),
        ..ReadModels::default()
    };
    for d in due {
        fold::apply_to(ProjectionName::ProductCatalog, &mut models, &d.event);
    }
    index.commit_with(
        |w, _| {
            for id in &ids {
                if let Some(row) = models.product_catalog.get(id) {
                    w.delete_term(index.id_term(*id));
                    w.add_document(index.document(row))?;
                }
            }
            if !hold.is_zero() {
                std::thread::sleep(hold);
            }
            Ok(())
        },
        checkpoint,
    )
}

impl ReadStore for SearchStore {
    async fn checkpoints(&self) -> Result<HashMap<ProjectionName, Position>, ProjectorError> {
        let index = self.index.clone();
        let cp = blocking(move || index.committed()).await?;
        Ok(HashMap::from([(MODEL, cp)]))
    }

    async fn apply(
        &self,
        projections: &[ProjectionName],
        from: Position,
        batch: &[Fetched],
        redelivered: &[Fetched],
        hold: Duration,
    ) -> Result<u64, ProjectorError> {
        if !projections.contains(&MODEL) {
            return Ok(0);
        }
        let index = self.index.clone();
        let cp = blocking({
            let index = index.clone();
            move || index.committed()
        })
        .await?;
        let last = batch.last().map(|f| f.pos).unwrap_or(from);
        if cp < from || last <= cp {
            // Reset since the batch was read, or nothing new in it.
            return Ok(redelivered.len() as u64);
        }
        // An unreadable payload is the SQL store's to dead-letter; it changes no document.
        let due: Vec<Delivered> = batch
            .iter()
            .filter(|f| f.pos > cp)
            .filter_map(|f| f.delivered().cloned())
            .collect();
        blocking(move || apply_events(&index, &due, last, hold)).await?;
        Ok(redelivered.len() as u64)
    }

    async fn apply_naive(
        &self,
        projections: &[ProjectionName],
        due: &[&Delivered],
        checkpoint: Position,
        _applied: i64,
    ) -> Result<(), ProjectorError> {
        if !projections.contains(&MODEL) {
            return Ok(());
        }
        // The negative control's shape: the documents, then the checkpoint in a commit of
        // its own, with no guard against what the checkpoint already covers.
        let index = self.index.clone();
        let due: Vec<Delivered> = due.iter().map(|d| (*d).clone()).collect();
        blocking(move || {
            let before = index.committed()?;
            apply_events(&index, &due, before, Duration::ZERO)?;
            index.commit_with(|_, _| Ok(()), checkpoint)
        })
        .await
    }

    async fn reset(&self, projections: &[ProjectionName]) -> Result<(), ProjectorError> {
        if !projections.contains(&MODEL) {
            return Ok(());
        }
        let index = self.index.clone();
        blocking(move || {
            index.commit_with(
                |w, _| {
                    w.delete_all_documents()?;
                    Ok(())
                },
                Position::default(),
            )
        })
        .await
    }

    fn parallel_read_models(&self) -> bool {
        false
    }
}
