//! Every fast path of the MODP groups against num-bigint, the simple
//! reference: `modpow` and multiply-then-reduce on the canonical values.

use num_bigint::BigUint;
use proptest::prelude::*;

use super::*;

fn ctx<P: ModpParams>() -> &'static ModpContext {
    P::context()
}

fn value<P: ModpParams>(a: &ModpElement<P>) -> BigUint {
    BigUint::from_bytes_be(&Modp::<P>::element_to_bytes(a))
}

fn element<P: ModpParams>(v: &BigUint) -> ModpElement<P> {
    Modp::<P>::element_from_bytes(&fixed_be(v, P::BYTES)).unwrap()
}

fn scalar<P: ModpParams>(v: &BigUint) -> ModpScalar<P> {
    Modp::<P>::scalar_from_bytes(&fixed_be(v, P::BYTES)).unwrap()
}

fn scalar_value<P: ModpParams>(k: &ModpScalar<P>) -> BigUint {
    BigUint::from_bytes_be(&Modp::<P>::scalar_to_bytes(k))
}

/// A quadratic residue from arbitrary bytes: (1 + raw mod (p − 1))² mod p.
fn residue<P: ModpParams>(raw: &[u8]) -> BigUint {
    let p = &ctx::<P>().p;
    let x = BigUint::from_bytes_be(raw) % (p - 1u32) + 1u32;
    x.modpow(&BigUint::from(2u32), p)
}

/// k mod q for a signed k.
fn reduce_i64<P: ModpParams>(k: i64) -> BigUint {
    let q = &ctx::<P>().q;
    let mag = BigUint::from(k.unsigned_abs()) % q;
    if k < 0 && mag != BigUint::ZERO {
        q - mag
    } else {
        mag
    }
}

/// The scalars at the edges: 0, 1, 2, q − 2, q − 1.
fn edge_scalars<P: ModpParams>() -> Vec<BigUint> {
    let q = &ctx::<P>().q;
    [0u32, 1, 2]
        .into_iter()
        .map(BigUint::from)
        .chain([q - 2u32, q - 1u32])
        .collect()
}

fn check_group_ops<P: ModpParams>(raw_a: &[u8], raw_b: &[u8]) {
    let c = ctx::<P>();
    let (va, vb) = (residue::<P>(raw_a), residue::<P>(raw_b));
    let (a, b) = (element::<P>(&va), element::<P>(&vb));
    assert_eq!(value(&a), va);
    assert_eq!(Modp::<P>::element_to_bytes(&a), fixed_be(&va, P::BYTES));
    assert_eq!(value(&Modp::<P>::add(&a, &b)), &va * &vb % &c.p);
    assert_eq!(value(&Modp::<P>::double(&a)), &va * &va % &c.p);
    let inv_b = vb.modpow(&(&c.p - 2u32), &c.p);
    assert_eq!(value(&Modp::<P>::sub(&a, &b)), &va * inv_b % &c.p);
    assert!(Modp::<P>::is_identity(&Modp::<P>::sub(&a, &a)));
    assert_eq!(
        Modp::<P>::fingerprints(core::slice::from_ref(&a)),
        [reference_fingerprint(&va)]
    );
    assert_eq!(
        format!("{a:?}"),
        format!("ModpElement({})", va.to_str_radix(16))
    );
}

/// Every secret-scalar multiplication of a against `a.modpow(k, p)`.
fn check_mul<P: ModpParams>(va: &BigUint, k: &BigUint) {
    let c = ctx::<P>();
    let (a, s) = (element::<P>(va), scalar::<P>(k));
    let want = va.modpow(k, &c.p);
    assert_eq!(value(&Modp::<P>::mul(&a, &s)), want, "mul, k = {k:x}");
    let table = Modp::<P>::fixed_base(&a);
    assert_eq!(value(&Modp::<P>::mul_fixed(&table, &s)), want, "mul_fixed");
    let base = c.g.modpow(k, &c.p);
    assert_eq!(value(&Modp::<P>::mul_base(&s)), base, "mul_base");
}

fn check_small<P: ModpParams>(va: &BigUint, k: i64) {
    let c = ctx::<P>();
    let a = element::<P>(va);
    let e = reduce_i64::<P>(k);
    let got = Modp::<P>::vartime_mul_small(&a, k);
    assert_eq!(
        value(&got),
        va.modpow(&e, &c.p),
        "vartime_mul_small, k = {k}"
    );
    let base = Modp::<P>::mul_base_small(k);
    assert_eq!(
        value(&base),
        c.g.modpow(&e, &c.p),
        "mul_base_small, k = {k}"
    );
    assert_eq!(scalar_value(&Modp::<P>::scalar_from_i64(k)), e);
}

fn check_scalar_ops<P: ModpParams>(raw_a: &[u8], raw_b: &[u8]) {
    let q = &ctx::<P>().q;
    let (va, vb) = (
        BigUint::from_bytes_be(raw_a) % q,
        BigUint::from_bytes_be(raw_b) % q,
    );
    let (a, b) = (scalar::<P>(&va), scalar::<P>(&vb));
    assert_eq!(Modp::<P>::scalar_to_bytes(&a), fixed_be(&va, P::BYTES));
    assert_eq!(
        scalar_value(&Modp::<P>::scalar_add(&a, &b)),
        (&va + &vb) % q
    );
    assert_eq!(scalar_value(&Modp::<P>::scalar_mul(&a, &b)), &va * &vb % q);
    assert_eq!(scalar_value(&Modp::<P>::scalar_neg(&a)), (q - &va) % q);
    let inv = Modp::<P>::scalar_invert(&a).map(|i| scalar_value(&i));
    assert_eq!(inv, va.modinv(q), "invert");
}

/// The fingerprint as num-bigint's limbs gave it before crypto-bigint.
fn reference_fingerprint(v: &BigUint) -> u128 {
    fingerprint(v.iter_u64_digits())
}

fn check_edges<P: ModpParams>() {
    let c = ctx::<P>();
    let g = Modp::<P>::generator();
    assert_eq!(value(&g), c.g);
    assert_eq!(value(&Modp::<P>::identity()), BigUint::from(1u32));
    for k in edge_scalars::<P>() {
        check_mul::<P>(&c.g, &k);
        check_mul::<P>(&BigUint::from(1u32), &k);
    }
    // q − 1 is −1: g^(q−1) = g⁻¹.
    let minus_one = scalar::<P>(&(&c.q - 1u32));
    let inv = Modp::<P>::mul(&g, &minus_one);
    assert!(Modp::<P>::is_identity(&Modp::<P>::add(&g, &inv)));
    for k in [
        0,
        1,
        -1,
        15,
        -16,
        0xFFFF,
        -0xFFFF,
        1 << 16,
        -(1 << 16),
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
    ] {
        check_small::<P>(&c.g, k);
        check_small::<P>(&BigUint::from(1u32), k);
    }
}

fn check_decoding<P: ModpParams>(raw: &[u8]) {
    let c = ctx::<P>();
    let v = residue::<P>(raw);
    // p − v is a non-residue (−1 is one, since p ≡ 3 mod 4).
    let bad = fixed_be(&(&c.p - &v), P::BYTES);
    assert!(matches!(
        Modp::<P>::element_from_bytes(&bad),
        Err(Error::InvalidEncoding(_))
    ));
    // A value in [p, 2ⁿ).
    let top = BigUint::from(1u32) << (8 * P::BYTES);
    let above = fixed_be(&(&c.p + &v % (&top - &c.p)), P::BYTES);
    assert!(matches!(
        Modp::<P>::element_from_bytes(&above),
        Err(Error::NonCanonical(_))
    ));
    let unreduced = fixed_be(&(&c.q + (&v % &c.q)), P::BYTES);
    assert!(matches!(
        Modp::<P>::scalar_from_bytes(&unreduced),
        Err(Error::NonCanonical(_))
    ));
    let text = serde_json::to_string(&element::<P>(&v)).unwrap();
    assert_eq!(
        value(&serde_json::from_str::<ModpElement<P>>(&text).unwrap()),
        v
    );
}

fn check_wide_reduction<P: ModpParams>(wide: &[u8]) {
    let want = BigUint::from_bytes_be(wide) % &ctx::<P>().q;
    let got = ModpScalar::<P>(P::Arith::int_from_wide(wide));
    assert_eq!(scalar_value(&got), want);
}

fn bytes(len: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len)
}

#[test]
fn fast_constants_match_num_bigint() {
    use crypto_bigint::modular::ConstMontyParams;
    let p14 = Prime2048::PARAMS.modulus().as_ref().to_be_bytes();
    let q14 = Order2048::PARAMS.modulus().as_ref().to_be_bytes();
    assert_eq!(p14.as_ref(), fixed_be(&Rfc3526Group14::context().p, 256));
    assert_eq!(q14.as_ref(), fixed_be(&Rfc3526Group14::context().q, 256));
    let p15 = Prime3072::PARAMS.modulus().as_ref().to_be_bytes();
    let q15 = Order3072::PARAMS.modulus().as_ref().to_be_bytes();
    assert_eq!(p15.as_ref(), fixed_be(&Rfc3526Group15::context().p, 384));
    assert_eq!(q15.as_ref(), fixed_be(&Rfc3526Group15::context().q, 384));
}

#[test]
fn edges_match_num_bigint_2048() {
    check_edges::<Rfc3526Group14>();
}

#[test]
fn edges_match_num_bigint_3072() {
    check_edges::<Rfc3526Group15>();
}

#[test]
fn wide_reduction_edges() {
    check_wide_reduction::<Rfc3526Group14>(&[0xFF; 272]);
    check_wide_reduction::<Rfc3526Group14>(&[0; 272]);
    check_wide_reduction::<Rfc3526Group15>(&[0xFF; 400]);
}

#[test]
fn rejects_out_of_range_scalar_edges() {
    type G = Modp2048;
    let c = Rfc3526Group14::context();
    for v in [
        c.q.clone(),
        &c.q + 1u32,
        &c.p - 1u32,
        (BigUint::from(1u32) << 2048usize) - 1u32,
    ] {
        assert!(matches!(
            G::scalar_from_bytes(&fixed_be(&v, 256)),
            Err(Error::NonCanonical(_))
        ));
    }
    assert!(G::scalar_from_bytes(&fixed_be(&(&c.q - 1u32), 256)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn group_ops_match_num_bigint(a in bytes(256), b in bytes(256)) {
        check_group_ops::<Rfc3526Group14>(&a, &b);
        check_group_ops::<Rfc3526Group15>(&[a.clone(), b.clone()].concat(), &a);
    }

    #[test]
    fn scalar_ops_match_num_bigint(a in bytes(256), b in bytes(256)) {
        check_scalar_ops::<Rfc3526Group14>(&a, &b);
        check_scalar_ops::<Rfc3526Group15>(&[a.clone(), b.clone()].concat(), &a);
    }

    #[test]
    fn small_multiples_match_num_bigint(a in bytes(256), k in any::<i64>(), s in -70_000i64..70_000) {
        let va = residue::<Rfc3526Group14>(&a);
        check_small::<Rfc3526Group14>(&va, k);
        check_small::<Rfc3526Group14>(&va, s);
        check_small::<Rfc3526Group14>(&va, k >> 40);
    }

    #[test]
    fn decoding_matches_num_bigint(a in bytes(256)) {
        check_decoding::<Rfc3526Group14>(&a);
        check_decoding::<Rfc3526Group15>(&[a.clone(), a].concat());
    }

    #[test]
    fn wide_reduction_matches_num_bigint(w in bytes(272), v in bytes(400)) {
        check_wide_reduction::<Rfc3526Group14>(&w);
        check_wide_reduction::<Rfc3526Group15>(&v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn secret_multiplications_match_modpow(a in bytes(256), k in bytes(272)) {
        let q = &Rfc3526Group14::context().q;
        check_mul::<Rfc3526Group14>(&residue::<Rfc3526Group14>(&a), &(BigUint::from_bytes_be(&k) % q));
        let q = &Rfc3526Group15::context().q;
        let k = BigUint::from_bytes_be(&[k.clone(), k].concat()) % q;
        check_mul::<Rfc3526Group15>(&residue::<Rfc3526Group15>(&[a.clone(), a].concat()), &k);
    }
}

/// The low 64 bits key the discrete-log table: no two of g^j, |j| ≤ 2¹²,
/// may share them (hashing Montgomery forms, g^j and g^(j+29) did).
#[test]
fn fingerprints_separate_small_multiples_both_signs() {
    type G = Modp2048;
    let pts: Vec<_> = (-4096i64..=4096).map(G::mul_base_small).collect();
    let mut keys: Vec<u64> = G::fingerprints(&pts)
        .into_iter()
        .map(|f| f as u64)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), pts.len());
}

/// The FEIP case that caught fingerprints colliding (`feip` proptest):
/// ⟨x, y⟩ = 16065 = 2·8193 − 321 with a table of half-width 2¹².
#[test]
fn feip_round_trip_with_giant_steps() {
    use crate::feip::{Decryptor, derive_key, encrypt, setup};
    use crate::{DlogConfig, DlogTable};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    let (x, y) = ([-98i64, -255, 255], [-255i64, 0, -35]);
    let mut rng = StdRng::seed_from_u64(16_254_592_821_731_246_895);
    let (msk, mpk) = setup::<Modp2048, _>(3, &mut rng).unwrap();
    let key = derive_key(&msk, &y).unwrap();
    let ct = encrypt(&mpk, &x, &mut rng).unwrap();
    let table = DlogTable::<Modp2048>::new(DlogConfig::new(1 << 12, 1 << 24)).unwrap();
    assert_eq!(Decryptor::new(table.into()).decrypt(&key, &ct), Ok(16065));
}
