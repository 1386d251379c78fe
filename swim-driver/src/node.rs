//! The steps of a driver's loop that do not depend on its runtime: start
//! the node, feed it (in canonical address form), drain its datagrams (in
//! the socket's address form) and events, and answer questions about it.
//!
//! A driver owns one [`DriverNode`] and, after every input, drains
//! [`DriverNode::poll_transmit`] into its socket and
//! [`DriverNode::drain_events`] into its application, then waits until the
//! earliest of its own deadlines and [`DriverNode::poll_timeout`].

use std::io;
use std::net::SocketAddr;

use std::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{OsError, OsRng, SeedableRng, TryRngCore};
use swim_core::{CommandError, Event, Input, Key, KeyError, KeyId, Node, Outcome, Rejected, State};

use crate::addr;
use crate::clock::Clock;
use crate::error::StartError;
use crate::options::Options;
use crate::record::{FileRecorder, RecordStatus};
use crate::stats::{MemberCounts, Stats};

/// The node every driver runs: members known by socket address, the
/// ChaCha20 RNG. A cryptographically secure generator because the node
/// draws from it the nonces of sealed datagrams, which must never repeat
/// under one key across a whole cluster, and the probe sequence numbers
/// that outsiders must not predict.
pub type SwimNode = Node<SocketAddr, ChaCha20Rng>;

/// The 32-byte seed of a node's RNG: drawn from the operating system, or
/// expanded deterministically from a given `u64` (tests, replays).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RngSeed {
    bytes: [u8; 32],
    given: Option<u64>,
}

impl RngSeed {
    /// 256 bits from the operating system's generator. There is no
    /// fallback: a node whose nonces could repeat must not start.
    pub fn from_os() -> Result<RngSeed, OsError> {
        let mut bytes = [0u8; 32];
        OsRng.try_fill_bytes(&mut bytes)?;
        Ok(RngSeed { bytes, given: None })
    }

    /// The seed `ChaCha20Rng::seed_from_u64(seed)` uses: the same node
    /// randomness for the same `seed`, on every machine.
    pub fn from_u64(seed: u64) -> RngSeed {
        RngSeed { bytes: ChaCha20Rng::seed_from_u64(seed).get_seed(), given: Some(seed) }
    }

    /// The 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The `u64` it was expanded from, when it was given
    /// (`Options::rng_seed`); `None` when it came from the OS.
    pub fn given(&self) -> Option<u64> {
        self.given
    }

    /// A generator starting from this seed.
    pub fn rng(&self) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.bytes)
    }
}

/// The 32 bytes in hex, and the `u64` they were expanded from if given.
impl fmt::Display for RngSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.bytes {
            write!(f, "{b:02x}")?;
        }
        match self.given {
            Some(n) => write!(f, " (from {n})"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for RngSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RngSeed({self})")
    }
}

/// One key of a node's keyring, as drivers report it: its id (never the
/// key) and whether it is the primary one, which seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalledKey {
    /// The key's id.
    pub id: KeyId,
    /// Whether it seals this node's datagrams.
    pub primary: bool,
}

/// A datagram ready to send.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The encoded datagram.
    pub payload: &'a [u8],
    /// The destination in the form the socket needs (IPv4-mapped on a
    /// dual-stack socket).
    pub to: SocketAddr,
    /// The destination as the node names it (canonical).
    pub member: SocketAddr,
}

/// A node with its clock, its socket's address, its send buffer and, when
/// recording, its recorder.
///
/// Every input goes through [`DriverNode::input`] (or a method named after
/// it), at the clock's `now`, and is one step: the driver then drains
/// [`DriverNode::poll_transmit`] until `None` and then
/// [`DriverNode::drain_events`], which closes the step, before the next
/// input. A recording replays byte for byte only if the driver keeps to
/// that order.
#[derive(Debug)]
pub struct DriverNode {
    node: SwimNode,
    clock: Clock,
    /// The socket's own address (its family decides address forms).
    bound: SocketAddr,
    out: Vec<u8>,
    rng_seed: RngSeed,
    recorder: Option<FileRecorder>,
}

impl DriverNode {
    /// Build the node for a socket bound to `bound`: its identity from
    /// `options.advertise` (see [`addr::identity`]), its RNG from
    /// `options.rng_seed` or 32 bytes of the operating system's, its
    /// keyring from `options.keys` (none: plaintext), the clock's epoch
    /// now, and the initial metadata set. Fails with
    /// [`StartError::UnspecifiedAdvertise`], [`StartError::Entropy`],
    /// [`StartError::Config`] (encryption on without keys, or keys with
    /// encryption off), [`StartError::Metadata`] or [`StartError::Record`]
    /// (the log file of `options.record` cannot be created); nothing is
    /// left running. With `options.record`, every input from the first is
    /// recorded.
    pub fn start(options: &Options, bound: SocketAddr) -> Result<Self, StartError> {
        let identity = addr::identity(options.advertise, bound).map_err(StartError::UnspecifiedAdvertise)?;
        let rng_seed = match options.rng_seed {
            Some(seed) => RngSeed::from_u64(seed),
            None => RngSeed::from_os().map_err(StartError::Entropy)?,
        };
        let clock = Clock::start();
        let config = options.config.clone();
        let start = clock.now();
        let mut node = if options.keys.is_empty() {
            Node::new(identity, config, rng_seed.rng(), start)
        } else {
            Node::with_keys(identity, config, rng_seed.rng(), start, &options.keys)
        }
        .map_err(StartError::Config)?;
        let buffer_len = options.config.max_datagram_size;
        let recorder = match &options.record {
            Some(r) => Some(
                FileRecorder::start(r, &mut node, *rng_seed.bytes(), buffer_len)
                    .map_err(|source| StartError::Record { path: r.path.clone(), source })?,
            ),
            None => None,
        };
        let mut d = DriverNode { node, clock, bound, out: vec![0u8; buffer_len], rng_seed, recorder };
        if !options.metadata.is_empty() {
            d.set_metadata(&options.metadata).map_err(StartError::Metadata)?;
        }
        Ok(d)
    }

    /// Feed one input now; see the type's docs for what must follow.
    pub fn input(&mut self, input: Input<'_, SocketAddr>) -> Outcome {
        let now = self.clock.now();
        match self.recorder.as_mut() {
            Some(r) => r.handle(&mut self.node, now, input),
            None => self.node.handle(now, input),
        }
    }

    /// Join through `seeds` (canonical addresses); none ends a join under way.
    pub fn join(&mut self, seeds: &[SocketAddr]) {
        self.input(Input::Join(seeds));
    }

    /// Leave the cluster.
    pub fn leave(&mut self) {
        self.input(Input::Leave);
    }

    /// Replace this node's metadata.
    pub fn set_metadata(&mut self, meta: &[u8]) -> Result<(), CommandError> {
        command(self.input(Input::SetMetadata(meta)))
    }

    /// Send a user broadcast to every member.
    pub fn broadcast(&mut self, payload: &[u8]) -> Result<(), CommandError> {
        command(self.input(Input::Broadcast(payload)))
    }

    /// Remove a failed member for good (canonical address).
    pub fn force_leave(&mut self, member: &SocketAddr) -> Result<(), CommandError> {
        command(self.input(Input::ForceLeave(member)))
    }

    /// Why recording stopped (its size limit, a write error), the first
    /// time it is asked after it did: drivers log it as a warning.
    pub fn take_record_stop(&mut self) -> Option<String> {
        self.recorder.as_mut().and_then(FileRecorder::take_stop)
    }

    /// How the recording stands; `None` when not recording.
    pub fn record_status(&self) -> Option<RecordStatus> {
        self.recorder.as_ref().map(FileRecorder::status)
    }

    /// The protocol state machine.
    pub fn node(&self) -> &SwimNode {
        &self.node
    }

    /// The clock the node's time comes from.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The current time as the node sees it.
    pub fn now(&self) -> swim_core::Instant {
        self.clock.now()
    }

    /// The address this node is known by.
    pub fn identity(&self) -> SocketAddr {
        *self.node.local_addr()
    }

    /// The socket's own address.
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }

    /// The seed the node's RNG was built from: with it, a run can be
    /// replayed. Whoever knows it can predict the node's probe sequence
    /// numbers and nonces (not its keys): drivers log a seed drawn from the
    /// OS at debug level only.
    pub fn rng_seed(&self) -> RngSeed {
        self.rng_seed
    }

    /// Install `key` now (see `swim_core::Node::install_key`).
    pub fn install_key(&mut self, key: &Key) -> Result<KeyId, KeyError> {
        match self.input(Input::InstallKey(key)) {
            Outcome::Installed(id) => Ok(id),
            other => Err(key_error(other)),
        }
    }

    /// Seal with the installed key `id` from now on.
    pub fn use_key(&mut self, id: KeyId) -> Result<(), KeyError> {
        match self.input(Input::UseKey(id)) {
            Outcome::Done => Ok(()),
            other => Err(key_error(other)),
        }
    }

    /// Remove the installed key `id` (not the primary one).
    pub fn remove_key(&mut self, id: KeyId) -> Result<(), KeyError> {
        match self.input(Input::RemoveKey(id)) {
            Outcome::Done => Ok(()),
            other => Err(key_error(other)),
        }
    }

    /// The keyring: each key's id and whether it is the primary one (empty
    /// for a node without keys).
    pub fn keys(&self) -> Vec<InstalledKey> {
        self.node.keys().map(|(id, primary)| InstalledKey { id, primary }).collect()
    }

    /// Feed a datagram received from `from` (any address form). Returns
    /// the sender in canonical form, and the node's verdict.
    pub fn handle_datagram(&mut self, from: SocketAddr, datagram: &[u8]) -> (SocketAddr, Result<(), Rejected>) {
        let from = addr::canonical(from);
        match self.input(Input::Datagram { from: &from, bytes: datagram }) {
            Outcome::Rejected(why) => (from, Err(why)),
            _ => (from, Ok(())),
        }
    }

    /// Tell the node its deadline may have passed (spurious calls are
    /// harmless).
    pub fn handle_timeout(&mut self) {
        self.input(Input::Timeout);
    }

    /// Whether the node's deadline has passed.
    pub fn timeout_due(&self) -> bool {
        self.node.poll_timeout().is_some_and(|t| t <= self.clock.now())
    }

    /// The node's next deadline.
    pub fn poll_timeout(&self) -> Option<swim_core::Instant> {
        self.node.poll_timeout()
    }

    /// The next datagram to send, encoded into the node's send buffer.
    /// Call until `None` after every input.
    pub fn poll_transmit(&mut self) -> Option<Outgoing<'_>> {
        let tx = self.node.poll_transmit(&mut self.out)?;
        Some(Outgoing { payload: &self.out[..tx.len], to: addr::for_socket(self.bound, tx.to), member: tx.to })
    }

    /// Hand every event the node has ready to `publish`, then close the
    /// step (drain [`DriverNode::poll_transmit`] first).
    pub fn drain_events(&mut self, mut publish: impl FnMut(Event<SocketAddr>)) {
        while let Some(event) = self.node.poll_event() {
            publish(event);
        }
        if let Some(r) = self.recorder.as_mut() {
            r.end_step(&mut self.node);
        }
    }

    /// Every member this node knows, itself included (its address is
    /// [`DriverNode::identity`]).
    pub fn members(&self) -> Vec<crate::Member> {
        self.node
            .members()
            .map(|m| swim_core::Member {
                addr: *m.addr,
                state: m.state,
                incarnation: m.incarnation,
                meta: swim_core::Bytes::copy_from_slice(m.meta),
            })
            .collect()
    }

    /// This node as the others see it.
    pub fn local_member(&self) -> crate::Member {
        self.node.local_member()
    }

    /// Everything the node counts, with the driver's counters `driver`.
    pub fn snapshot<D>(&self, driver: D) -> Stats<D> {
        Stats {
            core: self.node.stats().clone(),
            driver,
            members: MemberCounts {
                alive: self.node.count(State::Alive),
                suspect: self.node.count(State::Suspect),
                failed: self.node.count(State::Dead),
                left: self.node.count(State::Left),
            },
            local_health: self.node.local_health(),
            incarnation: self.node.incarnation(),
        }
    }
}

/// A command's outcome as its result.
fn command(outcome: Outcome) -> Result<(), CommandError> {
    match outcome {
        Outcome::Command(e) => Err(e),
        _ => Ok(()),
    }
}

/// A key command's refusal (every other outcome of one is a success).
fn key_error(outcome: Outcome) -> KeyError {
    match outcome {
        Outcome::Key(e) => e,
        _ => KeyError::NoKeyring,
    }
}

/// The log ends with the node: its end record written, the file synced.
impl Drop for DriverNode {
    fn drop(&mut self) {
        if let Some(r) = self.recorder.as_mut() {
            r.finish(&mut self.node);
        }
    }
}

/// Whether a failed send is the expected kind a node survives quietly: the
/// peer is unreachable or refused. Drivers log these at debug level,
/// others as warnings.
pub fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable
    )
}

/// Whether a failed receive is the expected kind a node survives quietly:
/// an ICMP error for an earlier send, reported on the socket.
pub fn is_unreachable_on_receive(e: &io::Error) -> bool {
    is_unreachable(e) || e.kind() == io::ErrorKind::ConnectionReset
}

#[cfg(test)]
mod tests {
    use swim_core::{Config, Encryption, Key};

    use super::*;

    fn options(rng_seed: u64) -> Options {
        let mut o = Options::new("127.0.0.1:0".parse().unwrap(), Config::local());
        o.rng_seed = Some(rng_seed);
        o
    }

    #[test]
    fn a_node_starts_as_its_advertised_address_with_its_metadata() {
        let mut o = options(7);
        o.advertise = Some("[::ffff:10.0.0.1]:0".parse().unwrap());
        o.metadata = b"m".to_vec();
        let d = DriverNode::start(&o, "[::]:4000".parse().unwrap()).unwrap();
        assert_eq!(d.identity(), "10.0.0.1:4000".parse().unwrap());
        assert_eq!(d.rng_seed(), RngSeed::from_u64(7));
        assert_eq!(&d.local_member().meta[..], b"m");
        assert_eq!(d.members().len(), 1);
        let stats = d.snapshot(());
        assert_eq!((stats.members.alive, stats.members.get(State::Dead)), (1, 0));
    }

    #[test]
    fn a_given_seed_expands_the_same_way_every_time_and_os_seeds_differ() {
        let seed = RngSeed::from_u64(7);
        assert_eq!(seed, RngSeed::from_u64(7));
        assert_ne!(seed.bytes(), RngSeed::from_u64(8).bytes());
        assert_eq!(seed.bytes(), &ChaCha20Rng::seed_from_u64(7).get_seed());
        assert_eq!(seed.given(), Some(7));
        let shown = seed.to_string();
        assert!(shown.ends_with(" (from 7)") && shown[..64].chars().all(|c| c.is_ascii_hexdigit()), "{shown}");
        let (a, b) = (RngSeed::from_os().unwrap(), RngSeed::from_os().unwrap());
        assert_ne!(a, b);
        assert_eq!((a.given(), a.to_string().len()), (None, 64));
        // Two nodes from one given seed draw alike.
        use rand_core::RngCore;
        assert_eq!(seed.rng().next_u64(), seed.rng().next_u64());
    }

    #[test]
    fn a_node_with_keys_seals_and_reports_key_ids_only() {
        let (k1, k2) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
        let mut o = options(5);
        o.config.encryption = Encryption::Require;
        o.keys = vec![k1.clone(), k2.clone()];
        let mut d = DriverNode::start(&o, "127.0.0.1:4000".parse().unwrap()).unwrap();
        assert_eq!(
            d.keys(),
            [InstalledKey { id: k1.id(), primary: true }, InstalledKey { id: k2.id(), primary: false }]
        );
        d.join(&["127.0.0.1:4001".parse().unwrap()]);
        let tx = d.poll_transmit().expect("a join datagram");
        assert_eq!(tx.payload[0], swim_core::seal::SEALED_VERSION);
        assert!(!format!("{o:?}").contains("1, 1, 1"), "options show key bytes: {o:?}");
    }

    #[test]
    fn encryption_and_keys_must_go_together() {
        let bound = "127.0.0.1:4000".parse().unwrap();
        let mut o = options(1);
        o.config.encryption = Encryption::Seal;
        let e = DriverNode::start(&o, bound).unwrap_err();
        assert!(matches!(e, StartError::Config(ref c) if c.field == "encryption"), "{e}");
        let mut o = options(1);
        o.keys = vec![Key::from_bytes([1; 32])];
        let e = DriverNode::start(&o, bound).unwrap_err();
        assert!(matches!(e, StartError::Config(ref c) if c.field == "encryption"), "{e}");
    }

    #[test]
    fn bad_starts_are_refused() {
        let bound = "0.0.0.0:4000".parse().unwrap();
        assert!(matches!(DriverNode::start(&options(1), bound), Err(StartError::UnspecifiedAdvertise(_))));
        let mut o = options(1);
        o.metadata = vec![0; o.config.max_metadata_len + 1];
        assert!(matches!(DriverNode::start(&o, "127.0.0.1:1".parse().unwrap()), Err(StartError::Metadata(_))));
    }

    #[test]
    fn joining_sends_to_the_seed_in_the_sockets_address_form() {
        let mut o = options(3);
        o.advertise = Some("10.0.0.1:0".parse().unwrap());
        let mut d = DriverNode::start(&o, "[::]:4000".parse().unwrap()).unwrap();
        let seed: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        d.join(&[seed]);
        let tx = d.poll_transmit().expect("a join datagram");
        assert_eq!(tx.member, seed);
        assert_eq!(tx.to, "[::ffff:10.0.0.2]:4000".parse().unwrap());
        assert!(!tx.payload.is_empty());
        let mut events = 0;
        d.drain_events(|_| events += 1);
        assert!(d.poll_timeout().is_some());
    }

    #[test]
    fn unreachable_peers_are_told_apart_from_other_socket_errors() {
        assert!(is_unreachable(&io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert!(!is_unreachable(&io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(!is_unreachable(&io::Error::from(io::ErrorKind::ConnectionReset)));
        assert!(is_unreachable_on_receive(&io::Error::from(io::ErrorKind::ConnectionReset)));
    }
}
