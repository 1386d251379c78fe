//! Sealed datagrams: XChaCha20-Poly1305 over every message, under a keyring
//! whose primary key seals and whose every key opens.
//!
//! A sealed datagram (wire version 2, `WIRE.md`) carries in the clear the
//! cluster label, the id of the key that sealed it, a random id of the
//! sending process and its datagram counter (for replay protection), and a
//! 24-byte random nonce; all of that header is associated data, so none of
//! it can be changed in flight, and so is the receiver's address (every
//! datagram but a join request is bound to its receiver): a datagram opens
//! only where it was sent. The messages
//! inside are the same as in a plaintext datagram, without the checksum (the
//! tag authenticates them).
//!
//! Nonces are 24 bytes drawn from the node's RNG, which must be a
//! cryptographically secure generator to hold keys at all
//! ([`crate::Node::with_keys`] asks for `R: CryptoRng`): with 192 random bits
//! a nonce never repeats under one key across every node of a cluster, so no
//! coordination is needed.
//!
//! Key ids are the first four bytes of SHA-256 of the key: short, safe to log
//! (they reveal nothing usable about a 256-bit key), and the same on every
//! node without any registry.

use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::wire::{NoRoom, Writer};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// The wire version byte of a sealed datagram (plaintext is 1).
pub const SEALED_VERSION: u8 = 2;
/// Most keys a keyring holds: a rotation needs two, a botched one three.
pub const MAX_KEYS: usize = 8;
/// Header bytes after the label: flags, key id, sender, counter, nonce.
pub const SEALED_HEADER_AFTER_LABEL: usize = 1 + 4 + 8 + 8 + NONCE_LEN;
/// Bytes a sealed datagram takes beyond a plaintext one with the same
/// messages and label: the header fields and the tag, less the checksum.
pub const SEAL_OVERHEAD: usize = SEALED_HEADER_AFTER_LABEL + TAG_LEN - crate::wire::CHECKSUM_LEN;

/// How a node treats sealing: the three steps of a migration without
/// downtime, and plaintext. Change it across a cluster one step at a time,
/// each step a rolling restart: `Off` → `Accept` → `Seal` → `Require`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Encryption {
    /// Plaintext only: no keys; sealed datagrams are refused.
    #[default]
    Off = 0,
    /// Send plaintext, accept both (step 1: every node learns to open).
    Accept = 1,
    /// Seal everything, accept both (step 2: nodes still at step 1 are
    /// heard, and they can open what this node sends).
    Seal = 2,
    /// Seal everything, refuse plaintext (step 3, the goal).
    Require = 3,
}

impl Encryption {
    /// Whether datagrams are sent sealed.
    pub fn seals(self) -> bool {
        matches!(self, Encryption::Seal | Encryption::Require)
    }

    /// Whether plaintext datagrams are accepted.
    pub fn accepts_plaintext(self) -> bool {
        self != Encryption::Require
    }

    /// The lower-case name used in config files (`off`, `accept`, `seal`, `require`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Off => "off",
            Encryption::Accept => "accept",
            Encryption::Seal => "seal",
            Encryption::Require => "require",
        }
    }
}

/// A 256-bit cluster key. Its `Debug` shows only its id.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Key(bytes)
    }

    /// A new random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Key(bytes)
    }

    /// The key's bytes (to print or store it; never log them).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Decrypt a parsed sealed datagram into `out` (at least as long as
    /// its ciphertext), whatever key id it names (tests, tools, fuzzers;
    /// a node opens with its keyring). `receiver`: the receiving address's
    /// wire form, which a bound datagram was sealed for.
    pub fn open(&self, sealed: &SealedHeader<'_>, receiver: &[u8], out: &mut [u8]) -> Result<(), SealError> {
        open_with(&XChaCha20Poly1305::new(&self.0.into()), sealed, receiver, out)
    }

    /// The key's id: the first four bytes of SHA-256 of the key.
    pub fn id(&self) -> KeyId {
        let digest = Sha256::digest(self.0);
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id())
    }
}

/// A key's id, carried in every sealed datagram's header. Displayed as
/// eight hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct KeyId(pub [u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a key command was refused. The keyring is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// No installed key has this id.
    UnknownKey(KeyId),
    /// The primary key seals this node's datagrams: make another primary
    /// first ([`crate::Node::use_key`]).
    PrimaryKey(KeyId),
    /// The keyring already holds [`MAX_KEYS`] keys.
    KeyringFull,
    /// The node was built without keys ([`crate::Node::with_keys`] builds
    /// one with them).
    NoKeyring,
    /// A replaying node holds key ids only: it installs keys by id.
    ReplayKeyring,
    /// Only a replaying node installs a key by its id alone.
    NotReplaying,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::UnknownKey(id) => write!(f, "no installed key has id {id}"),
            KeyError::PrimaryKey(id) => {
                write!(f, "key {id} is the primary key: make another key primary before removing it")
            }
            KeyError::KeyringFull => write!(f, "the keyring already holds {MAX_KEYS} keys"),
            KeyError::NoKeyring => f.write_str("this node was started without encryption keys"),
            KeyError::ReplayKeyring => f.write_str("a replaying node holds key ids only, not keys"),
            KeyError::NotReplaying => f.write_str("only a replaying node installs a key by its id"),
        }
    }
}

impl core::error::Error for KeyError {}

/// Why a datagram was refused by the sealing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// A plaintext datagram, and this node requires sealing.
    Plaintext,
    /// A sealed datagram, and this node has no keys.
    NoKeys,
    /// Sealed under a key this node does not hold.
    UnknownKey(KeyId),
    /// The tag did not verify: another key, or bytes changed in flight.
    BadTag,
    /// Already accepted once from this sender (or too old to tell).
    Replayed,
    /// Sealed for no receiver in particular, and not a join request (the
    /// only datagram sent that way).
    Unbound,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Plaintext => f.write_str("plaintext datagram, and sealing is required"),
            SealError::NoKeys => f.write_str("sealed datagram, and this node has no keys"),
            SealError::UnknownKey(id) => write!(f, "sealed under unknown key {id}"),
            SealError::BadTag => f.write_str("authentication tag does not verify"),
            SealError::Replayed => f.write_str("replayed datagram"),
            SealError::Unbound => f.write_str("sealed for no receiver, and not a join request"),
        }
    }
}

/// Flag bit of a sealed header: the receiver's address is part of the
/// associated data (see [`SealedHeader::bound`]).
pub const FLAG_BOUND: u8 = 0x01;

/// Longest address encoding a bound datagram can name (the associated data
/// is assembled on the stack).
pub const MAX_BOUND_ADDRESS_LEN: usize = 80;

/// The header fields of a sealed datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHeader<'a> {
    /// Sealed for one receiver: its address (wire form) follows the header
    /// in the associated data, so the datagram opens only there, and a
    /// capture replayed to another member fails its tag. Only a join
    /// request to a seed is unbound (a seed may be reached by an address
    /// that is not its identity), and an unbound datagram that is anything
    /// else is refused.
    pub bound: bool,
    /// The key that sealed it.
    pub key: KeyId,
    /// The sending process's random id.
    pub sender: u64,
    /// The sender's datagram counter.
    pub counter: u64,
    /// Header bytes: the associated data.
    pub aad: &'a [u8],
    /// The nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted messages.
    pub ciphertext: &'a [u8],
    /// The tag.
    pub tag: [u8; TAG_LEN],
}

/// Split a sealed datagram (its version byte already checked) into its
/// parts, checking the label first; `None` when too short.
pub fn parse_sealed<'a>(datagram: &'a [u8], label: &[u8]) -> Result<SealedHeader<'a>, crate::wire::FrameError> {
    use crate::wire::FrameError;
    let label_len = usize::from(*datagram.get(1).ok_or(FrameError::TooShort)?);
    let their_label = datagram.get(2..2 + label_len).ok_or(FrameError::TooShort)?;
    if their_label != label {
        return Err(FrameError::WrongCluster);
    }
    let header_len = 2 + label_len + SEALED_HEADER_AFTER_LABEL;
    let body_end = datagram.len().checked_sub(TAG_LEN).ok_or(FrameError::TooShort)?;
    if body_end < header_len {
        return Err(FrameError::TooShort);
    }
    let (aad, rest) = datagram.split_at(header_len);
    let (ciphertext, tag) = rest.split_at(body_end - header_len);
    let (&flags, fields) = aad[2 + label_len..].split_first().ok_or(FrameError::TooShort)?;
    if flags & !FLAG_BOUND != 0 {
        // Flags a later version defines.
        return Err(FrameError::UnsupportedVersion(SEALED_VERSION));
    }
    let key = KeyId(fields[..4].try_into().map_err(|_| FrameError::TooShort)?);
    let sender = u64::from_be_bytes(fields[4..12].try_into().map_err(|_| FrameError::TooShort)?);
    let counter = u64::from_be_bytes(fields[12..20].try_into().map_err(|_| FrameError::TooShort)?);
    let nonce = fields[20..20 + NONCE_LEN].try_into().map_err(|_| FrameError::TooShort)?;
    let tag = tag.try_into().map_err(|_| FrameError::TooShort)?;
    Ok(SealedHeader { bound: flags & FLAG_BOUND != 0, key, sender, counter, aad, nonce, ciphertext, tag })
}

/// One installed key, ready to seal and open; in a replay, only its id.
struct Installed {
    id: KeyId,
    cipher: Option<XChaCha20Poly1305>,
}

/// The keys a node seals with (the primary) and opens with (all).
pub(crate) struct Keyring {
    keys: Vec<Installed>,
    primary: KeyId,
    /// Ids only ([`Keyring::replaying`]).
    replay: bool,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary)
            .field("keys", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring of `keys`, the first primary; `None` if there are none.
    pub fn new(keys: &[Key]) -> Result<Self, KeyError> {
        let first = keys.first().ok_or(KeyError::NoKeyring)?;
        let mut ring = Keyring { keys: Vec::with_capacity(MAX_KEYS), primary: first.id(), replay: false };
        for key in keys {
            ring.install(key)?;
        }
        Ok(ring)
    }

    pub fn install(&mut self, key: &Key) -> Result<KeyId, KeyError> {
        let id = key.id();
        if self.keys.iter().any(|k| k.id == id) {
            return Ok(id);
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::KeyringFull);
        }
        if self.replay {
            return Err(KeyError::ReplayKeyring);
        }
        let cipher = Some(XChaCha20Poly1305::new(&key.0.into()));
        self.keys.push(Installed { id, cipher });
        Ok(id)
    }

    /// A keyring of ids only, for a replay: it tracks what was installed,
    /// used and removed, and "seals" nothing (see [`finish`]).
    pub fn replaying(ids: &[KeyId]) -> Result<Self, KeyError> {
        let first = *ids.first().ok_or(KeyError::NoKeyring)?;
        let mut ring = Keyring { keys: Vec::with_capacity(MAX_KEYS), primary: first, replay: true };
        for &id in ids {
            ring.install_id(id)?;
        }
        Ok(ring)
    }

    /// Install a key by id: in a replaying keyring only.
    pub fn install_id(&mut self, id: KeyId) -> Result<KeyId, KeyError> {
        if !self.replay {
            return Err(KeyError::NotReplaying);
        }
        if self.keys.iter().any(|k| k.id == id) {
            return Ok(id);
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::KeyringFull);
        }
        self.keys.push(Installed { id, cipher: None });
        Ok(id)
    }

    pub fn use_key(&mut self, id: KeyId) -> Result<(), KeyError> {
        if !self.keys.iter().any(|k| k.id == id) {
            return Err(KeyError::UnknownKey(id));
        }
        self.primary = id;
        Ok(())
    }

    pub fn remove(&mut self, id: KeyId) -> Result<(), KeyError> {
        if id == self.primary {
            return Err(KeyError::PrimaryKey(id));
        }
        let i = self.keys.iter().position(|k| k.id == id).ok_or(KeyError::UnknownKey(id))?;
        self.keys.remove(i);
        Ok(())
    }

    pub fn primary(&self) -> KeyId {
        self.primary
    }

    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub fn holds(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Encrypt `body` in place under the primary key, with the header
    /// (and `receiver`, for a bound datagram) as associated data; the tag
    /// to append. A replaying keyring has no key: it zeroes the body and the
    /// tag, so a replay's datagram has the length of the real one and none
    /// of its contents (it is digested before, and never sent).
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        header: &[u8],
        receiver: Option<&[u8]>,
        body: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        let key = self.keys.iter().find(|k| k.id == self.primary)?;
        let Some(cipher) = &key.cipher else {
            body.fill(0);
            return Some([0; TAG_LEN]);
        };
        let tag = with_aad(header, receiver, |aad| cipher.encrypt_inout_detached(&(*nonce).into(), aad, body.into()))?;
        Some(tag.ok()?.into())
    }

    /// Decrypt a parsed datagram into `out` (as long as its ciphertext);
    /// `receiver` as for [`Key::open`].
    pub fn open(&self, sealed: &SealedHeader<'_>, receiver: &[u8], out: &mut [u8]) -> Result<(), SealError> {
        let key = self.keys.iter().find(|k| k.id == sealed.key).ok_or(SealError::UnknownKey(sealed.key))?;
        let cipher = key.cipher.as_ref().ok_or(SealError::BadTag)?;
        open_with(cipher, sealed, receiver, out)
    }
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    sealed: &SealedHeader<'_>,
    receiver: &[u8],
    out: &mut [u8],
) -> Result<(), SealError> {
    let out = out.get_mut(..sealed.ciphertext.len()).ok_or(SealError::BadTag)?;
    let buf = chacha20poly1305::aead::inout::InOutBuf::new(sealed.ciphertext, out).map_err(|_| SealError::BadTag)?;
    let receiver = sealed.bound.then_some(receiver);
    with_aad(sealed.aad, receiver, |aad| {
        cipher.decrypt_inout_detached(&sealed.nonce.into(), aad, buf, &sealed.tag.into()).map_err(|_| SealError::BadTag)
    })
    .unwrap_or(Err(SealError::BadTag))
}

/// Run `f` on the associated data: the header, then the receiver's address
/// for a bound datagram, assembled on the stack; `None` when too long.
fn with_aad<T>(header: &[u8], receiver: Option<&[u8]>, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    let Some(receiver) = receiver else {
        return Some(f(header));
    };
    let mut aad = [0u8; MAX_HEADER_LEN + MAX_BOUND_ADDRESS_LEN];
    let (h, rest) = aad.split_at_mut(header.len().min(MAX_HEADER_LEN));
    if h.len() != header.len() || receiver.len() > rest.len() {
        return None;
    }
    h.copy_from_slice(header);
    rest[..receiver.len()].copy_from_slice(receiver);
    Some(f(&aad[..header.len() + receiver.len()]))
}

/// The longest sealed header (with the longest label).
const MAX_HEADER_LEN: usize = 2 + crate::wire::MAX_LABEL_LEN + SEALED_HEADER_AFTER_LABEL;

/// Seal already-encoded `messages` into a whole datagram in `buf` (tests,
/// tools and fuzzers; the node seals in place at poll time). Returns the
/// datagram's length, or `None` when `buf` is too small.
/// `receiver`: the receiving address's wire form, to seal the datagram for
/// it alone (bound); `None` for an unbound one (a join request to a seed).
#[allow(clippy::too_many_arguments)]
pub fn seal_datagram(
    buf: &mut [u8],
    label: &[u8],
    key: &Key,
    receiver: Option<&[u8]>,
    sender: u64,
    counter: u64,
    nonce: &[u8; NONCE_LEN],
    messages: &[u8],
) -> Option<usize> {
    let mut w = Writer::new(buf);
    write_header(&mut w, label, receiver.is_some(), key.id(), sender, counter, nonce).ok()?;
    w.put(messages).ok()?;
    let len = w.len();
    let ring = Keyring::new(core::slice::from_ref(key)).ok()?;
    finish(&ring, buf, sealed_header_len(label), len, receiver)
}

/// Write a sealed header (version, label, flags, key id, sender, counter,
/// nonce).
pub(crate) fn write_header(
    w: &mut Writer<'_>,
    label: &[u8],
    bound: bool,
    key: KeyId,
    sender: u64,
    counter: u64,
    nonce: &[u8; NONCE_LEN],
) -> Result<(), NoRoom> {
    w.u8(SEALED_VERSION)?;
    w.u8(u8::try_from(label.len()).map_err(|_| NoRoom)?)?;
    w.put(label)?;
    w.u8(if bound { FLAG_BOUND } else { 0 })?;
    w.put(&key.0)?;
    w.put(&sender.to_be_bytes())?;
    w.put(&counter.to_be_bytes())?;
    w.put(nonce)
}

/// Header bytes of a sealed datagram with this label.
pub fn sealed_header_len(label: &[u8]) -> usize {
    2 + label.len() + SEALED_HEADER_AFTER_LABEL
}

/// Encrypt `buf[header_len..len]` in place under the primary key, with
/// `buf[..header_len]` (ending in the nonce) and, for a bound datagram,
/// `receiver` as associated data, and append the tag; returns the
/// datagram's length.
pub(crate) fn finish(
    keys: &Keyring,
    buf: &mut [u8],
    header_len: usize,
    len: usize,
    receiver: Option<&[u8]>,
) -> Option<usize> {
    let end = len.checked_add(TAG_LEN)?;
    let datagram = buf.get_mut(..end)?;
    let (head, rest) = datagram.split_at_mut(header_len.min(len));
    let nonce: [u8; NONCE_LEN] = head.get(head.len().checked_sub(NONCE_LEN)?..)?.try_into().ok()?;
    let (body, tag_out) = rest.split_at_mut(len - head.len());
    let tag = keys.seal(&nonce, head, receiver, body)?;
    tag_out.copy_from_slice(&tag);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_the_head_of_the_keys_sha256() {
        // SHA-256 of 32 zero bytes is 66687aad f862bd77 ...
        assert_eq!(Key::from_bytes([0; 32]).id().to_string(), "66687aad");
        assert_eq!(format!("{:?}", Key::from_bytes([0; 32])), "Key(66687aad)");
    }

    #[test]
    fn a_sealed_body_opens_under_its_key_only() {
        let a = Key::from_bytes([1; 32]);
        let b = Key::from_bytes([2; 32]);
        let ring = Keyring::new(core::slice::from_ref(&a)).unwrap();
        let mut buf = [0u8; 128];
        let nonce = [7u8; NONCE_LEN];
        let mut w = Writer::new(&mut buf);
        write_header(&mut w, b"lbl", true, a.id(), 5, 9, &nonce).unwrap();
        w.put(b"hello").unwrap();
        let len = w.len();
        let h = sealed_header_len(b"lbl");
        let end = finish(&ring, &mut buf, h, len, Some(b"me")).unwrap();
        assert_eq!(end, h + 5 + TAG_LEN);
        let datagram = &buf[..end];
        let sealed = parse_sealed(datagram, b"lbl").unwrap();
        assert_eq!((sealed.sender, sealed.counter, sealed.key), (5, 9, a.id()));
        let mut out = [0u8; 5];
        ring.open(&sealed, b"me", &mut out).unwrap();
        assert_eq!(&out, b"hello");
        // Sealed for "me": anyone else's address fails the tag.
        assert_eq!(ring.open(&sealed, b"you", &mut out), Err(SealError::BadTag));
        let other = Keyring::new(core::slice::from_ref(&b)).unwrap();
        assert_eq!(other.open(&sealed, b"me", &mut out), Err(SealError::UnknownKey(a.id())));
        // The same id with the wrong key bytes fails the tag.
        let mut forged = sealed;
        forged.key = b.id();
        assert_eq!(other.open(&forged, b"me", &mut out), Err(SealError::BadTag));
        assert_eq!(parse_sealed(datagram, b"other").unwrap_err(), crate::wire::FrameError::WrongCluster);
    }

    #[test]
    fn the_keyring_refuses_removing_its_primary_and_unknown_keys() {
        let a = Key::from_bytes([1; 32]);
        let b = Key::from_bytes([2; 32]);
        let mut ring = Keyring::new(core::slice::from_ref(&a)).unwrap();
        assert_eq!(ring.remove(a.id()), Err(KeyError::PrimaryKey(a.id())));
        assert_eq!(ring.use_key(b.id()), Err(KeyError::UnknownKey(b.id())));
        ring.install(&b).unwrap();
        ring.use_key(b.id()).unwrap();
        ring.remove(a.id()).unwrap();
        assert_eq!(ring.ids().collect::<Vec<_>>(), [b.id()]);
        for i in 0..MAX_KEYS as u8 - 1 {
            ring.install(&Key::from_bytes([10 + i; 32])).unwrap();
        }
        assert_eq!(ring.install(&Key::from_bytes([99; 32])), Err(KeyError::KeyringFull));
    }
}
