//! `serve`: a thin wrapper around [`tessera::server`].

use tessera::server::{Server, ServerConfig, shutdown_signal};

use crate::args::ServeArgs;
use crate::failure::Failure;

/// Loads the configuration, starts the server, prints where it listens and
/// its endpoints, and serves until SIGTERM or Ctrl-C.
pub(crate) fn run(args: &ServeArgs) -> Result<(), Failure> {
    let mut config = ServerConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .map_err(|error| Failure::caused("config", "invalid configuration", &error))?;
    if let Some(listen) = &args.listen {
        config.server.listen.clone_from(listen);
    }
    init_logs(&config.server.log, &config.server.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::caused("io", "cannot start the runtime", &error))?;
    runtime.block_on(async {
        let fail =
            |error: tessera::server::ServeError| Failure::caused("serve", "tessera serve", &error);
        let bound = Server::build(&config)
            .await
            .map_err(fail)?
            .bind()
            .await
            .map_err(fail)?;
        print!("{}", bound.banner().map_err(fail)?);
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        bound.serve(shutdown_signal()).await.map_err(fail)?;
        println!("tessera serve: shut down");
        Ok(())
    })
}

/// Logs to stderr at `level`, as text or one JSON object per line, without
/// tokens (nothing logs one).
fn init_logs(level: &str, format: &str) -> Result<(), Failure> {
    let level: tracing::Level = level
        .parse()
        .map_err(|_| Failure::usage(format!("server.log: {level:?} is not a log level")))?;
    let logs = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        "text" => logs.init(),
        "json" => logs.json().init(),
        other => {
            return Err(Failure::usage(format!(
                "server.log_format: {other:?} is neither \"text\" nor \"json\""
            )));
        }
    }
    Ok(())
}
