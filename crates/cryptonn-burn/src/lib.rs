//! Burn glue for CryptoNN: encrypted batches and a first layer that trains on them.
