//! How close a reconstruction is to the truth.

use super::PEAK;

/// PSNR of an exact image, and the cap of every image's PSNR, in dB.
pub const EXACT_PSNR_DB: f64 = 99.0;

/// How close a guess is to the true batch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// Mean over images of the PSNR, 10·log₁₀(255²/MSE) dB, capped at 99 dB
    /// (the value of an exact image).
    pub mean_psnr_db: f64,
    /// Share of pixels whose guess, rounded, equals the truth.
    pub exact_pixels: f64,
    /// Share of images with every pixel exact.
    pub exact_images: f64,
    /// Share of pixels within ±16 of the truth.
    pub within_16: f64,
    /// Largest pixel error.
    pub max_pixel_error: f64,
}

/// Compares `guess` with the true pixels `truth`, image by image of `n`
/// pixels (row-major). A missing or non-finite guess counts as wrong by 255,
/// the largest error a pixel can have.
pub fn quality(guess: &[f64], truth: &[i64], n: usize) -> Quality {
    let n = n.max(1);
    let images = truth.len().div_ceil(n);
    let (mut psnr, mut exact_images) = (0.0, 0usize);
    let (mut exact, mut close, mut max_err) = (0usize, 0usize, 0.0f64);
    for (image, t) in truth.chunks(n).enumerate() {
        let mut se = 0.0;
        let mut all_exact = true;
        for (i, &tv) in t.iter().enumerate() {
            let g = guess.get(image * n + i).copied().filter(|g| g.is_finite());
            let e = g.map_or(PEAK, |g| (g - tv as f64).abs());
            let hit = g.is_some_and(|g| g.round() == tv as f64);
            se += e * e;
            exact += usize::from(hit);
            all_exact &= hit;
            close += usize::from(e <= 16.0);
            max_err = max_err.max(e);
        }
        exact_images += usize::from(all_exact);
        let mse = se / t.len() as f64;
        psnr += if mse == 0.0 {
            EXACT_PSNR_DB
        } else {
            (10.0 * (PEAK * PEAK / mse).log10()).min(EXACT_PSNR_DB)
        };
    }
    let share = |count: usize, of: usize| count as f64 / of.max(1) as f64;
    Quality {
        mean_psnr_db: psnr / images.max(1) as f64,
        exact_pixels: share(exact, truth.len()),
        exact_images: share(exact_images, images),
        within_16: share(close, truth.len()),
        max_pixel_error: max_err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_images_score_99_db() {
        let truth = [0, 255, 7, 8];
        let q = quality(&[0.0, 255.0, 7.0, 8.0], &truth, 2);
        assert_eq!(q.mean_psnr_db, 99.0);
        assert_eq!(
            (q.exact_pixels, q.exact_images, q.within_16),
            (1.0, 1.0, 1.0)
        );
        assert_eq!(q.max_pixel_error, 0.0);
    }

    #[test]
    fn counts_exact_pixels_and_images() {
        let truth = [0, 255, 7, 8, 1, 2];
        // Image 0 exact after rounding, image 1 one pixel off by 1, image 2 off by 20.
        let q = quality(&[0.4, 254.6, 7.0, 9.0, 21.0, 2.0], &truth, 2);
        assert!((q.exact_pixels - 4.0 / 6.0).abs() < 1e-12);
        assert!((q.exact_images - 1.0 / 3.0).abs() < 1e-12);
        assert!((q.within_16 - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(q.max_pixel_error, 20.0);
        assert!(q.mean_psnr_db < 99.0);
    }

    #[test]
    fn missing_or_nan_guesses_count_as_wrong() {
        let q = quality(&[f64::NAN], &[3, 4], 2);
        assert_eq!((q.exact_pixels, q.exact_images), (0.0, 0.0));
        assert_eq!(q.max_pixel_error, 255.0);
        assert_eq!(quality(&[], &[], 0).exact_images, 0.0);
    }
}
