//! Fixtures shared by the wide lanes' tests: the 2048-bit prime's lane
//! context, crypto-bigint's form of it, and the CPU check.

use crypto_bigint::Uint;
use crypto_bigint::modular::{ConstMontyForm, ConstMontyParams};
use rand::RngExt;
use rand::rngs::StdRng;

use super::Ifma;
use super::wide::WideModulus;
use crate::group::Prime2048;

/// An element mod the 2048-bit prime, crypto-bigint's Montgomery form.
pub(super) type Fe = ConstMontyForm<Prime2048, 32>;
/// 32 little-endian 64-bit words.
pub(super) type Words = [u64; 32];

/// The token, or a note on stderr that the test is skipped.
pub(super) fn ifma() -> Option<Ifma> {
    let t = Ifma::detect();
    if t.is_none() {
        eprintln!("no AVX-512 IFMA on this CPU: lane test skipped");
    }
    t
}

/// The lanes' context of the 2048-bit prime.
pub(super) fn modulus() -> WideModulus<40> {
    WideModulus::new(Prime2048::PARAMS.modulus().as_ref().as_words())
        .expect("the RFC 3526 prime fits 40 limbs")
}

/// Random words below 2²⁰⁴⁷ (so below 2p).
pub(super) fn random_words(rng: &mut StdRng) -> Words {
    let mut w: Words = core::array::from_fn(|_| rng.random());
    w[31] >>= 1;
    w
}

/// The element with Montgomery words `w`.
pub(super) fn fe(w: &Words) -> Fe {
    Fe::from_montgomery(Uint::from_words(*w))
}
