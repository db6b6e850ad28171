use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("statewire.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_listen_on_loopback_8080_with_the_embedded_store() {
    let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 8080);
    assert_eq!(c.data_dir, PathBuf::from("./statewire-data"));
    assert_eq!(c.store.kind, StoreKind::Embedded);
    assert_eq!(c.cors.allowed_origins, vec!["*"]);
    assert_eq!(c.websocket.ping_interval_ms, 300_000);
    assert_eq!(c.runtime.max_context_bytes, 400_000);
}

#[test]
fn a_file_overrides_only_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "port = 9000\n[registry]\nmax_hot_instances = 7\n[runtime]\ncall_deadline_ms = 500\n",
    );
    let c = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.port, 9000);
    assert_eq!(c.registry.max_hot_instances, 7);
    assert_eq!(
        c.registry.idle_evict_ms,
        RegistryLimits::default().idle_evict_ms
    );
    assert_eq!(c.runtime.call_deadline_ms, 500);
    assert_eq!(c.host, "127.0.0.1");
}

#[test]
fn env_overrides_the_file_and_flags_override_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "port = 9000\nhost = \"::1\"\ndata_dir = \"/from-file\"\n",
    );
    let vars = env(&[
        ("STATEWIRE_PORT", "9100"),
        ("STATEWIRE_DATA_DIR", "/from-env"),
        ("STATEWIRE_STORE", "memory"),
    ]);
    let flags = Overrides {
        port: Some(0),
        ..Overrides::default()
    };
    let c = Config::load(Some(&path), vars, &flags).unwrap();
    assert_eq!(c.port, 0, "flag wins over env");
    assert_eq!(c.data_dir, PathBuf::from("/from-env"), "env wins over file");
    assert_eq!(c.host, "::1", "file wins over default");
    assert_eq!(c.store.kind, StoreKind::Memory);
}

#[test]
fn statewire_config_names_the_file_unless_the_flag_does() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = write_file(&dir, "port = 1111\n");
    let from_flag = dir.path().join("flag.toml");
    std::fs::write(&from_flag, "port = 2222\n").unwrap();
    let vars = env(&[("STATEWIRE_CONFIG", from_env.to_str().unwrap())]);

    let c = Config::load(None, vars.clone(), &Overrides::default()).unwrap();
    assert_eq!(c.port, 1111);
    let c = Config::load(Some(&from_flag), vars, &Overrides::default()).unwrap();
    assert_eq!(c.port, 2222);
}

#[test]
fn every_listed_env_var_is_applied() {
    let mut c = Config::default();
    c.apply_env(env(&[
        ("STATEWIRE_HOST", "0.0.0.0"),
        ("STATEWIRE_PUBLIC_URL", "https://sw.example.com"),
        (
            "STATEWIRE_CORS_ORIGINS",
            "https://a.example, https://b.example",
        ),
        ("STATEWIRE_CALL_DEADLINE_MS", "1234"),
        ("STATEWIRE_MEMORY_LIMIT_BYTES", "1048576"),
        ("STATEWIRE_WORKERS", "3"),
        ("STATEWIRE_MAX_CONTEXT_BYTES", "1000"),
        ("STATEWIRE_MAX_HOT_INSTANCES", "12"),
        ("STATEWIRE_IDLE_EVICT_MS", "34"),
        ("STATEWIRE_WS_PING_INTERVAL_MS", "56"),
        ("STATEWIRE_WS_PING_GRACE_MS", "78"),
        ("STATEWIRE_SHUTDOWN_GRACE_MS", "90"),
        ("STATEWIRE_EFFECTS_RETRY_INTERVAL_MS", "50"),
        ("STATEWIRE_EFFECTS_MAX_ATTEMPTS", "3"),
        ("STATEWIRE_LOG", "debug"),
    ]))
    .unwrap();
    assert_eq!(c.host, "0.0.0.0");
    assert_eq!(c.public_url.as_deref(), Some("https://sw.example.com"));
    assert_eq!(
        c.cors.allowed_origins,
        vec!["https://a.example", "https://b.example"]
    );
    assert_eq!(c.runtime.call_deadline_ms, 1234);
    assert_eq!(c.runtime.memory_limit_bytes, 1_048_576);
    assert_eq!(c.runtime.workers, 3);
    assert_eq!(c.runtime.max_context_bytes, 1000);
    assert_eq!(c.registry.max_hot_instances, 12);
    assert_eq!(c.registry.idle_evict_ms, 34);
    assert_eq!(c.websocket.ping_interval_ms, 56);
    assert_eq!(c.websocket.ping_grace_ms, 78);
    assert_eq!(c.shutdown_grace_ms, 90);
    assert_eq!(c.effects.retry_interval_ms, 50);
    assert_eq!(c.effects.max_attempts, 3);
}

#[test]
fn every_name_in_env_vars_is_understood() {
    for var in ENV_VARS {
        let sample = match *var {
            "STATEWIRE_STORE" => "memory",
            "STATEWIRE_HOST" | "STATEWIRE_DATA_DIR" | "STATEWIRE_CORS_ORIGINS" => "x",
            "STATEWIRE_PUBLIC_URL" => "http://x",
            _ => "7",
        };
        assert!(Config::default().apply_var(var, sample).unwrap(), "{var}");
    }
    assert!(!Config::default()
        .apply_var("STATEWIRE_LOG", "debug")
        .unwrap());
}

#[test]
fn a_malformed_env_value_names_the_variable() {
    let err = Config::load(
        None,
        env(&[("STATEWIRE_PORT", "eighty")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("STATEWIRE_PORT"),
        "unexpected message: {err}"
    );
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "prot = 80\n");
    let err = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
}

#[test]
fn a_missing_file_is_an_error_not_a_silent_default() {
    let err = Config::load(
        Some(Path::new("/nonexistent/statewire.toml")),
        env(&[]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn the_scylla_section_then_scylla_env_configure_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "[store]\nkind = \"scylla\"\n[store.scylla]\nnodes = [\"10.0.0.1:9042\"]\nkeyspace = \"sw\"\n",
    );
    let c = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.store.scylla.nodes, vec!["10.0.0.1:9042"]);
    assert_eq!(c.store.scylla.keyspace, "sw");

    let vars = env(&[("STATEWIRE_SCYLLA_NODES", "10.0.0.2,10.0.0.3")]);
    let c = Config::load(Some(&path), vars, &Overrides::default()).unwrap();
    assert_eq!(c.store.scylla.nodes, vec!["10.0.0.2", "10.0.0.3"]);
}

#[test]
fn scylla_without_contact_points_is_refused() {
    let err = Config::load(
        None,
        env(&[("STATEWIRE_STORE", "scylla")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Scylla(_)), "{err}");
}

#[test]
fn runtime_settings_follow_the_limits_and_the_data_dir() {
    let mut c = Config {
        data_dir: PathBuf::from("/var/lib/statewire"),
        ..Config::default()
    };
    c.runtime.call_deadline_ms = 250;
    let r = c.runtime_config();
    assert_eq!(r.cache_dir, PathBuf::from("/var/lib/statewire/cache"));
    assert_eq!(r.call_deadline, Duration::from_millis(250));
}

#[test]
fn the_effects_section_sets_retries_and_defaults_to_five_attempts_30_s_apart() {
    assert_eq!(EffectsConfig::default().retry_interval_ms, 30_000);
    assert_eq!(EffectsConfig::default().max_attempts, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "[effects]\nretry_interval_ms = 50\n");
    let c = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.effects.retry_interval_ms, 50);
    assert_eq!(c.effects.max_attempts, 5);
    let path = write_file(&dir, "[effects]\nmax_attempts = 0\n");
    let err = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("effects.max_attempts"), "{err}");
}
