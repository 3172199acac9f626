//! The configuration dialects: one type per dialect, each of which reads its configuration
//! with spans, writes a delegation in it, and finds what only it can get wrong. Their
//! spelling, keys, separators and words come from their rules files (rules/dialects/); the
//! kernel's bpffs option names from [`ListKind`].
//!
//! A new dialect is a rules file (when it has words of its own) and a module here with a type
//! that implements [`Dialect`], listed in [`ALL`].

mod bpffs;
mod fstab;
mod incus;
mod json;
mod lxd;
mod manager;
mod mount;
mod mount_options;
mod mount_unit;
mod systemd;

use std::collections::BTreeMap;

use crate::config::{Config, ConfigError, Grant, SourceFile, Span};
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why};
use crate::finding::Finding;
use crate::names;
use crate::rules::Rules;
use crate::vocab::ListKind;

pub use systemd::is_unit_file;

/// How sure a dialect is that a text is written in it, surest first: the surest dialect reads
/// it (of equals, the first in [`ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Certainty {
    /// The text holds what only this dialect writes: its command, its own setting names.
    Sure,
    /// It holds keys only this dialect uses.
    Keys,
    /// Its lines are laid out as this dialect lays them out.
    Layout,
    /// It holds bpffs options, which several dialects carry.
    Options,
}

/// One configuration dialect.
pub trait Dialect: Sync {
    /// The name `--target` and `--dialect` take and JSON documents write.
    fn name(&self) -> &'static str;

    /// What it writes, for `--help` of `--target`.
    fn about(&self) -> &'static str;

    /// What it reads, for `--help` of `--dialect`.
    fn reads_about(&self) -> &'static str {
        self.about()
    }

    /// Whether `check` and `verify --config` read it (`--dialect NAME`). A dialect that is
    /// only written is read as the dialect that reads its kind of text.
    fn reads(&self) -> bool {
        true
    }

    /// How sure it is that `body` (a configuration without its comment lines) is written in
    /// it; `None`: it is not (a dialect that is only written is never detected).
    fn detect(&self, _body: &str, _rules: &Rules) -> Option<Certainty> {
        None
    }

    /// Reads the delegation, the settings and the lines the manager would ignore from
    /// `cfg.text` into `cfg` (a dialect that is only written reads nothing).
    fn parse(&self, _cfg: &mut Config, _rules: &Rules) {}

    /// The delegation written in this dialect, with `header` as its first comment and each
    /// item's reason from `why` where the dialect has room for it.
    fn emit(&self, d: &Delegation, header: &str, why: Why, rules: &Rules) -> Emitted;

    /// Whether a configuration without any delegation is still checked (a systemd unit: its
    /// missing PrivateBPF= is the finding); otherwise it is an error.
    fn checks_without_lists(&self) -> bool {
        false
    }

    /// Findings about one grant's name that only this dialect has. `false`: the name is the
    /// kernel's, and the findings every dialect shares apply.
    fn check_grant(&self, _cfg: &Config, _g: &Grant, _rules: &Rules, _out: &mut Vec<Finding>) -> bool {
        false
    }

    /// Findings about the rest of the configuration that only this dialect has.
    fn check(&self, _cfg: &Config, _needed: &Delegation, _rules: &Rules, _out: &mut Vec<Finding>) {}

    /// An item as the dialect spells it (the kernel's name, unless it has names of its own).
    fn spelling(&self, _k: ListKind, item: &str, _rules: &Rules) -> String {
        item.to_string()
    }

    /// What separates items in a list of this dialect, as a finding's help writes them.
    fn separator(&self, _rules: &Rules) -> String {
        " ".into()
    }

    /// The setting that holds a list, as a finding's help names it.
    fn setting(&self, k: ListKind, _rules: &Rules) -> String {
        format!("{}=", k.mount_option())
    }
}

/// Every dialect, in the order `--help` lists them.
pub static ALL: &[&dyn Dialect] = &[
    &systemd::Systemd,
    &mount_options::MountOptions,
    &mount::Mount,
    &fstab::Fstab,
    &mount_unit::MountUnit,
    &incus::INCUS,
    &lxd::LXD,
    &json::Json,
];

/// The dialect named `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Dialect> {
    ALL.iter().copied().find(|d| d.name() == name)
}

/// A dialect as a command-line value (`--target`, `--dialect`).
#[derive(Clone, Copy)]
pub struct Named(pub &'static dyn Dialect);

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl PartialEq for Named {
    fn eq(&self, other: &Named) -> bool {
        self.0.name() == other.0.name()
    }
}

/// `--target`: every dialect.
pub fn target_parser() -> impl clap::builder::TypedValueParser<Value = Named> {
    parser(ALL.iter().map(|d| (d.name(), d.about())))
}

/// `--dialect`: the dialects bpfcap reads.
pub fn reader_parser() -> impl clap::builder::TypedValueParser<Value = Named> {
    parser(ALL.iter().filter(|d| d.reads()).map(|d| (d.name(), d.reads_about())))
}

fn parser(
    names: impl Iterator<Item = (&'static str, &'static str)>,
) -> impl clap::builder::TypedValueParser<Value = Named> {
    let values = names.map(|(name, about)| clap::builder::PossibleValue::new(name).help(about));
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(values.collect::<Vec<_>>())
        .map(|name: String| Named(by_name(&name).expect("a possible value names a dialect")))
}

/// The dialect a configuration is written in, from its text (comment lines do not count).
pub fn detect(text: &str, rules: &Rules) -> Option<&'static dyn Dialect> {
    let body: String = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with('#') && !t.starts_with(';')
        })
        .collect::<Vec<_>>()
        .join("\n");
    ALL.iter()
        .filter(|d| d.reads())
        .filter_map(|d| Some((d.detect(&body, rules)?, *d)))
        .min_by_key(|(certainty, _)| *certainty)
        .map(|(_, d)| d)
}

/// Reads and parses a configuration file ('-' = standard input).
pub fn load(path: &str, dialect: Option<&'static dyn Dialect>, rules: &Rules) -> Result<Config, ConfigError> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| ConfigError::Io { path: path.into(), source: e })?
    } else {
        std::fs::read_to_string(path).map_err(|e| ConfigError::Io { path: path.into(), source: e })?
    };
    let name = if path == "-" { "<stdin>".to_string() } else { path.to_string() };
    parse(&text, &name, dialect, rules)
}

/// Reads several files as one configuration: a systemd unit and its drop-ins, put in the
/// order systemd reads them whatever the order given (the unit first, then the drop-ins by file
/// name, whichever directory holds them: unit_file_find_dropin_paths sorts them by name).
pub fn load_all(paths: &[String], dialect: Option<&'static dyn Dialect>, rules: &Rules) -> Result<Config, ConfigError> {
    if let [path] = paths {
        return load(path, dialect, rules);
    }
    let systemd: &'static dyn Dialect = &systemd::Systemd;
    let mut parts = Vec::new();
    for path in paths {
        let part = load(path, dialect.or(Some(systemd)), rules)?;
        // a file that is clearly another dialect is not a drop-in
        let detected = if path == "-" { None } else { detect(&part.text, rules) };
        let dialect = dialect.or(detected).unwrap_or(systemd);
        if dialect.name() != systemd.name() {
            return Err(ConfigError::SeveralNotSystemd { name: part.name, dialect: dialect.name().into() });
        }
        parts.push(part);
    }
    let base = |name: &str| name.rsplit('/').next().unwrap_or(name).to_string();
    let (units, mut drop_ins): (Vec<Config>, Vec<Config>) =
        parts.into_iter().partition(|p| is_unit_file(&p.name, rules));
    if units.len() > 1 {
        return Err(ConfigError::DropInOrder {
            name: units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
            problem: "more than one unit file: a unit has one file and drop-ins (*.conf)".into(),
            help: "check each unit on its own, with its own drop-ins".into(),
        });
    }
    drop_ins.sort_by_key(|d| base(&d.name));
    if let Some(w) = drop_ins.windows(2).find(|w| base(&w[0].name) == base(&w[1].name)) {
        return Err(ConfigError::DropInOrder {
            name: format!("{}, {}", w[0].name, w[1].name),
            problem: format!("two drop-ins named {}: systemd reads only one of them", base(&w[0].name)),
            help: "pass the one systemd reads: /etc/systemd/system wins over /run, which wins over /usr/lib".into(),
        });
    }
    Ok(Config::joined(units.into_iter().chain(drop_ins).collect()))
}

/// Parses `text` in `dialect` (default: the one [`detect`] finds).
pub fn parse(
    text: &str,
    name: &str,
    dialect: Option<&'static dyn Dialect>,
    rules: &Rules,
) -> Result<Config, ConfigError> {
    let Some(dialect) = dialect.or_else(|| detect(text, rules)) else {
        return Err(ConfigError::UnknownDialect { name: name.into() });
    };
    let mut cfg = Config {
        dialect: dialect.name(),
        name: name.to_string(),
        files: vec![SourceFile { name: name.to_string(), start: 0, first_line: 0 }],
        text: text.to_string(),
        grants: Vec::new(),
        settings: Vec::new(),
        malformed: Vec::new(),
        list_spans: BTreeMap::new(),
        anchor: Span { offset: 0, len: 0 },
        line_starts: Config::line_starts_of(text),
    };
    dialect.parse(&mut cfg, rules);
    // (a file whose only delegation keys are misspelt is checked: the typos are the findings;
    // a systemd unit without a delegation is checked: its missing PrivateBPF= is the finding)
    let typos = cfg.settings.iter().any(|s| s.ignored);
    if cfg.grants.is_empty() && cfg.list_spans.is_empty() && !typos && !dialect.checks_without_lists() {
        return Err(ConfigError::NoDelegation {
            name: name.into(),
            dialect: dialect.name().into(),
            help: "bpfcap looks for delegate_cmds=, delegate_maps=, delegate_progs= and delegate_attachs= (or the dialect's keys for them)".into(),
        });
    }
    Ok(cfg)
}

/// The dialect a configuration was read in.
pub fn of(cfg: &Config) -> &'static dyn Dialect {
    by_name(cfg.dialect).expect("a configuration is read in one of the dialects")
}

/// The lines of `text` without their line ends, each with the byte offset where it starts.
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0usize, |offset, line| {
        let start = *offset;
        *offset += line.len();
        Some((start, line.trim_end_matches(['\n', '\r'])))
    })
}

/// Unknown names of one configuration that get the closest known names as suggestions; the
/// rest get the general help (a search compares with every name).
const MAX_SUGGESTED_NAMES: usize = 64;

/// Splits `value` (which starts at byte `offset` of the text) on any of `seps`, adding each
/// non-empty piece as a grant of `list`, in the kernel's names. `unknown` counts the unknown
/// names so far.
fn add_items(
    cfg: &mut Config,
    list: ListKind,
    value: &str,
    offset: usize,
    seps: &[char],
    unknown: &mut usize,
    rules: &Rules,
) {
    let mut start = 0;
    for (i, c) in value.char_indices().chain(std::iter::once((value.len(), seps[0]))) {
        if i == value.len() || seps.contains(&c) {
            let piece = &value[start..i];
            let trimmed = piece.trim();
            if !trimmed.is_empty() {
                let lead = piece.len() - piece.trim_start().len();
                let item = if *unknown < MAX_SUGGESTED_NAMES {
                    names::parse_item(list, trimmed, rules)
                } else {
                    names::parse_item_quick(list, trimmed, rules)
                };
                *unknown += usize::from(item.is_err());
                cfg.grants.push(Grant {
                    list,
                    raw: trimmed.to_string(),
                    item,
                    span: Span { offset: offset + start + lead, len: trimmed.len() },
                });
            }
            start = i + c.len_utf8();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;

    #[test]
    fn names_are_unique_and_every_reader_detects() {
        let mut names: Vec<&str> = ALL.iter().map(|d| d.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        let r = rules();
        let samples = [
            ("[Service]\nPrivateBPF=yes\nBPFDelegateCommands=map_create\n", "systemd"),
            ("BPFDelegateComands=BPFMapCreate\n", "systemd"),
            ("delegate_cmds=map_create", "mount"),
            ("mount -t bpf -o delegate_cmds=map_create bpffs /sys/fs/bpf", "mount"),
            ("[Mount]\nWhat=bpffs\nType=bpf\nOptions=delegate_cmds=map_create\n", "mount"),
            ("bpffs /sys/fs/bpf bpf delegate_cmds=map_create 0 0", "fstab"),
            ("incus config set c security.bpffs.delegate_cmds=map_create", "incus"),
            ("lxc config set c security.delegate_bpf.cmd_types=map_create", "lxd"),
        ];
        for (text, want) in samples {
            assert_eq!(detect(text, r).map(|d| d.name()), Some(want), "{text}");
        }
    }
}
