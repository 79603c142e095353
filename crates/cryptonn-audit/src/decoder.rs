//! Attack (e): a learned prior. A decoder trained with Burn on public images
//! (and warped copies of them, [`super::augment`]) maps what the server
//! decrypted, Uᵀx for the batch's orthonormal keys U, to an image; the
//! exact consistency projection ([`super::consistency`]) then moves it to
//! the nearest image that gives exactly those values.
//!
//! The loss is the mean over images of ln(MSE + ε): the PSNR the audit
//! scores, so no image's error dominates the fit.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::affine::{Basis, read, tensor};
use super::consistency::project_consistent;
use super::{Equations, Error, PEAK};

/// Results of this module (named apart: `Config`'s derive uses `Result`).
type Fallible<T> = super::Result<T>;

/// The decoder and its training.
#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Width of each hidden layer. Default 1024.
    #[config(default = 1024)]
    pub hidden: usize,
    /// Hidden layers. Default 2.
    #[config(default = 2)]
    pub layers: usize,
    /// Passes over the training set. Default 10: on projection mode's K = 64
    /// keys, 4 passes reach 20.3 dB, 10 passes 22.0 dB (width 1024).
    #[config(default = 10)]
    pub epochs: usize,
    /// Images per step. Default 128.
    #[config(default = 128)]
    pub batch_size: usize,
    /// Adam's initial rate, annealed to 0 by a cosine. Default 1e-3.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// ε of ln(MSE + ε), on pixels scaled to [0, 1]: an error of 0.8 grey
    /// levels RMS, 50 dB. Default 1e-5.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Seed of the weights and the order of the examples. Default 0.
    #[config(default = 0)]
    pub seed: u64,
}

/// `r → hidden → … → n`, ReLU between, a sigmoid scaled to [0, 255] at the end.
#[derive(Module, Debug)]
struct Net {
    hidden: Vec<Linear>,
    output: Linear,
    activation: Relu,
}

impl Net {
    fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let h = self
            .hidden
            .iter()
            .fold(z, |h, layer| self.activation.forward(layer.forward(h)));
        sigmoid(self.output.forward(h))
    }
}

/// A decoder for one set of keys: trained on public images, it maps the
/// values of the keys' orthonormal basis to an image.
#[derive(Debug)]
pub struct Decoder {
    /// The trained network, out of autodiff: decoding builds no graph.
    net: Net,
    /// The integer keys it was trained for.
    keys: Vec<Vec<i64>>,
    /// Per coordinate of Uᵀx: the training set's mean and standard deviation.
    scale: Vec<(f64, f64)>,
}

impl Decoder {
    /// Trains a decoder for the forward keys of `eqs` on `public` images of
    /// `n` pixels (f32 in [0, 255], e.g. [`super::augment::augmented`]).
    ///
    /// # Errors
    /// [`Error::EmptyPrior`] without public images or keys;
    /// [`Error::Backend`] if the tensor backend fails.
    pub fn train(
        eqs: &Equations,
        public: &[f32],
        n: usize,
        config: &DecoderConfig,
    ) -> Fallible<Self> {
        if let Some((y, _)) = eqs.forward.iter().find(|(y, _)| y.len() != n) {
            return Err(Error::Shape {
                what: "decoder key".into(),
                expected: n,
                got: y.len(),
            });
        }
        let basis = Basis::new(&eqs.forward);
        let count = public.len() / n.max(1);
        if basis.rank() == 0 || count == 0 {
            return Err(Error::EmptyPrior);
        }
        let device = Device::ndarray().autodiff();
        device.seed(config.seed);
        let features = features(&basis, public, n, &device)?;
        let scale = standardization(&features, basis.rank());
        let inputs = standardized(&features, &scale);
        let net = fit(&inputs, public, basis.rank(), n, config, &device)?;
        Ok(Self {
            net: net.valid(),
            keys: eqs.forward.iter().map(|(y, _)| y.clone()).collect(),
            scale,
        })
    }

    /// Whether `eqs`' forward keys are the ones this decoder was trained for.
    pub fn serves(&self, eqs: &Equations) -> bool {
        self.keys.len() == eqs.forward.len()
            && self.keys.iter().zip(&eqs.forward).all(|(k, (y, _))| k == y)
    }

    /// The decoder's guess of each image, then its consistency projection,
    /// for a batch whose forward equations use this decoder's keys
    /// (`batch`×`n`, row-major).
    ///
    /// # Errors
    /// [`Error::Shape`] if `eqs` has other keys or lengths;
    /// [`Error::Backend`] if the tensor backend fails.
    pub fn reconstruct(&self, eqs: &Equations, batch: usize, n: usize) -> Fallible<Vec<f64>> {
        eqs.check(batch, n)?;
        if !self.serves(eqs) {
            return Err(Error::Shape {
                what: "decoder keys (trained for another key set)".into(),
                expected: self.keys.len(),
                got: eqs.forward.len(),
            });
        }
        let basis = Basis::new(&eqs.forward);
        let r = basis.rank();
        let raw: Vec<f32> = (0..batch)
            .flat_map(|b| basis.results.iter().map(move |res| res[b] as f32))
            .collect();
        let inputs = standardized(&raw, &self.scale);
        let device = self.net.output.weight.device();
        let out = read(self.net.forward(tensor(inputs, [batch, r], &device)))?;
        let guess: Vec<f64> = out.iter().map(|&v| f64::from(v) * PEAK).collect();
        Ok(project_consistent(&basis, &guess, n))
    }
}

/// Uᵀx for every public image: `[count, r]`, row-major.
fn features(basis: &Basis, public: &[f32], n: usize, device: &Device) -> Fallible<Vec<f32>> {
    let r = basis.rank();
    let count = public.len() / n;
    let u: Vec<f32> = (0..n)
        .flat_map(|i| basis.vectors.iter().map(move |v| v[i] as f32))
        .collect();
    let x = tensor(public[..count * n].to_vec(), [count, n], device);
    read(x.matmul(tensor(u, [n, r], device)))
}

fn standardization(features: &[f32], r: usize) -> Vec<(f64, f64)> {
    let count = (features.len() / r).max(1) as f64;
    (0..r)
        .map(|j| {
            let column = features.iter().skip(j).step_by(r).map(|&v| f64::from(v));
            let mean = column.clone().sum::<f64>() / count;
            let var = column.map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
            (mean, var.sqrt().max(1e-6))
        })
        .collect()
}

fn standardized(raw: &[f32], scale: &[(f64, f64)]) -> Vec<f32> {
    raw.chunks_exact(scale.len())
        .flat_map(|row| {
            row.iter()
                .zip(scale)
                .map(|(&v, (m, s))| ((f64::from(v) - m) / s) as f32)
        })
        .collect()
}

/// Adam on mean ln(MSE + ε) with a cosine-annealed rate.
fn fit(
    inputs: &[f32],
    public: &[f32],
    r: usize,
    n: usize,
    config: &DecoderConfig,
    device: &Device,
) -> Fallible<Net> {
    let widths: Vec<usize> = std::iter::once(r)
        .chain(std::iter::repeat_n(config.hidden, config.layers))
        .collect();
    let mut net = Net {
        hidden: widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect(),
        output: LinearConfig::new(widths[widths.len() - 1], n).init(device),
        activation: Relu::new(),
    };
    let mut optim = AdamConfig::new().init();
    let count = inputs.len() / r;
    let batch = config.batch_size.clamp(1, count);
    let steps = config.epochs * count.div_ceil(batch);
    let mut order: Vec<usize> = (0..count).collect();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut step = 0;
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(batch) {
            let z: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| inputs[i * r..(i + 1) * r].to_vec())
                .collect();
            let x: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| public[i * n..(i + 1) * n].iter().map(|&p| p / PEAK as f32))
                .collect();
            let b = chunk.len();
            let error = net.forward(tensor(z, [b, r], device)) - tensor(x, [b, n], device);
            let loss = (error.powi_scalar(2).mean_dim(1) + config.epsilon)
                .log()
                .mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let progress = step as f64 / steps.max(1) as f64;
            let rate = config.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            net = optim.step(rate, net, grads);
            step += 1;
        }
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// 4×4 images of one bright bar, vertical or horizontal.
    fn bars(count: usize, rng: &mut StdRng) -> Vec<i64> {
        (0..count)
            .flat_map(|_| {
                let (line, vertical) = (rng.random_range(0..4), rng.random::<bool>());
                (0..16).map(move |p| {
                    let on = if vertical {
                        p % 4 == line
                    } else {
                        p / 4 == line
                    };
                    if on { 255 } else { 0 }
                })
            })
            .collect()
    }

    fn equations(keys: &[Vec<i64>], images: &[i64]) -> Equations {
        let forward = keys
            .iter()
            .map(|y| {
                let z = images
                    .chunks(16)
                    .map(|x| x.iter().zip(y).map(|(a, b)| a * b).sum())
                    .collect();
                (y.clone(), z)
            })
            .collect();
        Equations {
            forward,
            gradient: Vec::new(),
        }
    }

    #[test]
    fn a_decoder_reconstructs_consistent_images_and_only_for_its_keys() {
        let mut rng = StdRng::seed_from_u64(5);
        let keys: Vec<Vec<i64>> = (0..3)
            .map(|_| (0..16).map(|_| rng.random_range(-9..=9)).collect())
            .collect();
        let public: Vec<f32> = bars(256, &mut rng).iter().map(|&p| p as f32).collect();
        let victims = bars(8, &mut rng);
        let eqs = equations(&keys, &victims);
        let config = DecoderConfig::new()
            .with_hidden(32)
            .with_epochs(20)
            .with_batch_size(32);
        let decoder = Decoder::train(&eqs, &public, 16, &config).unwrap();
        let guess = decoder.reconstruct(&eqs, 8, 16).unwrap();
        for (image, truth) in guess.chunks(16).zip(victims.chunks(16)) {
            assert!(image.iter().all(|v| (0.0..=PEAK).contains(v)));
            for y in &keys {
                let fit: f64 = image.iter().zip(y).map(|(a, &b)| a * b as f64).sum();
                let want: i64 = truth.iter().zip(y).map(|(a, b)| a * b).sum();
                assert!((fit - want as f64).abs() < 1e-4);
            }
        }
        let others = equations(&keys[..2], &victims);
        assert!(decoder.reconstruct(&others, 8, 16).is_err());
    }
}
