//! Used-slot decryption.
//!
//! For a key y and slot j, with d = Σᵢ yᵢ·ctᵢ − ct₀·sk_y:
//!   d = Δ·Σᵢ yᵢXᵢ + Σᵢ yᵢ(eᵢr + fᵢ) − f₀·sk_y  (mod q),
//! and taking coefficient j is linear, so
//!   d[j] = Σᵢ yᵢ·ctᵢ[j] − (ct₀·sk_y)[j]
//! needs ctᵢ only at the used slots: l multiply-adds per slot and limb. The
//! product ct₀·sk_y mixes all coefficients, so it takes one forward NTT of
//! sk_y and one inverse NTT per limb (ct₀ is stored transformed). The noise
//! of d[j] is the full scheme's noise at j, so the correctness bound of
//! [`super::Params`] holds unchanged.

use std::sync::Arc;

use rayon::prelude::*;

use super::ciphertext::Ciphertext;
use super::keys::FunctionKey;
use super::ntt::{Modulus, Rns};
use super::params::Params;
use crate::{Error, Result};

/// Keys decrypted together against one ciphertext, so each row of the
/// ciphertext is loaded once for all of them.
const KEY_GROUP: usize = 4;

/// Decrypts ciphertexts of one parameter set with function keys.
#[derive(Clone, Debug)]
pub struct Decryptor {
    params: Params,
    rns: Arc<Rns>,
}

impl Decryptor {
    /// A decryptor for `params`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] only if the NTT tables cannot be built
    /// (never for a [`Params`] that constructs).
    pub fn new(params: &Params) -> Result<Self> {
        Ok(Self {
            params: params.clone(),
            rns: Arc::new(Rns::new(params.degree())?),
        })
    }

    fn check_pair(&self, key: &FunctionKey, ct: &Ciphertext) -> Result<()> {
        if key.params != self.params || ct.params != self.params {
            return Err(Error::KeyMismatch("RLWE parameters differ"));
        }
        if key.id != ct.id {
            return Err(Error::KeyMismatch(
                "RLWE key and ciphertext of different master keys",
            ));
        }
        Ok(())
    }

    /// ⟨x⁽ʲ⁾, y⟩ for every slot j of `ct`.
    ///
    /// # Errors
    /// [`Error::KeyMismatch`] for a key of another master key or parameter
    /// set; [`Error::OutOfBound`] if a result lies outside ±l·Bₓ·B_y, or
    /// [`Error::NoiseBound`] if its noise exceeds the scheme's bound (a
    /// ciphertext or key not made by this scheme): never a wrong value from
    /// honest inputs.
    pub fn decrypt(&self, key: &FunctionKey, ct: &Ciphertext) -> Result<Vec<i64>> {
        self.decrypt_many(core::slice::from_ref(key), ct)?
            .into_iter()
            .next()
            .ok_or(Error::KeyMismatch("no key"))
    }

    /// ⟨x⁽ʲ⁾, y⟩ for every key (outer) and slot j (inner); groups of keys
    /// run in parallel.
    ///
    /// # Errors
    /// As [`Decryptor::decrypt`], for the first failing key.
    pub fn decrypt_many(&self, keys: &[FunctionKey], ct: &Ciphertext) -> Result<Vec<Vec<i64>>> {
        keys.iter().try_for_each(|k| self.check_pair(k, ct))?;
        let colsums = [column_sums(ct, 0), column_sums(ct, 1)];
        let groups: Vec<Vec<Vec<i64>>> = keys
            .par_chunks(KEY_GROUP)
            .map(|group| self.decrypt_group(group, ct, &colsums))
            .collect::<Result<_>>()?;
        Ok(groups.into_iter().flatten().collect())
    }

    fn decrypt_group(
        &self,
        keys: &[FunctionKey],
        ct: &Ciphertext,
        colsums: &[Vec<u128>; 2],
    ) -> Result<Vec<Vec<i64>>> {
        let moduli = self.rns.moduli();
        // residues[key][limb][slot] of Σ yᵢ·ctᵢ[j] − (ct₀·sk)[j].
        let mut residues = vec![[vec![0u64; ct.slots], vec![0u64; ct.slots]]; keys.len()];
        for (k, m) in moduli.iter().enumerate() {
            let sums = used_slot_sums(keys, ct, k, m, &colsums[k]);
            for ((key, sum), res) in keys.iter().zip(sums).zip(residues.iter_mut()) {
                let c0sk = self.key_term(key, ct, k)?;
                for ((r, s), c) in res[k].iter_mut().zip(sum).zip(&c0sk) {
                    *r = m.sub(s, *c);
                }
            }
        }
        residues
            .iter()
            .map(|[r0, r1]| {
                r0.iter()
                    .zip(r1)
                    .map(|(&a, &b)| self.decode(a, b))
                    .collect()
            })
            .collect()
    }

    /// (ct₀·sk_y)[j] mod pₖ for the used slots j: forward NTT of sk_y,
    /// pointwise product with ct₀, inverse NTT of the used slots only.
    fn key_term(&self, key: &FunctionKey, ct: &Ciphertext, k: usize) -> Result<Vec<u64>> {
        let (table, n) = (self.rns.table(k), self.params.degree());
        let m = table.modulus();
        let mut t: Vec<u64> = key.sk.iter().map(|&c| m.from_i64(c)).collect();
        table.forward(&mut t)?;
        for (tj, &c) in t.iter_mut().zip(&ct.ct0[k * n..(k + 1) * n]) {
            *tj = m.mul(*tj, c);
        }
        Ok(table.inverse_prefix(&mut t, ct.slots)?.to_vec())
    }

    /// The slot's value from its residues: centre d mod q, round d/Δ, and
    /// check the result and the noise d − Δ·m against their bounds.
    fn decode(&self, r0: u64, r1: u64) -> Result<i64> {
        let d = Rns::centre(self.rns.crt(r0, r1));
        let delta = self.params.delta() as i128;
        let m = (d + delta / 2).div_euclid(delta);
        let noise = (d - m * delta).unsigned_abs();
        let bound = self.params.result_bound();
        if noise > self.params.noise_bound() {
            return Err(Error::NoiseBound);
        }
        if m.unsigned_abs() > u128::from(bound) {
            return Err(Error::OutOfBound { bound });
        }
        Ok(m as i64)
    }
}

const LOW31: u64 = (1 << 31) - 1;

/// Σᵢ ctᵢ[j] over the rows of limb k, exactly (< l·2⁶² < 2⁷⁸), per slot:
/// shared by every key of a ciphertext.
fn column_sums(ct: &Ciphertext, k: usize) -> Vec<u128> {
    let mut sums = vec![0u128; ct.slots];
    for i in 0..ct.params.dim() {
        for (s, &c) in sums.iter_mut().zip(ct.row(k, i)) {
            *s += u128::from(c);
        }
    }
    sums
}

/// Σᵢ yᵢ·ctᵢ[j] mod pₖ at every used slot j, for each key of the group.
///
/// Written for plain 64-bit SIMD lanes: with y′ = y + B_y ∈ [0, 2B_y] and
/// c = c_hi·2³¹ + c_lo, the sums Σ y′·c_lo and Σ y′·c_hi stay below
/// l·2B_y·2³¹ < 2⁶⁴ ([`Params`] requires l·B_y < 2³²), and
/// Σ y·c = 2³¹·Σ y′c_hi + Σ y′c_lo − B_y·Σ c, with Σ c from
/// [`column_sums`].
fn used_slot_sums(
    keys: &[FunctionKey],
    ct: &Ciphertext,
    k: usize,
    m: &Modulus,
    colsum: &[u128],
) -> Vec<Vec<u64>> {
    let by = ct.params.y_bound();
    let mut acc = vec![[vec![0u64; ct.slots], vec![0u64; ct.slots]]; keys.len()];
    for i in 0..ct.params.dim() {
        let row = ct.row(k, i);
        for ([lo, hi], key) in acc.iter_mut().zip(keys) {
            // |yᵢ| ≤ B_y ≤ 2²⁰ (checked at derivation and decoding).
            let y = u64::from((key.y[i] + by as i64) as u32);
            for ((al, ah), &c) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *al += y * (c & LOW31);
                *ah += y * ((c >> 31) & LOW31);
            }
        }
    }
    acc.into_iter()
        .map(|[lo, hi]| {
            lo.iter()
                .zip(&hi)
                .zip(colsum)
                .map(|((&a, &b), &s)| {
                    let pos = (u128::from(b) << 31) + u128::from(a);
                    reduce_i128(m, pos as i128 - i128::from(by) * s as i128)
                })
                .collect()
        })
        .collect()
}

/// v mod p for |v| < 2¹²⁴.
fn reduce_i128(m: &Modulus, v: i128) -> u64 {
    let r = m.reduce(v.unsigned_abs());
    if v < 0 { m.sub(0, r) } else { r }
}
