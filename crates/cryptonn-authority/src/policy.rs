//! Key policies that bound what a curious server can learn.
//!
//! A FEIP function key for y under master key s reveals ⟨x, y⟩ for every x
//! encrypted under s. Keys for vectors spanning a space V reveal the
//! projection of every such x onto V, and keys for n independent vectors
//! reveal s itself. [`RankBudget`] therefore tracks, per master key, the
//! exact rank of every vector it has approved, and caps it per side
//! ([`Caps`]), always below the key's dimension: on the row side the rank
//! is the number of independent equations the server holds on *each
//! image*, for the life of its ciphertexts; on the column side, the number
//! of equations mixing the batch's images, for each pixel. It also refuses
//! degenerate vectors, such as a unit vector eᵢ, which hands out xᵢ, among
//! the vectors a key request really reveals ([`MasterKey::equations`]): for
//! a convolution, a dense kernel at a padded corner can be one.
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

/// Issues every key, as [`IssueAll`] does, and counts their rank, which
/// [`IssueAll`] cannot report: for audits that measure the paper's leakage
/// up to full rank (`leakage_audit`), where [`RankBudget`] would stop one
/// below it. It refuses nothing.
#[derive(Debug)]
pub struct IssueAllCounted {
    counter: RankBudget,
}

impl IssueAllCounted {
    /// A counter with its own random prime.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            counter: RankBudget::new(Caps { rows: 0, cols: 0 }, 0, 1.0, rng),
        }
    }
}

impl KeyPolicy for IssueAllCounted {
    fn approve(&mut self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()> {
        // Counting without a check is exactly what `restore` does.
        self.counter.restore(key, ys);
        Ok(())
    }

    fn restore(&mut self, key: &MasterKey, ys: &[Vec<i64>]) {
        self.counter.restore(key, ys);
    }

    fn budget(&self, key: &MasterKey) -> Option<Budget> {
        Some(Budget {
            side: key.side,
            rank: self.counter.rank(key.id),
            limit: key.dim,
            dim: key.dim,
        })
    }
}

/// The per-image privacy budget in pixel space: how many independent
/// equations each side may reveal per master key.
///
/// Caps are absolute, and [`RankBudget`] holds every master key one below
/// its dimension whatever they are: a cap at or above a side's dimension
/// (e.g. a column cap of 128 on batches of 32) allows rank `dim − 1`, never
/// the full rank that gives the master key and every value by linear
/// algebra. One unknown short of that is still little privacy under the
/// box constraint, so `cryptonn::mnist` refuses such configurations.
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
/// A master key's rank never reaches its dimension ([`RankBudget::limit`]),
/// and every vector a request reveals in the key's space (for a
/// convolution, each kernel at each position and each error vector at each
/// tap) must pass the support and dominance rules, or the whole request is
/// refused.
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
    /// A budget capping each side at `caps` (and below each key's
    /// dimension), refusing requests that reveal a vector with fewer than
    /// `min_support` non-zero entries or with one entry above `max_share` of
    /// the ℓ₁ norm.
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

    /// The most rank `key` may reach: its side's cap, and at most one below
    /// its dimension, since keys of full rank solve for every value (and the
    /// master key) whatever the caps. Dimension 0 or 1: nothing. A
    /// convolution batch's column key is also held below what would, with
    /// its row key at its limit, solve the batch ([`Self::joint_bound`]).
    pub fn limit(&self, key: &MasterKey) -> usize {
        let own = self.caps.of(key.side).min(key.dim.saturating_sub(1));
        self.joint_bound(key).map_or(own, |joint| own.min(joint))
    }

    /// For a convolution's column key (B images of n pixels): its equations
    /// act on the same B·n pixels as the row key's, which give up to
    /// r = min(row cap, n − 1) per image. Together they solve the batch at
    /// B·r + c = B·n, so c stays at most B·(n − r) − 1. (For an MLP's keys
    /// the shortfall is (n − r)(B − c) ≥ 1 already.)
    fn joint_bound(&self, key: &MasterKey) -> Option<usize> {
        let g = key.patches.filter(|_| key.side == Side::Columns)?;
        let n = g.pixels();
        let images = key.dim / n.max(1);
        let rows = self.caps.rows.min(n.saturating_sub(1));
        Some((images * (n - rows)).saturating_sub(1))
    }

    /// Why `v` is degenerate, if it is.
    fn degenerate(&self, v: &[i64]) -> Option<String> {
        let support = v.iter().filter(|&&e| e != 0).count();
        if support < self.min_support {
            let entries = if support == 1 { "entry" } else { "entries" };
            return Some(format!(
                "has {support} non-zero {entries}, fewer than {}",
                self.min_support
            ));
        }
        let l1: f64 = v.iter().map(|&e| (e as f64).abs()).sum();
        let max = v.iter().map(|&e| (e as f64).abs()).fold(0.0, f64::max);
        (max > self.max_share * l1).then(|| {
            format!(
                "has one entry holding {:.0}% of its ℓ₁ norm, more than {:.0}%",
                100.0 * max / l1,
                100.0 * self.max_share
            )
        })
    }

    /// Refuses `ys` if any vector their keys reveal is degenerate. The rules
    /// apply to `key.equations(ys)`, not to `ys`: a dense kernel over a
    /// padded border reveals a few pixels, or a single one.
    fn check_support(&self, key: &MasterKey, ys: &[Vec<i64>]) -> Result<()> {
        let (mut total, mut count, mut first) = (0, 0, None);
        for (index, v) in key.equations(ys).enumerate() {
            total += 1;
            if let Some(reason) = self.degenerate(&v) {
                count += 1;
                first.get_or_insert((index, reason));
            }
        }
        let Some((index, reason)) = first else {
            return Ok(());
        };
        let what = match key.patches {
            Some(_) => "pixel-space vectors",
            None => "vectors",
        };
        Err(Error::KeyRefused(format!(
            "degenerate key vectors ({count} of the {total} {what} this request would reveal); \
             the first, {}, {reason}",
            locate(key, index)
        )))
    }
}

/// Where equation `index` of a request under `key` comes from: the
/// requested vector, and for a convolution its position or tap.
fn locate(key: &MasterKey, index: usize) -> String {
    let (vector, at) = (
        index / key.keys_per_request(),
        index % key.keys_per_request(),
    );
    match (key.side, key.patches) {
        (Side::Rows, Some(g)) => {
            let width = g.output()[1];
            format!(
                "kernel {vector} at position {at} (output row {}, column {})",
                at / width,
                at % width
            )
        }
        (Side::Columns, Some(_)) => format!("error vector {vector} at tap {at}"),
        (_, None) => format!("vector {vector}"),
    }
}

/// Why a request would take a side beyond its limit (`cap`, or one below
/// the key's dimension).
fn spent(key: &MasterKey, cap: usize, limit: usize, rank: usize, asked: usize) -> Error {
    let what = match key.side {
        Side::Rows => "equations per image",
        Side::Columns => "equations per pixel across the batch",
    };
    let below = if limit + 1 == key.dim && limit < cap {
        format!(
            " (one below the key's dimension {}: full rank would solve every value)",
            key.dim
        )
    } else if limit < cap {
        " (with the row key's equations on the same pixels, more would solve the batch)".into()
    } else {
        String::new()
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
        "{} budget of master key {} spent: at most {limit} {what}{below}, {rank} issued, \
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
        self.check_support(key, ys)?;
        let (cap, limit) = (self.caps.of(key.side), self.limit(key));
        let p = self.prime;
        let basis = self.bases.entry(key.id).or_default();
        let mut added = Vec::new();
        for equation in key.equations(ys) {
            if let Some(row) = basis.reduce(&added, &equation, p) {
                added.push(row);
            }
            if basis.rows.len() + added.len() > limit {
                return Err(spent(key, cap, limit, basis.rows.len(), ys.len()));
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
            limit: self.limit(key),
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
    fn a_convolution_batch_never_reaches_full_rank_with_both_keys() {
        // One 28×28 image: a kernel gives 576 row equations; with 208 more
        // on the same 784 pixels from error vectors the image is solved.
        let rng = &mut StdRng::seed_from_u64(11);
        let g = cryptonn_protocol::PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]).unwrap();
        let cols = MasterKey {
            id: KeyId::random(rng),
            side: Side::Columns,
            dim: 784,
            patches: Some(g),
        };
        let b = RankBudget::new(
            Caps {
                rows: 600,
                cols: 300,
            },
            1,
            1.0,
            rng,
        );
        assert_eq!(b.limit(&lenet_patches(KeyId::random(rng))), 600);
        // 600 + c < 784.
        assert_eq!(b.limit(&cols), 183);
        assert_eq!(b.budget(&cols).map(|b| b.limit), Some(183));
        // Two images: 2·(784 − 600) − 1.
        let two = MasterKey {
            dim: 2 * 784,
            ..cols
        };
        assert_eq!(b.limit(&two), 300); // the cap, below 2·(784 − 600) − 1 = 367
        // An MLP's column key keeps the cap: (n − r)(B − c) ≥ 1 already.
        let mlp = MasterKey {
            patches: None,
            ..cols
        };
        assert_eq!(b.limit(&mlp), 300);
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
        // Any cap refuses a forward pass (6 kernels): it has full rank.
        let lenet: Vec<Vec<i64>> = (1..=6).map(kernel).collect();
        let mut b = budget(usize::MAX);
        assert!(b.approve(&key, &lenet).is_err());
        assert_eq!(b.rank(key.id), 0);
        // Kernel by kernel: 576 equations, 752 with a second kernel; a
        // third would give all 784 pixels, one more than the limit.
        for (k, rank) in lenet.iter().zip([576, 752]) {
            b.approve(&key, std::slice::from_ref(k)).unwrap();
            assert_eq!(b.rank(key.id), rank);
        }
        let Err(Error::KeyRefused(why)) = b.approve(&key, &lenet[2..3]) else {
            panic!("a kernel took the rank to 784");
        };
        assert!(
            why.contains("at most 783") && why.contains("dimension 784"),
            "{why}"
        );
        let spent = b.budget(&key).unwrap();
        assert_eq!((spent.rank, spent.limit, spent.dim), (752, 783, 784));
        // A restart replays what was issued, even beyond today's limit.
        let mut restored = budget(128);
        restored.prime = b.prime;
        restored.restore(&key, &lenet);
        assert_eq!(restored.rank(key.id), 784);
    }

    /// The issue's example: 1×6×6 images, a 3×3 kernel, padding 2.
    fn padded(side: Side, dim: usize, padding: usize) -> MasterKey {
        let g = cryptonn_protocol::PatchGeometry::new([1, 6, 6], [3, 3], [1, 1], [padding; 2]);
        MasterKey {
            id: KeyId::random(&mut StdRng::seed_from_u64(20)),
            side,
            dim,
            patches: Some(g.unwrap()),
        }
    }

    fn service_budget() -> RankBudget {
        let caps = Caps {
            rows: 128,
            cols: 128,
        };
        RankBudget::new(caps, 8, 1.0, &mut StdRng::seed_from_u64(21))
    }

    #[test]
    fn refuses_a_padded_kernel_whose_pixel_vectors_are_sparse() {
        let kernel = vec![3, -1, 2, 5, -4, 1, 1, 2, 7];
        let key = padded(Side::Rows, 36, 2);
        // Position 0 sees only the kernel's last tap, on pixel 0.
        let g = key.patches.unwrap();
        let mut unit = vec![0; 36];
        unit[0] = 7;
        assert_eq!((g.positions(), g.pixel_vector(&kernel, 0)), (64, unit));
        let mut b = service_budget();
        let Err(Error::KeyRefused(why)) = b.approve(&key, std::slice::from_ref(&kernel)) else {
            panic!("a padded kernel revealing single pixels was issued");
        };
        assert!(
            why.contains("48 of the 64 pixel-space vectors")
                && why.contains("kernel 0 at position 0")
                && why.contains("has 1 non-zero entry, fewer than 8"),
            "{why}"
        );
        assert_eq!(b.rank(key.id), 0);
        // Without padding every window is on the image: 16 dense equations.
        let key = padded(Side::Rows, 36, 0);
        b.approve(&key, &[kernel]).unwrap();
        assert_eq!(b.rank(key.id), 16);
    }

    #[test]
    fn refuses_an_error_vector_whose_taps_land_on_the_padding() {
        // One image, 64 positions: errors on the first output row only.
        // The request has 8 non-zeros; the top taps of those windows read
        // only padding (G_j·δ = 0), the bottom ones 6 pixels.
        let key = padded(Side::Columns, 36, 2);
        let mut delta = vec![0; 64];
        delta[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut b = service_budget();
        let Err(Error::KeyRefused(why)) = b.approve(&key, &[delta]) else {
            panic!("an error vector revealing nothing dense was issued");
        };
        assert!(
            why.contains("9 pixel-space vectors") && why.contains("error vector 0 at tap 0"),
            "{why}"
        );
        assert_eq!(b.rank(key.id), 0);
    }

    /// `dim` independent dense vectors: J + diag(1, …, dim), whose
    /// determinant is positive and far below the prime.
    fn independent(dim: usize) -> Vec<Vec<i64>> {
        (0..dim)
            .map(|i| {
                (0..dim)
                    .map(|j| 1 + i64::from(i == j) * (i as i64 + 1))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn never_issues_full_rank_under_the_caps() {
        for (side, dim) in [(Side::Rows, 10), (Side::Rows, 36), (Side::Columns, 10)] {
            let key = MasterKey {
                side,
                ..rows(KeyId::random(&mut StdRng::seed_from_u64(22)), dim)
            };
            let ys = independent(dim);
            let mut b = service_budget();
            let Err(Error::KeyRefused(why)) = b.approve(&key, &ys) else {
                panic!("rank {dim} issued on dimension {dim}");
            };
            let limit = format!("at most {}", dim - 1);
            assert!(why.contains(&limit) && why.contains("dimension"), "{why}");
            assert_eq!(b.rank(key.id), 0);
            b.approve(&key, &ys[..dim - 1]).unwrap();
            let spent = b.budget(&key).unwrap();
            assert_eq!(
                (spent.rank, spent.limit, spent.dim),
                (dim - 1, dim - 1, dim)
            );
            assert!(b.approve(&key, &ys[dim - 1..]).is_err());
            // A dependent vector reveals nothing new: still served.
            let sum: Vec<i64> = ys[0].iter().zip(&ys[1]).map(|(a, c)| a + c).collect();
            b.approve(&key, &[sum]).unwrap();
            assert_eq!(b.rank(key.id), dim - 1);
        }
        // Dimension 1: nothing is issuable.
        let mut b = RankBudget::new(Caps { rows: 5, cols: 5 }, 1, 1.0, &mut rand::rng());
        let key = rows(KeyId::random(&mut rand::rng()), 1);
        assert!(b.approve(&key, &[vec![3]]).is_err());
        assert_eq!(b.budget(&key).map(|b| b.limit), Some(0));
    }

    #[test]
    fn issue_all_counted_issues_full_rank_and_counts_it() {
        let key = rows(KeyId::random(&mut StdRng::seed_from_u64(23)), 10);
        let mut counted = IssueAllCounted::new(&mut StdRng::seed_from_u64(24));
        counted.approve(&key, &[vec![0; 10]]).unwrap();
        counted.approve(&key, &independent(10)).unwrap();
        let full = counted.budget(&key).unwrap();
        assert_eq!((full.rank, full.limit, full.dim), (10, 10, 10));
        assert!(full.can_serve(100));
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
