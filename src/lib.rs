//! bpfcap: a BPF cap calculator.
//!
//! Data flows one way through the modules:
//! `input` (files, directories, executables) → `elf` (ELF bytes → [`model`]) → `analysis`
//! (requirements with provenance, under a loader model) → [`delegation`] (the four delegate
//! lists and capabilities) → `emit` / `check` / `verify` (+ `sandbox`) / `record` → `report`
//! (JSON, tables); `cli` is the command line over all of it. [`vocab`] holds the words every
//! layer shares and `rules` the data every stage interprets. docs/design.md lists the layers,
//! and tests/layers.rs holds every import to them.
pub mod analysis;
pub mod check;
pub mod cli;
pub mod config;
pub mod delegation;
pub mod dialect;
pub mod elf;
pub mod emit;
pub mod finding;
pub mod input;
pub mod model;
pub mod names;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod report;
pub mod rules;
pub mod sandbox;
pub mod spelling;
pub mod text;
pub mod verify;
pub mod vocab;
pub mod workers;
