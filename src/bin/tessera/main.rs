//! `tessera`: the operations CLI for tessera session tokens.
//!
//! - `keygen`: a new signing key as a private JWK, and the JWK set verifiers
//!   load;
//! - `mint`: a session token exactly as `EstablishSession` issues it;
//! - `inspect`: a token's header and claims, decoded WITHOUT verifying;
//! - `verify`: the library's verdict on a token, and when it is refused, the
//!   rule that failed in words and as the stable code of
//!   `VerifyError::code`;
//! - `serve` (feature `server`): tessera as a service, [`tessera::server`].
//!
//! `mint` and `verify` wire a [`tessera::Tessera`] with the library's codec
//! and use cases, with the clock pinned to one instant, so their verdicts
//! are the library's verdicts. Exit codes: 0 success, 1 the token was
//! rejected (`verify` only), 2 bad usage, unreadable input or keys, or any
//! other failure. `--json` turns every output, errors included, into one
//! JSON document on stdout.

mod args;
mod failure;
mod files;
mod inspect;
mod keygen;
mod mint;
mod output;
#[cfg(feature = "server")]
mod serve;
mod times;
mod verify;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};
use crate::failure::Failure;
use crate::output::Output;

fn main() -> ExitCode {
    // Known before parsing, so that even a usage error can be JSON.
    let json = std::env::args_os().any(|arg| arg == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error, json),
    };
    let output = Output::new(cli.json);
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(&args, &output),
        Command::Mint(args) => mint::run(&args, &output),
        Command::Inspect(args) => inspect::run(&args, &output),
        Command::Verify(args) => verify::run(&args, &output),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => output.failure(&failure),
    }
}

/// `--help` and `--version` print and succeed; anything else is a usage
/// error (exit 2).
fn usage(error: &clap::Error, json: bool) -> ExitCode {
    if error.exit_code() == 0 {
        // Help or version. A closed stdout is no failure.
        let _ = error.print();
        ExitCode::SUCCESS
    } else if json {
        let text = error.render().to_string();
        let text = text.trim_end();
        Output::new(true).failure(&Failure::usage(
            text.strip_prefix("error: ").unwrap_or(text),
        ))
    } else {
        let _ = error.print();
        ExitCode::from(failure::USAGE)
    }
}
