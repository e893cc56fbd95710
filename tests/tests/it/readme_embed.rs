//! The README's "Embed it" section is the `examples/embed` crate, character for character:
//! its dependency block (with `git` where the example has `path`) and its program. CI
//! builds the example, so the README's code compiles as it stands.

fn section(readme: &str) -> &str {
    let start = readme.find("## Embed it").expect("the README has an \"Embed it\" section");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

fn block<'a>(text: &'a str, fence: &str) -> &'a str {
    let start = text.find(fence).unwrap_or_else(|| panic!("no {fence} block")) + fence.len() + 1;
    let len = text[start..].find("\n```").expect("the block ends");
    &text[start..=start + len]
}

#[test]
fn the_readme_embed_section_is_the_embed_example() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README");
    let manifest =
        std::fs::read_to_string(format!("{root}/examples/embed/Cargo.toml")).expect("manifest");
    let program =
        std::fs::read_to_string(format!("{root}/examples/embed/src/main.rs")).expect("program");
    let section = section(&readme);

    let deps_start = manifest.find("[dependencies]").expect("dependencies");
    let deps_end = manifest[deps_start..].find("\n[lints]").expect("lints") + deps_start;
    let mut expected = manifest[deps_start..deps_end].trim().to_owned();
    for krate in ["chatd-core", "chatd-store-memory", "chatd-store-postgres", "chatd-providers"] {
        expected =
            expected.replace(&format!("path = \"../../{krate}\""), "git = \"<this repository>\"");
    }
    assert_eq!(block(section, "```toml").trim(), expected, "the dependency block");
    assert_eq!(block(section, "```rust,no_run"), program, "the program");
}
