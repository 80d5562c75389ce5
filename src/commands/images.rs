//! `hod images`: list images in local storage.
use std::collections::{BTreeMap, HashSet};

use builder::store::{ImageRecord, Layer};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::output;

/// `hod images [options] [IMAGE]`
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only list images matching this name.
    pub image: Option<String>,
    /// Show all images, including intermediate images from a build.
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter: reference=, dangling=, label=, before=, since=, id=, readonly= (repeatable).
    #[arg(short, long, value_name = "FILTER")]
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

/// A glob with `*` and `?` (for `reference=`).
pub fn glob_match(pat: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(
        &pat.chars().collect::<Vec<_>>(),
        &s.chars().collect::<Vec<_>>(),
    )
}

/// Whether any of an image's names matches a `reference=` pattern (full name, or the name
/// without its registry/`library/` prefix, with or without the tag).
pub fn reference_matches(names: &[String], pat: &str) -> bool {
    names.iter().any(|n| {
        let short = n
            .split_once('/')
            .filter(|(d, _)| d.contains('.') || d.contains(':') || *d == "localhost")
            .map(|(_, r)| r)
            .unwrap_or(n);
        let short2 = short.strip_prefix("library/").unwrap_or(short);
        let no_tag = |x: &str| {
            x.rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map(|(r, _)| r.to_string())
                .unwrap_or_else(|| x.to_string())
        };
        [n.as_str(), short, short2]
            .iter()
            .any(|c| glob_match(pat, c) || glob_match(pat, &no_tag(c)))
    })
}

/// Everything the listing needs about one image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// The record.
    pub record: ImageRecord,
    /// Unix seconds.
    pub created: i64,
    /// RFC 3339 text.
    pub created_raw: String,
    /// Sum of its layers' uncompressed sizes.
    pub size: i64,
    /// Has children (another image's layer chain passes through its top layer).
    pub intermediate: bool,
    /// Labels from its config.
    pub labels: BTreeMap<String, String>,
}

fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Gather sizes, times, labels and the intermediate flag for every image.
pub fn collect(store: &builder::Store) -> anyhow::Result<Vec<ImageInfo>> {
    let layers: BTreeMap<String, Layer> = store
        .layers()?
        .into_iter()
        .map(|l| (l.id.clone(), l))
        .collect();
    let images = store.images()?;
    let chain = |top: &str| {
        let mut out = Vec::new();
        let mut cur = top.to_string();
        while let Some(l) = layers.get(&cur) {
            out.push(l.clone());
            if l.parent.is_empty() || out.len() > 4096 {
                break;
            }
            cur = l.parent.clone();
        }
        out
    };
    let mut ancestors: HashSet<String> = HashSet::new();
    for img in &images {
        for l in chain(&img.layer).iter().skip(1) {
            ancestors.insert(l.id.clone());
        }
    }
    let mut out = Vec::new();
    for img in images {
        let cfg: Option<Value> = store
            .image_big_data(&img.id, &format!("sha256:{}", img.id))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok());
        let created_raw = img
            .created
            .clone()
            .or_else(|| {
                cfg.as_ref()
                    .and_then(|c| c["created"].as_str().map(str::to_string))
            })
            .unwrap_or_default();
        let labels = cfg
            .as_ref()
            .and_then(|c| c["config"]["Labels"].as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let size = chain(&img.layer)
            .iter()
            .map(|l| l.diff_size.unwrap_or(0))
            .sum();
        let intermediate =
            img.names.is_empty() && !img.layer.is_empty() && ancestors.contains(&img.layer);
        out.push(ImageInfo {
            created: parse_time(&created_raw),
            created_raw,
            size,
            intermediate,
            labels,
            record: img,
        });
    }
    Ok(out)
}

/// Apply one `--filter` to the list.
pub fn apply_filter(images: Vec<ImageInfo>, filter: &str) -> anyhow::Result<Vec<ImageInfo>> {
    let (key, neg, value) = if let Some((k, v)) = filter.split_once("!=") {
        (k, true, v)
    } else if let Some((k, v)) = filter.split_once('=') {
        (k, false, v)
    } else {
        anyhow::bail!("invalid image filter {filter:?}: must be in the format \"filter=value or filter!=value\"");
    };
    let reference_time = |name: &str| -> anyhow::Result<i64> {
        images
            .iter()
            .find(|i| {
                i.record.id.starts_with(name)
                    || i.record.names.iter().any(|n| n == name)
                    || reference_matches(&i.record.names, name)
            })
            .map(|i| i.created)
            .ok_or_else(|| anyhow::anyhow!("{name}: image not known"))
    };
    let pred: Box<dyn Fn(&ImageInfo) -> bool> = match key {
        "reference" => {
            let v = value.to_string();
            Box::new(move |i| reference_matches(&i.record.names, &v))
        }
        "dangling" => {
            let want = value == "true";
            Box::new(move |i| i.record.names.is_empty() == want)
        }
        "intermediate" => {
            let want = value == "true";
            Box::new(move |i| i.intermediate == want)
        }
        "readonly" => {
            let want = value == "true";
            Box::new(move |_| !want)
        }
        "id" => {
            let v = value.to_string();
            Box::new(move |i| i.record.id.starts_with(&v))
        }
        "label" => {
            let (k, v) = match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            };
            Box::new(move |i| {
                i.labels
                    .get(&k)
                    .is_some_and(|x| v.as_ref().is_none_or(|v| v == x))
            })
        }
        "before" => {
            let t = reference_time(value)?;
            Box::new(move |i| i.created < t)
        }
        "since" | "after" => {
            let t = reference_time(value)?;
            Box::new(move |i| i.created > t)
        }
        other => anyhow::bail!("unsupported image filter {other:?}"),
    };
    Ok(images.into_iter().filter(|i| pred(i) != neg).collect())
}

/// List.
pub fn run(a: ImagesArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    if a.image.is_some() && a.all {
        anyhow::bail!("when using the --all switch, you may not pass any images names or IDs");
    }
    if a.quiet && a.format.is_some() {
        anyhow::bail!("quiet and format are mutually exclusive");
    }
    let store = ctx.store()?;
    let mut images = collect(&store)?;
    for f in &a.filter {
        images = apply_filter(images, f)?;
    }
    if !a.all {
        images.retain(|i| !i.intermediate);
    }
    if let Some(name) = &a.image {
        let id = store.image(name)?.id;
        images.retain(|i| i.record.id == id);
    }
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

    #[test]
    fn references() {
        let names = vec!["registry.k8s.io/pause:3.9".to_string()];
        assert!(reference_matches(&names, "pause*"));
        assert!(reference_matches(&names, "registry.k8s.io/pause:3.9"));
        assert!(!reference_matches(&names, "u*"));
        assert!(reference_matches(
            &["docker.io/library/busybox:latest".to_string()],
            "busybox"
        ));
        assert!(glob_match("a*c?", "abbbcd"));
    }

    #[test]
    fn filter_syntax() {
        let err = apply_filter(Vec::new(), "since").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid image filter "since": must be in the format "filter=value or filter!=value""#
        );
        let img = |names: Vec<&str>, created| ImageInfo {
            record: ImageRecord {
                id: "ab".into(),
                names: names.into_iter().map(String::from).collect(),
                ..Default::default()
            },
            created,
            created_raw: String::new(),
            size: 0,
            intermediate: false,
            labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        let list = vec![img(vec!["localhost/a:1"], 10), img(vec![], 20)];
        assert_eq!(
            apply_filter(list.clone(), "dangling=true").unwrap().len(),
            1
        );
        assert_eq!(
            apply_filter(list.clone(), "dangling!=true").unwrap().len(),
            1
        );
        assert_eq!(apply_filter(list.clone(), "label=k=v").unwrap().len(), 2);
        assert_eq!(apply_filter(list.clone(), "label=k=w").unwrap().len(), 0);
        assert_eq!(
            apply_filter(list.clone(), "since=localhost/a:1")
                .unwrap()
                .len(),
            1
        );
        assert!(apply_filter(list, "flavor=x").is_err());
    }
}
