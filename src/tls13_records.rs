//! TLS 1.3's record layer once the handshake is done (RFC 8446 §5): rustls
//! makes the handshake and hands over the traffic keys, and from then on a
//! wss:// connection keeps two AEAD keys and the two traffic secrets (1,280
//! bytes) instead of rustls's whole connection (about 2.8 KiB more): with
//! the connection on its I/O thread's driver, that is what keeps an idle
//! wss:// connection under 2 KiB. Records are sealed and opened in place
//! with ring, as rustls's own ring provider does. What rustls does after a
//! handshake is done here too: alerts both ways, KeyUpdate both ways
//! (§4.6.3), and a new key before AES-GCM's confidentiality limit (§5.5).
//! TLS 1.2 connections, and any suite not listed in [`Suite::of`], keep
//! rustls's connection. SECURITY.md lists every rule and its test.
use std::cell::RefCell;

use ring::{aead, hkdf};
use tokio_rustls::rustls::server::UnbufferedServerConnection;
use tokio_rustls::rustls::{self, CipherSuite, ConnectionTrafficSecrets, ExtractedSecrets, SupportedCipherSuite};
use zeroize::Zeroize;

const HEADER: usize = 5;
const TAG: usize = 16;
/// Largest plaintext of one record (§5.1).
pub(crate) const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest ciphertext a peer may send: plaintext, content type and padding
/// (at most 255 bytes in all) and the tag (§5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// Records sealed under one key before the next replaces it: AES-GCM's
/// limit is 2^24.5 full records (§5.5); rustls renews at 2^24 as well.
const KEY_LIFETIME: u64 = 1 << 24;
/// KeyUpdates the peer may send with no application data between them:
/// each costs us a key derivation (and a record, when it asks for ours).
const MAX_KEY_UPDATES_IN_A_ROW: u8 = 32;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const KEY_UPDATE: u8 = 24;

const CLOSE_NOTIFY: u8 = 0;
const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const ILLEGAL_PARAMETER: u8 = 47;
const DECODE_ERROR: u8 = 50;
const USER_CANCELED: u8 = 90;

/// A fatal error: the alert that tells the peer why (none when the peer's
/// own alert ended it), and what the log says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fatal {
    pub(crate) alert: Option<u8>,
    pub(crate) why: String,
}

fn fatal(alert: u8, why: &str) -> Fatal {
    Fatal { alert: Some(alert), why: why.to_owned() }
}

/// What one record held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Data(&'a [u8]),
    CloseNotify,
    /// A KeyUpdate or a user_canceled warning: nothing for the reader.
    Nothing,
}

/// The algorithms of a TLS 1.3 suite, as ring names them.
#[derive(Clone, Copy)]
struct Suite {
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
}

impl Suite {
    fn of(suite: SupportedCipherSuite) -> Option<Suite> {
        let (aead, hkdf) = match suite.suite() {
            CipherSuite::TLS13_AES_128_GCM_SHA256 => (&aead::AES_128_GCM, hkdf::HKDF_SHA256),
            CipherSuite::TLS13_AES_256_GCM_SHA384 => (&aead::AES_256_GCM, hkdf::HKDF_SHA384),
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => (&aead::CHACHA20_POLY1305, hkdf::HKDF_SHA256),
            _ => return None,
        };
        Some(Suite { aead, hkdf })
    }

    fn hash_len(&self) -> usize {
        self.hkdf.hmac_algorithm().digest_algorithm().output_len()
    }
}

/// A traffic secret (at most SHA-384's 48 bytes), wiped when dropped.
pub(crate) struct Secret {
    bytes: [u8; 48],
    len: u8,
}

impl Secret {
    fn new(bytes: &[u8]) -> Option<Secret> {
        let mut s = Secret { bytes: [0; 48], len: u8::try_from(bytes.len()).ok()? };
        s.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(s)
    }

    fn get(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// ring's output length for HKDF-Expand.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", out.len()) (§7.1).
fn expand_label(alg: hkdf::Algorithm, secret: &[u8], label: &[u8], out: &mut [u8]) {
    let prk = hkdf::Prk::new_less_safe(alg, secret);
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    // Only lengths over 255 hash lengths fail; ours are at most 48 bytes.
    prk.expand(&info, Len(out.len())).and_then(|okm| okm.fill(out)).expect("HKDF-Expand within its limit");
}

/// One direction's key, nonce base, sequence number and traffic secret.
struct Direction {
    key: aead::LessSafeKey,
    iv: [u8; aead::NONCE_LEN],
    seq: u64,
    secret: Secret,
}

impl Direction {
    /// The key and IV of `secret` (§7.3), and the key's raw bytes.
    fn derive(suite: Suite, secret: Secret, seq: u64) -> (Direction, [u8; 32]) {
        let mut raw = [0u8; 32];
        let key_len = suite.aead.key_len();
        expand_label(suite.hkdf, secret.get(), b"key", &mut raw[..key_len]);
        let mut iv = [0u8; aead::NONCE_LEN];
        expand_label(suite.hkdf, secret.get(), b"iv", &mut iv);
        let key = aead::UnboundKey::new(suite.aead, &raw[..key_len]).expect("the suite's key length");
        (Direction { key: aead::LessSafeKey::new(key), iv, seq, secret }, raw)
    }

    /// The next generation (§7.2), its sequence number back at 0.
    fn next(&mut self, suite: Suite) {
        let mut next = [0u8; 48];
        let len = suite.hash_len();
        expand_label(suite.hkdf, self.secret.get(), b"traffic upd", &mut next[..len]);
        let secret = Secret::new(&next[..len]).expect("at most 48 bytes");
        next.zeroize();
        let (d, mut raw) = Direction::derive(suite, secret, 0);
        raw.zeroize();
        *self = d;
    }

    /// The record's nonce (§5.3), and the sequence number moved on.
    fn nonce(&mut self) -> Result<aead::Nonce, Fatal> {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or_else(|| fatal(UNEXPECTED_MESSAGE, "sequence numbers exhausted"))?;
        Ok(aead::Nonce::assume_unique_for_key(nonce))
    }
}

/// The traffic secrets rustls logged while this thread was making a
/// handshake (see [`TrafficSecretCapture`]).
#[derive(Default)]
pub(crate) struct LoggedSecrets {
    client: Option<Secret>,
    server: Option<Secret>,
}

impl LoggedSecrets {
    /// Adds what was logged since the last call on this thread.
    pub(crate) fn collect(&mut self) {
        LOGGED.with_borrow_mut(|l| {
            self.client = l.client.take().or(self.client.take());
            self.server = l.server.take().or(self.server.take());
        });
    }
}

thread_local! {
    static LOGGED: RefCell<LoggedSecrets> = RefCell::default();
}

/// rustls's key log, used for the two application traffic secrets, which
/// a key update needs and `ExtractedSecrets` does not give. rustls logs
/// them inside the call that processes the client's first flight, so the
/// stream that made that call collects them from this thread right after.
#[derive(Debug)]
pub(crate) struct TrafficSecretCapture;

impl rustls::KeyLog for TrafficSecretCapture {
    fn will_log(&self, label: &str) -> bool {
        matches!(label, "CLIENT_TRAFFIC_SECRET_0" | "SERVER_TRAFFIC_SECRET_0")
    }

    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        LOGGED.with_borrow_mut(|l| match label {
            "CLIENT_TRAFFIC_SECRET_0" => l.client = Secret::new(secret),
            "SERVER_TRAFFIC_SECRET_0" => l.server = Secret::new(secret),
            _ => {}
        });
    }
}

/// Whether [`Records::take_over`] takes over this connection: a TLS 1.3
/// suite it knows (only TLS 1.3 negotiates those), its secrets logged.
pub(crate) fn handles(conn: &UnbufferedServerConnection, logged: &LoggedSecrets) -> bool {
    conn.negotiated_cipher_suite().and_then(Suite::of).is_some() && logged.client.is_some() && logged.server.is_some()
}

/// The record layer of one connection.
pub(crate) struct Records {
    suite: Suite,
    read: Direction,
    write: Direction,
    key_updates_in_a_row: u8,
    /// The peer asked for our KeyUpdate: it goes before our next record.
    answer_key_update: bool,
    /// The peer sent close_notify: nothing more is read or sent.
    peer_closed: bool,
}

impl Records {
    /// Takes over from rustls once its handshake is done and sent (which
    /// [`handles`] said it can): rustls's connection goes.
    pub(crate) fn take_over(conn: UnbufferedServerConnection, logged: LoggedSecrets) -> Result<Records, String> {
        let suite = conn.negotiated_cipher_suite().ok_or("no cipher suite after the handshake")?;
        let (extracted, _) = conn.dangerous_into_kernel_connection().map_err(|e| e.to_string())?;
        Ok(Records::new(suite, extracted, logged)?)
    }

    /// The keys are derived from the logged secrets and must be the ones
    /// rustls extracted (so the logged secrets are this connection's and
    /// the derivation is right).
    fn new(
        suite: SupportedCipherSuite,
        extracted: ExtractedSecrets,
        logged: LoggedSecrets,
    ) -> Result<Records, &'static str> {
        let suite_algs = Suite::of(suite).ok_or("suite not handled")?;
        let derive = |secret: Option<Secret>, (seq, expected): (u64, ConnectionTrafficSecrets)| {
            let secret = secret.ok_or("traffic secret not logged")?;
            let (d, mut raw) = Direction::derive(suite_algs, secret, seq);
            let (key, iv) = match &expected {
                ConnectionTrafficSecrets::Aes128Gcm { key, iv }
                | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
                | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key.as_ref(), iv.as_ref()),
                _ => return Err("unexpected traffic secret kind"),
            };
            let same = raw.get(..key.len()) == Some(key) && d.iv[..] == *iv;
            raw.zeroize();
            if same {
                Ok(d)
            } else {
                Err("derived keys differ from rustls's")
            }
        };
        let LoggedSecrets { client, server } = logged;
        let read = derive(client, extracted.rx)?;
        let write = derive(server, extracted.tx)?;
        Ok(Records {
            suite: suite_algs,
            read,
            write,
            key_updates_in_a_row: 0,
            answer_key_update: false,
            peer_closed: false,
        })
    }

    /// The peer sent close_notify.
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Opens the first record of `data`: None while it is incomplete, else
    /// its length and content.
    pub(crate) fn open<'a>(&mut self, data: &'a mut [u8]) -> Result<Option<(usize, Record<'a>)>, Fatal> {
        let Some(&[typ, v0, v1, l0, l1]) = data.get(..HEADER) else { return Ok(None) };
        // Encrypted records only; the version is in the AAD, not checked (§5.1).
        if typ != APPLICATION_DATA {
            return Err(fatal(UNEXPECTED_MESSAGE, "an unencrypted record after the handshake"));
        }
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len > MAX_CIPHERTEXT {
            return Err(fatal(RECORD_OVERFLOW, "a record over 2^14 + 256 bytes"));
        }
        let Some(body) = data.get_mut(HEADER..HEADER + len) else { return Ok(None) };
        let aad = aead::Aad::from([typ, v0, v1, l0, l1]);
        let nonce = self.read.nonce()?;
        let inner = (self.read.key.open_in_place(nonce, aad, body))
            .map_err(|_| fatal(BAD_RECORD_MAC, "a record that fails authentication"))?;
        // The content type is the last byte that is not padding (§5.2).
        let end = inner
            .iter()
            .rposition(|&b| b != 0)
            .ok_or_else(|| fatal(UNEXPECTED_MESSAGE, "a record with no content type"))?;
        let (content, inner_type) = (&inner[..end], inner[end]);
        if content.len() > MAX_PLAINTEXT {
            return Err(fatal(RECORD_OVERFLOW, "a record of over 2^14 bytes of plaintext"));
        }
        let record = match inner_type {
            APPLICATION_DATA => {
                self.key_updates_in_a_row = 0;
                Record::Data(content)
            }
            ALERT => match *content {
                [_, CLOSE_NOTIFY] => {
                    self.peer_closed = true;
                    Record::CloseNotify
                }
                [_, USER_CANCELED] => Record::Nothing,
                [_, description] => {
                    return Err(Fatal { alert: None, why: format!("the client sent TLS alert {description}") })
                }
                _ => return Err(fatal(DECODE_ERROR, "an alert that is not 2 bytes")),
            },
            HANDSHAKE => self.key_update(content)?,
            _ => return Err(fatal(UNEXPECTED_MESSAGE, "a record of an unknown content type")),
        };
        Ok(Some((HEADER + len, record)))
    }

    /// A handshake record after the handshake: one KeyUpdate, the last
    /// message of its record (§5.1: messages before a key change end
    /// their record), or nothing at all.
    fn key_update(&mut self, content: &[u8]) -> Result<Record<'static>, Fatal> {
        let requested = match *content {
            [KEY_UPDATE, 0, 0, 1, request] => request,
            [KEY_UPDATE, ..] => {
                return Err(fatal(DECODE_ERROR, "a KeyUpdate that is not 1 byte, or not last in its record"))
            }
            _ => return Err(fatal(UNEXPECTED_MESSAGE, "a handshake message after the handshake other than KeyUpdate")),
        };
        if requested > 1 {
            return Err(fatal(ILLEGAL_PARAMETER, "a KeyUpdate request that is neither 0 nor 1"));
        }
        self.key_updates_in_a_row += 1;
        if self.key_updates_in_a_row > MAX_KEY_UPDATES_IN_A_ROW {
            return Err(fatal(UNEXPECTED_MESSAGE, "too many KeyUpdates with no data between them"));
        }
        self.read.next(self.suite);
        self.answer_key_update |= requested == 1;
        Ok(Record::Nothing)
    }

    /// Seals `data` as application data records (of at most 2^14 bytes
    /// each) onto `out`.
    pub(crate) fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Fatal> {
        out.reserve(data.len() + (data.len() / MAX_PLAINTEXT + 1) * (HEADER + 1 + TAG));
        for chunk in data.chunks(MAX_PLAINTEXT) {
            self.seal_record(APPLICATION_DATA, chunk, out)?;
        }
        Ok(())
    }

    /// Seals the fatal `alert` onto `out`.
    pub(crate) fn seal_alert(&mut self, alert: u8, out: &mut Vec<u8>) -> Result<(), Fatal> {
        self.seal_record(ALERT, &[2, alert], out)
    }

    /// Seals close_notify (a warning, §6.1) onto `out`.
    pub(crate) fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), Fatal> {
        self.seal_record(ALERT, &[1, CLOSE_NOTIFY], out)
    }

    /// Seals the KeyUpdate the peer asked for, if it did, onto `out`.
    pub(crate) fn answer_key_update(&mut self, out: &mut Vec<u8>) -> Result<(), Fatal> {
        if self.answer_key_update {
            self.renew_write_key(out)?;
        }
        Ok(())
    }

    /// Our KeyUpdate (not asking for the peer's) under the old key, then
    /// the new key.
    fn renew_write_key(&mut self, out: &mut Vec<u8>) -> Result<(), Fatal> {
        self.seal_one(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0], out)?;
        self.write.next(self.suite);
        self.answer_key_update = false;
        Ok(())
    }

    fn seal_record(&mut self, typ: u8, content: &[u8], out: &mut Vec<u8>) -> Result<(), Fatal> {
        if self.answer_key_update || self.write.seq >= KEY_LIFETIME {
            self.renew_write_key(out)?;
        }
        self.seal_one(typ, content, out)
    }

    /// A server's records and a client's with the same (made-up) secrets,
    /// for tests and fuzzing.
    #[cfg(any(test, fuzzing))]
    fn pair(suite: Suite) -> (Records, Records) {
        let secret = |b: u8| Secret::new(&[b; 48][..suite.hash_len()]).expect("at most 48 bytes");
        let dir = |b: u8| Direction::derive(suite, secret(b), 0).0;
        let records = |read, write| Records {
            suite,
            read,
            write,
            key_updates_in_a_row: 0,
            answer_key_update: false,
            peer_closed: false,
        };
        (records(dir(1), dir(2)), records(dir(2), dir(1)))
    }

    /// The pair of [`Records::pair`] for the `n`th TLS 1.3 suite (mod 3).
    #[cfg(fuzzing)]
    pub(crate) fn pair_of(n: u8) -> (Records, Records) {
        let (aead, hkdf) = match n % 3 {
            0 => (&aead::AES_128_GCM, hkdf::HKDF_SHA256),
            1 => (&aead::AES_256_GCM, hkdf::HKDF_SHA384),
            _ => (&aead::CHACHA20_POLY1305, hkdf::HKDF_SHA256),
        };
        Records::pair(Suite { aead, hkdf })
    }

    /// Seals `content` with `typ` as its inner content type, as a peer
    /// would (for fuzzing: any bytes); a well-formed KeyUpdate renews the
    /// write key after it, as the peer's would.
    #[cfg(fuzzing)]
    pub(crate) fn seal_as_peer(&mut self, typ: u8, content: &[u8], out: &mut Vec<u8>) -> Result<(), Fatal> {
        self.seal_one(typ, content, out)?;
        if typ == HANDSHAKE && matches!(*content, [KEY_UPDATE, 0, 0, 1, 0 | 1]) {
            self.write.next(self.suite);
        }
        Ok(())
    }

    fn seal_one(&mut self, typ: u8, content: &[u8], out: &mut Vec<u8>) -> Result<(), Fatal> {
        let len = (content.len() + 1 + TAG) as u16;
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        let start = out.len();
        out.reserve(HEADER + usize::from(len));
        out.extend_from_slice(&header);
        out.extend_from_slice(content);
        out.push(typ);
        let nonce = self.write.nonce()?;
        let tag =
            (self.write.key.seal_in_place_separate_tag(nonce, aead::Aad::from(header), &mut out[start + HEADER..]))
                .map_err(|_| fatal(UNEXPECTED_MESSAGE, "a record too long to seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITES: [CipherSuite; 3] = [
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ];

    fn suite(s: CipherSuite) -> Suite {
        let p = rustls::crypto::ring::default_provider();
        Suite::of(*p.cipher_suites.iter().find(|c| c.suite() == s).unwrap()).unwrap()
    }

    fn pair(suite: Suite) -> (Records, Records) {
        Records::pair(suite)
    }

    /// Every record of `wire` opened: the content of each, or its error.
    fn open_all(r: &mut Records, mut wire: Vec<u8>) -> Vec<Result<Option<Vec<u8>>, Fatal>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            match r.open(&mut wire[at..]) {
                Ok(Some((n, rec))) => {
                    out.push(Ok(match rec {
                        Record::Data(d) => Some(d.to_vec()),
                        Record::CloseNotify => Some(b"close_notify".to_vec()),
                        Record::Nothing => None,
                    }));
                    at += n;
                }
                Ok(None) => panic!("an incomplete record at {at}"),
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn data_goes_through_in_records_of_at_most_16_kib() {
        for s in SUITES {
            let (mut server, mut client) = pair(suite(s));
            let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
            let mut wire = Vec::new();
            server.seal(&data, &mut wire).unwrap();
            let got = open_all(&mut client, wire.clone());
            let sizes: Vec<usize> = got.iter().map(|r| r.as_ref().unwrap().as_ref().unwrap().len()).collect();
            assert_eq!(sizes, [16_384, 16_384, 7_232], "{s:?}");
            assert_eq!(got.into_iter().flat_map(|r| r.unwrap().unwrap()).collect::<Vec<u8>>(), data);
            // Every prefix of a record is incomplete, never an error.
            for end in 0..HEADER + 16_384 + 17 {
                let mut w = wire[..end].to_vec();
                assert_eq!(pair(suite(s)).1.open(&mut w), Ok(None), "{s:?}: {end} bytes");
            }
        }
    }

    #[test]
    fn a_requested_key_update_is_answered_before_the_next_record() {
        let (mut server, mut client) = pair(suite(CipherSuite::TLS13_AES_128_GCM_SHA256));
        let mut wire = Vec::new();
        client.seal_one(HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 1], &mut wire).unwrap();
        client.write.next(client.suite);
        client.seal(b"after", &mut wire).unwrap();
        assert_eq!(open_all(&mut server, wire), [Ok(None), Ok(Some(b"after".to_vec()))]);
        let mut wire = Vec::new();
        server.answer_key_update(&mut wire).unwrap();
        server.seal(b"reply", &mut wire).unwrap();
        // The client reads our KeyUpdate, then the reply under our new key.
        assert_eq!(open_all(&mut client, wire), [Ok(None), Ok(Some(b"reply".to_vec()))]);
        assert_eq!((server.read.seq, server.write.seq), (1, 1));
    }

    #[test]
    fn the_write_key_is_renewed_before_its_limit() {
        let (mut server, mut client) = pair(suite(CipherSuite::TLS13_AES_256_GCM_SHA384));
        server.write.seq = KEY_LIFETIME;
        client.read.seq = KEY_LIFETIME;
        let mut wire = Vec::new();
        server.seal(b"y", &mut wire).unwrap();
        assert_eq!(open_all(&mut client, wire), [Ok(None), Ok(Some(b"y".to_vec()))]);
        assert_eq!(server.write.seq, 1, "the new key's first record");
    }

    /// A record sealed by the client with `inner` as its whole inner
    /// plaintext (content, type and padding), opened by the server.
    fn inner(inner: &[u8]) -> Result<Option<Vec<u8>>, Fatal> {
        let (mut server, mut client) = pair(suite(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
        let mut wire = Vec::new();
        let (typ, content) = inner.split_last().unwrap();
        client.seal_one(*typ, content, &mut wire).unwrap();
        open_all(&mut server, wire).pop().unwrap()
    }

    fn alert_of(r: Result<Option<Vec<u8>>, Fatal>) -> Option<u8> {
        r.expect_err("an error").alert
    }

    #[test]
    fn every_rule_of_the_inner_plaintext_holds() {
        assert_eq!(inner(b"hi\x17\0\0\0"), Ok(Some(b"hi".to_vec())), "padding is dropped");
        assert_eq!(inner(b"\x17"), Ok(Some(Vec::new())), "empty application data");
        assert_eq!(alert_of(inner(b"\0\0\0")), Some(UNEXPECTED_MESSAGE), "no content type");
        assert_eq!(inner(b"\x01\x00\x15"), Ok(Some(b"close_notify".to_vec())));
        assert_eq!(inner(b"\x01\x5a\x15"), Ok(None), "user_canceled");
        let peer_alert = inner(b"\x02\x28\x15").unwrap_err();
        assert_eq!(peer_alert.alert, None, "no alert answers an alert: {}", peer_alert.why);
        assert!(peer_alert.why.contains("alert 40"), "{}", peer_alert.why);
        assert_eq!(alert_of(inner(b"\x01\x00\x00\x15")), Some(DECODE_ERROR), "a 3-byte alert");
        assert_eq!(alert_of(inner(b"\x18\0\0\x01\x02\x16")), Some(ILLEGAL_PARAMETER), "request 2");
        assert_eq!(alert_of(inner(b"\x18\0\0\x01\x00\x18\0\0\x01\x00\x16")), Some(DECODE_ERROR), "two in one record");
        assert_eq!(alert_of(inner(b"\x04\0\0\x01\x00\x16")), Some(UNEXPECTED_MESSAGE), "NewSessionTicket");
        assert_eq!(alert_of(inner(b"\x16")), Some(UNEXPECTED_MESSAGE), "an empty handshake record");
        assert_eq!(alert_of(inner(b"\x01\x14")), Some(UNEXPECTED_MESSAGE), "change_cipher_spec");
        let mut big = vec![b'x'; MAX_PLAINTEXT + 1];
        big.push(APPLICATION_DATA);
        assert_eq!(alert_of(inner(&big)), Some(RECORD_OVERFLOW));
        big.remove(0);
        assert_eq!(inner(&big).unwrap().unwrap().len(), MAX_PLAINTEXT);
    }

    #[test]
    fn records_that_fail_authentication_are_refused() {
        let (mut server, mut client) = pair(suite(CipherSuite::TLS13_AES_128_GCM_SHA256));
        let mut wire = Vec::new();
        client.seal(b"hello", &mut wire).unwrap();
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 1;
            let (mut s, _) = pair(suite(CipherSuite::TLS13_AES_128_GCM_SHA256));
            let r = s.open(&mut bad);
            assert!(matches!(r, Err(Fatal { alert: Some(_), .. }) | Ok(None)), "byte {i}: {r:?}");
        }
        // Replayed: the sequence number moved on.
        assert_eq!(open_all(&mut server, wire.clone()), [Ok(Some(b"hello".to_vec()))]);
        assert_eq!(alert_of(open_all(&mut server, wire).pop().unwrap()), Some(BAD_RECORD_MAC));
    }
}
