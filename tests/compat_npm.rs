//! The official npm packages against the real `statewire serve` binary: smply 0.1.18 as the
//! operator's CLI, `@statebacked/client` 0.1.37 with tokens from `@statebacked/token` 0.2.0
//! as an application would use them. The Node side lives in `tests/compat`.

mod common;
mod npm_support;
mod process_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use npm_support::Smply;
use process_support::{Serve, Served};
use serde_json::{json, Value};

/// A server on a fresh embedded store, and smply logged in to it.
struct Fixture {
    served: Served,
    smply: Smply,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        npm_support::ensure_packages();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home dir");
        let served = Serve::embedded(&data).start(&dir.path().join("serve.log"));
        let login = Command::new(env!("CARGO_BIN_EXE_statewire"))
            .args(["smply-login", "--data-dir"])
            .arg(&data)
            .arg("--home")
            .arg(&home)
            .output()
            .expect("statewire smply-login runs");
        assert!(
            login.status.success(),
            "smply-login failed: {}",
            String::from_utf8_lossy(&login.stderr)
        );
        let smply = Smply {
            home,
            url: served.url(),
        };
        Fixture { served, smply, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The quick-start toggle built to one module importing `npm:xstate`.
    fn built_toggle(&self) -> PathBuf {
        let out = self.path("toggle.js");
        let out_arg = out.to_str().expect("utf-8 path");
        npm_support::script(&self.smply.home, "build-toggle.mjs", &[out_arg], &[]).ok();
        out
    }

    /// `smply machines create -m toggle --js <built quick-start> --skip-validation`: the new
    /// version's id.
    fn deploy_quickstart(&self) -> String {
        let bundle = self.built_toggle();
        let created = self.smply.json(&[
            "machines",
            "create",
            "-m",
            "toggle",
            "--js",
            bundle.to_str().unwrap(),
            "--skip-validation",
        ]);
        assert_eq!(created["name"], "toggle", "{created}");
        let version = created["currentVersion"]["machineVersionId"]
            .as_str()
            .expect("the new version's id");
        assert!(version.starts_with("ver_"), "{created}");
        version.to_owned()
    }

    /// A project holding a copy of the quick-start source next to the installed packages,
    /// so that a build that bundles xstate in can resolve it.
    fn toggle_project(&self) -> PathBuf {
        let project = self.path("project");
        std::fs::create_dir_all(&project).expect("project dir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/toggle.ts");
        std::fs::copy(source, project.join("toggle.ts")).expect("copy toggle.ts");
        std::os::unix::fs::symlink(
            npm_support::compat_dir().join("node_modules"),
            project.join("node_modules"),
        )
        .expect("link node_modules");
        project.join("toggle.ts")
    }

    /// `smply keys create -n NAME --use USE`: the new key's `{id, key}`.
    fn create_key(&self, name: &str, use_: &str) -> (String, String) {
        let key = self
            .smply
            .json(&["keys", "create", "-n", name, "--use", use_]);
        let id = key["id"].as_str().expect("key id").to_owned();
        let secret = key["key"].as_str().expect("key secret").to_owned();
        assert!(id.starts_with("sbk_"), "{key}");
        assert!(secret.starts_with("sbsec_"), "{key}");
        (id, secret)
    }

    /// Runs a client script of `tests/compat` as the applications using `key` would.
    fn client_script(&self, name: &str, key: &(String, String)) -> npm_support::Run {
        let url = self.served.url();
        let env = [
            ("STATEWIRE_URL", url.as_str()),
            ("STATEWIRE_KEY_ID", key.0.as_str()),
            ("STATEWIRE_KEY_SECRET", key.1.as_str()),
        ];
        let run = npm_support::script(&self.smply.home, name, &[], &env);
        assert!(
            run.success,
            "{name} failed:\n{run}\n--- server log\n{}",
            self.served.log()
        );
        run
    }
}

fn ids_of(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn smply_deploys_the_quickstart_and_the_official_client_drives_it() {
    common::within(Duration::from_secs(240), || {
        let f = Fixture::start();
        let version = f.deploy_quickstart();
        let key = f.create_key("prod", "production");
        let run = f.client_script("client-http.mjs", &key);
        assert!(run.stdout.contains("# 11 passed, 0 failed"), "{run}");

        // What the client did, seen from the operator's side.
        let admin = f
            .smply
            .json(&["instances", "get", "-m", "toggle", "-i", "user-123"]);
        assert_eq!(admin["state"], "on", "{admin}");
        assert_eq!(admin["context"], json!({"public": {"toggleCount": 1}}));
        assert_eq!(admin["machineVersion"]["id"], version.as_str());
        let history = f.smply.json(&[
            "instances",
            "list-transitions",
            "-m",
            "toggle",
            "-i",
            "user-123",
        ]);
        assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
        let instances = f.smply.json(&["instances", "list", "-m", "toggle"]);
        let mut names = ids_of(&instances, "name");
        names.sort();
        assert_eq!(names, ["user-123", "user-456"]);
    });
}

#[test]
fn smply_manages_machines_versions_instances_and_keys() {
    common::within(Duration::from_secs(300), || {
        let f = Fixture::start();
        let s = &f.smply;

        // --node builds with xstate bundled in; smply validates such a bundle itself.
        let project = f.toggle_project();
        let project = project.to_str().unwrap();
        let made = s
            .run(&["machines", "create", "-m", "toggle", "--node", project])
            .ok();
        let first = made.json()["currentVersion"]["machineVersionId"]
            .as_str()
            .expect("version id")
            .to_owned();

        let machines = s.json(&["machines", "list"]);
        assert_eq!(ids_of(&machines, "name"), ["toggle"]);
        assert_eq!(machines[0]["currentVersion"]["id"], first.as_str());
        let machine = s.json(&["machines", "get", "-m", "toggle"]);
        assert_eq!(machine["machine"]["currentVersion"]["id"], first.as_str());
        assert_eq!(machine["machine"]["indexes"], json!([]));

        // A second version, not made current.
        let second = s
            .run(&[
                "machine-versions",
                "create",
                "-m",
                "toggle",
                "-r",
                "0.0.2",
                "--node",
                project,
            ])
            .ok();
        assert!(second.stdout.contains("Valid bundle"), "{second}");
        let second = second.json();
        let second = second["machineVersionId"].as_str().expect("id").to_owned();
        let versions = s.json(&["machine-versions", "list", "-m", "toggle"]);
        let mut listed = ids_of(&versions, "id");
        listed.sort();
        let mut expected = vec![first.clone(), second.clone()];
        expected.sort();
        assert_eq!(listed, expected);
        let mut infos = ids_of(&versions, "clientInfo");
        infos.sort();
        assert_eq!(infos, ["0.0.1", "0.0.2"]);
        let machine = s.json(&["machines", "get", "-m", "toggle"]);
        assert_eq!(machine["machine"]["currentVersion"]["id"], first.as_str());

        // Instances, as an admin acting as end users.
        let alice = ["-a", r#"{"sub":"alice"}"#];
        let on = s.json(
            &[
                &["instances", "create", "-m", "toggle", "-i", "alice"][..],
                &alice,
            ]
            .concat(),
        );
        assert_eq!(on["state"], "on", "{on}");
        assert_eq!(on["publicContext"], json!({"toggleCount": 0}));
        s.run(&[
            "instances",
            "create",
            "-m",
            "toggle",
            "-i",
            "alice-2",
            "-a",
            r#"{"sub":"bob"}"#,
        ])
        .fails_with("RejectedByMachineAuthorizerError (rejected-by-machine-authorizer)");
        let send = |event: &str| {
            let args = [
                &[
                    "instances",
                    "send-event",
                    "-m",
                    "toggle",
                    "-i",
                    "alice",
                    "-e",
                    event,
                ][..],
                &alice,
            ]
            .concat();
            s.run(&args)
        };
        let off = send("toggle").ok().json();
        assert_eq!(off["state"], "off", "{off}");
        assert_eq!(off["publicContext"], json!({"toggleCount": 1}));
        let back = send(r#"{"type":"toggle","note":"from smply"}"#).ok().json();
        assert_eq!(back["state"], "on", "{back}");
        assert!(back["ts"].as_i64() > off["ts"].as_i64());

        let instances = s.json(&["instances", "list", "-m", "toggle"]);
        assert_eq!(ids_of(&instances, "name"), ["alice"]);
        assert_eq!(instances[0]["status"], "running");
        assert_eq!(instances[0]["machineVersion"]["id"], first.as_str());
        let transitions = s.json(&[
            "instances",
            "list-transitions",
            "-m",
            "toggle",
            "-i",
            "alice",
        ]);
        let mut events: Vec<Value> = transitions
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["event"].clone())
            .collect();
        // Both events, whatever order the listing uses.
        let mut expected = vec![
            json!({"type": "toggle"}),
            json!({"note": "from smply", "type": "toggle"}),
        ];
        events.sort_by_key(Value::to_string);
        expected.sort_by_key(Value::to_string);
        assert_eq!(events, expected);

        // Pausing asks for the instance name; a paused instance refuses events.
        let instance = ["-m", "toggle", "-i", "alice"];
        let status = |to: &str, input: &str| {
            let args = [&["instances", "set-status"][..], &instance, &["-s", to]].concat();
            s.run_with_input(&args, input).ok()
        };
        status("paused", "alice\n");
        assert_eq!(
            s.json(&[&["instances", "get"][..], &instance].concat())["status"],
            "paused"
        );
        send("toggle").fails_with("ConflictError (invalid-state)");
        status("running", "");
        let admin = s.json(&[&["instances", "get"][..], &instance].concat());
        assert_eq!(admin["status"], "running");
        assert_eq!(admin["context"], json!({"public": {"toggleCount": 1}}));

        // Only the instance's own version is reachable: there are no migrations.
        let desired = |version: &str| {
            let args = [
                &["instances", "set-desired-version"][..],
                &instance,
                &["-v", version],
            ]
            .concat();
            s.run(&args)
        };
        let same = desired(&first).ok();
        assert!(
            same.stdout.contains("Successfully set desired version"),
            "{same}"
        );
        desired(&second).fails_with("NoMigrationPathError (no-migration-path)");

        let deleted = s
            .run_with_input(
                &[&["instances", "delete"][..], &instance].concat(),
                "alice\n",
            )
            .ok();
        assert!(deleted.stdout.contains("Deleted instance"), "{deleted}");
        assert_eq!(s.json(&["instances", "list", "-m", "toggle"]), json!([]));
        s.run(&[&["instances", "get"][..], &instance].concat())
            .fails_with("NotFoundError");

        // Keys: a CI key is listed with its preset scopes until deleted.
        let (ci, _) = f.create_key("ci", "ci");
        let keys = s.json(&["keys", "list"]);
        let listed = keys
            .as_array()
            .expect("array")
            .iter()
            .find(|k| k["id"] == ci.as_str())
            .unwrap_or_else(|| panic!("{ci} is not listed: {keys}"));
        assert_eq!(listed["name"], "ci");
        let mut scopes: Vec<String> =
            serde_json::from_value(listed["scopes"].clone()).expect("scope names");
        scopes.sort();
        assert_eq!(
            scopes,
            [
                "machine-versions.read",
                "machine-versions.write",
                "machines.read",
                "machines.write"
            ]
        );
        let gone = s.run(&["keys", "delete", "-k", &ci]).ok();
        assert!(gone.stdout.contains("Successfully deleted key"), "{gone}");
        assert!(!ids_of(&s.json(&["keys", "list"]), "id").contains(&ci));

        // Deleting the machine asks for its name.
        let deleted = s
            .run_with_input(&["machines", "delete", "-m", "toggle"], "toggle\n")
            .ok();
        assert!(deleted.stdout.contains("Deleted machine"), "{deleted}");
        assert_eq!(s.json(&["machines", "list"]), json!([]));
    });
}

#[test]
fn smply_commands_for_features_we_do_not_serve_get_not_found() {
    common::within(Duration::from_secs(180), || {
        let f = Fixture::start();
        let commands: [&[&str]; 5] = [
            &["logs", "get", "-f", "-1h"],
            &["orgs", "list"],
            &["billing"],
            &["identity-providers", "list"],
            &["token-providers", "list"],
        ];
        for args in commands {
            f.smply.run(args).fails_with("NotFoundError (not-found)");
        }
    });
}

#[test]
fn the_official_client_subscribes_over_the_websocket() {
    common::within(Duration::from_secs(240), || {
        let f = Fixture::start();
        f.deploy_quickstart();
        let key = f.create_key("prod", "production");
        let run = f.client_script("client-ws.mjs", &key);
        assert!(run.stdout.contains("# 5 passed, 0 failed"), "{run}");
    });
}
