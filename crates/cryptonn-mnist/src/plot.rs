//! PNGs: a run's curves (training loss per step, test accuracy per epoch), and
//! rows of images (the leakage audit's reconstructions).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::report::{Report, RunReport};

/// The plots' font, shipped so that drawing needs nothing from the system
/// (license: `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The curves could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {}: {reason}", path.display())]
pub struct PlotError {
    /// The PNG.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

const SECURE: RGBColor = RGBColor(200, 60, 40);
const PLAIN: RGBColor = RGBColor(40, 90, 200);

/// Writes `path` (1200 × 480 PNG): loss per step on the left, test accuracy
/// per epoch on the right, secure and plain runs in one chart each.
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn write_curves(report: &Report, path: &Path) -> Result<(), PlotError> {
    with_font(path, || draw(report, path))
}

fn with_font(path: &Path, draw: impl FnOnce() -> Result<(), String>) -> Result<(), PlotError> {
    let fail = |reason: String| PlotError {
        path: path.to_path_buf(),
        reason,
    };
    register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| fail("the shipped font is invalid".into()))?;
    draw().map_err(fail)
}

/// Writes `path`: one labelled row per entry of `rows`, each showing its first
/// `images` square grey-level images (`side` × `side` pixels in [0, 255],
/// row-major, one after the other), magnified three times.
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn write_image_rows(
    path: &Path,
    rows: &[(String, Vec<f64>)],
    images: usize,
    side: usize,
) -> Result<(), PlotError> {
    with_font(path, || draw_image_rows(path, rows, images, side))
}

/// Pixels of one magnified image cell, border included.
const fn cell(side: usize) -> usize {
    side * ZOOM + 4
}

/// Magnification of the drawn images.
const ZOOM: usize = 3;
/// Width of the row labels.
const LABEL: usize = 300;

fn draw_image_rows(
    path: &Path,
    rows: &[(String, Vec<f64>)],
    images: usize,
    side: usize,
) -> Result<(), String> {
    let size = (
        (LABEL + images * cell(side)) as u32,
        (rows.len() * cell(side) + 8) as u32,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    draw_rows_on(&root, rows, images, side)?;
    root.present().map_err(|e| e.to_string())
}

fn draw_rows_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[(String, Vec<f64>)],
    images: usize,
    side: usize,
) -> Result<(), String> {
    let cell = cell(side);
    for (r, (label, pixels)) in rows.iter().enumerate() {
        let top = (r * cell + 4) as i32;
        area.draw_text(
            label,
            &("sans-serif", 15).into_font().color(&BLACK),
            (6, top + (cell / 2) as i32 - 8),
        )
        .map_err(|e| e.to_string())?;
        for (i, image) in pixels.chunks(side * side).take(images).enumerate() {
            let left = LABEL + i * cell;
            for (p, &v) in image.iter().enumerate() {
                let grey = 255 - v.clamp(0.0, 255.0).round() as u8;
                let (x, y) = (left + (p % side) * ZOOM, top as usize + (p / side) * ZOOM);
                area.draw(&Rectangle::new(
                    [(x as i32, y as i32), ((x + ZOOM) as i32, (y + ZOOM) as i32)],
                    RGBColor(grey, grey, grey).filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn runs(report: &Report) -> Vec<(&'static str, RGBColor, &RunReport)> {
    [
        ("secure", SECURE, report.secure.as_ref()),
        ("plain", PLAIN, report.plain.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, color, run)| run.map(|r| (name, color, r)))
    .collect()
}

type Runs<'a> = [(&'static str, RGBColor, &'a RunReport)];
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw(report: &Report, path: &Path) -> Result<(), String> {
    let root = BitMapBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(600);
    let runs = runs(report);
    draw_losses(&left, &runs)?;
    draw_accuracies(&right, &runs)?;
    root.present().map_err(|e| e.to_string())
}

/// Training loss per step, one line per run.
fn draw_losses(area: &Area<'_>, runs: &Runs<'_>) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let losses: Vec<(&str, RGBColor, Vec<f64>)> = runs
        .iter()
        .map(|(name, color, run)| {
            let steps = run
                .epochs
                .iter()
                .flat_map(|e| e.step_losses.iter().copied());
            (*name, *color, steps.collect())
        })
        .collect();
    let steps = losses.iter().map(|l| l.2.len()).max().unwrap_or(1).max(2);
    let top = losses
        .iter()
        .flat_map(|l| l.2.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.1f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("training loss per step", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(1f64..steps as f64, 0f64..top * 1.05)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("cross-entropy")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (name, color, values) in &losses {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, &v)| (i as f64 + 1.0, v)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
}

/// Test accuracy after each epoch, one line per run.
fn draw_accuracies(area: &Area<'_>, runs: &Runs<'_>) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let epochs = runs
        .iter()
        .map(|r| r.2.epochs.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let accuracies = runs
        .iter()
        .flat_map(|r| r.2.epochs.iter().map(|e| 100.0 * e.test_accuracy));
    let low = accuracies.fold(100.0f64, f64::min).floor() - 1.0;
    let mut chart = ChartBuilder::on(area)
        .caption("test accuracy after each epoch", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(1f64..epochs as f64, low.max(0.0)..100f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .x_labels(epochs)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (name, color, run) in runs {
        let color = *color;
        let points: Vec<(f64, f64)> = run
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, 100.0 * e.test_accuracy))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
}

/// One point of the privacy frontier: a run's test accuracy against the
/// strongest measured attack on what its mode reveals.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontierPoint {
    /// What was run (e.g. "projection K=64").
    pub label: String,
    /// Test accuracy, in [0, 1].
    pub accuracy: f64,
    /// The strongest attack's mean PSNR, in dB (99 = exact).
    pub psnr_db: f64,
    /// Share of images the server singles out of a pool of candidates, and
    /// the pool's size, where measured.
    pub identification: Option<(f64, usize)>,
}

/// Images per reconstruction row of the privacy curve.
const CURVE_IMAGES: usize = 8;

/// Writes `path` (PNG): above, one labelled point per run, its test
/// accuracy against the mean PSNR of the strongest measured attack on its
/// mode (higher PSNR: the server sees more of the images) and its
/// identification rate; below, `rows` of 28×28 images (the true images,
/// then each case's strongest reconstruction), so a reader sees what a
/// number of dB looks like.
///
/// # Errors
/// [`PlotError`] if the file cannot be written.
pub fn write_privacy_curve(
    path: &Path,
    points: &[FrontierPoint],
    rows: &[(String, Vec<f64>)],
) -> Result<(), PlotError> {
    with_font(path, || draw_privacy_curve(path, points, rows))
}

fn draw_privacy_curve(
    path: &Path,
    points: &[FrontierPoint],
    rows: &[(String, Vec<f64>)],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    const CURVE: u32 = 560;
    let width = (LABEL + CURVE_IMAGES * cell(28)) as u32;
    let height = CURVE + (rows.len() * cell(28) + 8) as u32;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(CURVE);
    // Room right of the last point for its label.
    let psnr = points.iter().map(|p| p.psnr_db).fold(20.0f64, f64::max) + 50.0;
    let low = points
        .iter()
        .map(|p| 100.0 * p.accuracy)
        .fold(100.0f64, f64::min)
        .floor()
        - 2.0;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "accuracy against what the server reconstructs (strongest attack measured)",
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..psnr, low.max(0.0)..100f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("strongest attack: mean PSNR of the reconstructed images (dB; 99 = exact)")
        .y_desc("test accuracy (%)")
        .draw()
        .map_err(|e| err(&e))?;
    for p in points {
        let at = (p.psnr_db.min(psnr), 100.0 * p.accuracy);
        let color = if p.label.starts_with("projection") {
            PLAIN
        } else {
            SECURE
        };
        let text = match p.identification {
            Some((rate, pool)) => format!("{}: {:.1}% identified of {pool}", p.label, 100.0 * rate),
            None => p.label.clone(),
        };
        chart
            .draw_series([Circle::new(at, 5, color.filled())])
            .map_err(|e| err(&e))?;
        chart
            .draw_series([Text::new(
                text,
                (at.0 + psnr / 80.0, at.1),
                ("sans-serif", 14),
            )])
            .map_err(|e| err(&e))?;
    }
    draw_rows_on(&bottom, rows, CURVE_IMAGES, 28)?;
    root.present().map_err(|e| err(&e))
}
