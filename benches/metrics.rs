//! What recording costs on the hot path, with the Prometheus recorder installed: one event's
//! helper call (counter with a bounded machine label, plus a histogram sample), one guest
//! call's histogram sample, a live-count guard, and one scrape of a registry filled by 100
//! machines' worth of series.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use http::{Method, StatusCode};
use statewire::ids::MachineName;
use statewire::metrics::{self, events, http as hm, labels, runtime};
use statewire::registry::RegistryError;
use statewire::runtime::CodeKind;

fn hot_path(c: &mut Criterion) {
    metrics::install().unwrap();
    let machine = MachineName::parse("checkout").unwrap();
    let accepted: Result<(), RegistryError> = Ok(());
    let elapsed = Duration::from_micros(850);

    c.bench_function("metrics/event_finished", |b| {
        b.iter(|| events::event_finished(black_box(&machine), &accepted, elapsed))
    });
    c.bench_function("metrics/machine_label_known", |b| {
        b.iter(|| labels::machine(black_box(&machine)))
    });
    c.bench_function("metrics/call_finished", |b| {
        b.iter(|| runtime::call_finished("transition", CodeKind::JsBundle, black_box(elapsed)))
    });
    c.bench_function("metrics/http_request_finished", |b| {
        b.iter(|| {
            hm::request_finished(
                "/machines/{machineName}/i/{instanceName}/events",
                &Method::POST,
                StatusCode::OK,
                black_box(elapsed),
            )
        })
    });
    c.bench_function("metrics/live_gauge_hold_and_drop", |b| {
        b.iter(|| drop(black_box(events::hot_instance())))
    });
}

fn scrape(c: &mut Criterion) {
    let exporter = metrics::install().unwrap();
    let ok: Result<(), RegistryError> = Ok(());
    for n in 0..labels::MACHINE_LABELS_MAX {
        let machine = MachineName::parse(format!("machine-{n}")).unwrap();
        events::event_finished(&machine, &ok, Duration::from_millis(1));
        events::creation_finished(&machine, &ok);
    }
    let text = exporter.render();
    println!(
        "scrape of {} lines, {} bytes",
        text.lines().count(),
        text.len()
    );
    c.bench_function("metrics/render_100_machines", |b| {
        b.iter(|| exporter.render())
    });
}

criterion_group!(benches, hot_path, scrape);
criterion_main!(benches);
