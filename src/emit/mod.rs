//! What every dialect's writer shares ([`crate::dialect`] writes each): what a writer gives
//! back, comments, the reasons behind items, the bpffs option string, and writing the file.

use crate::delegation::Delegation;
use crate::rules::Rules;
use crate::vocab::{ListKind, MAX_OPTION_VALUE};

/// What an emitter produced: the text, and notes for the user (printed on stderr).
#[derive(Debug, Clone, Default)]
pub struct Emitted {
    pub text: String,
    pub notes: Vec<String>,
}

/// The note for a list written as its hex mask because its names take `len` bytes, more than
/// `limit`.
pub fn masked_note(key: &str, len: usize, limit: usize) -> String {
    format!(
        "{key}: the names take {len} bytes, more than the {limit} the kernel accepts in one value; written as the equivalent hex mask"
    )
}

/// `delegate_cmds=...,delegate_maps=...` (lists that are empty are left out), with a note for
/// each list whose names had to give way to the hex mask.
pub fn mount_options(d: &Delegation, rules: &Rules, notes: &mut Vec<String>) -> String {
    let (options, masked) = d.mount_options_and_masked(rules);
    notes.extend(masked.into_iter().map(|(k, len)| masked_note(k.mount_option(), len, MAX_OPTION_VALUE)));
    options
}

/// A comment line of emitted configuration (`# text`). Every dialect bpfcap writes takes `#`
/// comments that end at the line's end; the text (object, program and map names, file paths)
/// is escaped ([`crate::text::escape`]) so that it can neither end the line nor continue it
/// onto the next. Untrusted text is never written anywhere else than in a comment.
pub fn comment(text: &str) -> String {
    format!("# {}", crate::text::Escaped(text))
}

/// Short answers to "why is this item here?", for comments in emitted configuration.
pub type Why<'a> = &'a dyn Fn(ListKind, &str) -> String;

/// "why" from an analysis: the programs and maps that need the item, else the loader steps
/// (named with `loaders`' name for the loader of the object that takes them, by object:
/// "libbpf probe_loading").
pub fn why_from<'a>(
    reqs: &'a crate::analysis::requirements::Requirements,
    loaders: &'a std::collections::BTreeMap<String, String>,
) -> impl Fn(ListKind, &str) -> String + 'a {
    let loader_of = |object: &str| loaders.get(object).map_or("the loader", String::as_str);
    move |k, item| {
        let Some(rs) = reqs.required.get(&crate::vocab::Need::List(k, item.to_string())) else {
            return String::new();
        };
        let mut own: Vec<String> = rs
            .iter()
            .filter(|r| r.loader_step.is_none())
            .filter_map(|r| r.program.as_deref().or(r.map.as_deref()).map(String::from))
            .collect();
        own.sort();
        own.dedup();
        if !own.is_empty() {
            let more = own.len().saturating_sub(3);
            let mut s = own.into_iter().take(3).collect::<Vec<_>>().join(", ");
            if more > 0 {
                s.push_str(&format!(" +{more}"));
            }
            return s;
        }
        // each loader with its steps: "libbpf probe_loading, program_btf; cilium/ebpf ..."
        let mut steps: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for r in rs.iter().filter(|r| !r.note) {
            if let Some(step) = r.loader_step.as_deref() {
                steps.entry(loader_of(&r.object)).or_default().push(step);
            }
        }
        if steps.is_empty() {
            // neither a program, a map nor a loader step (a recorded need): its first reason
            return rs.first().map(|r| r.text.to_string()).unwrap_or_default();
        }
        let by_loader = steps.into_iter().map(|(loader, mut ids)| {
            ids.sort();
            ids.dedup();
            format!("{loader} {}", ids.join(", "))
        });
        by_loader.collect::<Vec<_>>().join("; ")
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same directory
/// (`.NAME.bpfcap-PID.tmp`), synced, then renamed over `path` (or linked to it, which never
/// replaces a file), and the directory synced. Refuses to replace an existing file unless
/// `force`; a replaced file's permission bits are kept. Temporary files that an earlier run
/// killed before it finished left behind (their PID no longer runs) are removed first.
pub fn write_atomic(path: &std::path::Path, text: &str, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    if !force && path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists; pass --force to replace it", crate::text::Escaped(&path.to_string_lossy())),
        ));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    remove_stale_temporaries(dir, &name);
    let tmp = dir.join(format!(".{name}.bpfcap-{}.tmp", std::process::id()));
    let replaced_mode =
        if force { std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777) } else { None };
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Some(mode) = replaced_mode {
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if force {
            std::fs::rename(&tmp, path)?;
        } else {
            // no-clobber even against a file created meanwhile
            std::fs::hard_link(&tmp, path)?;
            std::fs::remove_file(&tmp)?;
        }
        // the rename (or link) itself is durable once the directory is synced
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes `.NAME.bpfcap-PID.tmp` files in `dir` whose PID no longer runs.
fn remove_stale_temporaries(dir: &std::path::Path, name: &str) {
    let prefix = format!(".{name}.bpfcap-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(".tmp")?.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Items of `d` that Linux `kernel` does not have, and a kernel without tokens.
pub fn kernel_problems(d: &Delegation, kernel: crate::rules::Version, rules: &Rules) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(since) = rules.token_since()
        && kernel < since
    {
        v.push(format!("BPF tokens and bpffs delegation exist since Linux {since}"));
    }
    for k in ListKind::ALL {
        for item in d.list(k) {
            if let Some(since) = rules.name_since(k, item)
                && kernel < since
            {
                v.push(format!("{} {item} exists since Linux {since}", k.mount_option()));
            }
        }
    }
    v
}
