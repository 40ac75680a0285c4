//! The servers under test: how to start each in echo mode and in broadcast
//! mode, and why one is skipped when it cannot run here.

use std::path::Path;
use std::process::Command;

use crate::procs::Launch;

pub struct Spec {
    pub name: &'static str,
    pub about: &'static str,
    pub echo: Launch,
    /// Broadcast mode: every text message relayed to every client.
    pub broadcast: Launch,
    /// Why it cannot run here, if it cannot.
    pub skip: Option<String>,
}

pub struct Paths<'a> {
    /// Repository root.
    pub root: &'a Path,
    /// Where cargo put the Rust peers (the directory of this executable).
    pub rust_bins: &'a Path,
    /// build/bench: C/C++ peers in bin/, skip reasons in skip/.
    pub out: &'a Path,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn launch(argv: &[String], raw: bool) -> Launch {
    Launch { argv: argv.to_vec(), raw }
}

fn with_flag(argv: &[String], flag: &str) -> Vec<String> {
    let mut v = argv.to_vec();
    v.push(flag.to_string());
    v
}

/// Reason recorded by run.sh when it could not build or install a peer.
fn recorded_skip(out: &Path, name: &str) -> Option<String> {
    let r = std::fs::read_to_string(out.join("skip").join(format!("{name}.txt"))).ok()?;
    let r = r.trim();
    (!r.is_empty()).then(|| r.to_string())
}

fn missing(path: &Path, what: &str) -> Option<String> {
    (!path.exists()).then(|| format!("{what} not found at {}", path.display()))
}

fn python_lacks(module: &str) -> Option<String> {
    match Command::new("python3").arg("-c").arg(format!("import {module}")).output() {
        Ok(o) if o.status.success() => None,
        Ok(_) => Some(format!("python3 cannot import {module} (pip install {module} failed or not run)")),
        Err(e) => Some(format!("python3 not runnable: {e}")),
    }
}

fn node_lacks(dir: &Path) -> Option<String> {
    if Command::new("node").arg("--version").output().map(|o| o.status.success()).unwrap_or(false) {
        missing(&dir.join("node_modules/ws/package.json"), "npm package ws (npm ci in bench/node)")
    } else {
        Some("node not found".to_string())
    }
}

pub fn all(p: &Paths) -> Vec<Spec> {
    let mut v = Vec::new();

    let echo_c = p.root.join("build/examples/echo_server");
    let chat_c = p.root.join("build/examples/chat_server");
    let a = vec![s(&echo_c), "127.0.0.1".into(), "{port}".into()];
    let b = vec![s(&chat_c), "127.0.0.1".into(), "{port}".into()];
    v.push(Spec {
        name: "wsserver-c",
        about: "wsserver through its C API (build/examples/echo_server, chat_server)",
        echo: launch(&a, false),
        broadcast: launch(&b, false),
        skip: recorded_skip(p.out, "wsserver-c").or_else(|| missing(&echo_c, "build/examples/echo_server (run make)")),
    });

    let rs = p.rust_bins.join("wsserver_echo");
    let a = vec![s(&rs), "{port}".into()];
    v.push(Spec {
        name: "wsserver-rust",
        about: "wsserver through its Rust API (bench/src/bin/wsserver_echo.rs)",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "wsserver-rust").or_else(|| missing(&rs, "wsserver_echo")),
    });

    let tt = p.rust_bins.join("tungstenite_echo");
    let a = vec![s(&tt), "{port}".into()];
    v.push(Spec {
        name: "tokio-tungstenite",
        about: "tokio-tungstenite 0.30, default settings, one tokio thread",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "tokio-tungstenite").or_else(|| missing(&tt, "tungstenite_echo")),
    });

    let lws = p.out.join("bin/lws_echo");
    let a = vec![s(&lws), "{port}".into()];
    v.push(Spec {
        name: "libwebsockets",
        about: "libwebsockets (Debian libwebsockets-dev), bench/peers/lws_echo.c",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "libwebsockets").or_else(|| missing(&lws, "lws_echo")),
    });

    let beast = p.out.join("bin/beast_echo");
    let a = vec![s(&beast), "{port}".into()];
    v.push(Spec {
        name: "boost-beast",
        about: "Boost.Beast (Debian libboost-dev), one thread, bench/peers/beast_echo.cpp",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "boost-beast").or_else(|| missing(&beast, "beast_echo")),
    });

    let node_dir = p.root.join("bench/node");
    let a = vec!["node".to_string(), s(&node_dir.join("echo.js")), "{port}".into()];
    v.push(Spec {
        name: "node-ws",
        about: "Node.js with the ws package, bench/node/echo.js",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "node-ws").or_else(|| node_lacks(&node_dir)),
    });

    let py = p.root.join("bench/python");
    let a = vec!["python3".to_string(), s(&py.join("websockets_echo.py")), "{port}".into()];
    v.push(Spec {
        name: "python-websockets",
        about: "Python websockets (asyncio), bench/python/websockets_echo.py",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "python-websockets").or_else(|| python_lacks("websockets")),
    });

    let a = vec!["python3".to_string(), s(&py.join("picows_echo.py")), "{port}".into()];
    v.push(Spec {
        name: "python-picows",
        about: "Python picows (asyncio, Cython), bench/python/picows_echo.py",
        echo: launch(&a, false),
        broadcast: launch(&with_flag(&a, "--broadcast"), false),
        skip: recorded_skip(p.out, "python-picows").or_else(|| python_lacks("picows")),
    });

    let raw = p.rust_bins.join("raw_echo");
    let a = vec![s(&raw), "{port}".into()];
    v.push(Spec {
        name: "raw-tcp",
        about: "ceiling: plain TCP echo/relay of the same bytes, no WebSocket (bench/src/bin/raw_echo.rs)",
        echo: launch(&a, true),
        broadcast: launch(&with_flag(&a, "--broadcast"), true),
        skip: recorded_skip(p.out, "raw-tcp").or_else(|| missing(&raw, "raw_echo")),
    });
    v
}
