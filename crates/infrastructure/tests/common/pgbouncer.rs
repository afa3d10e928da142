//! A PgBouncer of the test's own, in transaction mode, on a free loopback
//! port, in front of the test's database: started by [`PgBouncer::start`],
//! stopped when dropped.
//!
//! Needs the `pgbouncer` program (Debian: `apt-get install pgbouncer`;
//! `scripts/test.sh` installs it when it can). Without it (or with
//! `TESSERA_SKIP_PGBOUNCER=1`) a test says it is skipped and passes, unless
//! `TESSERA_REQUIRE_PGBOUNCER=1` (set by `scripts/test.sh`), which makes a
//! missing program fail it instead.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::pg::TestDb;

/// The database name clients give PgBouncer.
const ALIAS: &str = "tessera";

/// A running PgBouncer.
pub(crate) struct PgBouncer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    user: String,
    program: PathBuf,
}

/// Where the `pgbouncer` program is, if installed.
fn program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("pgbouncer"))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (PgBouncer refuses to, unless told
/// which user to become).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgBouncer {
    /// A PgBouncer in transaction mode in front of `db` (every server
    /// connection put on the test's schema by a `connect_query`, since a
    /// pooler passes no `search_path` option through), or `None` (after
    /// saying so) when `pgbouncer` is not installed.
    pub(crate) async fn start(test: &str, db: &TestDb) -> Option<Self> {
        if std::env::var("TESSERA_SKIP_PGBOUNCER").as_deref() == Ok("1") {
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: TESSERA_SKIP_PGBOUNCER=1"
            );
            return None;
        }
        let Some(program) = program() else {
            assert!(
                std::env::var("TESSERA_REQUIRE_PGBOUNCER").as_deref() != Ok("1"),
                "{test}: the `pgbouncer` program is not installed, and TESSERA_REQUIRE_PGBOUNCER=1"
            );
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: the `pgbouncer` program is not installed \
                 (Debian: apt-get install pgbouncer; scripts/test.sh installs it)"
            );
            return None;
        };
        let server = db.options();
        let user = server.get_username().to_owned();
        let dir = std::env::temp_dir().join(format!("tessera-pgbouncer-{}", db.schema()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = format!(
            "{ALIAS} = host={} port={} dbname={} user={user} connect_query='SET search_path TO {}'",
            server.get_host(),
            server.get_port(),
            server.get_database().unwrap_or("postgres"),
            db.schema(),
        );
        std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).unwrap();
        let mut bouncer = Self {
            child: None,
            dir,
            port: free_port(),
            user,
            program,
        };
        let settings = format!(
            "[databases]\n{database}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {}\n\
             pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 100\n\
             ignore_startup_parameters = extra_float_digits\n",
            bouncer.port,
            bouncer.dir.join("users.txt").display(),
        );
        std::fs::write(bouncer.dir.join("pgbouncer.ini"), settings).unwrap();
        bouncer.run().await;
        Some(bouncer)
    }

    /// Starts the process and waits until it accepts connections.
    async fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("pgbouncer.log")).unwrap();
        let mut command = Command::new(&self.program);
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(self.dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not start: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the process (clients lose their connections).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    /// What it logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// Connection options through it: no `search_path` option (PgBouncer
    /// refuses unknown startup options) and no prepared-statement cache
    /// (in transaction mode, a statement prepared on one server connection
    /// is not there on the next; PgBouncer 1.21 and later can track them).
    pub(crate) fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(&self.user)
            .database(ALIAS)
            .statement_cache_capacity(0)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
