//! `connector-host connectors new`: a new connector's skeleton in Rust, Python or
//! JavaScript, from the templates in `templates/<lang>/` (embedded in the binary), with the
//! helper module and the contract it builds against.

use std::path::{Path, PathBuf};

/// A language a skeleton can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with `guest-sdk`, built with cargo.
    Rust,
    /// Python with `connector_sdk.py`, built with componentize-py.
    Python,
    /// JavaScript with `connector-sdk.js`, built with componentize-js through npm.
    Js,
}

impl Lang {
    /// The language named `name` (`rust`, `python`, `js`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Lang::Rust),
            "python" | "py" => Some(Lang::Python),
            "js" | "javascript" => Some(Lang::Js),
            _ => None,
        }
    }

    /// The skeleton's one build command, as its README gives it.
    pub fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-unknown-unknown",
            Lang::Python => "componentize-py -d wit -w connector componentize app -o NAME.wasm",
            Lang::Js => "npm install && npm run build",
        }
    }
}

/// Why a skeleton could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The connector name is not a valid element key.
    #[error(
        "the name `{0}` is not a valid connector key: use lowercase ASCII letters, digits and `-`, starting with a letter (at most 40)"
    )]
    BadName(String),
    /// The target directory exists and is not empty.
    #[error("{0} exists and is not empty; choose another --dir")]
    NotEmpty(PathBuf),
    /// The Rust SDK could not be found for a Rust skeleton.
    #[error(
        "cannot find guest-sdk at {0}; pass --sdk with the path of the repository's guest-sdk folder"
    )]
    NoSdk(PathBuf),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// One file of a skeleton: where it goes and its text, with `{{placeholders}}`.
struct File {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($lang:literal: $($path:literal),* $(,)?) => {
        &[$(File {
            path: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../templates/", $lang, "/", $path)),
        }),*]
    };
}

const RUST: &[File] = template!("rust":
    "Cargo.toml", "rust-toolchain.toml", ".gitignore", "README.md", "src/lib.rs",
    "fixtures/webhook.json",
);

const PYTHON: &[File] = template!("python":
    ".gitignore", "README.md", "app.py", "test_app.py", "fixtures/webhook.json",
);

/// The Python helper module, copied beside a Python skeleton's `app.py`.
const PY_SDK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../guest-sdk/python/connector_sdk.py"
));

const JS: &[File] = template!("js":
    "package.json", "build.mjs", "main.js", "connector.js", "connector.test.js",
    "fixtures/webhook.json", "README.md", ".gitignore",
);

/// The JavaScript helper module, copied beside a JavaScript skeleton's code.
const JS_SDK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../guest-sdk/js/connector-sdk.js"
));

/// The contract every skeleton builds against (Rust's through `guest-sdk`).
const WIT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/connector.wit"));

/// The repository's lock file: a Rust skeleton starts from the versions the SDK is tested
/// with (Cargo drops what the skeleton does not use).
const CARGO_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

/// The repository's pinned toolchain, for a Rust skeleton's `rust-toolchain.toml`.
const TOOLCHAIN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rust-toolchain.toml"
));

/// The files of a language's skeleton, and the extra ones copied beside (helper module,
/// contract).
fn files(lang: Lang) -> (&'static [File], Vec<(&'static str, &'static str)>) {
    match lang {
        Lang::Rust => (RUST, vec![("Cargo.lock", CARGO_LOCK)]),
        Lang::Python => (
            PYTHON,
            vec![("connector_sdk.py", PY_SDK), ("wit/connector.wit", WIT)],
        ),
        // The build reads modules and the WIT file from the skeleton's own folder only.
        Lang::Js => (
            JS,
            vec![("connector-sdk.js", JS_SDK), ("wit/connector.wit", WIT)],
        ),
    }
}

/// What a skeleton's placeholders are replaced with.
struct Names {
    name: String,
    display_name: String,
    crate_name: String,
    type_name: String,
    sdk_path: String,
    rust_toolchain: String,
}

impl Names {
    fn render(&self, text: &str) -> String {
        text.replace("{{name}}", &self.name)
            .replace("{{display_name}}", &self.display_name)
            .replace("{{crate_name}}", &self.crate_name)
            .replace("{{type_name}}", &self.type_name)
            .replace("{{sdk_path}}", &self.sdk_path)
            .replace("{{rust_toolchain}}", &self.rust_toolchain)
    }
}

/// True for a valid connector key of a new skeleton: `my-shop`, `acme2`.
fn valid_name(name: &str) -> bool {
    name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// `my-shop` as `My Shop` (display) and `MyShop` (a Rust type).
fn words(name: &str) -> (String, String) {
    let capitalized: Vec<String> = name
        .split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    (capitalized.join(" "), capitalized.concat())
}

/// The `channel` of a `rust-toolchain.toml`.
fn channel(toolchain: &str) -> String {
    toolchain
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("channel")?.trim().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "stable".into())
}

/// The `guest-sdk` folder of the repository this binary was built from.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk")
}

/// Writes the skeleton of connector `name` in `lang` into `dir` (created; it must not
/// exist or be empty). `sdk` is the Rust SDK's folder, for a Rust skeleton. Returns the
/// files written, relative to `dir`.
pub fn write(name: &str, lang: Lang, dir: &Path, sdk: &Path) -> Result<Vec<String>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let sdk_path = if lang == Lang::Rust {
        let sdk = sdk
            .canonicalize()
            .ok()
            .filter(|p| p.join("Cargo.toml").is_file())
            .ok_or_else(|| ScaffoldError::NoSdk(sdk.to_path_buf()))?;
        sdk.display().to_string()
    } else {
        String::new()
    };
    let (display_name, type_name) = words(name);
    let names = Names {
        name: name.to_string(),
        display_name,
        crate_name: name.replace('-', "_"),
        type_name,
        sdk_path,
        rust_toolchain: channel(TOOLCHAIN),
    };
    let (templates, extra) = files(lang);
    let mut written = Vec::new();
    let rendered = templates
        .iter()
        .map(|f| (f.path, names.render(f.text)))
        .chain(extra.into_iter().map(|(p, t)| (p, t.to_string())));
    for (path, text) in rendered {
        let target = dir.join(path);
        let io = |source| ScaffoldError::Write {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&target, text).map_err(io)?;
        written.push(path.to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded list of a template must be its `FILES`, so nothing is left behind.
    fn listed(files_list: &str, embedded: &[File]) {
        let listed: Vec<&str> = files_list
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let embedded: Vec<&str> = embedded.iter().map(|f| f.path).collect();
        assert_eq!(listed, embedded);
    }

    #[test]
    fn every_template_file_is_embedded() {
        listed(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../templates/rust/FILES"
            )),
            RUST,
        );
        listed(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../templates/js/FILES"
            )),
            JS,
        );
        listed(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../templates/python/FILES"
            )),
            PYTHON,
        );
    }

    #[test]
    fn names_are_checked_and_rendered() {
        assert!(valid_name("my-shop"));
        assert!(valid_name("acme2"));
        for bad in ["", "My", "2x", "a_b", "a-", "a b", "a.b", &"a".repeat(41)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(words("my-shop"), ("My Shop".into(), "MyShop".into()));
        assert_eq!(channel("[toolchain]\nchannel = \"1.95.0\"\n"), "1.95.0");
    }

    #[test]
    fn a_skeleton_has_no_placeholder_left_and_refuses_a_non_empty_dir() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("my-shop");
        let written = write("my-shop", Lang::Rust, &out, &default_sdk()).unwrap();
        assert!(written.contains(&"src/lib.rs".to_string()));
        for path in &written {
            let text = std::fs::read_to_string(out.join(path)).unwrap();
            assert!(!text.contains("{{"), "{path}: {text}");
        }
        let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct MyShop;"), "{lib}");
        let err = write("my-shop", Lang::Rust, &out, &default_sdk()).unwrap_err();
        assert!(matches!(err, ScaffoldError::NotEmpty(_)), "{err}");
        let err = write("My Shop", Lang::Rust, &dir.path().join("x"), &default_sdk()).unwrap_err();
        assert!(matches!(err, ScaffoldError::BadName(_)), "{err}");
    }
}
