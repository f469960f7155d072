//! Dashboard sessions, kept by tower-sessions' SQLx stores in the service's own database
//! (the `dashboard_sessions` table of migration 0007, laid out as those stores expect). A row
//! is keyed by a hash of the session id, never by the id a cookie carries.

use std::fmt;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
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

    async fn create_row(&self, row: &mut Record) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.create(row)).await,
            Backend::Postgres(store) => store.create(row).await,
        }
    }

    async fn save_row(&self, row: &Record) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.save(row)).await,
            Backend::Postgres(store) => store.save(row).await,
        }
    }

    async fn delete_row(&self, id: &Id) -> session_store::Result<()> {
        match &self.store {
            Backend::Sqlite(store) => self.writing(store.delete(id)).await,
            Backend::Postgres(store) => store.delete(id).await,
        }
    }
}

/// The id a session's row is stored under: a SHA-256 of the id its cookie carries, so the
/// table alone cannot be turned into session cookies. (Ids are 128 random bits: a plain hash
/// suffices.)
fn row_id(id: &Id) -> Id {
    let digest = Sha256::digest(id.0.to_le_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(bytes))
}

/// A session as stored: under its row id (the stores also keep the id inside the row's data).
fn row(record: &Record) -> Record {
    Record { id: row_id(&record.id), ..record.clone() }
}

#[async_trait]
impl SessionStore for SessionRows {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let mut stored = row(record);
            let wanted = stored.id;
            self.create_row(&mut stored).await?;
            if stored.id == wanted {
                return Ok(());
            }
            // The store found the row id taken and stored the session under a random id of
            // its own, whose cookie id nobody knows: drop that row, try a new id.
            self.delete_row(&stored.id).await?;
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.save_row(&row(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let stored = match &self.store {
            Backend::Sqlite(store) => store.load(&row_id(id)).await?,
            Backend::Postgres(store) => store.load(&row_id(id)).await?,
        };
        Ok(stored.map(|stored| Record { id: *id, ..stored }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.delete_row(&row_id(id)).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_stored_under_a_hash_of_the_cookie_id() {
        let id = Id(42);
        assert_ne!(row_id(&id), id);
        assert_eq!(row_id(&id), row_id(&Id(42)));
        assert_ne!(row_id(&id), row_id(&Id(43)));
    }
}
