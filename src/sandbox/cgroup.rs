//! A memory cgroup for one sandboxed run: created under the caller's own cgroup, limited to
//! the run's memory budget, removed after the run. BPF maps are charged to the memory cgroup
//! of the process that creates them, so a load that declares more than the budget fails
//! there (ENOMEM, or the cgroup's OOM killer) instead of taking the host's memory.
//!
//! cgroup v2 (`memory.max`, `memory.events`, `memory.peak`) where the caller's cgroup has the
//! memory controller, else cgroup v1's memory controller (`memory.limit_in_bytes`,
//! `memory.failcnt`, `memory.max_usage_in_bytes`), as machines with only v1 have it.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A memory cgroup made for one run; removed when dropped (it must be empty by then: the
/// run's processes reaped).
#[derive(Debug)]
pub struct MemoryCgroup {
    path: PathBuf,
    version: Version,
}

/// The mount point of the hierarchy whose super options (or type, for v2) match, from
/// /proc/self/mountinfo.
fn mount_point(v2: bool) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split_whitespace();
        let fstype = post.next()?;
        let _source = post.next();
        let super_opts = post.next().unwrap_or("");
        let target = pre.split_whitespace().nth(4)?;
        let found =
            if v2 { fstype == "cgroup2" } else { fstype == "cgroup" && super_opts.split(',').any(|o| o == "memory") };
        found.then(|| PathBuf::from(target))
    })
}

/// This process's cgroup path in the v1 memory hierarchy (`Some(false)`) or in v2
/// (`Some(true)`), from /proc/self/cgroup.
fn own_path(v2: bool) -> Option<String> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_id, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let found = if v2 { controllers.is_empty() } else { controllers.split(',').any(|c| c == "memory") };
        found.then(|| path.to_string())
    })
}

fn join(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

impl MemoryCgroup {
    /// A new cgroup named `name` under this process's own, limited to `limit` bytes; None
    /// when this machine has no memory controller this process can use (the run then goes
    /// on without one: the maps' declared sizes were checked before it).
    pub fn create(name: &str, limit: u64) -> io::Result<Option<MemoryCgroup>> {
        // v2 where the memory controller is enabled for the caller's children
        if let (Some(mount), Some(own)) = (mount_point(true), own_path(true)) {
            let parent = join(&mount, &own);
            let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
            if enabled.split_whitespace().any(|c| c == "memory") {
                let path = parent.join(name);
                std::fs::create_dir(&path)?;
                let cg = MemoryCgroup { path, version: Version::V2 };
                std::fs::write(cg.path.join("memory.max"), limit.to_string())?;
                // (no swap: the budget is memory)
                let _ = std::fs::write(cg.path.join("memory.swap.max"), "0");
                return Ok(Some(cg));
            }
        }
        if let (Some(mount), Some(own)) = (mount_point(false), own_path(false)) {
            let path = join(&mount, &own).join(name);
            std::fs::create_dir(&path)?;
            let cg = MemoryCgroup { path, version: Version::V1 };
            std::fs::write(cg.path.join("memory.limit_in_bytes"), limit.to_string())?;
            return Ok(Some(cg));
        }
        Ok(None)
    }

    /// Moves process `pid` (and the children it makes from then on) into the cgroup.
    pub fn add(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// Whether the run hit the limit (an allocation refused, or the OOM killer).
    pub fn limit_hit(&self) -> bool {
        let read = |f: &str| std::fs::read_to_string(self.path.join(f)).unwrap_or_default();
        match self.version {
            Version::V1 => read("memory.failcnt").trim().parse::<u64>().unwrap_or(0) > 0,
            Version::V2 => read("memory.events").lines().any(|l| {
                let mut f = l.split_whitespace();
                matches!(f.next(), Some("max" | "oom" | "oom_kill")) && f.next().is_some_and(|n| n != "0")
            }),
        }
    }

    /// The most memory the run used, in bytes, where the kernel says.
    pub fn peak(&self) -> Option<u64> {
        let file = if self.version == Version::V1 { "memory.max_usage_in_bytes" } else { "memory.peak" };
        std::fs::read_to_string(self.path.join(file)).ok()?.trim().parse().ok()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // (empty once the run's processes are reaped; a v1 cgroup may need a moment for its
        // last charges to drain, which rmdir does not wait for)
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
