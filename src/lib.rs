//! bpfcap: a BPF cap calculator.
//!
//! Data flows one way through the modules:
//! `input` (files, directories) → `elf` (ELF bytes → [`model`]) → `analysis` (requirements
//! with provenance) → `delegation` (the four delegate lists and capabilities) → `report`
//! (JSON, tables) and `sandbox` (loads through a real token, for `verify`).
//! `rules` holds the data every stage interprets; `workers` spreads work over the cores;
//! `cli` is the command line over all of it.
pub mod analysis;
pub mod check;
pub mod cli;
pub mod config;
pub mod delegation;
pub mod elf;
pub mod emit;
pub mod input;
pub mod model;
pub mod names;
pub mod progress;
pub mod record;
pub mod report;
pub mod rules;
pub mod sandbox;
pub mod text;
pub mod verify;
pub mod vocab;
pub mod workers;
