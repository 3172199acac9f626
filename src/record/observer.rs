//! The observer: bpf/token_checks.bpf.c, compiled into bpfcap, attached (as host root) to the
//! raw sys_enter and sys_exit tracepoints for as long as a recording runs. It counts the bpf()
//! calls made outside the initial user namespace with what the kernel's token checks look at
//! (the command, map type, program type and expected attach type, whether a token came with
//! the call) and how each ended, keyed by the caller's user namespace; [`Observer::take`] reads
//! and deletes the counts of one sandbox's user namespace. Dropping the observer detaches and
//! unloads it.

use std::collections::BTreeMap;

use libbpf_rs::{Link, MapCore, Object, ObjectBuilder};

/// The observer's object, built by bpf-samples/build.sh beside its source.
const OBJECT: &[u8] = include_bytes!("../../bpf/token_checks.bpf.o");

/// Calls of one kind, as often as they were made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// `enum bpf_cmd`.
    pub cmd: u32,
    /// map_create: the map type; prog_load: the program type; else 0.
    pub kind: u32,
    /// prog_load: the expected attach type as the caller passed it; else 0.
    pub attach: u32,
    /// The call carried a token (BPF_F_TOKEN_FD), or created one.
    pub token: bool,
    /// A capability checked during the call against a user namespace other than the initial
    /// one; `None`: the call itself.
    pub cap: Option<u32>,
    /// 0 on success (the capability held), else the errno.
    pub errno: i32,
    /// The name of the thread that called.
    pub process: String,
    pub count: u64,
}

/// The layout of the `calls` map's key (struct call_key): six u32, an i32, a 16-byte name.
const KEY_SIZE: usize = 7 * 4 + 16;
/// `NO_CAP` of token_checks.bpf.c.
const NO_CAP: u32 = u32::MAX;
/// The program that observes capability checks: optional (Linux 6.14+).
const CAPABLE_PROGRAM: &str = "capable";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ObserverError {
    #[error("cannot {step} the observer of bpf() calls: {source}")]
    #[diagnostic(
        code(bpfcap::record::observer),
        help(
            "record traces the raw sys_enter and sys_exit tracepoints with a BPF program: it needs \
             root and a kernel with BTF (/sys/kernel/btf/vmlinux) and BTF-enabled raw tracepoints"
        )
    )]
    Setup {
        step: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
}

/// The attached observer.
pub struct Observer {
    // (links before the object: they are dropped, detaching, before it is unloaded)
    _links: Vec<Link>,
    object: Object,
    /// Whether capability checks are observed (the kernel has the cap_capable tracepoint).
    pub capabilities: bool,
}

impl Observer {
    /// Loads the observer and attaches each of its programs; without the capability program
    /// when the kernel has no cap_capable tracepoint.
    pub fn attach() -> Result<Observer, ObserverError> {
        match Observer::attach_with(true) {
            Ok(o) => Ok(o),
            Err(_) => Observer::attach_with(false),
        }
    }

    fn attach_with(capabilities: bool) -> Result<Observer, ObserverError> {
        let setup = |step| move |source| ObserverError::Setup { step, source };
        let mut open = ObjectBuilder::default().open_memory(OBJECT).map_err(setup("open"))?;
        for mut prog in open.progs_mut() {
            if prog.name() == CAPABLE_PROGRAM {
                prog.set_autoload(capabilities);
            }
        }
        let object = open.load().map_err(setup("load"))?;
        let mut links = Vec::new();
        for prog in object.progs_mut() {
            if prog.name() == CAPABLE_PROGRAM && !capabilities {
                continue;
            }
            links.push(prog.attach().map_err(setup("attach"))?);
        }
        Ok(Observer { _links: links, object, capabilities })
    }

    /// Takes the counts of the calls made from the user namespace `userns`, merged by
    /// everything but the count, in a stable order. Every other namespace's counts (other
    /// containers' calls during the run) are deleted with them, so that the map, which is
    /// bounded, holds one run's calls at a time.
    pub fn take(&self, userns: u64) -> Vec<Call> {
        let Some(map) = self.object.maps().find(|m| m.name() == "calls") else { return Vec::new() };
        let keys: Vec<Vec<u8>> = map.keys().collect();
        let mut merged: BTreeMap<Call, u64> = BTreeMap::new();
        for key in keys {
            let value = map.lookup_and_delete(&key);
            if key.len() != KEY_SIZE || u64::from(u32_at(&key, 0)) != userns {
                continue;
            }
            let count = match value {
                Ok(Some(v)) if v.len() == 8 => u64::from_ne_bytes(v[..8].try_into().expect("8 bytes")),
                _ => continue,
            };
            let comm = &key[28..44];
            let comm = &comm[..comm.iter().position(|b| *b == 0).unwrap_or(comm.len())];
            let call = Call {
                cmd: u32_at(&key, 4),
                kind: u32_at(&key, 8),
                attach: u32_at(&key, 12),
                token: u32_at(&key, 16) != 0,
                cap: Some(u32_at(&key, 20)).filter(|c| *c != NO_CAP),
                errno: -(u32_at(&key, 24) as i32),
                process: String::from_utf8_lossy(comm).into_owned(),
                count: 0,
            };
            *merged.entry(call).or_default() += count;
        }
        merged.into_iter().map(|(c, count)| Call { count, ..c }).collect()
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}
