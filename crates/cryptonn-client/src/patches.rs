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

use cryptonn_protocol::{Error, Result};

/// The output size of a convolution along one axis:
/// `(size + 2·padding − kernel) / stride + 1`, or `None` if the kernel does
/// not fit the padded input (or the padded size overflows).
fn output_len(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = padding.checked_mul(2)?.checked_add(size)?;
    Some(padded.checked_sub(kernel)? / stride.max(1) + 1)
}

/// `product` of `dims`, or [`Error::Shape`] (named `what`) on overflow.
fn checked_len(dims: &[usize], what: &'static str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Shape {
            what,
            expected: vec![usize::MAX],
            got: dims.to_vec(),
        })
}

/// The im2col patches of a batch of images, with zero padding (Burn's
/// `Conv2dConfig` semantics, dilation 1 and groups 1).
///
/// `pixels` holds `batch` images, row-major `[batch, C, H, W]` with
/// `shape = [C, H, W]`. Patch `(b, p)`, for output position
/// `p = oh·W_out + ow`, is row `b·P + p` of the result and holds the window
/// whose top-left corner is `(oh·stride₀ − padding₀, ow·stride₁ − padding₁)`,
/// flattened channel first, then kernel row, then kernel column (the order of
/// Burn's conv weight `[C_out, C, kh, kw]` per output channel); positions in
/// the padding are 0.
///
/// Returns the patches, row-major `[batch·H_out·W_out, C·kh·kw]`, and
/// `[H_out, W_out]`.
///
/// # Shapes
/// `[batch, C, H, W] -> [batch·H_out·W_out, C·kernel₀·kernel₁]`, where
/// `H_out = (H + 2·padding₀ − kernel₀) / stride₀ + 1` and likewise `W_out`.
///
/// # Errors
/// [`Error::Shape`] if `batch`, a dimension of `shape`, a kernel size or a
/// stride is zero, if the kernel is larger than the padded image, if
/// `pixels` is not `batch` images of `shape`, or if the output would not fit
/// in memory's address space.
pub fn im2col(
    pixels: &[i64],
    shape: [usize; 3],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    batch: usize,
) -> Result<(Vec<i64>, [usize; 2])> {
    let [channels, height, width] = shape;
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(Error::Shape {
            what: "im2col kernel and stride (each at least 1)",
            expected: vec![1, 1, 1, 1],
            got: vec![kernel[0], kernel[1], stride[0], stride[1]],
        });
    }
    let out = (
        output_len(height, kernel[0], stride[0], padding[0]),
        output_len(width, kernel[1], stride[1], padding[1]),
    );
    let (Some(h_out), Some(w_out)) = out else {
        let padded = |n: usize, p: usize| n.saturating_add(p.saturating_mul(2));
        return Err(Error::Shape {
            what: "im2col kernel (at most the padded image)",
            expected: vec![padded(height, padding[0]), padded(width, padding[1])],
            got: kernel.to_vec(),
        });
    };
    let image_len = checked_len(&shape, "im2col image")?;
    if batch == 0 || image_len == 0 || Some(pixels.len()) != image_len.checked_mul(batch) {
        return Err(Error::Shape {
            what: "im2col pixels [batch, C, H, W] (none zero)",
            expected: vec![batch, channels, height, width],
            got: vec![pixels.len()],
        });
    }
    let features = checked_len(&[channels, kernel[0], kernel[1]], "im2col patch")?;
    let total = checked_len(&[batch, h_out, w_out, features], "im2col output")?;
    let mut patches = Vec::with_capacity(total);
    for image in pixels.chunks_exact(image_len) {
        for oh in 0..h_out {
            for ow in 0..w_out {
                push_patch(
                    &mut patches,
                    image,
                    shape,
                    kernel,
                    [oh * stride[0], ow * stride[1]],
                    padding,
                );
            }
        }
    }
    Ok((patches, [h_out, w_out]))
}

/// Appends the patch whose top-left corner, in padded coordinates, is
/// `corner`. Every index is in range: `im2col` checked the geometry.
fn push_patch(
    patches: &mut Vec<i64>,
    image: &[i64],
    [channels, height, width]: [usize; 3],
    kernel: [usize; 2],
    corner: [usize; 2],
    padding: [usize; 2],
) {
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

    #[test]
    fn patches_times_kernel_is_the_convolution() {
        let pixels: Vec<i64> = (0..2 * 5 * 6).map(|v| (v * 37 % 256) as i64).collect();
        let kernel: Vec<i64> = vec![1, -2, 3, 0, 5, -1, 2, 2, -3];
        for (s, p) in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)] {
            let (patches, [ho, wo]) =
                im2col(&pixels, [1, 5, 6], [3, 3], [s, s], [p, p], 2).unwrap();
            assert_eq!(patches.len(), 2 * ho * wo * 9);
            let z: Vec<i64> = patches
                .chunks(9)
                .map(|x| x.iter().zip(&kernel).map(|(a, b)| a * b).sum())
                .collect();
            let expected: Vec<i64> = pixels
                .chunks(30)
                .flat_map(|image| conv(image, [5, 6], &kernel, 3, s, p))
                .collect();
            assert_eq!(z, expected, "stride {s} padding {p}");
        }
    }

    #[test]
    fn patches_are_channel_major() {
        // Two channels of a 2×2 image, kernel 2×2: one patch, channel 0 first.
        let (patches, out) = im2col(
            &[1, 2, 3, 4, 5, 6, 7, 8],
            [2, 2, 2],
            [2, 2],
            [1, 1],
            [0, 0],
            1,
        )
        .unwrap();
        assert_eq!(out, [1, 1]);
        assert_eq!(patches, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn rejects_bad_geometry() {
        let pixels = vec![0i64; 16];
        let bad = [
            ([1, 4, 4], [5, 5], [1, 1], [0, 0], 1), // kernel larger than the image
            ([1, 4, 4], [3, 3], [0, 1], [0, 0], 1), // zero stride
            ([1, 4, 4], [0, 3], [1, 1], [0, 0], 1), // zero kernel
            ([1, 4, 4], [3, 3], [1, 1], [0, 0], 2), // too few pixels for 2 images
            ([1, 4, 4], [3, 3], [1, 1], [0, 0], 0), // no image
            ([0, 4, 4], [3, 3], [1, 1], [0, 0], 1), // no channel
            ([1, 4, 3], [3, 3], [1, 1], [0, 0], 1), // wrong image size
            ([1, usize::MAX, 2], [1, 1], [1, 1], [0, 0], 1), // overflow
            ([1, 4, 4], [3, 3], [1, 1], [usize::MAX, 0], 1), // overflow in padding
        ];
        for (shape, kernel, stride, padding, batch) in bad {
            assert!(
                matches!(
                    im2col(&pixels, shape, kernel, stride, padding, batch),
                    Err(Error::Shape { .. })
                ),
                "{shape:?} {kernel:?} {stride:?} {padding:?} {batch}"
            );
        }
    }
}
