//! What a run let the server learn: the equations actually issued, and the
//! leakage measured for that mode by the audit (`docs/leakage_table.json`).

use cryptonn_authority::Caps;
use serde::{Deserialize, Serialize};

use super::config::Privacy;

/// The privacy section of a report.
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyReport {
    /// The paper's protocol or projection mode.
    pub mode: Privacy,
    /// Independent equations the server holds on each training image (the
    /// rank of the row keys of the most spent batch).
    pub row_equations_per_image: usize,
    /// Independent weight-gradient equations per pixel mixing a batch's
    /// images (the rank of the column keys of the most spent batch).
    pub column_equations_per_batch: usize,
    /// The caps the authority enforced.
    pub caps: Caps,
    /// Whether the secure layer is a convolution: its gradient equations are
    /// then on each batch's pixels together, not per pixel.
    pub convolution: bool,
    /// The strongest attack measured for this mode and these equations, from
    /// the audit's table (not measured on this run's images).
    pub measured_leakage: Option<MeasuredLeakage>,
}

/// One row of the audit's table: the best attack on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredLeakage {
    /// The mode audited.
    pub mode: Privacy,
    /// Equations per image in that case.
    pub row_equations_per_image: usize,
    /// Gradient equations per pixel in that case.
    pub column_equations_per_batch: usize,
    /// The attack with the highest mean PSNR.
    pub best_attack: String,
    /// Its mean PSNR over the audited images, in dB (99 for exact images).
    pub mean_psnr_db: f64,
    /// Share of audited images it recovered exactly.
    pub exact_images: f64,
    /// Share of audited pixels it recovered exactly.
    pub exact_pixels: f64,
    /// Share of audited images the server singles out of a pool of
    /// `identification_pool` candidates (the image and public ones) by what
    /// it decrypted; `None` where not measured.
    #[serde(default)]
    pub identification_rate: Option<f64>,
    /// Candidates of the identification test.
    #[serde(default)]
    pub identification_pool: Option<usize>,
    /// Where the number comes from.
    pub source: String,
}

/// The measured table, shipped with the crate.
const TABLE: &str = include_str!("../../../docs/leakage_table.json");

/// The audit's row for `mode` with the fewest equations per image at least
/// as many as issued, and among those the nearest count of gradient
/// equations (they vary from batch to batch with the data, so a run's most
/// spent batch may hold a few more than the audited ones).
pub fn measured(mode: Privacy, rows: usize, cols: usize) -> Option<MeasuredLeakage> {
    let table: Vec<MeasuredLeakage> = serde_json::from_str(TABLE).ok()?;
    table
        .into_iter()
        .filter(|m| m.mode == mode && m.row_equations_per_image >= rows)
        .min_by_key(|m| {
            (
                m.row_equations_per_image,
                m.column_equations_per_batch.abs_diff(cols),
            )
        })
}

impl PrivacyReport {
    /// The report for a run that issued `rows` and `cols` equations.
    pub fn new(mode: Privacy, rows: usize, cols: usize, caps: Caps) -> Self {
        Self {
            mode,
            row_equations_per_image: rows,
            column_equations_per_batch: cols,
            caps,
            convolution: false,
            measured_leakage: measured(mode, rows, cols),
        }
    }

    /// The report for a secure convolution under the paper's policy: `rows`
    /// equations per image, `cols` gradient equations on each batch's pixels
    /// per step, and the audit's convolution case, which needs the forward
    /// pass alone.
    pub fn convolution(rows: usize, cols: usize, caps: Caps) -> Self {
        Self {
            convolution: true,
            measured_leakage: Some(MeasuredLeakage {
                mode: Privacy::Cryptonn,
                row_equations_per_image: rows,
                column_equations_per_batch: cols,
                best_attack: "least squares on one forward pass".into(),
                mean_psnr_db: 99.0,
                exact_images: 1.0,
                exact_pixels: 1.0,
                // Exact images single themselves out of any pool.
                identification_rate: Some(1.0),
                identification_pool: None,
                source: "cargo run --release --example leakage_audit -- --convolution-only \
                         (32 of 32 images exact)"
                    .into(),
            }),
            ..Self::new(Privacy::Cryptonn, rows, cols, caps)
        }
    }

    /// One line for the summary.
    pub fn line(&self) -> String {
        let issued = match self.mode {
            Privacy::Cryptonn if self.convolution => format!(
                "paper's mode, secure convolution: {} equations per image and {} gradient \
                 equations on each batch's pixels per step issued",
                self.row_equations_per_image, self.column_equations_per_batch
            ),
            Privacy::Cryptonn => format!(
                "paper's mode: {} equations per image and {} gradient equations per pixel issued",
                self.row_equations_per_image, self.column_equations_per_batch
            ),
            Privacy::Projection => format!(
                "projection mode: {} equations per image for life, no gradient keys",
                self.row_equations_per_image
            ),
        };
        let attack = self.measured_leakage.as_ref().map_or_else(
            || "no audit measurement covers this case".to_string(),
            |m| {
                let audited = if m.column_equations_per_batch == self.column_equations_per_batch {
                    String::new()
                } else {
                    format!(
                        ", audited with {} gradient equations",
                        m.column_equations_per_batch
                    )
                };
                let identified = match (m.identification_rate, m.identification_pool) {
                    (Some(rate), Some(pool)) => {
                        format!(", {:.1}% identified among {pool} candidates", 100.0 * rate)
                    }
                    _ => String::new(),
                };
                format!(
                    "strongest attack measured ({}, audit table{audited}; a lower bound on \
                     the leakage): {:.1} dB mean PSNR, {:.0}% of images exact{identified}",
                    m.best_attack,
                    m.mean_psnr_db,
                    100.0 * m.exact_images,
                )
            },
        );
        format!("privacy: {issued}; {attack}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audited_case_finds_its_own_row() {
        let table: Vec<MeasuredLeakage> = serde_json::from_str(TABLE).unwrap_or_default();
        for row in &table {
            let found = measured(
                row.mode,
                row.row_equations_per_image,
                row.column_equations_per_batch,
            );
            assert_eq!(found.as_ref(), Some(row));
        }
        // More equations than any audited case: no number is quoted.
        assert_eq!(measured(Privacy::Projection, 10_000, 0), None);
    }
}
