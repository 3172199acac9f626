//! emit and check: emit-then-check is clean in every dialect for every sample object; a
//! deliberate mistake is found exactly, at its line; systemd's case-sensitivity and its
//! netfilter/syscall table bug are caught; the emitted mount options are accepted by the
//! kernel and give a bpffs whose /proc/mounts line lists the same delegation.

use std::path::Path;
use std::process::Command;

const TARGETS: &[&str] = &["systemd", "mount-options", "mount", "fstab", "mount-unit", "incus", "lxd"];

mod common;
use common::bpfcap;

/// The samples libbpf can open (legacy maps sections: nothing to configure), as relative paths.
fn loadable_objects() -> Vec<String> {
    common::sample_objects()
        .into_iter()
        .filter(|p| !common::is_legacy(p))
        .map(|p| format!("testdata/{}", p.file_name().unwrap().to_string_lossy()))
        .collect()
}

#[test]
fn emit_then_check_is_clean_in_every_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for obj in loadable_objects() {
        for t in TARGETS {
            let cfg = dir.path().join(format!("{}.{t}", obj.replace('/', "_")));
            let (code, _, err) = bpfcap(&["emit", "--target", t, "--output", cfg.to_str().unwrap(), &obj]);
            assert_eq!(code, 0, "emit {t} {obj}: {err}");
            let (code, out, err) = bpfcap(&["check", "--config", cfg.to_str().unwrap(), "--deny-extra", &obj]);
            let text = std::fs::read_to_string(&cfg).unwrap();
            // systemd cannot name netfilter (see the systemd test below): emit says so, and
            // check then finds it missing; every other object and dialect must be clean
            if *t == "systemd" && text.contains("NOT GRANTED") {
                assert_eq!(code, 1, "{obj}: {out}");
                assert!(out.contains("missing-item"), "{out}");
                continue;
            }
            assert_eq!(code, 0, "check of emitted {t} for {obj} is not clean:\n{text}\n{out}{err}");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn output_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("out.conf");
    std::fs::write(&f, "keep me\n").unwrap();
    let (code, _, err) =
        bpfcap(&["emit", "--target", "mount-options", "--output", f.to_str().unwrap(), "testdata/socket.bpf.o"]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "keep me\n");
    let (code, _, _) = bpfcap(&[
        "emit",
        "--target",
        "mount-options",
        "--output",
        f.to_str().unwrap(),
        "--force",
        "testdata/socket.bpf.o",
    ]);
    assert_eq!(code, 0);
    assert!(std::fs::read_to_string(&f).unwrap().starts_with("delegate_cmds="));
    // nothing else left in the directory (atomic write via a temporary file)
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

fn check_json(cfg_text: &str, dialect: &str, obj: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cfg");
    std::fs::write(&f, cfg_text).unwrap();
    let (_, out, err) =
        bpfcap(&["check", "--config", f.to_str().unwrap(), "--dialect", dialect, "--format", "json", obj]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

fn codes(v: &serde_json::Value) -> Vec<(String, u64)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_string(), f["line"].as_u64().unwrap_or(0)))
        .collect()
}

#[test]
fn a_deliberate_mistake_is_found_exactly_at_its_line() {
    // socket.bpf.o needs: map_create prog_load / array / socket_filter tracepoint / cgroup_inet_ingress
    let (_, good, _) = bpfcap(&["emit", "--target", "systemd", "testdata/socket.bpf.o"]);
    let lines: Vec<&str> = good.lines().collect();
    let maps_line = lines.iter().position(|l| l.starts_with("BPFDelegateMaps=")).unwrap();
    // 1. drop an item
    let broken = good.replace("BPFDelegateMaps=BPFMapTypeArray", "BPFDelegateMaps=");
    let v = check_json(&broken, "systemd", "testdata/socket.bpf.o");
    assert_eq!(codes(&v), vec![("missing-item".to_string(), maps_line as u64 + 1)], "{v:#}");
    // 2. wrong case: systemd would log and ignore it
    let broken = good.replace("BPFMapTypeArray", "bpfmaptypearray");
    let v = check_json(&broken, "systemd", "testdata/socket.bpf.o");
    let c = codes(&v);
    assert!(c.contains(&("systemd-case".to_string(), maps_line as u64 + 1)), "{c:?}");
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "systemd-case").unwrap();
    assert!(f["help"].as_str().unwrap().contains("BPFMapTypeArray"), "{f}");
    assert!(f["message"].as_str().unwrap().contains("Unknown BPF delegate option, ignoring: bpfmaptypearray"));
    // 3. an extra grant
    let broken = good.replace("BPFMapTypeArray", "BPFMapTypeArray,BPFMapTypeHash");
    let v = check_json(&broken, "systemd", "testdata/socket.bpf.o");
    assert_eq!(codes(&v), vec![("extra-item".to_string(), maps_line as u64 + 1)]);
    // 4. no token at all
    let broken = good.replace("PrivateBPF=yes", "PrivateBPF=no");
    let v = check_json(&broken, "systemd", "testdata/socket.bpf.o");
    assert!(codes(&v).iter().any(|(c, _)| c == "systemd-no-private-bpf"));
    // 5. no user namespace
    let broken = good.replace("PrivateUsers=self\n", "").replace("DelegateNamespaces=mnt\n", "");
    let v = check_json(&broken, "systemd", "testdata/socket.bpf.o");
    assert!(codes(&v).iter().any(|(c, _)| c == "systemd-no-userns"), "{v:#}");
    // ... and with the user namespace switched off by any of systemd's words for false
    for off in ["no", "false", "0", "Off"] {
        let broken = good
            .replace("PrivateUsers=self\n", &format!("PrivateUsers={off}\n"))
            .replace("DelegateNamespaces=mnt\n", "");
        let v = check_json(&broken, "systemd", "testdata/socket.bpf.o");
        assert!(codes(&v).iter().any(|(c, _)| c == "systemd-no-userns"), "PrivateUsers={off}: {v:#}");
    }
    // 6. mount options: a numeric mask after names replaces them
    let v = check_json(
        "delegate_cmds=map_create:prog_load,delegate_maps=array,delegate_progs=socket_filter:tracepoint:0x2,delegate_attachs=cgroup_inet_ingress\n",
        "mount",
        "testdata/socket.bpf.o",
    );
    let c: Vec<String> = codes(&v).into_iter().map(|x| x.0).collect();
    assert!(c.contains(&"mask-replaces-names".to_string()) && c.contains(&"missing-item".to_string()), "{c:?}");
    // 7. a misspelt kernel name is suggested
    let v = check_json(
        "delegate_cmds=map_create:prog_load,delegate_maps=arrray,delegate_progs=socket_filter:tracepoint,delegate_attachs=cgroup_inet_ingress\n",
        "mount",
        "testdata/socket.bpf.o",
    );
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "unknown-name").unwrap();
    assert!(f["help"].as_str().unwrap().contains("array"), "{f}");
    // 8. any, and a command that consults no token
    let v = check_json(
        "delegate_cmds=map_create:prog_load:obj_pin,delegate_maps=any,delegate_progs=socket_filter:tracepoint,delegate_attachs=cgroup_inet_ingress\n",
        "mount",
        "testdata/socket.bpf.o",
    );
    let c: Vec<String> = codes(&v).into_iter().map(|x| x.0).collect();
    assert_eq!(c, vec!["inert-command", "any-grant"], "{v:#}");
    // 9. an option name bpffs does not know (it would ignore it silently)
    let v = check_json(
        "delegate_cmd=map_create:prog_load,delegate_maps=array,delegate_progs=socket_filter:tracepoint,delegate_attachs=cgroup_inet_ingress\n",
        "mount",
        "testdata/socket.bpf.o",
    );
    let c = codes(&v);
    assert_eq!(c[0], ("unknown-option".to_string(), 1), "{c:?}");
    // 10. LXD without its switch, in a privileged container
    let (_, good, _) = bpfcap(&["emit", "--target", "lxd", "testdata/socket.bpf.o"]);
    let yaml: String = good.lines().skip_while(|l| !l.starts_with("config:")).collect::<Vec<_>>().join("\n") + "\n";
    let v = check_json(&yaml, "lxd", "testdata/socket.bpf.o");
    assert!(codes(&v).is_empty(), "{v:#}");
    let broken = yaml.replace("security.delegate_bpf: \"true\"", "security.delegate_bpf: \"false\"")
        + "  security.privileged: \"true\"\n";
    let v = check_json(&broken, "lxd", "testdata/socket.bpf.o");
    let c: Vec<String> = codes(&v).into_iter().map(|x| x.0).collect();
    assert_eq!(c, vec!["manager-disabled", "manager-privileged"], "{v:#}");
}

#[test]
fn systemd_netfilter_name_grants_syscall() {
    // netmisc.bpf.o has a netfilter program
    let (code, out, err) = bpfcap(&["emit", "--target", "systemd", "testdata/netmisc.bpf.o"]);
    assert_eq!(code, 0);
    assert!(!out.contains("BPFProgTypeNetfilter"), "bpfcap must never emit a name that grants something else:\n{out}");
    assert!(err.contains("netfilter") && err.contains("mount-options"), "{err}");
    let unit = "[Service]\nPrivateBPF=yes\nPrivateUsers=self\nDelegateNamespaces=mnt\nBPFDelegatePrograms=BPFProgTypeNetfilter\n";
    let v = check_json(unit, "systemd", "testdata/netmisc.bpf.o");
    let f =
        v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "systemd-misgrant").expect("misgrant finding");
    assert_eq!(f["line"], 5);
    assert!(f["message"].as_str().unwrap().contains("syscall"));
    assert!(v["granted"]["programs"].as_array().unwrap().iter().any(|p| p == "syscall"));
}

#[test]
fn renderers_sarif_github_human() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bpf.conf");
    std::fs::write(
        &f,
        "[Service]\nPrivateBPF=yes\nPrivateUsers=self\nDelegateNamespaces=mnt\nBPFDelegateMaps=BPFMapTypeRingbuf\n",
    )
    .unwrap();
    let (code, out, _) =
        bpfcap(&["check", "--config", f.to_str().unwrap(), "--format", "sarif", "testdata/socket.bpf.o"]);
    assert_eq!(code, 1);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "missing-item"));
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "extra-item" && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 5)
    );
    let (_, out, _) =
        bpfcap(&["check", "--config", f.to_str().unwrap(), "--format", "github", "testdata/socket.bpf.o"]);
    assert!(out.lines().any(|l| l.starts_with("::warning file=") && l.contains("line=5")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("::error file=")), "{out}");
    let (_, out, _) = bpfcap(&["check", "--config", f.to_str().unwrap(), "testdata/socket.bpf.o"]);
    assert!(out.contains("bpfcap::check::missing-item") && out.contains("BPFMapTypeRingbuf"), "{out}");
    let (code, _, err) = bpfcap(&["check", "--config", "/nonexistent", "testdata/socket.bpf.o"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_kernel_accepts_emitted_mount_options() {
    let ok = if unsafe { libc::geteuid() } == 0 && Path::new("/usr/bin/unshare").exists() {
        Ok(())
    } else {
        Err("needs root and unshare(1)".to_string())
    };
    if !common::require(ok, "kernel mount-option test") {
        return;
    }
    let r = bpfcap::rules::rules();
    for obj in loadable_objects() {
        let (code, opts, _) = bpfcap(&["emit", "--target", "mount-options", &obj]);
        assert_eq!(code, 0);
        let opts = opts.trim();
        let dir = tempfile::tempdir().unwrap();
        let mp = dir.path().to_str().unwrap();
        // a private mount namespace: nothing is mounted in the test's own namespace
        let out = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &format!("mount -t bpf -o {opts} bpffs {mp} && grep ' {mp} ' /proc/mounts"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{obj}: the kernel refused {opts}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let mounted =
            bpfcap::dialect::parse(&line, "/proc/mounts", bpfcap::dialect::by_name("fstab"), r).unwrap().delegation(r);
        let emitted =
            bpfcap::dialect::parse(opts, "emitted", bpfcap::dialect::by_name("mount"), r).unwrap().delegation(r);
        assert_eq!(mounted, emitted, "{obj}: /proc/mounts says {line}");
    }
}

/// Runs `check` over a configuration written to a file, within a time limit (a hang
/// detector: the inputs below took minutes, or panicked, before the fixes).
fn check_file(dir: &Path, name: &str, text: &str, args: &[&str]) -> (i32, String, String) {
    let cfg = dir.join(name);
    std::fs::write(&cfg, text).unwrap();
    let mut all = vec!["check", "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    all.push("testdata/xdp.bpf.o");
    let owned: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        let _ = tx.send(bpfcap(&args));
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("check of {name}: not done after 30 s"))
}

#[test]
fn check_never_panics_and_its_output_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // a finding past column 65535 (miette's limit: exit 101)
    let far = format!("delegate_cmds={}:bogus\n", vec!["prog_load"; 8000].join(":"));
    // 10000 findings on one line of a drop-in (panicked; then minutes of output)
    let many = format!(
        "[Service]\nPrivateBPF=yes\nBPFDelegateCommands={}\n",
        (0..10_000).map(|i| format!("bogus{i}")).collect::<Vec<_>>().join(",")
    );
    // 100000 BPFDelegate*= lines (each reparsed every item before it)
    let lines: String = (0..100_000).map(|i| format!("BPFDelegateMaps=BPFMapTypeHash{}\n", i % 2)).collect();
    let lines = format!("[Service]\nPrivateBPF=yes\n{lines}");
    for (name, text) in [("far.txt", far), ("many.conf", many), ("lines.conf", lines)] {
        for format in ["human", "json", "sarif", "github"] {
            let (code, out, err) = check_file(dir.path(), name, &text, &["--format", format]);
            assert_eq!(code, 1, "{name} {format}: {err}");
            if format == "human" {
                // at most the first findings in full, a line counting the rest
                assert!(out.len() < 200_000, "{name}: {} bytes of output", out.len());
                assert!(out.lines().all(|l| l.len() < 2000), "{name}: a line of over 2000 bytes");
            }
        }
    }
}

#[test]
fn check_reports_what_systemd_ignores_and_what_a_drop_in_should_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[Service]\n\
                PrivateBPF=yes\n\
                PrivateUsers=self\n\
                DelegateNamespaces=mnt\n\
                ExecStartPre=/tmp/pwn\n\
                BPFDelegateMap=BPFMapTypeHash\n\
                BPFDelegateCommands=BPFProgLoad,\\\n\
                \x20 BPFMapCreate\n\
                not a setting\n\
                [Unit]\n\
                BPFDelegatePrograms=BPFProgTypeXdp\n";
    let (code, out, err) = check_file(dir.path(), "bpf.conf", text, &["--format", "json"]);
    assert_eq!(code, 1, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let at = |code: &str| -> Vec<(u64, String)> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == code)
            .map(|f| (f["line"].as_u64().unwrap(), f["help"].as_str().unwrap_or_default().to_string()))
            .collect()
    };
    assert_eq!(at("foreign-setting").iter().map(|f| f.0).collect::<Vec<_>>(), [5], "{out}");
    let unknown = at("unknown-key");
    assert_eq!(unknown.iter().map(|f| f.0).collect::<Vec<_>>(), [6, 11], "{out}");
    assert!(unknown[0].1.contains("BPFDelegateMaps="), "{unknown:?}");
    assert!(unknown[1].1.contains("belongs in [Service]"), "{unknown:?}");
    assert_eq!(at("not-a-setting").iter().map(|f| f.0).collect::<Vec<_>>(), [9], "{out}");
    // the continued line is read as systemd reads it: "BPFProgLoad,   BPFMapCreate", whose
    // second item (spaces and all) systemd does not know
    let case = at("systemd-case");
    assert_eq!(case.iter().map(|f| f.0).collect::<Vec<_>>(), [8], "{out}");
    // [Unit]'s BPFDelegatePrograms= grants nothing: xdp is missing
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "missing-item"
                && f["message"].as_str().unwrap().starts_with("delegate_progs lacks xdp"))
    );
    // a unit file (not a drop-in) may hold other settings
    let unit = "[Service]\nExecStart=/usr/bin/true\nPrivateBPF=yes\n";
    let (_, out, _) = check_file(dir.path(), "my.service", unit, &["--format", "json"]);
    assert!(!out.contains("foreign-setting"), "{out}");
}

#[test]
fn check_reports_misspelt_incus_and_lxd_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, want) in [
        (
            "incus.yaml",
            "config:\n  security.bpffs.delegate_cmds: \"prog_load,map_create\"\n  security.bpffs.delegate_map: \"hash\"\n  limits.cpu: \"2\"\n",
            ("security.bpffs.delegate_maps", 3),
        ),
        (
            "lxd.txt",
            "lxc config set c1 security.delegate_bpf=true\nlxc config set c1 security.delegate_bpf.cmd_type=prog_load\n",
            ("security.delegate_bpf.cmd_types", 2),
        ),
    ] {
        let (code, out, err) = check_file(dir.path(), name, text, &["--format", "json"]);
        assert_eq!(code, 1, "{name}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let f = doc["findings"].as_array().unwrap().iter().find(|f| f["code"] == "unknown-key").expect("unknown-key");
        assert_eq!(f["line"], want.1, "{name}: {f}");
        assert!(f["help"].as_str().unwrap().contains(want.0), "{name}: {f}");
    }
}

#[test]
fn emit_force_keeps_the_mode_and_stale_temporaries_are_cleaned() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bpf.conf");
    std::fs::write(&f, "old\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    // a temporary file of a run killed before it renamed it (a PID that runs no more)
    let dead = (400_000..4_000_000).find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let stale = dir.path().join(format!(".bpf.conf.bpfcap-{dead}.tmp"));
    std::fs::write(&stale, "half").unwrap();
    let (code, _, err) =
        bpfcap(&["emit", "--target", "systemd", "--output", f.to_str().unwrap(), "--force", "testdata/socket.bpf.o"]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&f).unwrap().contains("PrivateBPF=yes"));
    assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "--force made the file readable");
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// `emit --output -` writes to standard output, as '-' means everywhere else; no file named
/// `-` appears.
#[test]
fn emit_output_dash_is_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/xdp.bpf.o");
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(dir.path())
        .args(["emit", "--target", "systemd", "--output", "-", obj.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PrivateBPF=yes"));
    assert!(!dir.path().join("-").exists(), "a file named '-' was written");
}

/// Versions the rules never studied are refused with exit 2: a kernel newer than the rules'
/// sources, a libbpf range reaching below the studied versions.
#[test]
fn unstudied_versions_are_refused() {
    let (code, _, err) = bpfcap(&["emit", "--target", "systemd", "--kernel", "7.5", "testdata/xdp.bpf.o"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("7.5"), "{err}");
    let (code, _, err) = bpfcap(&["analyze", "--libbpf", "1.0-1.7", "testdata/xdp.bpf.o"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = bpfcap(&["analyze", "--libbpf", "1.1", "testdata/xdp.bpf.o"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = bpfcap(&["emit", "--target", "systemd", "--kernel", "6.18", "testdata/xdp.bpf.o"]);
    assert_eq!(code, 0);
}

/// A directory holding a dangling link and a truncated object is analysed, with a warning
/// naming each, and exits 0; a path without objects beside one with objects is a warning.
#[test]
fn unusable_inputs_in_directories_are_named_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let xdp = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/xdp.bpf.o")).unwrap();
    std::fs::write(dir.path().join("good.bpf.o"), &xdp).unwrap();
    std::fs::write(dir.path().join("truncated.bpf.o"), &xdp[..300]).unwrap();
    std::os::unix::fs::symlink("/nonexistent/bpfcap-test", dir.path().join("dangling.o")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = bpfcap(&["analyze", dir.path().to_str().unwrap(), empty.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    for name in ["truncated.bpf.o", "dangling.o", empty.path().to_str().unwrap()] {
        assert!(all.contains(name), "no warning names {name}: {all}");
    }
}

/// An error with stderr not a terminal (a CI log) is one line naming the path and what is
/// wrong, with its code, and a second for the hint: no drawing, no cause said twice.
#[test]
fn piped_errors_are_one_line() {
    let (code, _, err) = bpfcap(&["analyze", "testdata/no-such-object.o"]);
    assert_eq!(code, 2);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("bpfcap: ") && lines[0].contains("testdata/no-such-object.o"), "{err}");
    assert!(lines[0].ends_with("[bpfcap::input::io]"), "{err}");
    assert_eq!(lines[0].matches("No such file or directory").count(), 1, "{err}");
    assert!(lines[1].starts_with("bpfcap: help: "), "{err}");
    assert!(!err.chars().any(|c| "│×╰─▶╭".contains(c)), "{err}");
}

/// `bpfcap completions SHELL` prints a completion script that knows the subcommands, and
/// `bpfcap man` a manual page.
#[test]
fn completions_and_manual_page() {
    let (code, out, _) = bpfcap(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(out.contains("complete -F") && out.contains("record") && out.contains("--minimize"), "{out}");
    let (code, out, _) = bpfcap(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(out.contains("#compdef bpfcap"), "{out}");
    let (code, out, _) = bpfcap(&["man"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH bpfcap 1") && out.contains("analyze"), "{out}");
    let (code, _, _) = bpfcap(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

/// `analyze`'s table gives the whole answer first: within its first 20 lines the four lists,
/// the capabilities and the bpffs option string, unbroken (as `emit --target mount-options`
/// writes it), on a sample and on an object built by others.
#[test]
fn the_answer_comes_first() {
    let mut paths = vec!["testdata/xdp.bpf.o".to_string()];
    if let Ok(root) = common::sid_root() {
        paths.push(root.join("usr/sbin/execsnoop-libbpf").display().to_string());
    }
    for p in &paths {
        let (code, out, err) = bpfcap(&["analyze", p]);
        assert_eq!(code, 0, "{err}");
        let head: Vec<&str> = out.lines().take(20).collect();
        let (_, options, _) = bpfcap(&["emit", "--target", "mount-options", p]);
        let options = options.lines().find(|l| l.starts_with("delegate_")).unwrap().to_string();
        assert!(head.contains(&options.as_str()), "{p}: no unbroken option string in\n{}", head.join("\n"));
        for key in ["delegate_cmds", "delegate_maps", "delegate_progs", "delegate_attachs", "capabilities"] {
            assert!(head.iter().any(|l| l.trim_start().starts_with(key)), "{p}: no {key} line");
        }
        assert!(out.contains("next: bpfcap emit --target systemd"), "{out}");
    }
}

/// A typo'd key is one finding, first, on its own line, naming the closest real key and the
/// items lost with it (not one missing-item per item); help in a systemd file names items in
/// systemd's spelling. For systemd, Incus and LXD.
#[test]
fn a_typo_is_one_finding_and_help_is_in_the_dialects_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let obj = "testdata/xdp.bpf.o";
    let (_, dropin, _) = bpfcap(&["emit", "--target", "systemd", obj]);
    let (_, incus, _) = bpfcap(&["emit", "--target", "incus", obj]);
    let (_, lxd, _) = bpfcap(&["emit", "--target", "lxd", obj]);
    let cases = [
        (
            "typo.lxd",
            lxd.replace("security.delegate_bpf.map_types", "security.delegate_bpf.map_type"),
            "security.delegate_bpf.map_type",
            "security.delegate_bpf.map_types",
        ),
        ("typo.conf", dropin.replace("BPFDelegateMaps=", "BPFDelegateMap="), "BPFDelegateMap=", "BPFDelegateMaps="),
        (
            "typo.incus",
            incus.replace("security.bpffs.delegate_maps", "security.bpffs.delegate_map"),
            "security.bpffs.delegate_map",
            "security.bpffs.delegate_maps",
        ),
    ];
    for (name, text, typo, real) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let (code, out, err) = bpfcap(&["check", "--config", path.to_str().unwrap(), "--format", "json", obj]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let findings = doc["findings"].as_array().unwrap();
        assert_eq!(findings[0]["code"], "unknown-key", "{name}: {out}");
        let line = text.lines().position(|l| l.contains(typo)).unwrap() + 1;
        assert_eq!(findings[0]["line"], line, "{name}: {out}");
        assert!(findings[0]["help"].as_str().unwrap().contains(real), "{name}: {out}");
        assert!(findings[0]["message"].as_str().unwrap().contains("devmap"), "{name}: {out}");
        assert!(!findings.iter().any(|f| f["code"] == "missing-item"), "{name}: {out}");
    }
    // systemd: the help names what to add as systemd spells it
    let short = dir.path().join("short.conf");
    std::fs::write(&short, dropin.replace(",BPFProgTypeXdp", "")).unwrap();
    let (code, out, _) = bpfcap(&["check", "--config", short.to_str().unwrap(), "--format", "json", obj]);
    assert_eq!(code, 1, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let help = doc["findings"][0]["help"].as_str().unwrap();
    assert_eq!(help, "add BPFProgTypeXdp to BPFDelegatePrograms=", "{out}");
}

/// `--version` names what the rules cover: kernels, loaders, systemd.
#[test]
fn version_names_what_the_rules_cover() {
    let (code, out, _) = bpfcap(&["--version"]);
    assert_eq!(code, 0);
    for want in ["bpfcap 0.", "Linux 6.9-6.18", "libbpf 1.5-1.8", "cilium/ebpf 0.22", "systemd 258+"] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

/// `--program` naming a program of only some objects says which objects it leaves empty.
#[test]
fn program_selection_names_the_objects_it_leaves_out() {
    let (code, out, err) =
        bpfcap(&["analyze", "--program", "xdp_pass_first", "testdata/xdp.bpf.o", "testdata/kprobe.bpf.o"]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.contains("--program xdp_pass_first selects nothing")).unwrap_or_default();
    assert!(line.contains("testdata/kprobe.bpf.o") && !line.contains("testdata/xdp.bpf.o"), "{out}");
}

/// One root cause, one finding, listed first: a lowercase systemd name is one systemd-case
/// finding (not missing-item too); a drop-in without PrivateBPF= says so first.
#[test]
fn root_causes_come_first_and_alone() {
    let dir = tempfile::tempdir().unwrap();
    let obj = "testdata/xdp.bpf.o";
    let (_, dropin, _) = bpfcap(&["emit", "--target", "systemd", obj]);
    let check = |name: &str, text: String| -> Vec<serde_json::Value> {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, out, _) = bpfcap(&["check", "--config", path.to_str().unwrap(), "--format", "json", obj]);
        assert_eq!(code, 1, "{name}: {out}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["findings"].as_array().unwrap().clone()
    };
    let f = check("case.conf", dropin.replace("BPFProgTypeXdp", "bpfprogtypexdp"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["code"], "systemd-case");
    let f = check("noprivate.conf", dropin.replace("PrivateBPF=yes", "PrivateBPF=no").replace("BPFProgTypeXdp", ""));
    assert_eq!(f[0]["code"], "systemd-no-private-bpf", "{f:?}");
    // a misspelt name: one finding, with the closest of systemd's names
    let f = check("close.conf", dropin.replace("BPFProgTypeXdp", "BPFProgTypeXpd"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["code"], "unknown-name");
    assert!(f[0]["help"].as_str().unwrap().starts_with("did you mean BPFProgTypeXdp?"), "{f:?}");
    // `any`: the help says what to grant in systemd's spelling
    let any = dropin
        .lines()
        .map(|l| if l.starts_with("BPFDelegatePrograms=") { "BPFDelegatePrograms=any" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("any.conf");
    std::fs::write(&path, any).unwrap();
    let (_, out, _) = bpfcap(&["check", "--config", path.to_str().unwrap(), "--format", "json", obj]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let any = doc["findings"].as_array().unwrap().iter().find(|f| f["code"] == "any-grant").unwrap().clone();
    assert_eq!(any["help"], "grant exactly: BPFProgTypeSocketFilter,BPFProgTypeXdp", "{any}");
}

/// An object read from standard input (`-`) gives the same answer as the file.
#[test]
fn objects_from_standard_input() {
    use std::io::Write as _;
    let obj = "testdata/kprobe.bpf.o";
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["emit", "--target", "mount-options", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(obj)).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let (_, from_file, _) = bpfcap(&["emit", "--target", "mount-options", obj]);
    let options = |t: &str| t.lines().filter(|l| l.starts_with("delegate_")).collect::<Vec<_>>().join("\n");
    assert_eq!(options(&String::from_utf8_lossy(&out.stdout)), options(&from_file));
}

/// `-q` prints the answer only; `--color never` and `--color always` are accepted everywhere.
#[test]
fn quiet_and_color() {
    let (code, out, _) = bpfcap(&["analyze", "-q", "testdata/xdp.bpf.o"]);
    assert_eq!(code, 0);
    assert!(out.contains("bpffs mount options:") && !out.contains("Warnings:") && !out.contains("next:"), "{out}");
    let (code, _, err) = bpfcap(&["--color", "never", "analyze", "testdata/no-such.o"]);
    assert_eq!(code, 2);
    assert!(!err.contains('\x1b'), "{err}");
    let (code, _, _) = bpfcap(&["analyze", "--color", "always", "testdata/xdp.bpf.o"]);
    assert_eq!(code, 0);
}

/// A unit and its drop-ins are checked together, in systemd's order whatever the order they
/// are given in: the unit, then the drop-ins by file name. A later BPFDelegate*= assignment
/// replaces an earlier one, and each finding names its own file and line.
#[test]
fn a_unit_and_its_drop_ins_are_checked_together() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let obj = "testdata/xdp.bpf.o";
    let (code, full, err) = bpfcap(&["emit", "--target", "systemd", obj]);
    assert_eq!(code, 0, "{err}");
    let setting = |key: &str| full.lines().find(|l| l.starts_with(&format!("{key}="))).unwrap().to_string();
    std::fs::create_dir_all(d.join("etc/app.service.d")).unwrap();
    std::fs::create_dir_all(d.join("run/app.service.d")).unwrap();
    // the unit grants nothing of the programs; 10-bpf.conf grants all; 20-narrow.conf, in
    // another directory, replaces the programs with xdp alone and misspells a key
    let unit = d.join("app.service");
    std::fs::write(&unit, "[Service]\nExecStart=/usr/bin/true\nBPFDelegatePrograms=\n").unwrap();
    let all: Vec<String> = full.lines().filter(|l| !l.starts_with('#')).map(String::from).collect();
    let bpf = d.join("etc/app.service.d/10-bpf.conf");
    std::fs::write(&bpf, all.join("\n") + "\n").unwrap();
    let narrow = d.join("run/app.service.d/20-narrow.conf");
    std::fs::write(&narrow, "[Service]\nBPFDelegatePrograms=BPFProgTypeXdp\nBPFDelegateMap=BPFMapTypeHash\n").unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let check = |files: &[&Path]| {
        let mut args = vec!["check".to_string(), "--format".into(), "json".into(), obj.into()];
        for f in files {
            args.extend(["--config".to_string(), path(f)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bpfcap(&args)
    };
    // without the narrowing drop-in the three are clean, in any order
    let (code, out, err) = check(&[&bpf, &unit]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["files"], serde_json::json!([path(&unit), path(&bpf)]), "{out}");
    // with it: the programs list is its one, and both findings point into it
    let (code, out, err) = check(&[&narrow, &unit, &bpf]);
    assert_eq!(code, 1, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["files"], serde_json::json!([path(&unit), path(&bpf), path(&narrow)]), "{out}");
    let findings: Vec<(String, String, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().into(), f["file"].as_str().unwrap().into(), f["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        findings,
        [("unknown-key".into(), path(&narrow), 3), ("missing-item".into(), path(&narrow), 2)],
        "{out}"
    );
    assert!(setting("BPFDelegatePrograms").contains("BPFProgTypeSocketFilter"), "{full}");
    assert!(out.contains("add BPFProgTypeSocketFilter to BPFDelegatePrograms="), "{out}");
    // the human report shows the drop-in's own lines, numbered as in that file
    let (_, human, _) = bpfcap(&["check", obj, "--config", &path(&unit), "--config", &path(&narrow)]);
    assert!(human.contains(&format!("[{}:3:1]", path(&narrow))), "{human}");
    // two drop-ins of one name (systemd reads one of them), and a file of another dialect,
    // are refused
    let twin = d.join("etc/app.service.d/20-narrow.conf");
    std::fs::write(&twin, "[Service]\n").unwrap();
    let (code, _, err) = check(&[&unit, &narrow, &twin]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("two drop-ins named 20-narrow.conf"), "{err}");
    let opts = d.join("bpffs.opts");
    std::fs::write(&opts, "delegate_cmds=prog_load\n").unwrap();
    let (code, _, err) = check(&[&unit, &opts]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("only as a systemd unit and its drop-ins"), "{err}");
}

/// The comment beside an item a loader step needs names that object's loader.
#[test]
fn emitted_reasons_name_the_loader_that_takes_the_step() {
    let cases = [
        ("cilium", "testdata/globals.bpf.o", "cilium/ebpf", "libbpf"),
        ("libbpf", "testdata/kfunc.bpf.o", "libbpf", "cilium/ebpf"),
    ];
    for (loader, object, title, other) in cases {
        let (code, out, err) = bpfcap(&["emit", "--target", "systemd", "--loader", loader, object]);
        assert_eq!(code, 0, "{err}");
        let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("# delegate_")).collect();
        assert!(steps.iter().any(|l| l.contains(&format!("({title} "))), "{loader}: {steps:?}");
        assert!(!steps.iter().any(|l| l.contains(&format!("({other} "))), "{loader}: {steps:?}");
    }
}
