//! Dashboard sessions, kept by tower-sessions' SQLx stores in the service's own database
//! (the `dashboard_sessions` table of migration 0007, laid out as those stores expect).

use std::fmt;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{Db, DbResult};

const TABLE: &str = "dashboard_sessions";
const CURRENT_SCHEMA: &str = "select current_schema()";

/// The session store of whichever backend the service runs on. On SQLite every write takes
/// the process's writer slot first, like every other write, so it queues behind the record
/// path instead of spinning on SQLite's busy timeout.
#[derive(Clone)]
pub struct SessionRows {
    db: Db,
    store: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl fmt::Debug for SessionRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRows").field("store", &self.store).finish()
    }
}

impl Db {
    /// The dashboard's session store, on this database.
    pub async fn session_rows(&self) -> DbResult<SessionRows> {
        let store = match self {
            Db::Sqlite(s) => Backend::Sqlite(SqliteStore::new(s.pool.clone()).with_table_name(TABLE).map_err(invalid)?),
            Db::Postgres(s) => {
                // The PostgreSQL store names its schema; ours is wherever the migrations ran.
                let schema: String = sqlx::query_scalar(CURRENT_SCHEMA).fetch_one(&s.pool).await?;
                let store = PostgresStore::new(s.pool.clone()).with_schema_name(&schema).map_err(invalid)?;
                Backend::Postgres(store.with_table_name(TABLE).map_err(invalid)?)
            }
        };
        Ok(SessionRows { db: self.clone(), store })
    }
}

fn invalid(message: String) -> sqlx::Error {
    sqlx::Error::Configuration(message.into())
}

impl SessionRows {
    /// Holds the writer slot on SQLite (nothing on PostgreSQL) while `write` runs.
    async fn writing<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        let _slot = self.db.writer_slot().await;
        write.await
    }
}

#[async_trait]
impl SessionStore for SessionRows {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.create(record)).await,
            Backend::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.save(record)).await,
            Backend::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match &self.store {
            Backend::Sqlite(store) => store.load(id).await,
            Backend::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.delete(id)).await,
            Backend::Postgres(store) => store.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for SessionRows {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.delete_expired()).await,
            Backend::Postgres(store) => store.delete_expired().await,
        }
    }
}
