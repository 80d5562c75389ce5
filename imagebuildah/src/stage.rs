//! The build plan: stages, their steps, which stages the target needs, and in what order.
//!
//! ```text
//! parsed Containerfile(s) ──(plan::from_parsed)──> Plan { global ARGs, stages[] }
//!   stage = FROM base [AS name] + steps (typed, unexpanded; expanded when executed)
//! Plan::target(--target) ──> index (unknown → error listing the stages)
//! Plan::needed(target) ──> the target and every stage it reaches through
//!                          FROM <stage>, COPY --from=<stage>, RUN --mount=from=<stage>
//! ```
use std::collections::BTreeMap;

use crate::error::{BuildError, Result};
use crate::instruction::{Instruction, Step};
use crate::parser::ParseError;

/// One `FROM` and the steps up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position (0-based) among all stages.
    pub index: usize,
    /// `AS name` (lower-cased).
    pub name: Option<String>,
    /// The base as written (`$BASE`, `busybox`, an earlier stage's name or index).
    pub base: String,
    /// `FROM --platform=…`.
    pub platform: Option<String>,
    /// The FROM step itself.
    pub from: Step,
    /// The rest.
    pub steps: Vec<Step>,
}

/// Every stage of a build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// `ARG`s before the first FROM (usable in FROM lines, and re-declarable in stages).
    pub global_args: Vec<(String, Option<String>)>,
    /// The stages in file order.
    pub stages: Vec<Stage>,
    /// `--build-context` names: a `COPY --from=` or `RUN --mount from=` naming one uses
    /// that context, not a stage of the same name (so that stage is no dependency).
    pub build_context_names: std::collections::BTreeSet<String>,
}

impl Plan {
    /// The index of the stage `reference` names (its name, or its position as a number)
    /// among the stages before `before`.
    pub fn stage_ref(&self, reference: &str, before: usize) -> Option<usize> {
        let r = reference.to_ascii_lowercase();
        if let Some(i) = self.stages[..before.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(r.as_str()))
        {
            return Some(i);
        }
        match reference.parse::<usize>() {
            Ok(i) if i < before => Some(i),
            _ => None,
        }
    }

    /// The stage `--target` names (default: the last).
    pub fn target(&self, target: Option<&str>) -> Result<usize> {
        if self.stages.is_empty() {
            return Err(BuildError::invalid("no FROM statement found"));
        }
        let Some(t) = target else {
            return Ok(self.stages.len() - 1);
        };
        let t_lower = t.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t_lower.as_str()))
            .ok_or_else(|| {
                let names: Vec<String> = self
                    .stages
                    .iter()
                    .map(|s| s.name.clone().unwrap_or_else(|| s.index.to_string()))
                    .collect();
                BuildError::invalid(format!(
                    "the target {t:?} was not found in the provided Dockerfile: stages are {}",
                    names.join(", ")
                ))
            })
    }

    /// The FROM base of `stage` with the global ARGs expanded.
    pub fn base_of(&self, stage: usize, global: &BTreeMap<String, String>) -> Result<String> {
        let s = &self.stages[stage];
        let (inst, names) = s.from.expand_with_matches(global)?;
        let base = match inst {
            Instruction::From(f) => f.image,
            _ => s.base.clone(),
        };
        if base.is_empty() {
            let missing: Vec<&String> = names.iter().filter(|n| !global.contains_key(*n)).collect();
            let hint = if missing.is_empty() {
                String::new()
            } else {
                let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                format!(
                    ": build argument {} has no value (declare it with ARG before the first FROM, or pass --build-arg)",
                    m.join(", ")
                )
            };
            return Err(BuildError::invalid(format!(
                "{}: {:?} names no base image{hint}",
                s.from.location, s.from.original
            )));
        }
        Ok(base)
    }

    /// Which stages `target` needs, directly or through others (as a mask over the stages).
    pub fn needed(&self, target: usize, global: &BTreeMap<String, String>) -> Vec<bool> {
        let mut need = vec![false; self.stages.len()];
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if need[i] {
                continue;
            }
            need[i] = true;
            for d in self.dependencies(i, global) {
                todo.push(d);
            }
        }
        need
    }

    /// The earlier stages stage `i` uses (FROM, COPY --from, RUN --mount from=).
    pub fn dependencies(&self, i: usize, global: &BTreeMap<String, String>) -> Vec<usize> {
        let s = &self.stages[i];
        let mut out = Vec::new();
        if let Ok(base) = self.base_of(i, global) {
            if let Some(d) = self.stage_ref(&base, i) {
                out.push(d);
            }
        }
        // Stage-scoped ARG values are not known yet; global ones are what FROM lines and
        // most `--from=$X` uses rely on.
        for step in &s.steps {
            let refs: Vec<String> = match step.expand(global) {
                Ok(Instruction::Copy(c)) | Ok(Instruction::Add(c)) => c.from.into_iter().collect(),
                Ok(Instruction::Run(r)) => r.mounts.into_iter().filter_map(|m| m.from).collect(),
                _ => Vec::new(),
            };
            for r in refs {
                if r.parse::<usize>().is_err() && self.build_context_names.contains(&r) {
                    continue;
                }
                if let Some(d) = self.stage_ref(&r, i) {
                    out.push(d);
                }
            }
        }
        out
    }
}

/// Split parsed Containerfiles (in order) into global ARGs and stages.
pub fn from_steps(steps: Vec<Step>) -> Result<Plan> {
    let mut plan = Plan::default();
    for step in steps {
        match &step.instruction {
            Instruction::From(f) => {
                let index = plan.stages.len();
                plan.stages.push(Stage {
                    index,
                    name: f.alias.clone(),
                    base: f.image.clone(),
                    platform: f.platform.clone(),
                    from: step.clone(),
                    steps: Vec::new(),
                });
            }
            inst => match plan.stages.last_mut() {
                Some(stage) => stage.steps.push(step.clone()),
                None => match inst {
                    Instruction::Arg(decls) => {
                        for d in decls {
                            plan.global_args.push((d.name.clone(), d.default.clone()));
                        }
                    }
                    _ => {
                        return Err(BuildError::invalid(format!(
                            "{}: no FROM before {:?}: only ARG may come before the first FROM",
                            step.location, step.original
                        )))
                    }
                },
            },
        }
    }
    if plan.stages.is_empty() {
        return Err(BuildError::invalid("no FROM statement found"));
    }
    Ok(plan)
}

/// Parse Containerfile texts (`(name, text)`, in order) into one plan: later files continue
/// where the earlier ones stop, as buildah does with several `-f`.
pub fn from_files(files: &[(String, String)]) -> Result<Plan> {
    let mut all = Vec::new();
    for (i, (name, text)) in files.iter().enumerate() {
        let steps = crate::instruction::steps(name, text).map_err(|e: ParseError| {
            if i == 0 {
                BuildError::from(e)
            } else {
                // buildah's wording for a second -f file (its tests match on it).
                BuildError::invalid(format!(
                    "parsing additional Dockerfile {name}: {} (line {})",
                    e.kind, e.location.start_line
                ))
            }
        })?;
        all.extend(steps);
    }
    from_steps(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "ARG BASE=busybox
FROM $BASE AS build
RUN true
FROM busybox AS unused
FROM scratch AS assets
RUN --mount=type=bind,from=build,target=/b true
FROM assets
COPY --from=0 /x /x
";

    #[test]
    fn target_and_needed_stages() {
        let p = from_files(&[("Containerfile".into(), FILE.into())]).unwrap();
        assert_eq!(
            p.global_args,
            [("BASE".to_string(), Some("busybox".to_string()))]
        );
        let g: BTreeMap<String, String> = [("BASE".to_string(), "busybox".to_string())].into();
        assert_eq!(p.target(None).unwrap(), 3);
        assert_eq!(p.target(Some("ASSETS")).unwrap(), 2);
        let err = p.target(Some("nope")).unwrap_err().to_string();
        assert!(err.contains("build, unused, assets, 3"), "{err}");
        assert_eq!(p.needed(3, &g), [true, false, true, true]);
        assert_eq!(p.needed(1, &g), [false, true, false, false]);
        assert_eq!(p.base_of(0, &g).unwrap(), "busybox");
        let err = p.base_of(0, &BTreeMap::new()).unwrap_err().to_string();
        assert!(
            err.contains("BASE") && err.contains("Containerfile:2"),
            "{err}"
        );
    }

    #[test]
    fn instructions_before_from_are_refused() {
        let err = from_files(&[("C".into(), "RUN true\nFROM x\n".into())]).unwrap_err();
        assert!(err.to_string().contains("C:1"), "{err}");
    }
}
