//! Manifest, index and descriptor types (OCI and Docker v2s2).
