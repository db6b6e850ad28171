//! A toggle machine that speaks the statewire machine ABI v1 without any JavaScript.
//!
//! The host writes each call's input into a buffer this module hands out
//! (`statewire_input`), then calls `statewire_call(op, len)` and reads the JSON reply at the
//! returned `(ptr << 32) | len`. All state lives in linear memory, so the host may copy the
//! memory of a loaded instance into fresh instances.
//!
//! Snapshots are `{"value": "on" | "off", "context": {...}}`.

use std::cell::RefCell;

use serde_json::{json, Map, Value};

thread_local! {
    /// Where the host writes the input of the next call.
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The reply of the last call; kept until the next call.
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

const OP_CONFIGURE: i32 = 0;
const OP_LOAD: i32 = 1;
const OP_INIT: i32 = 2;
const OP_TRANSITION: i32 = 3;
const OP_ALLOW_READ: i32 = 4;
const OP_ALLOW_WRITE: i32 = 5;

/// A failed call: an ABI error kind and a message.
struct Failure {
    kind: &'static str,
    message: String,
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    fn bad_input(message: impl Into<String>) -> Self {
        Self::new("bad-input", message)
    }
}

#[no_mangle]
pub extern "C" fn statewire_abi_version() -> i32 {
    1
}

#[no_mangle]
pub extern "C" fn statewire_input(len: i32) -> i32 {
    INPUT.with(|input| {
        let mut input = input.borrow_mut();
        let len = usize::try_from(len).unwrap_or(0);
        if input.len() < len {
            input.resize(len, 0);
        }
        input.as_mut_ptr() as i32
    })
}

#[no_mangle]
pub extern "C" fn statewire_call(op: i32, len: i32) -> i64 {
    let reply = INPUT.with(|input| {
        let input = input.borrow();
        let len = usize::try_from(len).unwrap_or(0).min(input.len());
        match dispatch(op, &input[..len]) {
            Ok(result) => json!({ "ok": result }),
            Err(failure) => json!({
                "error": { "kind": failure.kind, "message": failure.message }
            }),
        }
    });
    OUTPUT.with(|output| {
        let mut output = output.borrow_mut();
        output.clear();
        serde_json::to_writer(&mut *output, &reply).expect("a Value always serializes");
        ((output.as_ptr() as i64) << 32) | output.len() as i64
    })
}

fn dispatch(op: i32, input: &[u8]) -> Result<Value, Failure> {
    match op {
        OP_CONFIGURE => Ok(json!({})),
        OP_LOAD => Ok(json!({
            "abi": 1,
            "xstateMajor": null,
            "exports": ["allowRead", "allowWrite"],
        })),
        OP_INIT => init(&parse(input)?),
        OP_TRANSITION => transition(&parse(input)?),
        OP_ALLOW_READ | OP_ALLOW_WRITE => {
            let args = parse(input)?;
            Ok(json!({ "allowed": caller_is_instance(&args) }))
        }
        other => Err(Failure::new(
            "unsupported-op",
            format!("unknown operation {other}"),
        )),
    }
}

fn parse(input: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(input).map_err(|e| Failure::bad_input(format!("input is not JSON: {e}")))
}

/// Both authorizers allow exactly the user named like the instance.
fn caller_is_instance(args: &Value) -> bool {
    match (
        args["authContext"]["sub"].as_str(),
        args["machineInstanceName"].as_str(),
    ) {
        (Some(sub), Some(name)) => sub == name,
        _ => false,
    }
}

fn init(args: &Value) -> Result<Value, Failure> {
    let mut context = Map::new();
    context.insert("public".into(), json!({ "toggleCount": 0 }));
    match &args["context"] {
        Value::Object(given) => context.extend(given.clone()),
        Value::Null => {}
        _ => return Err(Failure::bad_input("context must be an object")),
    }
    let mut context = Value::Object(context);
    enter_off(&mut context);
    Ok(step("off", context, Vec::new()))
}

fn transition(args: &Value) -> Result<Value, Failure> {
    let snapshot = &args["snapshot"];
    let value = snapshot["value"]
        .as_str()
        .ok_or_else(|| Failure::bad_input("snapshot has no state value"))?;
    let mut context = snapshot["context"].clone();
    if !context.is_object() {
        return Err(Failure::bad_input("snapshot has no context"));
    }
    let event = &args["event"];
    let event_type = event["type"]
        .as_str()
        .ok_or_else(|| Failure::bad_input("event must have a string type"))?;

    let mut effects = Vec::new();
    let next = match event_type {
        "toggle" if value == "on" => {
            enter_off(&mut context);
            "off"
        }
        "toggle" => "on",
        "spin" => spin(),
        "hog" => hog(),
        "hog-gently" => return Err(hog_gently()),
        "crash" => core::arch::wasm32::unreachable(),
        "exit" => std::process::exit(3),
        "throw" => return Err(Failure::new("machine-threw", "asked to throw")),
        "fill" => {
            let bytes = event["bytes"].as_u64().unwrap_or(0) as usize;
            context["public"]["filler"] = Value::String("x".repeat(bytes));
            value
        }
        "remind" => {
            let delay_ms = event["delay"].as_u64().unwrap_or(1000);
            effects.push(json!({
                "type": "schedule",
                "id": "reminder",
                "delay": delay_ms,
                "event": { "type": "toggle" },
                "to": null,
            }));
            value
        }
        // Unknown events leave the machine where it is, as XState does.
        _ => value,
    };
    Ok(step(next, context, effects))
}

/// The entry action of `off`: count one more toggle.
fn enter_off(context: &mut Value) {
    if !context["public"].is_object() {
        context["public"] = json!({});
    }
    let count = context["public"]["toggleCount"].as_u64().unwrap_or(0);
    context["public"]["toggleCount"] = json!(count + 1);
}

fn step(value: &str, context: Value, effects: Vec<Value>) -> Value {
    let tags: Vec<&str> = if value == "on" { vec!["lit"] } else { vec![] };
    json!({
        "snapshot": { "value": value, "context": context },
        "state": value,
        "context": context,
        "tags": tags,
        "done": false,
        "effects": effects,
    })
}

/// Never returns; only the host's deadline ends it.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks until the allocator gives up and aborts the module.
fn hog() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

/// Allocates 1 MiB blocks until one is refused, then frees them and reports it.
fn hog_gently() -> Failure {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::new();
        if block.try_reserve_exact(1 << 20).is_err() || blocks.try_reserve(1).is_err() {
            return Failure::new(
                "out-of-memory",
                format!("allocation refused after {} MiB", blocks.len()),
            );
        }
        block.resize(1 << 20, 1u8);
        blocks.push(std::hint::black_box(block));
    }
}
