//! Budgets: what a key policy sees of a master key, and how much of it is spent.

use std::borrow::Cow;

use cryptonn_fe::KeyId;
use serde::{Deserialize, Serialize};

use crate::{PatchGeometry, Result};

/// Which side of a batch a FEIP master key encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// One ciphertext per sample (dimension: features). A key for y reveals
    /// ⟨x_b, y⟩ for every sample b: one equation per image.
    Rows,
    /// One ciphertext per feature (dimension: batch). A key for δ reveals
    /// Σ_b δ_b·x_b,i for every feature i: equations that mix the batch's images.
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

/// A FEIP master key as a policy sees it: its id, side and dimension, and
/// for the images of a convolution, its geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    /// The key's id.
    pub id: KeyId,
    /// What it encrypts.
    pub side: Side,
    /// Its dimension.
    pub dim: usize,
    /// The ciphertexts are images of this geometry under a convolution: one
    /// per image on the row side (`dim` = pixels), one for the whole batch
    /// on the column side (`dim` = images·pixels). A request then names a
    /// kernel (rows) or an error vector (columns), and gives one key per
    /// [`MasterKey::equations`] vector.
    pub patches: Option<PatchGeometry>,
}

impl MasterKey {
    /// The length of each vector a key request names: the kernel's
    /// `patch_len` on a convolution's rows, `images·positions` errors on its
    /// columns, otherwise `dim`.
    pub fn request_len(&self) -> usize {
        match (self.side, &self.patches) {
            (Side::Rows, Some(g)) => g.patch_len(),
            (Side::Columns, Some(g)) => self.dim / g.pixels() * g.positions(),
            (_, None) => self.dim,
        }
    }

    /// The vectors (of `dim` entries) whose keys a request for `ys` gives,
    /// which are the equations the server gets on what is encrypted under
    /// this key: `ys` themselves, or for a convolution, every `E_p·y`
    /// ([`PatchGeometry::pixel_vectors`]) on the rows and every `G_j·δ`
    /// ([`PatchGeometry::gradient_vectors`]) on the columns. Lazy, so a
    /// budget can stop at the first equation too many.
    pub fn equations<'a>(
        &'a self,
        ys: &'a [Vec<i64>],
    ) -> Box<dyn Iterator<Item = Cow<'a, [i64]>> + 'a> {
        match (self.side, &self.patches) {
            (Side::Rows, Some(g)) => Box::new(g.pixel_vectors(ys).map(Cow::Owned)),
            (Side::Columns, Some(g)) => Box::new(
                g.gradient_vectors(ys, self.dim / g.pixels())
                    .map(Cow::Owned),
            ),
            (_, None) => Box::new(ys.iter().map(|y| Cow::Borrowed(&y[..]))),
        }
    }

    /// Keys (and equations) one requested vector gives.
    pub fn keys_per_request(&self) -> usize {
        match (self.side, &self.patches) {
            (Side::Rows, Some(g)) => g.positions(),
            (Side::Columns, Some(g)) => g.patch_len(),
            (_, None) => 1,
        }
    }
}

/// Decides which FEIP key vectors the authority may issue.
///
/// The policy sees every vector before its key is derived. Policies are
/// stateful (a rank budget remembers what it has issued), hence `&mut self`.
pub trait KeyPolicy: Send {
    /// Approves (and records) `ys` for master key `key`, or refuses all of them.
    ///
    /// # Errors
    /// [`Error::KeyRefused`](crate::Error::KeyRefused) with the reason.
    fn approve(&mut self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()>;

    /// Re-records `ys`, issued under `key` before a restart, without
    /// checking them against the policy: the keys are already out. A policy
    /// whose limits were lowered since simply issues nothing more.
    fn restore(&mut self, key: &MasterKey, ys: &[Vec<i64>]) {
        // A policy without state has nothing to restore; one that refuses
        // now would have refused before, so ignoring the result is safe.
        let _ = self.approve(key, ys);
    }

    /// How much of `key`'s budget is spent, for policies that keep one.
    fn budget(&self, _key: &MasterKey) -> Option<Budget> {
        None
    }
}

/// A boxed policy, so that a policy chosen at run time can be handed to
/// `Authority::new`.
impl<P: KeyPolicy + ?Sized> KeyPolicy for Box<P> {
    fn approve(&mut self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()> {
        (**self).approve(key, ys)
    }

    fn restore(&mut self, key: &MasterKey, ys: &[Vec<i64>]) {
        (**self).restore(key, ys);
    }

    fn budget(&self, key: &MasterKey) -> Option<Budget> {
        (**self).budget(key)
    }
}

/// Which key policy an authority's state runs, chosen once at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PolicyKind {
    /// A rank budget per master key (caps, minimum support, maximum
    /// share): the default.
    #[default]
    #[serde(rename = "budget")]
    RankBudget,
    /// Every key asked for is issued, as in the paper: nothing is counted
    /// or refused, so a server may gather keys until it solves every value
    /// (and the master key). It protects nothing; only for measuring that.
    IssueAll,
}

impl PolicyKind {
    /// The wire and command-line name: `budget` or `issue-all`.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::RankBudget => "budget",
            PolicyKind::IssueAll => "issue-all",
        }
    }
}

impl core::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for PolicyKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        [PolicyKind::RankBudget, PolicyKind::IssueAll]
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                crate::Error::Transport(format!("unknown policy {s:?} (budget or issue-all)"))
            })
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
    /// The most the policy allows: the side's cap, at most `dim` − 1 under a
    /// rank budget (full rank would solve every value), `dim` when every key
    /// is issued.
    pub limit: usize,
    /// The master key's dimension: the unknowns its equations are on.
    pub dim: usize,
}

impl Budget {
    /// Rank still available.
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.rank)
    }

    /// Whether a request giving `equations` more equations
    /// ([`MasterKey::keys_per_request`] per vector) is sure to
    /// be granted: it raises the rank by at most that, and never beyond `dim`.
    pub fn can_serve(&self, equations: usize) -> bool {
        self.rank + equations.min(self.dim.saturating_sub(self.rank)) <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_kinds_have_one_name_on_the_wire_and_the_command_line() {
        for kind in [PolicyKind::RankBudget, PolicyKind::IssueAll] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(kind.name().parse::<PolicyKind>().unwrap(), kind);
        }
        assert_eq!(PolicyKind::default(), PolicyKind::RankBudget);
        assert!("issue_all".parse::<PolicyKind>().is_err());
        assert!(serde_json::from_str::<PolicyKind>("\"rank-budget\"").is_err());
    }
}
