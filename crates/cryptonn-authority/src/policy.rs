//! Key policies that bound what a curious server can learn.
//!
//! A FEIP function key for y under master key s reveals ⟨x, y⟩ for every x
//! encrypted under s. Keys for vectors spanning a space V reveal the
//! projection of every such x onto V, and keys for n independent vectors
//! reveal s itself. [`RankBudget`] therefore tracks, per master key, the
//! exact rank of every vector it has approved, and caps it per side
//! ([`Caps`]): on the row side the rank is the number of independent
//! equations the server holds on *each image*, for the life of its
//! ciphertexts; on the column side, the number of equations mixing the
//! batch's images, for each pixel. It also refuses degenerate vectors, such
//! as a unit vector eᵢ, which hands out xᵢ.
//!
//! # What a cap protects
//! A rank below the dimension stops *linear-algebra-only* recovery and the
//! recovery of the master key. It does not stop recovery under the
//! constraints every image satisfies (integer pixels in [0, 255], sparsity,
//! the statistics of public images): `docs/THREAT_MODEL.md` has the
//! measured attacks for each cap.

use std::collections::HashMap;

use cryptonn_fe::KeyId;
use rand::{CryptoRng, RngExt};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use cryptonn_protocol::{Budget, Error, KeyPolicy, MasterKey, Result, Side};

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

/// The per-image privacy budget in pixel space: how many independent
/// equations each side may reveal per master key.
///
/// Caps are absolute: a cap at or above a side's dimension (e.g. a column
/// cap of 128 on batches of 32) allows full rank, and with it the master key
/// and exact recovery by linear algebra. `cryptonn::mnist` refuses such
/// configurations; the type allows them so an audit can count rank without
/// limiting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Row side: equations per image, for the life of its ciphertexts.
    pub rows: usize,
    /// Column side: equations per pixel mixing the batch's images (0 refuses
    /// every weight-gradient key).
    pub cols: usize,
}

impl Caps {
    /// The caps that leave `margin` dimensions of every master key unknown,
    /// for batches of `batch` samples with `features` features (the old
    /// `--key-margin` knob, as a view of the caps).
    pub fn from_margin(margin: usize, features: usize, batch: usize) -> Self {
        Self {
            rows: features.saturating_sub(margin),
            cols: batch.saturating_sub(margin),
        }
    }

    /// The cap of `side`.
    pub fn of(&self, side: Side) -> usize {
        match side {
            Side::Rows => self.rows,
            Side::Columns => self.cols,
        }
    }
}

/// The rank budget and degenerate-vector filter.
///
/// Ranks are computed modulo a random 62-bit prime chosen by the authority
/// and never shown to the server: a rank mod p never exceeds the rank over
/// the rationals, and vectors crafted to be dependent mod an unknown p are
/// out of the server's reach. The prime is zeroized on drop and left out of
/// `Debug`.
pub struct RankBudget {
    caps: Caps,
    min_support: usize,
    max_share: f64,
    prime: u64,
    bases: HashMap<KeyId, Basis>,
}

impl core::fmt::Debug for RankBudget {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RankBudget")
            .field("caps", &self.caps)
            .field("min_support", &self.min_support)
            .field("max_share", &self.max_share)
            .field("master_keys", &self.bases.len())
            .finish_non_exhaustive()
    }
}

impl Drop for RankBudget {
    fn drop(&mut self) {
        self.prime.zeroize();
    }
}

/// Rows in echelon form: each has a pivot column where it is 1.
#[derive(Debug, Default)]
struct Basis {
    rows: Vec<(usize, Vec<u64>)>,
}

impl RankBudget {
    /// A budget capping each side at `caps`, refusing vectors with fewer
    /// than `min_support` non-zero entries or with one entry above
    /// `max_share` of the ℓ₁ norm.
    pub fn new<R: CryptoRng + ?Sized>(
        caps: Caps,
        min_support: usize,
        max_share: f64,
        rng: &mut R,
    ) -> Self {
        Self {
            caps,
            min_support,
            max_share,
            prime: random_prime(rng),
            bases: HashMap::new(),
        }
    }

    /// A budget with a given prime, as stored with the state, so that
    /// replaying the issued vectors gives exactly the ranks they gave
    /// before. `None` unless `prime` is a prime of 62 bits.
    pub(crate) fn with_prime(
        caps: Caps,
        min_support: usize,
        max_share: f64,
        prime: u64,
    ) -> Option<Self> {
        (prime >> 61 == 1 && is_prime(prime)).then(|| Self {
            caps,
            min_support,
            max_share,
            prime,
            bases: HashMap::new(),
        })
    }

    /// The policy of projection mode: `k` equations per image for life, no
    /// weight-gradient key ever.
    pub fn projection<R: CryptoRng + ?Sized>(k: usize, min_support: usize, rng: &mut R) -> Self {
        Self::new(Caps { rows: k, cols: 0 }, min_support, 1.0, rng)
    }

    /// The caps.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Rank approved so far under `instance`.
    pub fn rank(&self, instance: KeyId) -> usize {
        self.bases.get(&instance).map_or(0, |b| b.rows.len())
    }

    fn degenerate(&self, y: &[i64]) -> Option<String> {
        let support = y.iter().filter(|&&v| v != 0).count();
        if support < self.min_support {
            return Some(format!(
                "vector has {support} non-zero entries, fewer than {}",
                self.min_support
            ));
        }
        let l1: f64 = y.iter().map(|&v| (v as f64).abs()).sum();
        let max = y.iter().map(|&v| (v as f64).abs()).fold(0.0, f64::max);
        (max > self.max_share * l1).then(|| {
            format!(
                "one entry holds {:.0}% of the vector's ℓ₁ norm",
                100.0 * max / l1
            )
        })
    }
}

/// Why a request would take a side beyond its cap.
fn spent(key: &MasterKey, limit: usize, rank: usize, asked: usize) -> Error {
    let what = match key.side {
        Side::Rows => "equations per image",
        Side::Columns => "equations per pixel across the batch",
    };
    let each = match (key.side, key.patches) {
        (Side::Rows, Some(g)) => format!(
            " (each a convolution kernel giving {} equations on every image)",
            g.positions()
        ),
        (Side::Columns, Some(g)) => format!(
            " (each a convolution's error vector giving {} equations on the batch)",
            g.patch_len()
        ),
        (_, None) => String::new(),
    };
    Error::KeyRefused(format!(
        "{} budget of master key {} spent: at most {limit} {what}, {rank} issued, \
         this request of {asked} vectors{each} needs more; rotate to fresh master keys",
        key.side, key.id
    ))
}

impl Basis {
    /// Reduces `y` mod `p` against the basis and `added`: the new row, if
    /// `y` is independent of them.
    fn reduce(&self, added: &[(usize, Vec<u64>)], y: &[i64], p: u64) -> Option<(usize, Vec<u64>)> {
        let mut v: Vec<u64> = y.iter().map(|&e| reduce(e, p)).collect();
        for (pivot, row) in self.rows.iter().chain(added) {
            let f = v[*pivot];
            if f != 0 {
                for (a, &b) in v.iter_mut().zip(row) {
                    *a = sub_mod(*a, mul_mod(f, b, p), p);
                }
            }
        }
        let pivot = v.iter().position(|&e| e != 0)?;
        let inv = pow_mod(v[pivot], p - 2, p);
        v.iter_mut().for_each(|e| *e = mul_mod(*e, inv, p));
        Some((pivot, v))
    }
}

impl KeyPolicy for RankBudget {
    fn approve(&mut self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()> {
        if let Some(y) = ys.iter().find(|y| y.len() != key.request_len()) {
            return Err(cryptonn_fe::Error::LengthMismatch {
                expected: key.request_len(),
                got: y.len(),
            }
            .into());
        }
        if let Some(reason) = ys.iter().find_map(|y| self.degenerate(y)) {
            return Err(Error::KeyRefused(format!(
                "degenerate key vector: {reason}"
            )));
        }
        let limit = self.caps.of(key.side).min(key.dim);
        let p = self.prime;
        let basis = self.bases.entry(key.id).or_default();
        let mut added = Vec::new();
        for equation in key.equations(ys) {
            if let Some(row) = basis.reduce(&added, &equation, p) {
                added.push(row);
            }
            if basis.rows.len() + added.len() > limit {
                return Err(spent(key, limit, basis.rows.len(), ys.len()));
            }
        }
        basis.rows.extend(added);
        Ok(())
    }

    /// Adds `ys` to the basis of `key` without the caps or the degenerate
    /// filter: the keys are already out. Vectors of another length than
    /// [`MasterKey::request_len`] cannot have been issued and are skipped.
    fn restore(&mut self, key: &MasterKey, ys: &[Vec<i64>]) {
        let p = self.prime;
        let basis = self.bases.entry(key.id).or_default();
        let issued: Vec<Vec<i64>> = ys
            .iter()
            .filter(|y| y.len() == key.request_len())
            .cloned()
            .collect();
        for equation in key.equations(&issued) {
            if basis.rows.len() == key.dim {
                break; // full rank: nothing more can be independent
            }
            if let Some(row) = basis.reduce(&[], &equation, p) {
                basis.rows.push(row);
            }
        }
    }

    fn budget(&self, key: &MasterKey) -> Option<Budget> {
        Some(Budget {
            side: key.side,
            rank: self.rank(key.id),
            limit: self.caps.of(key.side).min(key.dim),
            dim: key.dim,
        })
    }
}

fn reduce(v: i64, p: u64) -> u64 {
    (i128::from(v).rem_euclid(i128::from(p))) as u64
}

fn mul_mod(a: u64, b: u64, p: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(p)) as u64
}

fn sub_mod(a: u64, b: u64, p: u64) -> u64 {
    if a >= b { a - b } else { a + p - b }
}

fn pow_mod(mut base: u64, mut exp: u64, p: u64) -> u64 {
    let mut acc = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, p);
        }
        base = mul_mod(base, base, p);
        exp >>= 1;
    }
    acc
}

/// Deterministic Miller–Rabin: these bases decide primality for all n < 2⁶⁴.
fn is_prime(n: u64) -> bool {
    if n < 2 || n.is_multiple_of(2) {
        return n == 2;
    }
    let (mut d, mut s) = (n - 1, 0);
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
        .iter()
        .all(|&a| {
            if a.is_multiple_of(n) {
                return true;
            }
            let mut x = pow_mod(a, d, n);
            if x == 1 || x == n - 1 {
                return true;
            }
            (1..s).any(|_| {
                x = mul_mod(x, x, n);
                x == n - 1
            })
        })
}

pub(crate) fn random_prime<R: CryptoRng + ?Sized>(rng: &mut R) -> u64 {
    loop {
        let candidate = (rng.random::<u64>() >> 2) | (1 << 61) | 1;
        if is_prime(candidate) {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn budget(rows: usize) -> RankBudget {
        let caps = Caps { rows, cols: 0 };
        RankBudget::new(caps, 2, 0.9, &mut StdRng::seed_from_u64(1))
    }

    fn rows(id: KeyId, dim: usize) -> MasterKey {
        MasterKey {
            id,
            side: Side::Rows,
            dim,
            patches: None,
        }
    }

    /// The rows of a batch of images under LeNet-5's first convolution.
    fn lenet_patches(id: KeyId) -> MasterKey {
        let g = cryptonn_protocol::PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]);
        MasterKey {
            patches: Some(g.unwrap()),
            ..rows(id, 784)
        }
    }

    /// A 5×5 kernel of 8-bit digits, as the quantized weights of a trained one.
    fn kernel(seed: u64) -> Vec<i64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..25).map(|_| rng.random_range(-127..=127)).collect()
    }

    #[test]
    fn counts_a_convolution_error_vector_as_one_equation_per_tap() {
        let rng = &mut StdRng::seed_from_u64(9);
        // Two 1×4×4 images, 3×3 kernel: 4 positions, 9 taps, 32 unknowns.
        let g = cryptonn_protocol::PatchGeometry::new([1, 4, 4], [3, 3], [1, 1], [0, 0]);
        let key = MasterKey {
            id: KeyId::random(rng),
            side: Side::Columns,
            dim: 32,
            patches: Some(g.unwrap()),
        };
        assert_eq!((key.request_len(), key.keys_per_request()), (8, 9));
        let delta: Vec<i64> = vec![3, -1, 2, 5, -4, 1, 1, 2];
        let mut b = RankBudget::new(Caps { rows: 0, cols: 9 }, 2, 1.0, rng);
        b.approve(&key, std::slice::from_ref(&delta)).unwrap();
        assert_eq!(b.rank(key.id), 9);
        let Err(Error::KeyRefused(why)) = b.approve(&key, &[vec![1, 2, 3, 4, 5, 6, 7, 9]]) else {
            panic!("a second error vector was issued over a cap of 9");
        };
        assert!(why.contains("9 equations on the batch"), "{why}");
        // A vector of the key's dimension is not a request for it.
        assert!(b.approve(&key, &[vec![1; 32]]).is_err());
    }

    #[test]
    fn counts_a_convolution_kernel_in_pixel_space() {
        let rng = &mut StdRng::seed_from_u64(8);
        let key = lenet_patches(KeyId::random(rng));
        assert_eq!(key.dim, 784);
        // The default cap of 128 refuses LeNet's very first kernel: it is
        // 576 equations on every image.
        let mut b = budget(128);
        let Err(Error::KeyRefused(why)) = b.approve(&key, &[kernel(1)]) else {
            panic!("a convolution kernel was issued under a 128 cap");
        };
        assert!(why.contains("576 equations on every image"), "{why}");
        assert_eq!(b.rank(key.id), 0);
        // Any cap below full rank refuses a forward pass (6 kernels).
        let lenet: Vec<Vec<i64>> = (1..=6).map(kernel).collect();
        let mut b = budget(783);
        assert!(b.approve(&key, &lenet).is_err());
        assert_eq!(b.rank(key.id), 0);
        // At full rank the budget counts them: 576 equations, 752 with a
        // second kernel, all 784 pixels with a third.
        let mut full = budget(784);
        for (k, rank) in lenet.iter().zip([576, 752, 784, 784]) {
            full.approve(&key, std::slice::from_ref(k)).unwrap();
            assert_eq!(full.rank(key.id), rank);
        }
        let spent = full.budget(&key).unwrap();
        assert_eq!((spent.rank, spent.limit, spent.dim), (784, 784, 784));
        // A restart replays the same ranks.
        let mut restored = budget(784);
        restored.prime = full.prime;
        restored.restore(&key, &lenet);
        assert_eq!(restored.rank(key.id), 784);
    }

    #[test]
    fn primes_are_prime() {
        assert!(is_prime(2_305_843_009_213_693_951)); // 2^61 − 1
        assert!(!is_prime(2_305_843_009_213_693_953));
        let p = random_prime(&mut StdRng::seed_from_u64(2));
        assert!(is_prime(p) && p >= 1 << 61);
    }

    #[test]
    fn counts_rank_exactly() {
        let mut b = budget(3);
        let key = rows(KeyId::random(&mut StdRng::seed_from_u64(3)), 4);
        b.approve(
            &key,
            &[vec![1, 1, 0, 0], vec![2, 2, 0, 0], vec![0, 1, 1, 0]],
        )
        .unwrap();
        assert_eq!(b.rank(key.id), 2);
        // A dependent vector costs nothing.
        b.approve(&key, &[vec![1, 2, 1, 0]]).unwrap();
        assert_eq!(b.rank(key.id), 2);
        b.approve(&key, &[vec![0, 0, 1, 1]]).unwrap();
        assert!(matches!(
            b.approve(&key, &[vec![1, 0, 0, 2]]),
            Err(Error::KeyRefused(_))
        ));
        // A refused request leaves the budget untouched.
        assert_eq!(b.rank(key.id), 3);
    }

    #[test]
    fn projection_policy_refuses_the_k_plus_first_row_key_and_every_column_key() {
        let rng = &mut StdRng::seed_from_u64(5);
        let mut b = RankBudget::projection(2, 2, rng);
        let row = rows(KeyId::random(rng), 4);
        let col = MasterKey {
            side: Side::Columns,
            ..rows(KeyId::random(rng), 4)
        };
        b.approve(&row, &[vec![1, 2, 0, 0], vec![0, 0, 3, 1]])
            .unwrap();
        let Err(Error::KeyRefused(why)) = b.approve(&row, &[vec![1, 0, 1, 0]]) else {
            panic!("a third row key was issued");
        };
        assert!(
            why.contains("row budget") && why.contains("at most 2"),
            "{why}"
        );
        let Err(Error::KeyRefused(why)) = b.approve(&col, &[vec![1, 1, 1, 1]]) else {
            panic!("a column key was issued");
        };
        assert!(
            why.contains("column budget") && why.contains("at most 0"),
            "{why}"
        );
        assert_eq!(b.budget(&row).map(|b| (b.rank, b.limit)), Some((2, 2)));
    }

    #[test]
    fn restore_counts_rank_beyond_the_caps() {
        let mut b = budget(2);
        let key = rows(KeyId::random(&mut StdRng::seed_from_u64(6)), 3);
        // Unit vectors, a rank over the cap, a wrong length: restored or skipped, never refused.
        b.restore(
            &key,
            &[vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 1], vec![1, 2]],
        );
        assert_eq!(b.rank(key.id), 3);
        // Caps lowered since: nothing more is issued.
        assert!(b.approve(&key, &[vec![1, 1, 0]]).is_err());

        let mut b = budget(2);
        b.restore(&key, &[vec![1, 0, 0]]);
        b.approve(&key, &[vec![1, 1, 0], vec![2, 1, 0]]).unwrap();
        assert_eq!(b.rank(key.id), 2);
    }

    #[test]
    fn rejects_wrong_length_vector() {
        let mut b = budget(3);
        let key = rows(KeyId::random(&mut StdRng::seed_from_u64(7)), 3);
        assert!(matches!(
            b.approve(&key, &[vec![1, 1, 1], vec![1, 1]]),
            Err(Error::Fe(_))
        ));
        assert_eq!(b.rank(key.id), 0);
    }

    #[test]
    fn with_prime_takes_only_62_bit_primes() {
        let caps = Caps { rows: 1, cols: 1 };
        // 2^61 + 15 is prime, 2^61 + 17 is not, and 2^61 − 1 has 61 bits.
        assert!(RankBudget::with_prime(caps, 0, 1.0, 2_305_843_009_213_693_967).is_some());
        assert!(RankBudget::with_prime(caps, 0, 1.0, 2_305_843_009_213_693_969).is_none());
        assert!(RankBudget::with_prime(caps, 0, 1.0, 2_305_843_009_213_693_951).is_none());
        assert!(RankBudget::with_prime(caps, 0, 1.0, 7).is_none());
    }

    #[test]
    fn margin_is_a_view_of_the_caps() {
        assert_eq!(
            Caps::from_margin(128, 784, 256),
            Caps {
                rows: 656,
                cols: 128
            }
        );
        assert_eq!(Caps::from_margin(300, 784, 256).cols, 0);
    }

    #[test]
    fn debug_hides_the_prime() {
        let b = budget(1);
        assert!(!format!("{b:?}").contains(&b.prime.to_string()));
    }

    #[test]
    fn rejects_degenerate_vectors() {
        let mut b = budget(3);
        let key = rows(KeyId::random(&mut StdRng::seed_from_u64(4)), 3);
        assert!(b.approve(&key, &[vec![0, 5, 0]]).is_err(), "unit vector");
        assert!(b.approve(&key, &[vec![100, 1, 1]]).is_err(), "dominated");
        assert!(b.approve(&key, &[vec![3, 2, 1]]).is_ok());
    }
}
