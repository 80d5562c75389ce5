//! `hod images`: list images in local storage.
use builder::images::{ImageFilter, ImageIndex};
use serde_json::json;

use crate::ctx::Ctx;
use crate::output;

/// `hod images [options] [IMAGE]`
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only list images matching this name (at most one).
    #[arg(value_name = "IMAGE")]
    pub image: Vec<String>,
    /// Show all images, including intermediate images from a build.
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter: reference=, dangling=, intermediate=, label=, before=, since=, id=, readonly= (repeatable; != negates).
    #[arg(short, long, value_name = "FILTER", value_delimiter = ',')]
    pub filter: Vec<String>,
    /// Pretty-print with a Go template ({{.ID}} {{.Name}} {{.Tag}} {{.Digest}} {{.CreatedAt}} {{.Size}} …).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Output JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not print column headings.
    #[arg(short, long)]
    pub noheading: bool,
    /// Do not truncate output (full IDs with the sha256: prefix).
    #[arg(long)]
    pub no_trunc: bool,
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Display the image name history.
    #[arg(long)]
    pub history: bool,
}

/// One `--json` entry, fields in buildah's order.
#[derive(Debug, serde::Serialize)]
struct JsonImage {
    id: String,
    names: Vec<String>,
    digest: String,
    createdat: String,
    size: String,
    created: i64,
    createdatraw: String,
    readonly: bool,
    history: Vec<String>,
}

/// Go `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

/// buildah's `formattedSize`: `%.3g` with SI units.
pub fn formatted_size(size: i64) -> String {
    const SUFFIX: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut f = size as f64;
    let mut i = 0;
    while f >= 1000.0 && i < 4 {
        f /= 1000.0;
        i += 1;
    }
    format!("{} {}", go_g3(f), SUFFIX[i])
}

/// Go's `%.3g` for values below 1e21.
fn go_g3(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i32;
    let decimals = (2 - exp).max(0) as usize;
    let s = format!("{f:.decimals$}");
    if s.parse::<f64>().unwrap_or(0.0) >= 1000.0 {
        return "1e+03".into();
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `name:tag` pairs for display; `<none>` where missing.
pub fn name_tag_pairs(names: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in names {
        if let Some((repo, _)) = n.split_once('@') {
            out.push((repo.to_string(), "<none>".to_string()));
            continue;
        }
        match n.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => out.push((r.to_string(), t.to_string())),
            _ => out.push((n.clone(), "latest".to_string())),
        }
    }
    if out.is_empty() {
        out.push(("<none>".into(), "<none>".into()));
    }
    out
}

/// List.
pub fn run(a: ImagesArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    if a.image.len() > 1 {
        // buildah's own words, which scripts written for it match.
        anyhow::bail!("'buildah images' requires at most 1 argument");
    }
    if !a.image.is_empty() && a.all {
        anyhow::bail!("when using the --all switch, you may not pass any images names or IDs");
    }
    if a.quiet && a.format.is_some() {
        anyhow::bail!("quiet and format are mutually exclusive");
    }
    let filters = a
        .filter
        .iter()
        .map(|f| ImageFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let store = ctx.store()?;
    let index = ImageIndex::load(&store)?;
    let mut images = index.list(&filters, a.all)?;
    if let Some(name) = a.image.first() {
        let id = index.get(name)?.id.clone();
        images.retain(|i| i.id == id);
    }
    // What each row shows, from the one query layer.
    struct Row<'r> {
        record: &'r builder::store::ImageRecord,
        created: i64,
        created_raw: String,
        size: i64,
    }
    let mut images: Vec<Row> = images
        .into_iter()
        .map(|r| Row {
            record: r,
            created: index.created(&r.id),
            created_raw: index.created_raw(&r.id),
            size: index.size(&r.id),
        })
        .collect();
    let now = chrono::Utc::now().timestamp();
    let id_of = |id: &str| {
        if a.no_trunc {
            format!("sha256:{id}")
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.json {
        let rows: Vec<JsonImage> = images
            .iter()
            .map(|i| JsonImage {
                id: id_of(&i.record.id),
                names: i.record.names.clone(),
                digest: i
                    .record
                    .digest
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                createdat: format!("{} ago", human_duration(now - i.created)),
                size: formatted_size(i.size),
                created: i.created,
                createdatraw: i.created_raw.clone(),
                readonly: false,
                history: i.record.names_history.clone(),
            })
            .collect();
        output::println(&output::json_pretty(&rows)?)?;
        return Ok(0);
    }
    let mut rows = Vec::new();
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    for i in &images {
        for (name, tag) in name_tag_pairs(&i.record.names) {
            let history = format_history(&i.record.names_history, &name, &tag);
            rows.push(json!({
                "Name": name, "Tag": tag, "ID": id_of(&i.record.id),
                "Digest": i.record.digest.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                "Created": i.created, "CreatedAt": format!("{} ago", human_duration(now - i.created)),
                "CreatedAtRaw": i.created_raw, "Size": formatted_size(i.size), "ReadOnly": false, "History": history,
            }));
            if a.quiet {
                break;
            }
        }
    }
    let format = match &a.format {
        Some(f) => f.clone(),
        None if a.quiet => "{{.ID}}".to_string(),
        None => {
            let mut f = if a.noheading {
                String::new()
            } else {
                "table ".to_string()
            };
            f.push_str("{{.Name}}\t{{.Tag}}\t");
            if a.digests {
                f.push_str("{{.Digest}}\t");
            }
            f.push_str("{{.ID}}\t{{.CreatedAt}}\t{{.Size}}");
            if a.history {
                f.push_str("\t{{.History}}");
            }
            f
        }
    };
    let headers = [
        ("Name", "REPOSITORY"),
        ("Tag", "TAG"),
        ("ID", "IMAGE ID"),
        ("CreatedAt", "CREATED"),
        ("Size", "SIZE"),
        ("ReadOnly", "R/O"),
        ("History", "HISTORY"),
        ("Digest", "DIGEST"),
    ];
    output::print(&output::render_rows(&format, &rows, &headers)?)?;
    Ok(0)
}

fn format_history(history: &[String], name: &str, tag: &str) -> String {
    match history {
        [] => "<none>".into(),
        [first, rest @ ..] if *first == format!("{name}:{tag}") => {
            if rest.is_empty() {
                "<none>".into()
            } else {
                rest.join(", ")
            }
        }
        all => all.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (n, want) in [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1 KB"),
            (1234, "1.23 KB"),
            (12_345_678, "12.3 MB"),
            (4_500_000_000, "4.5 GB"),
            (999_999, "1e+03 KB"),
        ] {
            assert_eq!(formatted_size(n), want, "{n}");
        }
    }

    #[test]
    fn durations() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (600, "10 minutes"),
            (3600, "About an hour"),
            (7200, "2 hours"),
            (3 * 86400, "3 days"),
            (20 * 86400, "2 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn pairs() {
        assert_eq!(
            name_tag_pairs(&["docker.io/library/busybox:latest".into()]),
            vec![("docker.io/library/busybox".into(), "latest".into())]
        );
        assert_eq!(
            name_tag_pairs(&["localhost:5000/a".into()]),
            vec![("localhost:5000/a".into(), "latest".into())]
        );
        assert_eq!(
            name_tag_pairs(&["quay.io/a@sha256:00".into()]),
            vec![("quay.io/a".into(), "<none>".into())]
        );
        assert_eq!(
            name_tag_pairs(&[]),
            vec![("<none>".into(), "<none>".into())]
        );
    }
}
