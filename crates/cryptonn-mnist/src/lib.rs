//! The main job's application, `examples/mnist_secure`: MNIST, the MLP and
//! LeNet-5, the one runner over three parties, the report and its plots.
//!
//! Read in this order: [`config`] (every default and preset), [`data`],
//! the models ([`mlp`], [`lenet`], [`secure_model`]), [`parties`] (the
//! authority, the client step and the trainer's session), [`runner`] (one
//! plain run in [`plain`], one secure run in [`secure_training`] or
//! [`projection`]), [`report`] and [`plot`].

pub mod budget_guard;
pub mod config;
pub mod data;
pub mod equivalence;
pub mod learner;
pub mod lenet;
pub mod loss;
pub mod mlp;
pub mod outputs;
pub mod parties;
pub mod plain;
pub mod plot;
pub mod privacy;
pub mod progress;
pub mod projection;
pub mod reader;
pub mod report;
pub mod runner;
pub mod secure_model;
pub mod secure_training;
