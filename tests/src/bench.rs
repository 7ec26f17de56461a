//! What every benchmark in `src/bin/bench_*.rs` needs to publish its figures: where and when they were measured,
//! and a place in `BENCHMARKS.md`.
//!
//! Figures in `BENCHMARKS.md` are never typed in by hand. Each benchmark owns one section of the file, between
//! two markers named after it, and rewrites that section — and only that one — at the end of each run:
//!
//! ```text
//! <!-- bench_scheduler:start -->
//! ## ... the figures, the machine, the command to rerun it ...
//! <!-- bench_scheduler:end -->
//! ```
//!
//! So the file always shows what the programs last measured, the benchmarks can be rerun in any order, and
//! each section says how to rerun it.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::Command;

/// The machine the figures come from: cores, CPU model and the load average before the run, for example
/// `2 cores (nproc), AMD EPYC; load average 2.21 2.59 2.22 before the run (other work on the machine)`.
///
/// Call it before the benchmark adds load of its own: the load average then says how busy the machine already
/// was, which matters on a shared 2-core machine more than the CPU model does.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    format!("{cores} cores (nproc), {model}; load average {load} before the run (other work on the machine)")
}

/// Today's date (UTC) as `YYYY-MM-DD`, from `date`, to date the figures.
pub fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| "an unknown date".into())
}

/// Replaces the section `name` of `BENCHMARKS.md` (at the root of the workspace) with `markdown`, keeping the rest
/// of the file; a section seen for the first time is appended, and a missing file is created. Returns the file's
/// path.
///
/// The section lies between the lines `<!-- {name}:start -->` and `<!-- {name}:end -->`.
pub fn write_section(name: &str, markdown: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures written by the benchmarks themselves; rerun them with the command under each section.\n".into()
    });
    let (start, end) = (format!("<!-- {name}:start -->"), format!("<!-- {name}:end -->"));
    let newline = if markdown.ends_with('\n') { "" } else { "\n" };
    let block = format!("{start}\n{markdown}{newline}{end}");
    let updated = match (existing.find(&start), existing.find(&end)) {
        (Some(at), Some(until)) if at < until => {
            format!("{}{block}{}", &existing[..at], &existing[until + end.len()..])
        }
        _ => format!("{}\n{block}\n", existing.trim_end()),
    };
    std::fs::write(&path, updated).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.canonicalize().unwrap_or(path))
}
