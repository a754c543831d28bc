//! Consumer-side building blocks (currently: the group partition assignors).
pub mod assignor;
