//! The key vectors the main job's server asks for: its model trained in the
//! clear with the main job's batches, order, seed and quantization.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use cryptonn::nn::{FirstLayer, QuantizationConfig};
use cryptonn::server::quantize_columns;
use cryptonn_mnist::config::TrainingConfig;
use cryptonn_mnist::data::{Dataset, Tensors};
use cryptonn_mnist::mlp::Mlp;

use super::AuditResult;

/// The key vectors of one step on one batch.
#[derive(Debug, Clone)]
pub struct StepKeys {
    /// Quantized columns of W (length n), for the forward pass.
    pub weights: Vec<Vec<i64>>,
    /// Quantized columns of δ₁ (length B) dense enough to be requested.
    pub deltas: Vec<Vec<i64>>,
}

fn read(t: Tensor<2>) -> AuditResult<Vec<f32>> {
    Ok(t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?)
}

/// One training step in the clear: δ₁ = ∂loss/∂z₁ comes from a zero probe
/// added to z₁. Returns (W before the step, δ₁, gradients).
fn step(
    model: &Mlp,
    data: &Dataset,
    indices: &[usize],
    device: &Device,
) -> AuditResult<(Vec<f32>, Vec<f32>, burn::tensor::Gradients)> {
    let FirstLayer::Plain(first) = &model.first else {
        return Err("the audit trains a plain first layer".into());
    };
    // The main job's centring, as its `forward_plain` does.
    let x = match &model.input_mean {
        Some(mean) => data.inputs(indices, device) - mean.clone(),
        None => data.inputs(indices, device),
    };
    let y = data.targets(indices, device);
    let hidden = first.weight.dims()[1];
    let probe = Tensor::<2>::zeros([indices.len(), hidden], device).require_grad();
    let logits = model.head(first.forward(x) + probe.clone());
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, y);
    let grads = loss.backward();
    let delta = probe.grad(&grads).ok_or("no gradient reached the probe")?;
    Ok((read(first.weight.val())?, read(delta)?, grads))
}

/// The keys the secure layer would request for W and δ.
fn step_keys(
    w: &[f32],
    delta: &[f32],
    n: usize,
    batch: usize,
    hidden: usize,
    q: &QuantizationConfig,
) -> AuditResult<StepKeys> {
    let weights = quantize_columns(w, n, hidden, q.weight_bits, q.limbs)?.vectors;
    let deltas = quantize_columns(delta, batch, hidden, q.delta_bits, q.limbs)?
        .vectors
        .into_iter()
        .filter(|d| d.iter().filter(|&&v| v != 0).count() >= q.min_key_support)
        .collect();
    Ok(StepKeys { weights, deltas })
}

/// Trains the main job's model in the clear for `epochs` epochs over
/// `batches` (in the main job's order) and keeps the key vectors of the
/// first `audited` batches: `trace[epoch][batch]`.
pub fn train_trace(
    config: &TrainingConfig,
    data: &Dataset,
    public: &Dataset,
    batches: &[Vec<usize>],
    audited: usize,
    epochs: usize,
) -> AuditResult<Vec<Vec<StepKeys>>> {
    let device = config.device();
    let mut model = config.init_mlp(public, &device, false);
    let mut optim = AdamConfig::new().init();
    let hidden = config.model.hidden[0];
    let mut trace = Vec::new();
    for epoch in 0..epochs {
        let mut keys = vec![None; audited];
        for b in config.epoch_order(epoch, batches.len()) {
            let (w, delta, grads) = step(&model, data, &batches[b], &device)?;
            if b < audited {
                let n = data.features;
                let size = batches[b].len();
                keys[b] = Some(step_keys(
                    &w,
                    &delta,
                    n,
                    size,
                    hidden,
                    &config.quantization,
                )?);
            }
            model = optim.step(
                config.lr,
                model.clone(),
                GradientsParams::from_grads(grads, &model),
            );
        }
        trace.push(keys.into_iter().flatten().collect());
    }
    Ok(trace)
}

/// δ₁ of the first step on the first `size` images, for the weight-gradient attack.
pub fn small_batch_deltas(
    config: &TrainingConfig,
    data: &Dataset,
    public: &Dataset,
    size: usize,
) -> AuditResult<Vec<Vec<i64>>> {
    let device = config.device();
    let model = config.init_mlp(public, &device, false);
    let indices: Vec<usize> = (0..size).collect();
    let (w, delta, _) = step(&model, data, &indices, &device)?;
    let hidden = config.model.hidden[0];
    Ok(step_keys(
        &w,
        &delta,
        data.features,
        size,
        hidden,
        &config.quantization,
    )?
    .deltas)
}
