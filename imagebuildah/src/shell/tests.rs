//! Table tests of the word expander.
use super::*;
