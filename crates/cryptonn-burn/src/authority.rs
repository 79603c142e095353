//! The trusted authority: holds every master secret key and answers key requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cryptonn_fe::febo::Op;
use cryptonn_fe::{Group, KeyId, febo, feip};
use rand::CryptoRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit_log::{AuditLog, Scheme, hash_words};
use crate::{Error, Result};

/// What the server may ask of the authority. The server holds only a
/// `&dyn KeyService`: no path from it leads to a master secret key.
pub trait KeyService<G: Group>: Send + Sync {
    /// FEIP function keys for `ys` under the master key `instance`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::KeyRefused`] by the policy, or a
    /// length mismatch.
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>>;

    /// FEBO keys, one per request, under the FEBO master key `instance`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::KeyRefused`], or an FE error (e.g.
    /// division by zero).
    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>>;
}

/// One FEBO key request: `x op operand` on the ciphertext with commitment `commitment`.
#[derive(Clone, Debug)]
pub struct FeboKeyRequest<G: Group> {
    /// The commitment of the one ciphertext the key will work on.
    pub commitment: G::Element,
    /// The operation.
    pub op: Op,
    /// The plaintext operand.
    pub operand: i64,
}

/// Which side of a batch a FEIP master key encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// One ciphertext per sample (dimension: features). A key for y reveals
    /// ⟨x_b, y⟩ for every sample b: one equation per image.
    Rows,
    /// One ciphertext per feature (dimension: batch). A key for δ reveals
    /// Σ_b δ_b·x_b[i] for every feature i: equations that mix the batch's images.
    Columns,
}

impl core::fmt::Display for Side {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Side::Rows => "row",
            Side::Columns => "column",
        })
    }
}

/// A FEIP master key as a policy sees it: its id, side and dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    /// The key's id.
    pub id: KeyId,
    /// What it encrypts.
    pub side: Side,
    /// Its dimension.
    pub dim: usize,
}

/// Decides which FEIP key vectors the authority may issue.
///
/// The policy sees every vector before its key is derived. Policies are
/// stateful (a rank budget remembers what it has issued), hence `&mut self`.
pub trait KeyPolicy: Send {
    /// Approves (and records) `ys` for master key `key`, or refuses all of them.
    ///
    /// # Errors
    /// [`Error::KeyRefused`] with the reason.
    fn approve(&mut self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()>;

    /// How much of `key`'s budget is spent, for policies that keep one.
    fn budget(&self, _key: &MasterKey) -> Option<Budget> {
        None
    }
}

/// A boxed policy, so that a policy chosen at run time can be handed to
/// [`Authority::new`].
impl<P: KeyPolicy + ?Sized> KeyPolicy for Box<P> {
    fn approve(&mut self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()> {
        (**self).approve(key, ys)
    }

    fn budget(&self, key: &MasterKey) -> Option<Budget> {
        (**self).budget(key)
    }
}

/// The budget of one master key: the rank of the key vectors issued under
/// it, which is the number of independent equations the server holds on
/// every vector encrypted under it, and the most the policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// What the master key encrypts.
    pub side: Side,
    /// Rank of the vectors issued so far.
    pub rank: usize,
    /// The most the policy allows (the side's cap, at most `dim`).
    pub limit: usize,
    /// The dimension of the master key.
    pub dim: usize,
}

impl Budget {
    /// Rank still available.
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.rank)
    }

    /// Whether a request for `vectors` more keys is sure to be granted: it
    /// raises the rank by at most `vectors`, and never beyond `dim`.
    pub fn can_serve(&self, vectors: usize) -> bool {
        self.rank + vectors.min(self.dim.saturating_sub(self.rank)) <= self.limit
    }
}

/// Issues every key asked for: the paper's behaviour, which lets a curious
/// server accumulate keys until the master secret is solvable. See
/// `docs/THREAT_MODEL.md`.
#[derive(Debug, Default, Clone, Copy)]
pub struct IssueAll;

impl KeyPolicy for IssueAll {
    fn approve(&mut self, _: &MasterKey, _: &[Vec<i64>]) -> Result<()> {
        Ok(())
    }
}

/// The public keys a client needs for one batch: a fresh FEIP master key for
/// the rows (dimension `features`), one for the columns (dimension `batch`),
/// and a FEBO key for the labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct BatchPublicKeys<G: Group> {
    /// For the row-wise ciphertexts.
    pub rows: feip::MasterPublicKey<G>,
    /// For the column-wise ciphertexts.
    pub cols: feip::MasterPublicKey<G>,
    /// For the labels.
    pub labels: febo::MasterPublicKey<G>,
}

/// The public keys a client needs to encrypt samples row-wise only (no
/// weight gradient will be asked for, as in projection mode): a fresh FEIP
/// master key for the rows and a FEBO key for the labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RowPublicKeys<G: Group> {
    /// For the row-wise ciphertexts.
    pub rows: feip::MasterPublicKey<G>,
    /// For the labels.
    pub labels: febo::MasterPublicKey<G>,
}

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
