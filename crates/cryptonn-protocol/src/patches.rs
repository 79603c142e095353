//! The public geometry of a convolution, and what keys for its kernels and
//! for its back-propagated errors reveal in pixel space.
//!
//! Patch p of an image x (`C × H × W`) is the `C × kh × kw` window under
//! output position `p = oh·W_out + ow`, zero outside the image. The client
//! encrypts whole images, so the server decrypts a convolution output with a
//! key for the pixel-space vector
//!
//! `⟨patch(x, p), y⟩ = ⟨x, E_p·y⟩`,
//!
//! where `E_p·y` ([`PatchGeometry::pixel_vector`]) places the kernel y on
//! the window's pixels: one kernel is `H_out·W_out` keys, and as many
//! equations on each image. The kernel gradient for tap j (one entry of the
//! kernel) is `Σ_b Σ_p δ_b,p · patch(x_b, p)_j = ⟨X, G_j·δ⟩` over the whole
//! batch X, with `G_j·δ` ([`PatchGeometry::gradient_vector`]) placing each
//! error δ_b,p on the pixel tap j of window p reads.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Image shape, kernel, stride and padding of a convolution (dilation 1,
/// groups 1), as Burn's `Conv2dConfig` with symmetric padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "Fields")]
pub struct PatchGeometry {
    image: [usize; 3],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

/// The wire form, checked by [`PatchGeometry::new`] before it is one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    image: [usize; 3],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl TryFrom<Fields> for PatchGeometry {
    type Error = Error;

    fn try_from(f: Fields) -> Result<Self> {
        Self::new(f.image, f.kernel, f.stride, f.padding)
    }
}

/// Patches larger than this many entries, or images of more pixels, are
/// refused: a rank budget works in pixel space.
pub const MAX_PATCH_PIXELS: usize = 1 << 20;

impl PatchGeometry {
    /// The patches of `[C, H, W]` images under a `kernel` at `stride` with
    /// zero `padding` on each side.
    ///
    /// # Errors
    /// [`Error::Shape`] if a dimension, kernel size or stride is zero, the
    /// kernel is larger than the padded image, or the image or patch has
    /// more than [`MAX_PATCH_PIXELS`] entries.
    pub fn new(
        image: [usize; 3],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Self> {
        let [c, h, w] = image;
        let fits = |n: usize, k: usize, p: usize| p <= n && k <= n + 2 * p;
        let within = |a: usize, b: usize, d: usize| {
            a.checked_mul(b)
                .and_then(|v| v.checked_mul(d))
                .is_some_and(|v| v <= MAX_PATCH_PIXELS)
        };
        let possible = !image.contains(&0)
            && !kernel.contains(&0)
            && !stride.contains(&0)
            && within(c, h, w)
            && within(c, kernel[0], kernel[1])
            && fits(h, kernel[0], padding[0])
            && fits(w, kernel[1], padding[1]);
        if !possible {
            return Err(Error::Shape {
                what: "patch geometry [C, H, W, kh, kw, sh, sw, ph, pw] (none zero, \
                       padding at most the image, kernel within the padded image)",
                expected: vec![MAX_PATCH_PIXELS],
                got: [&image[..], &kernel, &stride, &padding].concat(),
            });
        }
        Ok(Self {
            image,
            kernel,
            stride,
            padding,
        })
    }

    /// `[C, H, W]`.
    pub fn image(&self) -> [usize; 3] {
        self.image
    }

    /// `[kh, kw]`.
    pub fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// `[sh, sw]`.
    pub fn stride(&self) -> [usize; 2] {
        self.stride
    }

    /// `[ph, pw]`, on each side.
    pub fn padding(&self) -> [usize; 2] {
        self.padding
    }

    /// `[H_out, W_out]`: `(H + 2·ph − kh) / sh + 1` and likewise.
    pub fn output(&self) -> [usize; 2] {
        let out = |n: usize, k: usize, s: usize, p: usize| (n + 2 * p - k) / s + 1;
        [
            out(
                self.image[1],
                self.kernel[0],
                self.stride[0],
                self.padding[0],
            ),
            out(
                self.image[2],
                self.kernel[1],
                self.stride[1],
                self.padding[1],
            ),
        ]
    }

    /// Patches per image: `H_out·W_out`.
    pub fn positions(&self) -> usize {
        let [h, w] = self.output();
        h * w
    }

    /// Entries per patch: `C·kh·kw`.
    pub fn patch_len(&self) -> usize {
        self.image[0] * self.kernel[0] * self.kernel[1]
    }

    /// Pixels per image: `C·H·W`.
    pub fn pixels(&self) -> usize {
        self.image.iter().product()
    }

    /// The pixel tap `tap` of the window at `position` reads (channel
    /// first, then kernel row, then kernel column, as Burn flattens a
    /// kernel), or `None` over the padding or past the geometry.
    fn tap_pixel(&self, position: usize, tap: usize) -> Option<usize> {
        if position >= self.positions() || tap >= self.patch_len() {
            return None;
        }
        let ([_, height, width], [kh, kw]) = (self.image, self.kernel);
        let w_out = self.output()[1];
        let (c, i, j) = (tap / (kh * kw), tap / kw % kh, tap % kw);
        // In padded coordinates, the window's corner plus the tap's offset.
        let row = (position / w_out * self.stride[0] + i)
            .checked_sub(self.padding[0])
            .filter(|&r| r < height)?;
        let col = (position % w_out * self.stride[1] + j)
            .checked_sub(self.padding[1])
            .filter(|&q| q < width)?;
        Some((c * height + row) * width + col)
    }

    /// `E_p·y`: the pixel-space vector v with `⟨x, v⟩ = ⟨patch(x, p), y⟩`
    /// for every image x. Entries of y over the padding are dropped, and so
    /// are entries past `patch_len()`; a `position` past `positions()` lands
    /// on no pixel (all zeros).
    pub fn pixel_vector(&self, y: &[i64], position: usize) -> Vec<i64> {
        let mut v = vec![0; self.pixels()];
        for (tap, &value) in y.iter().enumerate() {
            if let Some(pixel) = self.tap_pixel(position, tap) {
                v[pixel] += value;
            }
        }
        v
    }

    /// Every key (and equation on each image) a request for kernels `ys`
    /// gives: `E_p·y` for each y, then each position p, lazily (a budget
    /// stops as soon as one is too many).
    pub fn pixel_vectors<'a>(&'a self, ys: &'a [Vec<i64>]) -> impl Iterator<Item = Vec<i64>> + 'a {
        ys.iter()
            .flat_map(move |y| (0..self.positions()).map(move |p| self.pixel_vector(y, p)))
    }

    /// `G_j·δ`: the vector v over a batch of `images` images (image-major,
    /// `images·pixels()` entries) with `⟨X, v⟩ = Σ_b Σ_p δ_b,p · patch(x_b, p)_j`,
    /// the kernel gradient of tap j for errors δ laid out `[images, positions]`.
    /// Entries of δ past `images·positions()` are dropped; a tap past
    /// `patch_len()` lands on no pixel.
    pub fn gradient_vector(&self, delta: &[i64], images: usize, tap: usize) -> Vec<i64> {
        let (pixels, positions) = (self.pixels(), self.positions());
        let mut v = vec![0; images.saturating_mul(pixels)];
        for (b, errors) in delta.chunks(positions).take(images).enumerate() {
            for (p, &d) in errors.iter().enumerate() {
                if let Some(pixel) = self.tap_pixel(p, tap) {
                    v[b * pixels + pixel] += d;
                }
            }
        }
        v
    }

    /// Every key (and equation on the batch) a request for error vectors
    /// `ys` gives: `G_j·δ` for each δ, then each tap j, lazily.
    pub fn gradient_vectors<'a>(
        &'a self,
        ys: &'a [Vec<i64>],
        images: usize,
    ) -> impl Iterator<Item = Vec<i64>> + 'a {
        ys.iter().flat_map(move |y| {
            (0..self.patch_len()).map(move |j| self.gradient_vector(y, images, j))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet_geometry() {
        let g = PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]).unwrap();
        assert_eq!(g.output(), [24, 24]);
        assert_eq!((g.positions(), g.patch_len(), g.pixels()), (576, 25, 784));
        let padded = PatchGeometry::new([3, 5, 6], [3, 3], [2, 2], [1, 1]).unwrap();
        assert_eq!(padded.output(), [3, 3]);
    }

    #[test]
    fn pixel_vector_places_the_kernel_under_its_window() {
        // 1×3×3 image, 2×2 kernel, stride 1, padding 1: position 0 has only
        // its bottom-right entry on the image (pixel 0).
        let g = PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [1, 1]).unwrap();
        assert_eq!(g.output(), [4, 4]);
        let y = [1, 2, 3, 4];
        assert_eq!(g.pixel_vector(&y, 0), vec![4, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Position (1, 1) covers pixels 0, 1, 3, 4.
        assert_eq!(g.pixel_vector(&y, 5), vec![1, 2, 0, 3, 4, 0, 0, 0, 0]);
        assert_eq!(g.pixel_vectors(&[y.to_vec()]).count(), 16);
        assert_eq!(g.pixel_vector(&y, 16), vec![0; 9]);
        assert_eq!(g.pixel_vector(&y, usize::MAX), vec![0; 9]);
    }

    #[test]
    fn gradient_vector_is_the_transposed_patches_times_the_errors() {
        // 2 images of 1×3×3, 2×2 kernel, stride 1, no padding: 4 positions.
        let g = PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap();
        let x: Vec<i64> = (0..18).map(|v| v * 7 % 11 - 5).collect();
        let delta: Vec<i64> = (0..8).map(|v| 3 - v).collect();
        for tap in 0..4 {
            let through_patches: i64 = (0..8)
                .map(|bp| {
                    let (b, p) = (bp / 4, bp % 4);
                    let mut e = vec![0; 4];
                    e[tap] = 1;
                    let v = g.pixel_vector(&e, p);
                    delta[bp]
                        * x[b * 9..][..9]
                            .iter()
                            .zip(&v)
                            .map(|(a, c)| a * c)
                            .sum::<i64>()
                })
                .sum();
            let v = g.gradient_vector(&delta, 2, tap);
            assert_eq!(v.len(), 18);
            assert_eq!(
                x.iter().zip(&v).map(|(a, c)| a * c).sum::<i64>(),
                through_patches
            );
        }
        assert_eq!(
            g.gradient_vectors(std::slice::from_ref(&delta), 2).count(),
            4
        );
        assert_eq!(g.gradient_vector(&delta, 2, 4), vec![0; 18]);
    }

    #[test]
    fn rejects_impossible_geometries_from_json() {
        let ok = r#"{"image":[1,28,28],"kernel":[5,5],"stride":[1,1],"padding":[0,0]}"#;
        let g: PatchGeometry = serde_json::from_str(ok).unwrap();
        assert_eq!(serde_json::to_string(&g).unwrap(), ok);
        for bad in [
            r#"{"image":[1,28,28],"kernel":[30,5],"stride":[1,1],"padding":[0,0]}"#,
            r#"{"image":[1,28,28],"kernel":[5,5],"stride":[0,1],"padding":[0,0]}"#,
            r#"{"image":[1,28,28],"kernel":[5,5],"stride":[1,1],"padding":[0,0],"x":1}"#,
        ] {
            assert!(serde_json::from_str::<PatchGeometry>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_impossible_geometries() {
        for (image, kernel, stride, padding) in [
            ([0, 28, 28], [5, 5], [1, 1], [0, 0]),
            ([1, 28, 28], [0, 5], [1, 1], [0, 0]),
            ([1, 28, 28], [5, 5], [1, 0], [0, 0]),
            ([1, 4, 4], [7, 3], [1, 1], [1, 1]),
            ([1, 4, 4], [3, 3], [1, 1], [5, 0]),
            ([1, 1 << 11, 1 << 10], [3, 3], [1, 1], [0, 0]),
            ([usize::MAX, 2, 2], [1, 1], [1, 1], [0, 0]),
        ] {
            assert!(
                PatchGeometry::new(image, kernel, stride, padding).is_err(),
                "{image:?} {kernel:?} {stride:?} {padding:?}"
            );
        }
    }
}
