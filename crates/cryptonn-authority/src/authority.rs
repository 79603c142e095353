//! The trusted authority: holds every master secret key and answers key requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cryptonn_fe::{Group, KeyId, febo, feip};
use cryptonn_protocol::audit::{Scheme, hash_words};
use cryptonn_protocol::{
    BatchPublicKeys, Budget, Error, FeboKeyRequest, KeyPolicy, KeyService, MasterKey, Result,
    RowPublicKeys, Side,
};
use rand::CryptoRng;
use rayon::prelude::*;

use crate::audit_log::AuditLog;

struct State<G: Group> {
    feip: HashMap<KeyId, (Side, feip::MasterSecretKey<G>)>,
    febo: HashMap<KeyId, febo::MasterSecretKey<G>>,
    policy: Box<dyn KeyPolicy>,
    issued: u64,
    log: Option<AuditLog>,
}

/// The authority. Master secret keys never leave it; it is `Sync`, so one
/// instance serves the clients and the server at once.
pub struct Authority<G: Group> {
    state: Mutex<State<G>>,
}

impl<G: Group> core::fmt::Debug for Authority<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authority")
            .field("group", &G::ID)
            .finish_non_exhaustive()
    }
}

impl<G: Group> Authority<G> {
    /// An authority applying `policy` to every FEIP key request.
    pub fn new(policy: impl KeyPolicy + 'static) -> Self {
        Self {
            state: Mutex::new(State {
                feip: HashMap::new(),
                febo: HashMap::new(),
                policy: Box::new(policy),
                issued: 0,
                log: None,
            }),
        }
    }

    /// Records every issued key in `log` from now on (see [`AuditLog`]).
    #[must_use]
    pub fn with_audit_log(self, log: AuditLog) -> Self {
        self.lock().log = Some(log);
        self
    }

    /// A key service that names its requests `requester` in the audit log.
    pub fn requester(self: &Arc<Self>, requester: &str) -> Requester<G> {
        Requester {
            authority: self.clone(),
            name: requester.into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<G>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // (inserts are single calls), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fresh master keys for one batch of `batch` samples with `features` features.
    ///
    /// # Errors
    /// An FE error for a zero or oversized dimension.
    pub fn batch_keys<R: CryptoRng + ?Sized>(
        &self,
        features: usize,
        batch: usize,
        rng: &mut R,
    ) -> Result<BatchPublicKeys<G>> {
        let (row_msk, rows) = feip::setup::<G, _>(features, rng)?;
        let (col_msk, cols) = feip::setup::<G, _>(batch, rng)?;
        let (label_msk, labels) = febo::setup::<G, _>(rng);
        let mut state = self.lock();
        state.feip.insert(row_msk.id(), (Side::Rows, row_msk));
        state.feip.insert(col_msk.id(), (Side::Columns, col_msk));
        state.febo.insert(label_msk.id(), label_msk);
        Ok(BatchPublicKeys { rows, cols, labels })
    }

    /// Fresh master keys for samples of `features` features encrypted
    /// row-wise only, and their labels.
    ///
    /// # Errors
    /// An FE error for a zero or oversized dimension.
    pub fn row_keys<R: CryptoRng + ?Sized>(
        &self,
        features: usize,
        rng: &mut R,
    ) -> Result<RowPublicKeys<G>> {
        let (row_msk, rows) = feip::setup::<G, _>(features, rng)?;
        let (label_msk, labels) = febo::setup::<G, _>(rng);
        let mut state = self.lock();
        state.feip.insert(row_msk.id(), (Side::Rows, row_msk));
        state.febo.insert(label_msk.id(), label_msk);
        Ok(RowPublicKeys { rows, labels })
    }

    /// How many function keys (FEIP and FEBO) have been issued.
    pub fn keys_issued(&self) -> u64 {
        self.lock().issued
    }

    /// The budget of FEIP master key `instance`, if the policy keeps one.
    pub fn budget(&self, instance: KeyId) -> Option<Budget> {
        let state = self.lock();
        let (side, msk) = state.feip.get(&instance)?;
        state.policy.budget(&MasterKey {
            id: instance,
            side: *side,
            dim: msk.dim(),
        })
    }

    fn issue_feip(
        &self,
        requester: &str,
        instance: KeyId,
        ys: &[Vec<i64>],
    ) -> Result<Vec<feip::FunctionKey<G>>> {
        let mut state = self.lock();
        let state = &mut *state;
        let (side, msk) = state
            .feip
            .get(&instance)
            .ok_or(Error::UnknownKey(instance))?;
        let master = MasterKey {
            id: instance,
            side: *side,
            dim: msk.dim(),
        };
        for y in ys {
            if y.len() != msk.dim() {
                return Err(cryptonn_fe::Error::LengthMismatch {
                    expected: msk.dim(),
                    got: y.len(),
                }
                .into());
            }
        }
        state.policy.approve(&master, ys)?;
        let keys = ys
            .par_iter()
            .map(|y| feip::derive_key(msk, y))
            .collect::<cryptonn_fe::Result<Vec<_>>>()?;
        let rank_after = state.policy.budget(&master).map(|b| b.rank);
        if let Some(log) = &mut state.log {
            let hashes = ys.iter().map(|y| hash_words(b"feip", y));
            log.record(requester, Scheme::Feip, instance, rank_after, hashes)?;
        }
        state.issued += keys.len() as u64;
        Ok(keys)
    }

    fn issue_febo(
        &self,
        requester: &str,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>> {
        let mut state = self.lock();
        let state = &mut *state;
        let msk = state
            .febo
            .get(&instance)
            .ok_or(Error::UnknownKey(instance))?;
        let keys = requests
            .par_iter()
            .map(|r| febo::derive_key(msk, &r.commitment, r.op, r.operand))
            .collect::<cryptonn_fe::Result<Vec<_>>>()?;
        if let Some(log) = &mut state.log {
            let hashes = requests.iter().map(|r| {
                let mut prefix = format!("febo {:?} ", r.op).into_bytes();
                prefix.extend(G::element_to_bytes(&r.commitment));
                hash_words(&prefix, &[r.operand])
            });
            log.record(requester, Scheme::Febo, instance, None, hashes)?;
        }
        state.issued += keys.len() as u64;
        Ok(keys)
    }
}

/// Requests from unnamed callers are logged as `"unnamed"`.
impl<G: Group> KeyService<G> for Authority<G> {
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>> {
        self.issue_feip("unnamed", instance, ys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>> {
        self.issue_febo("unnamed", instance, requests)
    }
}

/// A named handle on the authority: what a server holds to ask for keys.
/// It reaches only [`KeyService`], never a master secret key.
#[derive(Debug, Clone)]
pub struct Requester<G: Group> {
    authority: Arc<Authority<G>>,
    name: Arc<str>,
}

impl<G: Group> Requester<G> {
    /// The budget of FEIP master key `instance`, if the policy keeps one.
    pub fn budget(&self, instance: KeyId) -> Option<Budget> {
        self.authority.budget(instance)
    }
}

impl<G: Group> KeyService<G> for Requester<G> {
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>> {
        self.authority.issue_feip(&self.name, instance, ys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>> {
        self.authority.issue_febo(&self.name, instance, requests)
    }
}
