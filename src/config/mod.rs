//! Configuration: the operator's settings (`SHIPGATE_*` environment) and a
//! repository's `.github/shipgate.yml`. Engines own the types of their own
//! sections (`smoke`, `freeze`); this layer composes them.

pub mod repo;
pub mod settings;
