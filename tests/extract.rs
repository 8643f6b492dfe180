//! Safe extraction against hand-built hostile archives: every one is refused with a clear
//! error, and nothing is written outside the destination (nor is a half-extracted destination
//! left behind). A property test throws generated entry paths at the extractor.

use proptest::prelude::*;
use shiftbench::fetch::extract::{extract, Limits};
use shiftbench::fetch::lock::{Expect, Format};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One raw tar header block (GNU), written byte by byte so that names the `tar` crate's builder
/// would refuse (`..`, absolute) can be made.
fn header(name: &str, kind: tar::EntryType, size: u64, link: &str) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname = [0; 100];
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    *h.as_bytes()
}

enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A header declaring `size` bytes with no data after it.
    Declared(&'a str, u64),
}

fn tar_bytes(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            E::File(name, data) => {
                out.extend_from_slice(&header(name, tar::EntryType::Regular, data.len() as u64, ""));
                out.extend_from_slice(data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            E::Dir(name) => out.extend_from_slice(&header(name, tar::EntryType::Directory, 0, "")),
            E::Symlink(name, to) => out.extend_from_slice(&header(name, tar::EntryType::Symlink, 0, to)),
            E::HardLink(name, to) => out.extend_from_slice(&header(name, tar::EntryType::Link, 0, to)),
            E::Declared(name, size) => out.extend_from_slice(&header(name, tar::EntryType::Regular, *size, "")),
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A sandbox: `root/` holds the archive, the destination `root/out/data`, and a sentinel
/// folder `root/outside` that must stay untouched.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/secret"), b"keep").unwrap();
        std::fs::create_dir_all(root.join("out")).unwrap();
        Sandbox { _tmp: tmp, root }
    }

    fn dest(&self) -> PathBuf {
        self.root.join("out/data")
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.root.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Everything in the sandbox except the archives and the destination itself.
    fn stray_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.retain(|p| !p.starts_with("out/data/") && p != "out/data" && p != "out" && p != "outside" && p != "outside/secret" && !p.ends_with(".tar") && !p.ends_with(".zip") && !p.ends_with(".tar.gz"));
        out
    }

    /// Asserts a refusal: the error says `why`, and nothing is left anywhere.
    fn assert_refused(&self, result: anyhow::Result<shiftbench::fetch::extract::Summary>, why: &str) {
        let err = format!("{:#}", result.expect_err("hostile archive must be refused"));
        assert!(err.contains(why), "error should say `{why}`: {err}");
        assert!(!self.dest().exists(), "no destination after a refusal");
        assert_eq!(self.stray_paths(), Vec::<String>::new(), "nothing written outside (and no temp left)");
        assert_eq!(std::fs::read(self.root.join("outside/secret")).unwrap(), b"keep");
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            walk(base, &p, out);
        }
    }
}

fn limits() -> Limits {
    Limits { max_bytes: 1 << 20, max_entries: 100 }
}

fn tar_extract(s: &Sandbox, entries: &[E]) -> anyhow::Result<shiftbench::fetch::extract::Summary> {
    let a = s.archive("a.tar", &tar_bytes(entries));
    extract(&a, Format::Tar, &s.dest(), &limits(), None)
}

#[test]
fn a_good_tar_gz_extracts_and_meets_expect() {
    let s = Sandbox::new();
    let tar = tar_bytes(&[
        E::Dir("set/"),
        E::File("set/README.txt", b"not counted"),
        E::File("set/n01/a.jpg", b"aa"),
        E::File("./set/n01/b.jpg", b"bb"),
        E::File("set/n02/c.jpg", b"cc"),
        E::File("set/n02/d.jpg", b"dd"),
        E::Symlink("set/latest", "n02/d.jpg"),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let a = s.archive("a.tar.gz", &gz.finish().unwrap());
    let expect = Expect { root: Some("set".into()), classes: Some(2), files: Some(4), per_class: Some(2) };
    let summary = extract(&a, Format::TarGz, &s.dest(), &limits(), Some(&expect)).unwrap();
    assert_eq!(summary.files, 5);
    assert_eq!(std::fs::read(s.dest().join("set/n01/b.jpg")).unwrap(), b"bb");
    assert_eq!(std::fs::read(s.dest().join("set/latest")).unwrap(), b"dd");
    assert_eq!(s.stray_paths(), Vec::<String>::new());
}

#[test]
fn expect_catches_an_incomplete_archive() {
    let s = Sandbox::new();
    let a = s.archive("a.tar", &tar_bytes(&[E::File("set/n01/a.jpg", b"a"), E::File("set/n02/b.jpg", b"b")]));
    let expect = Expect { root: Some("set".into()), classes: Some(3), files: None, per_class: None };
    s.assert_refused(extract(&a, Format::Tar, &s.dest(), &limits(), Some(&expect)), "expected 3 class folders under `set`, found 2");
    let expect = Expect { root: Some("set".into()), classes: None, files: None, per_class: Some(2) };
    s.assert_refused(extract(&a, Format::Tar, &s.dest(), &limits(), Some(&expect)), "`n01` has 1");
    let expect = Expect { root: Some("images".into()), classes: Some(2), files: None, per_class: None };
    s.assert_refused(extract(&a, Format::Tar, &s.dest(), &limits(), Some(&expect)), "no folder `images`");
}

#[test]
fn parent_dir_paths_are_refused() {
    let s = Sandbox::new();
    s.assert_refused(tar_extract(&s, &[E::File("ok.txt", b"x"), E::File("../../outside/evil", b"x")]), "`..` component");
    s.assert_refused(tar_extract(&s, &[E::File("a/../../b", b"x")]), "`..` component");
}

#[test]
fn absolute_paths_are_refused() {
    let s = Sandbox::new();
    let target = s.root.join("outside/abs-evil");
    s.assert_refused(tar_extract(&s, &[E::File(target.to_str().unwrap(), b"x")]), "is an absolute path");
    assert!(!target.exists());
}

#[test]
fn symlinks_out_are_refused() {
    let s = Sandbox::new();
    s.assert_refused(tar_extract(&s, &[E::Symlink("link", "../../outside"), E::File("link/evil", b"x")]), "points outside");
    let abs = s.root.join("outside");
    s.assert_refused(tar_extract(&s, &[E::Symlink("link", abs.to_str().unwrap())]), "points outside");
    // A link that stays inside is fine, but nothing is ever written through it.
    s.assert_refused(tar_extract(&s, &[E::Dir("sub/"), E::Symlink("s", "sub"), E::File("s/x", b"x")]), "goes through the symlink `s`");
}

#[test]
fn hard_links_out_are_refused() {
    let s = Sandbox::new();
    s.assert_refused(tar_extract(&s, &[E::HardLink("h", "../../outside/secret")]), "links out of the destination are refused");
    let abs = s.root.join("outside/secret");
    s.assert_refused(tar_extract(&s, &[E::HardLink("h", abs.to_str().unwrap())]), "links out of the destination are refused");
    s.assert_refused(tar_extract(&s, &[E::HardLink("h", "not-yet")]), "not a file extracted earlier");
}

#[test]
fn huge_declared_sizes_are_refused_before_reading() {
    let s = Sandbox::new();
    s.assert_refused(tar_extract(&s, &[E::File("small", b"x"), E::Declared("huge", 1 << 50)]), "declares 1125899906842624 bytes");
    // The default limits also refuse it (a petabyte, with no data behind the header).
    let a = s.archive("b.tar", &tar_bytes(&[E::Declared("huge", 1 << 50)]));
    s.assert_refused(extract(&a, Format::Tar, &s.dest(), &Limits::default(), None), "possible archive bomb");
}

#[test]
fn too_many_entries_are_refused() {
    let s = Sandbox::new();
    let names: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
    let entries: Vec<E> = names.iter().map(|n| E::File(n, b"")).collect();
    s.assert_refused(tar_extract(&s, &entries), "more than 100 entries");
}

#[test]
fn a_truncated_tar_leaves_nothing() {
    let s = Sandbox::new();
    let mut bytes = tar_bytes(&[E::File("a", &[7u8; 4000]), E::File("b", &[8u8; 4000])]);
    bytes.truncate(3000);
    let a = s.archive("a.tar", &bytes);
    s.assert_refused(extract(&a, Format::Tar, &s.dest(), &limits(), None), "entry `a` declares 4000 bytes but holds 2488");
}

#[test]
fn a_plain_tar_declared_as_tar_gz_is_refused() {
    let s = Sandbox::new();
    let a = s.archive("a.tar.gz", &tar_bytes(&[E::File("a", b"x")]));
    s.assert_refused(extract(&a, Format::TarGz, &s.dest(), &limits(), None), "set format = \"tar\"");
}

fn zip_bytes(build: impl FnOnce(&mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    build(&mut w);
    w.finish().unwrap().into_inner()
}

fn deflated() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

#[test]
fn hostile_zips_are_refused() {
    let s = Sandbox::new();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            zip_bytes(|w| {
                w.start_file("../../outside/evil", deflated()).unwrap();
                w.write_all(b"x").unwrap();
            }),
            "`..` component",
        ),
        (
            zip_bytes(|w| {
                w.start_file("/abs/evil", deflated()).unwrap();
                w.write_all(b"x").unwrap();
            }),
            "absolute path",
        ),
        (zip_bytes(|w| w.add_symlink("link", "../../outside", deflated()).unwrap()), "points outside"),
        (
            // A zip bomb: 4 MiB of zeros compress to a few KiB; the limit is 1 MiB.
            zip_bytes(|w| {
                w.start_file("bomb", deflated()).unwrap();
                w.write_all(&vec![0u8; 4 << 20]).unwrap();
            }),
            "possible archive bomb",
        ),
    ];
    for (bytes, why) in cases {
        let a = s.archive("a.zip", &bytes);
        s.assert_refused(extract(&a, Format::Zip, &s.dest(), &limits(), None), why);
    }
}

#[test]
fn a_good_zip_extracts() {
    let s = Sandbox::new();
    let a = s.archive(
        "a.zip",
        &zip_bytes(|w| {
            w.add_directory("sketch/n01/", deflated()).unwrap();
            w.start_file("sketch/n01/a.JPEG", deflated()).unwrap();
            w.write_all(b"jpeg").unwrap();
        }),
    );
    let expect = Expect { root: Some("sketch".into()), classes: Some(1), files: Some(1), per_class: None };
    extract(&a, Format::Zip, &s.dest(), &limits(), Some(&expect)).unwrap();
    assert_eq!(std::fs::read(s.dest().join("sketch/n01/a.JPEG")).unwrap(), b"jpeg");
}

/// Independent model of which entry names are safe, and where they land.
fn model(raw: &str) -> Option<PathBuf> {
    if raw.starts_with('/') || raw.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = raw.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn generated_entry_paths_never_escape(
        absolute in any::<bool>(),
        parts in proptest::collection::vec(prop_oneof![Just(".."), Just("."), Just(""), Just("a"), Just("b.jpg"), Just("c d"), Just("outside")], 1..6),
    ) {
        let raw = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
        prop_assume!(raw.len() < 100);
        let s = Sandbox::new();
        let result = tar_extract(&s, &[E::File(&raw, b"payload")]);
        match model(&raw) {
            Some(rel) => {
                prop_assert!(result.is_ok(), "{raw:?} should extract: {:?}", result.err());
                prop_assert_eq!(std::fs::read(s.dest().join(&rel)).unwrap(), b"payload".to_vec());
            }
            None => {
                let err = format!("{:#}", result.expect_err("unsafe name accepted"));
                prop_assert!(err.contains("refused"), "{}", err);
                prop_assert!(!s.dest().exists());
            }
        }
        prop_assert_eq!(s.stray_paths(), Vec::<String>::new());
        prop_assert_eq!(std::fs::read(s.root.join("outside/secret")).unwrap(), b"keep".to_vec());
    }
}
