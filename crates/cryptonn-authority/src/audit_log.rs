//! The authority's append-only log of issued function keys.
//!
//! One JSON object per line and per key: who asked, when, under which master
//! key, a SHA-256 of the key vector (not the vector: the log must not become
//! a second copy of what the server learned) and the rank of everything
//! issued under that master key once the request was granted. A key is
//! handed out only after its record is written and flushed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use cryptonn_protocol::audit::AuditRecord;
use cryptonn_protocol::{Error, Result};

/// Where the records go: any writer, typically a file opened for appending.
pub struct AuditLog {
    sink: Box<dyn Write + Send>,
}

impl core::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A log writing JSON lines to `sink`.
    pub fn new(sink: impl Write + Send + 'static) -> Self {
        Self {
            sink: Box::new(sink),
        }
    }

    /// A log appending to the file at `path`, created if missing. Earlier
    /// records are never rewritten.
    ///
    /// # Errors
    /// [`Error::AuditLog`] if the file cannot be opened.
    pub fn append_to(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::AuditLog(format!("{}: {e}", path.display())))?;
        Ok(Self::new(file))
    }

    /// Writes and flushes `records`.
    pub(crate) fn write(&mut self, records: &[AuditRecord]) -> Result<()> {
        let mut text = String::new();
        for record in records {
            let line = serde_json::to_string(record).map_err(|e| Error::AuditLog(e.to_string()))?;
            text.push_str(&line);
            text.push('\n');
        }
        self.sink
            .write_all(text.as_bytes())
            .and_then(|()| self.sink.flush())
            .map_err(|e| Error::AuditLog(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use cryptonn_fe::Ristretto255;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::{Authority, Caps, RankBudget};
    use cryptonn_protocol::KeyService;
    use cryptonn_protocol::audit::Scheme;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A sink that always fails.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn records_requester_hash_and_rank() {
        let mut rng = StdRng::seed_from_u64(5);
        let sink = Shared::default();
        let policy = RankBudget::new(Caps::from_margin(1, 4, 2), 2, 1.0, &mut rng);
        let authority = Arc::new(
            Authority::<Ristretto255>::new(policy).with_audit_log(AuditLog::new(sink.clone())),
        );
        let keys = authority.batch_keys(4, 2, &mut rng).unwrap();
        let server = authority.requester("server-1");
        let ys = vec![vec![1, 2, 0, 0], vec![2, 4, 0, 0], vec![0, 1, 1, 0]];
        server.feip_keys(keys.rows.id(), &ys).unwrap();
        assert_eq!(server.budget(keys.rows.id()).unwrap().remaining(), 1);

        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let records: Vec<AuditRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.requester == "server-1"
            && r.scheme == Scheme::Feip
            && r.master_key == keys.rows.id()
            && r.rank_after == Some(2)));
        assert_eq!(records[0].vector_sha256.len(), 64);
        assert_ne!(records[0].vector_sha256, records[1].vector_sha256);
        // The log holds hashes, never the vectors.
        assert!(!text.contains("[1,2,0,0]"));
    }

    #[test]
    fn no_key_without_a_record() {
        let mut rng = StdRng::seed_from_u64(6);
        let authority =
            Authority::<Ristretto255>::new(crate::IssueAll).with_audit_log(AuditLog::new(Broken));
        let keys = authority.batch_keys(3, 2, &mut rng).unwrap();
        let err = authority
            .feip_keys(keys.rows.id(), &[vec![1, 1, 1]])
            .unwrap_err();
        assert!(matches!(err, Error::AuditLog(_)), "{err}");
        assert_eq!(authority.keys_issued(), 0);
    }
}
