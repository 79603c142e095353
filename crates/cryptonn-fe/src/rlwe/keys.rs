//! Master keys, function keys, setup and key derivation.

use std::sync::Arc;

use rand_core::CryptoRng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::ntt::Rns;
use super::params::Params;
use super::sampler::Gaussian;
use crate::key_id::KeyId;
use crate::{Error, Result};

/// Coefficients of the keys computed together in one task of
/// [`derive_keys`]: the H × TILE accumulators stay in L2.
const KEY_TILE: usize = 256;

/// Domain separation of the seed expansion of a.
const A_DOMAIN: &[u8] = b"cryptonn-fe/rlwe/a/v1";

/// The master secret key: s₁ … s_l ∈ ℤ\[X\]/(Xⁿ+1), coefficients ~ D_{σ₁}.
///
/// Stored as f64 (exact: |sᵢ| ≤ ⌈TAIL·σ₁⌉ < 2⁵³) so that key derivation is
/// a floating-point matrix product. Zeroized on drop; `Debug` is redacted;
/// writing it out is the explicit `to_bytes_exposing_secret`.
pub struct MasterSecretKey {
    pub(crate) params: Params,
    pub(crate) id: KeyId,
    /// l rows of n coefficients.
    pub(crate) s: Vec<f64>,
}

impl Drop for MasterSecretKey {
    fn drop(&mut self) {
        self.s.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for MasterSecretKey {}

impl core::fmt::Debug for MasterSecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterSecretKey")
            .field("id", &self.id)
            .field("dim", &self.params.dim())
            .finish_non_exhaustive()
    }
}

impl MasterSecretKey {
    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The name of this master key.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

/// The master public key: the seed of a and pkᵢ = a·sᵢ + eᵢ (i ≤ l), kept
/// in the NTT domain (both limbs), where encryption uses them.
#[derive(Clone)]
pub struct MasterPublicKey {
    pub(crate) params: Params,
    pub(crate) id: KeyId,
    pub(crate) seed: [u8; 32],
    /// â, expanded from the seed (not serialized).
    pub(crate) a_hat: Vec<u64>,
    /// The NTT tables (not serialized).
    pub(crate) rns: Arc<Rns>,
    /// l rows of 2n residues (limb 0, then limb 1), NTT domain.
    pub(crate) pk: Vec<u64>,
}

impl PartialEq for MasterPublicKey {
    fn eq(&self, other: &Self) -> bool {
        // â and the tables follow from the seed and the degree.
        (&self.params, self.id, self.seed, &self.pk)
            == (&other.params, other.id, other.seed, &other.pk)
    }
}

impl Eq for MasterPublicKey {}

impl core::fmt::Debug for MasterPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterPublicKey")
            .field("id", &self.id)
            .field("dim", &self.params.dim())
            .field("degree", &self.params.degree())
            .finish_non_exhaustive()
    }
}

impl MasterPublicKey {
    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The name of the master key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The seed a is expanded from.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }
}

/// A function key for y: sk_y = Σ yᵢ·sᵢ (integer coefficients), with y.
///
/// Whoever holds it learns ⟨x, y⟩ slot by slot from every ciphertext under
/// the same master key; keys for l independent y determine the msk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionKey {
    pub(crate) params: Params,
    pub(crate) id: KeyId,
    pub(crate) y: Vec<i64>,
    pub(crate) sk: Vec<i64>,
}

impl FunctionKey {
    /// The master key it was derived from.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// y.
    pub fn y(&self) -> &[i64] {
        &self.y
    }

    /// The coefficients of sk_y.
    pub fn sk(&self) -> &[i64] {
        &self.sk
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }
}

/// â ∈ ℤ_q\[X\]/(Xⁿ+1) in the NTT domain, uniform, from a public seed:
/// SHA-256(domain ‖ seed ‖ limb ‖ counter) in counter mode, 62-bit words
/// rejected unless below pₖ. Sampling â directly is sampling a, since the
/// NTT is a bijection. Variable time: a is public.
pub(crate) fn expand_a(seed: &[u8; 32], rns: &Rns) -> Vec<u64> {
    let n = rns.degree();
    let mut out = Vec::with_capacity(2 * n);
    for (limb, m) in rns.moduli().iter().enumerate() {
        let mut counter = 0u64;
        let start = out.len();
        while out.len() < start + n {
            let block = Sha256::new()
                .chain_update(A_DOMAIN)
                .chain_update(seed)
                .chain_update([limb as u8])
                .chain_update(counter.to_le_bytes())
                .finalize();
            counter += 1;
            for word in block.chunks_exact(8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                let v = u64::from_le_bytes(w) >> 2;
                if v < m.value() && out.len() < start + n {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// The NTT (both limbs) of a small signed polynomial: 2n residues.
pub(crate) fn ntt_of_small(rns: &Rns, coeffs: &[i64]) -> Result<Zeroizing<Vec<u64>>> {
    let n = rns.degree();
    let mut out = Zeroizing::new(vec![0u64; 2 * n]);
    for (k, half) in out.chunks_exact_mut(n).enumerate() {
        let t = rns.table(k);
        for (o, &c) in half.iter_mut().zip(coeffs) {
            *o = t.modulus().from_i64(c);
        }
        t.forward(half)?;
    }
    Ok(out)
}

/// Generates a master key pair: a from a fresh seed, sᵢ and eᵢ ~ D_{σ₁}.
///
/// # Errors
/// [`Error::InvalidParameter`] if the parameters' σ₁ is out of the
/// sampler's range (not for any [`Params`] that constructs).
pub fn setup<R: CryptoRng + ?Sized>(
    params: &Params,
    rng: &mut R,
) -> Result<(MasterSecretKey, MasterPublicKey)> {
    let rns = Arc::new(Rns::new(params.degree())?);
    let gauss = Gaussian::new(params.sigmas()[0])?;
    let (n, l) = (params.degree(), params.dim());
    let id = KeyId::random(rng);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let a_hat = expand_a(&seed, &rns);
    let mut s = vec![0f64; l * n];
    let mut pk = vec![0u64; l * 2 * n];
    let mut si = Zeroizing::new(vec![0i64; n]);
    let mut ei = Zeroizing::new(vec![0i64; n]);
    for (row, s_row) in pk.chunks_exact_mut(2 * n).zip(s.chunks_exact_mut(n)) {
        gauss.fill(&mut si, rng);
        gauss.fill(&mut ei, rng);
        for (o, &c) in s_row.iter_mut().zip(si.iter()) {
            *o = c as f64;
        }
        let (s_hat, e_hat) = (ntt_of_small(&rns, &si)?, ntt_of_small(&rns, &ei)?);
        for (k, m) in rns.moduli().iter().enumerate() {
            for j in k * n..(k + 1) * n {
                row[j] = m.add(m.mul(a_hat[j], s_hat[j]), e_hat[j]);
            }
        }
    }
    let msk = MasterSecretKey {
        params: params.clone(),
        id,
        s,
    };
    let mpk = MasterPublicKey {
        params: params.clone(),
        id,
        seed,
        a_hat,
        rns,
        pk,
    };
    Ok((msk, mpk))
}

/// Checks one key vector: length l and |yᵢ| ≤ B_y.
pub(crate) fn check_y(params: &Params, y: &[i64]) -> Result<()> {
    if y.len() != params.dim() {
        return Err(Error::LengthMismatch {
            expected: params.dim(),
            got: y.len(),
        });
    }
    let bound = params.y_bound();
    if y.iter().any(|v| v.unsigned_abs() > bound) {
        return Err(Error::InvalidParameter(format!(
            "key vector entry outside ±{bound}"
        )));
    }
    Ok(())
}

/// Derives the function key for y: sk_y = Σ yᵢ·sᵢ.
///
/// # Errors
/// [`Error::LengthMismatch`] for a y of the wrong length;
/// [`Error::InvalidParameter`] for an entry outside ±B_y.
pub fn derive_key(msk: &MasterSecretKey, y: &[i64]) -> Result<FunctionKey> {
    derive_keys(msk, y)?
        .into_iter()
        .next()
        .ok_or(Error::LengthMismatch {
            expected: msk.params.dim(),
            got: 0,
        })
}

/// Derives the keys for H vectors at once, `ys` holding them row after row
/// (H·l entries): the H × n matrix product Y·S in f64, exact because every
/// partial sum is an integer below 2⁵³ (checked by [`Params`]). Tiles of
/// coefficients run in parallel.
///
/// # Errors
/// [`Error::LengthMismatch`] unless `ys` holds a positive whole number of
/// vectors of length l; [`Error::InvalidParameter`] for an entry outside ±B_y.
pub fn derive_keys(msk: &MasterSecretKey, ys: &[i64]) -> Result<Vec<FunctionKey>> {
    let (n, l) = (msk.params.degree(), msk.params.dim());
    if ys.is_empty() || !ys.len().is_multiple_of(l) {
        return Err(Error::LengthMismatch {
            expected: l,
            got: ys.len(),
        });
    }
    ys.chunks_exact(l)
        .try_for_each(|y| check_y(&msk.params, y))?;
    let h = ys.len() / l;
    let yf: Vec<f64> = ys.iter().map(|&v| v as f64).collect();
    let tiles: Vec<Zeroizing<Vec<f64>>> = (0..n.div_ceil(KEY_TILE))
        .into_par_iter()
        .map(|t| key_tile(&msk.s, n, l, &yf, t * KEY_TILE..((t + 1) * KEY_TILE).min(n)))
        .collect();
    Ok(ys
        .chunks_exact(l)
        .enumerate()
        .map(|(k, y)| {
            let sk = tiles
                .iter()
                .flat_map(|tile| {
                    let w = tile.len() / h;
                    tile[k * w..(k + 1) * w].iter().map(|&v| v as i64)
                })
                .collect();
            FunctionKey {
                params: msk.params.clone(),
                id: msk.id,
                y: y.to_vec(),
                sk,
            }
        })
        .collect())
}

/// One tile of Y·S: H rows of the coefficients in `cols`, four rows of S at
/// a time so each accumulator load serves four multiply-adds.
fn key_tile(
    s: &[f64],
    n: usize,
    l: usize,
    yf: &[f64],
    cols: core::ops::Range<usize>,
) -> Zeroizing<Vec<f64>> {
    let (w, h) = (cols.len(), yf.len() / l);
    let mut acc = Zeroizing::new(vec![0f64; h * w]);
    let row = |i: usize| &s[i * n + cols.start..i * n + cols.end];
    let mut i = 0;
    while i + 4 <= l {
        let (s0, s1, s2, s3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
        for (k, a) in acc.chunks_exact_mut(w).enumerate() {
            let y = &yf[k * l + i..k * l + i + 4];
            for j in 0..w {
                a[j] += y[0] * s0[j] + y[1] * s1[j] + y[2] * s2[j] + y[3] * s3[j];
            }
        }
        i += 4;
    }
    for i in i..l {
        let si = row(i);
        for (k, a) in acc.chunks_exact_mut(w).enumerate() {
            let y = yf[k * l + i];
            for (aj, sj) in a.iter_mut().zip(si) {
                *aj += y * sj;
            }
        }
    }
    acc
}
