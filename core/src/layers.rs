//! The extension's and the dispatcher's modules form layers: no module imports one that imports
//! it back (directly or through others), and nothing imports from the crate root's own items
//! (`main.rs`, `lib.rs`), which only declares modules and starts things.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name (`api`, `api/streams` as `api::streams`) → source text, for a crate's `src/`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src").with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_owned();
            }
            out.insert(name, std::fs::read_to_string(&path).expect("read module"));
        }
    }
    out
}

/// The top-level modules `text` names through `crate::…`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
            None => vec![rest],
        };
        for n in names {
            let ident: String = n.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !ident.is_empty() && ident != "self" {
                out.insert(ident);
            }
        }
    }
    out
}

fn crate_src(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(name).join("src")
}

fn check(crate_dir: &str, root: &str) {
    let mods = modules(&crate_src(crate_dir));
    let top: BTreeSet<String> =
        mods.keys().filter(|m| m.as_str() != root).map(|m| m.split("::").next().unwrap_or_default().to_owned()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in mods.iter().filter(|(m, _)| m.as_str() != root) {
        let own = name.split("::").next().unwrap_or_default().to_owned();
        for dep in imports(text) {
            assert!(top.contains(&dep), "{crate_dir}/src/{name}: imports `crate::{dep}`, an item of {root}.rs, not a module");
            if dep != own {
                graph.entry(own.clone()).or_default().insert(dep);
            }
        }
    }
    // Depth-first search for a path back to where it started.
    fn reach(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
        graph.get(from).is_some_and(|deps| deps.iter().any(|d| d == to || (seen.insert(d.clone()) && reach(graph, d, to, seen))))
    }
    for m in graph.keys() {
        assert!(!reach(&graph, m, m, &mut BTreeSet::new()), "{crate_dir}: module {m} imports itself back through {:?}", graph[m]);
    }
    assert!(mods.len() >= 15 && graph.len() >= 5, "{crate_dir}: the modules were read");
}

#[test]
fn the_extension_modules_form_layers() {
    check("extension", "lib");
}

#[test]
fn the_dispatcher_modules_form_layers() {
    check("dispatcher", "main");
}
