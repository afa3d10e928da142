//! tessera's HTTP edge. The tower layer and axum extractors land with the HTTP issue.
