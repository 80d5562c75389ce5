//! One file per verb: clap `Args` and `run(args, &Ctx) -> anyhow::Result<i32>` (the exit code).
pub mod copy;
pub mod run;
pub mod unshare;
