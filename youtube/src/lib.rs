//! YouTube Data API v3 client.
