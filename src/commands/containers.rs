//! `hod containers`: list working containers and their base images.
use std::collections::{BTreeMap, HashSet};

use anyhow::Context as _;
use builder::{Builder, Store};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::output;

/// `hod containers [options]`
#[derive(Debug, clap::Args)]
pub struct ContainersArgs {
    /// Also list containers that are not hod working containers.
    #[arg(short, long)]
    pub all: bool,
    /// Filter: id=, name=, ancestor= (comma-separated).
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Option<String>,
    /// Pretty-print with a Go template ({{.ContainerID}} {{.Builder}} {{.ImageID}} {{.ImageName}} {{.ContainerName}}).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Output JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not print column headings.
    #[arg(short, long)]
    pub noheading: bool,
    /// Do not truncate IDs and names.
    #[arg(long)]
    pub notruncate: bool,
    /// Print only container IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// One `--json` entry, fields in buildah's order.
#[derive(Debug, serde::Serialize)]
struct JsonContainer {
    id: String,
    builder: bool,
    imageid: String,
    imagename: String,
    containername: String,
}

/// The `--filter` conditions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filter {
    id: Option<String>,
    name: Option<String>,
    ancestor: Option<String>,
}

/// Parse `id=…,name=…,ancestor=…`.
pub fn parse_filter(s: &str) -> anyhow::Result<Filter> {
    let mut f = Filter::default();
    for part in s.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            anyhow::anyhow!(
                "parsing filter: incorrect filter value {part:?}, should be of form filter=value"
            )
        })?;
        match k.trim() {
            "id" => f.id = Some(v.to_string()),
            "name" => f.name = Some(v.to_string()),
            "ancestor" => f.ancestor = Some(v.to_string()),
            other => anyhow::bail!("parsing filter: invalid filter {other:?}"),
        }
    }
    Ok(f)
}

/// buildah's `matchesReference`: repository suffix, and the tag when one is given.
pub fn matches_reference(name: &str, arg: &str) -> bool {
    if arg.is_empty() {
        return true;
    }
    let (repo, tag) = split_tag(name);
    match arg.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((arepo, atag)) => repo.ends_with(arepo) && tag == atag,
        None => repo.ends_with(arg),
    }
}

fn split_tag(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, ""),
    }
}

impl Filter {
    fn matches(&self, id: &str, name: &str, image_id: &str, image_name: &str) -> bool {
        if self
            .id
            .as_ref()
            .is_some_and(|f| !id.starts_with(f.as_str()))
        {
            return false;
        }
        if self
            .name
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            return false;
        }
        if let Some(a) = &self.ancestor {
            if !(image_id.starts_with(a.as_str()) || matches_reference(image_name, a)) {
                return false;
            }
        }
        true
    }
}

/// One output row.
fn row(id: &str, ours: bool, image_id: &str, image_name: &str, name: &str) -> Value {
    json!({"ContainerID": id, "Builder": if ours { "   *" } else { "" }, "ImageID": image_id, "ImageName": image_name, "ContainerName": name})
}

/// The image name shown for an image ID (`scratch` for none).
fn image_names(store: &Store) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(store
        .images()?
        .into_iter()
        .map(|i| (i.id.clone(), i.names.first().cloned().unwrap_or_default()))
        .collect())
}

/// Truncate to `n` characters.
pub fn trunc(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// List.
pub fn run(a: ContainersArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    if a.quiet && a.format.is_some() {
        anyhow::bail!("quiet and format are mutually exclusive");
    }
    let filter = a.filter.as_deref().map(parse_filter).transpose()?;
    let store = ctx.store()?;
    let names = image_names(&store)?;
    let name_for = |id: &str| {
        if id.is_empty() {
            "scratch".to_string()
        } else {
            names.get(id).cloned().unwrap_or_default()
        }
    };
    let builders = Builder::open_all(&store).context("reading build containers")?;
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let mut push = |id: &str, ours: bool, image_id: &str, name: &str| {
        let image_name = name_for(image_id);
        if filter
            .as_ref()
            .is_some_and(|f| !f.matches(id, name, image_id, &image_name))
        {
            return;
        }
        json_rows.push(JsonContainer {
            id: id.to_string(),
            builder: ours,
            imageid: image_id.to_string(),
            imagename: image_name.clone(),
            containername: name.to_string(),
        });
        rows.push(row(id, ours, image_id, &image_name, name));
    };
    if a.all {
        let ours: HashSet<String> = builders.iter().map(|b| b.id().to_string()).collect();
        for c in store
            .containers()
            .context("reading list of all containers")?
        {
            let name = c.names.first().cloned().unwrap_or_default();
            push(&c.id, ours.contains(&c.id), &c.image, &name);
        }
    } else {
        for b in &builders {
            push(b.id(), true, &b.state.from_image_id, b.name());
        }
    }
    if a.json {
        output::println(&output::json_pretty(&json_rows)?)?;
        return Ok(0);
    }
    if let Some(fmt) = &a.format {
        let headers = [
            ("ContainerName", "CONTAINER NAME"),
            ("ContainerID", "CONTAINER ID"),
            ("Builder", "BUILDER"),
            ("ImageID", "IMAGE ID"),
            ("ImageName", "IMAGE NAME"),
        ];
        output::print(&output::render_rows(fmt, &rows, &headers)?)?;
        return Ok(0);
    }
    let mut out = String::new();
    let truncate = !a.notruncate;
    if !a.noheading && !a.quiet {
        out.push_str(&line(
            truncate,
            "CONTAINER ID",
            "BUILDER",
            "IMAGE ID",
            "IMAGE NAME",
            "CONTAINER NAME",
        ));
    }
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        if a.quiet {
            out.push_str(&format!("{:<64}\n", s("ContainerID")));
        } else {
            out.push_str(&line(
                truncate,
                &s("ContainerID"),
                &s("Builder"),
                &s("ImageID"),
                &s("ImageName"),
                &s("ContainerName"),
            ));
        }
    }
    output::print(&out)?;
    Ok(0)
}

/// buildah's fixed-width row.
fn line(
    truncate: bool,
    id: &str,
    builder: &str,
    image_id: &str,
    image: &str,
    name: &str,
) -> String {
    if truncate {
        let image = if image.chars().count() > 32 {
            format!("{}...", trunc(image, 29))
        } else {
            image.to_string()
        };
        format!(
            "{:<12}  {:<8} {:<12} {:<32} {}\n",
            trunc(id, 12),
            builder,
            trunc(image_id, 12),
            image,
            name
        )
    } else {
        format!("{id:<64} {builder:<8} {image_id:<64} {image:<32} {name}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = parse_filter("name=busy,ancestor=busybox:latest").unwrap();
        assert!(f.matches(
            "abc",
            "busybox-working-container",
            "111",
            "docker.io/library/busybox:latest"
        ));
        assert!(!f.matches(
            "abc",
            "alpine-working-container",
            "111",
            "docker.io/library/busybox:latest"
        ));
        assert!(!f.matches(
            "abc",
            "busybox-working-container",
            "111",
            "docker.io/library/busybox:1"
        ));
        let f = parse_filter("id=ab").unwrap();
        assert!(f.matches("abc", "x", "", "scratch"));
        assert!(!f.matches("bcd", "x", "", "scratch"));
        let f = parse_filter("ancestor=111").unwrap();
        assert!(f.matches("abc", "x", "1112", "other"));
        assert!(parse_filter("color=red").is_err());
        assert!(parse_filter("name").is_err());
    }

    #[test]
    fn reference_matching() {
        assert!(matches_reference(
            "docker.io/library/busybox:latest",
            "busybox"
        ));
        assert!(matches_reference(
            "docker.io/library/busybox:latest",
            "busybox:latest"
        ));
        assert!(!matches_reference(
            "docker.io/library/busybox:latest",
            "alpine"
        ));
        assert!(matches_reference("localhost:5000/app:1", "app:1"));
    }

    #[test]
    fn rows_are_fixed_width() {
        let id = "a".repeat(64);
        let l = line(true, &id, "   *", "", "scratch", "working-container");
        assert_eq!(
            l,
            format!(
                "{}     *     {:12} {:<32} working-container\n",
                "a".repeat(12),
                "",
                "scratch"
            )
        );
        let long = "x".repeat(40);
        assert!(line(true, &id, "", "", &long, "n").contains(&format!("{}...", "x".repeat(29))));
    }
}
