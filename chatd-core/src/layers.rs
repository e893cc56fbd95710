//! The guard of chatd-core's layering (DESIGN "Layers"): every top-level module belongs to a
//! layer, imports only from its own layer or below, and the module graph has no cycle.
//!
//! It reads the crate's sources, drops comments, string and character literals and test
//! modules, and collects every `crate::<module>` path — the edges a reader follows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A module may import its own layer (if the graph stays acyclic) and any
/// layer below; `runtime` and `events` never import each other (the part log's format,
/// `part_log`, is what they share).
const LAYERS: &[&[&str]] = &[
    // Domain types: data and pure rules.
    &[
        "ids",
        "secret",
        "part",
        "tool_args",
        "message",
        "status",
        "call_options",
        "provider_config",
        "model_spec",
        "model_config",
        "diff_status",
        "cipher",
        "title",
        "usage",
        "tool_call",
        "feed",
        "chat",
    ],
    // The storage contract and what store implementors share.
    &["store", "limits"],
    // The model provider contract.
    &["provider"],
    // What the runtime and the event layer both use.
    &["part_log", "telemetry"],
    // The worker side and the reader side.
    &["runtime", "events"],
    // The host's facade.
    &["service"],
    // Test support (feature `testing`): may use anything.
    &["testing"],
];

/// Pairs of one layer that must not import each other in either direction.
const APART: &[(&str, &str)] = &[("runtime", "events")];

/// The modules that need not be listed (this guard).
const UNLISTED: &[&str] = &["layers"];

/// Source with comments, string and character literals removed (strings become `""`).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                i = end;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && !b
                    .get(i.wrapping_sub(1))
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = src[j + 1..].find(&close).map_or(b.len(), |e| j + 1 + e + close.len());
                out.push_str("\"\"");
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
                i = j + 1;
            }
            b'\'' => {
                // A character literal ('x', '\n', '\u{7f}'), else a lifetime.
                let rest = &src[i + 1..];
                let len = if rest.starts_with('\\') {
                    rest.find('\'').map(|e| e + 1)
                } else {
                    rest.chars()
                        .next()
                        .filter(|_| rest.chars().nth(1) == Some('\''))
                        .map(|c| c.len_utf8() + 1)
                };
                match len {
                    Some(len) => {
                        out.push_str("' '");
                        i += 1 + len;
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// `code` without its `#[cfg(test)]` / `#[cfg(all(test, …))]` inline modules.
fn without_test_modules(code: &str) -> String {
    let mut code = code.to_owned();
    loop {
        let Some(start) = code.find("#[cfg(test)]").or_else(|| code.find("#[cfg(all(test")) else {
            return code;
        };
        let after = &code[start..];
        let Some(open) = after.find(['{', ';']) else { return code };
        if after.as_bytes()[open] == b';' {
            // `mod tests;` lives in its own file, which is skipped.
            code.replace_range(start..start + open + 1, "");
            continue;
        }
        let mut depth = 0;
        let mut end = start + open;
        for (offset, byte) in code[start + open..].bytes().enumerate() {
            match byte {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + open + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        code.replace_range(start..end, "");
    }
}

/// The top-level modules `code` names through `crate::`.
fn crate_paths(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `$crate::`, `chatd_core_crate::`…
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first name of each item at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            for (i, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| modules.contains(m));
    found
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            if entry.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&entry, out);
        }
    } else if path.is_file()
        && path.extension().is_some_and(|e| e == "rs")
        && path.file_name().is_some_and(|n| n != "tests.rs")
    {
        out.push(path.to_owned());
    }
}

/// Module → the modules it imports, with a file that shows each edge.
fn graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("src").flatten() {
        let path = entry.path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        if name != "lib" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            modules.insert(name);
        }
    }
    let mut edges = BTreeMap::new();
    for module in &modules {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        rust_files(&src.join(format!("{module}.rs")), &mut files);
        let targets: &mut BTreeMap<String, PathBuf> = edges.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            let code = without_test_modules(&code_only(&text));
            for target in crate_paths(&code, &modules) {
                if &target != module {
                    targets.entry(target).or_insert_with(|| file.clone());
                }
            }
        }
    }
    edges
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn every_module_imports_only_its_layer_or_below_and_nothing_cycles() {
    let edges = graph();
    let mut problems = Vec::new();
    for (module, targets) in &edges {
        if UNLISTED.contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer_of(module) else {
            problems.push(format!("`{module}` is in no layer: add it to LAYERS"));
            continue;
        };
        for (target, file) in targets {
            let Some(theirs) = layer_of(target) else { continue };
            if theirs > own {
                problems.push(format!(
                    "`{module}` (layer {own}) imports `{target}` (layer {theirs}), upward: {}",
                    file.display()
                ));
            }
            if APART.iter().any(|&(a, b)| (a, b) == (module, target) || (b, a) == (module, target))
            {
                problems.push(format!("`{module}` imports `{target}`: {}", file.display()));
            }
        }
    }
    // No cycle: repeatedly remove modules that import nothing left.
    let mut left: BTreeMap<&String, BTreeSet<&String>> =
        edges.iter().map(|(m, t)| (m, t.keys().collect())).collect();
    while let Some(leaf) = left.iter().find(|(_, t)| t.is_empty()).map(|(m, _)| *m) {
        left.remove(leaf);
        for targets in left.values_mut() {
            targets.remove(leaf);
        }
    }
    if !left.is_empty() {
        problems.push(format!("a cycle among {left:?}"));
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
    let count: usize = edges.values().map(BTreeMap::len).sum();
    println!("{} modules, {count} edges, all downward, no cycle", edges.len());
}

#[test]
fn the_scanner_sees_through_comments_strings_and_test_modules() {
    let modules: BTreeSet<String> = ["store", "runtime", "chat"].map(str::to_owned).into();
    let code = without_test_modules(&code_only(
        "use crate::{chat::Chat, store::{Lease, StoreError}};\n\
         // crate::runtime in a comment\n\
         let s = \"crate::runtime in a string\"; let c = '{';\n\
         #[cfg(test)]\nmod tests { use crate::runtime::x; fn f() { let _ = '}'; } }\n",
    ));
    assert_eq!(crate_paths(&code, &modules), ["chat", "store"].map(str::to_owned).into());
    let upward = code_only("fn f() { crate::runtime::turn::TurnRunner::new(); }");
    assert_eq!(crate_paths(&upward, &modules), ["runtime"].map(str::to_owned).into());
}
