//! The servers under test, one line of `TABLE` each: how each starts in its
//! modes, what it is, and why it is skipped when it cannot run here.

use std::path::Path;
use std::process::Command;

use crate::procs::Launch;

/// To the best-peer summary: wsserver (never a peer), a peer, or the raw TCP ceiling.
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
    /// Broadcast mode, or why there is none here.
    pub broadcast: Result<Launch, String>,
    /// Two processes on a Redis backplane (`{backplane}`: its URL), or why
    /// not here; None: no such mode and no such row.
    pub cross: Option<Result<Launch, String>>,
    /// Why it cannot run here, if it cannot.
    pub skip: Option<String>,
    /// Its permessage-deflate mode (None: no deflate rows).
    pub deflate: Option<DeflateMode>,
}

/// Echo and broadcast with permessage-deflate on (or why not).
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
    /// Another program (its command line), which must be there.
    Program(&'static str, Need),
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
    /// Its own echo line, of its broadcast program (runs only when that does); broadcast: `Flag`.
    Echo(&'static str),
}

/// What a row needs here, checked before the run (after any reason run.sh recorded).
enum Need {
    /// The program its command line starts (`Built`), or a file (a path as
    /// in a command line), and what it is.
    Built(&'static str),
    File(&'static str, &'static str),
    /// A Python module; Node.js with the ws package in bench/node.
    Python(&'static str),
    Node,
}

/// The servers: name, family, what it is, echo command line, broadcast and
/// deflate modes, what it needs, whether it has a cross-server mode (its
/// broadcast program plus the backplane URL). In command lines `{ex}` is
/// build/examples, `{bin}` build/bench/bin, `{rust}` the directory of this
/// executable, `{root}` the repository.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    ("wsserver-c", Family::Wsserver, "wsserver through its C API: build/examples/echo_server; broadcast on topics (ws_conn_subscribe, ws_server_publish), bench/peers/wsserver_publish.c; deflate on: wsserver_publish --echo --deflate / --deflate",
        "{ex}/echo_server 127.0.0.1 {port}",
        Bcast::Program("{bin}/wsserver_publish 127.0.0.1 {port}", Need::Built("wsserver_publish (bench/run.sh builds bench/peers/wsserver_publish.c)")),
        Dfl::Echo("{bin}/wsserver_publish 127.0.0.1 {port} --echo --deflate"), Need::Built("build/examples/echo_server (run make)"), true),
    ("wsserver-poll", Family::Wsserver, "wsserver's event queue on one poll() loop (build/examples/poll_server)",
        "{ex}/poll_server 127.0.0.1 {port}", Bcast::None("echo only: poll_server has no broadcast mode"), Dfl::No,
        Need::Built("build/examples/poll_server (run make)"), false),
    ("wsserver-qt", Family::Wsserver, "wsserver's Qt binding: examples-qt/echo_server.cpp (QtServer on a QCoreApplication loop)",
        "{bin}/qt_echo_server 127.0.0.1 {port}", Bcast::None("echo only: examples-qt/echo_server has no broadcast mode"), Dfl::No,
        Need::Built("qt_echo_server (bench/run.sh builds bench/peers/qt)"), false),
    ("wsserver-rust", Family::Wsserver, "wsserver through its Rust API (bench/src/bin/wsserver_echo.rs; broadcast on topics: subscribe, publish)",
        "{rust}/wsserver_echo {port}", Bcast::Flag, Dfl::No, Need::Built("wsserver_echo"), false),
    ("tokio-tungstenite", Family::Peer, "tokio-tungstenite 0.30, default settings, one tokio thread",
        "{rust}/tungstenite_echo {port}", Bcast::Flag, Dfl::No, Need::Built("tungstenite_echo"), false),
    ("libwebsockets", Family::Peer, "libwebsockets (Debian libwebsockets-dev), bench/peers/lws_echo.c",
        "{bin}/lws_echo {port}", Bcast::Flag, Dfl::Flag, Need::Built("lws_echo"), false),
    ("boost-beast", Family::Peer, "Boost.Beast (Debian libboost-dev), one thread, bench/peers/beast_echo.cpp",
        "{bin}/beast_echo {port}", Bcast::Flag, Dfl::No, Need::Built("beast_echo"), false),
    ("qtwebsockets", Family::Peer, "QtWebSockets' QWebSocketServer, default settings, one Qt event loop, bench/peers/qtwebsockets_echo.cpp",
        "{bin}/qtwebsockets_echo {port}", Bcast::Flag, Dfl::No,
        Need::Built("qtwebsockets_echo (bench/run.sh builds bench/peers/qt)"), false),
    ("node-ws", Family::Peer, "Node.js with the ws package, bench/node/echo.js",
        "node {root}/bench/node/echo.js {port}", Bcast::Flag, Dfl::Flag, Need::Node, false),
    ("wsserver-python", Family::Wsserver, "wsserver's Python package, asyncio on the event fd (bench/python/wsserver_echo.py)",
        "python3 {root}/bench/python/wsserver_echo.py {port}", Bcast::Flag, Dfl::Flag,
        Need::File("{root}/target/release/libwsserver.so", "target/release/libwsserver.so (run make)"), false),
    ("python-websockets", Family::Peer, "Python websockets (asyncio), bench/python/websockets_echo.py",
        "python3 {root}/bench/python/websockets_echo.py {port}", Bcast::Flag, Dfl::Flag, Need::Python("websockets"), false),
    ("python-picows", Family::Peer, "Python picows (asyncio, Cython), bench/python/picows_echo.py",
        "python3 {root}/bench/python/picows_echo.py {port}", Bcast::Flag, Dfl::No, Need::Python("picows"), false),
    ("raw-tcp", Family::Ceiling, "ceiling: plain TCP echo/relay of the same bytes, no WebSocket (bench/src/bin/raw_echo.rs)",
        "{rust}/raw_echo {port}", Bcast::Flag, Dfl::Same, Need::Built("raw_echo"), false),
];

impl Paths<'_> {
    /// A command line of the table as argv.
    fn argv(&self, line: &str) -> Vec<String> {
        let (ex, bin) = (self.root.join("build/examples"), self.out.join("bin"));
        let dirs = [("{ex}", &*ex), ("{bin}", &*bin), ("{rust}", self.rust_bins), ("{root}", self.root)];
        let expand = |w: &str| dirs.iter().fold(w.to_string(), |w, (k, d)| w.replace(k, &d.display().to_string()));
        line.split(' ').map(expand).collect()
    }

    /// Why `need` (of a row starting `line`) is not met here, if it is not.
    fn lacks(&self, need: &Need, line: &str) -> Option<String> {
        let runs = |argv: &[&str]| Command::new(argv[0]).args(&argv[1..]).output().is_ok_and(|o| o.status.success());
        let missing = |path: &str, what: &str| {
            let path = Path::new(&self.argv(path)[0]).to_path_buf();
            (!path.exists()).then(|| format!("{what} not found at {}", path.display()))
        };
        match need {
            Need::Built(what) => missing(line, what),
            Need::File(path, what) => missing(path, what),
            Need::Python(m) if !runs(&["python3", "-c", &format!("import {m}")]) => {
                Some(format!("python3 cannot import {m} (pip install {m} failed or not run)"))
            }
            Need::Node if !runs(&["node", "--version"]) => Some("node not found".to_string()),
            Need::Node => {
                missing("{root}/bench/node/node_modules/ws/package.json", "npm package ws (npm ci in bench/node)")
            }
            Need::Python(_) => None,
        }
    }
}

/// Reason recorded by run.sh when it could not build or install a peer.
fn recorded_skip(out: &Path, name: &str) -> Option<String> {
    let r = std::fs::read_to_string(out.join("skip").join(format!("{name}.txt"))).ok()?;
    Some(r.trim().to_string()).filter(|r| !r.is_empty())
}

/// The table's servers.
pub fn all(p: &Paths) -> Vec<Spec> {
    TABLE.iter().map(|row| spec(p, row)).collect()
}

type Row = (&'static str, Family, &'static str, &'static str, Bcast, Dfl, Need, bool);

fn spec(p: &Paths, (name, family, about, echo_line, bcast, dfl, need, cross): &Row) -> Spec {
    let raw = *family == Family::Ceiling;
    let launch = |line: &str| Launch { argv: p.argv(line), raw };
    let plus = |l: &Launch, arg: &str| Launch { argv: [&l.argv[..], &[arg.to_string()]].concat(), raw };
    let flag = |l: &Result<Launch, String>| l.as_ref().map(|l| plus(l, "--deflate")).map_err(String::clone);
    let echo = launch(echo_line);
    let broadcast = match bcast {
        Bcast::Flag => Ok(plus(&echo, "--broadcast")),
        Bcast::Program(line, need) => match recorded_skip(p.out, &format!("{name}-publish")).or(p.lacks(need, line)) {
            Some(why) => Err(why),
            None => Ok(launch(line)),
        },
        Bcast::None(why) => Err(why.to_string()),
    };
    let deflate = match dfl {
        Dfl::No => None,
        Dfl::Same => Some(DeflateMode { echo: Ok(echo.clone()), broadcast: broadcast.clone() }),
        Dfl::Flag => Some(DeflateMode { echo: flag(&Ok(echo.clone())), broadcast: flag(&broadcast) }),
        Dfl::Echo(line) => Some(DeflateMode {
            echo: broadcast.as_ref().map(|_| launch(line)).map_err(String::clone),
            broadcast: flag(&broadcast),
        }),
    };
    let skip = recorded_skip(p.out, name).or(p.lacks(need, echo_line));
    let spec = Spec { name, about, family: *family, echo, broadcast, cross: None, skip, deflate };
    if *cross {
        spec.with_cross_unless(crate::broker::missing())
    } else {
        spec
    }
}

impl Spec {
    /// With a cross mode: the broadcast line plus the backplane URL, or why
    /// not (the broadcast program's reason, or `broker_missing`'s).
    fn with_cross_unless(mut self, broker_missing: Option<String>) -> Spec {
        let cross = self.broadcast.clone().map(|l| Launch { argv: [l.argv, vec!["{backplane}".into()]].concat(), ..l });
        self.cross = Some(match broker_missing {
            Some(why) if cross.is_ok() => Err(why),
            _ => cross,
        });
        self
    }
}

#[cfg(test)]
impl Spec {
    /// A row for tests: its name, family and echo argv, no other mode.
    pub fn bare(name: &'static str, family: Family, echo: &[&str]) -> Spec {
        let echo = Launch { argv: echo.iter().map(|a| a.to_string()).collect(), raw: false };
        Spec { name, about: "", family, echo, broadcast: Err(String::new()), cross: None, skip: None, deflate: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(broadcast: Result<Launch, String>) -> Spec {
        Spec { broadcast, ..Spec::bare("wsserver-c", Family::Wsserver, &["echo_server", "127.0.0.1", "{port}"]) }
    }

    #[test]
    fn the_table_gives_each_server_its_command_lines() {
        let (root, bins, out) = (Path::new("/r"), Path::new("/t"), Path::new("/o"));
        let all = all(&Paths { root, rust_bins: bins, out });
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), 13);
        assert_eq!(&names[..2], ["wsserver-c", "wsserver-poll"]);
        let argv = |l: &Result<Launch, String>| l.as_ref().map(|l| l.argv.join(" ")).map_err(String::clone);
        let get = |n: &str| all.iter().find(|s| s.name == n).unwrap();
        let ws = get("wsserver-c");
        assert_eq!(argv(&Ok(ws.echo.clone())).unwrap(), "/r/build/examples/echo_server 127.0.0.1 {port}");
        // Not built here: the broadcast program, and with it its deflate echo mode, says why.
        assert!(argv(&ws.broadcast).unwrap_err().ends_with("not found at /o/bin/wsserver_publish"));
        assert!(ws.deflate.as_ref().unwrap().echo.is_err() && ws.cross.is_some());
        let node = get("node-ws");
        assert_eq!(argv(&node.broadcast).unwrap(), "node /r/bench/node/echo.js {port} --broadcast");
        let node_deflate = argv(&node.deflate.as_ref().unwrap().broadcast).unwrap();
        assert_eq!(node_deflate, "node /r/bench/node/echo.js {port} --broadcast --deflate");
        let raw = get("raw-tcp");
        assert!(raw.echo.raw && raw.family == Family::Ceiling);
        assert_eq!(raw.skip.as_deref(), Some("raw_echo not found at /t/raw_echo"));
        assert_eq!(argv(&raw.deflate.as_ref().unwrap().echo).unwrap(), "/t/raw_echo {port}");
        assert_eq!(argv(&get("wsserver-poll").broadcast).unwrap_err(), "echo only: poll_server has no broadcast mode");
        assert!(get("python-picows").deflate.is_none() && get("wsserver-rust").cross.is_none());
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
