//! Optional JSON fields with one encoding: absent for none, a value for
//! some, never `null`.

use serde::Deserialize;

/// Use with `#[serde(default, skip_serializing_if = "Option::is_none",
/// deserialize_with = "present")]`: absence is the only form of `None`, so
/// values written before the field existed read back unchanged.
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> core::result::Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
