//! Attack (c): box-constrained least squares by FISTA, run to convergence.

use burn::tensor::{Device, Tensor};

use super::affine::{Affine, frobenius, read};
use super::{Equations, PEAK, Result, SolverConfig};

/// Box-constrained least squares for X (`batch`×`n`, row-major):
///
/// min ½‖X·U − Z_U‖² + ½‖Vᵀ·X − G_V‖² over X ∈ [0, 255]^{B×n},
///
/// with the keys of each side made orthonormal (U, V) and their results
/// transformed alike, so each term has Lipschitz constant 1 and the step is
/// 1/(number of sides). With consistent data the minimisers are exactly the
/// points of box ∩ affine, the set [`feasibility`](super::feasibility)
/// searches; the objective weighs the equations differently from raw keys.
///
/// FISTA (Beck and Teboulle, 2009) from the all-black batch, with the
/// gradient restart of O'Donoghue and Candès (2015), stops when
/// ‖X_{k+1} − X_k‖_F ≤ tolerance·max(‖X_{k+1}‖_F, 1) or after
/// `cfg.max_iterations` steps.
///
/// # Errors
/// [`Error::Shape`](super::Error::Shape) if an equation does not fit the
/// batch; [`Error::Backend`](super::Error::Backend) if the tensor backend fails.
pub fn least_squares(
    eqs: &Equations,
    batch: usize,
    n: usize,
    cfg: &SolverConfig,
) -> Result<Vec<f64>> {
    eqs.check(batch, n)?;
    if batch == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let device = Device::ndarray();
    let affine = Affine::new(eqs, batch, n, &device);
    let step = 1.0 / affine.sides().max(1) as f64;
    let mut x = Tensor::<2>::zeros([batch, n], &device);
    let mut y = x.clone();
    let mut t = 1.0f64;
    for _ in 0..cfg.max_iterations {
        let next = (y.clone() - affine.gradient(&y) * step).clamp(0.0, PEAK);
        let moved = next.clone() - x.clone();
        let change = frobenius(moved.clone())?;
        let scale = frobenius(next.clone())?.max(1.0);
        // Restart when the momentum points uphill: ⟨Y − X_{k+1}, X_{k+1} − X_k⟩ > 0.
        let uphill = ((y - next.clone()) * moved.clone())
            .sum()
            .try_into_scalar::<f32>()
            .map_err(|e| super::Error::Backend(format!("{e:?}")))?
            > 0.0;
        if uphill {
            t = 1.0;
            y = next.clone();
        } else {
            let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            y = next.clone() + moved * ((t - 1.0) / t_next);
            t = t_next;
        }
        x = next;
        if change <= cfg.tolerance * scale {
            break;
        }
    }
    Ok(read(x)?.into_iter().map(f64::from).collect())
}
