//! Names of master keys.

use core::fmt;

use rand_core::CryptoRng;

use crate::wire::{from_hex, to_hex};

/// A random 128-bit name for one master key, chosen at setup.
///
/// Public keys, ciphertexts and function keys all carry the name of their
/// master key, so that combining objects of different instances is a typed
/// error instead of a meaningless number. It is a label, not a MAC: it does
/// not stop a forger, only mix-ups.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 16]);

impl KeyId {
    /// A fresh random name.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The name with these raw bytes, for decoders of other containers than
    /// JSON. Every 16 bytes are a valid name.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes (the `id` field of `docs/FORMAT.md` is their hex).
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", to_hex(&self.0))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        let bytes = from_hex(&text, 16).map_err(serde::de::Error::custom)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes);
        Ok(Self(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let bytes = *b"0123456789abcdef";
        let id = KeyId::from_bytes(bytes);
        assert_eq!(id.as_bytes(), &bytes);
        assert_eq!(id.to_string(), "30313233343536373839616263646566");
    }

    #[test]
    fn rejects_id_not_32_lowercase_hex() {
        let id = |text: &str| serde_json::from_str::<KeyId>(text);
        assert!(id(r#""30313233343536373839616263646566""#).is_ok());
        assert!(id(r#""30313233343536373839616263646""#).is_err());
        assert!(id(r#""3031323334353637383961626364656F""#).is_err());
        assert!(id(r#"["30313233343536373839616263646566"]"#).is_err());
    }
}
