//! `--jobs N`: run the stages a build needs, each as soon as the stages it uses are done,
//! at most N at once (0 = no limit, as in buildah).
//!
//! ```text
//! deps[i] (FROM <stage>, COPY --from, RUN --mount from=)   wanted[i] (the target needs it)
//!   workers (min(N, wanted) threads; with one, the caller's thread):
//!     lock ─> lowest-numbered wanted stage not started whose deps are all finished
//!         ─> run it unlocked ─> lock ─> finished (or: first failure recorded, stop set)
//!     nothing ready and nothing running (or a failure) ─> the worker ends
//! ```
//!
//! With one job the stages run in file order, exactly as a sequential build. A failure stops
//! new stages from starting and sets `stop`, which running stages check between steps; the
//! first failure (by time) is the build's error.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// The first stage that failed and its error.
#[derive(Debug)]
pub struct StageFailure<E> {
    /// The stage's index.
    pub stage: usize,
    /// Its error.
    pub error: E,
}

struct State<E> {
    started: Vec<bool>,
    finished: Vec<bool>,
    running: usize,
    failure: Option<StageFailure<E>>,
}

/// Run `run(i)` for every stage with `wanted[i]`, after every wanted stage in `deps[i]`
/// finished, with at most `jobs` running at once (0: no limit). Dependencies must point to
/// earlier stages (a Containerfile can only name those), so the plan has no cycles.
pub fn run_stages<E: Send>(
    deps: &[Vec<usize>],
    wanted: &[bool],
    jobs: usize,
    stop: &AtomicBool,
    run: &(dyn Fn(usize) -> Result<(), E> + Sync),
) -> Result<(), StageFailure<E>> {
    let n = wanted.len();
    let count = wanted.iter().filter(|w| **w).count();
    let workers = if jobs == 0 { count } else { jobs.min(count) };
    let state = Mutex::new(State {
        started: vec![false; n],
        finished: vec![false; n],
        running: 0,
        failure: None,
    });
    let cv = Condvar::new();
    let worker = || {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.failure.is_some() {
                break;
            }
            let next = (0..n).find(|&i| {
                wanted[i] && !st.started[i] && deps[i].iter().all(|&d| !wanted[d] || st.finished[d])
            });
            let Some(i) = next else {
                if st.running == 0 {
                    break;
                }
                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            st.started[i] = true;
            st.running += 1;
            drop(st);
            let r = run(i);
            st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.running -= 1;
            match r {
                Ok(()) => st.finished[i] = true,
                Err(error) => {
                    stop.store(true, Ordering::SeqCst);
                    if st.failure.is_none() {
                        st.failure = Some(StageFailure { stage: i, error });
                    }
                }
            }
            cv.notify_all();
        }
        // Whoever leaves wakes the others: they may be waiting for nothing now.
        cv.notify_all();
    };
    if workers <= 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(worker);
            }
        });
    }
    let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    match st.failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// (stage, started?) in the order they happened.
    type Events = Vec<(usize, bool)>;

    /// Records start/end order and the most stages running at once.
    fn trace(
        deps: &[Vec<usize>],
        wanted: &[bool],
        jobs: usize,
        fail: Option<usize>,
    ) -> (Events, usize, Result<(), StageFailure<String>>) {
        let events = Mutex::new(Vec::new());
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let r = run_stages(deps, wanted, jobs, &stop, &|i| {
            let c = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(c, Ordering::SeqCst);
            events.lock().unwrap().push((i, true));
            std::thread::sleep(Duration::from_millis(30));
            events.lock().unwrap().push((i, false));
            now.fetch_sub(1, Ordering::SeqCst);
            if fail == Some(i) {
                Err(format!("stage {i} failed"))
            } else {
                Ok(())
            }
        });
        (events.into_inner().unwrap(), peak.into_inner(), r)
    }

    fn pos(ev: &[(usize, bool)], e: (usize, bool)) -> usize {
        ev.iter().position(|x| *x == e).unwrap()
    }

    #[test]
    fn dependencies_finish_before_their_users_start() {
        // 0 and 1 independent; 2 uses both; 3 unused; 4 uses 2.
        let deps = vec![vec![], vec![], vec![0, 1], vec![], vec![2]];
        let wanted = [true, true, true, false, true];
        for jobs in [0, 1, 2, 3] {
            let (ev, peak, r) = trace(&deps, &wanted, jobs, None);
            assert!(r.is_ok());
            assert!(!ev.iter().any(|(i, _)| *i == 3), "jobs {jobs}: {ev:?}");
            for (i, ds) in deps.iter().enumerate().filter(|(i, _)| wanted[*i]) {
                for d in ds {
                    assert!(
                        pos(&ev, (*d, false)) < pos(&ev, (i, true)),
                        "jobs {jobs}: {d} must end before {i} starts: {ev:?}"
                    );
                }
            }
            let limit = if jobs == 0 { 4 } else { jobs };
            assert!(peak <= limit, "jobs {jobs}: peak {peak}");
            if jobs != 1 {
                // 0 and 1 overlap.
                assert_eq!(peak, 2, "jobs {jobs}: {ev:?}");
            } else {
                // One job: file order, one at a time.
                let starts: Vec<usize> = ev.iter().filter(|(_, s)| *s).map(|(i, _)| *i).collect();
                assert_eq!(starts, [0, 1, 2, 4]);
            }
        }
    }

    #[test]
    fn a_failure_stops_the_stages_after_it() {
        let deps = vec![vec![], vec![], vec![0, 1]];
        let (ev, _, r) = trace(&deps, &[true; 3], 2, Some(1));
        let f = r.unwrap_err();
        assert_eq!((f.stage, f.error.as_str()), (1, "stage 1 failed"));
        assert!(!ev.iter().any(|(i, _)| *i == 2), "{ev:?}");
    }
}
