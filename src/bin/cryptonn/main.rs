//! `cryptonn`: FEIP on JSON files (format in `docs/FORMAT.md`).
//!
//! Exit codes: 0 success, 1 bad input (unreadable, malformed or mismatched
//! files, a result outside the bound), 2 bad command line.

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
    /// Authority: generate a master key pair; writes DIR/mpk.json and DIR/msk.json.
    Setup {
        /// Group: ristretto (Ristretto255, 128-bit, default), modp2048 (RFC 3526 group 14,
        /// 112-bit) or modp3072 (RFC 3526 group 15, 128-bit).
        #[arg(long, default_value = "ristretto", value_parser = parse_group)]
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
        #[arg(long, default_value_t = 1 << 31)]
        bound: u64,
    },
}

fn parse_group(s: &str) -> Result<GroupId, String> {
    s.parse().map_err(|e: cryptonn::fe::Error| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
