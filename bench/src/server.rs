//! The service under test and its database: creating them, and making sure neither outlives
//! the benchmark, whether it ends normally, with an error, a panic or a signal.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use rand::distributions::Alphanumeric;
use rand::Rng;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// How long the service may take to migrate and bind.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd service may take to finish in-flight requests before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Server log lines kept for error messages.
const LOG_TAIL: usize = 40;

/// Where the service keeps its data for this run.
pub enum Database {
    /// A fresh SQLite file, removed with its directory when dropped.
    TempSqlite { dir: TempDir, url: String },
    /// A fresh database on a PostgreSQL server, dropped when this is dropped.
    TempPostgres { admin_url: String, name: String, url: String },
    /// A SQLite URL the user gave: used as is and left in place.
    Given { url: String },
}

impl Database {
    pub fn create(requested: Option<&str>) -> anyhow::Result<Database> {
        match requested {
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("limitry-bench-")
                    .tempdir()
                    .context("creating a temporary directory")?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(Database::TempSqlite { dir, url })
            }
            Some(url) if is_postgres(url) => {
                let suffix: String = rand::thread_rng()
                    .sample_iter(&Alphanumeric)
                    .take(10)
                    .map(|c| char::from(c).to_ascii_lowercase())
                    .collect();
                let name = format!("limitry_bench_{suffix}");
                psql(url, &format!("create database {name}"))?;
                Ok(Database::TempPostgres { url: with_database(url, &name), admin_url: url.to_string(), name })
            }
            Some(url) => Ok(Database::Given { url: url.to_string() }),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Database::TempSqlite { url, .. } | Database::TempPostgres { url, .. } | Database::Given { url } => url,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Database::TempPostgres { .. } => "postgres",
            _ => "sqlite",
        }
    }

    /// Bytes on disk (SQLite file plus its WAL), when this run owns a SQLite directory.
    pub fn size_on_disk(&self) -> Option<u64> {
        let Database::TempSqlite { dir, .. } = self else {
            return None;
        };
        let entries = std::fs::read_dir(dir.path()).ok()?;
        Some(entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // The temporary directory removes itself; a PostgreSQL database must be dropped by
        // name. `with (force)` ends any connection the server left behind.
        if let Database::TempPostgres { admin_url, name, .. } = self {
            if let Err(err) = psql(admin_url, &format!("drop database if exists {name} with (force)")) {
                eprintln!("limitry-bench: could not drop database {name}: {err:#}");
            }
        }
    }
}

/// Runs one SQL statement through `psql`, which takes the connection URL as is (user,
/// password, host, port and TLS settings included).
fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let output = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        bail!("psql `{sql}` failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// The same URL naming another database: the path after the authority is replaced, the
/// query string kept.
fn with_database(url: &str, name: &str) -> String {
    let scheme = url.split_once("://").map_or("postgres", |(scheme, _)| scheme);
    let authority = authority(url);
    match url.split_once('?').map(|(_, query)| query) {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// `limitry keys create`, which also creates and migrates the database.
pub async fn create_key(binary: &Path, database_url: &str) -> anyhow::Result<String> {
    create_key_with(binary, database_url, &["--name", "bench"]).await
}

/// A key with rate limits of its own, so high that no request is refused: every request
/// with it pays for counting, as with a configured limit.
pub async fn create_rate_limited_key(binary: &Path, database_url: &str) -> anyhow::Result<String> {
    let limits = ["--rate-limit-per-minute", "1000000000", "--rate-limit-per-day", "1000000000000"];
    create_key_with(binary, database_url, &[&["--name", "bench-rate-limited"][..], &limits[..]].concat()).await
}

async fn create_key_with(binary: &Path, database_url: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .args(["keys", "create"])
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!("`limitry keys create` failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    let stdout = String::from_utf8(output.stdout).context("the key is not UTF-8")?;
    let key = stdout.trim();
    anyhow::ensure!(!key.is_empty() && !key.contains('\n'), "`limitry keys create` printed {stdout:?}, not one key");
    Ok(key.to_string())
}

/// What the service wrote to stderr: the last lines, and how many were warnings or errors.
#[derive(Default)]
pub struct ServerLog {
    tail: VecDeque<String>,
    pub warnings: Vec<String>,
    pub warning_count: u64,
}

impl ServerLog {
    fn push(&mut self, line: String) {
        // tracing's plain format puts the level as the second field: `<time>  WARN target: …`.
        let level = line.split_whitespace().nth(1).unwrap_or("");
        if level == "WARN" || level == "ERROR" || line.contains("panicked") {
            self.warning_count += 1;
            if self.warnings.len() < 10 {
                // sqlx's slow-statement warnings carry the whole SQL text twice.
                self.warnings.push(line.chars().take(400).collect());
            }
        }
        if self.tail.len() == LOG_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    fn tail(&self) -> String {
        self.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// A running `limitry serve`. Dropping it stops the process (SIGTERM, then SIGKILL).
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<ServerLog>>,
    /// Whether its database is a PostgreSQL server on this machine, whose processes' CPU
    /// time can then be read beside the service's.
    pub local_postgres: bool,
}

impl Server {
    /// Starts the service on a free port and waits for its `listening on` line.
    ///
    /// Must be called from the main task (not a spawned one): the child asks the kernel to
    /// SIGTERM it when the thread that started it dies, which covers the benchmark itself
    /// being SIGKILLed, and only the main thread lives exactly as long as the process.
    pub async fn start(binary: &Path, database_url: &str) -> anyhow::Result<Server> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", database_url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches only the child's own attributes.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr pipe"))?;
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let (ready_tx, ready_rx) = oneshot::channel::<SocketAddr>();
        // The pipe must be drained for the whole run, or a chatty server would block on a
        // full pipe and the benchmark would measure that.
        tokio::spawn(read_log(stderr, log.clone(), ready_tx));
        let local_postgres = is_local_postgres(database_url);
        let mut server =
            Server { child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], 0)), log, local_postgres };
        match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(addr)) => {
                server.addr = addr;
                Ok(server)
            }
            Ok(Err(_)) => bail!("the service exited before listening:\n{}", server.log_tail()),
            Err(_) => bail!("the service did not listen within {START_TIMEOUT:?}:\n{}", server.log_tail()),
        }
    }

    pub fn log_tail(&self) -> String {
        self.log.lock().map(|log| log.tail()).unwrap_or_default()
    }

    /// The service's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    /// Whether the process is still running (it should be, between scenarios).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("the service exited ({status}):\n{}", self.log_tail());
            }
        }
        Ok(())
    }

    /// SIGTERM and wait for a graceful exit; SIGKILL after the timeout.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().ok_or_else(|| anyhow!("already stopped"))?;
        terminate(&child);
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                child.start_kill()?;
                child.wait().await?;
                bail!("the service ignored SIGTERM for {STOP_TIMEOUT:?} and was killed")
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // An error or panic path: stop the service before anything else is cleaned up (its
        // database, for one). Blocking here is fine; the run is over.
        terminate(&child);
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Dropping with `kill_on_drop` sends SIGKILL.
        drop(child);
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's,
        // and it has not been reaped yet (`id()` returns None once it has).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

async fn read_log(stderr: tokio::process::ChildStderr, log: Arc<Mutex<ServerLog>>, ready: oneshot::Sender<SocketAddr>) {
    let mut ready = Some(ready);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = ready.is_some().then(|| listening_addr(&line)).flatten() {
            if let Some(ready) = ready.take() {
                let _ = ready.send(addr);
            }
        }
        if let Ok(mut log) = log.lock() {
            log.push(line);
        }
    }
    // Dropping `ready` unanswered tells `start` that the process ended first.
}

/// The CPU time (user and system, all threads) a process has used so far, from
/// `/proc/<pid>/stat`; `None` where there is no such file.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_of_stat(&stat, clock_ticks_per_second()?)
}

/// The CPU time all processes named `name` have used so far (a PostgreSQL server's
/// postmaster, backends and background writers are all `postgres`); `None` where `/proc` cannot
/// be read. A process that ends meanwhile takes its time with it, so read it over spans in
/// which the processes that matter live throughout (the service's connections do).
pub fn processes_cpu(name: &str) -> Option<Duration> {
    let ticks_per_second = clock_ticks_per_second()?;
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if command_of_stat(&stat) == Some(name) {
            total += cpu_of_stat(&stat, ticks_per_second).unwrap_or_default();
        }
    }
    Some(total)
}

/// The command name of a `/proc/<pid>/stat` line: between the first `(` and the last `)`.
fn command_of_stat(stat: &str) -> Option<&str> {
    let (_, after_open) = stat.split_once('(')?;
    Some(after_open.rsplit_once(')')?.0)
}

/// The units of `/proc/<pid>/stat`'s CPU times.
fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()
}

fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// A URL's authority (`user:password@host:port`): between `://` and the path or query.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Whether a database URL names PostgreSQL on this machine (or its socket, with no host).
fn is_local_postgres(database_url: &str) -> bool {
    let user_and_host = authority(database_url);
    let host_and_port = user_and_host.rsplit_once('@').map_or(user_and_host, |(_, host)| host);
    let host = host_and_port.rsplit_once(':').map_or(host_and_port, |(host, _)| host);
    is_postgres(database_url) && matches!(host, "" | "127.0.0.1" | "localhost" | "[::1]")
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks. The command name in the
/// second field may hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_of_stat(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; the first after the name is field 3.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    (ticks_per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
}

/// The whole machine's CPU time, in clock ticks of all its CPUs: in all, and the part the
/// hypervisor gave to other virtual machines while this one had work (steal). On a shared
/// host, steal takes CPU from whichever scenario runs: a rate, and a ratio to another
/// scenario's rate, mean little for the slices in which it was high.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    pub total: u64,
    pub steal: u64,
}

impl MachineTicks {
    /// The share of the machine's CPU time stolen; `None` when no time passed.
    pub fn steal_share(self) -> Option<f64> {
        (self.total > 0).then(|| self.steal as f64 / self.total as f64)
    }
}

impl std::ops::Add for MachineTicks {
    type Output = MachineTicks;
    fn add(self, other: MachineTicks) -> MachineTicks {
        MachineTicks { total: self.total + other.total, steal: self.steal + other.steal }
    }
}

impl std::ops::Sub for MachineTicks {
    type Output = MachineTicks;
    fn sub(self, earlier: MachineTicks) -> MachineTicks {
        MachineTicks {
            total: self.total.saturating_sub(earlier.total),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// The machine's CPU time so far, from the first line of `/proc/stat`; `None` where there is
/// no such file.
pub fn machine_ticks() -> Option<MachineTicks> {
    machine_ticks_of(std::fs::read_to_string("/proc/stat").ok()?.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: guest time is
/// already counted in user and nice, so the total is the first eight fields.
fn machine_ticks_of(line: &str) -> Option<MachineTicks> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    (ticks.len() == 8).then(|| MachineTicks { total: ticks.iter().sum(), steal: ticks[7] })
}

/// The address in a `listening on http://127.0.0.1:PORT` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    rest.split(|c: char| c.is_whitespace() || c == '"').next()?.parse().ok()
}

/// The service binary: the flag, or `target/release/limitry` in this workspace.
pub fn default_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target/release/limitry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_postgres_on_this_machine_by_its_url() {
        assert!(is_local_postgres("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(is_local_postgres("postgresql://localhost/limitry?sslmode=disable"));
        assert!(is_local_postgres("postgres:///limitry"));
        assert!(!is_local_postgres("postgres://user:pw@db.example.com:5432/limitry"));
        assert!(!is_local_postgres("sqlite:///tmp/limitry.db"));
    }

    #[test]
    fn sums_the_cpu_time_of_processes_by_command_name() {
        assert_eq!(command_of_stat("4242 (post gres) (x)) S 1"), Some("post gres) (x)"));
        let own_name = std::fs::read_to_string("/proc/self/comm").expect("this process's name");
        // Spin until this process has used a clock tick, so that a sum missing it shows.
        let mut own = Duration::ZERO;
        while own.is_zero() {
            std::hint::black_box((0..100_000u64).sum::<u64>());
            own = process_cpu(std::process::id()).expect("this process's own stat file");
        }
        let named = processes_cpu(own_name.trim_end()).expect("/proc is readable");
        // This process is among them, and its time only grows.
        assert!(named >= own, "{named:?} < {own:?}");
        assert_eq!(processes_cpu("no process has this name"), Some(Duration::ZERO));
    }

    #[test]
    fn reads_the_cpu_time_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (limitry (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 7 0 12345";
        assert_eq!(cpu_of_stat(stat, 100), Some(Duration::from_millis(3800)));
        assert_eq!(cpu_of_stat("4242 (limitry) S 1", 100), None);
        let own = process_cpu(std::process::id()).expect("this process's own stat file");
        assert!(own < Duration::from_secs(3600));
    }

    #[test]
    fn reads_the_machine_time_and_its_steal() {
        let line = "cpu  100 5 50 800 10 1 4 30 7 0";
        let ticks = machine_ticks_of(line).expect("a cpu line");
        assert_eq!(ticks, MachineTicks { total: 1000, steal: 30 });
        assert_eq!(ticks.steal_share(), Some(0.03));
        assert_eq!(machine_ticks_of("cpu0 100 5 50 800 10 1 4 30 7 0"), None, "one CPU's line");
        assert_eq!(machine_ticks_of("cpu  100 5 50"), None, "too short");
        let later = MachineTicks { total: 1500, steal: 130 };
        assert_eq!((later - ticks).steal_share(), Some(0.2));
        assert_eq!(MachineTicks::default().steal_share(), None);
        let now = machine_ticks().expect("this machine's /proc/stat");
        assert!(now.total >= now.steal && now.total > 0);
    }

    #[test]
    fn finds_the_listening_address() {
        let line = "2026-01-01T00:00:00.000000Z  INFO limitry::server: listening on http://127.0.0.1:41234 database=\"sqlite\"";
        assert_eq!(listening_addr(line), Some("127.0.0.1:41234".parse().unwrap()));
        assert_eq!(listening_addr("INFO something else"), None);
    }

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgresql://u:p@h/db?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }

    #[test]
    fn counts_warnings_and_errors() {
        let mut log = ServerLog::default();
        log.push("2026-01-01T00:00:00Z  INFO limitry: fine".into());
        log.push("2026-01-01T00:00:00Z  WARN limitry: hmm".into());
        log.push("2026-01-01T00:00:00Z ERROR limitry: bad".into());
        assert_eq!(log.warning_count, 2);
    }
}
