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
//! `RankBudget::projection` (in `cryptonn-authority`) policy (row cap
//! K, column cap 0) the server holds K equations per image for life.
//!
//! P is a sparse random projection with entries in {−c, 0, c}, so each
//! decrypted activation costs one group addition per non-zero entry.
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

use cryptonn_protocol::EncryptedRows;

use crate::Error;
use cryptonn_server::{Quantized, quantize_columns};

use crate::context::SecureContext;

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
    /// Share of non-zero entries in each row of P, in (0, 1]. Default 1/3
    /// (Achlioptas' sparse projection: as good as a Gaussian one for
    /// distances, and each decryption costs a third of the additions).
    #[config(default = 0.333_333_333_333_333_3)]
    pub density: f64,
    /// Euclidean norm of each row of P (about): 3 gives activations of unit
    /// order on MNIST pixels in [0, 1]. Default 3.
    #[config(default = 3.0)]
    pub gain: f64,
}

impl SecureProjectionConfig {
    /// The projection: K rows of independent entries, each +c or −c with
    /// probability `density`/2 and 0 otherwise, c = gain/√(density·d_in), drawn
    /// row after row from the seed (so the first k rows of a wider projection
    /// with the same seed are the k-row projection). Its key vectors are the
    /// rows' signs, entries in {−1, 0, 1}: one group addition per non-zero.
    ///
    /// # Errors
    /// [`Error::Shape`] if K is 0 or above `d_input`, or the density is not in (0, 1].
    pub fn init(&self) -> crate::Result<SecureProjection> {
        let (n, k) = (self.d_input, self.d_output);
        if k == 0 || k > n || !(self.density > 0.0 && self.density <= 1.0) {
            return Err(Error::Shape {
                what: "projection (K in 1..=d_input, density in (0, 1])",
                expected: vec![n, n],
                got: vec![n, k],
            });
        }
        let c = self.gain / (self.density * n as f64).sqrt();
        let signs = sparse_signs(n, k, self.density, self.seed);
        // quantize_columns takes [d_in, K] row-major: column j is row j of P.
        let mut columns = vec![0f32; n * k];
        for (j, row) in signs.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                columns[i * k + j] = (f64::from(v) * c) as f32;
            }
        }
        // Two signed bits hold −1, 0, 1 exactly.
        let keys = quantize_columns(&columns, n, k, 2, 1)?;
        Ok(SecureProjection {
            keys: Arc::new(keys),
            d_input: n,
        })
    }
}

/// K rows of n entries in {−1, 0, 1}, seeded, row after row; a row that
/// comes out all zero (with a tiny density) is drawn again.
fn sparse_signs(n: usize, k: usize, density: f64, seed: u64) -> Vec<Vec<i8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows = Vec::with_capacity(k);
    while rows.len() < k {
        let row: Vec<i8> = (0..n)
            .map(|_| {
                let u: f64 = rng.random();
                if u < density / 2.0 {
                    -1
                } else if u < density {
                    1
                } else {
                    0
                }
            })
            .collect();
        if row.iter().any(|&v| v != 0) {
            rows.push(row);
        }
    }
    rows
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
        let z = ctx.server().decrypt_columns(
            samples.row_key(),
            samples.rows(),
            &self.keys,
            samples.input_scale(),
            1,
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
