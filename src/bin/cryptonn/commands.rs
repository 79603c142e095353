//! The subcommands, generic over the group named in the key files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptonn::fe::feip::{
    self, Ciphertext, Decryptor, FunctionKey, MasterPublicKey, MasterSecretKey,
};
use cryptonn::fe::{DlogConfig, DlogTable, Group, GroupId, Modp2048, Modp3072, Ristretto255};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Command;

/// Files larger than this are refused before they are read.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// What can go wrong, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file is too large to be one of ours.
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// A file is not the expected JSON.
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    /// The FE layer refused the inputs.
    #[error("{0}")]
    Fe(#[from] cryptonn::fe::Error),
}

type Result<T> = std::result::Result<T, CliError>;

fn read(path: &Path) -> Result<String> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    if fs::metadata(path).map_err(io)?.len() > MAX_FILE_BYTES {
        return Err(CliError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    fs::read_to_string(path).map_err(io)
}

fn parse<T: DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_str(&read(path)?).map_err(|e| CliError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    // Our types serialize to plain strings and numbers; this cannot fail.
    write(
        path,
        &serde_json::to_string_pretty(value).unwrap_or_default(),
    )
}

/// Reads only the `"group"` field, to pick the generic instantiation.
fn group_of(path: &Path) -> Result<GroupId> {
    #[derive(Deserialize)]
    struct Tagged {
        group: GroupId,
    }
    parse::<Tagged>(path).map(|t| t.group)
}

/// Runs one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Setup { group, dim, out } => dispatch(group, |g| g.setup(dim, &out)),
        Command::Encrypt { mpk, input, out } => {
            dispatch(group_of(&mpk)?, |g| g.encrypt(&mpk, &input, &out))
        }
        Command::DeriveKey { msk, vector, out } => {
            dispatch(group_of(&msk)?, |g| g.derive_key(&msk, &vector, &out))
        }
        Command::Decrypt {
            mpk,
            key,
            ct,
            bound,
        } => {
            let value = dispatch(group_of(&mpk)?, |g| g.decrypt(&mpk, &key, &ct, bound))?;
            println!("{value}");
            Ok(())
        }
        // The parties' commands are dispatched by `main`.
        Command::Authority { .. } | Command::Client { .. } => Ok(()),
    }
}

/// The subcommands for one group.
trait Commands {
    fn setup(&self, dim: usize, out: &Path) -> Result<()>;
    fn encrypt(&self, mpk: &Path, input: &Path, out: &Path) -> Result<()>;
    fn derive_key(&self, msk: &Path, vector: &Path, out: &Path) -> Result<()>;
    fn decrypt(&self, mpk: &Path, key: &Path, ct: &Path, bound: u64) -> Result<i64>;
}

struct In<G>(G);

fn dispatch<T>(group: GroupId, f: impl FnOnce(&dyn Commands) -> Result<T>) -> Result<T> {
    match group {
        GroupId::Ristretto255 => f(&In(Ristretto255)),
        GroupId::Modp2048 => f(&In(Modp2048::default())),
        GroupId::Modp3072 => f(&In(Modp3072::default())),
    }
}

impl<G: Group> Commands for In<G> {
    fn setup(&self, dim: usize, out: &Path) -> Result<()> {
        let (msk, mpk) = feip::setup::<G, _>(dim, &mut rand::rng())?;
        fs::create_dir_all(out).map_err(|source| CliError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        write_json(&out.join("mpk.json"), &mpk)?;
        write_secret(&out.join("msk.json"), &msk.to_json_exposing_secret())
    }

    fn encrypt(&self, mpk: &Path, input: &Path, out: &Path) -> Result<()> {
        let mpk: MasterPublicKey<G> = parse(mpk)?;
        let x: Vec<i64> = parse(input)?;
        write_json(out, &feip::encrypt(&mpk, &x, &mut rand::rng())?)
    }

    fn derive_key(&self, msk: &Path, vector: &Path, out: &Path) -> Result<()> {
        let msk =
            MasterSecretKey::<G>::from_json(&zeroize::Zeroizing::new(read(msk)?)).map_err(|e| {
                CliError::Malformed {
                    path: msk.to_path_buf(),
                    message: e.to_string(),
                }
            })?;
        let y: Vec<i64> = parse(vector)?;
        write_json(out, &feip::derive_key(&msk, &y)?)
    }

    fn decrypt(&self, mpk: &Path, key: &Path, ct: &Path, bound: u64) -> Result<i64> {
        let mpk: MasterPublicKey<G> = parse(mpk)?;
        let key: FunctionKey<G> = parse(key)?;
        let ct: Ciphertext<G> = parse(ct)?;
        if key.id() != mpk.id() || ct.id() != mpk.id() {
            return Err(cryptonn::fe::Error::KeyMismatch(
                "key, ciphertext and public key name different master keys",
            )
            .into());
        }
        let table = DlogTable::<G>::new(DlogConfig::new(bound.clamp(1, 1 << 16), bound))?;
        Ok(Decryptor::new(Arc::new(table)).decrypt(&key, &ct)?)
    }
}

/// Writes a file readable by its owner only (on Unix), created that way so
/// the secret is never briefly world-readable.
fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io)
}
