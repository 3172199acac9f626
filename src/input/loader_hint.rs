//! Which loader an executable carries, from its bytes (`--loader auto`): the facts each loader's
//! `[detect]` rules name (rules/loader/*.toml), read from the file that embeds the objects.
//!
//! In order of strength: a Go binary's build info listing a loader's module (`go version -m`),
//! a shared library the binary links (its name in `.dynstr`, as DT_NEEDED and the symbol-version
//! requirements name it, or in systemd's `.note.dlopen`), then strings that show a loader linked
//! in. Strings inside the embedded objects themselves are not read.

use memchr::memmem;

use super::host::View;
use crate::model::LoaderHint;
use crate::rules::{LoaderModel, Rules, Version};

/// The sections detection reads by name: a Go binary's build info, the dynamic string table,
/// and systemd's `.note.dlopen` (the input reads them from every executable it searches).
pub const SECTIONS: [&str; 3] = [".go.buildinfo", ".dynstr", ".note.dlopen"];

/// The loader the file `view` (what was read of an executable) carries, as far as the
/// loaders' rules recognise it (a hint without a loader when none does). `exclude`: byte
/// ranges (start, end) of the embedded objects, sorted by start.
pub fn detect(view: &View, exclude: &[(usize, usize)], rules: &Rules) -> LoaderHint {
    let file = File::new(view, exclude);
    let detectors: [fn(&File, &LoaderModel) -> Option<LoaderHint>; 3] = [by_go_module, by_shared_library, by_strings];
    detectors.iter().find_map(|detect| rules.loaders.iter().find_map(|l| detect(&file, l))).unwrap_or(LoaderHint {
        loader: None,
        version: None,
        at_least: false,
        evidence:
            "shows no loader the rules know (no Go build info listing one, no shared library, no identifying strings)"
                .into(),
    })
}

/// What detection reads of a file, found once.
struct File<'a> {
    /// What was read of the file outside the embedded objects.
    outside: Vec<&'a [u8]>,
    /// The module information of a Go binary's build info.
    go_modinfo: Option<String>,
    /// The strings of `.dynstr`.
    dynstr: Vec<&'a [u8]>,
    /// The contents of `.note.dlopen` (systemd's record of libraries it dlopens).
    dlopen: &'a [u8],
}

impl<'a> File<'a> {
    fn new(view: &'a View<'a>, exclude: &[(usize, usize)]) -> File<'a> {
        let [buildinfo, dynstr, dlopen] = view.sections(&SECTIONS)[..] else { unreachable!("one per name") };
        // (without the section, Go's build info is searched for in what was read)
        let go_modinfo = if buildinfo.is_empty() {
            view.spans.iter().find_map(|s| go_modinfo(s.bytes))
        } else {
            go_modinfo(buildinfo)
        };
        let dynstr = dynstr.split(|b| *b == 0).filter(|s| !s.is_empty()).collect();
        let outside = view.outside(exclude).into_iter().map(|(_, part)| part.bytes).collect();
        File { outside, go_modinfo, dynstr, dlopen }
    }

    /// Whether `needle` occurs in what was read of the file, outside the embedded objects.
    fn contains(&self, needle: &str) -> bool {
        let finder = memmem::Finder::new(needle.as_bytes());
        // (a match may not run into an excluded range)
        self.outside.iter().any(|part| finder.find(part).is_some())
    }

    /// The newest version marker of `model` the file holds.
    fn marked_version(&self, model: &LoaderModel) -> Option<(Version, String)> {
        model
            .detect
            .version_markers
            .iter()
            .find(|m| self.contains(&m.string))
            .and_then(|m| Some((Version::parse(&m.version)?, format!("holds {:?}: {}", m.string, m.why))))
    }
}

/// A Go binary whose build info lists the loader's module: at the version it lists (or, for a
/// replacement or a version before the markers', the one its strings show).
fn by_go_module(file: &File, model: &LoaderModel) -> Option<LoaderHint> {
    let module = model.detect.go_module.as_deref()?;
    let modinfo = file.go_modinfo.as_deref()?;
    let (line, version) = module_version(modinfo, module)?;
    let listed = version.as_deref().and_then(|v| Version::parse(v.trim_start_matches('v')));
    let marked = file.marked_version(model);
    let (version, evidence) = match (listed, &marked) {
        (Some(l), Some((m, why))) if *m > l => {
            (m.to_string(), format!("lists `{line}` in its Go build info, and {why}"))
        }
        (Some(l), _) => (l.to_string(), format!("lists `{line}` in its Go build info")),
        (None, Some((m, why))) => (m.to_string(), format!("lists `{line}` in its Go build info, and {why}")),
        (None, None) => return Some(hint(model, None, false, format!("lists `{line}` in its Go build info"))),
    };
    Some(hint(model, Some(version), false, evidence))
}

/// A binary that links the loader as a shared library: at least the version of the newest
/// symbol-version node it needs.
fn by_shared_library(file: &File, model: &LoaderModel) -> Option<LoaderHint> {
    let d = &model.detect;
    let lib = d.shared_library.iter().find(|l| file.dynstr.contains(&l.as_bytes()));
    let Some(lib) = lib else {
        let lib = d.shared_library.iter().find(|l| memmem::find(file.dlopen, l.as_bytes()).is_some())?;
        return Some(hint(model, None, false, format!("dlopens {lib} (its .note.dlopen says so)")));
    };
    let node = d.version_node.as_deref().and_then(|prefix| {
        file.dynstr
            .iter()
            .filter_map(|s| std::str::from_utf8(s).ok()?.strip_prefix(prefix))
            .filter_map(|v| Some((Version::parse(v)?, v)))
            .max()
    });
    Some(match node {
        Some((_, raw)) => hint(
            model,
            Some(raw.to_string()),
            true,
            format!("links {lib} and needs its symbol version {}{raw}", d.version_node.as_deref().unwrap_or_default()),
        ),
        None => hint(model, None, false, format!("links {lib}")),
    })
}

/// A binary holding every identifying string of the loader: the version of its newest marker.
fn by_strings(file: &File, model: &LoaderModel) -> Option<LoaderHint> {
    let d = &model.detect;
    if d.strings.is_empty() || !d.strings.iter().all(|s| file.contains(s)) {
        return None;
    }
    let shown = format!("holds {}", d.strings.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" and "));
    Some(match file.marked_version(model) {
        Some((v, why)) => hint(model, Some(v.to_string()), false, format!("{shown}, and {why}")),
        None => hint(model, None, false, shown),
    })
}

fn hint(model: &LoaderModel, version: Option<String>, at_least: bool, evidence: String) -> LoaderHint {
    LoaderHint { loader: Some(model.name().to_string()), version, at_least, evidence }
}

/// The module information of Go build info (debug/buildinfo's layout): the 14-byte magic at a
/// 16-byte boundary, pointer size and flags, then (flag 2, every Go since 1.18) the Go version
/// and the module information as varint-prefixed strings from offset 32; the module
/// information is framed by 16 bytes of sentinel at each end.
fn go_modinfo(data: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let at = memmem::find_iter(data, MAGIC).find(|at| at % 16 == 0 && data.len() >= at + 32)?;
    let header = &data[at..];
    if header[15] & 2 == 0 {
        // the older, pointer-based format: not read (Go before 1.18)
        return None;
    }
    let (_go_version, rest) = varint_string(&header[32..])?;
    let (modinfo, _) = varint_string(rest)?;
    if modinfo.len() < 33 || modinfo[modinfo.len() - 17] != b'\n' {
        return None;
    }
    Some(String::from_utf8_lossy(&modinfo[16..modinfo.len() - 16]).into_owned())
}

/// A uvarint length and that many bytes; the rest.
fn varint_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, b) in data.iter().enumerate().take(10) {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            return Some((data.get(start..end)?, &data[end..]));
        }
    }
    None
}

/// The build-info line that lists `module` (`mod` or `dep`, or a `=>` replacement of another
/// module by it), as shown to the user, and the version in force (None: a replacement by a
/// directory). A `=>` line replaces the module of the line before it.
fn module_version(modinfo: &str, module: &str) -> Option<(String, Option<String>)> {
    // kind, path, version (the sum left out)
    let lines: Vec<Vec<&str>> = modinfo.lines().map(|l| l.split('\t').take(3).collect()).collect();
    for (i, fields) in lines.iter().enumerate() {
        let listed = matches!(fields.as_slice(), ["mod" | "dep", path, ..] if *path == module);
        let replacing = matches!(fields.as_slice(), ["=>", path, ..] if *path == module);
        if !listed && !replacing {
            continue;
        }
        let shown = |l: &Vec<&str>| l.iter().filter(|f| !f.is_empty()).copied().collect::<Vec<_>>().join(" ");
        let (in_force, text) = match lines.get(i + 1).filter(|n| n.first() == Some(&"=>")) {
            Some(next) if listed => (next, format!("{} {}", shown(fields), shown(next))),
            _ if replacing => {
                (fields, format!("{} {}", lines.get(i.wrapping_sub(1)).map(shown).unwrap_or_default(), shown(fields)))
            }
            _ => (fields, shown(fields)),
        };
        return Some((text, in_force.get(2).filter(|v| !v.is_empty()).map(|v| v.to_string())));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buildinfo(modinfo: &str) -> Vec<u8> {
        let mut b = b"\xff Go buildinf:".to_vec();
        b.push(8);
        b.push(2);
        b.resize(32, 0);
        let push = |b: &mut Vec<u8>, s: &[u8]| {
            let mut n = s.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                b.push(if n > 0 { byte | 0x80 } else { byte });
                if n == 0 {
                    break;
                }
            }
            b.extend_from_slice(s);
        };
        push(&mut b, b"go1.27.0");
        let mut framed = vec![0x30u8; 16];
        framed.extend_from_slice(modinfo.as_bytes());
        framed.extend(std::iter::repeat_n(0xf9u8, 16));
        push(&mut b, &framed);
        let mut out = vec![0u8; 48];
        out.extend(b);
        out
    }

    #[test]
    fn go_build_info_gives_the_module_and_version() {
        let info = "path\texample.com/x\nmod\texample.com/x\t(devel)\t\ndep\tgithub.com/cilium/ebpf\tv0.22.0\th1:abc=\ndep\tgolang.org/x/sys\tv0.30.0\th1:def=\n";
        let bytes = buildinfo(info);
        let hint = detect(&View::whole(&bytes), &[], crate::rules::rules());
        assert_eq!(hint.loader.as_deref(), Some("cilium"));
        assert_eq!(hint.version.as_deref(), Some("0.22"));
        assert!(hint.evidence.contains("dep github.com/cilium/ebpf v0.22.0"), "{}", hint.evidence);
        // a replacement by another version wins; by a directory, the version is not shown
        let replaced = "dep\tgithub.com/cilium/ebpf\tv0.21.0\n=>\tgithub.com/fork/ebpf\tv0.22.1\th1:x=\n";
        assert_eq!(module_version(replaced, "github.com/cilium/ebpf").unwrap().1.as_deref(), Some("v0.22.1"));
        let local = "dep\tgithub.com/cilium/ebpf\tv0.21.0\n=>\t../ebpf\t\t\n";
        assert_eq!(module_version(local, "github.com/cilium/ebpf").unwrap().1, None);
        // an older release takes no token: the hint says 0.21
        let old = detect(
            &View::whole(&buildinfo("dep\tgithub.com/cilium/ebpf\tv0.21.0\th1:x=\n")),
            &[],
            crate::rules::rules(),
        );
        assert_eq!(old.version.as_deref(), Some("0.21"));
    }

    #[test]
    fn strings_inside_embedded_objects_do_not_count() {
        let mut bytes = vec![0u8; 64];
        bytes.extend_from_slice(b"libbpf: \0libbpf_global\0full range LDIMM64 support\0");
        let n = bytes.len();
        let hint = detect(&View::whole(&bytes), &[], crate::rules::rules());
        assert_eq!((hint.loader.as_deref(), hint.version.as_deref()), (Some("libbpf"), Some("1.7")));
        assert_eq!(detect(&View::whole(&bytes), &[(32, n)], crate::rules::rules()).loader, None);
    }
}
