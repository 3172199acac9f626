//! libbpf as the oracle: every object in testdata/ is opened by libbpf (through libbpf-rs, the
//! libbpf 1.7 that libbpf-sys vendors) and bpfcap's view of its programs and maps must agree
//! with libbpf's: names, sections, program types, expected attach types, autoload, map names
//! and map types.

use bpfcap::analysis::programs::analyse_programs;
use bpfcap::model::MapOrigin;
use bpfcap::rules::{ListKind, Version, rules};
use libbpf_rs::{AsRawLibbpf, ObjectBuilder};

mod common;
use common::sample_objects as testdata;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Prog {
    name: String,
    section: String,
    prog_type: u32,
    attach: u32,
    autoload: bool,
}

/// bpfcap's programs (name, section, type, expected attach type, autoload) and maps (name,
/// type) of `obj` equal libbpf's view of the same object, opened by libbpf as `open`.
fn agree(what: &str, obj: &bpfcap::model::Object, open: &libbpf_rs::OpenObject) {
    let r = rules();
    let mut theirs: Vec<Prog> = open
        .progs()
        .map(|p| {
            let raw = p.as_libbpf_object().as_ptr();
            Prog {
                name: p.name().to_string_lossy().into_owned(),
                section: p.section().to_string_lossy().into_owned(),
                prog_type: unsafe { libbpf_sys::bpf_program__type(raw) },
                attach: unsafe { libbpf_sys::bpf_program__expected_attach_type(raw) },
                autoload: unsafe { libbpf_sys::bpf_program__autoload(raw) },
            }
        })
        .collect();
    let mut ours: Vec<Prog> = analyse_programs(obj, r, Some(Version(1, 7)))
        .iter()
        .map(|p| Prog {
            name: p.name.clone(),
            // libbpf reports the section without the '?' autoload marker
            section: p.section.trim_start_matches('?').to_string(),
            prog_type: p.prog_type.as_deref().and_then(|t| r.enums.value_of(ListKind::Programs, t)).unwrap_or(0),
            attach: p
                .expected_attach_type
                .as_deref()
                .and_then(|a| r.enums.value_of(ListKind::Attachments, a))
                .unwrap_or(0),
            autoload: p.autoload,
        })
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs, "{what}: programs differ from libbpf's view");
    let mut their_maps: Vec<(String, u32)> = open
        .maps()
        .map(|m| {
            (m.name().to_string_lossy().into_owned(), unsafe {
                libbpf_sys::bpf_map__type(m.as_libbpf_object().as_ptr())
            })
        })
        .collect();
    let mut our_maps: Vec<(String, u32)> = obj
        .maps
        .iter()
        .filter(|m| m.origin != MapOrigin::InnerTemplate)
        .map(|m| (m.name.clone(), m.map_type))
        .collect();
    their_maps.sort();
    our_maps.sort();
    assert_eq!(our_maps, their_maps, "{what}: maps differ from libbpf's view");
}

#[test]
fn programs_and_maps_agree_with_libbpf() {
    let mut compared = 0;
    for path in testdata() {
        let bytes = std::fs::read(&path).unwrap();
        let name = bpfcap::elf::object_name(&path.display().to_string());
        let obj = bpfcap::elf::read_object(&bytes, &name).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let opened = ObjectBuilder::default().open_file(&path);
        let open = match opened {
            Ok(o) => o,
            Err(e) => {
                // libbpf 1.x refuses legacy `maps` sections; bpfcap must have said so.
                assert!(
                    obj.maps.iter().any(|m| matches!(m.origin, MapOrigin::LegacyBpfMapDef | MapOrigin::LegacyIproute2)),
                    "{}: libbpf cannot open it ({e}) but bpfcap found no reason",
                    path.display()
                );
                assert!(obj.warnings.iter().any(|w| w.contains("libbpf 1.0 and newer refuse")), "{}", path.display());
                continue;
            }
        };
        assert_eq!(open.name().map(|n| n.to_string_lossy().into_owned()), Some(obj.name.clone()), "object name");

        agree(&path.display().to_string(), &obj, &open);
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} objects could be compared with libbpf");
}

/// Objects built by others: the BPF programs systemd embeds in libsystemd-core (from the
/// Debian sid chroot that `./dev test` provides as BPFCAP_SYSTEMD_ROOT). Found inside the
/// shared library, each must agree with libbpf's view of the same bytes.
#[test]
fn systemds_embedded_objects_agree_with_libbpf() {
    let root = std::env::var_os("BPFCAP_SYSTEMD_ROOT").map(std::path::PathBuf::from);
    let dir = root.as_ref().map(|r| r.join("usr/lib/x86_64-linux-gnu/systemd"));
    let ok = match &dir {
        Some(d) if d.is_dir() => Ok(()),
        _ => Err("BPFCAP_SYSTEMD_ROOT (a Debian sid chroot with systemd) is not set".to_string()),
    };
    if !common::require(ok, "systemd objects oracle") {
        return;
    }
    let (inputs, warnings) = bpfcap::input::load_inputs_with_warnings(&[dir.unwrap()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(inputs.len() >= 4, "expected systemd's BPF skeletons, found {}", inputs.len());
    for (display, obj) in inputs {
        let (bytes, name) = bpfcap::input::object_bytes(&display).unwrap();
        let open = ObjectBuilder::default().name(&name).unwrap().open_memory(&bytes).unwrap();
        agree(&display, &obj, &open);
    }
}
