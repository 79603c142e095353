//! Every decoder of untrusted bytes: the first byte picks one, the rest is its
//! input. Each must return an error or a value, never panic or hang.
#![no_main]

use std::path::Path;

use cryptonn::fe::{Modp2048, Ristretto255, febo, feip};
use cryptonn::mnist::idx;
use cryptonn::nn::{EncryptedBatch, EncryptedImages};
use libfuzzer_sys::fuzz_target;

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
    let _ = serde_json::from_slice::<T>(bytes);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 13 {
        0 => json::<feip::MasterPublicKey<Ristretto255>>(rest),
        1 => json::<feip::FunctionKey<Ristretto255>>(rest),
        2 => json::<feip::Ciphertext<Ristretto255>>(rest),
        3 => json::<febo::MasterPublicKey<Ristretto255>>(rest),
        4 => json::<febo::FunctionKey<Ristretto255>>(rest),
        5 => json::<febo::Ciphertext<Ristretto255>>(rest),
        6 => json::<EncryptedBatch<Ristretto255>>(rest),
        7 => json::<feip::Ciphertext<Modp2048>>(rest),
        8 => json::<EncryptedBatch<Modp2048>>(rest),
        9 => {
            let _ = std::str::from_utf8(rest).map(feip::MasterSecretKey::<Ristretto255>::from_json);
        }
        10 => {
            let _ = idx::parse(rest, 1, Path::new("fuzz"));
        }
        11 => json::<EncryptedImages<Ristretto255>>(rest),
        _ => {
            let _ = idx::parse(rest, 3, Path::new("fuzz"));
        }
    }
});
