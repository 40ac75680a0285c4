//! A wss:// connection's TLS, on rustls's unbuffered API: the socket's bytes
//! are read into a per-thread scratch buffer and decrypted there, and what
//! goes out is encrypted into another and written from it, so an idle
//! connection keeps no buffer at all and a message allocates none. (tokio-rustls's stream keeps
//! rustls's 4 KiB read buffer per connection for good after its first read.)
//! Only a partial record, plaintext the reader had no room for, or output
//! the socket did not take stays with the connection, until it is gone.
//! After a TLS 1.3 handshake, [`Records`] takes over from rustls: an idle
//! connection then keeps only its keys.
use crate::boxed_vec::BoxedVec;
use crate::tls13_records::{self, Fatal, LoggedSecrets, Record, Records};
use std::cell::Cell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::thread::LocalKey;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::server::{ServerConfig, UnbufferedServerConnection};
use tokio_rustls::rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};

/// Enough for the largest TLS record (16 KiB of payload plus overhead).
const SCRATCH_SIZE: usize = 18 * 1024;
/// Most plaintext one write encrypts.
const MAX_WRITE: usize = 64 * 1024;
/// More than any cipher suite adds to a record (TLS 1.2 AES-GCM: 29 bytes).
const RECORD_OVERHEAD: usize = 64;
/// How long a refused handshake's socket is drained before it closes.
const CLOSE_AFTER_REFUSAL: Duration = Duration::from_millis(500);

thread_local! {
    /// Received bytes, behind the connection's partial record if any.
    static READ_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Encrypted bytes on their way to the socket.
    static WRITE_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on this thread's buffer `key` (taken out meanwhile: a nested
/// use would get an empty one of its own, never the same).
fn with_scratch<R>(key: &'static LocalKey<Cell<Vec<u8>>>, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = key.take();
    let r = f(&mut buf);
    key.set(buf);
    r
}

/// What the record processing stopped at.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// It needs more bytes from the peer.
    Blocked,
    /// Application data may be written (`Job::Write` was, this many bytes).
    Writable(usize),
    /// The peer sent close_notify.
    PeerClosed,
    /// Both sides sent close_notify.
    Closed,
}

/// What to do once application data may be written.
enum Job<'a> {
    Nothing,
    /// Encrypt these (each slice its own record or records), up to
    /// `MAX_WRITE` bytes in all.
    Write(&'a [IoSlice<'a>]),
    Close,
}

/// Who keeps the record layer: rustls through the handshake (and for good
/// on TLS 1.2), [`Records`] after a TLS 1.3 one. Boxed: the stream is
/// part of the connection, which stays small.
enum Session {
    Rustls(Box<Handshaking>),
    Tls13(Box<Records>),
}

struct Handshaking {
    conn: UnbufferedServerConnection,
    /// The traffic secrets rustls logged for this connection.
    logged: LoggedSecrets,
}

/// Over a tokio socket through the handshakes, then (wss:// on an I/O
/// thread's driver) over the driver's [`crate::driver::RawStream`].
pub(crate) struct TlsStream<IO = TcpStream> {
    io: IO,
    session: Session,
    /// Received bytes not yet processed: a partial record (usually empty).
    /// These three are one pointer each while empty: an idle
    /// connection stays small (a tokio task cell grows in 128-byte steps).
    incoming: BoxedVec<u8>,
    /// Decrypted bytes the reader had no room for yet (usually empty).
    plain: BoxedVec<u8>,
    /// Encrypted bytes the socket did not take yet, from `sent` on.
    outgoing: BoxedVec<u8>,
    sent: usize,
    /// The peer ended its side (close_notify, or end of the TCP stream).
    eof: bool,
    close_queued: bool,
}

fn tls_error(e: tokio_rustls::rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Runs `f` on `outgoing` grown until it fits what `f` writes after its
/// current end, starting with `room` bytes; `too_small` tells the size an
/// error asks for.
fn encode_into<E>(
    outgoing: &mut impl AsMut<Vec<u8>>,
    mut room: usize,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, E>,
    too_small: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let outgoing = outgoing.as_mut();
    let len = outgoing.len();
    loop {
        outgoing.resize(len + room, 0);
        match f(&mut outgoing[len..]) {
            Ok(n) => {
                outgoing.truncate(len + n);
                return Ok(());
            }
            Err(e) => match too_small(&e) {
                Some(required) if required > room => room = required,
                _ => {
                    outgoing.truncate(len);
                    return Err(e);
                }
            },
        }
    }
}

fn encrypt_too_small(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => Some(*required_size),
        _ => None,
    }
}

/// Processes the records in `data` (consuming all complete ones): plaintext
/// into `out` and the rest into `plain`, TLS output queued on `outgoing`;
/// `job` is done once application data may be written. Returns how many
/// bytes of `data` were used, and where it stopped.
fn process(
    session: &mut Session,
    data: &mut [u8],
    out: &mut ReadBuf<'_>,
    plain: &mut BoxedVec<u8>,
    outgoing: &mut impl AsMut<Vec<u8>>,
    job: Job<'_>,
) -> (usize, io::Result<Step>) {
    match session {
        Session::Rustls(h) => {
            let handshaking = h.conn.is_handshaking();
            let r = process_rustls(&mut h.conn, data, out, plain, outgoing, job);
            // rustls logs the traffic secrets while it handshakes.
            if handshaking {
                h.logged.collect();
            }
            r
        }
        Session::Tls13(records) => process_tls13(records, data, out, plain, outgoing.as_mut(), job),
    }
}

/// Encrypts each non-empty slice with `encrypt`, up to `MAX_WRITE` bytes
/// in all; how many bytes were. What was encrypted before an error is
/// queued and counts as written.
fn encrypt_slices<E>(bufs: &[IoSlice<'_>], mut encrypt: impl FnMut(&[u8]) -> Result<(), E>) -> Result<usize, E> {
    let mut total = 0;
    for buf in bufs.iter().filter(|b| !b.is_empty()) {
        let buf = &buf[..buf.len().min(MAX_WRITE - total)];
        if let Err(e) = encrypt(buf) {
            return if total > 0 { Ok(total) } else { Err(e) };
        }
        total += buf.len();
        if total == MAX_WRITE {
            break;
        }
    }
    Ok(total)
}

/// Plaintext into `out` as far as it has room, the rest into `plain`.
fn deliver(payload: &[u8], out: &mut ReadBuf<'_>, plain: &mut BoxedVec<u8>) {
    let n = payload.len().min(out.remaining());
    out.put_slice(&payload[..n]);
    if n < payload.len() {
        plain.extend_from_slice(&payload[n..]);
    }
}

/// The error a fatal record-layer failure gives, its alert queued.
fn fail(records: &mut Records, f: Fatal, outgoing: &mut Vec<u8>) -> io::Error {
    if let Some(alert) = f.alert {
        let _ = records.seal_alert(alert, outgoing);
    }
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {}", f.why))
}

/// [`process`] after a TLS 1.3 handshake.
fn process_tls13(
    records: &mut Records,
    data: &mut [u8],
    out: &mut ReadBuf<'_>,
    plain: &mut BoxedVec<u8>,
    outgoing: &mut Vec<u8>,
    job: Job<'_>,
) -> (usize, io::Result<Step>) {
    let mut used = 0;
    while !records.peer_closed() {
        match records.open(&mut data[used..]) {
            Ok(None) => break,
            Ok(Some((n, record))) => {
                if let Record::Data(payload) = record {
                    deliver(payload, out, plain);
                }
                used += n;
            }
            Err(f) => return (used, Err(fail(records, f, outgoing))),
        }
    }
    // What follows close_notify is dropped; nothing may be sent (as rustls).
    if records.peer_closed() {
        return (data.len(), Ok(Step::PeerClosed));
    }
    if let Err(f) = records.answer_key_update(outgoing) {
        return (used, Err(fail(records, f, outgoing)));
    }
    let r = match job {
        Job::Nothing => Ok(0),
        Job::Write(bufs) => encrypt_slices(bufs, |buf| records.seal(buf, outgoing)),
        Job::Close => records.seal_close_notify(outgoing).map(|()| 0),
    };
    match r {
        Ok(n) => (used, Ok(Step::Writable(n))),
        Err(f) => (used, Err(fail(records, f, outgoing))),
    }
}

/// [`process`] while rustls keeps the record layer.
fn process_rustls(
    conn: &mut UnbufferedServerConnection,
    data: &mut [u8],
    out: &mut ReadBuf<'_>,
    plain: &mut BoxedVec<u8>,
    outgoing: &mut impl AsMut<Vec<u8>>,
    job: Job<'_>,
) -> (usize, io::Result<Step>) {
    let mut used = 0;
    loop {
        let status = conn.process_tls_records(&mut data[used..]);
        // Records decrypted below add theirs: all of it goes once the
        // state is handled, before the next call.
        let mut discard = status.discard;
        let step = match status.state {
            Err(e) => {
                used += discard;
                // The alert that tells the peer why is queued, maybe behind
                // messages made before the failure (a ServerHello): all go.
                // Only while some is queued: rustls then hands it over
                // before it reads records (reading the rest of `data` again
                // would meet the same error and alert twice).
                while conn.wants_write() {
                    let Ok(ConnectionState::EncodeTlsData(mut enc)) = conn.process_tls_records(&mut data[used..]).state
                    else {
                        break;
                    };
                    if encode_into(outgoing, 512, |b| enc.encode(b), |_| None::<usize>).is_err() {
                        break;
                    }
                }
                return (used, Err(tls_error(e)));
            }
            Ok(ConnectionState::ReadTraffic(mut read)) => {
                while let Some(record) = read.next_record() {
                    let record = match record {
                        Ok(r) => r,
                        Err(e) => return (used + discard, Err(tls_error(e))),
                    };
                    discard += record.discard;
                    deliver(record.payload, out, plain);
                }
                None
            }
            Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                let r = encode_into(
                    outgoing,
                    512,
                    |b| enc.encode(b),
                    |e| match e {
                        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => Some(*required_size),
                        _ => None,
                    },
                );
                if let Err(e) = r {
                    return (used + discard, Err(io::Error::other(e.to_string())));
                }
                None
            }
            // Queued on `outgoing`, which goes out before anything later.
            Ok(ConnectionState::TransmitTlsData(t)) => {
                t.done();
                None
            }
            Ok(ConnectionState::BlockedHandshake) => Some(Step::Blocked),
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                let r = match job {
                    Job::Nothing => Ok(0),
                    Job::Write(bufs) => encrypt_slices(bufs, |buf| {
                        // Sized for it at once (rustls splits it in records).
                        let room = buf.len() + (buf.len() / 16_384 + 1) * RECORD_OVERHEAD;
                        encode_into(outgoing, room, |b| w.encrypt(buf, b), encrypt_too_small)
                    }),
                    Job::Close => {
                        encode_into(outgoing, RECORD_OVERHEAD, |b| w.queue_close_notify(b), encrypt_too_small)
                            .map(|()| 0)
                    }
                };
                match r {
                    Ok(n) => Some(Step::Writable(n)),
                    Err(e) => return (used + discard, Err(io::Error::other(e.to_string()))),
                }
            }
            Ok(ConnectionState::PeerClosed) => Some(Step::PeerClosed),
            Ok(ConnectionState::Closed) => Some(Step::Closed),
            Ok(_) => {
                return (used + discard, Err(io::Error::other("unexpected TLS state (early data is not enabled)")));
            }
        };
        used += discard;
        if let Some(step) = step {
            return (used, Ok(step));
        }
    }
}

/// Writes `bytes` from `*sent` on until the socket took them all (Ready)
/// or is full (Pending, `*sent` where it stopped).
fn write_from<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    cx: &mut Context<'_>,
    bytes: &[u8],
    sent: &mut usize,
) -> Poll<io::Result<()>> {
    while *sent < bytes.len() {
        match ready!(Pin::new(&mut *io).poll_write(cx, &bytes[*sent..])) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => *sent += n,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

impl TlsStream {
    /// The server side of a TLS handshake on `io`, and the subject of the
    /// certificate the client presented, if any. A refused handshake
    /// gives the socket back (its alert sent, if the socket took it), for
    /// [`close_after_refusal`].
    pub(crate) async fn accept(
        config: Arc<ServerConfig>,
        io: TcpStream,
    ) -> Result<(TlsStream, Option<String>), (io::Error, TcpStream)> {
        let conn = match UnbufferedServerConnection::new(config) {
            Ok(conn) => conn,
            Err(e) => return Err((tls_error(e), io)),
        };
        let mut s = TlsStream {
            io,
            session: Session::Rustls(Box::new(Handshaking { conn, logged: LoggedSecrets::default() })),
            incoming: BoxedVec::default(),
            plain: BoxedVec::default(),
            outgoing: BoxedVec::default(),
            sent: 0,
            eof: false,
            close_queued: false,
        };
        if let Err(e) = std::future::poll_fn(|cx| s.poll_handshake(cx)).await {
            return Err((e, s.io));
        }
        let subject = match &s.session {
            Session::Rustls(h) => crate::tls::client_subject(&h.conn),
            Session::Tls13(_) => None,
        };
        Ok((s.into_tls13()?, subject))
    }

    /// After a TLS 1.3 handshake of a suite it handles, [`Records`] takes
    /// over the record layer and rustls's connection goes; otherwise
    /// (TLS 1.2) rustls keeps it.
    fn into_tls13(mut self) -> Result<TlsStream, (io::Error, TcpStream)> {
        let h = match self.session {
            Session::Rustls(h) if tls13_records::handles(&h.conn, &h.logged) => h,
            other => {
                self.session = other;
                return Ok(self);
            }
        };
        // The handshake ended with its output sent: nothing is buffered.
        match Records::take_over(h.conn, h.logged) {
            Ok(r) => {
                self.session = Session::Tls13(Box::new(r));
                Ok(self)
            }
            Err(e) => Err((io::Error::other(e), self.io)),
        }
    }

    /// Moves the connection onto `io` (the same socket, another handle),
    /// giving back the old handle.
    pub(crate) fn with_io<T>(self, io: T) -> (TlsStream<T>, TcpStream) {
        let TlsStream { io: old, session, incoming, plain, outgoing, sent, eof, close_queued } = self;
        (TlsStream { io, session, incoming, plain, outgoing, sent, eof, close_queued }, old)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// The socket.
    pub(crate) fn io(&self) -> &IO {
        &self.io
    }

    pub(crate) fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            let handshaking = match &self.session {
                Session::Rustls(h) => h.conn.is_handshaking(),
                Session::Tls13(_) => false,
            };
            if !handshaking {
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            // Application data sent right behind the handshake (the HTTP
            // upgrade request) is kept in `plain`.
            let mut none = ReadBuf::new(&mut []);
            ready!(self.poll_receive(cx, &mut none))?;
        }
    }

    /// Writes `outgoing` until the socket took it all (then frees it).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(write_from(&mut self.io, cx, &self.outgoing, &mut self.sent))?;
        if self.outgoing.capacity() > 0 {
            self.outgoing = BoxedVec::default();
            self.sent = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads from the socket once and processes what came: Ready when
    /// something did (plaintext in `out` or `plain`, or the end).
    fn poll_receive(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let TlsStream { io, session, incoming, plain, outgoing, eof, .. } = self;
        let result = with_scratch(&READ_SCRATCH, |scratch| {
            // The partial record (usually none) first, the new bytes behind.
            let kept = incoming.len();
            if scratch.len() < kept + SCRATCH_SIZE {
                scratch.resize(kept + SCRATCH_SIZE, 0);
            }
            scratch[..kept].copy_from_slice(incoming);
            let mut rb = ReadBuf::new(&mut scratch[kept..kept + SCRATCH_SIZE]);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                *eof = true;
                return Poll::Ready(Ok(()));
            }
            let (used, step) = process(session, &mut scratch[..kept + n], out, plain, outgoing, Job::Nothing);
            // What is left (a partial record) stays with the connection,
            // exactly sized; nothing when all was used.
            *incoming = scratch[used..kept + n].to_vec().into();
            Poll::Ready(step.map(|s| *eof |= matches!(s, Step::PeerClosed | Step::Closed)))
        });
        // Handshake messages, alerts or key updates that processing queued.
        if !self.outgoing.is_empty() {
            if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                if !matches!(result, Poll::Ready(Err(_))) {
                    return Poll::Ready(Err(e));
                }
            }
        }
        result
    }

    /// Encrypts application data (`Job::Write`) or close_notify.
    fn write_job(&mut self, job: Job<'_>, outgoing: &mut impl AsMut<Vec<u8>>) -> io::Result<usize> {
        let mut none = ReadBuf::new(&mut []);
        let TlsStream { session, incoming, plain, .. } = self;
        // With the bytes still unprocessed (usually none): rustls keeps
        // positions in them across calls (a partial handshake message).
        let (used, step) = process(session, incoming.slice_mut(), &mut none, plain, outgoing, job);
        if used > 0 {
            incoming.drain(..used);
        }
        match step? {
            Step::Writable(n) => Ok(n),
            Step::Blocked => Err(io::Error::other("TLS handshake not complete")),
            Step::PeerClosed | Step::Closed => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

/// Ends a refused handshake's socket so that its alert arrives: our side is
/// shut first, then what the client still sends (the rest of its flight,
/// its request) is read and dropped until it closes or `CLOSE_AFTER_REFUSAL`
/// is up.
/// Closed at once, a socket with unread bytes sends a reset, and the
/// client's system may drop the alert before the client reads it.
pub(crate) async fn close_after_refusal(mut io: TcpStream) {
    if io.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 1024];
        while let Ok(1..) = io.read(&mut sink).await {}
    };
    let _ = tokio::time::timeout(CLOSE_AFTER_REFUSAL, drain).await;
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.remaining());
                buf.put_slice(&this.plain[..n]);
                this.plain.drain(..n);
                if this.plain.is_empty() {
                    this.plain = BoxedVec::default();
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(this.poll_receive(cx, buf))?;
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Encrypts the slices (one record or more each) and sends them with
    /// one write: the connection's batch of frames is one system call.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What the socket did not take goes first: that is the back pressure.
        ready!(this.poll_send(cx))?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        // Encrypted into this thread's buffer and written from it; taken
        // once encrypted: what the socket does not take now waits in
        // `outgoing`, and the next write or flush waits for it.
        let n = with_scratch(&WRITE_SCRATCH, |buf| {
            buf.clear();
            let n = this.write_job(Job::Write(bufs), buf)?;
            let mut sent = 0;
            if let Poll::Ready(Err(e)) = write_from(&mut this.io, cx, buf, &mut sent) {
                return Err(e);
            }
            if sent < buf.len() {
                this.outgoing = buf[sent..].to_vec().into();
                this.sent = 0;
            }
            Ok(n)
        })?;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            ready!(this.poll_send(cx))?;
            this.close_queued = true;
            // Nothing to say when the peer is gone or closed both ways.
            let mut outgoing = std::mem::take(&mut this.outgoing);
            let _ = this.write_job(Job::Close, &mut outgoing);
            this.outgoing = outgoing;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
