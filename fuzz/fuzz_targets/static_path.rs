//! The static-file path resolver (src/http/static_files.rs `resolve`): a
//! request path, as the client sent it, mapped to a file under the static
//! directory. A tree is made once under $TMPDIR: files, a subdirectory with
//! and without index.html, symlinks pointing inside and outside, and a
//! secret beside the root. Whatever the path, a resolved file is a real,
//! canonical file inside the root: never the secret, never outside.
#![no_main]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Tree {
    root: PathBuf,
    outside: PathBuf,
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("wsserver-fuzz-static-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("www");
        let sub = root.join("sub");
        std::fs::create_dir_all(sub.join("deeper")).unwrap();
        std::fs::create_dir_all(base.join("outside-dir")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(root.join(".hidden"), "h").unwrap();
        std::fs::write(sub.join("a b.txt"), "a").unwrap();
        std::fs::write(sub.join("%2e.txt"), "literal percent").unwrap();
        std::fs::write(sub.join("deeper/index.html"), "deep").unwrap();
        std::fs::write(base.join("secret.txt"), "no").unwrap();
        std::fs::write(base.join("outside-dir/index.html"), "no").unwrap();
        let link = |to: &Path, at: PathBuf| std::os::unix::fs::symlink(to, at).unwrap();
        link(&base.join("secret.txt"), root.join("leak"));
        link(Path::new("../secret.txt"), root.join("leak-relative"));
        link(&base.join("outside-dir"), root.join("dir-out"));
        link(Path::new(".."), sub.join("up"));
        link(&sub.join("a b.txt"), root.join("inside"));
        link(Path::new("loop"), root.join("loop"));
        let root = root.canonicalize().unwrap();
        Tree { root, outside: base.canonicalize().unwrap() }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let t = tree();
    let url_path = String::from_utf8_lossy(data);
    let Some(file) = wsserver::fuzzing::resolve_static(&t.root, &url_path) else { return };
    assert!(file.starts_with(&t.root), "{url_path:?} resolved outside the root: {file:?}");
    assert!(file.is_file(), "{url_path:?} resolved to a non-file {file:?}");
    let canonical = file.canonicalize().expect("a resolved file exists");
    assert_eq!(canonical, file, "{url_path:?}: the resolved path is not canonical");
    assert!(canonical.starts_with(&t.root), "{url_path:?} escapes through {file:?} to {canonical:?}");
    assert!(canonical.strip_prefix(&t.outside).is_ok_and(|p| p.starts_with("www")), "{url_path:?}: {canonical:?}");
});
