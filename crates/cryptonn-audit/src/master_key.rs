//! Leak 1: function keys of full rank give the master secret modulo q, and
//! with it every ciphertext in full. Exact linear algebra over ℤ_q.

use rayon::prelude::*;

use cryptonn_fe::feip::{Ciphertext, FunctionKey, MasterPublicKey};
use cryptonn_fe::{DlogTable, Group, Ristretto255};

/// A scalar of Ristretto255: an element of ℤ_q.
pub type Scalar = <Ristretto255 as Group>::Scalar;

/// Solves `rows · u = rhs` over ℤ_q, where every row holds `n` coefficients
/// followed by its right-hand sides. `None` unless the rows have rank `n`.
pub fn solve_mod_q(mut rows: Vec<Vec<Scalar>>, n: usize) -> Option<Vec<Vec<Scalar>>> {
    let zero = Ristretto255::scalar_from_i64(0);
    let width = rows.first()?.len();
    if width < n || rows.iter().any(|row| row.len() != width) {
        return None; // ragged or too short: no system to solve
    }
    for col in 0..n {
        let pivot = (col..rows.len()).find(|&r| rows[r][col] != zero)?;
        rows.swap(col, pivot);
        let inv = Ristretto255::scalar_invert(&rows[col][col])?;
        let pivot_row: Vec<Scalar> = rows[col]
            .iter()
            .map(|v| Ristretto255::scalar_mul(v, &inv))
            .collect();
        rows[col] = pivot_row.clone();
        rows.par_iter_mut().enumerate().for_each(|(r, row)| {
            if r == col || row[col] == zero {
                return;
            }
            let f = Ristretto255::scalar_neg(&row[col]);
            for k in col..width {
                row[k] =
                    Ristretto255::scalar_add(&row[k], &Ristretto255::scalar_mul(&f, &pivot_row[k]));
            }
        });
        // Rows below n that reduced to zero carry no information any more.
        rows.retain(|row| row.iter().any(|v| *v != zero));
    }
    Some(
        rows.into_iter()
            .take(n)
            .map(|row| row[n..].to_vec())
            .collect(),
    )
}

/// The small non-negative integer a scalar encodes, if it is one.
pub fn small(s: &Scalar) -> Option<i64> {
    let bytes = Ristretto255::scalar_to_bytes(s);
    bytes[8..]
        .iter()
        .all(|&b| b == 0)
        .then(|| i64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()))
        .filter(|v| *v >= 0)
}

/// Leak 1: the master secret s from keys of full rank, solving
/// ⟨s, yₖ⟩ = sk_{yₖ} mod q, checked against the public key hᵢ = sᵢ·g.
pub fn recover_master_secret(
    keys: &[FunctionKey<Ristretto255>],
    mpk: &MasterPublicKey<Ristretto255>,
) -> Option<Vec<Scalar>> {
    let n = mpk.dim();
    let rows = keys
        .iter()
        .map(|k| {
            k.y()
                .iter()
                .map(|&v| Ristretto255::scalar_from_i64(v))
                .chain(std::iter::once(k.sk().clone()))
                .collect()
        })
        .collect();
    let s: Vec<Scalar> = solve_mod_q(rows, n)?
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    let verified = s
        .par_iter()
        .zip(mpk.elements())
        .all(|(si, hi)| Ristretto255::mul_base(si) == *hi);
    verified.then_some(s)
}

/// Decrypts whole vectors with a recovered master secret: xᵢ = dlog(ctᵢ − sᵢ·ct₀).
pub fn decrypt_with_master(
    s: &[Scalar],
    cts: &[Ciphertext<Ristretto255>],
    table: &DlogTable<Ristretto255>,
) -> Vec<Option<i64>> {
    cts.par_iter()
        .flat_map_iter(|ct| {
            let base = Ristretto255::fixed_base(ct.commitment());
            let targets: Vec<_> = ct
                .elements()
                .iter()
                .zip(s)
                .map(|(c, si)| Ristretto255::sub(c, &Ristretto255::mul_fixed(&base, si)))
                .collect();
            table
                .solve_batch(&targets)
                .into_iter()
                .map(Result::ok)
                .collect::<Vec<_>>()
        })
        .collect()
}
