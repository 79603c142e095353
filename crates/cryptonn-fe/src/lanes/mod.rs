//! Stage-1 feasibility prototype: Ristretto255 point additions over 8 independent
//! SIMD lanes with AVX-512 IFMA, with a scalar reference.
//!
//! Not wired into the product. The decryption engine's per-step work is thousands
//! of *independent* point additions (one accumulator per key and bit plane), which
//! this module computes eight at a time.
//!
//! - [`field`]: GF(2²⁵⁵ − 19) in five 51-bit limbs with `u128` products: the oracle
//!   and the fallback.
//! - [`edwards`]: extended/cached twisted Edwards points (HWCD 2008, a = −1).
//! - [`ristretto`]: RFC 9496 decoding (all validity checks) and encoding.
//! - [`ifma`]: the same field, points and decoding over 8 lanes of `__m512i`
//!   (`avx512ifma`), behind runtime detection.
//!
//! Limbs stay in radix 2⁵¹ in the lanes too (as curve25519-dalek's own IFMA
//! backend does): `vpmadd52{lo,hi}uq` take 52-bit inputs, so a reduced element may
//! carry one spare bit per limb, and scalar and lane values share one layout.
//!
//! # Security
//! **Variable time throughout.** Decoding, encoding and comparisons branch on the
//! values. Decryption is variable time by design and handles public group
//! elements only; nothing here may touch secrets.

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
