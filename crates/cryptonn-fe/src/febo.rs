//! FEBO: functional encryption for one basic operation, after CryptoNN
//! (Xu, Joshi, Li, 2019, §III-B), in a group 𝔾 of prime order q.
//!
//! - **Setup**: s ← ℤ_q, h = s·g. msk = s, mpk = h.
//! - **Encrypt(mpk, x)**: r ← ℤ_q, cmt = r·g, ct = r·h + x·g.
//! - **KeyDerive(msk, cmt, ∘, y)**, bound to one ciphertext through cmt:
//!   - `+`: sk = s·cmt − y·g, and ct − sk = (x + y)·g;
//!   - `−`: sk = s·cmt + y·g, and ct − sk = (x − y)·g;
//!   - `×`: sk = (s·y)·cmt, and y·ct − sk = (x·y)·g;
//!   - `÷`: sk = (s·y⁻¹)·cmt, and y⁻¹·ct − sk = (x·y⁻¹ mod q)·g.
//! - **Decrypt**: the point above, then a bounded discrete log.
//!
//! Division is modulo q (the group order; the authors' prototype wrongly
//! inverts modulo p). For |x| < 2⁶³ and bound·|y| < 2⁶², x·y⁻¹ mod q lies in
//! [−bound, bound] exactly when y divides x, so a quotient found by the
//! discrete log is always the exact one and anything else is
//! [`Error::InexactDivision`].

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::dlog::DlogTable;
use crate::group::Group;
use crate::key_id::KeyId;
use crate::wire::{self, GroupTag};
use crate::{Error, Result};

/// The basic operation a FEBO key computes.
///
/// Its serde form is the string `"add"`, `"sub"`, `"mul"` or `"div"`; nothing
/// else is accepted on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// x + y.
    Add,
    /// x − y.
    Sub,
    /// x · y.
    Mul,
    /// x / y, exact.
    Div,
}

impl Op {
    const ALL: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Div];

    /// The wire name, e.g. `"sub"`.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
        }
    }
}

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        wire::from_name(
            d,
            "an operation string: \"add\", \"sub\", \"mul\" or \"div\"",
            |s| Op::ALL.into_iter().find(|op| op.name() == s),
        )
    }
}

/// The FEBO master secret s. Zeroized on drop, redacted `Debug`, no serde.
pub struct MasterSecretKey<G: Group> {
    id: KeyId,
    s: G::Scalar,
}

impl<G: Group> core::fmt::Debug for MasterSecretKey<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterSecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct MasterSecretKeyWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    s: G::Scalar,
}

impl<G: Group> MasterSecretKey<G> {
    /// The name of this master key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key as JSON (format in `docs/FORMAT.md`).
    ///
    /// # Security
    /// The text is the master secret; it is zeroized when dropped.
    pub fn to_json_exposing_secret(&self) -> Zeroizing<String> {
        let wire = MasterSecretKeyWire::<G> {
            group: GroupTag::default(),
            id: self.id,
            s: self.s.clone(),
        };
        Zeroizing::new(serde_json::to_string_pretty(&wire).unwrap_or_default())
    }

    /// Reads a key written by [`MasterSecretKey::to_json_exposing_secret`].
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for malformed JSON (including an array in
    /// place of the object) or a wrong group.
    pub fn from_json(text: &str) -> Result<Self> {
        let wire: MasterSecretKeyWire<G> =
            wire::object_from_json(text, "FEBO master secret key")
                .map_err(|_| Error::InvalidEncoding("malformed FEBO master secret key"))?;
        Ok(Self {
            id: wire.id,
            s: wire.s,
        })
    }
}

/// The FEBO public key h = s·g.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound = "")]
pub struct MasterPublicKey<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    h: G::Element,
}

/// The fields of [`MasterPublicKey`] as read.
#[derive(Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct MasterPublicKeyWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    h: G::Element,
}

impl<'de, G: Group> Deserialize<'de> for MasterPublicKey<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let w: MasterPublicKeyWire<G> = wire::object(d, "FEBO master public key")?;
        Ok(Self {
            group: w.group,
            id: w.id,
            h: w.h,
        })
    }
}

impl<G: Group> MasterPublicKey<G> {
    /// The name of the master key.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

/// An encryption of one integer: the commitment cmt = r·g and ct = r·h + x·g.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound = "")]
pub struct Ciphertext<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    cmt: G::Element,
    ct: G::Element,
}

/// The fields of [`Ciphertext`] as read.
#[derive(Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct CiphertextWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    cmt: G::Element,
    ct: G::Element,
}

impl<'de, G: Group> Deserialize<'de> for Ciphertext<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let w: CiphertextWire<G> = wire::object(d, "FEBO ciphertext")?;
        Ok(Self {
            group: w.group,
            id: w.id,
            cmt: w.cmt,
            ct: w.ct,
        })
    }
}

impl<G: Group> Ciphertext<G> {
    /// A ciphertext from its parts, for decoders of other containers than
    /// JSON: the name of the master key, cmt = r·g and ct = r·h + x·g. The
    /// elements are valid by their type; nothing checks that they were made
    /// by [`encrypt`].
    pub fn from_parts(id: KeyId, cmt: G::Element, ct: G::Element) -> Self {
        Self {
            group: GroupTag::default(),
            id,
            cmt,
            ct,
        }
    }

    /// The element ct = r·h + x·g that carries the plaintext.
    pub fn value(&self) -> &G::Element {
        &self.ct
    }

    /// The commitment cmt = r·g that keys are bound to.
    pub fn commitment(&self) -> &G::Element {
        &self.cmt
    }

    /// The master key it was encrypted under.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

/// A key computing `x op y` for the one ciphertext with commitment `cmt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound = "")]
pub struct FunctionKey<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    cmt: G::Element,
    op: Op,
    y: i64,
    sk: G::Element,
}

/// The fields of [`FunctionKey`] as read.
#[derive(Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct FunctionKeyWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    cmt: G::Element,
    op: Op,
    y: i64,
    sk: G::Element,
}

impl<'de, G: Group> Deserialize<'de> for FunctionKey<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let w: FunctionKeyWire<G> = wire::object(d, "FEBO function key")?;
        Ok(Self {
            group: w.group,
            id: w.id,
            cmt: w.cmt,
            op: w.op,
            y: w.y,
            sk: w.sk,
        })
    }
}

impl<G: Group> FunctionKey<G> {
    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The plaintext operand y.
    pub fn operand(&self) -> i64 {
        self.y
    }
}

/// Generates a FEBO master key pair.
pub fn setup<G: Group, R: CryptoRng + ?Sized>(
    rng: &mut R,
) -> (MasterSecretKey<G>, MasterPublicKey<G>) {
    let id = KeyId::random(rng);
    let s = G::scalar_random(rng);
    let h = G::mul_base(&s);
    (
        MasterSecretKey { id, s },
        MasterPublicKey {
            group: GroupTag::default(),
            id,
            h,
        },
    )
}

/// Encrypts x.
///
/// # Errors
/// [`Error::Identity`] if the public key is the identity (it would expose x).
pub fn encrypt<G: Group, R: CryptoRng + ?Sized>(
    mpk: &MasterPublicKey<G>,
    x: i64,
    rng: &mut R,
) -> Result<Ciphertext<G>> {
    if G::is_identity(&mpk.h) {
        return Err(Error::Identity("FEBO public key"));
    }
    let r = G::scalar_random(rng);
    let ct = G::add(&G::mul(&mpk.h, &r), &G::mul_base_small(x));
    Ok(Ciphertext {
        group: GroupTag::default(),
        id: mpk.id,
        cmt: G::mul_base(&r),
        ct,
    })
}

/// Derives the key for `x op y` on the ciphertext whose commitment is `cmt`.
///
/// # Errors
/// [`Error::InexactDivision`] for division by zero; [`Error::Identity`] for an
/// identity commitment (it would make the key reveal nothing but y·g and
/// means the ciphertext is malformed).
pub fn derive_key<G: Group>(
    msk: &MasterSecretKey<G>,
    cmt: &G::Element,
    op: Op,
    y: i64,
) -> Result<FunctionKey<G>> {
    derive_with(msk, cmt, op, y, None)
}

/// [`derive_key`] for many requests (commitment, operation, operand) under
/// one master key, in order. The s·cmt of additions and subtractions share
/// one call to [`Group::mul_many`] (SIMD lanes in the 2048-bit MODP group).
///
/// # Errors
/// As [`derive_key`], for the first request that fails.
pub fn derive_keys<G: Group>(
    msk: &MasterSecretKey<G>,
    requests: &[(&G::Element, Op, i64)],
) -> Result<Vec<FunctionKey<G>>> {
    if requests.iter().any(|(cmt, _, _)| G::is_identity(cmt)) {
        return Err(Error::Identity("FEBO commitment"));
    }
    let additive = |op: Op| matches!(op, Op::Add | Op::Sub);
    let cmts: Vec<G::Element> = requests
        .iter()
        .filter(|(_, op, _)| additive(*op))
        .map(|(cmt, _, _)| (*cmt).clone())
        .collect();
    let mut s_cmts = G::mul_many(&cmts, &msk.s).into_iter();
    requests
        .iter()
        .map(|&(cmt, op, y)| {
            let s_cmt = if additive(op) { s_cmts.next() } else { None };
            derive_with(msk, cmt, op, y, s_cmt)
        })
        .collect()
}

/// The key, with s·cmt given for an addition or subtraction, or computed.
fn derive_with<G: Group>(
    msk: &MasterSecretKey<G>,
    cmt: &G::Element,
    op: Op,
    y: i64,
    s_cmt: Option<G::Element>,
) -> Result<FunctionKey<G>> {
    if G::is_identity(cmt) {
        return Err(Error::Identity("FEBO commitment"));
    }
    // Called at most once, by the one arm that needs it.
    let s_cmt = move || s_cmt.unwrap_or_else(|| G::mul(cmt, &msk.s));
    let sk = match op {
        Op::Add => G::sub(&s_cmt(), &G::mul_base_small(y)),
        Op::Sub => G::add(&s_cmt(), &G::mul_base_small(y)),
        Op::Mul => G::mul(cmt, &G::scalar_mul(&msk.s, &G::scalar_from_i64(y))),
        Op::Div => {
            let inv = G::scalar_invert(&G::scalar_from_i64(y))
                .ok_or(Error::InexactDivision("division by zero"))?;
            G::mul(cmt, &G::scalar_mul(&msk.s, &inv))
        }
    };
    Ok(FunctionKey {
        group: GroupTag::default(),
        id: msk.id,
        cmt: cmt.clone(),
        op,
        y,
        sk,
    })
}

/// Computes `x op y` from the ciphertext of x and a key bound to it.
///
/// # Errors
/// [`Error::KeyMismatch`] if the key is for another ciphertext or master key;
/// [`Error::OutOfBound`] if the result exceeds the table's bound;
/// [`Error::InexactDivision`] if y does not divide x (or the quotient exceeds
/// the bound).
pub fn decrypt<G: Group>(
    table: &DlogTable<G>,
    key: &FunctionKey<G>,
    ct: &Ciphertext<G>,
) -> Result<i64> {
    if key.id != ct.id {
        return Err(Error::KeyMismatch(
            "FEBO key and ciphertext are under different master keys",
        ));
    }
    if key.cmt != ct.cmt {
        return Err(Error::KeyMismatch(
            "FEBO key is bound to another ciphertext",
        ));
    }
    let point = match key.op {
        Op::Add | Op::Sub => G::sub(&ct.ct, &key.sk),
        Op::Mul => G::sub(&G::vartime_mul_small(&ct.ct, key.y), &key.sk),
        Op::Div => {
            let inv = G::scalar_invert(&G::scalar_from_i64(key.y))
                .ok_or(Error::InexactDivision("division by zero"))?;
            G::sub(&G::mul(&ct.ct, &inv), &key.sk)
        }
    };
    match (key.op, table.solve(&point)) {
        (Op::Div, Err(Error::OutOfBound { .. })) => Err(Error::InexactDivision(
            "the operand does not divide the plaintext, or the quotient exceeds the bound",
        )),
        (_, result) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlog::DlogConfig;
    use crate::group::{Modp2048, Ristretto255};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::OnceLock;

    /// The batch derivation gives the one-by-one keys for every operation,
    /// with more than one lane group of additive requests (11 = 8 + 3), and
    /// refuses an identity commitment.
    fn check_derive_keys<G: Group>() {
        let mut rng = StdRng::seed_from_u64(21);
        let (msk, mpk) = setup::<G, _>(&mut rng);
        let cts: Vec<_> = (0..14)
            .map(|i| encrypt(&mpk, i * 3 - 7, &mut rng).unwrap())
            .collect();
        let ops = [
            Op::Sub,
            Op::Add,
            Op::Sub,
            Op::Mul,
            Op::Sub,
            Op::Div,
            Op::Add,
        ];
        let requests: Vec<(&G::Element, Op, i64)> = cts
            .iter()
            .enumerate()
            .map(|(i, ct)| {
                (
                    &ct.cmt,
                    ops[i % ops.len()],
                    i as i64 - 5 + i64::from(i == 5),
                )
            })
            .collect();
        let batch = derive_keys(&msk, &requests).unwrap();
        for ((cmt, op, y), key) in requests.iter().zip(&batch) {
            let one = derive_key(&msk, cmt, *op, *y).unwrap();
            assert!(one.sk == key.sk && one.cmt == key.cmt && (one.op, one.y) == (key.op, key.y));
        }
        let id = G::identity();
        assert!(derive_keys(&msk, &[(&id, Op::Sub, 1)]).is_err());
    }

    #[test]
    fn derive_keys_matches_derive_key() {
        check_derive_keys::<Ristretto255>();
        check_derive_keys::<Modp2048>();
    }

    const BOUND: u64 = 1 << 24;

    fn table<G: Group>() -> DlogTable<G> {
        DlogTable::new(DlogConfig::new(1 << 12, BOUND)).unwrap()
    }

    fn ristretto() -> &'static DlogTable<Ristretto255> {
        static T: OnceLock<DlogTable<Ristretto255>> = OnceLock::new();
        T.get_or_init(table)
    }

    fn expected(x: i64, op: Op, y: i64) -> Option<i64> {
        match op {
            Op::Add => Some(x + y),
            Op::Sub => Some(x - y),
            Op::Mul => Some(x * y),
            Op::Div => (y != 0 && x % y == 0).then(|| x / y),
        }
    }

    fn check<G: Group>(t: &DlogTable<G>, x: i64, op: Op, y: i64, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (msk, mpk) = setup::<G, _>(&mut rng);
        let ct = encrypt(&mpk, x, &mut rng).unwrap();
        let key = derive_key(&msk, ct.commitment(), op, y);
        match (expected(x, op, y), key) {
            (Some(v), Ok(key)) => assert_eq!(decrypt(t, &key, &ct), Ok(v)),
            (None, Ok(key)) => assert!(matches!(
                decrypt(t, &key, &ct),
                Err(Error::InexactDivision(_))
            )),
            (None, Err(e)) => assert!(matches!(e, Error::InexactDivision(_))),
            (Some(_), Err(e)) => panic!("unexpected {e}"),
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![Just(Op::Add), Just(Op::Sub), Just(Op::Mul), Just(Op::Div)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn decrypts_every_op_ristretto(x in -4000i64..=4000, y in -4000i64..=4000, op in op(), seed: u64) {
            check(ristretto(), x, op, y, seed);
        }
    }

    #[test]
    fn decrypts_every_op_modp() {
        let t = table::<Modp2048>();
        for (x, op, y) in [
            (7, Op::Add, -9),
            (7, Op::Sub, 9),
            (-12, Op::Mul, 11),
            (-42, Op::Div, 6),
            (43, Op::Div, 6),
        ] {
            check(&t, x, op, y, 9);
        }
    }

    #[test]
    fn division_by_zero_is_an_error() {
        let mut rng = StdRng::seed_from_u64(1);
        let (msk, mpk) = setup::<Ristretto255, _>(&mut rng);
        let ct = encrypt(&mpk, 5, &mut rng).unwrap();
        assert!(matches!(
            derive_key(&msk, ct.commitment(), Op::Div, 0),
            Err(Error::InexactDivision(_))
        ));
    }

    #[test]
    fn rejects_key_for_another_ciphertext() {
        let mut rng = StdRng::seed_from_u64(2);
        let (msk, mpk) = setup::<Ristretto255, _>(&mut rng);
        let a = encrypt(&mpk, 5, &mut rng).unwrap();
        let b = encrypt(&mpk, 6, &mut rng).unwrap();
        let key = derive_key(&msk, a.commitment(), Op::Sub, 1).unwrap();
        assert!(matches!(
            decrypt(ristretto(), &key, &b),
            Err(Error::KeyMismatch(_))
        ));
        assert!(matches!(
            derive_key(&msk, &Ristretto255::identity(), Op::Add, 1),
            Err(Error::Identity(_))
        ));
    }

    /// Each object's name and its fields in declaration order (the order of
    /// serde's array form).
    const OBJECTS: [(&str, &[&str]); 4] = [
        ("mpk", &["group", "id", "h"]),
        ("msk", &["group", "id", "s"]),
        ("ct", &["group", "id", "cmt", "ct"]),
        ("key", &["group", "id", "cmt", "op", "y", "sk"]),
    ];

    /// Valid JSON of every object, in the order of `OBJECTS`.
    fn samples<G: Group>() -> Vec<serde_json::Value> {
        let mut rng = StdRng::seed_from_u64(4);
        let (msk, mpk) = setup::<G, _>(&mut rng);
        let ct = encrypt(&mpk, 7, &mut rng).unwrap();
        let key = derive_key(&msk, ct.commitment(), Op::Sub, 2).unwrap();
        [
            serde_json::to_value(&mpk).unwrap(),
            serde_json::from_str(&msk.to_json_exposing_secret()).unwrap(),
            serde_json::to_value(&ct).unwrap(),
            serde_json::to_value(&key).unwrap(),
        ]
        .into()
    }

    fn decodes<G: Group>(name: &str, text: &str) -> bool {
        match name {
            "mpk" => serde_json::from_str::<MasterPublicKey<G>>(text).is_ok(),
            "msk" => MasterSecretKey::<G>::from_json(text).is_ok(),
            "ct" => serde_json::from_str::<Ciphertext<G>>(text).is_ok(),
            _ => serde_json::from_str::<FunctionKey<G>>(text).is_ok(),
        }
    }

    /// What serde's derive alone would accept (the wire structs).
    fn derived_accepts<G: Group>(name: &str, text: &str) -> bool {
        match name {
            "mpk" => serde_json::from_str::<MasterPublicKeyWire<G>>(text).is_ok(),
            "msk" => serde_json::from_str::<MasterSecretKeyWire<G>>(text).is_ok(),
            "ct" => serde_json::from_str::<CiphertextWire<G>>(text).is_ok(),
            _ => serde_json::from_str::<FunctionKeyWire<G>>(text).is_ok(),
        }
    }

    fn check_rejects_array_form<G: Group>() {
        for ((name, fields), value) in OBJECTS.iter().zip(samples::<G>()) {
            assert!(decodes::<G>(name, &value.to_string()), "{name}");
            let array: Vec<_> = fields.iter().map(|f| value[*f].clone()).collect();
            let array = serde_json::Value::Array(array).to_string();
            assert!(derived_accepts::<G>(name, &array), "{name}: test input");
            assert!(!decodes::<G>(name, &array), "{name}");
        }
    }

    #[test]
    fn rejects_array_form() {
        check_rejects_array_form::<Ristretto255>();
        check_rejects_array_form::<Modp2048>();
    }

    fn check_rejects_group_not_a_string<G: Group>() {
        let forms = [
            serde_json::json!({ G::ID.name(): null }),
            serde_json::json!([G::ID.name()]),
            serde_json::json!(null),
        ];
        for ((name, _), value) in OBJECTS.iter().zip(samples::<G>()) {
            for form in &forms {
                let mut bad = value.clone();
                bad["group"] = form.clone();
                assert!(!decodes::<G>(name, &bad.to_string()), "{name}: {form}");
            }
        }
    }

    #[test]
    fn rejects_group_not_a_string() {
        check_rejects_group_not_a_string::<Ristretto255>();
        check_rejects_group_not_a_string::<Modp2048>();
    }

    #[test]
    fn rejects_op_not_a_string() {
        let key = samples::<Ristretto255>().swap_remove(3);
        assert!(decodes::<Ristretto255>("key", &key.to_string()));
        for form in [
            serde_json::json!({ "sub": null }),
            serde_json::json!("Sub"),
            serde_json::json!("-"),
            serde_json::json!(1),
        ] {
            let mut bad = key.clone();
            bad["op"] = form.clone();
            assert!(!decodes::<Ristretto255>("key", &bad.to_string()), "{form}");
        }
    }

    #[test]
    fn from_parts_round_trips() {
        let mut rng = StdRng::seed_from_u64(5);
        let (_, mpk) = setup::<Ristretto255, _>(&mut rng);
        let ct = encrypt(&mpk, 11, &mut rng).unwrap();
        let id = KeyId::from_bytes(*ct.id().as_bytes());
        let parts = Ciphertext::from_parts(id, *ct.commitment(), *ct.value());
        assert_eq!(parts, ct);
    }

    #[test]
    fn serde_round_trips() {
        let mut rng = StdRng::seed_from_u64(3);
        let (msk, mpk) = setup::<Ristretto255, _>(&mut rng);
        let ct = encrypt(&mpk, -5, &mut rng).unwrap();
        let key = derive_key(&msk, ct.commitment(), Op::Mul, 3).unwrap();
        let ct2: Ciphertext<Ristretto255> =
            serde_json::from_str(&serde_json::to_string(&ct).unwrap()).unwrap();
        let key2: FunctionKey<Ristretto255> =
            serde_json::from_str(&serde_json::to_string(&key).unwrap()).unwrap();
        let msk2 =
            MasterSecretKey::<Ristretto255>::from_json(&msk.to_json_exposing_secret()).unwrap();
        assert_eq!(derive_key(&msk2, ct.commitment(), Op::Mul, 3).unwrap(), key);
        assert_eq!(decrypt(ristretto(), &key2, &ct2), Ok(-15));
    }
}
