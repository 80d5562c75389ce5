//! Process plumbing: fork in the single-threaded helper, spawning a helper with inherited
//! descriptors at fixed numbers, signal forwarding, controlling terminals, loopback.
#![allow(unsafe_code)] // fork, exec-time fd setup, signal and terminal calls: each block has a `// SAFETY:` line
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::{ForkResult, Pid};

/// Fork. Only for the re-exec'd helpers, which are single-threaded.
pub fn fork() -> io::Result<ForkResult> {
    // SAFETY: the helpers that call this run single-threaded (dispatch() runs before `main`
    // creates any thread), so the child's copy of the address space holds no lock owned by
    // another thread; the child only makes syscalls and then execs or exits.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Arrange for `fds[i].0` to be descriptor `fds[i].1` in the spawned process (not close-on-exec).
pub fn inherit_fds(cmd: &mut Command, fds: Vec<(OwnedFd, RawFd)>) {
    let pairs: Vec<(RawFd, RawFd)> = fds.iter().map(|(fd, to)| (fd.as_raw_fd(), *to)).collect();
    // Keep the descriptors open until the command is spawned; the closure owns them.
    let keep = fds;
    // SAFETY: the closure runs between fork and exec in the child; it only calls dup2/fcntl,
    // which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let _ = &keep;
            for (from, to) in &pairs {
                if from == to {
                    let flags = libc::fcntl(*from, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(*from, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(*from, *to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Processes signals are forwarded to (0 = free slot): several runs may be in flight at once
/// (parallel RUN steps in threads), each registers its helper here.
static FORWARD_TO: [AtomicI32; 32] = [const { AtomicI32::new(0) }; 32];
/// The dispositions in place before the first forwarder, restored after the last.
static SAVED: std::sync::Mutex<(usize, Vec<(Signal, signal::SigAction)>)> =
    std::sync::Mutex::new((0, Vec::new()));
/// The pty master hod relays, or -1: SIGWINCH then resizes it instead of being forwarded.
static RESIZE_MASTER: AtomicI32 = AtomicI32::new(-1);

/// While a terminal is relayed, hod's window-size changes are copied to `master` (the kernel
/// then signals the container's foreground process group itself). `None` stops it.
pub fn resize_on_winch(master: Option<BorrowedFd<'_>>) {
    RESIZE_MASTER.store(
        master.map(|m| m.as_raw_fd()).unwrap_or(-1),
        Ordering::SeqCst,
    );
}

/// How long a container has to stop once hod is asked to stop (SIGHUP, SIGINT or SIGTERM,
/// forwarded to it) before it is killed: `podman stop`'s default. A second request kills it
/// at once.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Stop requests (SIGHUP, SIGINT, SIGTERM) received while a forwarder was installed.
static STOPS: AtomicUsize = AtomicUsize::new(0);
/// Set in the container's init: [`kill_request`] then becomes SIGKILL for the container's
/// process instead of being passed on.
static LAST_HOP: AtomicBool = AtomicBool::new(false);

/// The signal that asks the next process down the chain (the runtime helper, then the
/// container's init) to kill the container's process: a real-time signal no program is
/// sent by hod otherwise.
pub fn kill_request() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

/// Send [`kill_request`] to `pid` (the runtime helper).
pub fn send_kill_request(pid: Pid) {
    // SAFETY: kill(2) with a valid signal number; it touches no memory of ours.
    unsafe {
        libc::kill(pid.as_raw(), kill_request());
    }
}

extern "C" fn forward(sig: libc::c_int) {
    if matches!(sig, libc::SIGHUP | libc::SIGINT | libc::SIGTERM) {
        STOPS.fetch_add(1, Ordering::SeqCst);
    }
    let out = if sig == kill_request() && LAST_HOP.load(Ordering::Relaxed) {
        libc::SIGKILL
    } else {
        sig
    };
    let master = RESIZE_MASTER.load(Ordering::Relaxed);
    if sig == libc::SIGWINCH && master >= 0 {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ioctl is async-signal-safe; TIOCGWINSZ writes one winsize into `ws` and
        // TIOCSWINSZ reads it; `master` stays open while it is registered.
        unsafe {
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) == 0 {
                libc::ioctl(master, libc::TIOCSWINSZ, &ws as *const libc::winsize);
            }
        }
        return;
    }
    for slot in &FORWARD_TO {
        let pid = slot.load(Ordering::Relaxed);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; it touches no memory of ours.
            unsafe {
                libc::kill(pid, out);
            }
        }
    }
}

/// The signals hod forwards to the container.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGWINCH,
    Signal::SIGPWR,
    Signal::SIGPIPE,
];

/// Signal forwarding to one process, undone on drop.
pub struct Forwarder {
    slot: Option<usize>,
}

impl Forwarder {
    /// In the container's init: forward [`FORWARDED`] to the container's process `pid`,
    /// and kill it on [`kill_request`].
    pub fn last_hop(pid: Pid) -> io::Result<Forwarder> {
        LAST_HOP.store(true, Ordering::SeqCst);
        Forwarder::to(pid)
    }

    /// Forward [`FORWARDED`] and [`kill_request`] to `pid` until dropped.
    pub fn to(pid: Pid) -> io::Result<Forwarder> {
        let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
        if saved.0 == 0 {
            let action = signal::SigAction::new(
                SigHandler::Handler(forward),
                signal::SaFlags::SA_RESTART,
                signal::SigSet::empty(),
            );
            let mut old = Vec::new();
            for s in FORWARDED {
                // SAFETY: the handler only reads atomics and calls kill(2)/ioctl(2), all
                // async-signal-safe.
                let prev = unsafe { signal::sigaction(*s, &action) }.map_err(io::Error::from)?;
                old.push((*s, prev));
            }
            saved.1 = old;
            // SAFETY: as above; the real-time signal has no nix `Signal`, hence libc. The
            // previous disposition is restored with the others.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                let prev = SAVED_KILL_REQUEST.as_ptr();
                if libc::sigaction(kill_request(), &sa, prev) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        saved.0 += 1;
        let slot = FORWARD_TO.iter().position(|s| {
            s.compare_exchange(0, pid.as_raw(), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        if slot.is_none() {
            tracing::debug!(
                "more than {} concurrent runs: signals are not forwarded to {pid}",
                FORWARD_TO.len()
            );
        }
        Ok(Forwarder { slot })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            FORWARD_TO[i].store(0, Ordering::SeqCst);
        }
        let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
        saved.0 -= 1;
        if saved.0 == 0 {
            for (s, prev) in saved.1.drain(..) {
                // SAFETY: restores the disposition that was installed before.
                let _ = unsafe { signal::sigaction(s, &prev) };
            }
            // SAFETY: restores what the first forwarder saved (under the same lock).
            unsafe {
                libc::sigaction(
                    kill_request(),
                    SAVED_KILL_REQUEST.as_ptr(),
                    std::ptr::null_mut(),
                );
            }
        }
    }
}

/// The disposition of [`kill_request`] before the first forwarder (guarded by `SAVED`).
static SAVED_KILL_REQUEST: SavedAction = SavedAction(std::cell::UnsafeCell::new(
    // SAFETY: an all-zero sigaction is SIG_DFL with no flags and an empty mask.
    unsafe { std::mem::zeroed() },
));
struct SavedAction(std::cell::UnsafeCell<libc::sigaction>);
// SAFETY: only read and written while `SAVED`'s lock is held.
unsafe impl Sync for SavedAction {}
impl SavedAction {
    fn as_ptr(&self) -> *mut libc::sigaction {
        self.0.get()
    }
}

/// Kills a running container once hod has been asked to stop and the container has not
/// ended within [`STOP_GRACE`] (at once on a second request): the stop signal itself is
/// forwarded, and a container's PID 1 ignores the ones it has no handler for (`RUN sleep`
/// under runc). Ends when dropped.
pub struct StopWatch {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StopWatch {
    /// Watch for stop requests from now on; `kill` ends the container.
    pub fn new(kill: impl FnOnce() + Send + 'static) -> io::Result<StopWatch> {
        let done = Arc::new(AtomicBool::new(false));
        let base = STOPS.load(Ordering::SeqCst);
        let thread = std::thread::Builder::new()
            .name("hod-stopwatch".into())
            .spawn({
                let done = Arc::clone(&done);
                move || {
                    let mut first: Option<Instant> = None;
                    while !done.load(Ordering::SeqCst) {
                        let n = STOPS.load(Ordering::SeqCst).saturating_sub(base);
                        if n >= 1 {
                            let t = *first.get_or_insert_with(Instant::now);
                            if n >= 2 || t.elapsed() >= STOP_GRACE {
                                kill();
                                return;
                            }
                        }
                        std::thread::park_timeout(Duration::from_millis(50));
                    }
                }
            })?;
        Ok(StopWatch {
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Reset every catchable signal to its default disposition and unblock all signals
/// (before exec in the container).
pub fn reset_signals() {
    for s in Signal::iterator() {
        if s == Signal::SIGKILL || s == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound.
        let _ = unsafe { signal::signal(s, SigHandler::SigDfl) };
    }
    let _ = signal::sigprocmask(
        signal::SigmaskHow::SIG_SETMASK,
        Some(&signal::SigSet::empty()),
        None,
    );
}

/// Make the terminal on `fd` this session's controlling terminal.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value; no memory is passed.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The window size of the terminal on `fd`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to, properly sized struct.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ws)
}

/// Set the window size of the terminal on `fd`.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointed-to struct.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bring the loopback interface up (in a fresh network namespace it starts down).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket(2) call; the returned descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut req as *mut libc::ifreq,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the flags member of the union is the one SIOCGIFFLAGS filled in.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads `req`.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &req as *const libc::ifreq,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every descriptor from `first` up, except those in `keep`.
pub fn close_fds_from(first: RawFd, keep: &[RawFd]) {
    let mut fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => (first..1024).collect(),
    };
    fds.sort();
    for fd in fds {
        if fd >= first && !keep.contains(&fd) {
            // SAFETY: we close descriptors this single-threaded helper does not use any more;
            // nothing else owns them (the read_dir handle is closed already).
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// Mark a descriptor close-on-exec.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer descriptor; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Take ownership of an inherited descriptor by number.
pub fn take_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only checks that the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open and was handed to this process for its exclusive use
    // (by `inherit_fds` in the parent); nothing else in this process refers to it.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Exit immediately (no destructors, no atexit handlers): for forked children.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always sound; it never returns.
    unsafe { libc::_exit(code) }
}

/// Resource usage of this process's waited-for children (`getrusage(RUSAGE_CHILDREN)`),
/// the counters buildah's `--log-rusage` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildrenUsage {
    /// User CPU time.
    pub user: std::time::Duration,
    /// System CPU time.
    pub system: std::time::Duration,
    /// Blocks read (512 bytes each).
    pub in_blocks: i64,
    /// Blocks written (512 bytes each).
    pub out_blocks: i64,
}

/// The current [`ChildrenUsage`].
pub fn children_usage() -> std::io::Result<ChildrenUsage> {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(std::io::Error::from)?;
    let d = |t: nix::sys::time::TimeVal| {
        std::time::Duration::from_secs(t.tv_sec().max(0) as u64)
            + std::time::Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(ChildrenUsage {
        user: d(u.user_time()),
        system: d(u.system_time()),
        in_blocks: u.block_reads(),
        out_blocks: u.block_writes(),
    })
}
