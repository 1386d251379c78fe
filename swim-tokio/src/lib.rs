//! Filled by its own issue; a workspace member from the start so the layout is fixed.
