//! Container images as inputs, made by real tools: umoci builds an OCI layout in two layers
//! (the second deletes a directory, replaces an object with a text file and deletes an
//! executable), skopeo copies it to a docker-archive and an OCI archive, and tar makes root
//! filesystem tarballs (gzip and zstd). The oracle is umoci's own extraction of the image:
//! bpfcap must find exactly the objects a directory walk of the unpacked root filesystem
//! finds, under the same paths, with the same delegation. Hostile archives are errors of one
//! line with exit 2, in bounded memory.

mod common;
use common::bpfcap;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testdata(rel: &str) -> PathBuf {
    root().join("testdata").join(rel)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn tools() -> Result<(), String> {
    for t in ["umoci", "skopeo", "tar"] {
        if Command::new(t).arg("--version").output().is_err() {
            return Err(format!("{t} is not installed (./dev test installs umoci and skopeo)"));
        }
    }
    Ok(())
}

/// The image: an OCI layout `img` with tag `one` (the first layer) and `two` (both layers).
struct Image {
    dir: tempfile::TempDir,
}

impl Image {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("img")
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn build_image() -> Image {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let umoci = |args: &[&str]| run(Command::new("umoci").current_dir(d).args(args));
    umoci(&["init", "--layout", "img"]);
    umoci(&["new", "--image", "img:one"]);
    umoci(&["unpack", "--rootless", "--image", "img:one", "bundle"]);
    let rootfs = d.join("bundle/rootfs");
    let put = |rel: &str, from: &Path| {
        let to = rootfs.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
    };
    put("usr/lib/bpf/xdp.bpf.o", &testdata("xdp.bpf.o"));
    put("opt/gone/tc.bpf.o", &testdata("tc.bpf.o"));
    put("opt/gone/deeper/kprobe.bpf.o", &testdata("kprobe.bpf.o"));
    put("opt/replaced.bpf.o", &testdata("socket.bpf.o"));
    put("usr/bin/app", &testdata("embedded/app"));
    put("usr/bin/removed-app", &testdata("embedded/app"));
    put("usr/lib/libtwo.so", &testdata("embedded/libtwo.so"));
    std::fs::hard_link(rootfs.join("usr/lib/bpf/xdp.bpf.o"), rootfs.join("usr/lib/bpf/xdp-again.bpf.o")).unwrap();
    std::os::unix::fs::symlink("app", rootfs.join("usr/bin/app-link")).unwrap();
    std::os::unix::fs::symlink("../../etc/nowhere", rootfs.join("usr/bin/dangling")).unwrap();
    // executables built by others, when the sid chroot is there: libbpf-tools' skeletons
    if let Ok(sid) = common::sid_root() {
        for f in common::files_built_by_others(&sid) {
            let rel = f.strip_prefix(&sid).unwrap();
            if rel.starts_with("usr/sbin") && f.to_string_lossy().ends_with("-libbpf") {
                put(&rel.to_string_lossy(), &f);
            }
        }
    }
    umoci(&["repack", "--image", "img:one", "bundle"]);
    umoci(&["tag", "--image", "img:one", "two"]);
    std::fs::remove_dir_all(rootfs.join("opt/gone")).unwrap();
    std::fs::write(rootfs.join("opt/replaced.bpf.o"), "not an object any more\n").unwrap();
    std::fs::remove_file(rootfs.join("usr/bin/removed-app")).unwrap();
    umoci(&["repack", "--image", "img:two", "bundle"]);
    umoci(&["gc", "--layout", "img"]);
    Image { dir }
}

/// The objects a directory walk of `rootfs` finds, as paths inside it.
fn walked(rootfs: &Path) -> Vec<String> {
    let (objects, _) = bpfcap::input::load_inputs(&[rootfs.to_path_buf()]).unwrap();
    let prefix = rootfs.display().to_string();
    objects.into_iter().map(|(p, _)| p[prefix.len()..].to_string()).collect()
}

/// The objects bpfcap finds in `image`, in its JSON report.
fn analysed(image: &Path, extra: &[&str]) -> (Vec<String>, serde_json::Value) {
    let mut args = vec!["analyze", "--format", "json"];
    args.extend_from_slice(extra);
    let path = image.to_str().unwrap();
    args.push(path);
    let (code, out, err) = bpfcap(&args);
    assert_eq!(code, 0, "{image:?}: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths = doc["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().to_string()).collect();
    (paths, doc)
}

#[test]
fn images_in_every_form_hold_what_their_extraction_holds() {
    if !common::require(tools(), "container images made by umoci and skopeo") {
        return;
    }
    let img = build_image();
    let d = img.dir.path();
    // the oracle: umoci's extraction of the final image, walked as a directory
    run(Command::new("umoci").current_dir(d).args(["unpack", "--rootless", "--image", "img:two", "unpacked"]));
    let rootfs = d.join("unpacked/rootfs");
    let expected = walked(&rootfs);
    for gone in ["/opt/gone/tc.bpf.o", "/opt/replaced.bpf.o", "/usr/bin/removed-app#socket_bpf"] {
        assert!(!expected.iter().any(|p| p == gone), "the extraction holds {gone}");
    }
    for kept in
        ["/usr/lib/bpf/xdp.bpf.o", "/usr/lib/bpf/xdp-again.bpf.o", "/usr/bin/app#xdp_bpf", "/usr/bin/app-link#xdp_bpf"]
    {
        assert!(expected.iter().any(|p| p == kept), "the extraction lacks {kept}: {expected:?}");
    }
    let (_, walked_doc) = analysed(&rootfs, &[]);

    let layout = format!("oci:{}:two", img.layout().display());
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &layout,
        &format!("docker-archive:{}:t:latest", img.path("docker.tar").display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &layout,
        &format!("oci-archive:{}:two", img.path("oci.tar").display()),
    ]));
    run(Command::new("skopeo").args(["copy", "-q", &layout, &format!("oci:{}:two", img.path("single").display())]));
    run(Command::new("tar").args([
        "czf",
        img.path("rootfs.tar.gz").to_str().unwrap(),
        "-C",
        rootfs.to_str().unwrap(),
        ".",
    ]));
    let tar = Command::new("tar").args(["cf", "-", "-C", rootfs.to_str().unwrap(), "."]).output().unwrap();
    std::fs::write(img.path("rootfs.tar.zst"), zstd::encode_all(&tar.stdout[..], 3).unwrap()).unwrap();
    std::fs::write(img.path("rootfs.tar"), &tar.stdout).unwrap();

    // `docker save | gzip`: a compressed docker-archive
    let docker_tar = std::fs::read(img.path("docker.tar")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &docker_tar).unwrap();
    std::fs::write(img.path("docker.tar.gz"), gz.finish().unwrap()).unwrap();
    // (plain archives and layers are read by position, compressed ones as streams)
    let forms = ["single", "docker.tar", "docker.tar.gz", "oci.tar", "rootfs.tar", "rootfs.tar.gz", "rootfs.tar.zst"];
    for form in forms {
        let (paths, doc) = analysed(&img.path(form), &[]);
        assert_eq!(paths, expected, "{form}");
        for key in ["mount_options", "capabilities", "delegation"] {
            assert_eq!(doc[key], walked_doc[key], "{form}: {key}");
        }
        assert_eq!(doc["warnings"], serde_json::json!([]), "{form}");
    }
    // one answer per executable: what analysing that file alone gives
    let docker = img.path("docker.tar");
    let (_, doc) = analysed(&docker, &["--by-executable"]);
    let app =
        doc["executables"].as_array().unwrap().iter().find(|e| e["path"] == "/usr/bin/app").expect("/usr/bin/app");
    assert_eq!(app["objects"], serde_json::json!(["/usr/bin/app#socket_bpf", "/usr/bin/app#xdp_bpf"]));
    assert_eq!(app["image"], docker.to_str().unwrap());
    let (_, alone) = analysed(&testdata("embedded/app"), &[]);
    for key in ["mount_options", "capabilities", "delegation", "host_capabilities"] {
        assert_eq!(app[key], alone[key], "/usr/bin/app: {key}");
    }
    let xdp = doc["executables"].as_array().unwrap().iter().find(|e| e["path"] == "/usr/lib/bpf/xdp.bpf.o").unwrap();
    let (_, xdp_alone) = analysed(&testdata("xdp.bpf.o"), &[]);
    assert_eq!(xdp["mount_options"], xdp_alone["mount_options"]);
    assert_ne!(xdp["mount_options"], doc["mount_options"], "the image needs more than one of its files");
    // objects inside an image are not loaded from the host's files of the same path
    let (code, _, err) = bpfcap(&["verify", docker.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("read from a container image"), "{err}");

    // the layout holds both tags, without platforms: bpfcap reads one image and says how
    let (code, _, err) = bpfcap(&["analyze", img.layout().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds 2 images (one, two)"), "{err}");
}

/// An index of two platforms, each its own image: `--platform` chooses, the default is the
/// running machine's, and a platform the index lacks is an error that lists those it has.
#[test]
fn platforms_choose_the_image() {
    if !common::require(tools(), "container images made by umoci and skopeo") {
        return;
    }
    let img = build_image();
    let index_path = img.layout().join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let host = bpfcap::input::image::Platform::host();
    let other = if host.architecture == "arm64" { "amd64" } else { "arm64" };
    for m in index["manifests"].as_array_mut().unwrap() {
        let tag = m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string();
        let arch = if tag == "two" { host.architecture.clone() } else { other.to_string() };
        m["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let layout = img.layout();
    let (default, _) = analysed(&layout, &[]);
    assert!(!default.iter().any(|p| p.starts_with("/opt/gone/")), "{default:?}");
    let platform = format!("linux/{other}");
    let (chosen, _) = analysed(&layout, &["--platform", &platform]);
    assert!(chosen.iter().any(|p| p == "/opt/gone/tc.bpf.o"), "the first layer's image: {chosen:?}");
    let (code, _, err) = bpfcap(&["analyze", "--platform", "linux/s390x", layout.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no image for linux/s390x") && err.contains(&platform), "{err}");
}

/// A tar archive of `entries` (path, type flag, data), as a hostile tool would write it.
fn tar_of(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, flag, data) in entries {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[156] = *flag;
        if *flag == b'2' {
            h[157..157 + data.len()].copy_from_slice(data);
            h[124..135].copy_from_slice(b"00000000000");
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend(h);
        if *flag != b'2' {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend(vec![0u8; 1024]);
    out
}

/// A docker-archive whose manifest lists one layer twice (a layer read as the compressed
/// archive streams by is taken at its last listing, copied for the one before): plain and
/// gzip-compressed, both layers' objects are found.
#[test]
fn a_layer_listed_twice_is_read_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let xdp = std::fs::read(testdata("xdp.bpf.o")).unwrap();
    let tc = std::fs::read(testdata("tc.bpf.o")).unwrap();
    let one = tar_of(&[("usr/lib/x.bpf.o", b'0', &xdp)]);
    let two = tar_of(&[("usr/lib/y.bpf.o", b'0', &tc)]);
    let archive = tar_of(&[
        ("manifest.json", b'0', br#"[{"Config":"c.json","Layers":["a/layer.tar","b/layer.tar","a/layer.tar"]}]"#),
        ("a/layer.tar", b'0', &one),
        ("b/layer.tar", b'0', &two),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &archive).unwrap();
    for (name, bytes) in [("twice.tar", archive.clone()), ("twice.tar.gz", gz.finish().unwrap())] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (paths, doc) = analysed(&path, &[]);
        assert_eq!(paths, ["/usr/lib/x.bpf.o", "/usr/lib/y.bpf.o"], "{name}: {}", doc["warnings"]);
    }
}

/// The peak resident memory of this process's finished children, in bytes.
fn children_peak_rss() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss as u64 * 1024
}

#[test]
fn hostile_archives_are_one_line_errors_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let xdp = std::fs::read(testdata("xdp.bpf.o")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut huge_name = tar_of(&[("././@LongLink", b'L', b"x")]);
    huge_name[124..136].copy_from_slice(format!("{:012o}", 1u64 << 33).as_bytes());
    huge_name[148..156].copy_from_slice(b"        ");
    let sum: u64 = huge_name[..512].iter().map(|b| u64::from(*b)).sum();
    huge_name[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    // 2 GiB of zeros in one file of a zstd layer: a few hundred KiB on disk
    let bomb = {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        let mut h = tar_of(&[("big", b'0', b"")]);
        h.truncate(512);
        h[124..136].copy_from_slice(format!("{:012o}", 2u64 << 30).as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        std::io::Write::write_all(&mut enc, &h).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(2 << 10) {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        enc.finish().unwrap()
    };
    let mut corrupt = tar_of(&[("usr/lib/x.bpf.o", b'0', &xdp)]);
    corrupt[0] ^= 1; // the header's checksum no longer holds
    let cut = {
        let t = tar_of(&[("usr/lib/x.bpf.o", b'0', &xdp)]);
        t[..512 + xdp.len() / 2].to_vec()
    };
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        ("a path that climbs out", write("climb.tar", &tar_of(&[("../../etc/x.bpf.o", b'0', &xdp)])), "climbs out"),
        ("a huge long name", write("longname.tar", &huge_name), "more than"),
        ("a decompression bomb", write("bomb.tar.zst", &bomb), "decompression bomb"),
        ("a corrupt header", write("corrupt.tar", &corrupt), "checksum"),
        ("a cut archive", write("cut.tar", &cut), "cut off"),
        (
            "a docker-archive without its layer",
            write(
                "nolayer.tar",
                &tar_of(&[("manifest.json", b'0', br#"[{"Config":"c.json","Layers":["l/layer.tar"]}]"#)]),
            ),
            "not in the archive",
        ),
        (
            "an index naming a blob outside",
            write(
                "badindex.tar",
                &tar_of(&[
                    ("oci-layout", b'0', b"{}"),
                    ("index.json", b'0', br#"{"manifests":[{"digest":"sha256:../../x"}]}"#),
                ]),
            ),
            "digest",
        ),
    ];
    for (what, path, says) in cases {
        let (code, out, err) = bpfcap(&["analyze", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{what}: {out}{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines.len() <= 2 && lines[0].starts_with("bpfcap: ") && lines[0].contains(says), "{what}: {err}");
        assert!(lines[0].contains(path.to_str().unwrap()), "{what}: the error names the archive: {err}");
    }
    assert!(children_peak_rss() < 256 << 20, "peak memory {} bytes", children_peak_rss());

    // links that go round in circles, and a link out of the root: no hang, no object
    let loops = write(
        "loops.tar",
        &tar_of(&[("a", b'2', b"b"), ("b", b'2', b"a"), ("c", b'2', b"../../../etc/passwd"), ("x.bpf.o", b'0', &xdp)]),
    );
    let (code, out, err) = bpfcap(&["analyze", "--format", "json", loops.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = doc["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/x.bpf.o"]);
}
