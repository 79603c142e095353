//! Image patches for a secure convolution (im2col): what a client encrypts so
//! that a server's `SecureConv2d` can decrypt one inner product per output
//! channel and position.
//!
//! A 2-D convolution is a linear layer over patches: output channel c at
//! position p of image b is ⟨patch(b, p), W_c⟩ + bias_c, where patch(b, p) is
//! the `C × kh × kw` input window under p, and W_c is the kernel of channel c
//! flattened in the same order, as Burn stores it (`[C_out, C_in, kh, kw]`).
//! The patches of a batch of B images, `P = H_out·W_out` each, are therefore an
//! ordinary batch of `B·P` samples of `C·kh·kw` features, encrypted with
//! [`crate::Client::encrypt`] under keys for that shape.

use cryptonn_protocol::{Error, PatchGeometry, Result};

/// The im2col patches of a batch of images, with zero padding (Burn's
/// `Conv2dConfig` semantics, dilation 1 and groups 1).
///
/// `pixels` holds `batch` images of `geometry.image()`, row-major
/// `[batch, C, H, W]`. Patch `(b, p)`, for output position
/// `p = oh·W_out + ow`, is row `b·P + p` of the result and holds the window
/// whose top-left corner is `(oh·stride₀ − padding₀, ow·stride₁ − padding₁)`,
/// flattened channel first, then kernel row, then kernel column (the order of
/// Burn's conv weight `[C_out, C, kh, kw]` per output channel); positions in
/// the padding are 0. So ⟨patch(b, p), y⟩ = ⟨x_b, E_p·y⟩ with
/// [`PatchGeometry::pixel_vector`].
///
/// # Shapes
/// `[batch, C, H, W] -> [batch·H_out·W_out, C·kh·kw]`, with
/// `[H_out, W_out] = geometry.output()`.
///
/// # Errors
/// [`Error::Shape`] if `batch` is zero, `pixels` is not `batch` images of
/// the geometry, or the output would not fit in memory's address space.
pub fn im2col(pixels: &[i64], geometry: &PatchGeometry, batch: usize) -> Result<Vec<i64>> {
    let image_len = geometry.pixels();
    let [channels, height, width] = geometry.image();
    if batch == 0 || Some(pixels.len()) != image_len.checked_mul(batch) {
        return Err(Error::Shape {
            what: "im2col pixels [batch, C, H, W] (at least one image)",
            expected: vec![batch, channels, height, width],
            got: vec![pixels.len()],
        });
    }
    let total = [batch, geometry.positions(), geometry.patch_len()]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Shape {
            what: "im2col output",
            expected: vec![usize::MAX],
            got: vec![batch, geometry.positions(), geometry.patch_len()],
        })?;
    let [h_out, w_out] = geometry.output();
    let stride = geometry.stride();
    let mut patches = Vec::with_capacity(total);
    for image in pixels.chunks_exact(image_len) {
        for oh in 0..h_out {
            for ow in 0..w_out {
                push_patch(
                    &mut patches,
                    image,
                    geometry,
                    [oh * stride[0], ow * stride[1]],
                );
            }
        }
    }
    Ok(patches)
}

/// Appends the patch whose top-left corner, in padded coordinates, is
/// `corner`. Every index is in range: the geometry was checked.
fn push_patch(patches: &mut Vec<i64>, image: &[i64], geometry: &PatchGeometry, corner: [usize; 2]) {
    let [channels, height, width] = geometry.image();
    let (kernel, padding) = (geometry.kernel(), geometry.padding());
    for c in 0..channels {
        for i in 0..kernel[0] {
            // Row in the unpadded image, if it is not padding.
            let row = (corner[0] + i)
                .checked_sub(padding[0])
                .filter(|&r| r < height);
            for j in 0..kernel[1] {
                let col = (corner[1] + j)
                    .checked_sub(padding[1])
                    .filter(|&r| r < width);
                let value = match (row, col) {
                    (Some(r), Some(q)) => image.get((c * height + r) * width + q).copied(),
                    _ => None,
                };
                patches.push(value.unwrap_or(0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.

    use super::*;

    /// A direct convolution (cross-correlation, as Burn's) of one channel.
    fn conv(
        pixels: &[i64],
        [h, w]: [usize; 2],
        kernel: &[i64],
        k: usize,
        s: usize,
        p: usize,
    ) -> Vec<i64> {
        let out = |n: usize| (n + 2 * p - k) / s + 1;
        let mut z = Vec::new();
        for oh in 0..out(h) {
            for ow in 0..out(w) {
                let mut acc = 0;
                for i in 0..k {
                    for j in 0..k {
                        let (r, q) = (
                            (oh * s + i) as i64 - p as i64,
                            (ow * s + j) as i64 - p as i64,
                        );
                        if (0..h as i64).contains(&r) && (0..w as i64).contains(&q) {
                            acc += pixels[r as usize * w + q as usize] * kernel[i * k + j];
                        }
                    }
                }
                z.push(acc);
            }
        }
        z
    }

    fn geometry(image: [usize; 3], k: usize, s: usize, p: usize) -> PatchGeometry {
        PatchGeometry::new(image, [k, k], [s, s], [p, p]).unwrap()
    }

    #[test]
    fn patches_times_kernel_is_the_convolution() {
        let pixels: Vec<i64> = (0..2 * 5 * 6).map(|v| (v * 37 % 256) as i64).collect();
        let kernel: Vec<i64> = vec![1, -2, 3, 0, 5, -1, 2, 2, -3];
        for (s, p) in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)] {
            let g = geometry([1, 5, 6], 3, s, p);
            let patches = im2col(&pixels, &g, 2).unwrap();
            assert_eq!(patches.len(), 2 * g.positions() * 9);
            let z: Vec<i64> = patches
                .chunks(9)
                .map(|x| x.iter().zip(&kernel).map(|(a, b)| a * b).sum())
                .collect();
            let expected: Vec<i64> = pixels
                .chunks(30)
                .flat_map(|image| conv(image, [5, 6], &kernel, 3, s, p))
                .collect();
            assert_eq!(z, expected, "stride {s} padding {p}");
            // The pixel-space view a rank budget counts: the same numbers.
            let through_pixels: Vec<i64> = pixels
                .chunks(30)
                .flat_map(|image| {
                    (0..g.positions()).map(|q| {
                        let v = g.pixel_vector(&kernel, q);
                        image.iter().zip(&v).map(|(a, b)| a * b).sum::<i64>()
                    })
                })
                .collect();
            assert_eq!(
                through_pixels, expected,
                "pixel space, stride {s} padding {p}"
            );
        }
    }

    #[test]
    fn patches_are_channel_major() {
        // Two channels of a 2×2 image, kernel 2×2: one patch, channel 0 first.
        let g = geometry([2, 2, 2], 2, 1, 0);
        let patches = im2col(&[1, 2, 3, 4, 5, 6, 7, 8], &g, 1).unwrap();
        assert_eq!(g.output(), [1, 1]);
        assert_eq!(patches, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn rejects_pixels_that_are_not_the_batch() {
        let g = geometry([1, 4, 4], 3, 1, 0);
        for (len, batch) in [(16, 2), (16, 0), (15, 1), (0, 0)] {
            assert!(
                matches!(im2col(&vec![0; len], &g, batch), Err(Error::Shape { .. })),
                "{len} pixels as {batch} images"
            );
        }
    }
}
