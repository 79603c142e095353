//! `cryptonn`: the three parties as commands (`authority`, `client`; the
//! trainer is `examples/mnist_secure`), and FEIP on JSON files (format in
//! `docs/FORMAT.md`).
//!
//! Exit codes: 0 success, 1 bad input (unreadable, malformed or mismatched
//! files, a result outside the bound), 2 bad command line. Every error is one
//! line on stderr, starting with `error: `.

mod authority_cmd;
mod client_cmd;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cryptonn::fe::GroupId;

/// Inner-product functional encryption (FEIP) on files.
///
/// The authority runs `setup` and `derive-key`, a client runs `encrypt`, and
/// the server runs `decrypt`, which reveals only ⟨x, y⟩.
#[derive(Debug, Parser)]
#[command(name = "cryptonn", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The trusted authority as an HTTPS service: init its state, serve it, add tokens.
    Authority {
        #[command(subcommand)]
        command: authority_cmd::AuthorityCommand,
    },
    /// A data owner: encrypt images to batch files under the authority's public keys.
    Client {
        #[command(subcommand)]
        command: client_cmd::ClientCommand,
    },
    /// Authority: generate a master key pair; writes DIR/mpk.json and DIR/msk.json.
    Setup {
        /// Group: ristretto (Ristretto255, 128-bit, default), modp2048 (RFC 3526 group 14,
        /// 112-bit) or modp3072 (RFC 3526 group 15, 128-bit).
        #[arg(long, value_enum, default_value = "ristretto255")]
        group: GroupId,
        /// Length n of the vectors to encrypt (1 to 1048576).
        #[arg(long)]
        dim: usize,
        /// Directory to write the keys to (created if missing). msk.json is the
        /// master secret: keep it with the authority.
        #[arg(long)]
        out: PathBuf,
    },
    /// Client: encrypt a JSON array of integers under the master public key.
    Encrypt {
        /// The master public key (mpk.json from `setup`).
        #[arg(long)]
        mpk: PathBuf,
        /// The vector x: a JSON array of n integers.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the ciphertext.
        #[arg(long)]
        out: PathBuf,
    },
    /// Authority: derive the function key for a vector y.
    DeriveKey {
        /// The master secret key (msk.json from `setup`).
        #[arg(long)]
        msk: PathBuf,
        /// The vector y: a JSON array of n integers.
        #[arg(long)]
        vector: PathBuf,
        /// Where to write the function key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Server: print ⟨x, y⟩ from a ciphertext of x and a function key for y.
    Decrypt {
        /// The master public key the ciphertext and key belong to.
        #[arg(long)]
        mpk: PathBuf,
        /// The function key (from `derive-key`).
        #[arg(long)]
        key: PathBuf,
        /// The ciphertext (from `encrypt`).
        #[arg(long)]
        ct: PathBuf,
        /// Search |⟨x, y⟩| ≤ BOUND (1 to 2^62). Larger bounds take longer only
        /// when the result is large or out of bound.
        #[arg(long, default_value_t = 1 << 31, value_parser = clap::value_parser!(u64).range(1..=MAX_BOUND))]
        bound: u64,
    },
}

/// The largest bound a discrete-log table accepts (see `DlogTable::new`).
const MAX_BOUND: u64 = 1 << 62;

/// clap's message without the usage and tip paragraphs, on one line: the
/// first paragraph, which already starts with `error: `.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    first.join(" ")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: clap prints them to stdout and exits with 0.
        Err(e) if !e.use_stderr() => e.exit(),
        // No arguments at all: clap would print the whole help to stderr.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("error: a subcommand is required; see `cryptonn --help`");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let done = match cli.command {
        Command::Authority { command } => authority_cmd::run(command),
        Command::Client { command } => client_cmd::run(command),
        other => commands::run(other).map_err(|e| e.to_string()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cryptonn").chain(args.iter().copied()))
    }

    fn decrypt_with_bound(bound: &str) -> Result<Cli, clap::Error> {
        parse(&[
            "decrypt", "--mpk", "m", "--key", "k", "--ct", "c", "--bound", bound,
        ])
    }

    #[test]
    fn bound_range_is_1_to_2_pow_62() {
        assert!(decrypt_with_bound("1").is_ok());
        assert!(decrypt_with_bound(&MAX_BOUND.to_string()).is_ok());
        for bad in ["0", "4611686018427387905", "-1", "x"] {
            assert!(decrypt_with_bound(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bound_zero_in_one_line() {
        let Err(e) = decrypt_with_bound("0") else {
            panic!("--bound 0 was accepted");
        };
        let line = one_line(&e);
        assert!(
            line.starts_with("error: ") && !line.contains('\n'),
            "{line}"
        );
        assert!(line.contains("--bound"), "{line}");
    }

    #[test]
    fn missing_arguments_in_one_line() {
        let Err(e) = parse(&["setup", "--dim", "4"]) else {
            panic!("setup without --out was accepted");
        };
        let line = one_line(&e);
        assert!(
            line.starts_with("error: ") && line.contains("--out"),
            "{line}"
        );
    }
}
