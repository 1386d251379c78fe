//! What a node tells its application: membership changes and broadcasts.

use bytes::Bytes;

use crate::addr::Address;
use crate::member::State;
use crate::wire::{NoRoom, Writer};

/// A member as an event or a snapshot reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<A> {
    /// The member's identity and where to reach it.
    pub addr: A,
    /// The state this node believes it is in.
    pub state: State,
    /// The member's incarnation: it only ever grows.
    pub incarnation: u32,
    /// The member's metadata (empty when it has none).
    pub meta: Bytes,
}

/// A change the application may want to act on, drained with
/// [`crate::Node::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A> {
    /// A member appeared, or came back after it had failed or left.
    Joined(Member<A>),
    /// A live member changed its metadata.
    Updated(Member<A>),
    /// A member missed its probes and is suspected; it may still refute.
    Suspected(Member<A>),
    /// A suspected member refuted the suspicion: it is alive after all.
    Alive(Member<A>),
    /// A member was declared dead.
    Failed(Member<A>),
    /// A member left gracefully.
    Left(Member<A>),
    /// An application broadcast from another member, delivered once.
    Broadcast {
        /// The member that broadcast it.
        from: A,
        /// The application's bytes.
        payload: Bytes,
    },
    /// Another live process claims this node's own address: both go on
    /// answering, and this node stops out-bidding the other's incarnation so
    /// the two do not flap. The operator must resolve it.
    Conflict {
        /// The contested address (this node's own).
        addr: A,
        /// The random instance id the other process announced.
        other_instance: u32,
        /// The incarnation the other process claimed.
        incarnation: u32,
    },
}

impl<A> Event<A> {
    /// The member the event is about, if it is about one.
    pub fn member(&self) -> Option<&Member<A>> {
        match self {
            Event::Joined(m)
            | Event::Updated(m)
            | Event::Suspected(m)
            | Event::Alive(m)
            | Event::Failed(m)
            | Event::Left(m) => Some(m),
            Event::Broadcast { .. } | Event::Conflict { .. } => None,
        }
    }

    /// A short lower-case name (`joined`, `failed`, ...), for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Joined(_) => "joined",
            Event::Updated(_) => "updated",
            Event::Suspected(_) => "suspected",
            Event::Alive(_) => "alive",
            Event::Failed(_) => "failed",
            Event::Left(_) => "left",
            Event::Broadcast { .. } => "broadcast",
            Event::Conflict { .. } => "conflict",
        }
    }
}

impl<A: Address> Event<A> {
    /// The canonical encoding of an event, for logs and digests: a kind
    /// byte (0 joined, 1 updated, 2 suspected, 3 alive, 4 failed, 5 left,
    /// 6 broadcast, 7 conflict), then for a member event the address (wire
    /// form), the state byte (0 alive .. 3 left), the incarnation (4 bytes,
    /// big-endian) and the metadata (4-byte length, bytes); for a broadcast
    /// the sender and the payload (4-byte length, bytes); for a conflict the
    /// address, the other instance and the incarnation (4 bytes each).
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), NoRoom> {
        let mut result = Ok(());
        self.walk(&mut |bytes| {
            if result.is_ok() {
                result = w.put(bytes);
            }
        });
        result
    }

    /// Hand the canonical encoding to `out` piece by piece (no allocation).
    pub(crate) fn walk(&self, out: &mut dyn FnMut(&[u8])) {
        let addr = |a: &A, out: &mut dyn FnMut(&[u8])| {
            let mut buf = [0u8; 64];
            let mut w = Writer::new(&mut buf);
            if a.encode(&mut w).is_ok() {
                out(w.written());
            }
        };
        let kind = match self {
            Event::Joined(_) => 0u8,
            Event::Updated(_) => 1,
            Event::Suspected(_) => 2,
            Event::Alive(_) => 3,
            Event::Failed(_) => 4,
            Event::Left(_) => 5,
            Event::Broadcast { .. } => 6,
            Event::Conflict { .. } => 7,
        };
        out(&[kind]);
        match self {
            Event::Broadcast { from, payload } => {
                addr(from, out);
                out(&(payload.len() as u32).to_be_bytes());
                out(payload);
            }
            Event::Conflict { addr: a, other_instance, incarnation } => {
                addr(a, out);
                out(&other_instance.to_be_bytes());
                out(&incarnation.to_be_bytes());
            }
            _ => {
                if let Some(m) = self.member() {
                    addr(&m.addr, out);
                    out(&[m.state as u8]);
                    out(&m.incarnation.to_be_bytes());
                    out(&(m.meta.len() as u32).to_be_bytes());
                    out(&m.meta);
                }
            }
        }
    }
}
