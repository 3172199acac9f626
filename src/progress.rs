//! A progress line on standard error, only when it is a terminal and the work takes longer
//! than a moment; nothing at all in pipes and CI logs.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shown only after this long.
const DELAY: Duration = Duration::from_millis(700);

pub struct Progress {
    what: &'static str,
    total: usize,
    state: Mutex<(usize, Instant, bool)>,
    enabled: bool,
}

impl Progress {
    pub fn new(what: &'static str, total: usize) -> Progress {
        let enabled = total > 1 && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Progress { what, total, state: Mutex::new((0, Instant::now(), false)), enabled }
    }

    pub fn tick(&self) {
        if !self.enabled {
            return;
        }
        let mut st = self.state.lock().expect("progress");
        st.0 += 1;
        if st.1.elapsed() >= DELAY {
            st.2 = true;
            let width = 30;
            let filled = width * st.0 / self.total.max(1);
            let _ = write!(
                std::io::stderr(),
                "\r{} [{}{}] {}/{}",
                self.what,
                "#".repeat(filled),
                " ".repeat(width - filled),
                st.0,
                self.total
            );
        }
    }

    pub fn finish(&self) {
        if self.enabled && self.state.lock().expect("progress").2 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(60));
        }
    }
}
