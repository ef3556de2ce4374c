//! The tool refuses a schema or file it did not create and leaves it untouched
//! (issue [core] 6).

mod common;

use common::*;
use cqrs_bench::backend::prepare;
use cqrs_bench::backend::{cqrs_async, cqrs_sync, normalized};
use cqrs_bench::db::{Db, DbError};
use sqlx::Executor;

#[tokio::test]
async fn refuses_foreign_postgres_schema() {
    let Some(url) = pg_url("refuses_foreign_postgres_schema") else {
        return;
    };
    let schema = unique_schema("foreign");
    // Someone else's schema of the same name, with data.
    let admin = Db::open(&url, "public", 1).await.unwrap();
    admin
        .write
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    admin
        .write
        .execute(format!("CREATE TABLE {schema}.orders (id int primary key, note text)").as_str())
        .await
        .unwrap();
    admin
        .write
        .execute(format!("INSERT INTO {schema}.orders VALUES (1, 'keep me')").as_str())
        .await
        .unwrap();

    let err = prepare(&url, &schema, cqrs_async::KIND, 1, &small_dataset(), 2)
        .await
        .expect_err("seeding a foreign schema must fail");
    assert!(matches!(err, DbError::ForeignSchema { .. }), "{err}");
    assert!(err.to_string().contains(&schema), "{err}");

    let rows: Vec<(i32, String)> =
        sqlx::query_as::<_, (i32, String)>(&format!("SELECT id, note FROM {schema}.orders"))
            .fetch_all(&admin.read)
            .await
            .unwrap_or_default();
    // Any driver decodes int4 as i32.
    assert_eq!(rows, vec![(1, "keep me".to_string())]);
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&schema)
    .fetch_one(&admin.read)
    .await
    .unwrap();
    assert_eq!(tables, 1, "the tool created tables in a foreign schema");
    admin
        .write
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn refuses_foreign_sqlite_file() {
    let (_dir, url) = sqlite_url("theirs");
    let db = Db::open(&url, "cqrs_bench", 1).await.unwrap();
    db.write
        .execute(
            "CREATE TABLE products (sku TEXT PRIMARY KEY); INSERT INTO products VALUES ('A-1')",
        )
        .await
        .unwrap();
    let err = prepare(&url, "cqrs_bench", normalized::KIND, 1, &small_dataset(), 1)
        .await
        .expect_err("seeding a foreign file must fail");
    assert!(matches!(err, DbError::ForeignSqliteFile { .. }), "{err}");
    let skus: Vec<String> = sqlx::query_scalar("SELECT sku FROM products")
        .fetch_all(&db.read)
        .await
        .unwrap();
    assert_eq!(skus, vec!["A-1".to_string()]);
}

#[tokio::test]
async fn reseeding_its_own_database_is_allowed() {
    let (_dir, url) = sqlite_url("ours");
    for _ in 0..2 {
        let (db, report) = prepare(&url, "cqrs_bench", cqrs_sync::KIND, 1, &small_dataset(), 1)
            .await
            .unwrap();
        assert!(report.rows > 0);
        db.close().await;
    }
}
