//! The Jacobi symbol by the binary algorithm on 64-bit digits, for decoding.
//!
//! Variable-time: decoding checks public values only. It does a
//! subtraction and a shift per step, on digit vectors that shrink as the
//! values do, so it runs several times faster than the reciprocity
//! algorithm with num-bigint divisions (kept in the parent module as the
//! reference) and than crypto-bigint 0.7's `jacobi_symbol_vartime`.

use core::cmp::Ordering;

/// Little-endian 64-bit digits of big-endian bytes, without zero digits at
/// the top.
pub(super) fn digits_from_be(bytes: &[u8]) -> Vec<u64> {
    let mut digits: Vec<u64> = bytes
        .rchunks(8)
        .map(|c| c.iter().fold(0u64, |d, &b| (d << 8) | u64::from(b)))
        .collect();
    trim(&mut digits);
    digits
}

fn trim(v: &mut Vec<u64>) {
    while v.last() == Some(&0) {
        v.pop();
    }
}

fn cmp(a: &[u64], b: &[u64]) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

/// a −= b for a ≥ b (both trimmed); trims the result.
fn sub_assign(a: &mut Vec<u64>, b: &[u64]) {
    let mut borrow = false;
    for (i, x) in a.iter_mut().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        if i >= b.len() && !borrow {
            break;
        }
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        *x = d;
        borrow = b1 || b2;
    }
    trim(a);
}

/// Shifts a (non-zero, trimmed) right past its trailing zeros; returns how
/// many bits were shifted out.
fn strip_twos(a: &mut Vec<u64>) -> u32 {
    let words = a.iter().take_while(|&&w| w == 0).count();
    a.drain(..words);
    let bits = a.first().map_or(0, |w| w.trailing_zeros());
    if bits > 0 {
        for i in 0..a.len() {
            let next = a.get(i + 1).map_or(0, |w| w << (64 - bits));
            a[i] = (a[i] >> bits) | next;
        }
        trim(a);
    }
    words as u32 * 64 + bits
}

/// The Jacobi symbol (a/n) for odd n > 0, from little-endian digits
/// ([`digits_from_be`]): 1, −1, or 0 when gcd(a, n) ≠ 1.
///
/// Binary algorithm: pull out factors of 2 ((2/n) = −1 iff n ≡ ±3 mod 8),
/// keep a ≥ n by swapping (reciprocity: −1 iff both ≡ 3 mod 4), subtract.
pub(super) fn jacobi(a: &[u64], n: &[u64]) -> i8 {
    let (mut a, mut b) = (a.to_vec(), n.to_vec());
    trim(&mut a);
    trim(&mut b);
    let mut t = 1i8;
    while !a.is_empty() {
        let twos = strip_twos(&mut a);
        if twos % 2 == 1 && matches!(b.first().map_or(0, |w| w & 7), 3 | 5) {
            t = -t;
        }
        if cmp(&a, &b) == Ordering::Less {
            core::mem::swap(&mut a, &mut b);
            if a[0] & 3 == 3 && b[0] & 3 == 3 {
                t = -t;
            }
        }
        sub_assign(&mut a, &b);
    }
    if b == [1] { t } else { 0 }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigUint;
    use proptest::prelude::*;

    use super::*;
    use crate::group::modp::{ModpParams, Rfc3526Group14, Rfc3526Group15};

    fn digits(v: &BigUint) -> Vec<u64> {
        digits_from_be(&v.to_bytes_be())
    }

    fn check(a: &BigUint, n: &BigUint) {
        let want = super::super::jacobi(a, n);
        assert_eq!(jacobi(&digits(a), &digits(n)), want, "({a:x} / {n:x})");
    }

    #[test]
    fn small_values_match_reference() {
        for n in (1u32..200).step_by(2) {
            for a in 0..n + 3 {
                check(&BigUint::from(a % n), &BigUint::from(n));
            }
        }
    }

    #[test]
    fn edges_mod_p_match_reference() {
        for p in [&Rfc3526Group14::context().p, &Rfc3526Group15::context().p] {
            for a in [
                BigUint::from(1u32),
                BigUint::from(2u32),
                BigUint::from(3u32),
                p - 1u32,
                p - 2u32,
            ] {
                check(&a, p);
            }
            check(&(BigUint::from(1u32) << 64usize), p);
            check(&((BigUint::from(1u32) << 1500usize) + 1u32), p);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_reference_mod_p(raw in proptest::collection::vec(any::<u8>(), 1..257)) {
            let p = &Rfc3526Group14::context().p;
            check(&(BigUint::from_bytes_be(&raw) % p), p);
        }

        #[test]
        fn matches_reference_odd_moduli(a in proptest::collection::vec(any::<u8>(), 1..64),
                                        n in proptest::collection::vec(any::<u8>(), 1..64)) {
            let n = BigUint::from_bytes_be(&n) | BigUint::from(1u32);
            check(&(BigUint::from_bytes_be(&a) % &n), &n);
            check(&BigUint::from_bytes_be(&a), &n);
        }
    }
}
