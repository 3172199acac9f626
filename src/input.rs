//! Finding and reading inputs: object files named on the command line, and BPF objects
//! found by walking directories. Produces (display path, object model) pairs.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use thiserror::Error;

use crate::elf::{self, ElfError};
use crate::model::Object;

#[derive(Debug, Error, Diagnostic)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(bpfcap::input::io), help("check that the path exists and is readable"))]
    Io { path: String, source: std::io::Error },

    #[error("{path}: {source}")]
    #[diagnostic(code(bpfcap::input::object))]
    Object {
        path: String,
        #[source]
        #[diagnostic_source]
        source: ElfError,
    },

    #[error("no BPF objects found under {path}")]
    #[diagnostic(code(bpfcap::input::empty_dir), help("bpfcap looks for relocatable ELF files for EM_BPF (`clang -target bpf -c` output)"))]
    NoObjects { path: String },

    #[error("{path} is not a regular file or directory")]
    #[diagnostic(code(bpfcap::input::not_file), help("pass BPF object files or directories that contain them"))]
    NotFile { path: String },
}

/// Directory walk limits (documented in docs/limits.md).
pub const MAX_DEPTH: usize = 64;

/// Reads every input path. Files named explicitly must be BPF objects; inside directories,
/// files that are not BPF objects are skipped silently.
pub fn load_inputs(paths: &[PathBuf]) -> Result<Vec<(String, Object)>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| InputError::Io { path: p.display().to_string(), source: e })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(p, 0, &mut files)?;
            files.sort();
            let before = out.len();
            for f in files {
                let Ok(bytes) = std::fs::read(&f) else { continue };
                if !looks_like_bpf(&bytes) {
                    continue;
                }
                let path = f.display().to_string();
                let object = elf::read_object(&bytes, &elf::object_name(&path))
                    .map_err(|e| InputError::Object { path: path.clone(), source: e })?;
                out.push((path, object));
            }
            if out.len() == before {
                return Err(InputError::NoObjects { path: p.display().to_string() });
            }
        } else if meta.is_file() {
            let path = p.display().to_string();
            let bytes = std::fs::read(p).map_err(|e| InputError::Io { path: path.clone(), source: e })?;
            let object = elf::read_object(&bytes, &elf::object_name(&path))
                .map_err(|e| InputError::Object { path: path.clone(), source: e })?;
            out.push((path, object));
        } else {
            return Err(InputError::NotFile { path: p.display().to_string() });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| InputError::Io { path: dir.display().to_string(), source: e })?;
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(&entry.path(), depth + 1, out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// ELF, relocatable, EM_BPF (247), checked from the header bytes alone.
pub fn looks_like_bpf(b: &[u8]) -> bool {
    if b.len() < 20 || &b[..4] != b"\x7fELF" {
        return false;
    }
    let le = b[5] == 1;
    let rd16 = |o: usize| if le { u16::from_le_bytes([b[o], b[o + 1]]) } else { u16::from_be_bytes([b[o], b[o + 1]]) };
    rd16(16) == 1 && rd16(18) == 247
}
