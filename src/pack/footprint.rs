//! What a pack's seeded dataset holds: the rows of its write model (the seed report's count,
//! as the shop's counts the rows it loads) and the bytes of its table groups (write model,
//! read models, outbox with what the projector keeps beside it), measured from the database
//! as the shop's are.

use super::exec::CompiledPack;
use super::projector::{baseline_table, CHECKPOINT, OUTBOX};
use crate::db::storage::{measure_groups, Storage};
use crate::db::{schema, Db, DbResult};

/// The pack's tables on `db` by group: its write model (every table its seed created that is
/// neither a read model nor the outbox and checkpoint), its read models, its outbox.
async fn groups(db: &Db, pack: &CompiledPack) -> DbResult<[Vec<String>; 3]> {
    let is_read_model = |t: &str| {
        pack.pack
            .read_models
            .keys()
            .any(|r| r.eq_ignore_ascii_case(t))
    };
    // The outbox and what the projector keeps beside it: its checkpoint and the read
    // models' seeded state a rebuild starts from.
    let is_log = |t: &str| {
        t.eq_ignore_ascii_case(OUTBOX)
            || t.eq_ignore_ascii_case(CHECKPOINT)
            || pack
                .pack
                .read_models
                .keys()
                .any(|r| t.eq_ignore_ascii_case(&baseline_table(r)))
    };
    let tables = schema::pack_tables(db).await?;
    let write = tables
        .iter()
        .filter(|t| !is_read_model(t) && !is_log(t))
        .cloned()
        .collect();
    // A read model may be a view rather than a table (matview): named from the pack.
    let read = pack.pack.read_models.keys().cloned().collect();
    let log = tables.iter().filter(|t| is_log(t)).cloned().collect();
    Ok([write, read, log])
}

/// Rows in the pack's write-model tables.
pub async fn write_rows(db: &Db, pack: &CompiledPack) -> DbResult<u64> {
    let [write, _, _] = groups(db, pack).await?;
    let mut rows = 0u64;
    for t in write {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&db.read)
            .await?;
        rows += n.max(0) as u64;
    }
    Ok(rows)
}

/// Bytes of the pack's write model, read models and outbox; `None` where the engine cannot
/// tell (see `db::storage`).
pub async fn storage(db: &Db, pack: &CompiledPack) -> DbResult<Option<Storage>> {
    let [write, read, log] = groups(db, pack).await?;
    measure_groups(db, &write, &read, &log).await
}
