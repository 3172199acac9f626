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
    /// The unit of `total` shown after the counts ("" for items, " MiB" for bytes).
    unit: &'static str,
    /// How many counted things make one shown (1, or 1 MiB of bytes).
    per_unit: usize,
    /// (done, started, shown, the bar last drawn: filled width and count shown)
    state: Mutex<(usize, Instant, bool, (usize, usize))>,
    enabled: bool,
}

impl Progress {
    /// Progress over `total` items.
    pub fn new(what: &'static str, total: usize) -> Progress {
        Progress::with_unit(what, total, "", 1)
    }

    /// Progress over `total` bytes (shown in MiB), moved on with [`Progress::set`].
    pub fn bytes(what: &'static str, total: u64) -> Progress {
        Progress::with_unit(what, usize::try_from(total).unwrap_or(usize::MAX), " MiB", 1 << 20)
    }

    fn with_unit(what: &'static str, total: usize, unit: &'static str, per_unit: usize) -> Progress {
        let enabled = total > 1 && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Progress { what, total, unit, per_unit, state: Mutex::new((0, Instant::now(), false, (0, 0))), enabled }
    }

    /// One more item done.
    pub fn tick(&self) {
        if self.enabled {
            let mut st = self.state.lock().expect("progress");
            st.0 += 1;
            self.draw(&mut st);
        }
    }

    /// `done` of the total done.
    pub fn set(&self, done: usize) {
        if self.enabled {
            let mut st = self.state.lock().expect("progress");
            st.0 = done.min(self.total);
            self.draw(&mut st);
        }
    }

    /// Draws the bar when it has changed (and the work has taken longer than a moment).
    fn draw(&self, st: &mut (usize, Instant, bool, (usize, usize))) {
        let width: usize = 30;
        let filled = (width as u128 * st.0 as u128 / self.total.max(1) as u128) as usize;
        let bar = (filled, st.0 / self.per_unit);
        if st.1.elapsed() < DELAY || (st.2 && bar == st.3) {
            return;
        }
        st.2 = true;
        st.3 = bar;
        let _ = write!(
            std::io::stderr(),
            "\r{} [{}{}] {}/{}{}",
            self.what,
            "#".repeat(bar.0),
            " ".repeat(width - bar.0),
            bar.1,
            self.total / self.per_unit,
            self.unit
        );
    }

    pub fn finish(&self) {
        if self.enabled && self.state.lock().expect("progress").2 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(60));
        }
    }
}
