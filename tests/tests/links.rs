//! Every relative link in README.md and docs/ points at a file of this repository (and, with a
//! `#fragment`, at a heading of that file): the documents must stand on their own.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The targets of `[text](target)` links, outside code blocks and code spans.
fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Drop code spans, which may hold `](` in examples.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown.lines().filter(|l| l.starts_with('#')).map(|l| anchor(l.trim_start_matches('#'))).collect()
}

#[test]
fn every_relative_link_in_the_documents_resolves_inside_the_repository() -> Result<()> {
    let root = repo_root().canonicalize()?;
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for doc in &documents {
        let text = std::fs::read_to_string(doc)?;
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = target.split_once('#').map_or((target.as_str(), None), |(f, a)| (f, Some(a)));
            let resolved = if file.is_empty() { doc.clone() } else { doc.parent().context("document folder")?.join(file) };
            let Ok(resolved) = resolved.canonicalize() else {
                broken.push(format!("{}: {target} (no such file)", doc.display()));
                continue;
            };
            if !resolved.starts_with(&root) {
                broken.push(format!("{}: {target} (outside the repository)", doc.display()));
                continue;
            }
            if let Some(fragment) = fragment {
                let headings = anchors(&std::fs::read_to_string(&resolved).unwrap_or_default());
                if !headings.iter().any(|h| h == fragment) {
                    broken.push(format!("{}: {target} (no such heading)", doc.display()));
                }
            }
        }
    }
    ensure!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    ensure!(documents.len() >= 8 && checked >= 15, "the documents and their links were found ({checked} links)");
    Ok(())
}

#[test]
fn the_readme_reads_in_five_minutes() -> Result<()> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let lines = readme.lines().count();
    ensure!(lines <= 250, "README.md has {lines} lines; reference material belongs in docs/");
    Ok(())
}
