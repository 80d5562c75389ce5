//! Table tests of typing and expansion.
use super::*;
