//! The layers of docs/design.md are the layers of src/: a module imports only from layers
//! below its own, and every module has a layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module → layer, from the table under "## Layers" in docs/design.md.
fn layers() -> BTreeMap<String, usize> {
    let design = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/design.md")).unwrap();
    let table = design.split("## Layers").nth(1).expect("docs/design.md has a section ## Layers");
    let mut out = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Ok(layer) = cells[1].parse::<usize>() else { continue };
        for m in cells[2].split(',').map(str::trim) {
            assert!(out.insert(m.to_string(), layer).is_none(), "{m} is in two layers");
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a file names as `crate::NAME` or in `use crate::{A, B}`, outside
/// comments.
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                out.extend(group.split(',').map(|m| m.trim().split("::").next().unwrap().to_string()));
            } else {
                out.push(rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let layers = layers();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    for m in &modules {
        assert!(layers.contains_key(*m), "docs/design.md places no layer for the module {m}");
    }
    assert!(layers.len() >= 10 && modules.len() == layers.len(), "the table and lib.rs list the same modules");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let module = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let Some(&own) = layers.get(&module) else { continue };
        for used in imports(&std::fs::read_to_string(&f).unwrap()) {
            if used == module {
                continue;
            }
            match layers.get(&used) {
                Some(&l) if l < own => {}
                Some(&l) => wrong.push(format!("{}: {module} (layer {own}) imports {used} (layer {l})", rel.display())),
                None => wrong.push(format!("{}: imports crate::{used}, which has no layer", rel.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "imports that go up or sideways:\n{}", wrong.join("\n"));
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let text = "use crate::rules::Rules;\n// crate::cli in a comment\nuse crate::{input, report::x};\nlet a = crate::vocab::SCHEMA;";
    assert_eq!(imports(text), ["rules", "input", "report", "vocab"]);
}
