//! The main job, `examples/mnist_secure`: data, model, training and report.

pub mod data;
pub mod idx;
pub mod model;
pub mod plot;
pub mod privacy;
pub mod projection;
pub mod report;
pub mod training;
