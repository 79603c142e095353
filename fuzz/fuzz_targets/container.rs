//! The binary batch container decoder (`docs/FORMAT.md`, "Encrypted batch
//! files"): arbitrary bytes must give an error or a batch, never a panic, a
//! hang or an allocation out of proportion to the input. The harness lives in
//! the library (`cryptonn_protocol::container::fuzz_decode`): the first byte
//! picks the group and kind, and can ask for the checksum to be fixed so the
//! fuzzer reaches the point decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cryptonn::protocol::container::fuzz_decode(data);
});
