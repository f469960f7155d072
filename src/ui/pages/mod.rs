//! One module per dashboard page.

pub mod home;
