//! Random warps of public images: the learned prior's training set.
//!
//! A decoder trained on the public images alone learns their strokes, not a
//! writer's; rotated, sheared, rescaled, shifted and elastically warped
//! copies cover the styles of images it has never seen.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{Error, PEAK, Result};

/// How far a copy may be warped from its original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    /// Largest rotation, in degrees. Default 15.
    pub rotation_degrees: f64,
    /// Largest shear (x += shear·y). Default 0.25.
    pub shear: f64,
    /// Largest relative change of scale per axis. Default 0.15.
    pub scale: f64,
    /// Largest shift per axis, in pixels. Default 2.
    pub shift: f64,
    /// Standard deviation of the elastic displacement at each node of a
    /// 4×4 grid, in pixels (bilinear between nodes). Default 1.
    pub elastic: f64,
}

impl Default for Warp {
    fn default() -> Self {
        Self {
            rotation_degrees: 15.0,
            shear: 0.25,
            scale: 0.15,
            shift: 2.0,
            elastic: 1.0,
        }
    }
}

/// Nodes per axis of the elastic displacement grid.
const GRID: usize = 4;

/// The originals (square images of `n` pixels, row-major) followed by
/// `copies` warped copies of each, as f32 pixels in [0, 255].
/// Deterministic in `seed`.
///
/// # Errors
/// [`Error::Shape`] unless `n` is a positive square and `images` a whole
/// number of images.
pub fn augmented(
    images: &[i64],
    n: usize,
    copies: usize,
    warp: &Warp,
    seed: u64,
) -> Result<Vec<f32>> {
    let side = n.isqrt();
    if n == 0 || side * side != n || !images.len().is_multiple_of(n) {
        return Err(Error::Shape {
            what: "images to warp (square images, whole)".into(),
            expected: side * side,
            got: n,
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<f32> = images.iter().map(|&p| p as f32).collect();
    out.reserve(images.len() * copies);
    for _ in 0..copies {
        for image in images.chunks_exact(n) {
            out.extend(warped(image, side, warp, &mut rng));
        }
    }
    Ok(out)
}

/// One random warp of `image`: each output pixel samples the original
/// bilinearly at an affine map of its position plus an elastic displacement.
fn warped(image: &[i64], side: usize, warp: &Warp, rng: &mut StdRng) -> Vec<f32> {
    let mut uniform = |limit: f64| (rng.random::<f64>() * 2.0 - 1.0) * limit;
    let angle = uniform(warp.rotation_degrees).to_radians();
    let shear = uniform(warp.shear);
    let (sx, sy) = (1.0 + uniform(warp.scale), 1.0 + uniform(warp.scale));
    let (tx, ty) = (uniform(warp.shift), uniform(warp.shift));
    let field: Vec<(f64, f64)> = (0..GRID * GRID)
        .map(|_| (gaussian(rng) * warp.elastic, gaussian(rng) * warp.elastic))
        .collect();
    let (cos, sin) = (angle.cos(), angle.sin());
    let centre = (side as f64 - 1.0) / 2.0;
    let mut out = Vec::with_capacity(side * side);
    for r in 0..side {
        for c in 0..side {
            let (x, y) = (c as f64 - centre, r as f64 - centre);
            let (x, y) = ((x + shear * y) / sx, y / sy);
            let (x, y) = (cos * x - sin * y, sin * x + cos * y);
            let (dx, dy) = displacement(&field, r, c, side);
            let value = sample(image, side, y + centre + ty + dy, x + centre + tx + dx);
            out.push(value.clamp(0.0, PEAK) as f32);
        }
    }
    out
}

/// The elastic field at pixel (r, c), bilinear between the grid's nodes.
fn displacement(field: &[(f64, f64)], r: usize, c: usize, side: usize) -> (f64, f64) {
    let scale = (GRID - 1) as f64 / (side.max(2) - 1) as f64;
    let (gy, gx) = (r as f64 * scale, c as f64 * scale);
    let (y0, x0) = ((gy as usize).min(GRID - 2), (gx as usize).min(GRID - 2));
    let (fy, fx) = (gy - y0 as f64, gx - x0 as f64);
    let at = |y: usize, x: usize| field[y * GRID + x];
    let mix = |a: (f64, f64), b: (f64, f64), t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
    let top = mix(at(y0, x0), at(y0, x0 + 1), fx);
    let bottom = mix(at(y0 + 1, x0), at(y0 + 1, x0 + 1), fx);
    mix(top, bottom, fy)
}

/// `image` at the real position (row, col), bilinear, 0 outside.
fn sample(image: &[i64], side: usize, row: f64, col: f64) -> f64 {
    let (r0, c0) = (row.floor(), col.floor());
    let (fr, fc) = (row - r0, col - c0);
    let pixel = |r: f64, c: f64| {
        let inside = r >= 0.0 && c >= 0.0 && r < side as f64 && c < side as f64;
        if inside {
            image[r as usize * side + c as usize] as f64
        } else {
            0.0
        }
    };
    let top = pixel(r0, c0) * (1.0 - fc) + pixel(r0, c0 + 1.0) * fc;
    let bottom = pixel(r0 + 1.0, c0) * (1.0 - fc) + pixel(r0 + 1.0, c0 + 1.0) * fc;
    top * (1.0 - fr) + bottom * fr
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warp_of_zero_is_the_identity() {
        let image: Vec<i64> = (0..64).map(|i| (i * 37) % 256).collect();
        let none = Warp {
            rotation_degrees: 0.0,
            shear: 0.0,
            scale: 0.0,
            shift: 0.0,
            elastic: 0.0,
        };
        let out = augmented(&image, 64, 2, &none, 1).unwrap();
        assert_eq!(out.len(), 3 * 64);
        for copy in out.chunks_exact(64) {
            for (a, &b) in copy.iter().zip(&image) {
                assert!((f64::from(*a) - b as f64).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn warped_copies_stay_in_the_box_and_keep_most_ink() {
        let mut image = vec![0i64; 28 * 28];
        for r in 8..20 {
            for c in 12..16 {
                image[r * 28 + c] = 255;
            }
        }
        let out = augmented(&image, 784, 4, &Warp::default(), 7).unwrap();
        assert!(augmented(&image, 783, 1, &Warp::default(), 7).is_err());
        assert!(augmented(&image[1..], 784, 1, &Warp::default(), 7).is_err());
        let ink = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>();
        let original = ink(&out[..784]);
        for copy in out.chunks_exact(784).skip(1) {
            assert!(copy.iter().all(|&v| (0.0..=255.0).contains(&v)));
            let ratio = ink(copy) / original;
            assert!((0.6..1.6).contains(&ratio), "ink ratio {ratio}");
            assert_ne!(copy, &out[..784]);
        }
    }
}
