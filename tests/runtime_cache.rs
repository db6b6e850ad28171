//! The compiled-module cache on disk, seen through the runtime.

mod runtime_support;

use runtime_support::{init_input, runtime, toggle_code, within};

#[tokio::test]
async fn a_second_runtime_on_the_same_cache_dir_does_not_recompile() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();

        let first = runtime(dir.path());
        first.init(&code, &init_input("a")).await.unwrap();
        let stats = first.stats();
        assert_eq!((stats.artifacts_compiled, stats.artifacts_loaded), (1, 0));
        drop(first);

        let second = runtime(dir.path());
        let step = second.init(&code, &init_input("a")).await.unwrap();
        assert_eq!(step.public_context()["toggleCount"], 1);
        let stats = second.stats();
        assert_eq!((stats.artifacts_compiled, stats.artifacts_loaded), (0, 1));
    })
    .await;
}

#[tokio::test]
async fn a_corrupted_cache_file_is_rebuilt() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        runtime(dir.path()).check(&code).await.unwrap();

        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "one cached module: {files:?}");
        let mut bytes = std::fs::read(&files[0]).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(&files[0], &bytes).unwrap();

        let rt = runtime(dir.path());
        let step = rt.init(&code, &init_input("a")).await.unwrap();
        assert_eq!(step.public_context()["toggleCount"], 1);
        let stats = rt.stats();
        assert_eq!(stats.artifacts_discarded, 1);
        assert_eq!(stats.artifacts_compiled, 1);

        let third = runtime(dir.path());
        third.check(&code).await.unwrap();
        assert_eq!(
            third.stats().artifacts_loaded,
            1,
            "the rebuilt file is good"
        );
    })
    .await;
}

#[tokio::test]
async fn an_unwritable_cache_dir_only_costs_recompiling() {
    within(300, async {
        let code = toggle_code().await;
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"not a directory").unwrap();
        let rt = runtime(&blocked.join("cache"));
        let step = rt.init(&code, &init_input("a")).await.unwrap();
        assert_eq!(step.state, "off");
        assert_eq!(rt.stats().artifacts_compiled, 1);
    })
    .await;
}
