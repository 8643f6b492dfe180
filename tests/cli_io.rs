//! The command line never panics on its own output: a closed pipe ends it quietly, a full disk
//! is one error line and exit status 1.

use std::process::{Command, Stdio};

fn shiftbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shiftbench"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn a_full_stdout_is_one_error_line_and_exit_1() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
    let out = shiftbench().args(["check", "suites/shapes.toml"]).stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to standard output") && !stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
#[cfg(unix)]
fn a_closed_stdout_ends_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    // A pipe whose reader is gone before the command starts, like `| head -0` done early.
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills both descriptors; the read end is closed once, the write end is
    // owned by the OwnedFd below.
    let writer = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
        OwnedFd::from_raw_fd(fds[1])
    };
    let out = shiftbench().args(["check", "suites/shapes.toml"]).stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && out.status.code() != Some(101), "{:?} {stderr}", out.status);
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "model,val,v2\na,60,50\nb,70,62\nc,80,70\n").unwrap();
    let (t, out) = (table.to_str().unwrap(), dir.path().join("er"));
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["er", "--table", t, "--out", o], "--id"),
        (&["er", "--table", t, "--preset", "imagenet-testbed", "--id", "val", "--out", o], "--preset"),
        (&["er", "--table", t, "--id", "val", "--shift", "v2", "--resamples", "1", "--out", o], "--resamples 1"),
        (&["er", "--table", t, "--id", "val", "--shift", "v2", "--resamples", "1000000000", "--out", o], "--resamples 1000000000"),
        (&["er", "--table", t, "--id", "val", "--shift", "v2", "--baseline-types", "STANDARD", "--out", o], "--types"),
        (&["generate", "suites/shapes.toml"], "--set"),
        (&["fetch", "x", "--mirror", "/nonexistent/mirror"], "--mirror"),
    ];
    for (args, said) in cases {
        let r = shiftbench().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said) && !err.contains("panicked"), "{args:?}: {err}");
    }
    // clap's own usage errors exit 2 as well; a bad file is 1, not 2.
    assert_eq!(shiftbench().args(["run", "--jobs", "many"]).output().unwrap().status.code(), Some(2));
    assert_eq!(shiftbench().args(["check", "/nonexistent.toml"]).output().unwrap().status.code(), Some(1));
    let ok = shiftbench().args(["er", "--table", t, "--id", "val", "--shift", "v2", "--resamples", "100", "--out", o]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}
