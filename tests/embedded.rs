//! BPF objects embedded in executables, shared libraries and raw blobs.
//!
//! testdata/embedded/ is built by bpf-samples/embedded/build.sh from testdata/socket.bpf.o
//! and testdata/xdp.bpf.o: `app` embeds both through libbpf skeletons (`bpftool gen
//! skeleton`, names socket_bpf and xdp_bpf), `libtwo.so` embeds both as raw bytes at odd
//! offsets. Every object found must be exactly the original file's bytes and read to the
//! same model as the original object read under the same name.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfcap::elf::read_object;
use bpfcap::input::{InputError, embedded, load_inputs};
use bpfcap::model::Object;
use miette::Diagnostic;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testdata(rel: &str) -> PathBuf {
    root().join("testdata").join(rel)
}

fn original(name: &str) -> Vec<u8> {
    std::fs::read(testdata(&format!("{name}.bpf.o"))).unwrap()
}

/// Everything the model says about an object, including instructions and relocations,
/// which its JSON form leaves out.
fn model(o: &Object) -> String {
    let mut s = serde_json::to_string_pretty(o).unwrap();
    for f in o.programs.iter().map(|p| &p.function).chain(&o.subprograms) {
        s.push_str(&format!("\n{}: {:?} {:?} {:?}", f.name, f.insns, f.relocs, f.lines));
    }
    s
}

/// `got` must be what reading testdata/<name>.bpf.o under the object name `as_name` gives.
fn assert_same_as_original(got: &Object, name: &str, as_name: &str) {
    let want = read_object(&original(name), as_name).unwrap();
    assert_eq!(got.name, as_name);
    let names = |o: &Object| -> Vec<(String, String, bool)> {
        o.programs.iter().map(|p| (p.name.clone(), p.section.clone(), p.autoload)).collect()
    };
    let maps = |o: &Object| -> Vec<(String, u32)> { o.maps.iter().map(|m| (m.name.clone(), m.map_type)).collect() };
    assert_eq!(names(got), names(&want), "{name}: programs");
    assert_eq!(maps(got), maps(&want), "{name}: maps");
    assert_eq!(model(got), model(&want), "{name}: the whole model");
}

fn display(p: &Path, suffix: &str) -> String {
    format!("{}#{suffix}", p.display())
}

/// The objects embedded in `file`, which must load without warnings and be shown as
/// `file#suffix` for each of `suffixes`, in order.
fn load_embedded(file: &Path, suffixes: &[&str]) -> Vec<(String, Object)> {
    let (objects, warnings) = load_inputs(std::slice::from_ref(&file.to_path_buf())).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let shown: Vec<&str> = objects.iter().map(|(p, _)| p.as_str()).collect();
    let expected: Vec<String> = suffixes.iter().map(|s| display(file, s)).collect();
    assert_eq!(shown, expected);
    objects
}

#[test]
fn executable_with_two_skeletons() {
    let app = testdata("embedded/app");
    let objects = load_embedded(&app, &["socket_bpf", "xdp_bpf"]);
    // The skeleton name is libbpf's object name, so it prefixes the internal maps.
    assert_same_as_original(&objects[0].1, "socket", "socket_bpf");
    assert!(objects[0].1.maps.iter().any(|m| m.name == "socket_b.rodata"));
    assert_same_as_original(&objects[1].1, "xdp", "xdp_bpf");

    // The extents are exact: the embedded bytes are the original files.
    let bytes = std::fs::read(&app).unwrap();
    let found = embedded::extract(&app.display().to_string(), &bytes);
    assert_eq!(found.candidates, 2);
    for (o, name) in found.objects.iter().zip(["socket", "xdp"]) {
        assert_eq!(&bytes[o.offset..o.offset + o.size], &original(name)[..], "{name}");
    }
}

#[test]
fn shared_library_with_unaligned_unnamed_objects() {
    let lib = testdata("embedded/libtwo.so");
    let objects = load_embedded(&lib, &["1", "2"]);
    // No skeleton: the object name is the file stem and the index.
    assert_same_as_original(&objects[0].1, "socket", "libtwo_1");
    assert_same_as_original(&objects[1].1, "xdp", "libtwo_2");

    let bytes = std::fs::read(&lib).unwrap();
    let found = embedded::extract("libtwo.so", &bytes);
    assert_eq!(found.objects[0].offset % 2, 1, "build.sh puts the first object at an odd offset");
    assert_eq!(found.objects[1].offset, found.objects[0].offset + found.objects[0].size + 5);
    for (o, name) in found.objects.iter().zip(["socket", "xdp"]) {
        assert_eq!(&bytes[o.offset..o.offset + o.size], &original(name)[..], "{name}");
    }
}

#[test]
fn raw_blob_with_padding() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("objects.bin");
    let mut b = b"not an ELF file \x7fELF\x7f".to_vec();
    b.extend_from_slice(&original("xdp"));
    b.extend_from_slice(&[0; 3]);
    b.extend_from_slice(&original("socket"));
    b.extend_from_slice(b"\x7fEL");
    std::fs::write(&blob, &b).unwrap();
    let objects = load_embedded(&blob, &["1", "2"]);
    assert_same_as_original(&objects[0].1, "xdp", "objects_1");
    assert_same_as_original(&objects[1].1, "socket", "objects_2");
}

#[test]
fn directory_walk_finds_embedded_objects() {
    let dir = testdata("embedded");
    let objects = load_inputs(std::slice::from_ref(&dir)).map(|(objects, _)| objects).unwrap();
    let shown: Vec<String> = objects.iter().map(|(p, _)| p.clone()).collect();
    let app = dir.join("app");
    let lib = dir.join("libtwo.so");
    assert_eq!(shown, [display(&app, "socket_bpf"), display(&app, "xdp_bpf"), display(&lib, "1"), display(&lib, "2")]);

    // Files that are not BPF are skipped without a word; subdirectories are searched.
    let tmp = tempfile::tempdir().unwrap();
    let nested = tmp.path().join("usr/bin");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(&app, nested.join("app")).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "no BPF here\n").unwrap();
    std::fs::copy(std::env::current_exe().unwrap(), tmp.path().join("host-program")).unwrap();
    std::fs::write(tmp.path().join("empty"), b"").unwrap();
    let (objects, warnings) = load_inputs(&[tmp.path().to_path_buf()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let shown: Vec<String> = objects.iter().map(|(p, _)| p.clone()).collect();
    let copy = nested.join("app");
    assert_eq!(shown, [display(&copy, "socket_bpf"), display(&copy, "xdp_bpf")]);

    // A directory with nothing BPF in it is still an error.
    std::fs::remove_dir_all(&nested).unwrap();
    let err = load_inputs(&[tmp.path().to_path_buf()]).map(|(objects, _)| objects).unwrap_err();
    assert!(matches!(err, InputError::NoObjects { .. }), "{err:?}");
}

#[test]
fn explicit_files_without_bpf_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "no BPF here\n").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut files = vec![text, empty, std::env::current_exe().unwrap()];
    if Path::new("/bin/true").is_file() {
        files.push(PathBuf::from("/bin/true"));
    }
    for f in files {
        let err = load_inputs(std::slice::from_ref(&f)).map(|(objects, _)| objects).unwrap_err();
        assert!(matches!(&err, InputError::NotBpf { path } if *path == f.display().to_string()), "{f:?}: {err:?}");
        assert_eq!(err.code().unwrap().to_string(), "bpfcap::input::not_bpf");
        assert!(err.help().is_some());
    }
}

/// Finds the embedded objects of testdata/embedded/app: (offset, size) of each.
fn app_extents() -> (Vec<u8>, Vec<(usize, usize)>) {
    let bytes = std::fs::read(testdata("embedded/app")).unwrap();
    let ext = embedded::extract("app", &bytes).objects.iter().map(|o| (o.offset, o.size)).collect();
    (bytes, ext)
}

#[test]
fn truncated_executable_gives_a_warning() {
    let (bytes, ext) = app_extents();
    let tmp = tempfile::tempdir().unwrap();

    // Cut in the middle of the second object: the first one is read, the second is a warning.
    let (off, size) = ext[1];
    let cut = tmp.path().join("app-cut");
    std::fs::write(&cut, &bytes[..off + size / 2]).unwrap();
    let (objects, warnings) = load_inputs(std::slice::from_ref(&cut)).unwrap();
    assert_eq!(objects.len(), 1);
    assert_same_as_original(&objects[0].1, "socket", &objects[0].1.name);
    // (the cut took the executable's section headers: it is searched whole, with a note)
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("section headers cannot be read") && warnings[0].contains("whole file"),
        "{warnings:?}"
    );
    assert!(warnings[1].starts_with(&display(&cut, "2")), "{warnings:?}");
    assert!(warnings[1].contains("past the end of the file"), "{warnings:?}");

    // The same in a directory walk.
    let (objects, warnings) = load_inputs(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!((objects.len(), warnings.len()), (1, 2));

    // Cut in the middle of the first object: nothing is readable, which for a file named
    // explicitly is an error that says why.
    let (off, size) = ext[0];
    std::fs::write(&cut, &bytes[..off + size / 2]).unwrap();
    let err = load_inputs(std::slice::from_ref(&cut)).map(|(objects, _)| objects).unwrap_err();
    assert!(
        matches!(&err, InputError::EmbeddedUnreadable { count: 1, first, .. } if first.contains("past the end")),
        "{err:?}"
    );
    assert!(err.help().is_some());
    // In a directory it is a warning; the directory's other objects are read.
    std::fs::copy(testdata("xdp.bpf.o"), tmp.path().join("xdp.bpf.o")).unwrap();
    let (objects, warnings) = load_inputs(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("section headers cannot be read"), "{warnings:?}");
    assert!(warnings[1].starts_with(&display(&cut, "1")), "{warnings:?}");
    std::fs::remove_file(tmp.path().join("xdp.bpf.o")).unwrap();

    // Every cut point: never a panic.
    for end in (0..bytes.len()).step_by(97) {
        std::fs::write(&cut, &bytes[..end]).unwrap();
        let _ = load_inputs(std::slice::from_ref(&cut));
    }
}

/// An executable whose section headers can be read but name a section past the end of the
/// file (here `.rodata`, which holds the objects): the whole file is searched, from its first
/// byte (reading the headers must not move where the whole file is read from).
#[test]
fn a_section_past_the_end_has_the_whole_file_searched() {
    let bytes = std::fs::read(testdata("embedded/app")).unwrap();
    let elf = object::read::elf::ElfFile64::<object::Endianness>::parse(&bytes[..]).unwrap();
    let shoff = elf.elf_header().e_shoff.get(elf.endian()) as usize;
    let entsize = elf.elf_header().e_shentsize.get(elf.endian()) as usize;
    let rodata = object::Object::section_by_name(&elf, ".rodata").unwrap();
    let index = object::ObjectSection::index(&rodata).0;
    let mut bad = bytes.clone();
    // (sh_offset, the section header's fifth field, at byte 24)
    let at = shoff + index * entsize + 24;
    bad[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("app-bad-section");
    std::fs::write(&file, &bad).unwrap();
    let (objects, warnings) = load_inputs(std::slice::from_ref(&file)).unwrap();
    assert_eq!(objects.len(), 2, "{warnings:?}");
    assert_same_as_original(&objects[0].1, "socket", &objects[0].1.name);
    assert!(
        warnings[0].contains("section headers cannot be read") && warnings[0].contains("whole file"),
        "{warnings:?}"
    );
}

#[test]
fn corrupt_embedded_object_gives_a_warning() {
    let (mut bytes, ext) = app_extents();
    // Break the BTF header magic (0xeb9f, little endian) of the first object: its extent is
    // intact but the object does not read.
    let (off, size) = ext[0];
    let at = off + bytes[off..off + size].windows(4).position(|w| w == b"\x9f\xeb\x01\x00").unwrap();
    bytes[at] = 0;
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("app");
    std::fs::write(&bad, &bytes).unwrap();
    let (objects, warnings) = load_inputs(std::slice::from_ref(&bad)).unwrap();
    let shown: Vec<&str> = objects.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(shown, [display(&bad, "xdp_bpf")]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with(&format!("{}: embedded BPF object at offset", display(&bad, "1"))), "{warnings:?}");
}

/// Each object's reference leads back to its bytes, with the name libbpf gives it: embedded
/// objects named by their skeleton or by their place in the file, and a plain object file.
#[test]
fn references_lead_back_to_the_objects() {
    let (app, two, plain) = (testdata("embedded/app"), testdata("embedded/libtwo.so"), testdata("xdp.bpf.o"));
    let (objects, _) = load_inputs(&[app.clone(), two.clone(), plain.clone()]).unwrap();
    for (display, original_name, name) in [
        (display(&app, "socket_bpf"), "socket", "socket_bpf"),
        (display(&app, "xdp_bpf"), "xdp", "xdp_bpf"),
        (display(&two, "2"), "xdp", "libtwo_2"),
        (plain.display().to_string(), "xdp", "xdp"),
    ] {
        let (_, object) = objects.iter().find(|(d, _)| *d == display).unwrap_or_else(|| panic!("no {display}"));
        let source = object.source.as_ref().expect("read from a file");
        assert_eq!(bpfcap::input::read_object_ref(source).unwrap(), original(original_name), "{display}");
        assert_eq!(source.name, name, "{display}");
    }
}

#[test]
fn analyze_names_the_embedded_objects() {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(root())
        .args(["analyze", "--verbose", "testdata/embedded/app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("testdata/embedded/app#socket_bpf (object socket_bpf, license GPL)"), "{text}");
    assert!(text.contains("testdata/embedded/app#xdp_bpf (object xdp_bpf, license GPL)"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(root())
        .args(["analyze", "Cargo.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bpfcap::input::not_bpf"));
}

/// Every object read from a file knows where its bytes are: reading them again from there
/// gives the bytes the display path leads to, and the name libbpf gives the object.
#[test]
fn objects_know_where_their_bytes_are() {
    let paths = [testdata("embedded/app"), testdata("embedded/libtwo.so"), testdata("xdp.bpf.o")];
    let (objects, _) = load_inputs(&paths).unwrap();
    assert!(objects.len() >= 4, "{}", objects.len());
    for (display, object) in objects {
        let source = object.source.clone().expect("read from a file");
        assert_eq!(source.display, display);
        assert_eq!(source.name, object.name, "{display}");
        // (the bytes read back are the object read: the same model)
        let bytes = bpfcap::input::read_object_ref(&source).unwrap();
        let again = bpfcap::elf::read_object(&bytes, &source.name).unwrap();
        assert_eq!(model(&again), model(&object), "{display}");
    }
}
