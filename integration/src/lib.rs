//! placeholder until the test kit lands
