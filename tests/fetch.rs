//! The fetcher against misbehaving HTTP servers started on 127.0.0.1 (see `support`), local
//! mirrors, offline use, concurrent fetches and `lock pin`. After every scenario the cache holds
//! either the verified file under its final name or nothing there.

mod support;

use sha2::{Digest, Sha256};
use shiftbench::fetch::{self, Cache, CacheState, FetchError, FetchOptions, NetConfig, Source};
use shiftbench::fetch::lock::{Artifact, Lock};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Reply, Server};

fn body() -> Vec<u8> {
    // 300 KB of non-repeating bytes: several reads, and a cut in the middle is a real cut.
    (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn lock_for(urls: &[String], bytes: &[u8]) -> Lock {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    let text = format!(
        "version = 1\n\n[[artifact]]\nname = \"blob\"\nfile = \"blob.bin\"\nurls = [{}]\nsha256 = \"{}\"\nbytes = {}\nformat = \"file\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\n",
        urls.join(", "),
        sha(bytes),
        bytes.len()
    );
    Lock::parse(&text, Path::new("test.lock")).expect("test lock parses")
}

/// Short timeouts and backoff: every misbehaviour resolves in well under a second.
fn options(cache: &Path) -> FetchOptions {
    let mut o = FetchOptions::new(cache.to_path_buf());
    o.net = NetConfig {
        connect_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_millis(400),
        attempts_per_url: 3,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        max_unpinned_bytes: fetch::DEFAULT_MAX_PIN_BYTES,
    };
    o
}

/// The cache holds the verified file under its final name, or nothing there at all.
fn assert_cache_sound(cache: &Path, a: &Artifact, expected: &[u8]) -> Option<PathBuf> {
    let final_path = Cache::new(cache).file_path(a.sha256().unwrap(), &a.file);
    let files_dir = cache.join("files");
    // Each verified file has its `.verified` stamp (size and mtime at verification) beside it.
    let all: Vec<PathBuf> = walk(&files_dir).into_iter().filter(|p| p.extension().is_none_or(|e| e != "verified")).collect();
    if final_path.exists() {
        assert_eq!(std::fs::read(&final_path).unwrap(), expected, "final file is not the pinned bytes");
        assert_eq!(all, vec![final_path.clone()], "only the verified file may be under files/");
        Some(final_path)
    } else {
        assert!(all.is_empty(), "nothing but verified files may be under files/: {all:?}");
        None
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn fetch_ok(server: &Server, urls: &[String], body: &[u8]) -> (fetch::Fetched, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let lock = lock_for(urls, body);
    let a = &lock.artifacts[0];
    let got = fetch::fetch(a, &options(cache.path())).unwrap_or_else(|e| panic!("fetch failed: {e:#}; server saw {:?}", server.seen()));
    assert_eq!(assert_cache_sound(cache.path(), a, body).as_deref(), Some(got.path.as_path()));
    (got, cache)
}

#[test]
fn connection_cut_mid_body_resumes_with_range() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::CutAfter { body: b.clone(), n: 100_000 }, Reply::Serve { body: b.clone(), honour_range: true }])]);
    let (got, _cache) = fetch_ok(&server, &[server.url("/f")], &b);
    assert_eq!(got.source, Source::Url(server.url("/f")));
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range_start, None);
    assert_eq!(seen[1].range_start, Some(100_000), "the retry must ask only for the missing tail");
}

#[test]
fn stalled_transfer_times_out_and_retries() {
    let b = body();
    let server = Server::start(vec![(
        "/f",
        vec![Reply::StallAfter { body: b.clone(), n: 50_000, pause: Duration::from_secs(4) }, Reply::Serve { body: b.clone(), honour_range: true }],
    )]);
    let started = Instant::now();
    fetch_ok(&server, &[server.url("/f")], &b);
    assert!(started.elapsed() < Duration::from_secs(3), "the stall must be cut by the stall timeout, took {:?}", started.elapsed());
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range_start, Some(50_000));
}

#[test]
fn wrong_bytes_are_rejected_and_quarantined() {
    let b = body();
    let mut wrong = b.clone();
    wrong[123_456] ^= 0xff;
    let server = Server::start(vec![("/f", vec![Reply::Serve { body: wrong.clone(), honour_range: true }])]);
    let cache = tempfile::tempdir().unwrap();
    let lock = lock_for(&[server.url("/f")], &b);
    let a = &lock.artifacts[0];
    let err = fetch::fetch(a, &options(cache.path())).expect_err("wrong bytes must be refused");
    let msg = format!("{err:#}");
    for needle in [sha(&b), sha(&wrong), server.url("/f"), "300000 bytes".to_string(), "quarantine".to_string()] {
        assert!(msg.contains(&needle), "error should mention {needle}: {msg}");
    }
    assert_eq!(assert_cache_sound(cache.path(), a, &b), None);
    let quarantined = walk(&cache.path().join("quarantine"));
    assert_eq!(quarantined.len(), 1, "the bad download is kept aside: {quarantined:?}");
    assert_eq!(std::fs::read(&quarantined[0]).unwrap(), wrong);
    // One request only: a hash mismatch is not retried against the same URL.
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn not_found_on_primary_falls_back_to_mirror() {
    let b = body();
    let server = Server::start(vec![("/gone", vec![Reply::Status(404)]), ("/mirror/f", vec![Reply::Serve { body: b.clone(), honour_range: true }])]);
    let (got, _cache) = fetch_ok(&server, &[server.url("/gone"), server.url("/mirror/f")], &b);
    assert_eq!(got.source, Source::Url(server.url("/mirror/f")));
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, vec!["/gone", "/mirror/f"], "404 is final for a URL: no retries against it");
}

#[test]
fn server_error_then_success() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::Status(500), Reply::Status(503), Reply::Serve { body: b.clone(), honour_range: true }])]);
    fetch_ok(&server, &[server.url("/f")], &b);
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn redirect_is_followed() {
    let b = body();
    let server = Server::start(vec![("/old", vec![Reply::Redirect("/new/blob.bin".into())]), ("/new/blob.bin", vec![Reply::Serve { body: b.clone(), honour_range: true }])]);
    fetch_ok(&server, &[server.url("/old")], &b);
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, vec!["/old", "/new/blob.bin"]);
}

#[test]
fn server_ignoring_range_restarts_from_the_first_byte() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::CutAfter { body: b.clone(), n: 120_000 }, Reply::Serve { body: b.clone(), honour_range: false }])]);
    fetch_ok(&server, &[server.url("/f")], &b);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range_start, Some(120_000), "a resume was asked for (and answered with 200 and the whole body)");
}

#[test]
fn content_length_larger_than_the_body() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::LyingLength { body: b.clone(), declared: b.len() + 5_000 }])]);
    fetch_ok(&server, &[server.url("/f")], &b);
    // The body ends early by the header's account; the pinned size says it is complete.
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn content_length_smaller_than_the_file() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::LyingLength { body: b.clone(), declared: 70_000 }, Reply::Serve { body: b.clone(), honour_range: true }])]);
    fetch_ok(&server, &[server.url("/f")], &b);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range_start, Some(70_000));
}

#[test]
fn a_server_that_never_delivers_leaves_a_resumable_partial_and_no_final_file() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::CutAfter { body: b.clone(), n: 10_000 }])]);
    let cache = tempfile::tempdir().unwrap();
    let lock = lock_for(&[server.url("/f")], &b);
    let a = &lock.artifacts[0];
    let mut opts = options(cache.path());
    opts.net.attempts_per_url = 2;
    let err = format!("{:#}", fetch::fetch(a, &opts).expect_err("never complete"));
    assert!(err.contains("gave up after 2 attempts") && err.contains("resumes"), "{err}");
    assert_eq!(assert_cache_sound(cache.path(), a, &b), None);
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn mirror_folder_is_used_first_and_verified() {
    let b = body();
    let mirror = tempfile::tempdir().unwrap();
    // A wrong file under the artifact's name, the right one under its sha256: the wrong one is
    // reported and skipped, the right one used, and no network is needed.
    std::fs::write(mirror.path().join("blob.bin"), b"not it").unwrap();
    std::fs::write(mirror.path().join(sha(&b)), &b).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let lock = lock_for(&["http://127.0.0.1:9/unreachable".to_string()], &b);
    let a = &lock.artifacts[0];
    let mut opts = options(cache.path());
    opts.mirrors = vec![mirror.path().to_path_buf()];
    opts.offline = true;
    let got = fetch::fetch(a, &opts).expect("mirror copy verifies");
    assert_eq!(got.source, Source::Mirror(mirror.path().join(sha(&b))));
    assert_cache_sound(cache.path(), a, &b).expect("verified file in place");
    assert_eq!(std::fs::read(mirror.path().join("blob.bin")).unwrap(), b"not it", "mirror files are never moved");

    // Offline with only the wrong file: refused, and the reason names the file and both hashes.
    std::fs::remove_file(mirror.path().join(sha(&b))).unwrap();
    let cache2 = tempfile::tempdir().unwrap();
    opts.cache = cache2.path().to_path_buf();
    let err = format!("{:#}", fetch::fetch(a, &opts).expect_err("wrong mirror file"));
    assert!(err.contains("blob.bin") && err.contains(&sha(&b)) && err.contains(&sha(b"not it")), "{err}");
    assert_eq!(assert_cache_sound(cache2.path(), a, &b), None);
}

#[test]
fn offline_without_any_copy_is_missing() {
    let b = body();
    let cache = tempfile::tempdir().unwrap();
    let lock = lock_for(&["http://127.0.0.1:9/unreachable".to_string()], &b);
    let mut opts = options(cache.path());
    opts.offline = true;
    assert!(matches!(fetch::fetch(&lock.artifacts[0], &opts), Err(FetchError::Missing { .. })));
}

#[test]
fn lock_verify_quarantines_a_corrupted_cache_file() {
    let b = body();
    let server = Server::start(vec![("/f", vec![Reply::Serve { body: b.clone(), honour_range: true }])]);
    let (got, cache) = fetch_ok(&server, &[server.url("/f")], &b);
    let lock = lock_for(&[server.url("/f")], &b);
    let c = Cache::new(cache.path());
    assert_eq!(fetch::verify_cached(&lock.artifacts[0], &c).unwrap(), CacheState::Verified(got.path.clone()));
    let mut rotten = b.clone();
    rotten[0] ^= 1;
    std::fs::write(&got.path, &rotten).unwrap();
    match fetch::verify_cached(&lock.artifacts[0], &c).unwrap() {
        CacheState::Corrupt { quarantined, actual_sha256, .. } => {
            assert_eq!(actual_sha256, sha(&rotten));
            assert_eq!(std::fs::read(quarantined).unwrap(), rotten);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!got.path.exists());
}

#[test]
fn lock_pin_records_hash_and_size_of_an_unpinned_artifact() {
    let b = body();
    let server = Server::start(vec![("/u.bin", vec![Reply::CutAfter { body: b.clone(), n: 40_000 }, Reply::Serve { body: b.clone(), honour_range: true }])]);
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("datasets.lock");
    let text = format!(
        "version = 1\n\n# a comment that must survive\n[[artifact]]\nname = \"u\"\nurls = [\"{}\"]\nunpinned = \"host publishes no checksum\"\nformat = \"file\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\n",
        server.url("/u.bin")
    );
    std::fs::write(&lock_path, &text).unwrap();
    let lock = Lock::load(&lock_path).unwrap();
    let opts = options(&dir.path().join("cache"));
    assert!(matches!(fetch::fetch(&lock.artifacts[0], &opts), Err(FetchError::Unpinned { .. })), "unpinned artifacts are never used");
    let (pinned_sha, bytes, _) = fetch::pin(&lock, "u", None, &opts).expect("pin");
    assert_eq!((pinned_sha.as_str(), bytes), (sha(&b).as_str(), b.len() as u64));
    let after = std::fs::read_to_string(&lock_path).unwrap();
    assert!(after.contains("# a comment that must survive") && after.contains(&format!("sha256 = \"{}\"", sha(&b))), "{after}");
    let relocked = Lock::load(&lock_path).unwrap();
    let got = fetch::fetch(&relocked.artifacts[0], &opts).expect("now pinned and cached");
    assert!(matches!(got.source, Source::Cache { .. }), "{:?}", got.source);
    assert_eq!(server.seen().len(), 2, "one cut request and one resumed request; the fetch after pinning uses the cache");
}

fn shiftbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shiftbench"))
}

#[test]
fn two_processes_fetching_one_artifact_end_with_one_verified_file() {
    let b = body();
    // Slow enough (~0.6 s) that the two processes overlap.
    let server = Server::start(vec![("/f", vec![Reply::Slow { body: b.clone(), chunks: 12, delay: Duration::from_millis(50) }])]);
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("test.lock");
    let lock_text = format!(
        "version = 1\n\n[[artifact]]\nname = \"blob\"\nfile = \"blob.bin\"\nurls = [\"{}\"]\nsha256 = \"{}\"\nbytes = {}\nformat = \"file\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\n",
        server.url("/f"),
        sha(&b),
        b.len()
    );
    std::fs::write(&lock_path, lock_text).unwrap();
    let cache = dir.path().join("cache");
    let spawn = || {
        shiftbench()
            .args(["fetch", "--print-path", "blob", "--lock"])
            .arg(&lock_path)
            .arg("--cache")
            .arg(&cache)
            .env_remove("SHIFTBENCH_MIRROR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(), spawn());
    let (o1, o2) = (p1.wait_with_output().unwrap(), p2.wait_with_output().unwrap());
    for o in [&o1, &o2] {
        assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(o1.stdout, o2.stdout, "both print the same verified path");
    let path = PathBuf::from(String::from_utf8(o1.stdout).unwrap().trim());
    assert_eq!(std::fs::read(&path).unwrap(), b);
    assert_eq!(server.seen().len(), 1, "the second process waits for the first and then finds the file: {:?}", server.seen());
    assert_eq!(walk(&cache.join("files")), vec![path.clone(), path.with_file_name(format!("{}.verified", path.file_name().unwrap().to_string_lossy()))]);
}

/// `[suite] artifacts` of a copy of the default suite, checked against the real datasets.lock.
fn suite_with_artifacts(dir: &Path, artifacts: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("suites/shapes.toml")).unwrap();
    let text = text.replacen("[suite]\n", &format!("[suite]\nartifacts = {artifacts}\n"), 1);
    let path = dir.join("needs-data.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn missing_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout).lines().filter_map(|l| l.strip_prefix("missing: ")).map(|l| l.split(' ').next().unwrap().to_string()).collect()
}

#[test]
fn offline_fetch_of_a_suite_lists_exactly_what_is_missing_and_mirror_fills_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reference = root.join("../shared/reference/imagenet-testbed");
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_with_artifacts(dir.path(), r#"["imagenet-testbed-top1s", "imagenet-r"]"#);
    let cache = dir.path().join("cache");
    let run = |extra: &[&str]| {
        shiftbench()
            .current_dir(root)
            .args(["fetch", "--offline", "--cache"])
            .arg(&cache)
            .args(extra)
            .env_remove("SHIFTBENCH_MIRROR")
            .output()
            .unwrap()
    };
    let out = run(&[suite.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(missing_lines(&out.stdout), vec!["imagenet-testbed-top1s", "imagenet-r"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 of 2 artifacts are not verified and in place"));

    if !reference.is_dir() {
        eprintln!("skipping the mirror half: {} is absent", reference.display());
        return;
    }
    let mirror = reference.to_str().unwrap();
    let out = run(&[suite.to_str().unwrap(), "--mirror", mirror]);
    assert!(!out.status.success(), "imagenet-r is still missing");
    assert_eq!(missing_lines(&out.stdout), vec!["imagenet-r"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verified (sha256) from mirror") && stdout.contains("imagenet-testbed-top1s"), "{stdout}");

    let out = run(&["--print-path", "imagenet-testbed-top1s"]);
    assert!(out.status.success(), "now in the cache: {}", String::from_utf8_lossy(&out.stderr));
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len(), 869_425);
    assert_eq!(sha(&bytes), "6b32665be2eef1594d6d296fcb07d33fed0dd4ecacacff463841d7cb08e835f7");
}

#[test]
fn a_suite_naming_an_unknown_artifact_is_an_error_at_its_position() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_with_artifacts(dir.path(), r#"["imagenet-testbed-top1s", "imagenet-q"]"#);
    let out = shiftbench().current_dir(root).args(["fetch", "--offline", "--cache"]).arg(dir.path().join("c")).arg(&suite).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = std::fs::read_to_string(&suite).unwrap().lines().position(|l| l.starts_with("artifacts =")).unwrap() + 1;
    assert!(err.contains(&format!("needs-data.toml:{line}:40: key `suite.artifacts`: `imagenet-q` is not an artifact of datasets.lock")), "{err}");
}

#[test]
fn the_shipped_lock_parses_and_keeps_unpinned_entries_visible() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = Lock::load(&root.join("datasets.lock")).unwrap();
    let names: Vec<&str> = lock.artifacts.iter().map(|a| a.name.as_str()).collect();
    for n in ["imagenet-testbed-top1s", "imagenet-sketch", "imagenet-r", "imagenet-a", "imagenetv2-matched-frequency", "objectnet", "imagenet-val"] {
        assert!(names.contains(&n), "{n} missing from datasets.lock");
    }
    let unpinned: Vec<&str> = lock.artifacts.iter().filter(|a| a.sha256().is_none()).map(|a| a.name.as_str()).collect();
    assert_eq!(unpinned, vec!["objectnet", "imagenet-train", "imagenet-val"]);
    let out = shiftbench().current_dir(root).args(["lock", "verify", "--cache"]).arg(tempfile::tempdir().unwrap().path()).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("UNPINNED:   objectnet") && stdout.contains("UNPINNED:   imagenet-train") && stdout.contains("UNPINNED:   imagenet-val"), "{stdout}");
}

/// A pinned lock file of one artifact `blob` (no URL) and a mirror folder holding it.
fn mirrored(dir: &Path, bytes: &[u8]) -> (PathBuf, PathBuf) {
    let lock = dir.join("datasets.lock");
    std::fs::write(
        &lock,
        format!("version = 1\n\n[[artifact]]\nname = \"blob\"\nfile = \"blob.bin\"\nurls = [\"http://127.0.0.1:9/never\"]\nsha256 = \"{}\"\nbytes = {}\nformat = \"file\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\n", sha(bytes), bytes.len()),
    )
    .unwrap();
    let mirror = dir.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("blob.bin"), bytes).unwrap();
    (lock, mirror)
}

#[test]
fn fetch_re_hashes_a_cached_file_whose_size_or_mtime_changed_and_says_which_it_did() {
    let b = body();
    let dir = tempfile::tempdir().unwrap();
    let (lock, mirror) = mirrored(dir.path(), &b);
    let cache = dir.path().join("cache");
    let fetch = || {
        let o = shiftbench().args(["fetch", "blob", "--offline", "--lock"]).arg(&lock).arg("--cache").arg(&cache).arg("--mirror").arg(&mirror).env_remove("SHIFTBENCH_MIRROR").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    assert!(fetch().0.contains("verified (sha256) from mirror"));
    let (again, _) = fetch();
    assert!(again.contains("in the cache, unchanged since verified on 20") && again.contains(" UTC: blob"), "{again}");

    let cached = Cache::new(&cache).file_path(&sha(&b), "blob.bin");
    let later = |f: &std::fs::File| f.set_modified(std::time::SystemTime::now() + Duration::from_secs(60)).unwrap();
    // Same bytes, new mtime: hashed again, and still the pinned bytes.
    later(&std::fs::OpenOptions::new().write(true).open(&cached).unwrap());
    assert!(fetch().0.contains("verified (sha256) in the cache"));
    assert!(fetch().0.contains("unchanged since verified"));

    // Edited in place, same size, new mtime: caught, quarantined, replaced from the mirror.
    let mut edited = b.clone();
    edited[150_000] ^= 0xff;
    std::fs::write(&cached, &edited).unwrap();
    later(&std::fs::OpenOptions::new().write(true).open(&cached).unwrap());
    let (out, err) = fetch();
    assert!(err.contains("changed since it was verified") && err.contains("quarantine"), "{err}");
    assert!(out.contains("verified (sha256) from mirror"), "{out}");
    assert_eq!(std::fs::read(&cached).unwrap(), b);
}

/// A lock with one unpinned artifact `u` fetched from `url`.
fn unpinned_lock(dir: &Path, url: &str) -> PathBuf {
    let lock = dir.join("datasets.lock");
    std::fs::write(&lock, format!("version = 1\n[[artifact]]\nname = \"u\"\nfile = \"u.bin\"\nurls = [\"{url}\"]\nunpinned = \"host publishes no checksum\"\nformat = \"file\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\n")).unwrap();
    lock
}

#[test]
fn lock_pin_takes_only_bounded_non_empty_regular_files_and_keeps_the_lock_mode() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(vec![("/endless", vec![Reply::Endless])]);
    let dir = tempfile::tempdir().unwrap();
    let lock = unpinned_lock(dir.path(), &server.url("/endless"));
    let original = std::fs::read_to_string(&lock).unwrap();
    let cache = dir.path().join("cache");
    let pin = |extra: &[&str]| {
        let o = shiftbench().args(["lock", "pin", "u", "--lock"]).arg(&lock).arg("--cache").arg(&cache).args(extra).env_remove("SHIFTBENCH_MIRROR").output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 5000]).unwrap();
    let started = Instant::now();
    for (from, said) in [("/dev/zero", "not a regular file"), (fifo.to_str().unwrap(), "not a regular file"), (dir.path().to_str().unwrap(), "not a regular file"), (empty.to_str().unwrap(), "is empty")] {
        let (code, err) = pin(&["--from", from]);
        assert_eq!(code, Some(1), "{from}: {err}");
        assert!(err.contains(said) && err.lines().count() == 1, "{from}: {err}");
    }
    let (code, err) = pin(&["--from", big.to_str().unwrap(), "--max-bytes", "4096"]);
    assert!(code == Some(1) && err.contains("more than 4096 bytes") && err.contains("--max-bytes"), "{err}");
    // An endless body stops at the cap, and nothing of it is left behind.
    let (code, err) = pin(&["--max-bytes", "1000000"]);
    assert!(code == Some(1) && err.contains("more than 1000000 bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "refusals must be prompt");
    let left: Vec<PathBuf> = walk(&cache).into_iter().filter(|p| !p.starts_with(cache.join("locks"))).collect();
    assert!(left.is_empty(), "partial files left: {left:?}");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), original, "nothing was pinned");

    // A read-only lock stays read-only when a pin rewrites it.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o444)).unwrap();
    let (code, err) = pin(&["--from", big.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777, 0o444);
    assert!(std::fs::read_to_string(&lock).unwrap().contains("bytes = 5000"));
}
