//! foca 2 on the harness: one `Foca` per node, with its LAN preset, the
//! postcard codec it ships, and an identity that renews itself after a
//! false Down (a socket address and a bump counter, as foca's docs advise).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use foca::{Config, Foca, Identity, Notification, PostcardCodec, Runtime, Timer};
use rand_core::RngCore;
use swim_sim::seed::{self, SimRng, Stream};

use crate::harness::{addr, id_of, Belief, Nanos, Out, Protocol, StreamEvent};

/// A foca identity: where the node is, and which life of it this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Id {
    addr: SocketAddr,
    bump: u16,
}

impl Identity for Id {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Id { addr: self.addr, bump: self.bump.wrapping_add(1) })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // The later life wins; the counter wraps, so compare by distance.
        let ahead = self.bump.wrapping_sub(adversary.bump);
        ahead != 0 && ahead < u16::MAX / 2
    }
}

/// swim-sim's RNG behind the rand 0.10 trait foca draws from.
pub struct FocaRng(SimRng);

impl rand_core_010::TryRng for FocaRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

type Node = Foca<Id, PostcardCodec, FocaRng, foca::NoCustomBroadcast>;

/// First wait before a join announce is sent again, doubling up to
/// [`ANNOUNCE_RETRY_MAX`]: the same schedule as swim-core's join retries.
const ANNOUNCE_RETRY: Nanos = 1_000_000_000;
/// Longest wait between join announces.
const ANNOUNCE_RETRY_MAX: Nanos = 30_000_000_000;

/// What a timer carries: one of foca's, or the driver's own retry of the
/// join announce (foca sends one `Announce` per call and leaves retries to
/// the driver: a lost announce or a lost answer would leave the node alone).
#[derive(Debug)]
pub enum FocaTimer {
    /// A timer foca asked for.
    Foca(Timer<Id>),
    /// Announce to the seed again unless foca reported `Active`; the wait
    /// that led here.
    Announce { seed: u32, waited: Nanos },
}

/// foca's Runtime for one call: sends, timers and notifications go
/// straight into the harness's output.
struct Rt<'a> {
    me: u32,
    now: Nanos,
    out: &'a mut Out<FocaTimer>,
    suspected: &'a mut BTreeSet<(u32, u32, u16, u16)>,
    active: &'a mut bool,
}

impl Runtime<Id> for Rt<'_> {
    fn notify(&mut self, notification: Notification<'_, Id>) {
        let (who, belief) = match notification {
            Notification::MemberUp(id) => (id, Belief::Up),
            Notification::MemberDown(id) => (id, Belief::Down),
            Notification::Active => {
                *self.active = true;
                return;
            }
            _ => return,
        };
        if let Some(subject) = id_of(&who.addr) {
            self.out.beliefs.push((subject, belief));
        }
    }

    fn send_to(&mut self, to: Id, data: &[u8]) {
        if let Some(to) = id_of(&to.addr) {
            self.out.datagram(to, data);
        }
    }

    fn submit_after(&mut self, event: Timer<Id>, after: Duration) {
        // foca raises no notification when it suspects a member: the
        // suspicion timer it arms when its own probe failed is the only
        // sign, once per member and incarnation.
        if let Timer::ChangeSuspectToDown { member_id, incarnation, .. } = &event {
            if let Some(subject) = id_of(&member_id.addr) {
                let key = (self.me, subject, member_id.bump, *incarnation);
                if self.suspected.insert(key) {
                    self.out.beliefs.push((subject, Belief::Suspect));
                }
            }
        }
        let at = self.now.saturating_add(after.as_nanos() as Nanos);
        self.out.timers.push((at, FocaTimer::Foca(event)));
    }
}

/// Every foca node of the run.
pub struct FocaCluster {
    config: Config,
    seed: u64,
    nodes: Vec<Option<Node>>,
    /// Whether each node's foca has reported `Active` (it joined).
    active: Vec<bool>,
    suspected: BTreeSet<(u32, u32, u16, u16)>,
}

impl FocaCluster {
    /// `n` nodes with foca's LAN preset for a cluster of `n`.
    pub fn new(n: u32, seed: u64) -> Self {
        let config = Config::new_lan(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        FocaCluster {
            config,
            seed,
            nodes: (0..n).map(|_| None).collect(),
            active: vec![false; n as usize],
            suspected: BTreeSet::new(),
        }
    }

    fn with<F>(&mut self, id: u32, now: Nanos, out: &mut Out<FocaTimer>, f: F)
    where
        F: FnOnce(&mut Node, Rt<'_>),
    {
        let Some(node) = self.nodes[id as usize].as_mut() else { return };
        let active = &mut self.active[id as usize];
        let rt = Rt { me: id, now, out, suspected: &mut self.suspected, active };
        f(node, rt);
    }

    /// Announce to `seed`, and try again after `wait` unless the node has
    /// joined by then.
    fn announce(&mut self, id: u32, seed: u32, now: Nanos, wait: Nanos, out: &mut Out<FocaTimer>) {
        let to = Id { addr: addr(seed), bump: 0 };
        // An error leaves foca's state as it was; the retry tries again.
        self.with(id, now, out, |node, rt| {
            let _ = node.announce(to, rt);
        });
        out.timers.push((now + wait, FocaTimer::Announce { seed, waited: wait }));
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Protocol for FocaCluster {
    type Timer = FocaTimer;

    fn settings(&self) -> serde_json::Value {
        let c = &self.config;
        let periodic = |p: &Option<foca::PeriodicParams>| {
            p.as_ref().map(|p| format!("{} members every {} ms", p.num_members, ms(p.frequency)))
        };
        serde_json::json!({
            "preset": "Config::new_lan(N)",
            "identity": "SocketAddr and a u16 bump, postcard-encoded; renews itself after a false Down",
            "codec": "PostcardCodec",
            "probe_period_ms": ms(c.probe_period),
            "probe_rtt_ms": ms(c.probe_rtt),
            "num_indirect_probes": c.num_indirect_probes.get(),
            "suspicion": format!(
                "fixed {} ms (suspect_to_down_after; foca has no Lifeguard, this is memberlist's minimum)",
                ms(c.suspect_to_down_after)
            ),
            "max_transmissions": c.max_transmissions.get(),
            "max_packet_size": c.max_packet_size.get(),
            "periodic_gossip": periodic(&c.periodic_gossip),
            "periodic_announce": periodic(&c.periodic_announce),
            "periodic_announce_to_down_members": periodic(&c.periodic_announce_to_down_members),
            "notify_down_members": c.notify_down_members,
            "join": "announce to the seed, again after 1 s, 2 s, 4 s ... (at most 30 s) until foca reports Active",
            "suspicions_counted": "only those a node raises itself (its probe failed): foca reports no others",
        })
    }

    fn start(&mut self, id: u32, _: Nanos, _: &mut Out<FocaTimer>) {
        let rng = FocaRng(seed::rng(self.seed, Stream::Node { id, generation: 0 }));
        let me = Id { addr: addr(id), bump: 0 };
        self.nodes[id as usize] = Some(Foca::new(me, self.config.clone(), rng, PostcardCodec));
    }

    fn join(&mut self, id: u32, seed: u32, now: Nanos, out: &mut Out<FocaTimer>) {
        self.announce(id, seed, now, ANNOUNCE_RETRY, out);
    }

    fn datagram(&mut self, id: u32, now: Nanos, _: u32, data: &[u8], out: &mut Out<FocaTimer>) {
        self.with(id, now, out, |node, rt| {
            let _ = node.handle_data(data, rt);
        });
    }

    fn timer(&mut self, id: u32, now: Nanos, timer: FocaTimer, out: &mut Out<FocaTimer>) {
        match timer {
            FocaTimer::Foca(timer) => self.with(id, now, out, |node, rt| {
                let _ = node.handle_timer(timer, rt);
            }),
            FocaTimer::Announce { seed, waited } => {
                if !self.active[id as usize] {
                    let wait = (waited * 2).min(ANNOUNCE_RETRY_MAX);
                    self.announce(id, seed, now, wait, out);
                }
            }
        }
    }

    fn stream(&mut self, _: u32, _: Nanos, _: u64, _: StreamEvent<'_>, _: &mut Out<FocaTimer>) {
        // foca runs on datagrams only and never opens a stream.
    }

    fn inbound_conn(&self, index: u64) -> u64 {
        index
    }

    fn live_others(&self, id: u32) -> u64 {
        self.nodes[id as usize].as_ref().map_or(0, |n| n.iter_members().count() as u64)
    }

    fn crash(&mut self, id: u32) {
        self.nodes[id as usize] = None;
    }
}
