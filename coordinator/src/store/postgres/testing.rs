//! A throwaway PostgreSQL server for tests: Debian's binaries, a cluster made with `initdb` in a
//! temporary directory, served on a free loopback port, stopped and removed when the last test
//! using it drops its handle (unwinding from a failed test drops it too).
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
//! and its programs run through `runuser`; as anyone else they run as that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

/// A running server; stopped and removed on drop.
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The address it listens on (loopback, or a lab host's).
    host: String,
}

/// A fresh database on a shared server; the server lives while any of these does.
#[derive(Debug)]
pub struct TestDb {
    /// Connection string for the database.
    pub url: String,
    _server: Arc<PgServer>,
}

/// `/usr/lib/postgresql/<newest>/bin`, or `$CONCUR_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONCUR_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: apt-get install postgresql (or set CONCUR_PG_BIN)")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let version = path.file_name()?.to_str()?.parse().ok()?;
            let bin = path.join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb: apt-get install postgresql")
        .1
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A server program, run as the cluster's owner (in network namespace `netns`, if given).
fn as_owner_in(netns: Option<&str>, program: &Path) -> Command {
    if let Some(netns) = netns {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, "runuser", "-u", "postgres", "--"]);
        command.arg(program);
        return command;
    }
    as_owner(program)
}

/// A server program, run as the cluster's owner.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The numeric id of the `postgres` user and group.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a `postgres` user (Debian's postgresql package creates it)")
    };
    (id("-u"), id("-g"))
}

impl PgServer {
    /// The server shared by the tests running now, started if none is.
    pub fn shared() -> Arc<Self> {
        static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(Self::start(None, "127.0.0.1"));
        *shared = Arc::downgrade(&server);
        server
    }

    /// A server of its own listening on `host` inside network namespace `netns` (a lab host;
    /// root only), for tests that cut hosts off.
    pub fn start_in(netns: &str, host: &str) -> Arc<Self> {
        Arc::new(Self::start(Some(netns), host))
    }

    fn start(netns: Option<&str>, host: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("concur-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let bin = bin_dir();
        let data = dir.join("data");
        let mut initdb = as_owner(&bin.join("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C", "-D"])
            .arg(&data);
        run(initdb, "initdb");
        if host != "127.0.0.1" {
            // initdb lets in loopback clients only; a lab's hosts are on the server's subnet.
            use std::io::Write;
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("pg_hba.conf"))
                .expect("pg_hba.conf");
            writeln!(hba, "host all all samenet trust").expect("pg_hba.conf");
        }
        // The port is free when chosen; if another process takes it first, start fails loudly.
        let port = free_port();
        let server = Self {
            dir,
            bin,
            port,
            host: host.to_string(),
        };
        let options = format!(
            "-c listen_addresses={host} -p {port} -k {}",
            server.dir.display()
        );
        let mut start = as_owner_in(netns, &server.bin.join("pg_ctl"));
        start
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(server.dir.join("log"))
            .args(["-o", &options, "start"]);
        run(start, "pg_ctl start");
        server
    }

    /// A new, empty database on this server.
    pub fn database(self: &Arc<Self>) -> TestDb {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "concur_test_{}",
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut create = Command::new(self.bin.join("createdb"));
        // Through the socket directory: it reaches a server in any network namespace.
        create
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres"])
            .arg(&name);
        run(create, "createdb");
        TestDb {
            url: format!("postgres://postgres@{}:{}/{name}", self.host, self.port),
            _server: self.clone(),
        }
    }
}

/// A fresh database on the shared server.
pub fn database() -> TestDb {
    PgServer::shared().database()
}

#[cfg(test)]
/// A store on a fresh database for the shared suite in `store::tests`, its reader, and the
/// database handle that keeps the server up.
pub(crate) fn suite_store() -> (
    Box<dyn crate::store::StoreWrite>,
    Box<dyn crate::store::StoreRead>,
    Box<dyn std::any::Any>,
) {
    let db = database();
    let store = super::Postgres::open(&db.url, None).unwrap();
    let reader = store.reader();
    (Box::new(store), Box::new(reader), Box::new(db))
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = as_owner(&self.bin.join("pg_ctl"));
        stop.args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop");
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
