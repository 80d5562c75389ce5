//! `hod tag`: add names to a local image.
use crate::ctx::Ctx;

/// `hod tag IMAGE NEW-NAME...`
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image.
    pub image: String,
    /// The names to add.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Normalise a name as local images are named: `app` → `localhost/app:latest`,
/// `busybox:1` → `localhost/busybox:1`, `quay.io/x/y` → `quay.io/x/y:latest`.
pub fn normalize_name(name: &str) -> anyhow::Result<String> {
    Ok(builder::reference::normalize_local_name(name)?.to_string())
}

/// Tag.
pub fn run(a: TagArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let img = store.image(&a.image)?;
    let mut names = img.names.clone();
    for n in &a.names {
        let n = normalize_name(n)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    store.set_image_names(&img.id, &names)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        let cases = [
            ("app", "localhost/app:latest"),
            ("app:1", "localhost/app:1"),
            ("quay.io/x/y", "quay.io/x/y:latest"),
            ("localhost:5000/y:2", "localhost:5000/y:2"),
            ("localhost/z", "localhost/z:latest"),
        ];
        for (i, want) in cases {
            assert_eq!(super::normalize_name(i).unwrap(), want, "{i}");
        }
        assert!(super::normalize_name("").is_err());
        assert!(super::normalize_name("a b").is_err());
        assert!(super::normalize_name("App").is_err());
    }
}
