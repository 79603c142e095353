//! Wire-format helpers shared by every serializable type (see `docs/FORMAT.md`).

use core::fmt;
use core::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

use crate::group::{Group, GroupId};
use crate::{Error, Result};

/// Deserializes the struct `T` from a JSON object only.
///
/// Serde's derived `Deserialize` also accepts a struct written as an array of
/// its field values; FORMAT.md allows objects only, so this asks for a map and
/// hands it to `T`'s own visitor (which keeps `deny_unknown_fields`).
pub(crate) fn object<'de, D, T>(d: D, what: &'static str) -> core::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectVisitor<T>(&'static str, PhantomData<fn() -> T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a JSON object ({})", self.0)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> core::result::Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    d.deserialize_map(ObjectVisitor(what, PhantomData))
}

/// [`object`] on a whole JSON text, with nothing but whitespace after it.
pub(crate) fn object_from_json<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = object(&mut de, what)?;
    de.end()?;
    Ok(value)
}

/// Deserializes a name from a JSON string only, mapping it with `parse`.
///
/// Serde's derived enum `Deserialize` also accepts a unit variant in map form
/// (`{"ristretto255": null}`); FORMAT.md allows the string only.
pub(crate) fn from_name<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Option<T>,
) -> core::result::Result<T, D::Error> {
    struct NameVisitor<T>(&'static str, fn(&str) -> Option<T>);

    impl<T> Visitor<'_> for NameVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> core::result::Result<T, E> {
            (self.1)(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
        }
    }

    d.deserialize_str(NameVisitor(expecting, parse))
}

/// The `"group"` field of every serialized object: writes `G`'s name and
/// refuses any other on the way in.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GroupTag<G>(PhantomData<G>);

impl<G: Group> core::fmt::Debug for GroupTag<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(G::ID.name())
    }
}

impl<G: Group> serde::Serialize for GroupTag<G> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        G::ID.serialize(s)
    }
}

impl<'de, G: Group> serde::Deserialize<'de> for GroupTag<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let got = GroupId::deserialize(d)?;
        if got == G::ID {
            Ok(Self(PhantomData))
        } else {
            Err(serde::de::Error::custom(Error::WrongGroup {
                expected: G::ID,
                got,
            }))
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Decodes exactly `len` bytes of lowercase hex. The length is checked before
/// anything is allocated; upper-case digits are rejected so that every value
/// has one encoding.
pub(crate) fn from_hex(text: &str, len: usize) -> Result<Vec<u8>> {
    if text.len() != 2 * len {
        return Err(Error::InvalidEncoding("hex string has the wrong length"));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(Error::InvalidEncoding("not a lowercase hex digit")),
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(from_hex(&to_hex(&bytes), 5).unwrap(), bytes);
    }

    #[test]
    fn rejects_wrong_length_hex() {
        assert!(from_hex("abc", 2).is_err());
        assert!(from_hex("abcd", 1).is_err());
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: u8,
        b: u8,
    }

    fn pair(text: &str) -> serde_json::Result<Pair> {
        object_from_json(text, "pair")
    }

    #[test]
    fn object_keeps_the_struct_rules() {
        assert_eq!(
            pair(r#" {"b": 2, "a": 1} "#).ok(),
            Some(Pair { a: 1, b: 2 })
        );
        assert!(pair(r#"{"a": 1}"#).is_err());
        assert!(pair(r#"{"a": 1, "b": 2, "c": 3}"#).is_err());
        assert!(pair(r#"{"a": 1, "b": 2, "a": 1}"#).is_err());
        assert!(pair(r#"{"a": 1, "b": 2} {}"#).is_err());
    }

    #[test]
    fn rejects_array_for_object() {
        assert!(serde_json::from_str::<Pair>("[1, 2]").is_ok(), "test input");
        let err = pair("[1, 2]").unwrap_err().to_string();
        assert!(err.contains("expected a JSON object (pair)"), "{err}");
    }

    #[test]
    fn rejects_non_lowercase_hex() {
        assert!(from_hex("AB", 1).is_err());
        assert!(from_hex("zz", 1).is_err());
        assert!(from_hex("é", 1).is_err());
    }
}
