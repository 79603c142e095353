//! `cryptonn authority …`: create the authority's state, serve it over
//! HTTPS, and hand out tokens (`cryptonn_authority::service`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use cryptonn::authority::service::{self, InitOptions, InitReport};
use cryptonn::authority::{Caps, KekLocation, KekSource, PolicyKind, StateDir, kek::KEK_ENV};
use cryptonn::fe::GroupId;
use cryptonn::protocol::wire::Role;

/// The authority as a service: a state directory (keys sealed under a
/// key-encryption key, budgets, audit, token hashes) served over HTTPS.
#[derive(Debug, Subcommand)]
pub enum AuthorityCommand {
    /// Create a new state directory (database, TLS certificate, KEK, tokens).
    ///
    /// Writes the database, a self-signed TLS certificate for localhost and
    /// 127.0.0.1, the key-encryption key (KEK) unless you give one, and one
    /// bearer token per role (client, server, operator) in
    /// STATE/tokens/ROLE.token.
    Init {
        /// The state directory: new or empty; created with mode 0700.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Group of every key, fixed for the life of the state: ristretto255
        /// (128-bit), modp2048 (RFC 3526 group 14, 112-bit) or modp3072 (RFC
        /// 3526 group 15, 128-bit).
        #[arg(long, value_enum, default_value = "ristretto255")]
        group: GroupId,
        /// Key policy, fixed for the life of the state. budget: a rank
        /// budget per master key (the caps and minimum support below).
        /// issue-all: the paper's policy, every function key asked for is
        /// issued and the caps are ignored. It gives everything away: a
        /// server that asks for as many independent keys as a master key
        /// has dimensions solves every image and gradient encrypted under
        /// it, and the master secret key itself. Only for measuring that.
        #[arg(long, default_value = "budget", value_parser = parse_policy, value_name = "POLICY")]
        policy: PolicyKind,
        /// Row-side rank cap: independent equations each image may reveal,
        /// per row master key, for the life of its ciphertexts.
        #[arg(long, default_value_t = 128, value_name = "N")]
        row_cap: usize,
        /// Column-side rank cap: weight-gradient equations per pixel mixing
        /// a batch's images, per column master key (0 refuses them all).
        #[arg(long, default_value_t = 128, value_name = "N")]
        col_cap: usize,
        /// Fewest non-zero entries a key vector must have; sparser vectors
        /// (e.g. a unit vector, which reveals one pixel) are refused.
        #[arg(long, default_value_t = 8, value_name = "N")]
        min_support: usize,
        /// A file holding the KEK (at least 16 bytes of text; mode 0600, or
        /// it is refused). Without it, $CRYPTONN_KEK if set, else a new
        /// random KEK in STATE/kek (mode 0600). Master secret keys are
        /// sealed under it; without it the state cannot be opened.
        #[arg(long, value_name = "FILE")]
        kek_file: Option<PathBuf>,
    },
    /// Serve the state over HTTPS until Ctrl-C or SIGTERM.
    ///
    /// The KEK is read from $CRYPTONN_KEK if set, else from the file
    /// recorded at init.
    Serve {
        /// The state directory (made by `init`).
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Address and port to listen on (port 0: any free port). The
        /// certificate names only localhost and 127.0.0.1.
        #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
        listen: SocketAddr,
    },
    /// Add a bearer token and print the path of its file.
    ///
    /// The file has mode 0600; the database keeps only the token's SHA-256.
    /// A running service accepts the token at once.
    Token {
        /// The state directory (made by `init`).
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// What the token may do: client (fetch public keys), server (ask
        /// for function keys, read budgets) or operator (read budgets and
        /// the audit log).
        #[arg(long, value_enum)]
        role: Role,
        /// The requester's name, written in the audit log and used as the
        /// file name STATE/tokens/NAME.token: 1 to 64 of A-Z a-z 0-9 . _ -,
        /// not starting with '.'.
        #[arg(long)]
        name: String,
    },
}

fn parse_policy(s: &str) -> Result<PolicyKind, String> {
    s.parse()
        .map_err(|_| "a policy is budget or issue-all".to_owned())
}

/// Runs one `authority` subcommand; the error is one line.
///
/// # Errors
/// The service's error, as text.
pub fn run(command: AuthorityCommand) -> Result<(), String> {
    match command {
        AuthorityCommand::Init {
            state,
            group,
            policy,
            row_cap,
            col_cap,
            min_support,
            kek_file,
        } => {
            let kek = match kek_file {
                Some(path) => KekSource::File(path),
                None if std::env::var_os(KEK_ENV).is_some() => KekSource::Env,
                None => KekSource::Generate,
            };
            let caps = Caps {
                rows: row_cap,
                cols: col_cap,
            };
            let options = InitOptions::new(group, caps, min_support)
                .with_policy(policy)
                .with_kek(kek);
            let report = service::init(&state, &options).map_err(|e| e.to_string())?;
            print_init(&report, &options);
            Ok(())
        }
        AuthorityCommand::Serve { state, listen } => {
            service::serve_blocking(&state, listen).map_err(|e| e.to_string())
        }
        AuthorityCommand::Token { state, role, name } => {
            let path = service::add_token(&state, role, &name).map_err(|e| e.to_string())?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

fn print_init(report: &InitReport, options: &InitOptions) {
    let dir = &report.state_dir;
    let policy = match options.policy {
        PolicyKind::IssueAll => {
            "policy issue-all: every key is issued, nothing is protected".to_owned()
        }
        _ => format!(
            "caps: {} equations per image, {} per pixel; minimum support {}",
            options.caps.rows, options.caps.cols, options.min_support
        ),
    };
    println!(
        "initialized {} (group {}; {policy})",
        dir.display(),
        options.group
    );
    println!(
        "certificate (clients and servers trust it): {}",
        report.cert.display()
    );
    let kek = match &report.kek {
        KekLocation::StateDir => StateDir::new(dir).kek().display().to_string(),
        KekLocation::File(path) => path.display().to_string(),
        KekLocation::Env => format!("${KEK_ENV}"),
    };
    println!(
        "key-encryption key: {kek} (keep a copy apart from the state; without it the keys are lost)"
    );
    for (role, path) in &report.tokens {
        println!("{} token: {}", role.name(), path.display());
    }
    println!(
        "serve it: cryptonn authority serve --state {}",
        shell_path(dir)
    );
}

/// The path as typed: quoted if it holds a space.
fn shell_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains(' ') {
        format!("'{text}'")
    } else {
        text
    }
}
