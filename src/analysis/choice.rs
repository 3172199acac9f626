//! Which loader each object is analysed for: `--loader` parsed against the loaders the rules
//! describe (rules/loader/*.toml), and `auto` decided per object from what its file shows.

use miette::Diagnostic;
use thiserror::Error;

use crate::model::LoaderHint;
use crate::rules::{LoaderModel, Rules, Version};
use crate::text::Escaped;

/// Which loader the delegation must serve (`--loader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderChoice {
    /// Only what the kernel checks for the objects' own maps and programs.
    Raw,
    /// One loader for every object.
    Loader(LoaderSpec),
    /// Per object, from what its file shows (a Go binary's build info, a libbpf linked in); an
    /// object that shows nothing (a bare `.o`) gets libbpf at `libbpf`.
    Auto { libbpf: Vec<Version> },
}

/// A loader of the rules at the versions the delegation must serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderSpec {
    /// Its name in the rules.
    pub name: String,
    /// Oldest first. A version that takes no token is asked for alone.
    pub versions: Vec<Version>,
    /// Whether these versions take a BPF token; without one the process needs capabilities of
    /// its own.
    pub token: bool,
}

impl LoaderChoice {
    /// libbpf at these versions (a shorthand for `--loader libbpf@...`).
    pub fn libbpf(versions: Vec<Version>) -> LoaderChoice {
        LoaderChoice::Loader(LoaderSpec { name: "libbpf".into(), versions, token: true })
    }

    /// How reports name the choice when no object was analysed.
    pub fn describe(&self, rules: &Rules) -> String {
        match self {
            LoaderChoice::Raw => "raw".into(),
            LoaderChoice::Loader(spec) => spec.describe(rules),
            LoaderChoice::Auto { .. } => "auto".into(),
        }
    }
}

impl LoaderSpec {
    /// "libbpf 1.5-1.7", "cilium/ebpf 0.22", "aya 0.14 (no token)".
    pub fn describe(&self, rules: &Rules) -> String {
        let title = rules.loader(&self.name).map_or(self.name.as_str(), |m| m.header.title.as_str());
        let vs = match self.versions.as_slice() {
            [] => String::new(),
            [one] => format!(" {one}"),
            [first, .., last] => format!(" {first}-{last}"),
        };
        let token = if self.token { "" } else { " (no token)" };
        format!("{title}{vs}{token}")
    }
}

/// The loader one object is analysed for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLoader {
    /// None: `--loader raw`.
    pub spec: Option<LoaderSpec>,
    pub why: String,
}

impl ObjectLoader {
    pub fn describe(&self, rules: &Rules) -> String {
        self.spec.as_ref().map_or_else(|| "raw".into(), |s| s.describe(rules))
    }

    /// Whether the process loads through a token (raw: the kernel's checks through one).
    pub fn token(&self) -> bool {
        self.spec.as_ref().is_none_or(|s| s.token)
    }
}

#[derive(Debug, Error, Diagnostic)]
pub enum ChoiceError {
    #[error("unknown loader '{}'", Escaped(.0))]
    #[diagnostic(
        code(bpfcap::analyze::loader),
        help("--loader takes auto, raw, or one of: {1}, with an optional @X.Y or @MIN-MAX")
    )]
    UnknownLoader(String, String),

    #[error("bpfcap has no rules for {loader} '{}'", Escaped(.spec))]
    #[diagnostic(
        code(bpfcap::analyze::loader_version),
        help("the rules describe {loader} {known}{tokenless}; ask for a version among them, or one range of them")
    )]
    LoaderVersion { loader: String, spec: String, known: String, tokenless: String },

    #[error("unknown libbpf version '{0}'")]
    #[diagnostic(code(bpfcap::analyze::libbpf_version), help("use MAJOR.MINOR or a range MIN-MAX within {1}"))]
    LibbpfVersion(String, String),
}

/// Parses `--loader` (`auto`, `raw`, `NAME`, `NAME@X.Y`, `NAME@MIN-MAX`) and `--libbpf` (the libbpf
/// versions of `auto` and of `libbpf` without a version).
pub fn parse_loader(spec: &str, libbpf: &str, rules: &Rules) -> Result<LoaderChoice, ChoiceError> {
    let libbpf_versions = parse_libbpf_versions(libbpf, rules)?;
    let (name, versions) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    match (name, versions) {
        ("auto", None) => return Ok(LoaderChoice::Auto { libbpf: libbpf_versions }),
        ("raw", None) => return Ok(LoaderChoice::Raw),
        _ => {}
    }
    let Some(model) = rules.loader(name) else {
        let known: Vec<&str> = rules.loaders.iter().map(|l| l.name()).collect();
        return Err(ChoiceError::UnknownLoader(spec.to_string(), known.join(", ")));
    };
    Ok(LoaderChoice::Loader(match versions {
        Some(v) => versions_of(model, v)?,
        None if model.name() == "libbpf" => LoaderSpec { name: name.into(), versions: libbpf_versions, token: true },
        None => default_spec(model),
    }))
}

/// The versions `--libbpf` names: `X.Y` or `MIN-MAX` within the versions the rules describe.
pub fn parse_libbpf_versions(spec: &str, rules: &Rules) -> Result<Vec<Version>, ChoiceError> {
    let model = rules.libbpf();
    let known = format!("{}-{}", model.versions[0], model.newest());
    // a range must lie within the versions the rules describe: 1.0-1.7 would claim an
    // answer for versions never studied (and before 1.4 without a token at all)
    let (lo, hi) = spec.split_once('-').unwrap_or((spec, spec));
    let studied = |v: &str| Version::parse(v).is_some_and(|v| v >= model.versions[0] && v <= model.newest());
    match model.versions_in(spec) {
        Some(vs) if !vs.is_empty() && studied(lo) && studied(hi) => Ok(vs),
        _ => Err(ChoiceError::LibbpfVersion(spec.to_string(), known)),
    }
}

/// A loader at its default versions.
fn default_spec(model: &LoaderModel) -> LoaderSpec {
    let versions = model.default_versions();
    let token = !versions.first().is_some_and(|v| model.tokenless(*v));
    LoaderSpec { name: model.name().into(), versions, token }
}

/// `NAME@X.Y` or `NAME@MIN-MAX`: described versions that take a token, or one version that
/// takes none.
fn versions_of(model: &LoaderModel, spec: &str) -> Result<LoaderSpec, ChoiceError> {
    let err = || {
        let tokenless = match model.header.tokenless_before.as_deref() {
            _ if model.header.token == crate::rules::TokenDiscovery::None => " (none takes a token)".to_string(),
            Some(v) => format!(", and any version before {v} (those take no token)"),
            None => String::new(),
        };
        ChoiceError::LoaderVersion {
            loader: model.header.title.clone(),
            spec: spec.to_string(),
            known: format!("{}-{}", model.versions[0], model.newest()),
            tokenless,
        }
    };
    if !spec.contains('-')
        && let Some(v) = Version::parse(spec)
        && model.tokenless(v)
    {
        return Ok(LoaderSpec { name: model.name().into(), versions: vec![v], token: false });
    }
    let (lo, _) = spec.split_once('-').unwrap_or((spec, spec));
    match model.versions_in(spec) {
        // a range must not reach below the versions that take a token
        Some(vs) if !vs.is_empty() && Version::parse(lo).is_some_and(|lo| !model.tokenless(lo)) => {
            let token = !model.tokenless(vs[0]);
            Ok(LoaderSpec { name: model.name().into(), versions: vs, token })
        }
        _ => Err(err()),
    }
}

/// The loader an object is analysed for under `choice`, and why.
pub fn resolve(choice: &LoaderChoice, hint: Option<&LoaderHint>, rules: &Rules) -> ObjectLoader {
    match choice {
        LoaderChoice::Raw => ObjectLoader {
            spec: None,
            why: "chosen with --loader raw: only what the kernel checks for the object's own maps and programs".into(),
        },
        LoaderChoice::Loader(spec) => {
            ObjectLoader { spec: Some(spec.clone()), why: format!("chosen with --loader {}", spec.name) }
        }
        LoaderChoice::Auto { libbpf } => {
            let assumed = |why: String| ObjectLoader {
                spec: Some(LoaderSpec { name: "libbpf".into(), versions: libbpf.clone(), token: true }),
                why,
            };
            match hint.map(|h| (h, h.loader.as_deref().and_then(|l| rules.loader(l)))) {
                None => assumed(
                    "a BPF object on its own shows no loader, so libbpf is assumed; --loader chooses another".into(),
                ),
                Some((hint, None)) => {
                    assumed(format!("the file {}, so libbpf is assumed; --loader chooses another", hint.evidence))
                }
                Some((hint, Some(model))) => detected(hint, model, libbpf),
            }
        }
    }
}

/// The loader a file shows, at the version it shows.
fn detected(hint: &LoaderHint, model: &LoaderModel, libbpf: &[Version]) -> ObjectLoader {
    let name = model.name().to_string();
    let title = &model.header.title;
    let defaults = if name == "libbpf" { libbpf.to_vec() } else { model.default_versions() };
    let version = hint.version.as_deref().and_then(Version::parse);
    let spec = |versions: Vec<Version>, token: bool| Some(LoaderSpec { name: name.clone(), versions, token });
    let Some(v) = version else {
        let token = !defaults.first().is_some_and(|v| model.tokenless(*v));
        return ObjectLoader {
            spec: spec(defaults, token),
            why: format!("the file {}, and shows no version", hint.evidence),
        };
    };
    if hint.at_least {
        // what the binary may run with: the default versions it accepts, else the oldest
        // described version it accepts
        let mut vs: Vec<Version> = defaults.iter().copied().filter(|d| *d >= v && !model.tokenless(*d)).collect();
        if vs.is_empty() {
            vs = model.versions.iter().copied().filter(|d| *d >= v).take(1).collect();
        }
        if vs.is_empty() {
            vs = vec![model.newest()];
        }
        return ObjectLoader {
            spec: spec(vs, true),
            why: format!(
                "{title} {} or newer: the file {}",
                hint.version.as_deref().unwrap_or_default(),
                hint.evidence
            ),
        };
    }
    if model.tokenless(v) {
        return ObjectLoader {
            spec: spec(vec![v], false),
            why: format!("the file {}; {}", hint.evidence, model.header.tokenless_why),
        };
    }
    if model.versions.contains(&v) {
        return ObjectLoader { spec: spec(vec![v], true), why: format!("the file {}", hint.evidence) };
    }
    // a version the rules do not describe: the nearest they do, said so
    let near = if v > model.newest() {
        model.newest()
    } else {
        model.versions.iter().copied().find(|d| *d > v).unwrap_or_else(|| model.newest())
    };
    ObjectLoader {
        spec: spec(vec![near], true),
        why: format!(
            "{title} {v}, which the rules do not describe, read as {near}, the nearest they do: the file {}",
            hint.evidence
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;

    fn hint(loader: &str, version: Option<&str>, at_least: bool) -> LoaderHint {
        LoaderHint {
            loader: Some(loader.into()),
            version: version.map(String::from),
            at_least,
            evidence: "shows it".into(),
        }
    }

    fn auto(h: Option<&LoaderHint>) -> ObjectLoader {
        let libbpf = vec![Version(1, 5), Version(1, 6), Version(1, 7)];
        resolve(&LoaderChoice::Auto { libbpf }, h, rules())
    }

    #[test]
    fn auto_follows_what_the_file_shows() {
        let r = rules();
        // a bare object: libbpf at --libbpf, said so
        let bare = auto(None);
        assert_eq!(bare.describe(r), "libbpf 1.5-1.7");
        assert!(bare.why.contains("libbpf is assumed"));
        // cilium/ebpf at the version its build info lists; older ones take no token
        assert_eq!(auto(Some(&hint("cilium", Some("0.22"), false))).describe(r), "cilium/ebpf 0.22");
        let old = auto(Some(&hint("cilium", Some("0.21"), false)));
        assert_eq!((old.describe(r).as_str(), old.token()), ("cilium/ebpf 0.21 (no token)", false));
        // a shared libbpf needing LIBBPF_1.6.0: the --libbpf versions it runs with
        assert_eq!(auto(Some(&hint("libbpf", Some("1.6"), true))).describe(r), "libbpf 1.6-1.7");
        // one needing a node newer than --libbpf: the oldest described version it runs with
        assert_eq!(auto(Some(&hint("libbpf", Some("1.8"), true))).describe(r), "libbpf 1.8");
        // a static libbpf 1.4 (tokens, but not described): the nearest described, said so
        let near = auto(Some(&hint("libbpf", Some("1.4"), false)));
        assert_eq!(near.describe(r), "libbpf 1.5");
        assert!(near.why.contains("nearest"), "{}", near.why);
        // static libbpf 1.3: no token
        assert!(!auto(Some(&hint("libbpf", Some("1.3"), false))).token());
        // aya never takes a token
        assert!(!auto(Some(&hint("aya", None, false))).token());
        // a file that shows no loader
        let none = LoaderHint { loader: None, version: None, at_least: false, evidence: "shows none".into() };
        assert!(auto(Some(&none)).why.starts_with("the file shows none"));
    }

    #[test]
    fn loader_arguments_are_checked() {
        let r = rules();
        let spec = |s: &str| match parse_loader(s, "1.5-1.7", r) {
            Ok(LoaderChoice::Loader(spec)) => spec.describe(r),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(spec("libbpf"), "libbpf 1.5-1.7");
        assert_eq!(spec("libbpf@1.8"), "libbpf 1.8");
        assert_eq!(spec("libbpf@1.6-1.8"), "libbpf 1.6-1.8");
        assert_eq!(spec("cilium"), "cilium/ebpf 0.22");
        assert_eq!(spec("libbpf@1.2"), "libbpf 1.2 (no token)");
        assert_eq!(spec("aya"), "aya 0.13-0.14 (no token)");
        assert!(spec("libbpf@1.3-1.7").starts_with("error"), "a range may not reach below the token versions");
        assert!(spec("libbpf@2.0").starts_with("error"));
        assert!(spec("bcc").starts_with("error: unknown loader"));
        assert!(matches!(parse_loader("auto", "1.7", r), Ok(LoaderChoice::Auto { .. })));
        assert!(matches!(parse_loader("raw", "1.7", r), Ok(LoaderChoice::Raw)));
        assert!(parse_loader("auto", "0.9", r).is_err());
        // --libbpf: a version or a range within the studied versions, both ends
        assert!(parse_loader("auto", "1.1", r).is_err());
        assert!(parse_loader("auto", "1.0-1.7", r).is_err(), "a range reaching below 1.5");
        assert!(parse_loader("auto", "1.6-2.0", r).is_err(), "a range reaching past the newest");
        assert!(parse_loader("auto", "1.6-1.8", r).is_ok());
    }
}
