//! Progress a person can follow anywhere: an indicatif bar on a terminal's
//! stderr, and plain lines (phase, items done of all, elapsed, rate) in a
//! log, i.e. on stdout when it is redirected (or on stderr when only that
//! is), as cargo and Burn do. [`Meter`] is one phase; [`Bars`] renders the
//! Learner's epochs with meters (burn-train's own terminal UI is left out
//! with its default features; its plain renderer prints every step as a
//! debug struct).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between two plain lines of one phase.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Phases shorter than this print no closing line (a log need not list
/// every validation chunk).
const QUIET_BELOW: Duration = Duration::from_secs(1);

/// Where plain lines go, if anywhere: stdout when it is not a terminal,
/// else stderr when that is not one (a terminal's stderr shows the bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    Stdout,
    Stderr,
    None,
}

impl Lines {
    fn detect() -> Self {
        if !std::io::stdout().is_terminal() {
            Self::Stdout
        } else if !std::io::stderr().is_terminal() {
            Self::Stderr
        } else {
            Self::None
        }
    }

    fn print(self, line: &str) {
        // A closed pipe must not stop training: progress is best effort.
        let _ = match self {
            Self::Stdout => writeln!(std::io::stdout(), "{line}"),
            Self::Stderr => writeln!(std::io::stderr(), "{line}"),
            Self::None => Ok(()),
        };
    }
}

/// The progress of one phase of `total` items.
pub struct Meter {
    what: String,
    total: usize,
    done: usize,
    note: String,
    bar: ProgressBar,
    lines: Lines,
    start: Instant,
    last_line: Option<Instant>,
}

impl Meter {
    /// A phase named `what` (e.g. "encrypt", "secure train 1/2") of `total` items.
    pub fn new(what: impl Into<String>, total: usize) -> Self {
        let what = what.into();
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(what.clone());
        Self {
            what,
            total,
            done: 0,
            note: String::new(),
            bar,
            lines: Lines::detect(),
            start: Instant::now(),
            last_line: None,
        }
    }

    /// `done` items of the phase are finished.
    pub fn set(&mut self, done: usize) {
        self.done = done;
        self.bar.set_position(done as u64);
        let since = self.last_line.unwrap_or(self.start).elapsed();
        if since >= LINE_EVERY {
            self.line();
        }
    }

    /// A short note after the counts (the latest metrics).
    pub fn note(&mut self, note: String) {
        self.bar.set_message(note.clone());
        self.note = note;
    }

    fn line(&mut self) {
        self.last_line = Some(Instant::now());
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = self.done as f64 / elapsed.max(1e-9);
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(" | {}", self.note)
        };
        self.lines.print(&format!(
            "{}: {}/{} in {elapsed:.0} s ({rate:.1}/s){note}",
            self.what, self.done, self.total
        ));
    }

    /// Ends the phase: the bar goes, and a last line is written unless the
    /// phase was short and printed nothing.
    pub fn finish(mut self) {
        self.bar.finish_and_clear();
        if self.last_line.is_some() || self.start.elapsed() >= QUIET_BELOW {
            self.line();
        }
    }
}

/// One meter per split of each epoch, with the latest value of each metric
/// as its note.
#[derive(Default)]
pub struct Bars {
    run: String,
    bar: Option<Meter>,
    epoch: usize,
    epochs: usize,
    /// Each registered metric: its id, name and latest value of this split.
    metrics: Vec<(MetricId, String, Option<String>)>,
}

impl Bars {
    /// Bars for the run named `run` ("plain", "secure").
    pub fn new(run: &str) -> Self {
        Self {
            run: run.to_string(),
            ..Self::default()
        }
    }

    fn show(&mut self, state: &MetricState) {
        let entry = match state {
            MetricState::Generic(entry) | MetricState::Numeric(entry, _) => entry,
        };
        if let Some((_, _, value)) = self
            .metrics
            .iter_mut()
            .find(|(id, _, _)| *id == entry.metric_id)
        {
            *value = Some(entry.serialized_entry.formatted.clone());
        }
        let message: Vec<String> = self
            .metrics
            .iter()
            .filter_map(|(_, name, value)| value.as_ref().map(|v| format!("{name}: {v}")))
            .collect();
        if let Some(bar) = &mut self.bar {
            bar.note(message.join(" | "));
        }
    }
}

impl MetricsRendererTraining for Bars {
    fn update_train(&mut self, state: MetricState) {
        self.show(&state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.show(&state);
    }
}

impl MetricsRendererEvaluation for Bars {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.show(&state);
    }
}

impl TrainingProgressLogger for Bars {
    fn start(
        &mut self,
        epochs: usize,
        starting: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
        (self.epochs, self.epoch) = (epochs, starting);
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        for (_, _, value) in &mut self.metrics {
            *value = None;
        }
        let what = format!("{} {split} {}/{}", self.run, self.epoch, self.epochs);
        self.bar = Some(Meter::new(what, total_items));
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &mut self.bar {
            bar.set(items_processed);
        }
    }

    fn end_split(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for Bars {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, name: &str, total_items: usize) {
        self.start_split(name, total_items);
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }

    fn end_test(&mut self) {
        self.end_split();
    }

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for Bars {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        let name = definition.name.to_string();
        self.metrics.push((definition.metric_id, name, None));
    }
}
