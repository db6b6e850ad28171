//! HTTP routes on hyper: the State Backed API, `/rt`, `/metrics` and `/healthz`.
