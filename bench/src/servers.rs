//! The servers under test, one table row each (`all`): how to start each in
//! echo mode and in broadcast mode, what it is (wsserver itself, another
//! WebSocket library, or the raw TCP ceiling), and why it is skipped when it
//! cannot run here. A new server is one more `row(...)` in `all`.

use std::path::Path;
use std::process::Command;

use crate::procs::Launch;

/// What a row is to the targets: wsserver through one of its APIs or
/// examples (compared with wsserver-c, never counted as a peer), another
/// WebSocket library (a peer), or the raw TCP ceiling.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Wsserver,
    Peer,
    Ceiling,
}

pub struct Spec {
    pub name: &'static str,
    pub about: &'static str,
    pub family: Family,
    pub echo: Launch,
    /// Broadcast mode (every text message relayed to every client; for
    /// wsserver, published to a topic every client subscribed to), or why
    /// the server has none or it cannot run here.
    pub broadcast: Result<Launch, String>,
    /// Broadcast across two server processes joined on a Redis backplane
    /// (`{backplane}` in argv is the broker's URL), or why it cannot run
    /// here (its row then says "skipped: why"); None: the server has no
    /// such mode and no such row. Only wsserver-c has one
    /// (bench/peers/wsserver_publish.c).
    pub cross: Option<Result<Launch, String>>,
    /// Why it cannot run here, if it cannot.
    pub skip: Option<String>,
    /// Its permessage-deflate mode, for the deflate rows (None: it has none
    /// here and takes no part in them).
    pub deflate: Option<DeflateMode>,
}

/// How a server starts with permessage-deflate on, in echo and in
/// broadcast mode (or why it cannot).
pub struct DeflateMode {
    pub echo: Result<Launch, String>,
    pub broadcast: Result<Launch, String>,
}

pub struct Paths<'a> {
    /// Repository root.
    pub root: &'a Path,
    /// Where cargo put the Rust peers (the directory of this executable).
    pub rust_bins: &'a Path,
    /// build/bench: C/C++ peers in bin/, skip reasons in skip/.
    pub out: &'a Path,
}

/// How a row's broadcast mode is started.
enum Bcast {
    /// The echo command line plus `--broadcast`.
    Flag,
    /// Another program (its arguments, `{port}` included), or why it
    /// cannot run here.
    Program(Vec<String>, Option<String>),
    /// No broadcast mode; the reason (the broadcast row says so).
    None(&'static str),
}

/// A row's deflate mode.
enum Dfl {
    /// None here: no deflate rows.
    No,
    /// `--deflate` appended to its echo and broadcast command lines.
    Flag,
    /// The same command lines (raw-tcp, which returns our compressed frames).
    Same,
    /// Its own echo command line (`--deflate` included), a mode of its
    /// broadcast program (so it can run only when that one can); broadcast: `Flag`.
    Echo(Vec<String>),
}

fn s(p: &Path) -> String {
    p.display().to_string()
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

/// One row of the table. `echo` is the echo-mode command line (`{port}` is
/// replaced by the port); `lacks`: why it cannot run here (after any reason
/// run.sh recorded). The ceiling speaks raw TCP, every other row WebSocket.
fn row(
    p: &Paths,
    (name, family, about): (&'static str, Family, &'static str),
    echo: Vec<String>,
    (broadcast, deflate): (Bcast, Dfl),
    lacks: Option<String>,
) -> Spec {
    let raw = family == Family::Ceiling;
    let flag = |l: &Launch| Launch { argv: [&l.argv[..], &["--deflate".to_string()]].concat(), raw };
    let broadcast = match broadcast {
        Bcast::Flag => {
            let mut argv = echo.clone();
            argv.push("--broadcast".into());
            Ok(Launch { argv, raw })
        }
        Bcast::Program(_, Some(why)) => Err(why),
        Bcast::Program(argv, None) => Ok(Launch { argv, raw }),
        Bcast::None(why) => Err(why.to_string()),
    };
    let echo = Launch { argv: echo, raw };
    let deflate = match deflate {
        Dfl::No => None,
        Dfl::Same => Some(DeflateMode { echo: Ok(echo.clone()), broadcast: broadcast.clone() }),
        Dfl::Flag => {
            Some(DeflateMode { echo: Ok(flag(&echo)), broadcast: broadcast.as_ref().map(flag).map_err(String::clone) })
        }
        Dfl::Echo(argv) => Some(DeflateMode {
            echo: broadcast.as_ref().map(|_| Launch { argv, raw }).map_err(String::clone),
            broadcast: broadcast.as_ref().map(flag).map_err(String::clone),
        }),
    };
    Spec { name, about, family, echo, broadcast, cross: None, skip: recorded_skip(p.out, name).or(lacks), deflate }
}

impl Spec {
    /// The same row with a cross-server broadcast mode: the broadcast
    /// program's command line plus the backplane URL.
    fn with_cross(self) -> Spec {
        self.with_cross_unless(crate::broker::missing())
    }

    /// `with_cross`, `broker_missing` saying why redis-server cannot run
    /// here (if it cannot): the row is then skipped with that reason, as
    /// it is with the broadcast program's when that one is missing.
    fn with_cross_unless(mut self, broker_missing: Option<String>) -> Spec {
        let cross = self.broadcast.clone().map(|mut l| {
            l.argv.push("{backplane}".into());
            l
        });
        self.cross = Some(match (cross, broker_missing) {
            (Ok(_), Some(why)) => Err(why),
            (c, _) => c,
        });
        self
    }
}

pub fn all(p: &Paths) -> Vec<Spec> {
    use Family::*;
    let port = || "{port}".to_string();
    let local = || "127.0.0.1".to_string();
    let example = |name: &str| p.root.join("build/examples").join(name);
    let rust = |name: &str| p.rust_bins.join(name);
    let bin = |name: &str| p.out.join("bin").join(name);
    let py = p.root.join("bench/python");
    let node = p.root.join("bench/node");
    let python = |script: &str| vec!["python3".to_string(), s(&py.join(script)), port()];

    let (echo_c, poll_c) = (example("echo_server"), example("poll_server"));
    let publish_c = bin("wsserver_publish");
    vec![
        row(
            p,
            (
                "wsserver-c",
                Wsserver,
                "wsserver through its C API: build/examples/echo_server; broadcast on topics \
                 (ws_conn_subscribe, ws_server_publish), bench/peers/wsserver_publish.c; deflate on: \
                 wsserver_publish --echo --deflate / --deflate",
            ),
            vec![s(&echo_c), local(), port()],
            (
                Bcast::Program(
                    vec![s(&publish_c), local(), port()],
                    recorded_skip(p.out, "wsserver-c-publish")
                        .or_else(|| missing(&publish_c, "wsserver_publish (bench/run.sh builds bench/peers/wsserver_publish.c)")),
                ),
                Dfl::Echo(vec![s(&publish_c), local(), port(), "--echo".into(), "--deflate".into()]),
            ),
            missing(&echo_c, "build/examples/echo_server (run make)"),
        )
        .with_cross(),
        row(
            p,
            ("wsserver-poll", Wsserver, "wsserver's event queue on one poll() loop (build/examples/poll_server)"),
            vec![s(&poll_c), local(), port()],
            (Bcast::None("echo only: poll_server has no broadcast mode"), Dfl::No),
            missing(&poll_c, "build/examples/poll_server (run make)"),
        ),
        row(
            p,
            ("wsserver-qt", Wsserver, "wsserver's Qt binding: examples-qt/echo_server.cpp (QtServer on a QCoreApplication loop)"),
            vec![s(&bin("qt_echo_server")), local(), port()],
            (Bcast::None("echo only: examples-qt/echo_server has no broadcast mode"), Dfl::No),
            missing(&bin("qt_echo_server"), "qt_echo_server (bench/run.sh builds bench/peers/qt)"),
        ),
        row(
            p,
            (
                "wsserver-rust",
                Wsserver,
                "wsserver through its Rust API (bench/src/bin/wsserver_echo.rs; broadcast on topics: subscribe, publish)",
            ),
            vec![s(&rust("wsserver_echo")), port()],
            (Bcast::Flag, Dfl::No),
            missing(&rust("wsserver_echo"), "wsserver_echo"),
        ),
        row(
            p,
            ("tokio-tungstenite", Peer, "tokio-tungstenite 0.30, default settings, one tokio thread"),
            vec![s(&rust("tungstenite_echo")), port()],
            (Bcast::Flag, Dfl::No),
            missing(&rust("tungstenite_echo"), "tungstenite_echo"),
        ),
        row(
            p,
            ("libwebsockets", Peer, "libwebsockets (Debian libwebsockets-dev), bench/peers/lws_echo.c"),
            vec![s(&bin("lws_echo")), port()],
            (Bcast::Flag, Dfl::Flag),
            missing(&bin("lws_echo"), "lws_echo"),
        ),
        row(
            p,
            ("boost-beast", Peer, "Boost.Beast (Debian libboost-dev), one thread, bench/peers/beast_echo.cpp"),
            vec![s(&bin("beast_echo")), port()],
            (Bcast::Flag, Dfl::No),
            missing(&bin("beast_echo"), "beast_echo"),
        ),
        row(
            p,
            ("qtwebsockets", Peer, "QtWebSockets' QWebSocketServer, default settings, one Qt event loop, bench/peers/qtwebsockets_echo.cpp"),
            vec![s(&bin("qtwebsockets_echo")), port()],
            (Bcast::Flag, Dfl::No),
            missing(&bin("qtwebsockets_echo"), "qtwebsockets_echo (bench/run.sh builds bench/peers/qt)"),
        ),
        row(
            p,
            ("node-ws", Peer, "Node.js with the ws package, bench/node/echo.js"),
            vec!["node".to_string(), s(&node.join("echo.js")), port()],
            (Bcast::Flag, Dfl::Flag),
            node_lacks(&node),
        ),
        row(
            p,
            (
                "wsserver-python",
                Wsserver,
                "wsserver's Python package, asyncio on the event fd (bench/python/wsserver_echo.py)",
            ),
            python("wsserver_echo.py"),
            (Bcast::Flag, Dfl::Flag),
            missing(&p.root.join("target/release/libwsserver.so"), "target/release/libwsserver.so (run make)"),
        ),
        row(
            p,
            ("python-websockets", Peer, "Python websockets (asyncio), bench/python/websockets_echo.py"),
            python("websockets_echo.py"),
            (Bcast::Flag, Dfl::Flag),
            python_lacks("websockets"),
        ),
        row(
            p,
            ("python-picows", Peer, "Python picows (asyncio, Cython), bench/python/picows_echo.py"),
            python("picows_echo.py"),
            (Bcast::Flag, Dfl::No),
            python_lacks("picows"),
        ),
        row(
            p,
            (
                "raw-tcp",
                Ceiling,
                "ceiling: plain TCP echo/relay of the same bytes, no WebSocket (bench/src/bin/raw_echo.rs)",
            ),
            vec![s(&rust("raw_echo")), port()],
            (Bcast::Flag, Dfl::Same),
            missing(&rust("raw_echo"), "raw_echo"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(broadcast: Result<Launch, String>) -> Spec {
        let echo = Launch { argv: vec!["echo_server".into(), "127.0.0.1".into(), "{port}".into()], raw: false };
        Spec {
            name: "wsserver-c",
            about: "",
            family: Family::Wsserver,
            echo,
            broadcast,
            cross: None,
            skip: None,
            deflate: None,
        }
    }

    #[test]
    fn the_cross_row_is_skipped_with_its_reason_not_dropped() {
        let bcast = || Ok(Launch { argv: vec!["wsserver_publish".into(), "{port}".into()], raw: false });
        // Broker and broadcast program here: the publisher's argv plus the URL.
        let s = publisher(bcast()).with_cross_unless(None);
        assert_eq!(s.cross.unwrap().unwrap().argv, ["wsserver_publish", "{port}", "{backplane}"]);
        // No redis-server: the row stays, skipped with the reason.
        let s = publisher(bcast()).with_cross_unless(Some("redis-server not installed".into()));
        let plan = crate::Plan::new(false, None);
        assert!(plan.has(&s, &plan.cross_id()), "the row is in the table");
        assert_eq!(s.cross.unwrap().err().as_deref(), Some("redis-server not installed"));
        // No broadcast program: the same, with its reason.
        let s = publisher(Err("wsserver_publish not built".into())).with_cross_unless(Some("no redis".into()));
        assert_eq!(s.cross.unwrap().err().as_deref(), Some("wsserver_publish not built"));
        // A server without a cross mode has no such row at all.
        assert!(!plan.has(&publisher(bcast()), &plan.cross_id()));
    }
}
