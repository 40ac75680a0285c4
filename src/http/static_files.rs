//! Files from one directory: a request path resolves to a file inside it
//! or to nothing (404). Every way out is closed: `..` and `.` segments,
//! percent-encoded dots and slashes (decoded once, then checked), encoded
//! NUL or backslash, and symlinks whose target lies outside.
use super::response::Response;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Largest file served, so that one request cannot pin much memory.
const MAX_FILE: u64 = 64 << 20;

/// Decodes `%XX` once; None on a malformed escape or a decoded byte that
/// may not be part of a file name here (NUL, `/`, `\`).
fn decode_segment(segment: &str) -> Option<String> {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if matches!(byte, 0 | b'/' | b'\\') {
                return None;
            }
            out.push(byte);
            i += 3;
        } else {
            if b[i] == b'\\' || b[i] == 0 {
                return None;
            }
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file under `root` (already canonical) that `url_path` names; a
/// directory gives its `index.html`. None for anything outside `root` or
/// missing.
pub(crate) fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for raw in url_path.split('/').filter(|s| !s.is_empty()) {
        let segment = decode_segment(raw)?;
        if segment == "." || segment == ".." || segment.contains('/') {
            return None;
        }
        path.push(segment);
    }
    let mut real = path.canonicalize().ok()?;
    if real.is_dir() {
        real = real.join("index.html").canonicalize().ok()?;
    }
    (real.starts_with(root) && real.is_file()).then_some(real)
}

/// The Content-Type for a file name.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Answers a GET or HEAD for `url_path` from `root`: 200 with the file,
/// 304 when `if_none_match` names its ETag, 404 when there is no such file
/// inside `root`. Reads the file in a blocking task.
pub(crate) async fn serve(root: &Path, url_path: &str, if_none_match: Option<&str>) -> Response {
    let Some(file) = resolve(root, url_path) else { return Response::text(404, "not found") };
    let read = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::Metadata, Vec<u8>)> {
            let meta = std::fs::metadata(&file)?;
            if meta.len() > MAX_FILE {
                return Err(std::io::Error::other("file too large to serve"));
            }
            Ok((meta, std::fs::read(&file)?))
        })
        .await
    };
    let Ok(Ok((meta, body))) = read else { return Response::text(404, "not found") };
    let modified = meta.modified().ok().and_then(|m| m.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    let etag = format!("\"{:x}-{:x}\"", meta.len(), modified.as_nanos());
    let matches = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let r = Response::new(if matches { 304 } else { 200 }).header("ETag", &etag).header("Cache-Control", "no-cache");
    if matches {
        return r;
    }
    let mut r = r.header("Content-Type", content_type(&file));
    r.body = body;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let root = dir.path().join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(root.join("sub/a b.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/a b.txt"), root.join("inside")).unwrap();
        let root = root.canonicalize().unwrap();
        (dir, root)
    }

    /// A directory of its own under the system temp dir, removed on drop.
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "wsserver-static-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn resolves_files_inside_and_index_for_directories() {
        let (_d, root) = tree();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/index.html"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/sub/a%20b.txt"), Some(root.join("sub/a b.txt")));
        assert_eq!(resolve(&root, "//sub//a%20b.txt"), Some(root.join("sub/a b.txt")));
        assert_eq!(resolve(&root, "/inside"), Some(root.join("sub/a b.txt")), "a symlink within the root");
        assert_eq!(resolve(&root, "/sub"), None, "a directory without index.html");
        assert_eq!(resolve(&root, "/missing"), None);
    }

    #[test]
    fn no_path_leaves_the_directory() {
        let (_d, root) = tree();
        for evil in [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/.%2e/secret.txt",
            "/sub%2f..%2f..%2fsecret.txt",
            "/%252e%252e/secret.txt",
            "/..%5csecret.txt",
            "/secret.txt%00.html",
            "/index.html%00",
            "/leak",
            "/%",
            "/%zz",
            "/.",
        ] {
            assert_eq!(resolve(&root, evil), None, "{evil}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type(Path::new("a.HTML")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("a.js")), "text/javascript; charset=utf-8");
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
