//! What Incus and LXD share: `key: value` YAML lines or `CLI config set INSTANCE key=value`
//! lines, with each manager's own keys, separator, command and words for true
//! (rules/dialects/incus.toml, lxd.toml). Each manager is a dialect of its own (incus.rs,
//! lxd.rs): a [`Manager`] with its names and its rules.

use super::{Certainty, Dialect};
use crate::config::{Config, Setting, Span};
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, comment};
use crate::finding::{Code, Finding, Severity, is_true, push};
use crate::rules::{ManagerRules, Rules};
use crate::vocab::{ListKind, MAX_OPTION_VALUE};

/// A container manager whose configuration holds a BPF delegation under keys of its own.
pub struct Manager {
    pub name: &'static str,
    pub about: &'static str,
    pub reads_about: &'static str,
    /// Its rules (rules/dialects/NAME.toml).
    pub rules: fn(&Rules) -> &ManagerRules,
}

impl Dialect for Manager {
    fn name(&self) -> &'static str {
        self.name
    }

    fn about(&self) -> &'static str {
        self.about
    }

    fn reads_about(&self) -> &'static str {
        self.reads_about
    }

    fn detect(&self, body: &str, rules: &Rules) -> Option<Certainty> {
        detect((self.rules)(rules), body)
    }

    fn parse(&self, cfg: &mut Config, rules: &Rules) {
        parse((self.rules)(rules), cfg, rules)
    }

    fn emit(&self, d: &Delegation, header: &str, _why: Why, rules: &Rules) -> Emitted {
        emit((self.rules)(rules), d, header, rules)
    }

    fn check(&self, cfg: &Config, _needed: &Delegation, rules: &Rules, out: &mut Vec<Finding>) {
        check((self.rules)(rules), cfg, out)
    }

    fn setting(&self, k: ListKind, rules: &Rules) -> String {
        (self.rules)(rules).key(k).cloned().unwrap_or_default()
    }
}

/// How sure it is that `body` is this manager's configuration: its command line
/// (`incus config`, `lxc config`) is sure; its keys in YAML are its own.
fn detect(m: &ManagerRules, body: &str) -> Option<Certainty> {
    if body.contains(&format!("{} config", m.syntax.cli)) {
        return Some(Certainty::Sure);
    }
    let keys = ListKind::ALL.iter().filter_map(|k| m.key(*k)).chain(std::iter::once(&m.keys.enable_key));
    keys.filter(|k| !k.is_empty()).any(|k| body.contains(k.as_str())).then_some(Certainty::Keys)
}

/// Incus / LXD: `key: value` YAML lines or `incus config set INSTANCE key=value` lines. The
/// keys and separators are in rules/dialects/{incus,lxd}.toml.
fn parse(m: &ManagerRules, cfg: &mut Config, rules: &Rules) {
    let text = cfg.text.clone();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    let mut unknown = 0;
    let known: Vec<String> = ListKind::ALL.iter().filter_map(|k| m.key(*k).cloned()).chain(m.other_keys()).collect();
    for (line_start, l) in super::lines_with_offsets(&text) {
        if l.trim_start().starts_with('#') {
            continue;
        }
        // a key of the manager's BPF family that it does not know (a typo): the manager refuses it
        if let Some((pos, key)) = manager_key(l)
            && !known.iter().any(|k| k == key)
            && m.is_near_key(key)
        {
            cfg.settings.push(Setting {
                key: key.to_string(),
                value: String::new(),
                span: Span { offset: line_start + pos, len: key.len() },
                section: None,
                ignored: true,
            });
        }
        for k in ListKind::ALL {
            let Some(key) = m.key(k) else { continue };
            let Some(pos) = l.find(key.as_str()) else { continue };
            let after = &l[pos + key.len()..];
            let (sep_len, rest) = if let Some(r) = after.strip_prefix(':') {
                (1, r)
            } else if let Some(r) = after.strip_prefix('=') {
                (1, r)
            } else {
                continue;
            };
            let vstart_rel = pos + key.len() + sep_len + (rest.len() - rest.trim_start().len());
            let value = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            let qlead = rest.trim().len() - rest.trim().trim_start_matches(['"', '\'']).len();
            let vstart = line_start + vstart_rel + qlead;
            first = Some(first.map_or(line_start + pos, |f| f.min(line_start + pos)));
            last_end = last_end.max(line_start + l.len());
            cfg.list_spans.insert(k, Span { offset: line_start + pos, len: l.len() - pos });
            // The manager splits on its separator and hands the items to the kernel joined
            // with ':' (Incus), or passes the value through (LXD, whose separator is ':'): the
            // kernel splits on ':' either way.
            let mut seps: Vec<char> = m.syntax.separator.chars().collect();
            if !seps.contains(&':') {
                seps.push(':');
            }
            super::add_items(cfg, k, value, vstart, &seps, &mut unknown, rules);
        }
        for extra in &m.other_keys() {
            if let Some(pos) = l.find(extra.as_str()) {
                let after = &l[pos + extra.len()..];
                if let Some(v) = after.strip_prefix(':').or_else(|| after.strip_prefix('=')) {
                    cfg.settings.push(Setting {
                        key: extra.clone(),
                        value: v.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
                        span: Span { offset: line_start + pos, len: l.len() - pos },
                        section: None,
                        ignored: false,
                    });
                }
            }
        }
    }
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    }
}

/// The key a manager configuration line sets, with its byte offset in the line: `key: value`
/// (YAML, also as a list item) or `incus|lxc config set INSTANCE key=value` (or `key value`).
fn manager_key(l: &str) -> Option<(usize, &str)> {
    let offset_of = |part: &str| part.as_ptr() as usize - l.as_ptr() as usize;
    let words: Vec<&str> = l.split_whitespace().collect();
    if let Some(i) = words.windows(2).position(|w| w == ["config", "set"]) {
        let word = *words.get(i + 3)?;
        let key = word.split('=').next().unwrap_or(word);
        return Some((offset_of(word), key));
    }
    let t = l.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    let (key, _) = t.split_once(':')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((offset_of(key), key))
}

/// The delegation as this manager's `config set` lines and the equivalent YAML.
fn emit(m: &ManagerRules, d: &Delegation, header: &str, rules: &Rules) -> Emitted {
    let cli = &m.syntax.cli;
    let mut notes = Vec::new();
    let mut pairs: Vec<(String, String)> = Vec::new();
    // a master switch, when the manager has one
    if !m.keys.enable_key.is_empty() {
        pairs.push((m.keys.enable_key.clone(), "true".into()));
    }
    for k in ListKind::ALL {
        let Some(key) = m.key(k) else { continue };
        if d.list(k).is_empty() {
            continue;
        }
        // The manager hands the items to the kernel as one fsconfig value, joined with ':'.
        let limit = if m.syntax.value_length_limit > 0 { m.syntax.value_length_limit } else { MAX_OPTION_VALUE };
        let value = d.option_value_in(k, rules, &m.syntax.separator, limit).unwrap_or_else(|(mask, len)| {
            notes.push(crate::emit::masked_note(key, len, limit));
            mask
        });
        pairs.push((key.clone(), value));
    }
    let mut out = format!(
        "{}\n# Unprivileged containers only: a bpffs in the host's user namespace cannot make a token.\n",
        comment(header)
    );
    out.push_str("# In a restricted project these keys need restricted.containers.lowlevel=allow.\n");
    for (k, v) in &pairs {
        out.push_str(&format!("{cli} config set INSTANCE {k}={v}\n"));
    }
    out.push_str("\n# or, in the instance's YAML:\nconfig:\n");
    for (k, v) in &pairs {
        out.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    out.push_str(&format!(
        "# The workload needs these capabilities in the container's user namespace (container root has them): {}\n",
        d.capabilities.join(" ")
    ));
    Emitted { text: out, notes }
}

/// Incus/LXD: known keys, the delegation switched on (LXD), the container unprivileged.
fn check(m: &ManagerRules, cfg: &Config, out: &mut Vec<Finding>) {
    let known: Vec<String> = ListKind::ALL.iter().filter_map(|k| m.key(*k).cloned()).chain(m.other_keys()).collect();
    for s in cfg.settings.iter().filter(|s| s.ignored) {
        let closest = crate::spelling::closest(&s.key, known.iter().map(String::as_str));
        push(
            cfg,
            out,
            Code::UnknownKey,
            Severity::Error,
            format!("{} is not a key the manager knows: it refuses it, and the grant is lost", s.key),
            closest.map(|k| format!("did you mean {k}?")),
            Some(s.span),
        );
        if let Some(f) = out.last_mut() {
            f.list = ListKind::ALL.into_iter().find(|k| closest.is_some_and(|c| m.key(*k).is_some_and(|key| key == c)));
        }
    }
    let truthy = |v: &str| is_true(v, &m.syntax.true_values);
    if !m.keys.enable_key.is_empty() && !cfg.setting(&m.keys.enable_key).is_some_and(|s| truthy(&s.value)) {
        push(
            cfg,
            out,
            Code::ManagerDisabled,
            Severity::Error,
            format!("{} is not set to true: the delegate keys do nothing without it", m.keys.enable_key),
            Some(format!("set {}=true", m.keys.enable_key)),
            cfg.setting(&m.keys.enable_key).map(|s| s.span).or(Some(cfg.anchor)),
        );
    }
    if let Some(p) = cfg.setting(&m.keys.privileged).filter(|s| truthy(&s.value)) {
        push(
            cfg,
            out,
            Code::ManagerPrivileged,
            Severity::Error,
            "a privileged container shares the host's user namespace, where the kernel refuses to create BPF tokens"
                .into(),
            Some("use an unprivileged container".into()),
            Some(p.span),
        );
    }
}
