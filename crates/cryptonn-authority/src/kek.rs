//! The key-encryption key (KEK) and the sealing of master secret keys.
//!
//! The operator holds the KEK: a file only they may read, or the
//! environment variable `CRYPTONN_KEK`. It is never stored by the
//! authority. Argon2id stretches it, with a random salt kept in the
//! database, into the 256-bit key of XChaCha20-Poly1305, which seals every
//! master secret key (a random 192-bit nonce per value; the associated data
//! names the value, so a sealed key moved to another row fails to open).
//! A sealed check value in the database makes a wrong KEK a clear error when
//! the state is opened, not a failure on the first key.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::TryRng;
use zeroize::Zeroizing;

use crate::error::{StateError, StateResult};
use crate::state_dir::{StateDir, check_private};

/// The environment variable that may hold the KEK.
pub const KEK_ENV: &str = "CRYPTONN_KEK";

/// The shortest KEK accepted, in bytes of text.
pub const MIN_KEK_BYTES: usize = 16;

/// What the check value seals, under [`CHECK_AAD`].
const CHECK_PLAINTEXT: &[u8] = b"cryptonn-authority: the KEK opens this state";
const CHECK_AAD: &[u8] = b"cryptonn-authority/kek-check/v1";

/// Fills `out` from the operating system's generator.
///
/// # Errors
/// [`StateError::Service`] if the generator fails (never silently).
pub(crate) fn fill_random(out: &mut [u8]) -> StateResult<()> {
    rand::rngs::SysRng
        .try_fill_bytes(out)
        .map_err(|e| StateError::Service(format!("the system's random generator failed: {e}")))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key-encryption key: text the operator keeps (a generated KEK is 32
/// random bytes in hex). Zeroized on drop; `Debug` is redacted.
pub struct Kek {
    secret: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Kek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Kek")
    }
}

impl Kek {
    /// The KEK whose text is `text`, without surrounding whitespace (a
    /// trailing newline in a file is not part of it).
    ///
    /// # Errors
    /// [`StateError::KekFile`] naming `origin` if fewer than
    /// [`MIN_KEK_BYTES`] bytes remain.
    pub fn from_text(text: &[u8], origin: &Path) -> StateResult<Self> {
        let trimmed = text.trim_ascii();
        if trimmed.len() < MIN_KEK_BYTES {
            return Err(StateError::KekFile {
                path: origin.to_path_buf(),
                reason: format!(
                    "{} bytes; a KEK needs at least {MIN_KEK_BYTES}",
                    trimmed.len()
                ),
            });
        }
        Ok(Self {
            secret: Zeroizing::new(trimmed.to_vec()),
        })
    }

    /// Reads the KEK from `path`, which only its owner may access (mode 0600).
    ///
    /// # Errors
    /// [`StateError::KekFile`] for a missing or unreadable file, one that
    /// group or others may access, or a KEK that is too short.
    pub fn from_file(path: &Path) -> StateResult<Self> {
        let refuse = |reason: String| StateError::KekFile {
            path: path.to_path_buf(),
            reason,
        };
        let metadata = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
        check_private(path, &metadata).map_err(refuse)?;
        let text = Zeroizing::new(std::fs::read(path).map_err(|e| refuse(e.to_string()))?);
        Self::from_text(&text, path)
    }

    /// The KEK in `$CRYPTONN_KEK`, if the variable is set.
    ///
    /// # Errors
    /// [`StateError::KekFile`] if it is set but not UTF-8 or too short.
    pub fn from_env() -> StateResult<Option<Self>> {
        let origin = PathBuf::from(format!("${KEK_ENV}"));
        match std::env::var(KEK_ENV) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                Self::from_text(text.as_bytes(), &origin).map(Some)
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(StateError::KekFile {
                path: origin,
                reason: e.to_string(),
            }),
        }
    }

    /// A fresh KEK: 32 bytes from the system's generator, as hex text.
    ///
    /// # Errors
    /// [`StateError::Service`] if the generator fails.
    pub fn generate() -> StateResult<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(&mut *bytes)?;
        Ok(Self {
            secret: Zeroizing::new(hex(&*bytes).into_bytes()),
        })
    }

    /// The text, for writing the KEK file.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.secret
    }
}

/// Where `init` takes the KEK from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KekSource {
    /// Generate one and write it to `STATE_DIR/kek` (mode 0600).
    #[default]
    Generate,
    /// The operator's file (mode 0600), recorded so `serve` finds it again.
    File(PathBuf),
    /// `$CRYPTONN_KEK`, which `serve` must then be given too.
    Env,
}

/// Where a state's KEK lives, as recorded at init. `$CRYPTONN_KEK`, when
/// set, is used instead by `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekLocation {
    /// `STATE_DIR/kek`, generated at init (the state directory may move).
    StateDir,
    /// The operator's file (mode 0600), by its absolute path.
    File(PathBuf),
    /// The environment variable `CRYPTONN_KEK`.
    Env,
}

impl KekLocation {
    /// Reads the KEK of the state in `state_dir`: `$CRYPTONN_KEK` if set,
    /// else the recorded file.
    ///
    /// # Errors
    /// [`StateError::NoKek`] if the state was initialized from the
    /// environment and the variable is unset, and the errors of
    /// [`Kek::from_file`] and [`Kek::from_env`].
    pub fn load(&self, state_dir: &StateDir) -> StateResult<Kek> {
        if let Some(kek) = Kek::from_env()? {
            return Ok(kek);
        }
        match self {
            KekLocation::StateDir => Kek::from_file(&state_dir.kek()),
            KekLocation::File(path) => Kek::from_file(path),
            KekLocation::Env => Err(StateError::NoKek(format!(
                "this state was initialized with ${KEK_ENV}; set it again"
            ))),
        }
    }
}

/// The Argon2id parameters and salt that turn the KEK into the sealing key.
/// Not secret; kept in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfParams {
    /// 16 random bytes.
    pub salt: [u8; 16],
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// A fresh salt with Argon2's recommended costs (19 MiB, 2 passes, 1
    /// lane: about 50 ms, paid once when the state is opened).
    ///
    /// # Errors
    /// [`StateError::Service`] if the system's generator fails.
    pub fn generate() -> StateResult<Self> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        Ok(Self {
            salt,
            m_kib: argon2::Params::DEFAULT_M_COST,
            t: argon2::Params::DEFAULT_T_COST,
            p: argon2::Params::DEFAULT_P_COST,
        })
    }
}

/// A value sealed with XChaCha20-Poly1305: its nonce and ciphertext (with tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The random 192-bit nonce.
    pub nonce: [u8; 24],
    /// The ciphertext and its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// The sealing key derived from the KEK. Its cipher zeroizes the key on drop.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// Derives the sealing key of `kek` under `kdf`.
    ///
    /// # Errors
    /// [`StateError::Corrupt`] for parameters Argon2 refuses.
    pub fn derive(kek: &Kek, kdf: &KdfParams) -> StateResult<Self> {
        let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
            .map_err(|e| StateError::Corrupt(format!("Argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(kek.as_bytes(), &kdf.salt, &mut *key)
            .map_err(|e| StateError::Corrupt(format!("Argon2: {e}")))?;
        let cipher = XChaCha20Poly1305::new_from_slice(&*key)
            .map_err(|_| StateError::Corrupt("sealing key length".into()))?;
        Ok(Self { cipher })
    }

    /// Derives the sealing key and checks it against the state's check value.
    ///
    /// # Errors
    /// [`StateError::WrongKek`] if `check` does not open, and the errors of
    /// [`Sealer::derive`].
    pub fn unlock(kek: &Kek, kdf: &KdfParams, check: &Sealed) -> StateResult<Self> {
        let sealer = Self::derive(kek, kdf)?;
        match sealer.open(check, CHECK_AAD) {
            Ok(text) if text.as_slice() == CHECK_PLAINTEXT => Ok(sealer),
            _ => Err(StateError::WrongKek),
        }
    }

    /// The value whose opening proves the KEK right, for a new state.
    ///
    /// # Errors
    /// As [`Sealer::seal`].
    pub fn check_value(&self) -> StateResult<Sealed> {
        self.seal(CHECK_PLAINTEXT, CHECK_AAD)
    }

    /// Seals `plaintext`, bound to `aad`, under a fresh random nonce.
    ///
    /// # Errors
    /// [`StateError::Service`] if the system's generator fails.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> StateResult<Sealed> {
        let mut nonce = [0u8; 24];
        fill_random(&mut nonce)?;
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| StateError::Service("sealing failed".into()))?;
        Ok(Sealed { nonce, ciphertext })
    }

    /// Opens `sealed`, which must have been sealed with `aad`.
    ///
    /// # Errors
    /// [`StateError::Corrupt`] if the tag does not verify: a wrong key, a
    /// modified value, or a value moved from another row.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> StateResult<Zeroizing<Vec<u8>>> {
        self.cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| StateError::Corrupt("a sealed value fails to authenticate".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dir::tests::temp_path;
    use crate::state_dir::{SECRET_MODE, create_private_dir, write_new_file};

    fn fast_kdf() -> KdfParams {
        KdfParams {
            m_kib: 64,
            t: 1,
            ..KdfParams::generate().unwrap()
        }
    }

    #[test]
    fn seals_and_opens_bound_to_its_aad() {
        let sealer = Sealer::derive(&Kek::generate().unwrap(), &fast_kdf()).unwrap();
        let sealed = sealer.seal(b"secret scalars", b"row 1").unwrap();
        assert_eq!(
            sealer.open(&sealed, b"row 1").unwrap().as_slice(),
            b"secret scalars"
        );
        assert!(matches!(
            sealer.open(&sealed, b"row 2"),
            Err(StateError::Corrupt(_))
        ));
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(sealer.open(&flipped, b"row 1").is_err());
        // A fresh nonce every time.
        assert_ne!(
            sealer.seal(b"x", b"a").unwrap().nonce,
            sealer.seal(b"x", b"a").unwrap().nonce
        );
    }

    #[test]
    fn rejects_wrong_kek() {
        let kdf = fast_kdf();
        let right = Kek::generate().unwrap();
        let check = Sealer::derive(&right, &kdf).unwrap().check_value().unwrap();
        assert!(Sealer::unlock(&right, &kdf, &check).is_ok());
        let wrong = Kek::generate().unwrap();
        assert!(matches!(
            Sealer::unlock(&wrong, &kdf, &check),
            Err(StateError::WrongKek)
        ));
    }

    #[test]
    fn rejects_kek_file_readable_by_others() {
        let dir = temp_path("kek");
        create_private_dir(&dir).unwrap();
        let path = dir.join("kek");
        write_new_file(&path, b"0123456789abcdef0123456789abcdef\n", 0o644).unwrap();
        let Err(StateError::KekFile { reason, .. }) = Kek::from_file(&path) else {
            panic!("a KEK file of mode 0644 was accepted");
        };
        assert!(reason.contains("0644"), "{reason}");
        let private = dir.join("kek-private");
        write_new_file(&private, b"0123456789abcdef0123456789abcdef\n", SECRET_MODE).unwrap();
        let kek = Kek::from_file(&private).unwrap();
        // The trailing newline is not part of the key.
        assert_eq!(kek.as_bytes(), b"0123456789abcdef0123456789abcdef");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_short_kek() {
        assert!(matches!(
            Kek::from_text(b"  short \n", Path::new("x")),
            Err(StateError::KekFile { .. })
        ));
    }

    #[test]
    fn debug_hides_the_kek() {
        let kek = Kek::generate().unwrap();
        let text = String::from_utf8(kek.as_bytes().to_vec()).unwrap();
        assert_eq!(text.len(), 64);
        assert!(!format!("{kek:?}").contains(&text));
    }
}
