//! Storage on SQLite or PostgreSQL: the only place that writes SQL. One file per table group.

pub mod attention;
pub mod audit;
pub mod balances;
pub mod client_tokens;
pub mod counters;
pub mod customers;
pub mod events;
pub mod keys;
pub mod limit_reservations;
pub mod limits;
pub mod meters;
pub mod operators;
pub mod personal_tokens;
pub mod projects;
pub mod rate_limits;
pub mod sessions;
pub mod webhooks;

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Database, Pool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Conflict(String),
    #[error("{resource} not found: {id}")]
    NotFound { resource: &'static str, id: String },
    /// A write whose result would leave a documented number range; nothing was written.
    #[error("invalid value for {field}: {message}")]
    OutOfRange { field: String, message: String },
    /// A limit's window counter would leave `Quantity::MAX_COUNTER`; nothing was written.
    #[error("the usage counter of limit {limit_id} would leave its range")]
    CounterOutOfRange { limit_id: String },
    /// A consume that would take a limit past its value was refused; nothing was written.
    #[error("recording this would take limit {limit_id} past its value")]
    WouldExceedLimit { limit_id: String },
    #[error("unsupported database URL {0}: use sqlite://path or postgres://…")]
    UnsupportedUrl(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "another Limitry process is serving {0}: stop it first, or run several instances on PostgreSQL \
         (DATABASE_URL=postgres://…)"
    )]
    InUse(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<serde_json::Error> for DbError {
    fn from(err: serde_json::Error) -> Self {
        DbError::Corrupt(err.to_string())
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// The database behind the service. Both backends share table and column names and, nearly
/// everywhere, the same SQL text; each keeps its native types and locking.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

#[derive(Clone)]
pub struct SqliteStore {
    /// Readers, and the few writes outside `begin_write`.
    pool: SqlitePool,
    /// The one connection every write transaction runs on (see `WRITER_CACHE_KIB`).
    writer: SqlitePool,
    /// The database file; `None` in memory.
    path: Option<std::path::PathBuf>,
    /// The lock that makes this process the file's only writer, once claimed.
    sole_writer: Arc<std::sync::Mutex<Option<std::fs::File>>>,
    /// SQLite has one writer at a time; queueing writers here is fairer and faster than
    /// letting them spin on the busy timeout.
    write_lock: Arc<Mutex<()>>,
    /// The connection groups committed at once run on, without a hand-off to a thread of
    /// SQLite's own: opened on first use by the group commit's writer thread, the only one
    /// that uses it (see `SqliteStore::record_at_once`). Never opened for a database in memory.
    direct: Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    /// `synchronous` as the URL asked, for `direct` too.
    synchronous: SqliteSynchronous,
    /// Counter states committed groups left in memory, not saved yet.
    unsaved: Arc<std::sync::Mutex<counters::UnsavedCounters>>,
}

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The connections record groups run on (see `RECORDING_CONNECTIONS`).
    recording: PgPool,
}

/// A write transaction; on SQLite it also holds the process's writer slot until it ends.
pub struct WriteTx<DB: Database> {
    tx: Transaction<'static, DB>,
    writer: WriterSlot,
}

impl<DB: Database> WriteTx<DB> {
    pub async fn commit(self) -> DbResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Commits and keeps the writer slot, so the caller can bring in-memory copies up to date
    /// before any other writer, or any reader filling those copies, runs.
    pub async fn commit_holding_slot(self) -> DbResult<WriterSlot> {
        self.tx.commit().await?;
        Ok(self.writer)
    }

    /// The writer slot this transaction holds (empty on PostgreSQL).
    pub fn slot(&self) -> &WriterSlot {
        &self.writer
    }
}

/// The process's writer slot (SQLite): held by every write transaction from start to end, and
/// by readers that fill in-memory copies, so a copy never mixes states before and after a write.
/// Empty on PostgreSQL.
#[must_use = "the slot is released when dropped"]
pub struct WriterSlot(#[allow(dead_code)] Option<OwnedMutexGuard<()>>);

impl WriterSlot {
    /// A slot that holds nothing, for unit tests of code that asks for one.
    #[cfg(test)]
    pub(crate) fn unheld() -> WriterSlot {
        WriterSlot(None)
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// What the query code needs from either backend.
pub trait Store {
    type Database: Database;
    const POSTGRES: bool;
    fn pool(&self) -> &Pool<Self::Database>;
    /// `POSTGRES`, for code that holds a store value rather than its type.
    fn is_postgres(&self) -> bool {
        Self::POSTGRES
    }
    /// Waits for the process's writer slot (SQLite; on PostgreSQL there is none to wait for).
    fn claim_writer(&self) -> impl Future<Output = WriterSlot> + Send;
    /// Begins a write transaction that holds `writer`, claimed with `claim_writer`.
    fn begin_claimed(&self, writer: WriterSlot) -> impl Future<Output = DbResult<WriteTx<Self::Database>>> + Send;
    fn begin_write(&self) -> impl Future<Output = DbResult<WriteTx<Self::Database>>> + Send;
}

impl Store for SqliteStore {
    type Database = Sqlite;
    const POSTGRES: bool = false;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn claim_writer(&self) -> WriterSlot {
        WriterSlot(Some(self.write_lock.clone().lock_owned().await))
    }

    async fn begin_write(&self) -> DbResult<WriteTx<Sqlite>> {
        let writer = self.claim_writer().await;
        self.begin_claimed(writer).await
    }

    async fn begin_claimed(&self, writer: WriterSlot) -> DbResult<WriteTx<Sqlite>> {
        // IMMEDIATE takes the write lock up front, so read-then-write cannot fail to upgrade.
        // It runs in a task of its own: a caller dropped between the BEGIN and sqlx wrapping it
        // in a `Transaction` (a client hanging up) would otherwise leave the connection inside
        // a transaction that holds SQLite's write lock forever. The task always finishes, and a
        // `Transaction` nobody awaits rolls back when dropped.
        // Counters left unsaved are saved first: this transaction may read or rewrite them.
        let store = self.clone();
        let tx = tokio::spawn(async move {
            store.save_unsaved_counters().await?;
            Ok::<_, DbError>(store.writer.begin_with("begin immediate").await?)
        })
        .await
        .map_err(|e| DbError::Corrupt(format!("transaction start was interrupted: {e}")))??;
        Ok(WriteTx { tx, writer })
    }
}

impl SqliteStore {
    /// Runs `work` on the direct connection (see `direct`), opening it first if needed, with
    /// the writer connection's settings; `None` for a database in memory. Blocks: only the
    /// group commit's writer thread calls it, holding the writer slot.
    pub(crate) fn with_direct<T>(
        &self,
        _held: &WriterSlot,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> DbResult<Option<T>> {
        let Some(path) = &self.path else { return Ok(None) };
        let mut direct = self.direct.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if direct.is_none() {
            let connection = rusqlite::Connection::open(path)?;
            connection.busy_timeout(Duration::from_secs(10))?;
            let synchronous = match self.synchronous {
                SqliteSynchronous::Normal => "normal",
                _ => "full",
            };
            connection.execute_batch(&format!(
                "pragma synchronous = {synchronous}; pragma foreign_keys = on; \
                 pragma cache_size = -{WRITER_CACHE_KIB}; pragma wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}; \
                 pragma temp_store = memory;"
            ))?;
            *direct = Some(connection);
        }
        let connection = direct.as_ref().expect("opened above");
        Ok(Some(work(connection)?))
    }
}

impl Store for PgStore {
    type Database = Postgres;
    const POSTGRES: bool = true;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn claim_writer(&self) -> WriterSlot {
        WriterSlot(None)
    }

    async fn begin_write(&self) -> DbResult<WriteTx<Postgres>> {
        Ok(WriteTx { tx: self.pool.begin().await?, writer: WriterSlot(None) })
    }

    async fn begin_claimed(&self, writer: WriterSlot) -> DbResult<WriteTx<Postgres>> {
        Ok(WriteTx { tx: self.recording.begin().await?, writer })
    }
}

/// Runs the same code against whichever backend is configured.
macro_rules! with_store {
    ($db:expr, $store:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($store) => $body,
            $crate::db::Db::Postgres($store) => $body,
        }
    };
}
pub(crate) use with_store;

/// Serializes changes to a project's limits against concurrent reservations on PostgreSQL, and
/// changes against each other. (SQLite writers are already serial; recording share-locks the
/// project's row instead, see `share_rules_tx`.)
pub(crate) const LOCK_PROJECT_SHARED: &str = "select pg_advisory_xact_lock_shared(hashtext($1))";
pub(crate) const LOCK_PROJECT_FOR_LIMIT_CHANGE: &str = "select pg_advisory_xact_lock(hashtext($1))";
/// The PostgreSQL channel on which instances hear of each other's changes to limits, meters
/// and customers; the payload is the project id.
pub const RULES_CHANNEL: &str = "limitry_rules";
const NOTIFY: &str = "select pg_notify($1, $2)";
const BUMP_RULES_VERSION: &str = "update projects set rules_version = rules_version + 1 where id = $1";
// A locking read sees the latest committed version even when the statement began before it.
const SHARE_RULES: &str = "select rules_version from projects where id = $1 for share";
/// The PostgreSQL channel on which the creation of customers is announced (the payload is the
/// project id), so instances forget that a reference named no customer yet.
pub const CUSTOMERS_CHANNEL: &str = "limitry_customers";
/// The PostgreSQL channel on which each instance announces its clock, `<instance> <unix ms>`,
/// to learn how far it has heard the others (see `engine::listener`).
pub const HEARTBEAT_CHANNEL: &str = "limitry_heartbeat";

/// Transaction helpers are defined once per backend's concrete types by a macro like this one
/// in each table group's file; the same method name on both stores lets `with_store!` bodies
/// call them.
macro_rules! transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Takes the project lock (PostgreSQL only): shared for recording, exclusive for
            /// changes to what checks read (limits, meters, customers). An exclusive lock also
            /// announces the change to every instance on `RULES_CHANNEL`, which PostgreSQL
            /// delivers when, and only if, the transaction commits, and moves the project's
            /// rules version (see `rules_version_tx`).
            pub(crate) async fn lock_project(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                exclusive: bool,
            ) -> DbResult<()> {
                if <$store as Store>::POSTGRES {
                    let sql = if exclusive { LOCK_PROJECT_FOR_LIMIT_CHANGE } else { LOCK_PROJECT_SHARED };
                    sqlx::query(sql).bind(project_id).execute(&mut **tx).await?;
                    if exclusive {
                        sqlx::query(NOTIFY).bind(RULES_CHANNEL).bind(project_id).execute(&mut **tx).await?;
                        sqlx::query(BUMP_RULES_VERSION).bind(project_id).execute(&mut **tx).await?;
                    }
                }
                Ok(())
            }

            /// Takes the project's rules for recording and returns their version (PostgreSQL;
            /// `None` on SQLite, whose only writer is this process). The project's row is
            /// share-locked: a change to its limits, meters or customers bumps the version
            /// first (`lock_project`), so it waits for this transaction to end, or this one
            /// waits for it and reads the version it committed.
            pub(crate) async fn share_rules_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
            ) -> DbResult<Option<i64>> {
                if !<$store as Store>::POSTGRES {
                    return Ok(None);
                }
                let version = sqlx::query_scalar(SHARE_RULES).bind(project_id).fetch_one(&mut **tx).await?;
                Ok(Some(version))
            }
        }
    };
}
macro_rules! announce_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Announces, when the transaction commits, that customers of the project were
            /// created (PostgreSQL; on SQLite this process is the only one).
            pub(crate) async fn announce_customers_created_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
            ) -> DbResult<()> {
                if <$store as Store>::POSTGRES {
                    sqlx::query(NOTIFY).bind(CUSTOMERS_CHANNEL).bind(project_id).execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}
announce_helpers!(SqliteStore, Sqlite);
announce_helpers!(PgStore, Postgres);
transaction_helpers!(SqliteStore, Sqlite);
transaction_helpers!(PgStore, Postgres);

/// The page cache of the SQLite connection that runs every write transaction. SQLite's default
/// (2 MiB) holds little more than the top of the events' indexes, so every recorded event read
/// its index pages back from the operating system. Only this connection writes, so its cache
/// stays valid from one transaction to the next and is worth making large.
const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// PostgreSQL connections for record groups: the group commit runs one group at a time, and a
/// second connection lets the next group begin while the last one's is checked on its way back
/// to the pool.
const RECORDING_CONNECTIONS: u32 = 2;
/// How long a recording connection may have been idle before it is pinged when taken: after a
/// restart of the server, a group would otherwise fail on a dead connection.
const RECORDING_IDLE_BEFORE_PING: Duration = Duration::from_secs(1);
/// Pages the write-ahead log may grow to before a commit copies it into the database file
/// (SQLite's default is 1,000, about 4 MiB): fewer, larger checkpoints, each one a sync, while
/// readers still find recent pages in the log's index.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Takes our own parameter off a SQLite URL before sqlx reads the rest: `synchronous=full`, the
/// default, syncs every commit, so an answered record survives power loss; `synchronous=normal`
/// syncs only at checkpoints, so the database stays consistent but the last acknowledged
/// transactions can be lost to an OS crash or power loss, for several times the throughput of
/// single records.
fn take_synchronous(url: &str) -> DbResult<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), SqliteSynchronous::Full)) };
    let mut synchronous = SqliteSynchronous::Full;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => SqliteSynchronous::Full,
                    "normal" => SqliteSynchronous::Normal,
                    _ => {
                        return Err(DbError::UnsupportedUrl(format!(
                            "{} (synchronous must be full or normal)",
                            crate::config::redact_url(url)
                        )))
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    Ok(match rest.is_empty() {
        true => (base.to_string(), synchronous),
        false => (format!("{base}?{}", rest.join("&")), synchronous),
    })
}

impl Db {
    /// Connects, creating a SQLite file if missing, and applies pending migrations.
    pub async fn connect(url: &str) -> DbResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool =
                PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            // Pinged only after a pause: sqlx pings every connection it hands out, a round trip
            // before every group commit, while a connection in use a moment ago is alive.
            // Opened on first use, by the group commit's writer, so on its runtime, which then
            // hears their answers itself (see `GroupCommitter::start`).
            let recording = PgPoolOptions::new()
                .max_connections(RECORDING_CONNECTIONS)
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for > RECORDING_IDLE_BEFORE_PING {
                            sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_lazy(url)?;
            Ok(Db::Postgres(PgStore { pool, recording }))
        } else if url.starts_with("sqlite:") {
            let (url, synchronous) = take_synchronous(url)?;
            let options = SqliteConnectOptions::from_str(&url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // sqlx names a database in memory `file:sqlx-in-memory-<n>`, which is no file: opened
            // directly (as a URI), it would be a second database on disk, `sqlx-in-memory-<n>`.
            let path = options.get_filename();
            let in_memory = path.as_os_str().is_empty()
                || path.to_string_lossy().starts_with("file:sqlx-in-memory-")
                || url.contains("mode=memory");
            let path = (!in_memory).then(|| path.to_path_buf());
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            let writer_options = options
                .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
                .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES.to_string())
                // A statement that changes many rows inside a transaction keeps the pages it
                // changes in a statement journal, which spills to a temporary file past 64 KiB:
                // a group's counters did, opening, writing and deleting a file every commit.
                .pragma("temp_store", "memory");
            // Never closed for idleness or age: its page cache is what it is for. Nor pinged
            // before each transaction: a local file does not drop a connection, and the ping
            // was a round trip to SQLite's thread before every group commit.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .connect_with(writer_options)
                .await?;
            Ok(Db::Sqlite(SqliteStore {
                pool,
                writer,
                path,
                sole_writer: Arc::default(),
                write_lock: Arc::new(Mutex::new(())),
                direct: Arc::default(),
                synchronous,
                unsaved: Arc::default(),
            }))
        } else {
            Err(DbError::UnsupportedUrl(crate::config::redact_url(url)))
        }
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether this process is the database's only writer, so it may keep authoritative
    /// copies of what it writes in memory. True for the embedded SQLite file; PostgreSQL may
    /// be shared by several instances.
    pub fn is_exclusive(&self) -> bool {
        matches!(self, Db::Sqlite(_))
    }

    /// A connection listening for other instances' changes to what checks read, and for
    /// heartbeats (PostgreSQL).
    pub async fn listen_for_changes(&self) -> DbResult<Option<sqlx::postgres::PgListener>> {
        let Db::Postgres(store) = self else { return Ok(None) };
        let mut listener = sqlx::postgres::PgListener::connect_with(&store.pool).await?;
        listener
            .listen_all([
                RULES_CHANNEL,
                counters::COUNTERS_CHANNEL,
                CUSTOMERS_CHANNEL,
                HEARTBEAT_CHANNEL,
                limit_reservations::HOLDS_CHANNEL,
            ])
            .await?;
        Ok(Some(listener))
    }

    /// Announces an instance's clock on `HEARTBEAT_CHANNEL` (PostgreSQL).
    pub async fn announce_heartbeat(&self, instance: &str, now_ms: i64) -> DbResult<()> {
        if let Db::Postgres(store) = self {
            sqlx::query(NOTIFY)
                .bind(HEARTBEAT_CHANNEL)
                .bind(format!("{instance} {now_ms}"))
                .execute(&store.pool)
                .await?;
        }
        Ok(())
    }

    /// Waits for the writer slot: while it is held no write is in flight, and none starts.
    pub async fn writer_slot(&self) -> WriterSlot {
        match self {
            Db::Sqlite(store) => WriterSlot(Some(store.write_lock.clone().lock_owned().await)),
            Db::Postgres(_) => WriterSlot(None),
        }
    }

    /// Makes this process the SQLite file's only writer until `close`, with a lock on
    /// `<file>.lock` that the operating system drops when the process ends, however it ends.
    /// The service keeps authoritative state in memory, so a second service on the same file
    /// would answer from stale memory; it is refused instead. PostgreSQL needs no claim.
    pub fn claim_sole_writer(&self) -> DbResult<()> {
        let Db::Sqlite(store) = self else { return Ok(()) };
        let Some(path) = &store.path else { return Ok(()) };
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        match file.try_lock() {
            Ok(()) => {
                *store.sole_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(DbError::InUse(path.display().to_string())),
            Err(std::fs::TryLockError::Error(err)) => Err(err.into()),
        }
    }

    /// How many connections the pool holds, how many of them are idle, and its maximum.
    pub fn pool_usage(&self) -> PoolUsage {
        with_store!(self, s => PoolUsage {
            open: s.pool().size(),
            idle: u32::try_from(s.pool().num_idle()).unwrap_or(u32::MAX),
            max: s.pool().options().get_max_connections(),
        })
    }

    pub async fn ping(&self) -> DbResult<()> {
        with_store!(self, s => sqlx::query("select 1").execute(s.pool()).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the connections of the group commit's writer (PostgreSQL; closing twice is
    /// harmless).
    pub(crate) async fn close_recording(&self) {
        if let Db::Postgres(store) = self {
            store.recording.close().await;
        }
    }

    pub async fn close(&self) {
        if let Err(err) = self.save_counters().await {
            tracing::warn!(error = %err, "unsaved counters could not be saved; they are counted again at the next start");
        }
        with_store!(self, s => s.pool().close().await);
        self.close_recording().await;
        if let Db::Sqlite(store) = self {
            store.writer.close().await;
            store.direct.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
            // Dropping the file releases the claim, so a restart in this process can take it.
            store.sole_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        }
    }
}

/// A snapshot of a connection pool, for `GET /metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolUsage {
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}

/// Unique-constraint violations become conflicts with a message the client can act on.
pub(crate) fn conflict_on_unique(err: sqlx::Error, message: impl Into<String>) -> DbError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict(message.into()),
        _ => DbError::Sqlx(err),
    }
}

/// `($1, $2), ($3, $4)`: placeholders for a multi-row statement, numbered from `$first`.
/// SQLite gets anonymous `?` instead (so every parameter of the statement must be anonymous:
/// sqlx binds anonymous ones in their own order, apart from `$n`): SQLite looks a numbered
/// parameter's name up by walking a list, which made binding a statement of a thousand
/// parameters quadratic.
/// The text is remembered per shape: a group commit writes the same few shapes over and over.
pub(crate) fn placeholder_rows(postgres: bool, rows: usize, columns: usize, first: usize) -> Arc<str> {
    type Shapes = std::sync::Mutex<std::collections::HashMap<(bool, usize, usize, usize), Arc<str>>>;
    static SHAPES: std::sync::OnceLock<Shapes> = std::sync::OnceLock::new();
    let shapes = SHAPES.get_or_init(Shapes::default);
    let key = (postgres, rows, columns, first);
    if let Some(text) = shapes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
        return text.clone();
    }
    let mut text = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        text.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                text.push_str(", ");
            }
            match postgres {
                true => text.push_str(&format!("${}", first + row * columns + column)),
                false => text.push('?'),
            }
        }
        text.push(')');
    }
    let text: Arc<str> = text.into();
    shapes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, text.clone());
    text
}

/// `$2, $3, …`: `count` numbered placeholders from `$first`, for a short `in (…)` list.
pub(crate) fn numbered_list(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// Rows per multi-row statement: well under both databases' parameter limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 100;

/// Splits rows for multi-row statements into chunks of `max` and a remainder in powers of two
/// (73 rows: 64, 8, 1), so that a statement takes a handful of shapes and each stays in the
/// connection's statement cache: a remainder of any size would make a new text nearly every
/// group, and preparing a statement of many rows costs more than running it.
pub(crate) fn statement_chunks<T>(mut rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= max { max } else { 1 << rows.len().ilog2() };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

pub(crate) fn ms_to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `synchronous` as the connections that commit writes have it: the writer connection and
    /// the direct one groups committed at once use.
    async fn synchronous_of(url: &str) -> i64 {
        let Db::Sqlite(store) = Db::connect(url).await.unwrap() else { unreachable!("a SQLite URL") };
        let writer: i64 = sqlx::query_scalar("pragma synchronous").fetch_one(&store.writer).await.unwrap();
        let direct = store
            .with_direct(&WriterSlot(None), |c| c.query_row("pragma synchronous", [], |row| row.get::<_, i64>(0)))
            .unwrap()
            .expect("a file");
        assert_eq!(writer, direct, "{url}");
        writer
    }

    #[test]
    fn statement_chunks_take_few_shapes_and_keep_every_row_in_order() {
        let rows: Vec<usize> = (0..273).collect();
        let chunks: Vec<&[usize]> = statement_chunks(&rows, 100).collect();
        let sizes: Vec<usize> = chunks.iter().map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, [100, 100, 64, 8, 1]);
        assert_eq!(chunks.concat(), rows);
        assert_eq!(statement_chunks(&rows[..0], 100).count(), 0);
    }

    #[tokio::test]
    async fn sqlite_syncs_every_commit_unless_the_url_trades_that_for_throughput() {
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str, query: &str| format!("sqlite://{}{query}", dir.path().join(name).display());
        // SQLite numbers the levels: 1 is NORMAL, 2 is FULL.
        assert_eq!(synchronous_of(&url("default.db", "")).await, 2);
        assert_eq!(synchronous_of(&url("full.db", "?synchronous=full")).await, 2);
        assert_eq!(synchronous_of(&url("normal.db", "?synchronous=NORMAL")).await, 1);
        // sqlx's own parameters still reach it.
        assert_eq!(synchronous_of(&url("both.db", "?mode=rwc&synchronous=normal")).await, 1);
        let refused = Db::connect(&url("off.db", "?synchronous=off")).await.err().unwrap();
        assert!(refused.to_string().contains("synchronous must be full or normal"), "{refused}");
    }

    #[tokio::test]
    async fn a_database_in_memory_has_no_direct_connection_to_open_a_file_for() {
        for url in ["sqlite::memory:", "sqlite://limitry?mode=memory"] {
            let Db::Sqlite(store) = Db::connect(url).await.unwrap() else { unreachable!("a SQLite URL") };
            let opened = store.with_direct(&WriterSlot(None), |_| Ok(())).unwrap();
            assert!(opened.is_none(), "{url} opened a file");
        }
    }

    /// A SQLite database as the release before migration `version` left it, with a project,
    /// a meter and a daily limit on it (`proj`, `mtr`, `lmt`), and its URL.
    async fn sqlite_before(dir: &std::path::Path, version: i64) -> (String, SqlitePool) {
        let url = format!("sqlite://{}?mode=rwc", dir.join("upgrade.db").display());
        let mut before = sqlx::migrate!("migrations/sqlite");
        before.migrations = before.migrations.iter().filter(|m| m.version < version).cloned().collect();
        let pool = SqlitePool::connect(&url).await.unwrap();
        before.run(&pool).await.unwrap();
        for sql in [
            "insert into projects (id, name, timezone, created_at) values ('proj', 'P', 'UTC', 0)",
            "insert into meters (id, project_id, name, aggregation, field, event_filter, created_at, updated_at) \
             values ('mtr', 'proj', 'M', 'sum', 'values.tokens', '{}', 0, 0)",
            "insert into limits (id, project_id, name, meter_id, limit_value, period, dimension_filters, \
             alert_thresholds, fail_mode, created_at, updated_at) \
             values ('lmt', 'proj', 'L', 'mtr', 1000, 'day', '{}', '[]', 'open', 0, 0)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        (url, pool)
    }

    #[tokio::test]
    async fn upgrading_sqlite_keeps_every_counter_in_the_rebuilt_tables() {
        let dir = tempfile::tempdir().unwrap();
        // A database as the release before 0014 left it, holding a counter.
        let (url, pool) = sqlite_before(dir.path(), 14).await;
        sqlx::query(
            "insert into usage_counters (limit_id, customer_id, window_start, value, latest_at, version) \
             values ('lmt', 'cust', 86400000, 42, 90000000, 7)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let Db::Sqlite(store) = Db::connect(&url).await.unwrap() else { unreachable!("a SQLite URL") };
        let kept: (String, String, i64, i64, i64, i64) =
            sqlx::query_as("select limit_id, customer_id, window_start, value, latest_at, version from usage_counters")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(kept, ("lmt".into(), "cust".into(), 86_400_000, 42, 90_000_000, 7));
        let without_rowid = sqlx::query("select rowid from usage_counters").fetch_all(&store.pool).await;
        assert!(without_rowid.is_err(), "the counters live in their key's B-tree");
        let indexes: Vec<String> = sqlx::query_scalar(
            "select name from sqlite_master where type = 'index' and tbl_name in ('usage_counters', 'events') \
             and sql is not null order by name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            indexes,
            ["events_by_idempotency_key", "usage_counters_by_customer"],
            "0015 keys counters by window"
        );
    }

    #[tokio::test]
    async fn upgrading_sqlite_keeps_the_events_whose_counters_were_unsaved_to_be_counted_again() {
        let dir = tempfile::tempdir().unwrap();
        // A database as a crash before 0017 left it: the counters of the events from the
        // second on were in memory only, so the table of counters holds none of them.
        let (url, pool) = sqlite_before(dir.path(), 17).await;
        let day_ms = 86_400_000;
        sqlx::query(
            "insert into customers (id, project_id, external_id, created_at, updated_at) \
             values ('cust_1', 'proj', 'c1', 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (id, tokens) in [("evt_1", 1), ("evt_2", 20), ("evt_3", 300)] {
            sqlx::query(
                "insert into events (id, project_id, customer_id, event_type, occurred_at, metric_values, \
                 dimensions, properties, created_at) values (?, 'proj', 'cust_1', 'llm', ?, ?, '{}', '{}', 0)",
            )
            .bind(id)
            .bind(day_ms + 1000)
            .bind(format!(r#"{{"tokens": {tokens}}}"#))
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query("insert into unsaved_counters_since (events_rowid) select rowid from events where id = 'evt_2'")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        let db = Db::connect(&url).await.unwrap();
        let Db::Sqlite(store) = &db else { unreachable!("a SQLite URL") };
        let without_rowid = sqlx::query("select rowid from events").fetch_all(&store.pool).await;
        assert!(without_rowid.is_err(), "the events live in their key's B-tree");
        db.recount_unsaved_counters(chrono::Utc::now()).await.unwrap();
        let counted: Vec<(String, i64, i64)> =
            sqlx::query_as("select limit_id, window_start, value from usage_counters")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        // Quantities are stored in thousandths: 20 + 300 tokens.
        assert_eq!(counted, [("lmt".to_string(), day_ms, 320_000)]);
        let unsaved: i64 =
            sqlx::query_scalar("select count(*) from unsaved_counters").fetch_one(&store.pool).await.unwrap();
        assert_eq!(unsaved, 0, "counted once");
    }
}
