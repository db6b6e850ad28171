//! `fsync-baseline`: the ceiling of "one durable commit per event" on this disk.
//!
//! W writer threads, each writing a small record to its own file and calling `fdatasync`
//! (`File::sync_data`) after every record, the way a server without group commit would make
//! each event durable before answering it. Two ways of writing, both run:
//!
//! - `append`: at the end of the file, so every sync also has to record the new file size (on
//!   ext4, a journal commit);
//! - `overwrite`: in turn over a preallocated 1 MiB region, so the sync writes data only, as a
//!   store that reuses allocated pages (redb) does.
//!
//! Run in the directory the server's data lives in, it gives the figures statewire's batched
//! commits are compared against.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::percentiles::Summary;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory the files are written in (use the disk the server's data is on).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    pub dir: PathBuf,
    /// Writer counts to run, comma-separated; each writer has its own file.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub writers: Vec<usize>,
    /// Seconds per writer count.
    #[arg(long, default_value_t = 3.0)]
    pub duration_s: f64,
    /// Bytes per record.
    #[arg(long, default_value_t = 200)]
    pub record_bytes: usize,
    /// Write the figures to this JSON file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Bytes each `overwrite` writer preallocates and cycles over.
const OVERWRITE_REGION_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Append,
    Overwrite,
}

/// One writer count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FsyncRun {
    pub mode: Mode,
    pub writers: usize,
    pub events: u64,
    pub events_per_s: f64,
    /// Append + fdatasync of one record.
    pub latency: Summary,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.duration_s > 0.0, "--duration-s must be positive");
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let duration = Duration::from_secs_f64(args.duration_s);
    let mut runs = Vec::new();
    for &writers in &args.writers {
        anyhow::ensure!(writers >= 1, "writer counts must be at least 1");
        for mode in [Mode::Append, Mode::Overwrite] {
            let run = measure(&args.dir, mode, writers, duration, args.record_bytes)?;
            println!(
                "fsync baseline, {:?}, {} writer(s): {:.0} durable writes/s; {}",
                run.mode, run.writers, run.events_per_s, run.latency
            );
            runs.push(run);
        }
    }
    if let Some(path) = &args.report {
        crate::report::write(
            path,
            &json!({"scenario": "fsync-baseline", "dir": args.dir, "record_bytes": args.record_bytes,
                "duration_s": args.duration_s, "runs": runs}),
        )?;
    }
    Ok(())
}

fn measure(
    dir: &Path,
    mode: Mode,
    writers: usize,
    duration: Duration,
    record_bytes: usize,
) -> anyhow::Result<FsyncRun> {
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let path = dir.join(format!("fsync-baseline-{}-{w}.log", std::process::id()));
            std::thread::spawn(move || writer(&path, mode, deadline, record_bytes))
        })
        .collect();
    let mut latencies_ms = Vec::new();
    for handle in handles {
        let samples = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        latencies_ms.extend(samples);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let events = latencies_ms.len() as u64;
    Ok(FsyncRun {
        mode,
        writers,
        events,
        events_per_s: events as f64 / elapsed,
        latency: Summary::of(latencies_ms),
    })
}

/// Writes and syncs records until `deadline`; returns each one's latency in ms.
fn writer(
    path: &Path,
    mode: Mode,
    deadline: Instant,
    record_bytes: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let record_bytes = record_bytes.clamp(9, OVERWRITE_REGION_BYTES as usize);
    if mode == Mode::Overwrite {
        // Real blocks, written and synced once, so the loop changes no metadata.
        file.write_all(&vec![0; OVERWRITE_REGION_BYTES as usize])?;
        file.sync_all()?;
    }
    let slots = OVERWRITE_REGION_BYTES / record_bytes as u64;
    let mut record = vec![b'x'; record_bytes];
    *record.last_mut().expect("not empty") = b'\n';
    let mut latencies_ms = Vec::new();
    let mut n: u64 = 0;
    let outcome = loop {
        let start = Instant::now();
        if start >= deadline {
            break Ok(latencies_ms);
        }
        record[..8].copy_from_slice(&n.to_le_bytes());
        let written = match mode {
            Mode::Append => file.write_all(&record),
            Mode::Overwrite => file.write_all_at(&record, (n % slots) * record_bytes as u64),
        };
        n += 1;
        if let Err(e) = written.and_then(|()| file.sync_data()) {
            break Err(anyhow::anyhow!("{}: {e}", path.display()));
        }
        latencies_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    };
    drop(file);
    let _ = std::fs::remove_file(path);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_append_sync_and_clean_up() {
        let dir = std::env::temp_dir().join(format!("fsync-baseline-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for mode in [Mode::Append, Mode::Overwrite] {
            let run = measure(&dir, mode, 2, Duration::from_millis(200), 64).unwrap();
            assert_eq!((run.mode, run.writers), (mode, 2));
            assert!(run.events > 0);
            assert_eq!(run.latency.count as u64, run.events);
            assert!(run.latency.p50_ms > 0.0);
        }
        let left = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left, 0, "the writers' files are removed");
    }
}
