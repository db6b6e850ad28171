//! JSON reports: every scenario can write what it measured to a file (`--report FILE`), which
//! `bench-doc` turns into the tables of docs/benchmarks.md.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

/// Writes `report` as pretty JSON to `path`, creating its directory.
pub fn write(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("report written to {}", path.display());
    Ok(())
}
