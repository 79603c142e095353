//! `SecureProjection`: a fixed public first layer whose leakage does not grow
//! with training.
//!
//! CryptoNN's [`SecureLinear`](crate::SecureLinear) asks for keys for new
//! weight vectors at every step and for weight-gradient keys on every batch,
//! so the equations a server holds on each image grow with every epoch. Here
//! the first layer is a fixed public projection P (K × d_in, seeded, never
//! trained). Each image's K activations P·x are decrypted **once**, with K
//! row keys per master key, and cached by the server; every later layer
//! trains in plain Burn for any number of epochs. With the authority's
//! [`RankBudget::projection`](crate::RankBudget::projection) policy (row cap
//! K, column cap 0) the server holds K equations per image for life.
//!
//! K equations on 784 pixels are still information: `docs/THREAT_MODEL.md`
//! has the measured reconstruction attacks for each K.

use std::sync::Arc;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use cryptonn_fe::Group;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::batch::EncryptedRows;
use crate::quantize::{Quantized, quantize_columns};
use crate::server::SecureContext;
use crate::Error;

/// Configuration of a [`SecureProjection`].
#[derive(Config, Debug)]
pub struct SecureProjectionConfig {
    /// Input features (784 for MNIST).
    pub d_input: usize,
    /// K: outputs, the equations each image reveals for life.
    pub d_output: usize,
    /// Seed of the public projection. Default 0.
    #[config(default = 0)]
    pub seed: u64,
    /// Signed bits of each quantized entry of P (2..=30). Default 8.
    #[config(default = 8)]
    pub bits: u32,
    /// Euclidean norm of each row of P: 3 gives activations of unit order on
    /// MNIST pixels in [0, 1]. Default 3.
    #[config(default = 3.0)]
    pub gain: f64,
}

impl SecureProjectionConfig {
    /// The projection: K orthonormal rows (Gram–Schmidt on seeded Gaussian
    /// rows, in order, so the first k rows of a wider projection with the
    /// same seed are the k-row projection) times `gain`, quantized row by row.
    ///
    /// # Errors
    /// [`Error::Shape`] if K is 0 or above `d_input`; a quantization error
    /// for a bit width outside 2..=30.
    pub fn init(&self) -> crate::Result<SecureProjection> {
        let (n, k) = (self.d_input, self.d_output);
        if k == 0 || k > n {
            return Err(Error::Shape {
                what: "projection (K must be in 1..=d_input)",
                expected: vec![n, n],
                got: vec![n, k],
            });
        }
        let rows = orthonormal_rows(n, k, self.seed);
        // quantize_columns takes [d_in, K] row-major: column j is row j of P.
        let mut columns = vec![0f32; n * k];
        for (j, row) in rows.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                columns[i * k + j] = (v * self.gain) as f32;
            }
        }
        let keys = quantize_columns(&columns, n, k, self.bits, 1)?;
        Ok(SecureProjection {
            keys: Arc::new(keys),
            d_input: n,
        })
    }
}

/// Seeded Gaussian rows made orthonormal by Gram–Schmidt, in order.
fn orthonormal_rows(n: usize, k: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(k);
    while rows.len() < k {
        let mut v: Vec<f64> = (0..n).map(|_| gaussian(&mut rng)).collect();
        for r in &rows {
            let dot: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(r).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        // A draw inside the span of the others (never, in practice) is redrawn.
        if norm > 1e-6 {
            rows.push(v.into_iter().map(|a| a / norm).collect());
        }
    }
    rows
}

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * core::f64::consts::PI * v).cos()
}

/// A fixed public projection `z = x·Pᵀ` whose input arrives encrypted; it
/// has no trainable parameters and never asks for a weight-gradient key.
///
/// Put it first in a model and train the rest on its output: decrypt each
/// batch once with [`SecureProjection::forward`], keep the activations, and
/// feed them to ordinary Burn layers for as many epochs as needed.
#[derive(Module, Debug)]
pub struct SecureProjection {
    #[module(skip)]
    keys: Arc<Quantized>,
    #[module(skip)]
    d_input: usize,
}

impl SecureProjection {
    /// `[d_in, K]`.
    pub fn dims(&self) -> [usize; 2] {
        [self.d_input, self.keys.columns()]
    }

    /// The integer key vectors, one row of P each: the only vectors the
    /// server ever asks keys for.
    pub fn key_vectors(&self) -> &[Vec<i64>] {
        &self.keys.vectors
    }

    /// P·x for encrypted samples: K keys under the rows' master key, one
    /// decryption per sample and output.
    ///
    /// # Shapes
    /// `EncryptedRows [batch, d_in] -> [batch, K]`
    ///
    /// # Errors
    /// [`Error::Shape`] for samples of the wrong width; a key refusal from
    /// the authority (e.g. a budget already spent on these ciphertexts);
    /// [`cryptonn_fe::Error::OutOfBound`] if a product exceeds the
    /// discrete-log bound.
    pub fn forward<G: Group>(
        &self,
        samples: &EncryptedRows<G>,
        ctx: &SecureContext<G>,
        device: &Device,
    ) -> crate::Result<Tensor<2>> {
        let [rows, features] = samples.shape();
        let [d_in, k] = self.dims();
        if features != d_in {
            return Err(Error::Shape {
                what: "encrypted samples",
                expected: vec![rows, d_in],
                got: vec![rows, features],
            });
        }
        let z = ctx.decrypt_columns(
            samples.row_key(),
            samples.rows(),
            &self.keys,
            samples.input_scale(),
        )?;
        Ok(Tensor::from_data(TensorData::new(z, [rows, k]), device))
    }

    /// The same projection on plaintext input (the quantized P, so the
    /// result equals the decrypted one up to float rounding).
    ///
    /// # Shapes
    /// `[batch, d_in] -> [batch, K]`
    pub fn forward_plain(&self, input: Tensor<2>) -> Tensor<2> {
        let [n, k] = self.dims();
        let keys = &self.keys;
        let mut p = vec![0f32; n * k];
        for (j, row) in keys.vectors.iter().enumerate() {
            let scale = keys.scales[j].scale();
            for (i, &v) in row.iter().enumerate() {
                p[i * k + j] = (v as f64 / scale) as f32;
            }
        }
        let p = Tensor::<2>::from_data(TensorData::new(p, [n, k]), &input.device());
        input.matmul(p)
    }
}
