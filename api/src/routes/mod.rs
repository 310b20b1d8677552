pub mod health;
pub mod openapi;
pub mod records;
pub mod stream;
pub mod web;
