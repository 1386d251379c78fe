//! The `swim` agent.
