//! Work spread over the available cores: one worker thread per core, each started on a core
//! of its own.
//!
//! Linux places new threads near the thread that made them, and balances them across cores
//! only later: on this project's 2-core machines, both workers of a short analysis often ran
//! on one core for many milliseconds, so an analysis of a hundred objects sometimes took as
//! long on two cores as on one (bpfcap analyze: 8 ms or 14 ms, run to run). Each worker
//! therefore moves itself to a core of its own as it starts, and then lets the scheduler move
//! it again as it sees fit.

/// How many workers `count` items can use: the cores this process may run on, at most one
/// per item. (`available_parallelism` reads cgroup files: it is only asked when there is a
/// choice.)
pub fn workers_for(count: usize) -> usize {
    if count > 1 { std::thread::available_parallelism().map(|x| x.get()).unwrap_or(1).min(count) } else { 1 }
}

/// Runs `work` on `workers` threads (on the calling thread when there is one), each started on
/// a different core the process may use, and returns when all of them have.
pub fn run(workers: usize, work: impl Fn() + Sync) {
    if workers <= 1 {
        work();
        return;
    }
    let cores = allowed_cores();
    std::thread::scope(|s| {
        for k in 0..workers {
            let work = &work;
            let cores = &cores;
            s.spawn(move || {
                if let Some((allowed, list)) = cores {
                    start_on(list[k % list.len()], allowed);
                }
                work()
            });
        }
    });
}

/// `f` of every item, on as many workers as the items can use, in the items' order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    run(workers_for(items.len()), || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let r = f(item);
            done.lock().expect("results").push((i, r));
        }
    });
    let mut done = done.into_inner().expect("results");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `f` of every item, each taken by value, on as many workers as the items can use, in the
/// items' order.
pub fn map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let items = TakeOnce::new(items);
    let indices: Vec<usize> = (0..items.len()).collect();
    map(&indices, |&i| f(items.take(i)))
}

/// Items that workers take by value, each once, by index.
pub struct TakeOnce<T>(Vec<std::sync::Mutex<Option<T>>>);

impl<T> TakeOnce<T> {
    pub fn new(items: Vec<T>) -> Self {
        TakeOnce(items.into_iter().map(|i| std::sync::Mutex::new(Some(i))).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Item `i`. Panics when it was taken already.
    pub fn take(&self, i: usize) -> T {
        self.0[i].lock().expect("item").take().expect("each item is taken once")
    }
}

/// The cores this process may run on: the affinity mask and its cores in order. None when it
/// cannot be read.
fn allowed_cores() -> Option<(libc::cpu_set_t, Vec<usize>)> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return None;
    }
    let list: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|c| unsafe { libc::CPU_ISSET(*c, &set) }).collect();
    if list.is_empty() { None } else { Some((set, list)) }
}

/// Moves the calling thread to `core` (the kernel migrates it before the call returns), then
/// allows it every core of `allowed` again. Failures leave the thread where the scheduler put
/// it: placement is an optimisation only. Returns the core the thread was on while it was
/// held to `core` (None: it could not be moved).
fn start_on(core: usize, allowed: &libc::cpu_set_t) -> Option<usize> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it (core < CPU_SETSIZE: it was
    // read from such a set); sched_setaffinity(0, ..) affects the calling thread only.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return None;
        }
        let on = usize::try_from(libc::sched_getcpu()).ok();
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), allowed);
        on
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn items_by_value_and_in_place_keep_their_order() {
        let items: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let lens = map_owned(items.clone(), |s| s.len());
        assert_eq!(lens, items.iter().map(|s| s.len()).collect::<Vec<_>>());
        // (items borrowed mutably, changed in place)
        let mut changed = items.clone();
        map_owned(changed.iter_mut().collect(), |s: &mut String| s.push('!'));
        assert_eq!(changed, items.iter().map(|s| format!("{s}!")).collect::<Vec<_>>());
        assert!(map_owned(Vec::<u8>::new(), |x| x).is_empty());
    }

    #[test]
    fn every_worker_runs_once_and_one_worker_is_the_caller() {
        let caller = std::thread::current().id();
        for n in [1, 2, 5] {
            let ran = Mutex::new(Vec::new());
            run(n, || ran.lock().unwrap().push(std::thread::current().id()));
            let ran = ran.into_inner().unwrap();
            assert_eq!(ran.len(), n);
            assert_eq!(ran.iter().all(|t| *t == caller), n == 1, "{n} workers: {ran:?}");
        }
    }

    #[test]
    fn workers_start_on_cores_of_their_own() {
        let Some((allowed, cores)) = allowed_cores() else { panic!("sched_getaffinity failed") };
        // Each worker is held to its core as it starts: on that core then, whatever the
        // scheduler does with it afterwards (which the test cannot see without a race).
        let seen = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for core in &cores {
                let (seen, allowed) = (&seen, &allowed);
                s.spawn(move || seen.lock().unwrap().push((*core, start_on(*core, allowed))));
            }
        });
        for (core, on) in seen.into_inner().unwrap() {
            assert_eq!(on, Some(core), "a worker held to core {core}");
        }
    }
}
