//! Cut list to video.
