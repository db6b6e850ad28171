//! `statewire machine check|run`: local tools for machine authors.
//!
//! Both commands run the bundle in the same runtime the server uses (wasmer and the embedded
//! JavaScript guest), so a bundle that passes here loads and behaves the same once uploaded.
//! Nothing is stored: `run` keeps the instance's snapshot in memory for the one command.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};
use statewire::runtime::{CodeKind, InitInput, MachineCode, Runtime, RuntimeConfig, Step};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Load a bundle in the runtime and print what it exports, or why it cannot be used.
    Check(CheckArgs),
    /// Create an in-memory instance, send it events, and print one JSON line per state.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The machine: an ES module (`.js`), a raw-wasm machine (`.wasm`), either one gzipped.
    bundle: PathBuf,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The machine: an ES module (`.js`), a raw-wasm machine (`.wasm`), either one gzipped.
    bundle: PathBuf,
    /// Context given at creation, a JSON object merged over the machine's initial context.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    context: String,
    /// The caller's auth context, a JSON object (what a token's claims would give).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    auth_context: String,
    /// The instance name passed to the machine and its authorizers.
    #[arg(long, value_name = "NAME", default_value = "local")]
    instance: String,
    /// An event to send: a type name (`toggle`) or a JSON object (`{"type":"set","value":3}`).
    /// Repeat to send several, in order.
    #[arg(long = "event", value_name = "EVENT")]
    events: Vec<String>,
    /// Ask `allowWrite` before creating the instance and before each event, as the server does
    /// for these requests, and stop at the first denial.
    #[arg(long)]
    authorize: bool,
    /// Add each step's normalized effects (timers, sends, logs) to its line.
    #[arg(long)]
    effects: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(clap::Args)]
struct RuntimeArgs {
    /// Wall-clock deadline for each call into the machine, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    deadline_ms: u64,
    /// Where compiled modules are cached between runs [default: the user's cache directory,
    /// or the system temp directory].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        Command::Check(args) => tokio.block_on(check(args)),
        Command::Run(args) => tokio.block_on(run_events(args)),
    }
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let runtime = args.runtime.build()?;
    let code = read_bundle(&args.bundle, runtime.config().max_bundle_bytes)?;
    let info = runtime
        .check(&code)
        .await
        .with_context(|| format!("{} cannot be used", args.bundle.display()))?;
    if code.kind == CodeKind::JsBundle {
        let missing: Vec<&str> = ["allowRead", "allowWrite"]
            .into_iter()
            .filter(|name| !info.exports.iter().any(|e| e == name))
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} does not export {}: every machine needs `allowRead` and `allowWrite` \
                 functions beside its default export",
                args.bundle.display(),
                missing.join(" or ")
            );
        }
    }
    let line = CheckLine {
        ok: true,
        xstate_major: info.xstate_major,
        exports: &info.exports,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

/// The line `machine check` prints for a usable bundle. Field order is the printed order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckLine<'a> {
    ok: bool,
    /// 4 or 5 for JavaScript bundles, null for raw-wasm machines.
    xstate_major: Option<u8>,
    exports: &'a [String],
}

/// One line of `machine run` output. Field order is the printed order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RunLine<'a> {
    event: Option<&'a Value>,
    state: &'a Value,
    public_context: Value,
    tags: &'a [String],
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    effects: Option<&'a [Value]>,
}

async fn run_events(args: RunArgs) -> anyhow::Result<()> {
    let context = parse_object("--context", &args.context)?;
    let auth_context = parse_object("--auth-context", &args.auth_context)?;
    let events = args
        .events
        .iter()
        .map(|e| parse_event(e))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let runtime = args.runtime.build()?;
    let code = read_bundle(&args.bundle, runtime.config().max_bundle_bytes)?;
    runtime
        .check(&code)
        .await
        .with_context(|| format!("{} cannot be used", args.bundle.display()))?;

    let instance = args.instance.as_str();
    if args.authorize {
        let init_args = json!({
            "type": "initialization",
            "machineInstanceName": instance,
            "context": context,
            "authContext": auth_context,
        });
        authorize(&runtime, &code, &init_args, "creating the instance").await?;
    }
    let input = InitInput {
        machine_instance_name: instance.to_owned(),
        context,
        auth_context: auth_context.clone(),
    };
    let mut step = runtime
        .init(&code, &input)
        .await
        .context("creating the instance failed")?;
    print_step(None, &step, args.effects)?;

    for (index, event) in events.iter().enumerate() {
        let what = format!("event {} {}", index + 1, event);
        if args.authorize {
            let write_args = event_authorizer_args(instance, &step, &auth_context, event);
            authorize(&runtime, &code, &write_args, &what).await?;
        }
        step = runtime
            .transition(&code, &step.snapshot, event)
            .await
            .with_context(|| format!("{what} failed"))?;
        print_step(Some(event), &step, args.effects)?;
    }
    Ok(())
}

/// The argument State Backed passes to `allowWrite` for an event.
fn event_authorizer_args(instance: &str, step: &Step, auth: &Value, event: &Value) -> Value {
    json!({
        "type": "event",
        "machineInstanceName": instance,
        "state": step.state,
        "context": step.context,
        "event": event,
        "authContext": auth,
    })
}

async fn authorize(
    runtime: &Runtime,
    code: &MachineCode,
    args: &Value,
    what: &str,
) -> anyhow::Result<()> {
    let allowed = runtime
        .allow_write(code, args)
        .await
        .with_context(|| format!("allowWrite failed before {what}"))?;
    if !allowed {
        bail!("allowWrite denied {what} for this auth context");
    }
    Ok(())
}

fn print_step(event: Option<&Value>, step: &Step, with_effects: bool) -> anyhow::Result<()> {
    let line = RunLine {
        event,
        state: &step.state,
        public_context: step.public_context(),
        tags: &step.tags,
        done: step.done,
        effects: with_effects.then_some(step.effects.as_slice()),
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &line)?;
    // Flushed per line so the steps before a failure are visible.
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

impl RuntimeArgs {
    fn build(&self) -> anyhow::Result<Runtime> {
        let config = RuntimeConfig {
            cache_dir: self.cache_dir.clone().unwrap_or_else(default_cache_dir),
            call_deadline: Duration::from_millis(self.deadline_ms),
            workers: 1,
            idle_guests_per_machine: 1,
            ..RuntimeConfig::default()
        };
        Runtime::new(config).context("starting the machine runtime")
    }
}

/// `$XDG_CACHE_HOME/statewire`, else `~/.cache/statewire`, else the temp directory; never the
/// working directory, which belongs to the author's project.
fn default_cache_dir() -> PathBuf {
    let user_cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        });
    match user_cache {
        Some(dir) => dir.join("statewire"),
        None => std::env::temp_dir().join("statewire-cache"),
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Reads a bundle, unzipping it when it is gzipped (by `.gz` name or gzip magic), and checks
/// that a `.wasm` file really is WebAssembly and that anything else is UTF-8 JavaScript.
fn read_bundle(path: &Path, max_bytes: usize) -> anyhow::Result<MachineCode> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let gzipped = raw.starts_with(&GZIP_MAGIC) || has_extension(path, "gz");
    let bytes = if gzipped {
        gunzip(&raw, max_bytes).with_context(|| format!("unzipping {}", path.display()))?
    } else {
        raw
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let inner = name.strip_suffix(".gz").unwrap_or(&name);
    let is_wasm = bytes.starts_with(WASM_MAGIC);
    if inner.ends_with(".wasm") && !is_wasm {
        bail!(
            "{} is not a WebAssembly module (it does not start with \\0asm)",
            path.display()
        );
    }
    if !is_wasm {
        if let Err(e) = std::str::from_utf8(&bytes) {
            bail!(
                "{} is neither WebAssembly nor UTF-8 JavaScript: invalid UTF-8 at byte {}",
                path.display(),
                e.valid_up_to()
            );
        }
    }
    MachineCode::new(bytes, max_bytes).with_context(|| format!("{} is refused", path.display()))
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Unzips at most `max_bytes + 1` bytes, so a small file cannot expand without bound; the
/// size limit itself is enforced by `MachineCode::new`.
fn gunzip(raw: &[u8], max_bytes: usize) -> anyhow::Result<Vec<u8>> {
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(limit)
        .read_to_end(&mut bytes)
        .context("not valid gzip data")?;
    Ok(bytes)
}

fn parse_object(flag: &str, text: &str) -> anyhow::Result<Value> {
    let value: Value =
        serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))?;
    if !value.is_object() {
        bail!("{flag} must be a JSON object, got {value}");
    }
    Ok(value)
}

/// An event given on the command line: JSON when it starts with `{`, otherwise a type name,
/// the same rule smply uses for `--event`.
fn parse_event(text: &str) -> anyhow::Result<Value> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let event: Value = serde_json::from_str(trimmed)
            .with_context(|| format!("event {text} is not valid JSON"))?;
        match event.get("type") {
            Some(Value::String(t)) if !t.is_empty() => Ok(event),
            _ => Err(anyhow!(
                "event {text} needs a non-empty string `type` property"
            )),
        }
    } else if trimmed.is_empty() {
        bail!("an event cannot be empty")
    } else {
        Ok(json!({ "type": trimmed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_word_is_an_event_type_and_braces_are_json() {
        assert_eq!(parse_event("toggle").unwrap(), json!({"type": "toggle"}));
        assert_eq!(
            parse_event(r#"{"type":"set","value":3}"#).unwrap(),
            json!({"type": "set", "value": 3})
        );
    }

    #[test]
    fn json_events_without_a_string_type_are_refused() {
        assert!(parse_event(r#"{"value":3}"#).is_err());
        assert!(parse_event(r#"{"type":3}"#).is_err());
        assert!(parse_event("{not json").is_err());
        assert!(parse_event("  ").is_err());
    }

    #[test]
    fn context_flags_must_be_objects() {
        assert!(parse_object("--context", "[1]").is_err());
        assert!(parse_object("--context", "nope").is_err());
        assert_eq!(
            parse_object("--context", r#"{"a":1}"#).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn gzipped_bundles_are_unzipped_up_to_one_byte_past_the_limit() {
        use flate2::{write::GzEncoder, Compression};
        let mut zipped = GzEncoder::new(Vec::new(), Compression::default());
        zipped.write_all(&[b'x'; 1000]).unwrap();
        let zipped = zipped.finish().unwrap();
        assert_eq!(gunzip(&zipped, 5000).unwrap().len(), 1000);
        assert_eq!(gunzip(&zipped, 10).unwrap().len(), 11);
        assert!(gunzip(b"\x1f\x8bnot really", 10).is_err());
    }

    #[test]
    fn check_lines_print_ok_first() {
        let exports = vec!["allowRead".to_owned(), "allowWrite".to_owned()];
        let line = CheckLine {
            ok: true,
            xstate_major: Some(4),
            exports: &exports,
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"ok":true,"xstateMajor":4,"exports":["allowRead","allowWrite"]}"#
        );
    }

    #[test]
    fn run_lines_print_fields_in_a_stable_order() {
        let state = json!("on");
        let tags = vec!["t".to_owned()];
        let line = RunLine {
            event: None,
            state: &state,
            public_context: json!({"toggleCount": 0}),
            tags: &tags,
            done: false,
            effects: None,
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"event":null,"state":"on","publicContext":{"toggleCount":0},"tags":["t"],"done":false}"#
        );
    }
}
