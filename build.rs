//! Generates the C header from src/ffi/ with cbindgen into OUT_DIR. With
//! WSSERVER_UPDATE_HEADER=1 (`make header`) it also refreshes the committed
//! include/wsserver.h; a unit test fails when the committed one is stale.
use std::fmt::Write;
use std::path::PathBuf;

// The option table, shared with the crate (data only).
include!("src/options.rs");

/// The header lines cbindgen cannot derive: version macros and the
/// WS_OPT_* numbers with their defaults and reasons, from src/options.rs.
fn generated_defines() -> String {
    let mut s = String::new();
    let v = |k: &str| std::env::var(k).unwrap();
    let _ = writeln!(
        s,
        "\n/** The library version these declarations belong to (Cargo.toml); ws_version() gives the one linked. */"
    );
    let _ = writeln!(s, "#define WS_VERSION_MAJOR {}", v("CARGO_PKG_VERSION_MAJOR"));
    let _ = writeln!(s, "#define WS_VERSION_MINOR {}", v("CARGO_PKG_VERSION_MINOR"));
    let _ = writeln!(s, "#define WS_VERSION_PATCH {}", v("CARGO_PKG_VERSION_PATCH"));
    let _ = writeln!(s, "#define WS_VERSION_STRING \"{}\"", v("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "\n/* Options for ws_server_set_option (ws_option_info gives the same at run time). */");
    for o in OPTIONS {
        let range = match o.only {
            [] => format!("{}..{}", o.min, o.max),
            only => only.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        };
        let _ = writeln!(s, "\n/**\n * {}\n * Default {}: {}. Values: {}.\n */", o.summary, o.shown, o.why, range);
        let _ = writeln!(s, "#define {} {}", o.name, o.id);
    }
    s
}

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("wsserver.h");
    // cbindgen reads the whole crate (and can fail on any file of it: a
    // fresh clone's build found what an incremental one did not rerun on).
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=WSSERVER_UPDATE_HEADER");
    // A versioned soname, so hosts link against the ABI major version.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwsserver.so.{major}");
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(generated_defines());
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    bindings.write_to_file(&out);
    if std::env::var("WSSERVER_UPDATE_HEADER").as_deref() == Ok("1") {
        bindings.write_to_file(crate_dir.join("include/wsserver.h"));
    }
}
