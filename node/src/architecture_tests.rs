//! The node's layering, checked on its source. From the top: the lifecycle (`node.rs`), the HTTP
//! layer (`api/`), the services (`sequencer`, `audit`, `duties`, `bootstrap`, `federation/`, `metrics`), the
//! runtime (`runtime/`), then networking and storage (`network/`, `store/`). A layer imports
//! only those below it. A check that cannot fail proves nothing, so the scanner is also fed
//! offending text.
//!
//! At the bottom, the pure state machine and the HMAC recipes are crates of their own
//! (`sessync-session`, `sessync-signing`, imported as `crate::session` and `crate::signing`):
//! that they import nothing of the node the compiler holds; that they link no storage or runtime
//! (so they are fuzzed without RocksDB) is checked on their manifests here.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the source tree is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The first segments of every `crate::` path in `text` (comments left out), grouped imports
/// (`use crate::{a, b::c}`) included.
fn crate_modules(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    out.push(ident(&item));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth == 1 {
                    item.push(c);
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// `(path under src/, text)` of every source file whose path starts with one of `layers`.
fn layer_files(layers: &[&str]) -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    sources(&src)
        .into_iter()
        .filter_map(|file| {
            let rel = file
                .strip_prefix(&src)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            layers.iter().any(|l| rel.starts_with(l)).then(|| {
                let text = std::fs::read_to_string(&file).expect("a readable source file");
                (rel, text)
            })
        })
        .collect()
}

/// `(file, module)` for every file under `src/` whose path starts with one of `layers` and that
/// uses `crate::<module>` for one of `modules`.
fn imports(layers: &[&str], modules: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in layer_files(layers) {
        for m in crate_modules(&text) {
            if modules.contains(&m.as_str()) {
                out.push(format!("{rel} imports crate::{m}"));
            }
        }
    }
    out
}

const SERVICES: [&str; 6] = [
    "sequencer",
    "audit",
    "duties",
    "bootstrap",
    "federation",
    "metrics",
];

#[test]
fn nothing_outside_api_imports_api() {
    let below = [
        "runtime/",
        "store/",
        "network/",
        "federation/",
        "sequencer.rs",
        "source.rs",
        "audit.rs",
        "duties.rs",
        "bootstrap.rs",
        "metrics.rs",
        "tokens.rs",
        "raft_types.rs",
    ];
    let found = imports(&below, &["api", "node"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_runtime_and_storage_do_not_import_the_services_above_them() {
    let mut above = vec!["api", "node"];
    above.extend(SERVICES);
    let found = imports(&["runtime/", "store/", "network/"], &above);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Files under `src/` in `layers` whose code (comments left out) names one of `words`.
fn naming(layers: &[&str], words: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in layer_files(layers) {
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for w in words {
            if code.contains(w) {
                out.push(format!("{rel} names {w}"));
            }
        }
    }
    out
}

#[test]
fn below_the_api_nothing_knows_the_http_error_vocabulary() {
    // A leader's refusal reaches another node's runtime as `wire::Refused`, never as the API's
    // error body (which `Runtime::ask_leader` used to parse).
    let below = ["runtime/", "store/", "network/"];
    let found = naming(&below, &["ErrorBody", "ErrorCode"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The `[dependencies]` section of the manifest at `path` (relative to the workspace root): the
/// names of the crates it lists.
fn dependencies(path: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(path)).expect("a readable manifest");
    text.lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split(['.', '=', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_state_machine_and_the_signing_recipes_link_no_storage_or_runtime() {
    let heavy = [
        "sessync-node",
        "rocksdb",
        "openraft",
        "tokio",
        "axum",
        "reqwest",
    ];
    for manifest in ["session/Cargo.toml", "signing/Cargo.toml"] {
        let deps = dependencies(manifest);
        assert!(
            deps.contains(&"sessync-proto".to_owned()),
            "{manifest}: {deps:?}"
        );
        let found: Vec<_> = deps
            .iter()
            .filter(|d| heavy.contains(&d.as_str()))
            .collect();
        assert!(found.is_empty(), "{manifest} depends on {found:?}");
    }
}

#[test]
fn the_scanner_sees_every_shape_of_import() {
    // Made-up module names, so this file itself imports nothing it names.
    assert_eq!(crate_modules("use crate::web::App;"), ["web"]);
    assert_eq!(
        crate_modules("use crate::{web, disk::Reader};"),
        ["web", "disk"]
    );
    assert_eq!(
        crate_modules("use crate::{\n    web::{self, App},\n    core,\n};"),
        ["web", "core"]
    );
    assert_eq!(crate_modules("    crate::web::router(app)"), ["web"]);
    assert_eq!(crate_modules("use crate::webhook::Hook;"), ["webhook"]);
    assert!(crate_modules("// see crate::web::App").is_empty());
}
