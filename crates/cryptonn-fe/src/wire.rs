//! Wire-format helpers shared by every serializable type (see `docs/FORMAT.md`).

use core::marker::PhantomData;

use crate::group::{Group, GroupId};
use crate::{Error, Result};

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

    #[test]
    fn rejects_non_lowercase_hex() {
        assert!(from_hex("AB", 1).is_err());
        assert!(from_hex("zz", 1).is_err());
        assert!(from_hex("é", 1).is_err());
    }
}
