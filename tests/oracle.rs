//! libbpf as the oracle: every object in testdata/ is opened by libbpf (through libbpf-rs, the
//! libbpf 1.7 that libbpf-sys vendors) and bpfcap's view of its programs and maps must agree
//! with libbpf's: names, sections, program types, expected attach types, autoload, map names
//! and map types.

use bpfcap::analysis::programs::analyse_programs;
use bpfcap::model::MapOrigin;
use bpfcap::rules::{Version, rules};
use bpfcap::vocab::ListKind;
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
    let mut ours: Vec<Prog> = analyse_programs(obj, r.libbpf(), Version(1, 7), r)
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

/// Independently of bpfcap: the offsets in `bytes` where a BPF object starts that libbpf
/// opens (an ELF header for a 64-bit little-endian relocatable EM_BPF file, and libbpf's
/// bpf_object__open_mem succeeds on the bytes from there).
fn libbpf_openable_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = bytes[from..].windows(4).position(|w| w == b"\x7fELF") {
        let off = from + i;
        from = off + 1;
        let h = &bytes[off..];
        let bpf_rel = h.len() >= 20 && h[4] == 2 && h[5] == 1 && h[16..18] == [1, 0] && h[18..20] == [247, 0];
        if bpf_rel && ObjectBuilder::default().open_memory(h).is_ok() {
            out.push(off);
        }
    }
    out
}

/// Objects built by others (see [`common::files_built_by_others`]): in every file of those
/// packages, bpfcap finds exactly the BPF objects that libbpf can open (at the same offsets),
/// sees each as libbpf does, and analyses each embedded one as it analyses the same bytes
/// written to a file of their own.
#[test]
fn objects_built_by_others_are_found_and_agree_with_libbpf() {
    let root = std::env::var_os("BPFCAP_SYSTEMD_ROOT").map(std::path::PathBuf::from);
    let ok = match &root {
        Some(r) if r.join("var/lib/dpkg/info").is_dir() => Ok(()),
        _ => Err("BPFCAP_SYSTEMD_ROOT (the Debian sid chroot of ./dev test) is not set".to_string()),
    };
    if !common::require(ok, "objects built by others") {
        return;
    }
    libbpf_rs::set_print(None);
    let root = root.unwrap();
    let files = common::files_built_by_others(&root);
    let tmp = tempfile::tempdir().unwrap();
    let opts = bpfcap::analysis::Options {
        programs: vec![],
        loader: bpfcap::analysis::LoaderChoice::libbpf(vec![Version(1, 5), Version(1, 6), Version(1, 7)]),
        with_optional: false,
    };
    let (mut found, mut embedded, mut with_objects) = (0, 0, Vec::new());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let expected = libbpf_openable_offsets(&bytes);
        let path = file.display().to_string();
        // what bpfcap finds, with the offset of each object in the file
        let ours: Vec<(usize, String, bpfcap::model::Object)> = if bpfcap::elf::uapi::is_bpf_object(&bytes) {
            let name = bpfcap::elf::object_name(&path);
            match bpfcap::elf::read_object(&bytes, &name) {
                Ok(o) => vec![(0, path.clone(), o)],
                Err(_) => Vec::new(),
            }
        } else {
            bpfcap::input::embedded::extract(&path, &bytes)
                .objects
                .into_iter()
                .map(|o| (o.offset, o.display, o.object))
                .collect()
        };
        let offsets: Vec<usize> = ours.iter().map(|(off, _, _)| *off).collect();
        assert_eq!(
            offsets, expected,
            "{path}: bpfcap finds objects at {offsets:?}, libbpf opens objects at {expected:?}"
        );
        if ours.is_empty() {
            continue;
        }
        with_objects.push(file.clone());
        // the command finds the same objects in the file
        let (inputs, warnings) = bpfcap::input::load_inputs(std::slice::from_ref(file)).unwrap();
        assert!(warnings.is_empty(), "{path}: {warnings:?}");
        assert_eq!(
            inputs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
            ours.iter().map(|(_, d, _)| d.clone()).collect::<Vec<_>>()
        );
        for ((off, display, obj), (_, input)) in ours.into_iter().zip(&inputs) {
            found += 1;
            let source = common::source_of(input);
            let obj_bytes = common::bytes_of(source);
            let name = source.name.clone();
            assert_eq!(
                &bytes[off..off + obj_bytes.len()],
                &obj_bytes[..],
                "{display}: the bytes the object's reference names"
            );
            let open = ObjectBuilder::default().name(&name).unwrap().open_memory(&obj_bytes).unwrap();
            agree(&display, &obj, &open);
            if display == path {
                continue; // a file already
            }
            embedded += 1;
            // analysed as the same bytes in a file of their own
            let as_file = tmp.path().join(format!("{name}.bpf.o"));
            std::fs::write(&as_file, &obj_bytes).unwrap();
            let from_file =
                bpfcap::elf::read_object(&obj_bytes, &bpfcap::elf::object_name(&as_file.display().to_string()))
                    .unwrap();
            let a = bpfcap::analysis::analyse(vec![(display.clone(), obj)], &opts, rules()).unwrap();
            let b = bpfcap::analysis::analyse(vec![(display.clone(), from_file)], &opts, rules()).unwrap();
            assert_eq!(
                bpfcap::report::analysis_json(&a, rules()),
                bpfcap::report::analysis_json(&b, rules()),
                "{display}: analysed differently from the same bytes in a file"
            );
        }
    }
    println!("{} files, {} with BPF objects: {found} objects ({embedded} embedded)", files.len(), with_objects.len());
    // Names: a libbpf-tools executable `tool-libbpf` embeds the skeleton `tool_bpf`. A name
    // bpfcap gives must be that one; a name it cannot prove is left as `#N`.
    let (mut named, mut tools) = (0, 0);
    for file in with_objects.iter().filter(|f| f.to_string_lossy().ends_with("-libbpf")) {
        let tool = file.file_name().unwrap().to_string_lossy().trim_end_matches("-libbpf").replace('-', "_");
        let (inputs, _) = bpfcap::input::load_inputs(std::slice::from_ref(file)).unwrap();
        for (display, _) in inputs {
            tools += 1;
            let suffix = display.rsplit_once('#').unwrap().1;
            if !suffix.chars().all(|c| c.is_ascii_digit()) {
                assert_eq!(suffix, format!("{tool}_bpf"), "{display}: named after another skeleton");
                named += 1;
            }
        }
    }
    println!("libbpf-tools: {named} of {tools} objects named by their skeleton");
    assert!(tools >= 50 && named * 10 >= tools * 9, "only {named} of {tools} libbpf-tools skeletons named");
    // systemd's 5 skeletons, one per libbpf-tools executable, xdp-tools' objects and
    // executables: a tree this size cannot come out empty by accident
    assert!(found >= 100 && embedded >= 60 && with_objects.len() >= 50, "too few objects built by others: {found}");
}
