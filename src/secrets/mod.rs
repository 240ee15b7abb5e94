//! Committed-secret and repository hygiene scanner (being written).
