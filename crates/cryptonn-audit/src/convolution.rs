//! A secure convolution's forward pass, solved for the images.
//!
//! For one image x, the server decrypts z[p, c] = ⟨patch(x, p), y_c⟩ for
//! every position p and kernel y_c: the linear system A·x = z whose rows
//! are the pixel-space vectors E_p·y_c ([`PatchGeometry::pixel_vector`]).
//! Once the rows span pixel space (three 5×5 kernels on 28×28 images
//! already do), x = (AᵀA)⁻¹Aᵀz exactly, up to rounding: no prior, no box.

use cryptonn_protocol::PatchGeometry;

use super::lmmse::{cholesky, cholesky_solve};
use super::{Error, Result};

/// The least-squares solution of every image's forward equations: `kernels`
/// are the integer key vectors (one per output channel), `products` the
/// decrypted inner products, row-major `[images, kernels·positions]` (key
/// `k·P + p` of each image, in the order the authority answers a request
/// for the kernels: [`PatchGeometry::pixel_vectors`]). Returns the images, row-major
/// `[images, pixels]`, unrounded.
///
/// # Errors
/// [`Error::Shape`] for a kernel or a result of the wrong length, and
/// [`Error::NotPositiveDefinite`] if the kernels' equations do not span
/// pixel space (then no image is determined).
pub fn solve_convolution(
    geometry: &PatchGeometry,
    kernels: &[Vec<i64>],
    products: &[i64],
) -> Result<Vec<f64>> {
    let (n, positions, c) = (geometry.pixels(), geometry.positions(), kernels.len());
    if let Some(k) = kernels.iter().find(|k| k.len() != geometry.patch_len()) {
        return Err(shape("kernel", geometry.patch_len(), k.len()));
    }
    let per_image = positions * c;
    if per_image == 0 || !products.len().is_multiple_of(per_image) {
        return Err(shape("products", per_image, products.len()));
    }
    // Rows of A as (pixel, coefficient) lists: each has at most kh·kw·C entries.
    let rows: Vec<Vec<(usize, f64)>> = geometry
        .pixel_vectors(kernels)
        .map(|v| {
            v.iter()
                .enumerate()
                .filter(|&(_, &a)| a != 0)
                .map(|(i, &a)| (i, a as f64))
                .collect()
        })
        .collect();
    let mut gram = vec![0.0; n * n];
    for row in &rows {
        for &(i, a) in row {
            for &(j, b) in row {
                gram[i * n + j] += a * b;
            }
        }
    }
    let l = cholesky(gram, n, "the convolution's Gram matrix AᵀA")?;
    let mut images = Vec::with_capacity(products.len() / per_image * n);
    for z in products.chunks_exact(per_image) {
        let mut rhs = vec![0.0; n];
        for (row, &zr) in rows.iter().zip(z) {
            for &(i, a) in row {
                rhs[i] += a * zr as f64;
            }
        }
        images.extend(cholesky_solve(&l, n, rhs));
    }
    Ok(images)
}

fn shape(what: &str, expected: usize, got: usize) -> Error {
    Error::Shape {
        what: format!("convolution {what}"),
        expected,
        got,
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    #[test]
    fn three_kernels_give_the_image_back() {
        let g = PatchGeometry::new([1, 8, 8], [3, 3], [1, 1], [0, 0]).unwrap();
        let image: Vec<i64> = (0..64).map(|i| (i * 97 % 256) as i64).collect();
        let mut rng = StdRng::seed_from_u64(3);
        let kernels: Vec<Vec<i64>> = (0..3)
            .map(|_| (0..9).map(|_| rng.random_range(-127..=127)).collect())
            .collect();
        let products: Vec<i64> = g
            .pixel_vectors(&kernels)
            .map(|v| v.iter().zip(&image).map(|(a, b)| a * b).sum::<i64>())
            .collect();
        let guess = solve_convolution(&g, &kernels, &products).unwrap();
        let rounded: Vec<i64> = guess.iter().map(|v| v.round() as i64).collect();
        assert_eq!(rounded, image);
    }

    #[test]
    fn one_kernel_does_not_determine_the_image() {
        let g = PatchGeometry::new([1, 8, 8], [3, 3], [1, 1], [0, 0]).unwrap();
        let kernel = vec![vec![1, 2, 3, 4, 5, 6, 7, 8, 9]];
        let products = vec![0; g.positions()];
        assert!(matches!(
            solve_convolution(&g, &kernel, &products),
            Err(Error::NotPositiveDefinite(_))
        ));
        assert!(matches!(
            solve_convolution(&g, &kernel, &products[1..]),
            Err(Error::Shape { .. })
        ));
    }
}
