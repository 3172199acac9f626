//! The run from paths to an analysis, as every command that analyses objects makes it: the
//! inputs planned (files, directories walked, executables), each file read and analysed on
//! every core as it comes, and what reading found (files skipped inside directories and
//! executables, directories that hold nothing) put into the analysis's warnings, in one
//! order: the planning's first, then each file's and the analysis's own, then the empty
//! directories.

use std::path::PathBuf;
use std::sync::Mutex;
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

/// Analyses the objects of `paths` (at least one), read as `reading` says, under `opts`.
pub fn analyse_paths(
    paths: &[PathBuf],
    reading: &input::Options,
    opts: &Options,
    rules: &Rules,
) -> Result<Analysis, PipelineError> {
    run(paths, reading, opts, &analysis::Analyser::new(rules), None)
}

/// One file that holds objects (an executable, a library, an object file; in an image, by its
/// path there), and the answer for its objects alone: what `bpfcap analyze` of that file
/// would give.
#[derive(Debug)]
pub struct Executable {
    pub path: String,
    /// The image it is in, if any.
    pub image: Option<PathBuf>,
    pub analysis: Analysis,
}

/// [`analyse_paths`], and the answer for each file that holds objects (`--by-executable`).
/// Every object read is held until the per-file answers are made.
pub fn analyse_by_executable(
    paths: &[PathBuf],
    reading: &input::Options,
    opts: &Options,
    rules: &Rules,
) -> Result<(Analysis, Vec<Executable>), PipelineError> {
    let kept = Mutex::new(Vec::new());
    // (one analyser for the whole answer and every file's: the rules' reason texts made once)
    let analyser = analysis::Analyser::new(rules);
    let a = run(paths, reading, opts, &analyser, Some(&kept))?;
    let mut kept = kept.into_inner().expect("objects");
    kept.sort_by_key(|(i, _)| *i);
    // the files in the order the analysis lists their objects
    let mut groups: Vec<(HolderKey, Vec<(String, crate::model::Object)>)> = Vec::new();
    let mut group_of: std::collections::HashMap<HolderKey, usize> = std::collections::HashMap::new();
    for (display, object) in kept.into_iter().flat_map(|(_, objects)| objects) {
        let key = holder(&display, &object);
        let g = *group_of.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push((display, object));
    }
    let mut per_file = Vec::with_capacity(groups.len());
    for ((image, path), objects) in groups {
        // --program: the programs the file has (a file with none of them is left out, as the
        // whole answer leaves its objects out)
        let mut own = opts.clone();
        own.programs.retain(|name| objects.iter().any(|(_, o)| o.program(name).is_some()));
        if own.programs.is_empty() && !opts.programs.is_empty() {
            continue;
        }
        let analysis = match analyser.analyse(objects, &own) {
            Ok(a) => a,
            // (left out of the whole answer too, with a warning there)
            Err(analysis::AnalysisError::TooComplex { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        per_file.push(Executable { path, image, analysis });
    }
    Ok((a, per_file))
}

/// (image, path of the file) that holds an object.
type HolderKey = (Option<PathBuf>, String);

fn holder(display: &str, object: &crate::model::Object) -> HolderKey {
    match &object.source {
        Some(src) => {
            let (image, file) = src.holder();
            (image.map(PathBuf::from), file.display().to_string())
        }
        // (read from standard input: the one file there is)
        None => (None, display.to_string()),
    }
}

fn run(
    paths: &[PathBuf],
    reading: &input::Options,
    opts: &Options,
    analyser: &analysis::Analyser,
    keep: Option<&Mutex<Vec<(usize, input::Inputs)>>>,
) -> Result<Analysis, PipelineError> {
    let (sources, planned) = input::plan_inputs(paths, reading)?;
    // how many objects each source held, for the directories that held none
    let counts: Vec<AtomicUsize> = sources.iter().map(|_| AtomicUsize::new(0)).collect();
    let load = |i: usize| {
        input::load_source(&sources[i]).map(|(objects, warnings)| {
            counts[i].store(objects.len(), Ordering::Relaxed);
            if let Some(keep) = keep {
                keep.lock().expect("objects").push((i, objects.clone()));
            }
            analysis::Loaded { objects, warnings }
        })
    };
    let mut a = match analyser.analyse_stream(sources.len(), load, opts) {
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
