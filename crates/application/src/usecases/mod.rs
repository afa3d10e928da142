//! The use cases, each with its own request, response and error types.

pub mod admission;
pub mod establish;
pub mod exchange;
pub mod read;
pub mod resolve_user;
pub mod revoke;
pub mod rotate;
pub mod sign_in;
pub mod sign_out;
pub mod user_events;
pub mod verify;
