//! Projection mode: the real authority with the projection policy (row cap
//! K, column cap 0), row-only encryption, the K keys of the public
//! projection, and their decryptions: all the server will ever hold.

use std::sync::Arc;

use cryptonn::authority::{Authority, RankBudget};
use cryptonn::client::{Client, Samples};
use cryptonn::fe::Ristretto255;
use cryptonn::fe::feip::Decryptor;
use cryptonn::protocol::{Error, KeyService};
use cryptonn_audit::Equations;
use cryptonn_mnist::config::TrainingConfig;
use cryptonn_mnist::projection::projection;
use rand::rngs::StdRng;

use super::AuditResult;

/// The server's equations on one batch in projection mode with K outputs.
pub fn equations(
    config: &TrainingConfig,
    truth: &[i64],
    features: usize,
    decryptor: &Decryptor<Ristretto255>,
    rng: &mut StdRng,
) -> AuditResult<Equations> {
    let k = config.projection_dim;
    let min_support = config.quantization.min_key_support;
    let authority = Arc::new(Authority::<Ristretto255>::new(RankBudget::projection(
        k,
        min_support,
        rng,
    )));
    let keys = authority.row_keys(features, rng)?;
    let samples = Samples {
        inputs: truth,
        features,
        input_scale: 255.0,
        labels: None,
    };
    let batch = Client::for_rows(&keys)?.encrypt_rows(&samples, 1, rng)?;
    let server = authority.requester("curious-server");
    let vectors = projection(config)?.key_vectors().to_vec();
    let fkeys = server.feip_keys(batch.row_key(), &vectors)?;
    let z = decryptor.decrypt_batch(&fkeys, batch.rows())?; // [sample][key]
    let b = truth.len() / features;
    let forward = vectors
        .into_iter()
        .enumerate()
        .map(|(j, y)| (y, (0..b).map(|s| z[s * k + j]).collect()))
        .collect();
    Ok(Equations {
        forward,
        gradient: Vec::new(),
    })
}

/// What the projection policy answers a server that asks for more: one row
/// key beyond K on the same ciphertexts, and one weight-gradient key.
pub fn refusals(
    config: &TrainingConfig,
    features: usize,
    batch: usize,
    rng: &mut StdRng,
) -> AuditResult<[String; 2]> {
    let k = config.projection_dim;
    let policy = RankBudget::projection(k, config.quantization.min_key_support, rng);
    let authority = Arc::new(Authority::<Ristretto255>::new(policy));
    let keys = authority.batch_keys(features, batch, rng)?;
    let server = authority.requester("curious-server");
    let vectors = projection(&config.clone().with_projection_dim(k + 1))?
        .key_vectors()
        .to_vec();
    server.feip_keys(keys.rows.id(), &vectors[..k])?;
    let refused = |r: cryptonn::protocol::Result<_>| match r {
        Err(Error::KeyRefused(why)) => Ok(why),
        Err(e) => Err(e),
        Ok(_) => Ok("issued (the policy failed)".to_string()),
    };
    let extra = refused(server.feip_keys(keys.rows.id(), &vectors[k..]))?;
    let column = refused(server.feip_keys(keys.cols.id(), &[vec![1; batch]]))?;
    Ok([extra, column])
}
