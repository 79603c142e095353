//! Ciphertexts of a batch of vectors, one vector per slot, and encryption.

use rand_core::CryptoRng;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::keys::{MasterPublicKey, ntt_of_small};
use super::params::Params;
use super::sampler::Gaussian;
use crate::key_id::KeyId;
use crate::{Error, Result};

/// Rows of a ciphertext computed per parallel task.
const ROWS_PER_TASK: usize = 8;

/// An encryption of `slots` vectors x⁽⁰⁾ … x⁽ˢ⁻¹⁾ ∈ ℤˡ, vector j in slot
/// (coefficient) j of every row:
/// - ct₀ = a·r + f₀, all n coefficients, kept in the NTT domain;
/// - ctᵢ = pkᵢ·r + fᵢ + Δ·Xᵢ on the used coefficients 0 … slots−1 only,
///   where Xᵢ = Σⱼ xᵢ⁽ʲ⁾Xʲ.
///
/// Dropping the unused coefficients of ctᵢ is a public projection of the
/// full ciphertext, so it keeps its security; decryption needs only the
/// used ones (see [`super::Decryptor`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    pub(crate) params: Params,
    pub(crate) id: KeyId,
    pub(crate) slots: usize,
    /// 2n residues (limb 0, then limb 1), NTT domain.
    pub(crate) ct0: Vec<u64>,
    /// Limb-major: for each limb, l rows of `slots` residues.
    pub(crate) ct: Vec<u64>,
}

impl Ciphertext {
    /// The master key it was encrypted under.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The number of vectors (used slots).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Row i of limb k: coefficients 0 … slots−1 of ctᵢ mod pₖ.
    pub(crate) fn row(&self, k: usize, i: usize) -> &[u64] {
        let l = self.params.dim();
        let start = (k * l + i) * self.slots;
        &self.ct[start..start + self.slots]
    }
}

/// Checks a batch `x` of vectors of length l, row after row: 1 … n of them,
/// every entry within ±Bₓ. Returns the number of vectors.
fn check_batch(params: &Params, x: &[i64]) -> Result<usize> {
    let l = params.dim();
    let slots = x.len() / l;
    if !x.len().is_multiple_of(l) || !(1..=params.degree()).contains(&slots) {
        return Err(Error::LengthMismatch {
            expected: l,
            got: x.len(),
        });
    }
    let bound = params.x_bound();
    if x.iter().any(|v| v.unsigned_abs() > bound) {
        return Err(Error::InvalidParameter(format!(
            "plaintext entry outside ±{bound}"
        )));
    }
    Ok(slots)
}

/// Encrypts up to n vectors of length l, given row after row in `x`
/// (vector j is `x[j·l .. (j+1)·l]`), into one ciphertext.
///
/// # Errors
/// [`Error::LengthMismatch`] unless `x` holds 1 … n whole vectors;
/// [`Error::InvalidParameter`] for an entry outside ±Bₓ.
pub fn encrypt<R: CryptoRng + ?Sized>(
    mpk: &MasterPublicKey,
    x: &[i64],
    rng: &mut R,
) -> Result<Ciphertext> {
    let params = &mpk.params;
    let slots = check_batch(params, x)?;
    let (n, l) = (params.degree(), params.dim());
    let [_, s2, s3] = params.sigmas();
    let (g2, g3) = (Gaussian::new(s2)?, Gaussian::new(s3)?);
    let rns = &*mpk.rns;
    let mut r = Zeroizing::new(vec![0i64; n]);
    let mut f0 = Zeroizing::new(vec![0i64; n]);
    let mut f = Zeroizing::new(vec![0i64; l * slots]);
    g2.fill(&mut r, rng);
    g2.fill(&mut f0, rng);
    g3.fill(&mut f, rng);
    let r_hat = ntt_of_small(rns, &r)?;
    let f0_hat = ntt_of_small(rns, &f0)?;
    let moduli = rns.moduli();
    let ct0: Vec<u64> = (0..2 * n)
        .map(|j| {
            let m = &moduli[j / n];
            m.add(m.mul(mpk.a_hat[j], r_hat[j]), f0_hat[j])
        })
        .collect();
    let delta = params.delta();
    let delta_k = moduli.map(|m| m.reduce(delta));
    let mut ct = vec![0u64; 2 * l * slots];
    let (lo, hi) = ct.split_at_mut(l * slots);
    lo.par_chunks_mut(slots)
        .zip(hi.par_chunks_mut(slots))
        .enumerate()
        .with_min_len(ROWS_PER_TASK)
        .try_for_each_init(
            || Zeroizing::new(vec![0u64; n]),
            |t, (i, (row0, row1))| -> Result<()> {
                for (k, out) in [row0, row1].into_iter().enumerate() {
                    let (m, table) = (&moduli[k], rns.table(k));
                    let pk = &mpk.pk[i * 2 * n + k * n..i * 2 * n + (k + 1) * n];
                    for ((tj, &p), &rj) in t.iter_mut().zip(pk).zip(&r_hat[k * n..]) {
                        *tj = m.mul(p, rj);
                    }
                    // pkᵢ·r is needed at the used slots only.
                    let used = table.inverse_prefix(t, slots)?;
                    for (j, (o, &u)) in out.iter_mut().zip(used).enumerate() {
                        let msg = m.mul(delta_k[k], m.from_i64(x[j * l + i]));
                        *o = m.add(m.add(u, m.from_i64(f[i * slots + j])), msg);
                    }
                }
                Ok(())
            },
        )?;
    Ok(Ciphertext {
        params: params.clone(),
        id: mpk.id,
        slots,
        ct0,
        ct,
    })
}
