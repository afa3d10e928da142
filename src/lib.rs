//! tessera facade
