//! The layout of the authority's state directory, and how its files are written.
//!
//! ```text
//! STATE_DIR/            0700
//!   authority.db        SQLite (WAL): settings, sealed master keys, issued vectors, audit, token hashes
//!   cert.pem            the self-signed TLS certificate clients trust (readable)
//!   key.pem             its private key (0600)
//!   kek                 the key-encryption key, unless it comes from a file elsewhere or $CRYPTONN_KEK (0600)
//!   tokens/NAME.token   one bearer token per file (0600); the database keeps only their SHA-256
//!   serve.lock          locked while a service serves the state (one authority per state)
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{StateError, StateResult};

/// Mode of files only the operator may read.
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Mode of files anyone may read (the certificate).
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// The paths of one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (nothing is read or created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database.
    pub fn db(&self) -> PathBuf {
        self.root.join("authority.db")
    }

    /// The TLS certificate (PEM), the one certificate clients trust.
    pub fn cert(&self) -> PathBuf {
        self.root.join("cert.pem")
    }

    /// The TLS private key (PEM, mode 0600).
    pub fn key(&self) -> PathBuf {
        self.root.join("key.pem")
    }

    /// The generated key-encryption key (mode 0600).
    pub fn kek(&self) -> PathBuf {
        self.root.join("kek")
    }

    /// The directory of token files.
    pub fn tokens(&self) -> PathBuf {
        self.root.join("tokens")
    }

    /// The file of the token named `name` (the first three are named after
    /// their role: `client`, `server`, `operator`).
    pub fn token(&self, name: &str) -> PathBuf {
        self.tokens().join(format!("{name}.token"))
    }
}

/// Creates `path` (mode 0700) or accepts it empty; refuses anything else.
pub(crate) fn create_empty_dir(path: &Path) -> StateResult<()> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StateError::NotEmpty(path.to_path_buf()));
            }
            set_mode(path, 0o700)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private_dir(path),
        Err(e) => Err(StateError::io(path, e)),
    }
}

/// Creates the directory `path` (and its parents), the last one mode 0700.
pub(crate) fn create_private_dir(path: &Path) -> StateResult<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| StateError::io(path, e))
}

fn set_mode(path: &Path, mode: u32) -> StateResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| StateError::io(path, e))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Writes a new file at `path` whole or not at all, refusing to replace one.
///
/// The bytes go to a temporary file beside it, created with `mode` before
/// the first byte and synced; a hard link then gives it its name (which
/// fails if the name is taken), and the directory is synced.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> StateResult<()> {
    let dir = path
        .parent()
        .ok_or_else(|| StateError::io(path, "no parent directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| StateError::io(path, "no file name"))?;
    let mut suffix = [0u8; 8];
    crate::kek::fill_random(&mut suffix)?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        u64::from_le_bytes(suffix)
    ));
    let written = write_synced(&temp, bytes, mode)
        .and_then(|()| std::fs::hard_link(&temp, path).map_err(|e| StateError::io(path, e)));
    // The temporary name goes whatever happened; the file lives on under `path`.
    let removed = std::fs::remove_file(&temp).map_err(|e| StateError::io(&temp, e));
    written?;
    removed?;
    sync_dir(dir)
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> StateResult<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| StateError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StateError::io(path, e))
}

/// Makes a new name in `dir` survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> StateResult<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StateError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Refuses a file that its group or others may read or write.
pub(crate) fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode {mode:04o} lets group or others access it; run `chmod 600 {}`",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh, not yet existing directory under the system's temporary directory.
    pub(crate) fn temp_path(tag: &str) -> PathBuf {
        let mut bytes = [0u8; 8];
        crate::kek::fill_random(&mut bytes).unwrap();
        std::env::temp_dir().join(format!(
            "cryptonn-authority-{tag}-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(bytes)
        ))
    }

    #[test]
    fn new_file_is_private_and_never_replaced() {
        let dir = temp_path("files");
        create_empty_dir(&dir).unwrap();
        let path = dir.join("secret");
        write_new_file(&path, b"one", SECRET_MODE).unwrap();
        assert!(write_new_file(&path, b"two", SECRET_MODE).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let meta = std::fs::metadata(&path).unwrap();
        assert!(check_private(&path, &meta).is_ok());
        // Only the file remains: the temporary names are gone.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(matches!(
            create_empty_dir(&dir),
            Err(StateError::NotEmpty(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
