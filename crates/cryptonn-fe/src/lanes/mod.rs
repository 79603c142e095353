//! Ristretto255 arithmetic over 8 independent SIMD lanes with AVX-512 IFMA, with a
//! scalar reference: the fast paths of decryption (one ciphertext per lane:
//! [`crate::multiexp::Engine::Lanes`]) and encryption ([`bases`]). Runtime detection
//! ([`ifma::Ifma::detect`]) decides; without IFMA the callers run dalek's arithmetic.
//!
//! - [`bases`]: encryption's r·bᵢ + xᵢ·g by constant-time combs, straight to encodings.
//! - [`field`]: GF(2²⁵⁵ − 19) in five 51-bit limbs with `u128` products: the oracle
//!   and the fallback.
//! - [`edwards`]: extended/cached twisted Edwards points (HWCD 2008, a = −1).
//! - [`ristretto`]: RFC 9496 decoding (all validity checks) and encoding.
//! - [`ifma`]: the same field, points and decoding over 8 lanes of `__m512i`
//!   (`avx512ifma`), behind runtime detection; and the MODP groups' Montgomery
//!   products mod a 2048-bit (or wider) prime, eight at a time
//!   ([`ifma::WideX8`]).
//!
//! Limbs stay in radix 2⁵¹ in the lanes too (as curve25519-dalek's own IFMA
//! backend does): `vpmadd52{lo,hi}uq` take 52-bit inputs, so a reduced element may
//! carry one spare bit per limb, and scalar and lane values share one layout.
//!
//! # Security
//! **Variable time** in decoding, encoding and comparisons, which branch on the
//! values: they handle public group elements only (ciphertexts, public keys).
//! The exceptions that take secrets are the combs ([`ifma::CombX8`],
//! [`ifma::SmallCombX8`], and [`ifma::WideCombX8`] for MODP): every table entry of a window is read and blended by
//! mask, with no secret-dependent address, branch or instruction. The MODP lane
//! arithmetic ([`ifma::WideX8`]: packing, products, unpacking) is constant-time
//! in the lane values; its inversion and multi-product
//! (`Ifma::wide_vartime_*`) are not, and take public values only.

pub mod bases;
pub mod edwards;
pub mod field;
#[cfg(target_arch = "x86_64")]
pub mod ifma;
pub mod ristretto;

/// Signed radix-16 digits d₀ … d₆₃ ∈ [−8, 8] with Σ dⱼ·16ʲ = s for a scalar
/// s < 2²⁵³ given as 32 little-endian bytes; branch-free (the recoding of
/// curve25519-dalek's `as_radix_16`).
pub fn radix16(bytes: &[u8; 32]) -> [i8; 64] {
    let mut d = [0i8; 64];
    for (i, b) in bytes.iter().enumerate() {
        d[2 * i] = (b & 15) as i8;
        d[2 * i + 1] = (b >> 4) as i8;
    }
    for i in 0..63 {
        // d[i] ∈ [0, 16]: carry 1 when it is 8 or more.
        let carry = (d[i] + 8) >> 4;
        d[i] -= carry << 4;
        d[i + 1] += carry;
    }
    d
}
