//! The main job, `examples/mnist_secure`: data, model, training and report.

pub mod data;
pub mod equivalence;
pub mod learner;
pub mod lenet;
pub mod lenet_training;
pub mod model;
pub mod parties;
pub mod plot;
pub mod privacy;
pub mod progress;
pub mod projection;
pub mod report;
pub mod secure;
pub mod training;
