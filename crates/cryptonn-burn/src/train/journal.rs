//! What the steps, the validation and the guard report, read when the
//! Learner returns: each epoch's step losses and test accuracy, why
//! training stopped, and the first failure.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::EventStoreClient;
use serde::{Deserialize, Serialize};

use super::{GuardFn, StepError};

/// One epoch of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f64,
    /// Accuracy of the weights after this epoch on the test set, evaluated in plaintext.
    pub test_accuracy: f64,
    /// The loss of each training step, in order.
    pub step_losses: Vec<f64>,
}

/// Locks `m`, also after a panic in another holder: the journal stays
/// readable, and a step's panic is reported by the Learner, not hidden
/// behind a poisoned lock.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The journal the steps and the guard share.
pub(super) struct Journal<E>(Arc<Mutex<Entries<E>>>);

impl<E> Clone for Journal<E> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<E> Default for Journal<E> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Entries::default())))
    }
}

impl<E> Journal<E> {
    pub(super) fn lock(&self) -> MutexGuard<'_, Entries<E>> {
        lock(&self.0)
    }

    pub(super) fn take(&self) -> Entries<E> {
        std::mem::take(&mut *self.lock())
    }
}

/// Each epoch's step losses and test accuracy, and why training stopped.
pub(super) struct Entries<E> {
    epochs: Vec<EpochReport>,
    /// Test items classified right and seen since the last epoch's steps.
    correct: usize,
    seen: usize,
    pub(super) stopped: Option<String>,
    pub(super) failure: Option<E>,
}

impl<E> Default for Entries<E> {
    fn default() -> Self {
        Self {
            epochs: Vec::new(),
            correct: 0,
            seen: 0,
            stopped: None,
            failure: None,
        }
    }
}

impl<E> Entries<E> {
    /// A step's loss in epoch `epoch` (1-based); its first step closes the
    /// previous epoch's validation.
    pub(super) fn record_step(&mut self, epoch: usize, loss: f64) {
        if self.epochs.last().is_none_or(|e| e.epoch != epoch) {
            self.close_validation();
            self.epochs.push(EpochReport {
                epoch,
                loss: 0.0,
                test_accuracy: 0.0,
                step_losses: Vec::new(),
            });
        }
        if let Some(epoch) = self.epochs.last_mut() {
            epoch.step_losses.push(loss);
        }
    }

    pub(super) fn record_validation(&mut self, correct: usize, seen: usize) {
        self.correct += correct;
        self.seen += seen;
    }

    fn close_validation(&mut self) {
        if self.seen > 0 {
            let accuracy = self.correct as f64 / self.seen as f64;
            self.record_accuracy(accuracy);
        }
        (self.correct, self.seen) = (0, 0);
    }

    pub(super) fn record_accuracy(&mut self, accuracy: f64) {
        if let Some(epoch) = self.epochs.last_mut() {
            epoch.test_accuracy = accuracy;
        }
    }

    /// Whether the last epoch trained but was not validated (with test
    /// items to validate on).
    pub(super) fn unvalidated(&self, test_items: usize) -> bool {
        test_items > 0 && self.seen == 0 && !self.epochs.is_empty()
    }

    pub(super) fn finish(mut self) -> (Vec<EpochReport>, Option<String>) {
        self.close_validation();
        for epoch in &mut self.epochs {
            epoch.loss = epoch.step_losses.iter().sum::<f64>() / epoch.step_losses.len() as f64;
        }
        (self.epochs, self.stopped)
    }
}

impl<E: StepError> Entries<E> {
    /// A failed step in epoch `epoch` (1-based): a clean stop (a refused
    /// key) ends training, anything else is the run's error. Returns the
    /// reason for the Learner.
    pub(super) fn fail(&mut self, e: E, epoch: usize) -> String {
        match e.clean_stop() {
            Some(why) => {
                let why = format!("epoch {epoch}: {why}");
                self.stopped.get_or_insert(why).clone()
            }
            None => {
                let why = e.to_string();
                self.failure.get_or_insert(e);
                why
            }
        }
    }
}

/// Stops the Learner between epochs when the run's guard says so.
pub(super) struct Guarded<E> {
    pub(super) guard: Arc<Mutex<Box<GuardFn>>>,
    pub(super) journal: Journal<E>,
    pub(super) epochs: usize,
}

impl<E> Clone for Guarded<E> {
    fn clone(&self) -> Self {
        Self {
            guard: self.guard.clone(),
            journal: self.journal.clone(),
            epochs: self.epochs,
        }
    }
}

impl<E: Send + 'static> EarlyStoppingStrategy for Guarded<E> {
    fn should_stop(&mut self, epoch: usize, _store: &EventStoreClient) -> bool {
        if epoch >= self.epochs {
            return false;
        }
        let why = (lock(&self.guard))(epoch);
        match why {
            Some(why) => {
                self.journal.lock().stopped.get_or_insert(why);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failure(&'static str, bool);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StepError for Failure {
        fn clean_stop(&self) -> Option<String> {
            self.1.then(|| format!("refused: {}", self.0))
        }
    }

    #[test]
    fn journal_keeps_each_epochs_steps_and_validation() {
        let mut entries = Entries::<Failure>::default();
        entries.record_step(1, 2.0);
        entries.record_step(1, 1.0);
        entries.record_validation(3, 4);
        entries.record_validation(1, 4);
        entries.record_step(2, 0.5);
        assert!(entries.unvalidated(8));
        assert!(!entries.unvalidated(0), "nothing to validate on");
        entries.record_accuracy(0.25);
        let (epochs, stopped) = entries.finish();
        assert_eq!(epochs.len(), 2);
        assert_eq!((epochs[0].epoch, epochs[0].loss), (1, 1.5));
        assert_eq!(epochs[0].test_accuracy, 0.5);
        assert_eq!((epochs[1].epoch, epochs[1].test_accuracy), (2, 0.25));
        assert_eq!(stopped, None);

        // Without test items every epoch is still its own.
        let mut entries = Entries::<Failure>::default();
        for epoch in 1..=3 {
            entries.record_step(epoch, 1.0);
        }
        assert_eq!(entries.finish().0.len(), 3);
    }

    #[test]
    fn a_clean_stop_is_kept_and_other_failures_are_errors() {
        let mut entries = Entries::default();
        let why = entries.fail(Failure("budget", true), 2);
        assert_eq!(why, "epoch 2: refused: budget");
        assert!(entries.failure.is_none());
        entries.fail(Failure("broken", false), 2);
        assert!(matches!(entries.failure, Some(Failure("broken", false))));
    }
}
