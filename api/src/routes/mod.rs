pub mod health;
pub mod media;
pub mod openapi;
pub mod records;
pub mod stream;
pub mod web;
