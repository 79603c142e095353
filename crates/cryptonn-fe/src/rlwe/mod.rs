//! Post-quantum inner-product FE from Ring-LWE.
//!
//! The selective scheme of Agrawal, Libert and Stehlé (CRYPTO 2016) in ring
//! form, as in Mera, Karmakar, Marc and Soleimanian, *Efficient
//! lattice-based inner-product functional encryption*, PKC 2022, over
//! R_q = ℤ_q\[X\]/(Xⁿ + 1) with q = p₀·p₁ ≈ 2¹²⁴ (two 62-bit NTT primes):
//!
//! - **Setup**: a ← R_q from a public seed; sᵢ, eᵢ ← D_{σ₁}ⁿ;
//!   pkᵢ = a·sᵢ + eᵢ (i = 1 … l). msk = (sᵢ), mpk = (seed, pkᵢ).
//! - **Encrypt**(X₁ … X_l), Xᵢ holding entry i of up to n vectors, one per
//!   coefficient (slot): r, f₀ ← D_{σ₂}ⁿ, fᵢ ← D_{σ₃}ⁿ;
//!   ct₀ = a·r + f₀, ctᵢ = pkᵢ·r + fᵢ + ⌊q/K⌋·Xᵢ.
//! - **KeyDerive**(y ∈ ℤˡ): sk_y = Σ yᵢ·sᵢ ∈ R (small integer coefficients).
//! - **Decrypt**: Σ yᵢ·ctᵢ − ct₀·sk_y = ⌊q/K⌋·Σ yᵢXᵢ + noise; rounding
//!   gives ⟨x⁽ʲ⁾, y⟩ in slot j, centred mod K.
//!
//! Only the used coefficients of ctᵢ are kept and decrypted
//! ([`Decryptor`]). Parameters and their derivation: [`Params`] and
//! `docs/RLWE.md`. Encodings: `to_bytes` / `from_bytes` on each type,
//! canonical, in `docs/RLWE.md`.
//!
//! ```
//! use cryptonn_fe::rlwe::{self, Params};
//! # fn main() -> cryptonn_fe::Result<()> {
//! let mut rng = rand::rng();
//! // Insecure toy degree for the example; Params::new(8192, …) is 128-bit PQ.
//! let params = Params::insecure_for_tests(64, 3, 255, 128)?;
//! let (msk, mpk) = rlwe::setup(&params, &mut rng)?;
//! // Two vectors of length 3 in one ciphertext (slots 0 and 1).
//! let ct = rlwe::encrypt(&mpk, &[1, 2, 3, 255, 0, 7], &mut rng)?;
//! let key = rlwe::derive_key(&msk, &[2, -1, 128])?;
//! let out = rlwe::Decryptor::new(&params)?.decrypt(&key, &ct)?;
//! assert_eq!(out, vec![2 - 2 + 384, 510 + 896]);
//! # Ok(())
//! # }
//! ```

mod ciphertext;
mod decrypt;
mod keys;
pub mod ntt;
pub mod params;
pub mod sampler;
mod wire;

pub use ciphertext::{Ciphertext, encrypt};
pub use decrypt::Decryptor;
pub use keys::{FunctionKey, MasterPublicKey, MasterSecretKey, derive_key, derive_keys, setup};
pub use params::Params;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn dot(x: &[i64], y: &[i64]) -> i64 {
        x.iter().zip(y).map(|(a, b)| a * b).sum()
    }

    /// Encrypts `x` (slots × l), decrypts with each key vector of `ys`.
    fn round_trip(params: &Params, x: &[i64], ys: &[i64], seed: u64) -> Vec<Vec<i64>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (msk, mpk) = setup(params, &mut rng).unwrap();
        let ct = encrypt(&mpk, x, &mut rng).unwrap();
        let keys = derive_keys(&msk, ys).unwrap();
        Decryptor::new(params)
            .unwrap()
            .decrypt_many(&keys, &ct)
            .unwrap()
    }

    /// Entries within ±b, a third of them exactly at ±b.
    fn entry(b: i64) -> impl Strategy<Value = i64> {
        prop_oneof![Just(-b), Just(b), -b..=b]
    }

    fn batch(l: usize, bx: i64, by: i64) -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
        (1usize..=64, 1usize..=6).prop_flat_map(move |(slots, keys)| {
            (
                prop::collection::vec(entry(bx), slots * l),
                prop::collection::vec(entry(by), keys * l),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn decrypt_encrypt_is_inner_product_at_the_bounds((x, ys) in batch(9, 255, 128), seed: u64) {
            let params = Params::insecure_for_tests(64, 9, 255, 128).unwrap();
            let out = round_trip(&params, &x, &ys, seed);
            for (y, got) in ys.chunks(9).zip(&out) {
                let expected: Vec<i64> = x.chunks(9).map(|v| dot(v, y)).collect();
                prop_assert_eq!(got, &expected);
            }
        }
    }

    #[test]
    fn extreme_inner_products_decrypt_exactly() {
        let params = Params::insecure_for_tests(32, 5, 255, 128).unwrap();
        let x = [255i64; 5]
            .iter()
            .chain(&[-255i64; 5])
            .copied()
            .collect::<Vec<_>>();
        let ys = [[128i64; 5], [-128; 5]].concat();
        let out = round_trip(&params, &x, &ys, 3);
        let b = params.result_bound() as i64;
        assert_eq!(out, vec![vec![b, -b], vec![-b, b]]);
    }

    #[test]
    fn rejects_out_of_bound_inputs() {
        let mut rng = StdRng::seed_from_u64(1);
        let params = Params::insecure_for_tests(32, 4, 255, 128).unwrap();
        let (msk, mpk) = setup(&params, &mut rng).unwrap();
        assert!(encrypt(&mpk, &[256, 0, 0, 0], &mut rng).is_err());
        assert!(encrypt(&mpk, &[0, 0, 0], &mut rng).is_err());
        assert!(encrypt(&mpk, &[0; 33 * 4], &mut rng).is_err());
        assert!(encrypt(&mpk, &[], &mut rng).is_err());
        assert!(derive_key(&msk, &[129, 0, 0, 0]).is_err());
        assert!(derive_key(&msk, &[0, 0, 0]).is_err());
        assert!(derive_keys(&msk, &[]).is_err());
    }

    #[test]
    fn rejects_mismatched_key_and_ciphertext() {
        let mut rng = StdRng::seed_from_u64(2);
        let params = Params::insecure_for_tests(32, 4, 255, 128).unwrap();
        let (msk, _) = setup(&params, &mut rng).unwrap();
        let (_, mpk2) = setup(&params, &mut rng).unwrap();
        let ct = encrypt(&mpk2, &[1, 2, 3, 4], &mut rng).unwrap();
        let key = derive_key(&msk, &[1, 1, 1, 1]).unwrap();
        let dec = Decryptor::new(&params).unwrap();
        assert!(matches!(dec.decrypt(&key, &ct), Err(Error::KeyMismatch(_))));
        let other = Decryptor::new(&Params::insecure_for_tests(32, 4, 255, 127).unwrap()).unwrap();
        assert!(matches!(
            other.decrypt(&key, &ct),
            Err(Error::KeyMismatch(_))
        ));
    }

    #[test]
    fn altered_ciphertext_is_an_error_not_a_wrong_answer() {
        let mut rng = StdRng::seed_from_u64(4);
        let params = Params::insecure_for_tests(32, 4, 255, 128).unwrap();
        let (msk, mpk) = setup(&params, &mut rng).unwrap();
        let mut ct = encrypt(&mpk, &[1, 2, 3, 4], &mut rng).unwrap();
        let key = derive_key(&msk, &[1, 1, 1, 1]).unwrap();
        let dec = Decryptor::new(&params).unwrap();
        assert_eq!(dec.decrypt(&key, &ct).unwrap(), vec![10]);
        // A shift by a third of Δ in one row: far outside the noise bound.
        let m = ntt::Modulus::new(ntt::PRIMES[0]);
        let shift = m.reduce(params.delta() / 3);
        ct.ct[0] = m.add(ct.ct[0], shift);
        let m1 = ntt::Modulus::new(ntt::PRIMES[1]);
        let i1 = ct.ct.len() / 2;
        ct.ct[i1] = m1.add(ct.ct[i1], m1.reduce(params.delta() / 3));
        assert_eq!(dec.decrypt(&key, &ct), Err(Error::NoiseBound));
    }

    #[test]
    fn every_sampler_draws_from_the_callers_rng() {
        // msk, pk noise (setup) and r, f₀, fᵢ (encrypt) all change with the
        // seed and repeat with it: no sampler has state of its own.
        let params = Params::insecure_for_tests(32, 3, 255, 128).unwrap();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let (msk, mpk) = setup(&params, &mut rng).unwrap();
            let ct = encrypt(&mpk, &[1, 2, 3, 4, 5, 6], &mut rng).unwrap();
            (msk.s.clone(), mpk, ct)
        };
        let (s_a, mpk_a, ct_a) = run(9);
        let (s_b, mpk_b, ct_b) = run(9);
        assert!(s_a == s_b && mpk_a == mpk_b && ct_a == ct_b);
        let (s_c, mpk_c, ct_c) = run(10);
        let n = params.degree();
        for i in 0..params.dim() {
            assert_ne!(s_a[i * n..(i + 1) * n], s_c[i * n..(i + 1) * n], "s_{i}");
            // pkᵢ = a·sᵢ + eᵢ with a from the seed: compare rows.
            assert_ne!(
                mpk_a.pk[i * 2 * n..(i + 1) * 2 * n],
                mpk_c.pk[i * 2 * n..(i + 1) * 2 * n]
            );
            assert_ne!(ct_a.row(0, i), ct_c.row(0, i), "ct_{i}");
        }
        assert_ne!(ct_a.ct0, ct_c.ct0);
        // Same msk and seed of a, fresh encryption randomness: every row
        // changes, so r, f₀ and every fᵢ are drawn from the rng.
        let mut rng = StdRng::seed_from_u64(11);
        let ct_d = encrypt(&mpk_a, &[1, 2, 3, 4, 5, 6], &mut rng).unwrap();
        assert_ne!(ct_a.ct0, ct_d.ct0);
        for i in 0..params.dim() {
            assert_ne!(ct_a.row(1, i), ct_d.row(1, i));
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        let mut rng = StdRng::seed_from_u64(5);
        let params = Params::insecure_for_tests(16, 2, 255, 128).unwrap();
        let (msk, _) = setup(&params, &mut rng).unwrap();
        let text = format!("{msk:?}");
        assert!(
            text.starts_with("MasterSecretKey") && !text.contains("s:"),
            "{text}"
        );
    }

    #[test]
    fn forward_shape_at_real_parameters() {
        // n = 8192, l = 785, 16 images, 2 keys: the real parameter set.
        let params = Params::forward_mnist().unwrap();
        let mut rng = StdRng::seed_from_u64(6);
        let x: Vec<i64> = (0..16 * 785).map(|i| (i * 37 % 256) as i64).collect();
        let ys: Vec<i64> = (0..2 * 785).map(|i| (i * 91 % 257) as i64 - 128).collect();
        let out = round_trip(&params, &x, &ys, 6);
        for (y, got) in ys.chunks(785).zip(&out) {
            let expected: Vec<i64> = x.chunks(785).map(|v| dot(v, y)).collect();
            assert_eq!(got, &expected);
        }
        let _ = &mut rng;
    }

    #[test]
    fn backward_shape_at_real_parameters() {
        // n = 8192, l = 256 images, 784 pixel slots (not a power of two).
        let params = Params::backward_mnist(256).unwrap();
        let x: Vec<i64> = (0..784 * 256).map(|i| (i * 13 % 256) as i64).collect();
        let ys: Vec<i64> = (0..256).map(|i| (i * 29 % 257) as i64 - 128).collect();
        let out = round_trip(&params, &x, &ys, 8);
        let expected: Vec<i64> = x.chunks(256).map(|v| dot(v, &ys)).collect();
        assert_eq!(out, vec![expected]);
    }
}
