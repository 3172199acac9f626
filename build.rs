//! The rules (rules/**/*.toml, the readable source) are turned into JSON at build time: the
//! binary parses that in well under a millisecond, where the TOML parser took about 4 ms at
//! every start. Same data, same serde types; a rules file that does not parse fails the build.

use std::path::PathBuf;

/// Every rules file the binary includes (src/rules.rs names them the same way).
const RULES: [&str; 12] = [
    "kernel/enums.toml",
    "sections.toml",
    "kernel/privileges.toml",
    "kernel/helper-availability.toml",
    "loader/libbpf.toml",
    "kernel/capabilities.toml",
    "kernel/versions.toml",
    "kernel/map-memory.toml",
    "dialects/systemd.toml",
    "dialects/systemd-keys.toml",
    "dialects/incus.toml",
    "dialects/lxd.toml",
];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in RULES {
        let path = PathBuf::from("rules").join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{} is invalid: {e}", path.display()));
        let json = serde_json::to_string(&value).expect("TOML values are JSON values");
        let name = file.replace('/', "__").replace(".toml", ".json");
        std::fs::write(out.join(name), json).expect("write to OUT_DIR");
    }
}
