//! Finding and reading inputs: object files named on the command line, executables, shared
//! libraries and other files that embed BPF objects (see [`embedded`]), and all of these
//! found by walking directories. Produces (display path, object model) pairs.
//!
//! Display paths: a BPF object file is named by its path; an object embedded in another file
//! by `path#name` (its libbpf skeleton name, when the file gives one unambiguously) or
//! `path#N` (N: 1-based index among the file's embedded objects, in file order). Display
//! paths are for people: loaders and tests read the bytes the [`ObjectRef`] every object
//! carries points at ([`read_object_ref`]).
//!
//! Limits: files over [`embedded::MAX_SCAN_SIZE`] (1 GiB) are not read; at most
//! [`embedded::MAX_EMBEDDED_PER_FILE`] (4096) embedded objects are taken from one file;
//! directories are walked [`MAX_DEPTH`] (64) levels deep; one object is at most
//! [`crate::elf::MAX_OBJECT_SIZE`] (256 MiB).

pub mod embedded;
pub mod host;
pub mod image;
pub mod loader_hint;
pub mod tar;

use std::io::Read;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use thiserror::Error;

use crate::elf::{self, ElfError};
use crate::model::{Object, ObjectRef};
use crate::text::Escaped;

#[derive(Debug, Error, Diagnostic)]
pub enum InputError {
    #[error("cannot read {}: {source}", Escaped(.path))]
    #[diagnostic(code(bpfcap::input::io), help("check that the path exists and is readable"))]
    Io { path: String, source: std::io::Error },

    #[error("{}: {source}", Escaped(.path))]
    #[diagnostic(code(bpfcap::input::object))]
    Object {
        path: String,
        #[source]
        #[diagnostic_source]
        source: ElfError,
    },

    #[error("no BPF objects found under {}", Escaped(.path))]
    #[diagnostic(
        code(bpfcap::input::empty_dir),
        help(
            "bpfcap looks for relocatable ELF files for EM_BPF (`clang -target bpf -c` output), and for such \
             objects embedded in executables and libraries"
        )
    )]
    NoObjects { path: String },

    #[error("{} is not a regular file or directory", Escaped(.path))]
    #[diagnostic(code(bpfcap::input::not_file), help("pass BPF object files or directories that contain them"))]
    NotFile { path: String },

    #[error("{} is not a BPF object and embeds none", Escaped(.path))]
    #[diagnostic(
        code(bpfcap::input::not_bpf),
        help(
            "pass a BPF object (`clang -target bpf -c` output), a program or library that embeds one (libbpf \
             skeleton, bpf2go's go:embed, include_bytes!), or a directory to search"
        )
    )]
    NotBpf { path: String },

    #[error("{} embeds {count} BPF object(s), none of them readable: {}", Escaped(.path), Escaped(.first))]
    #[diagnostic(
        code(bpfcap::input::embedded_unreadable),
        help("the file is truncated or the embedded object is corrupt; rebuild it, or pass the BPF object itself")
    )]
    EmbeddedUnreadable { path: String, count: usize, first: String },

    #[error("{} is larger than {limit} bytes", Escaped(.path))]
    #[diagnostic(
        code(bpfcap::input::too_large),
        help("bpfcap does not scan files over this size for embedded BPF objects; pass the BPF object itself")
    )]
    TooLarge { path: String, limit: u64 },

    #[error("{}: {}", Escaped(.path), Escaped(.why))]
    #[diagnostic(
        code(bpfcap::input::image),
        help(
            "bpfcap reads OCI image layouts, docker-archive and OCI archives (`docker save`, `skopeo copy`) and \
             root filesystem tarballs, gzip or zstd compressed or not; check that the image is whole"
        )
    )]
    Image { path: String, why: String },
}

/// Objects read from the inputs: (display path, object), in input order.
pub type Inputs = Vec<(String, Object)>;

/// Directory walk limits (documented in docs/limits.md).
pub const MAX_DEPTH: usize = 64;

/// One file to read: named on the command line (`explicit`) or found in directory `arg`.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub display: String,
    pub explicit: bool,
    /// The index of the command-line path that named or contains it.
    pub arg: usize,
    /// A container image or root filesystem archive ([`image`]), to be read for this platform
    /// (`None`: the running machine's, or the only one it has).
    pub image: Option<Option<image::Platform>>,
}

/// How inputs are read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The platform whose image to read from a multi-platform index (`--platform`).
    pub platform: Option<image::Platform>,
}

/// The files the input paths name, in order, without reading them: explicit files, and the
/// files of directories (searched recursively, in path order). Warnings: links to nothing.
pub fn plan_inputs(paths: &[PathBuf], opts: &Options) -> Result<(Vec<Source>, Vec<String>), InputError> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (arg, p) in paths.iter().enumerate() {
        let display = p.display().to_string();
        let image = Some(opts.platform.clone());
        if p.as_os_str() == STDIN {
            out.push(Source { path: p.clone(), display: STDIN_DISPLAY.to_string(), explicit: true, arg, image: None });
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| InputError::Io { path: display.clone(), source: e })?;
        if meta.is_dir() && image::is_layout(p) {
            out.push(Source { path: p.clone(), display, explicit: true, arg, image });
        } else if meta.is_dir() {
            let mut files = Vec::new();
            walk(p, 0, &mut files, &mut warnings)?;
            files.sort();
            for f in files {
                let display = f.display().to_string();
                out.push(Source { path: f, display, explicit: false, arg, image: None });
            }
        } else if meta.is_file() {
            let head = std::fs::File::open(p)
                .and_then(|mut f| host::read_head(&mut f, image::HEAD_LEN))
                .map_err(|e| InputError::Io { path: display.clone(), source: e })?;
            if image::is_archive(&head) {
                out.push(Source { path: p.clone(), display, explicit: true, arg, image });
                continue;
            }
            if meta.len() > embedded::MAX_SCAN_SIZE {
                return Err(InputError::TooLarge { path: display, limit: embedded::MAX_SCAN_SIZE });
            }
            out.push(Source { path: p.clone(), display, explicit: true, arg, image: None });
        } else {
            return Err(InputError::NotFile { path: display });
        }
    }
    Ok((out, warnings))
}

/// Reads one planned file: its objects and warnings. What is read of it is what [`host`]
/// says. A file found in a directory that neither is nor embeds a BPF object gives nothing;
/// one that cannot be read, or is a BPF object that does not parse (a truncated `.o`), gives a
/// warning naming it, and the rest is analysed.
pub fn load_source(src: &Source) -> Result<(Inputs, Vec<String>), InputError> {
    if let Some(platform) = &src.image {
        return image::load(&src.path, &src.display, platform.as_ref());
    }
    let mut warnings = Vec::new();
    let loaded = if src.path.as_os_str() == STDIN {
        read_stdin()
            .map_err(|e| InputError::Io { path: src.display.clone(), source: e })
            .and_then(|bytes| load_whole(&src.display, None, &bytes, src.explicit, &mut warnings))
    } else {
        load_file(src, &mut warnings)
    };
    match loaded {
        Ok(objects) => Ok((objects, warnings)),
        Err(InputError::Io { source, .. }) if !src.explicit => {
            warnings.push(format!("{}: skipped, cannot read it: {source}", src.display));
            Ok((Vec::new(), warnings))
        }
        Err(e) if !src.explicit => {
            warnings.push(format!("skipped: {e}"));
            Ok((Vec::new(), warnings))
        }
        Err(e) => Err(e),
    }
}

/// The section names read from executables and libraries, from the rules (decided once).
fn carriers() -> &'static host::Carriers {
    static CARRIERS: std::sync::OnceLock<host::Carriers> = std::sync::OnceLock::new();
    CARRIERS.get_or_init(|| host::Carriers::of(crate::rules::rules()))
}

/// Reads one file as [`host`] says: its first bytes, then nothing more, the sections that can
/// carry an object, or the whole file.
fn load_file(src: &Source, warnings: &mut Vec<String>) -> Result<Inputs, InputError> {
    let io = |e| InputError::Io { path: src.display.clone(), source: e };
    let mut f = std::fs::File::open(&src.path).map_err(io)?;
    let head = host::read_head(&mut f, host::HEAD_LEN).map_err(io)?;
    let at = host::InFile { file: &f, base: 0 };
    let len = || f.metadata().map(|m| m.len());
    // (the rest by position: reading the section headers moves the file's offset)
    let mut rest = host::ReadAt { file: &f, pos: head.len() as u64 };
    judge(&src.display, Some(&src.path), &head, len, &mut rest, Some(at), src.explicit, warnings)
}

/// What one file gives, judged by its first bytes (`head`, already read from `rest`) as
/// [`host`] says: nothing for a file found in a directory that is neither an ELF file nor an
/// archive; for an ELF file that is no BPF object, the objects in the sections that can carry
/// one (read where they lie when the file lies `at` a place, else from its bytes), or, when
/// its section headers cannot be read, in the whole file, with a note; else the whole file.
/// `display` names it, `source` is where its objects' bytes are; `size` is asked for only when
/// the file is read further. A file over [`embedded::MAX_SCAN_SIZE`] is an error when named
/// on the command line (`explicit`), else a warning when it could hold objects.
#[allow(clippy::too_many_arguments)]
fn judge(
    display: &str,
    source: Option<&Path>,
    head: &[u8],
    size: impl FnOnce() -> std::io::Result<u64>,
    rest: &mut impl Read,
    at: Option<host::InFile>,
    explicit: bool,
    warnings: &mut Vec<String>,
) -> Result<Inputs, InputError> {
    let io = |e| InputError::Io { path: display.to_string(), source: e };
    let kind = host::Kind::of(head);
    if kind == host::Kind::Other && !explicit {
        return Ok(Vec::new());
    }
    let size = size().map_err(io)?;
    if size > embedded::MAX_SCAN_SIZE {
        if explicit {
            return Err(InputError::TooLarge { path: display.to_string(), limit: embedded::MAX_SCAN_SIZE });
        }
        if kind != host::Kind::Other {
            warnings.push(format!(
                "{display}: skipped, larger than {} bytes (not scanned for BPF objects)",
                embedded::MAX_SCAN_SIZE
            ));
        }
        return Ok(Vec::new());
    }
    let whole_file_note =
        |why: String| format!("{display}: its section headers cannot be read ({why}); the whole file was searched");
    if let (host::Kind::Elf, Some(at)) = (kind, at) {
        match host::read_sections(at, size, carriers()) {
            Ok(parts) => return load_embedded(display, source, &parts.view(), explicit, warnings),
            Err(why) => warnings.push(whole_file_note(why)),
        }
    }
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(head);
    rest.read_to_end(&mut bytes).map_err(io)?;
    if let (host::Kind::Elf, None) = (kind, at) {
        match host::view_sections(&bytes, carriers()) {
            Ok(view) => return load_embedded(display, source, &view, explicit, warnings),
            Err(why) => warnings.push(whole_file_note(why)),
        }
    }
    load_whole(display, source, &bytes, explicit, warnings)
}

/// The path that names standard input.
pub const STDIN: &str = "-";
/// How an object read from standard input is named.
pub const STDIN_DISPLAY: &str = "<stdin>";

/// Standard input, up to the size limit of one file.
fn read_stdin() -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::io::stdin().lock().take(embedded::MAX_SCAN_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > embedded::MAX_SCAN_SIZE {
        return Err(std::io::Error::other(format!("more than {} bytes", embedded::MAX_SCAN_SIZE)));
    }
    Ok(bytes)
}

/// After [`load_source`] of every source: a path named on the command line that gave no
/// object is an error when no path did, and a warning naming it when others did.
pub fn check_directories(
    paths: &[PathBuf],
    sources: &[Source],
    objects_per_source: &[usize],
) -> Result<Vec<String>, InputError> {
    let empty: Vec<&PathBuf> = paths
        .iter()
        .enumerate()
        .filter(|(arg, _)| {
            // (a file named on the command line gave an object or an error; an image, like a
            // directory, may give none)
            !sources
                .iter()
                .zip(objects_per_source)
                .any(|(s, n)| s.arg == *arg && ((s.explicit && s.image.is_none()) || *n > 0))
        })
        .map(|(_, p)| p)
        .collect();
    match empty.first() {
        Some(p) if empty.len() == paths.len() => Err(InputError::NoObjects { path: p.display().to_string() }),
        _ => Ok(empty
            .iter()
            .map(|p| format!("{}: no BPF object found in it (the other paths were analysed)", p.display()))
            .collect()),
    }
}

/// Reads every input path, one file after another: the objects and the warnings, as the
/// pipeline finds them (it reads the files on every core, straight into the analysis; this
/// is for callers that want the objects themselves).
///
/// A file named explicitly must be a BPF object (any error reading it is an error) or embed
/// at least one readable BPF object ([`InputError::NotBpf`], [`InputError::EmbeddedUnreadable`]
/// otherwise). Inside directories, searched recursively in path order, a file that cannot be
/// read or does not parse is a warning naming it, and files that neither are nor embed a BPF
/// object are passed over; a path that gives no object is an error when no path gives one.
/// Embedded objects that cannot be read are warnings, not errors, wherever they are.
pub fn load_inputs(paths: &[PathBuf]) -> Result<(Inputs, Vec<String>), InputError> {
    let (sources, mut warnings) = plan_inputs(paths, &Options::default())?;
    let mut out = Vec::new();
    let mut counts = Vec::with_capacity(sources.len());
    for src in &sources {
        let (objects, w) = load_source(src)?;
        counts.push(objects.len());
        out.extend(objects);
        warnings.extend(w);
    }
    warnings.extend(check_directories(paths, &sources, &counts)?);
    Ok((out, warnings))
}

/// The objects of a file read whole (named `path` in reports): the file itself if it is a BPF
/// object, else those it embeds. `file` is where the bytes came from, for each object's
/// [`Object::source`]: a file of this machine, or a file inside an image (whose source the
/// image module then marks); None for standard input.
fn load_whole(
    path: &str,
    file: Option<&Path>,
    bytes: &[u8],
    explicit: bool,
    warnings: &mut Vec<String>,
) -> Result<Inputs, InputError> {
    if elf::uapi::is_bpf_object(bytes) {
        let mut object = elf::read_object(bytes, &elf::object_name(path))
            .map_err(|e| InputError::Object { path: path.to_string(), source: e })?;
        object.source = file.map(|f| ObjectRef { display: path.to_string(), ..ObjectRef::whole(f, &object.name) });
        return Ok(vec![(path.to_string(), object)]);
    }
    load_embedded(path, file, &host::View::whole(bytes), explicit, warnings)
}

/// The objects embedded in what was read of a file (`view`).
fn load_embedded(
    path: &str,
    file: Option<&Path>,
    view: &host::View,
    explicit: bool,
    warnings: &mut Vec<String>,
) -> Result<Inputs, InputError> {
    let found = embedded::extract_view(path, view);
    if found.objects.is_empty() && explicit {
        return Err(match found.warnings.first() {
            Some(first) if found.candidates > 0 => {
                InputError::EmbeddedUnreadable { path: path.to_string(), count: found.candidates, first: first.clone() }
            }
            _ => InputError::NotBpf { path: path.to_string() },
        });
    }
    warnings.extend(found.warnings);
    // what the file shows about the program that loads its objects (`--loader auto`)
    let hint = if found.objects.is_empty() {
        None
    } else {
        Some(loader_hint::detect(view, &found.ranges, crate::rules::rules()))
    };
    Ok(found
        .objects
        .into_iter()
        .map(|mut o| {
            o.object.loader_hint = hint.clone();
            o.object.source = file.map(|f| ObjectRef {
                file: f.to_path_buf(),
                range: Some((o.offset as u64, o.size as u64)),
                name: o.object.name.clone(),
                display: o.display.clone(),
                image: None,
            });
            (o.display, o.object)
        })
        .collect())
}

/// The bytes of the object `r` refers to, read again from its file (a loader in the sandbox
/// reads them so: no executable is scanned twice).
pub fn read_object_ref(r: &ObjectRef) -> Result<Vec<u8>, InputError> {
    use std::io::{Seek, SeekFrom};
    if let Some(image) = &r.image {
        return Err(InputError::Image {
            path: image.display().to_string(),
            why: format!("{} is inside the image; unpack it to load the object", r.display),
        });
    }
    let io = |e| InputError::Io { path: r.display.clone(), source: e };
    let mut f = std::fs::File::open(&r.file).map_err(io)?;
    let (offset, len) = match r.range {
        Some(range) => range,
        None => (0, f.metadata().map_err(io)?.len()),
    };
    if len > elf::MAX_OBJECT_SIZE {
        return Err(InputError::TooLarge { path: r.display.clone(), limit: elf::MAX_OBJECT_SIZE });
    }
    let mut bytes = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(offset)).and_then(|_| f.read_exact(&mut bytes)).map_err(io)?;
    if !elf::uapi::is_bpf_object(&bytes) {
        return Err(InputError::NotBpf { path: r.display.clone() });
    }
    Ok(bytes)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<(), InputError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| InputError::Io { path: dir.display().to_string(), source: e })?;
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(&entry.path(), depth + 1, out, warnings)?;
        } else if ft.is_file() {
            out.push(entry.path());
        } else if ft.is_symlink() {
            // a link to a file is read (links to directories are not followed: no loops)
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.is_file() => out.push(entry.path()),
                Ok(_) => {}
                Err(e) => {
                    warnings.push(format!("{}: skipped, a link to nothing readable: {e}", entry.path().display()))
                }
            }
        }
    }
    Ok(())
}
