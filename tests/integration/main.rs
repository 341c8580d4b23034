//! Integration tests: the real `midfleet` binary.
