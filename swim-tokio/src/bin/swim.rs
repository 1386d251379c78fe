//! The `swim` agent (filled in by the next commit).

fn main() {}
