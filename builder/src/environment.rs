//! What the environment hod runs in allows, and what hod falls back to where it does not
//! allow the defaults: a Kubernetes pod without CAP_SYS_ADMIN and without user namespaces
//! cannot mount (no overlay, no mount namespace for a RUN); a pod with user namespaces
//! (`hostUsers: false`) is root in a namespace of its own, where the kernel may or may not
//! allow overlay and nested namespaces.
//!
//! ```text
//! Environment::get() (once per process)
//!   ├─ CapEff has CAP_SYS_ADMIN?              /proc/self/status
//!   ├─ which user namespace, how many IDs?    /proc/self/{uid,gid}_map
//!   └─ can a user namespace be created?       probe helper (only without CAP_SYS_ADMIN)
//!        │
//!        ├─> default_isolation(): oci, else chroot          (from, bud, run)
//!        ├─> chroot_setup(): mount ns | user ns | bare chroot (the embedded runtime)
//!        └─> adapt_store(store options, explicit?) ─> (the options to open the store
//!             with, Fallbacks (Display: the one line the CLI prints)); driver: vfs where
//!             overlay cannot work (probed in a user namespace)
//! ```
//!
//! Choices given explicitly (`--storage-driver`, `STORAGE_DRIVER`, `--isolation`,
//! `BUILDAH_ISOLATION`) are kept: they fail later with the kernel's reason if the
//! environment cannot honour them. Only the defaults fall back.
use std::path::Path;
use std::sync::OnceLock;

use crate::run::{IdMap, Isolation};
use crate::store::driver::DriverOptions;
use crate::store::{DriverKind, StoreOptions};

/// The user namespace hod runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNamespace {
    /// The host's (initial) namespace: every ID is mapped to itself.
    Initial,
    /// A namespace of its own (a pod with `hostUsers: false`, a rootless user's namespace):
    /// how many UIDs and GIDs its maps cover.
    Mapped {
        /// Mapped UIDs.
        uids: u64,
        /// Mapped GIDs.
        gids: u64,
    },
}

impl UserNamespace {
    /// Only one UID or one GID is mapped (`unshare --map-root-user`, a user without
    /// subordinate IDs): files cannot be given to any other owner.
    pub fn single_id(&self) -> bool {
        matches!(self, UserNamespace::Mapped { uids, gids } if *uids <= 1 || *gids <= 1)
    }
}

/// How the embedded runtime sets up `chroot` isolation here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChrootSetup {
    /// A mount and UTS namespace of its own, the host's /dev, /proc and /sys bound in.
    MountNamespace,
    /// The same inside a new user namespace with an identity map (no CAP_SYS_ADMIN, but
    /// user namespaces are allowed).
    UserNamespace,
    /// chroot(2) alone: no namespace, no mount (no CAP_SYS_ADMIN and no user namespaces).
    /// /etc/hosts, /etc/resolv.conf, /etc/hostname and basic /dev nodes are put into the
    /// rootfs for the run and taken out after it; there is no /proc or /sys, and `--volume`
    /// and `--mount` are refused.
    Bare,
}

/// What this process may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// CAP_SYS_ADMIN in the effective set (in hod's own user namespace).
    pub sys_admin: bool,
    /// The user namespace hod is in.
    pub user_namespace: UserNamespace,
    /// A new user namespace can be created (probed only without CAP_SYS_ADMIN; assumed
    /// with it).
    pub new_user_namespace: bool,
}

static ENV: OnceLock<Environment> = OnceLock::new();

impl Environment {
    /// The environment of this process, probed on first use.
    pub fn get() -> &'static Environment {
        ENV.get_or_init(Environment::probe)
    }

    fn probe() -> Environment {
        let sys_admin = crate::sys::caps::have_effective("CAP_SYS_ADMIN");
        let read = |f: &str| std::fs::read_to_string(Path::new("/proc/self").join(f)).ok();
        let user_namespace = match (read("uid_map"), read("gid_map")) {
            (Some(u), Some(g)) if !is_initial_map(&u) => UserNamespace::Mapped {
                uids: mapped_count(&u),
                gids: mapped_count(&g),
            },
            _ => UserNamespace::Initial,
        };
        let new_user_namespace =
            sys_admin || crate::sys::probe::try_probe(&[std::ffi::OsStr::new("userns")]);
        let env = Environment {
            sys_admin,
            user_namespace,
            new_user_namespace,
        };
        tracing::debug!("environment: {env:?}");
        env
    }

    /// The isolation a RUN gets when nothing asks for one: OCI where namespaces can be
    /// created, else chroot.
    pub fn default_isolation(&self) -> Isolation {
        if self.sys_admin {
            Isolation::Oci
        } else {
            Isolation::Chroot
        }
    }

    /// Files can be given any owner: not in a user namespace with only one ID mapped. Where
    /// they cannot, layers and copies keep root as the owner (containers/storage's
    /// `ignore_chown_errors`) and a RUN as another user runs in a nested user namespace
    /// where that user is hod's one ID.
    pub fn keeps_owners(&self) -> bool {
        !self.user_namespace.single_id()
    }

    /// How `chroot` isolation is set up here.
    pub fn chroot_setup(&self) -> ChrootSetup {
        if self.sys_admin {
            ChrootSetup::MountNamespace
        } else if self.new_user_namespace {
            ChrootSetup::UserNamespace
        } else {
            ChrootSetup::Bare
        }
    }

    /// Whether the overlay driver can work here, for a store whose overlay home is
    /// `home` and whose layers are mounted with `mount_options` (the driver's
    /// [`crate::store::driver::overlay::extra_mount_data`]): with CAP_SYS_ADMIN in the host's user
    /// namespace, or with a FUSE `mount_program`, it is assumed; in a user namespace of its
    /// own, an overlay is mounted and written in a probe; without CAP_SYS_ADMIN, no.
    pub fn overlay_works(&self, home: &Path, mount_options: &[String], fuse: bool) -> bool {
        if fuse {
            return true;
        }
        if !self.sys_admin {
            return false;
        }
        if self.user_namespace == UserNamespace::Initial {
            return true;
        }
        // The probe needs a directory on the store's filesystem.
        let mut dir = home;
        while !dir.is_dir() {
            match dir.parent() {
                Some(p) => dir = p,
                None => return false,
            }
        }
        crate::sys::probe::try_probe(&[
            std::ffi::OsStr::new("overlay"),
            dir.as_os_str(),
            std::ffi::OsStr::new(&mount_options.join(",")),
        ])
    }

    /// What hod falls back to for a store that would use `driver` (`explicit`: the user
    /// chose it with `--storage-driver` or `STORAGE_DRIVER`, which is then kept) under
    /// `root`, and for RUN's isolation when `BUILDAH_ISOLATION` does not say.
    pub fn fallbacks(
        &self,
        driver: DriverKind,
        explicit: bool,
        root: &Path,
        mount_options: &[String],
        fuse: bool,
    ) -> Fallbacks {
        let driver = (driver == DriverKind::Overlay
            && !explicit
            && !self.overlay_works(&root.join("overlay"), mount_options, fuse))
        .then_some(DriverKind::Vfs);
        let isolation_env = std::env::var("BUILDAH_ISOLATION")
            .ok()
            .and_then(|v| Isolation::parse(&v).ok());
        let isolation = match isolation_env {
            None if self.default_isolation() != Isolation::Oci => Some(self.default_isolation()),
            _ => None,
        };
        let effective = isolation_env.or(isolation);
        Fallbacks {
            sys_admin: self.sys_admin,
            user_namespace: self.user_namespace.clone(),
            new_user_namespace: self.new_user_namespace,
            driver,
            isolation,
            bare_chroot: effective == Some(Isolation::Chroot)
                && self.chroot_setup() == ChrootSetup::Bare,
            // A rootless user's one-ID namespace was announced at start (sys::userns).
            owners_lost: !self.keeps_owners() && !crate::sys::userns::identity().is_rootless(),
        }
    }

    /// The store options to open a store with here, and what fell back: `opts` with vfs
    /// instead of overlay where overlay cannot work (and the driver was not `explicit`ly
    /// chosen; overlay's options are dropped with it).
    pub fn adapt_store(&self, opts: &StoreOptions, explicit: bool) -> (StoreOptions, Fallbacks) {
        let d = DriverOptions::parse(opts.driver, &opts.driver_options).unwrap_or_default();
        let fb = self.fallbacks(
            opts.driver,
            explicit,
            &opts.root,
            &crate::store::driver::overlay::extra_mount_data(&d),
            d.mount_program.is_some(),
        );
        let mut o = opts.clone();
        if let Some(driver) = fb.driver.filter(|d| *d != opts.driver) {
            o.driver = driver;
            o.driver_options.clear();
        }
        (o, fb)
    }

    /// Identity maps of the IDs this namespace has (what a nested user namespace for
    /// `chroot` isolation maps): the host's full range in the initial namespace, else each
    /// range of `/proc/self/{uid,gid}_map` onto itself.
    pub fn identity_maps(&self) -> (Vec<IdMap>, Vec<IdMap>) {
        let full = || {
            vec![IdMap {
                container_id: 0,
                host_id: 0,
                size: u32::MAX,
            }]
        };
        if self.user_namespace == UserNamespace::Initial {
            return (full(), full());
        }
        let own = |f: &str| {
            let text = std::fs::read_to_string(Path::new("/proc/self").join(f)).unwrap_or_default();
            let maps: Vec<IdMap> = parse_map(&text)
                .into_iter()
                .map(|(inside, _, n)| IdMap {
                    container_id: inside,
                    host_id: inside,
                    size: n,
                })
                .collect();
            if maps.is_empty() {
                full()
            } else {
                maps
            }
        };
        (own("uid_map"), own("gid_map"))
    }
}

/// `inside outside count` lines of a `uid_map`/`gid_map`.
fn parse_map(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

fn is_initial_map(text: &str) -> bool {
    parse_map(text) == [(0, 0, u32::MAX)]
}

fn mapped_count(text: &str) -> u64 {
    parse_map(text).iter().map(|m| u64::from(m.2)).sum()
}

/// What hod does differently from its defaults here, and why; [`Fallbacks::is_empty`] when
/// nothing. Its `Display` is the one line the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallbacks {
    /// CAP_SYS_ADMIN was there.
    pub sys_admin: bool,
    /// The user namespace hod is in.
    pub user_namespace: UserNamespace,
    /// User namespaces can be created.
    pub new_user_namespace: bool,
    /// The storage driver used instead of overlay.
    pub driver: Option<DriverKind>,
    /// The isolation RUN gets instead of OCI.
    pub isolation: Option<Isolation>,
    /// `chroot` isolation without namespaces or mounts ([`ChrootSetup::Bare`]).
    pub bare_chroot: bool,
    /// Files are owned by root whatever the layer or `--chown` says
    /// ([`Environment::keeps_owners`]).
    pub owners_lost: bool,
}

impl Fallbacks {
    /// Nothing falls back.
    pub fn is_empty(&self) -> bool {
        self.driver.is_none() && self.isolation.is_none() && !self.bare_chroot && !self.owners_lost
    }
}

impl std::fmt::Display for Fallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut why = Vec::new();
        if !self.sys_admin {
            why.push("no CAP_SYS_ADMIN");
        }
        if !self.new_user_namespace {
            why.push("no user namespaces");
        }
        match &self.user_namespace {
            UserNamespace::Mapped { .. } if self.user_namespace.single_id() => {
                why.push("in a user namespace with one ID")
            }
            UserNamespace::Mapped { .. } => why.push("in a user namespace"),
            UserNamespace::Initial => {}
        }
        let mut what = Vec::new();
        if let Some(d) = self.driver {
            what.push(format!("storage driver {} instead of overlay", d.name()));
        }
        match (self.isolation, self.bare_chroot) {
            (Some(i), true) => what.push(format!(
                "isolation {} without namespaces (RUN gets no /proc, /sys or mounts) instead of oci",
                i.as_str()
            )),
            (Some(i), false) => what.push(format!("isolation {} instead of oci", i.as_str())),
            (None, true) => what.push(
                "isolation chroot without namespaces (RUN gets no /proc, /sys or mounts)".into(),
            ),
            (None, false) => {}
        }
        if self.owners_lost {
            what.push("root as the owner of every file (no other ID to give)".into());
        }
        write!(f, "{}: using {}", why.join(", "), what.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(sys_admin: bool, ns: UserNamespace, userns: bool) -> Environment {
        Environment {
            sys_admin,
            user_namespace: ns,
            new_user_namespace: userns,
        }
    }

    #[test]
    fn maps() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("0 100000 65536\n"));
        assert_eq!(mapped_count("0 100000 65536\n65536 5000 1\n"), 65537);
        assert!(UserNamespace::Mapped { uids: 1, gids: 1 }.single_id());
        assert!(!UserNamespace::Mapped {
            uids: 65536,
            gids: 65536
        }
        .single_id());
    }

    #[test]
    fn decisions() {
        let pod = env(false, UserNamespace::Initial, false);
        assert_eq!(pod.default_isolation(), Isolation::Chroot);
        assert_eq!(pod.chroot_setup(), ChrootSetup::Bare);
        assert!(!pod.overlay_works(Path::new("/nonexistent"), &[], false));
        assert!(pod.overlay_works(Path::new("/nonexistent"), &[], true));
        let unconfined = env(false, UserNamespace::Initial, true);
        assert_eq!(unconfined.chroot_setup(), ChrootSetup::UserNamespace);
        let root = env(true, UserNamespace::Initial, true);
        assert_eq!(root.default_isolation(), Isolation::Oci);
        assert_eq!(root.chroot_setup(), ChrootSetup::MountNamespace);
        assert!(root.overlay_works(Path::new("/nonexistent"), &[], false));
    }

    #[test]
    fn store_driver_falls_back_unless_chosen() {
        let pod = env(false, UserNamespace::Initial, false);
        let mut o = StoreOptions {
            root: "/nonexistent".into(),
            driver: DriverKind::Overlay,
            driver_options: vec!["overlay.mountopt=nodev".into()],
            ..Default::default()
        };
        let (a, fb) = pod.adapt_store(&o, false);
        assert_eq!(
            (a.driver, fb.driver),
            (DriverKind::Vfs, Some(DriverKind::Vfs))
        );
        assert!(a.driver_options.is_empty());
        let (a, fb) = pod.adapt_store(&o, true);
        assert_eq!((a.driver, fb.driver), (DriverKind::Overlay, None));
        assert_eq!(a.driver_options, o.driver_options);
        // A FUSE mount program works without CAP_SYS_ADMIN.
        o.driver_options = vec!["overlay.mount_program=/usr/bin/fuse-overlayfs".into()];
        assert_eq!(pod.adapt_store(&o, false).0.driver, DriverKind::Overlay);
        let root = env(true, UserNamespace::Initial, true);
        let (a, fb) = root.adapt_store(&o, false);
        assert_eq!(a.driver, DriverKind::Overlay);
        assert!(fb.driver.is_none() && !fb.owners_lost);
    }

    #[test]
    fn the_line() {
        let f = Fallbacks {
            sys_admin: false,
            user_namespace: UserNamespace::Initial,
            new_user_namespace: false,
            driver: Some(DriverKind::Vfs),
            isolation: Some(Isolation::Chroot),
            bare_chroot: true,
            owners_lost: false,
        };
        assert_eq!(
            f.to_string(),
            "no CAP_SYS_ADMIN, no user namespaces: using storage driver vfs instead of \
             overlay, isolation chroot without namespaces (RUN gets no /proc, /sys or \
             mounts) instead of oci"
        );
        assert!(!f.to_string().contains('\n'));
        let g = Fallbacks {
            sys_admin: true,
            user_namespace: UserNamespace::Mapped {
                uids: 65536,
                gids: 65536,
            },
            new_user_namespace: true,
            driver: Some(DriverKind::Vfs),
            isolation: None,
            bare_chroot: false,
            owners_lost: false,
        };
        assert_eq!(
            g.to_string(),
            "in a user namespace: using storage driver vfs instead of overlay"
        );
    }
}
