//! The run from paths to an analysis, as every command that analyses objects makes it: the
//! inputs planned (files, directories walked, executables), each file read and analysed on
//! every core as it comes, and what reading found (files skipped inside directories and
//! executables, directories that hold nothing) put into the analysis's warnings, in one
//! order: the planning's first, then each file's and the analysis's own, then the empty
//! directories.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use miette::Diagnostic;
use thiserror::Error;

use crate::analysis::{self, Analysis, AnalysisError, Options};
use crate::input::{self, InputError};
use crate::rules::Rules;

#[derive(Debug, Error, Diagnostic)]
pub enum PipelineError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Input(#[from] InputError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Analysis(#[from] AnalysisError),
}

/// Analyses the objects of `paths` (at least one) under `opts`.
pub fn analyse_paths(paths: &[PathBuf], opts: &Options, rules: &Rules) -> Result<Analysis, PipelineError> {
    let (sources, planned) = input::plan_inputs(paths)?;
    // how many objects each source held, for the directories that held none
    let counts: Vec<AtomicUsize> = sources.iter().map(|_| AtomicUsize::new(0)).collect();
    let load = |i: usize| {
        input::load_source(&sources[i]).map(|(objects, warnings)| {
            counts[i].store(objects.len(), Ordering::Relaxed);
            analysis::Loaded { objects, warnings }
        })
    };
    let mut a = match analysis::analyse_stream(sources.len(), load, opts, rules) {
        Ok(a) => a,
        Err(analysis::StreamError::Load(e)) => return Err(e.into()),
        Err(analysis::StreamError::Analysis(e)) => return Err(e.into()),
    };
    let counts: Vec<usize> = counts.into_iter().map(AtomicUsize::into_inner).collect();
    let empty = input::check_directories(paths, &sources, &counts)?;
    let warnings = &mut a.requirements.warnings;
    warnings.splice(0..0, planned);
    warnings.extend(empty);
    Ok(a)
}
