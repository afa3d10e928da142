//! `tessera serve`'s forward-auth verdict over loopback, next to
//! `VerifySession` on the same token, in one run: a keep-alive HTTP/1.1
//! connection asks `/verify/nginx` about a request carrying a valid
//! session cookie, as nginx's `auth_request` does.
//!
//! Budget: verdict p50 ≤ VerifySession p50 + 30 µs. The same client asks a
//! bare axum route on the same runtime for a 200 too (the raw work: the
//! loopback round trip, HTTP/1.1 and tokio's wake-ups), so that the
//! verdict's own cost reads as verdict − bare, whatever the machine's
//! loopback latency. Each is timed twice: with a client that sleeps in a
//! blocking read (its own wake-up counts, as for an idle gateway) and with
//! one that stays awake polling (as a busy gateway's worker does: the round
//! trip is then the server's answer and the loopback).
//!
//! ```text
//! cargo bench --bench serve --features server -- --warm-up-time 1 --measurement-time 4
//! ```
//!
//! After criterion's group the bench prints the medians of its own
//! interleaved rounds and the budget check.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // a bench that cannot set up should stop loudly

use std::hint::black_box;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use tessera::application::EstablishRequest;
use tessera::domain::UserId;
use tessera::server::{Server, ServerConfig};
use tessera::{Tessera, UserRole};

const ADMIN: &str = "bench-only-admin-secret-of-32-bytes-or-more";

struct Fixture {
    addr: SocketAddr,
    bare: SocketAddr,
    sessions: Tessera<UserRole>,
    token: String,
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ServerConfig::parse(
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nlog = \"error\"\n[admin]\nsecret = \"{ADMIN}\"\n"
        ),
        |_| None,
    )
    .unwrap();
    let (addr, bare, sessions) = runtime.block_on(async {
        let server = Server::build(&config).await.unwrap();
        let sessions = server.sessions().clone();
        let bound = server.bind().await.unwrap();
        let addr = bound.local_addr().unwrap();
        tokio::spawn(bound.serve(std::future::pending()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/verify/nginx", axum::routing::get(|| async { "" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, bare, sessions)
    });
    // Established in process with the server's own manager: the verdict
    // sees a token it issued (rotation reads no directory for a fresh one).
    let user = UserId::parse("0190b5a4-7c2e-7d3a-9f00-00000000a11c").unwrap();
    let token = sessions
        .establish()
        .execute(EstablishRequest::new(user, UserRole::User))
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    Fixture {
        addr,
        bare,
        sessions,
        token,
        _runtime: runtime,
    }
}

/// How the client waits for an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// A blocking read: the client thread sleeps and is woken, and that
    /// wake-up counts in the round trip.
    Sleeping,
    /// A non-blocking read in a loop: the client stays awake, as a busy
    /// gateway worker does, so the round trip is the server's answer and
    /// the loopback only.
    Awake,
}

/// One keep-alive connection asking for verdicts.
struct Client {
    stream: TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Client {
    fn new(f: &Fixture, addr: SocketAddr, wait: Wait) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_nonblocking(wait == Wait::Awake).unwrap();
        let request = format!(
            "GET /verify/nginx HTTP/1.1\r\nHost: tessera\r\nX-Original-Method: GET\r\n\
             X-Original-URI: /api/orders?page=2\r\nX-Forwarded-Host: shop.example\r\n\
             Cookie: __Host-session={}\r\n\r\n",
            f.token
        )
        .into_bytes();
        Self {
            stream,
            request,
            buffer: vec![0; 16 * 1024],
        }
    }

    /// One verdict; panics unless it is a 200.
    fn verdict(&mut self) {
        self.stream.write_all(&self.request).unwrap();
        let mut read = 0;
        loop {
            let n = match self.stream.read(&mut self.buffer[read..]) {
                Ok(n) => n,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::hint::spin_loop();
                    continue;
                }
                Err(error) => panic!("{error}"),
            };
            assert!(n > 0, "connection closed");
            read += n;
            let head = &self.buffer[..read];
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(
                    head.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(head)
                );
                let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                let length: usize = text
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if read >= end + 4 + length {
                    return;
                }
            }
        }
    }
}

fn bench_verdict(c: &mut Criterion) {
    let f = fixture();
    let mut client = Client::new(&f, f.addr, Wait::Sleeping);
    let mut bare = Client::new(&f, f.bare, Wait::Sleeping);
    let mut awake = Client::new(&f, f.addr, Wait::Awake);
    let mut awake_bare = Client::new(&f, f.bare, Wait::Awake);
    let mut group = c.benchmark_group("serve");
    group.bench_function("verdict over loopback", |b| b.iter(|| client.verdict()));
    group.bench_function("bare axum 200 over loopback", |b| b.iter(|| bare.verdict()));
    group.bench_function("verdict over loopback, client awake", |b| {
        b.iter(|| awake.verdict());
    });
    group.bench_function("bare axum 200 over loopback, client awake", |b| {
        b.iter(|| awake_bare.verdict());
    });
    group.bench_function("VerifySession alone", |b| {
        b.iter(|| black_box(f.sessions.verify().execute(&f.token).unwrap()));
    });
    group.finish();
    // Under `cargo test --benches` (`--test`), criterion runs each bench
    // once; skip the timing loop there too.
    if !std::env::args().any(|arg| arg == "--test") {
        budget(&f, &mut client, &mut bare, "sleeping");
        budget(&f, &mut awake, &mut awake_bare, "awake");
    }
}

/// The median of `samples` timings of `work`.
fn median(samples: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Prints the medians of interleaved rounds and whether the verdict stays
/// within VerifySession + 30 µs, and what it costs over the bare round trip.
fn budget(f: &Fixture, client: &mut Client, bare: &mut Client, wait: &str) {
    let (mut verdicts, mut verifies, mut bares) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        verdicts.push(median(5_000, || client.verdict()));
        bares.push(median(5_000, || bare.verdict()));
        verifies.push(median(5_000, || {
            black_box(f.sessions.verify().execute(&f.token).unwrap());
        }));
    }
    verdicts.sort_unstable();
    verifies.sort_unstable();
    bares.sort_unstable();
    let (verdict, verify, bare) = (verdicts[2], verifies[2], bares[2]);
    let over = verdict.saturating_sub(verify);
    let ratio = over.as_secs_f64() / 30e-6;
    let verdict_s = if ratio <= 1.0 { "holds" } else { "EXCEEDED" };
    println!(
        "\n{wait} client: budget: verdict over loopback p50 {verdict:?} = VerifySession p50 {verify:?} + {over:?} \
         (≤ + 30 µs {verdict_s}: ratio {ratio:.2})\n\
         bare axum 200 over the same loopback p50 {bare:?}: the verdict's own cost {:?} \
         (verdict / bare {:.2})",
        verdict.saturating_sub(bare),
        verdict.as_secs_f64() / bare.as_secs_f64()
    );
}

criterion_group!(benches, bench_verdict);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
