//! The Learner's progress as indicatif bars (burn-train's own terminal UI
//! is left out with its default features; its plain renderer prints every
//! step as a debug struct).

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};

/// One bar per split of each epoch, with the latest value of each metric
/// as its message.
#[derive(Default)]
pub struct Bars {
    run: String,
    bar: Option<ProgressBar>,
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
        if let Some(bar) = &self.bar {
            bar.set_message(message.join(" | "));
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
        let bar = ProgressBar::new(total_items as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!(
            "{} {split} {}/{}",
            self.run, self.epoch, self.epochs
        ));
        self.bar = Some(bar);
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
    }

    fn end_split(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
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
